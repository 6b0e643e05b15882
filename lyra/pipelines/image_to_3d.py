"""Image -> 3D Gaussians end to end: source view, the six trajectories, generator, decoder, outputs.

Stages (README §3): the image (and its depth, scene-scale normalised) is centre-cropped and resized to the
pocket resolution; the method's six trajectories start at its camera; a generator (``cache``: warp + inpaint;
``oracle``: a procedural world; ``gen3c``: files made on a GPU) gives one latent video per trajectory; the
decoder turns all latents (+ tokenizer-encoded Plücker maps) into one fused, opacity-pruned Gaussian set.
Outputs in the run folder: ``scene.ply``, ``scene.spz``, ``flythrough.mp4`` (every trajectory, then a novel
orbit), ``preview.png`` (input | novel view | its depth), ``cameras.npz`` (trajectory cameras) and
``report.json`` (stage times, Gaussian counts, settings, the depth scale).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lyra.cameras import INFERENCE_ORDER, Cameras, default_intrinsics, look_at, method_trajectories
from lyra.depth import DEFAULT_TARGET_MEDIAN, normalize_scene_scale
from lyra.errors import InputError
from lyra.generator import Generator, SourceView, TrajectorySample
from lyra.pipelines.report import StageTimer, write_report
from lyra.utils.shipped import DEFAULT, shipped_dir, shipped_version

OUTPUT_FILES = {
    "ply": "scene.ply",
    "spz": "scene.spz",
    "video": "flythrough.mp4",
    "preview": "preview.png",
    "cameras": "cameras.npz",
    "report": "report.json",
}


class PipelineError(InputError):
    """A user-facing pipeline error (missing weights, inconsistent models or settings)."""


@dataclass
class GenerateConfig:
    """Settings of one image -> 3D run.

    Attributes:
        height, width: resolution in pixels (multiples of 16: tokenizer 8x, decoder patch 2); defaults: the
            setting of the default shipped version (:mod:`lyra.utils.shipped`).
        frames: frames per trajectory (1 + 8k; the decoder emits exactly this many per trajectory).
        generator: generator backend ("cache", "oracle", "gen3c", or any registered name).
        generator_options: extra keyword arguments of the generator factory.
        tokenizer, decoder: "shipped" or a local folder (save_pretrained layout).
        prune: fraction of the fused Gaussians dropped by opacity rank (method §4.1: 0.8).
        mode: rasterizer mode for the outputs ("classic" or "eval3d").
        device: "cpu" or "cuda" (tokenizer, decoder and rendering).
        seed: trajectory distance draws and generator sampling.
        target_median: median source depth after scene-scale normalisation (None: keep the depth's unit).
        fov_x_deg: horizontal field of view assumed when the depth source gives no intrinsics.
        movement_factor: multiplies every trajectory's movement distance.
        center_depth: look-at depth of the trajectories (scene units).
        orbit_frames: frames of the novel orbit appended to the fly-through.
        flythrough_stride: the fly-through shows every k-th frame of each trajectory (1: all; larger values save
            render time at high resolution and many frames; the orbit is always rendered whole).
        fps: fly-through frame rate.
        background: RGB background of the renders (the decoder is trained on white).
        anchor_source: keep the input view exact (default): the decoded Gaussians that the source image with its
            depth already explains are replaced by that view lifted one Gaussian per pixel
            (:func:`lyra.cache3d.anchor_to_source`); decoded Gaussians fill what it does not see. False: the
            decoder's Gaussians alone (the method's output).
    """

    height: int = DEFAULT.height
    width: int = DEFAULT.width
    frames: int = DEFAULT.frames
    generator: str = "cache"
    generator_options: dict[str, Any] = field(default_factory=dict)
    tokenizer: str = "shipped"
    decoder: str = "shipped"
    prune: float = DEFAULT.prune
    mode: str = "classic"
    device: str = "cpu"
    seed: int = 0
    target_median: float | None = DEFAULT.target_median
    fov_x_deg: float = 60.0
    movement_factor: float = 1.0
    center_depth: float = 1.0
    orbit_frames: int = 48
    flythrough_stride: int = DEFAULT.flythrough_stride
    fps: float = 24.0
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    anchor_source: bool = True

    def validate(self) -> GenerateConfig:
        if self.height <= 0 or self.width <= 0 or self.height % 16 or self.width % 16:
            raise PipelineError(f"--height/--width must be positive multiples of 16, got {self.height}x{self.width}")
        if self.frames < 1 or (self.frames - 1) % 8:
            raise PipelineError(f"--frames must be 1 + 8k (9, 17, 25, ...), got {self.frames}")
        if not 0.0 <= self.prune < 1.0:
            raise PipelineError(f"--prune must lie in [0, 1), got {self.prune}")
        if self.target_median is not None and not (math.isfinite(self.target_median) and self.target_median > 0):
            raise PipelineError(f"--target-median must be a positive number of scene units, got {self.target_median}")
        if self.mode not in ("classic", "eval3d"):
            raise PipelineError(f"--mode must be classic or eval3d, got {self.mode!r}")
        if self.orbit_frames < 1:
            raise PipelineError(f"orbit frames must be >= 1, got {self.orbit_frames}")
        if self.flythrough_stride < 1:
            raise PipelineError(f"--flythrough-stride must be >= 1, got {self.flythrough_stride}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise PipelineError(f"--device must be cpu or cuda, got {self.device!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise PipelineError("--device cuda: no CUDA device is available (use --device cpu)")
        return self


@dataclass
class PipelineResult:
    """What a run produced.

    Attributes:
        gaussians: the fused, pruned Gaussian set (CPU).
        samples: the generator's trajectory samples.
        report: the content of ``report.json``.
        out: the run folder.
        novel_cameras: the orbit cameras appended to the fly-through.
        novel_rgb: [N, 3, H, W] renders at ``novel_cameras``.
        source: the prepared source view the run started from (working size, scene units).
        decoded: the decoder's Gaussians alone when ``gaussians`` were anchored to the source view, else None.
    """

    gaussians: Any
    samples: list[TrajectorySample]
    report: dict[str, Any]
    out: Path
    novel_cameras: Cameras
    novel_rgb: Tensor
    source: SourceView
    decoded: Any = None


# ---------------------------------------------------------------------------------------------- models
def shipped_decoder_dir(name: str = "shipped") -> Path:
    """Folder of a shipped decoder: ``pocket-v1`` / ``pocket`` (``lyra/assets/decoder``) or ``pocket-v2``
    (``lyra/assets/decoder-v2``); ``shipped`` is the default version's (:mod:`lyra.utils.shipped`)."""
    return shipped_dir("decoder", name)


def load_decoder(spec: str | os.PathLike, device: torch.device | str = "cpu") -> Any:
    """The decoder from a shipped name (``"shipped"``, ``"pocket-v1"``, ...) or a folder written by
    ``LyraDecoder.save_pretrained`` (eval mode).

    A bad folder raises an InputError naming the file (missing, unreadable or mismatching config / weights).
    """
    from lyra.decoder import LyraDecoder

    shipped = shipped_version(spec) is not None
    d = shipped_decoder_dir(str(spec)) if shipped else Path(spec)
    if shipped and not (d / "model.safetensors").is_file():
        raise PipelineError(f"shipped decoder weights are not in {d} yet; give --decoder DIR "
                            "(a folder with config.json + model.safetensors, e.g. from `lyra train`)")
    if not d.is_dir():
        raise PipelineError(f"--decoder {d}: folder not found (a folder with config.json + model.safetensors)")
    return LyraDecoder.from_pretrained(d, device=device, dtype=torch.float32).eval()


def load_models(cfg: GenerateConfig) -> tuple[Any, Any]:
    """(tokenizer, decoder) on ``cfg.device``, checked against each other and the resolution."""
    from lyra.tokenizer import load_tokenizer

    tv, dv = shipped_version(cfg.tokenizer), shipped_version(cfg.decoder)
    if tv is not None and dv is not None and tv != dv:
        raise PipelineError(f"--decoder {cfg.decoder} ({dv}) reads the latents of tokenizer {dv}, not of --tokenizer "
                            f"{cfg.tokenizer} ({tv}); give both the same version")
    tok = load_tokenizer(cfg.tokenizer, device=cfg.device)
    if hasattr(tok, "eval"):
        tok.eval()
    dec = load_decoder(cfg.decoder, device=cfg.device)
    dc = dec.config
    if dc.latent_channels != tok.latent_channels or dc.plucker_channels != 2 * tok.latent_channels:
        raise PipelineError(f"decoder expects {dc.latent_channels} latent / {dc.plucker_channels} Plücker channels but "
                            f"the tokenizer has {tok.latent_channels} latent channels; use a matching pair")
    if dc.num_frames(tok.latent_frames(cfg.frames)) != cfg.frames:
        raise PipelineError(f"the decoder turns {tok.latent_frames(cfg.frames)} latent frames into "
                            f"{dc.num_frames(tok.latent_frames(cfg.frames))} frames, not --frames {cfg.frames}")
    tok.check_video_shape((1, 3, cfg.frames, cfg.height, cfg.width))
    return tok, dec


# ---------------------------------------------------------------------------------------------- inputs
def prepare_source(image: Tensor, depth: Tensor, K: Tensor | None, height: int, width: int, *,
                   target_median: float | None = DEFAULT_TARGET_MEDIAN,
                   fov_x_deg: float = 60.0) -> tuple[SourceView, float]:
    """Centre-crop and resize an image with its depth to ``height x width``; normalise the scene scale.

    Args:
        image: [3, H0, W0] in [0, 1].
        depth: [1, H0, W0] z-depth (0 = invalid) in any unit.
        K: [3, 3] pixel intrinsics at H0 x W0, or None (then ``fov_x_deg`` with a centred principal point).
        target_median: median depth wanted (scene units), or None to keep the unit (scale 1).
    Returns:
        (SourceView at the origin with image [3, H, W], depth [1, H, W] in scene units and K, scale applied).
    """
    from lyra.data.reader import crop_resize

    if tuple(depth.shape[-2:]) != tuple(image.shape[-2:]):
        raise PipelineError(f"depth is {list(depth.shape[-2:])} but the image is {list(image.shape[-2:])}")
    H0, W0 = image.shape[-2:]
    K0 = (default_intrinsics(H0, W0, fov_x_deg) if K is None else K.float()).reshape(1, 3, 3)
    img, K1 = crop_resize(image.float()[None], K0, (height, width))
    d = torch.where(torch.isfinite(depth) & (depth > 0), depth.float(), torch.zeros_like(depth, dtype=torch.float32))
    dep, _ = crop_resize(d[None], K0, (height, width), mode="nearest")
    dep = dep[0]
    scale = 1.0
    if target_median is not None:
        dep, scale = normalize_scene_scale(dep, target_median)
    elif not (dep > 0).any():
        raise PipelineError("the depth map has no valid pixel")
    return SourceView(img[0].clamp(0, 1), K1[0], dep), float(scale)


def novel_orbit(source: SourceView, n: int, radius: float | None = None, forward: float = 0.15) -> Cameras:
    """Novel cameras off the method's trajectories: a circle around the source camera looking at the scene.

    The eyes lie on an ellipse (``radius`` across, half of it vertically) ``forward`` scene units in front of the
    source camera; every camera looks at the median source depth on the optical axis. None: radius = 0.125 x
    that median (0.25 at the normalised median 2).
    """
    d = source.depth[source.depth > 0] if source.depth is not None else torch.tensor([2.0])
    med = float(d.median()) if d.numel() else 2.0
    r = 0.125 * med if radius is None else radius
    theta = torch.arange(n, dtype=torch.float32) * (2 * math.pi / n)
    eye = torch.stack([r * torch.cos(theta), 0.5 * r * torch.sin(theta), torch.full_like(theta, forward)], -1)
    c2w0 = source.camera.c2w[0]
    eye_w = eye @ c2w0[:3, :3].T + c2w0[:3, 3]
    target = c2w0[:3, :3] @ torch.tensor([0.0, 0.0, med]) + c2w0[:3, 3]
    up = -c2w0[:3, 1]
    w2c = look_at(eye_w, target, up)
    return Cameras(w2c, source.K.float().expand(n, 3, 3).clone(), source.camera.height, source.camera.width)


# ---------------------------------------------------------------------------------------------- decode / render
@torch.no_grad()
def decode_samples(decoder: Any, tokenizer: Any, samples: Sequence[TrajectorySample], prune: float,
                   order: Sequence[int] | None = None, *, time: Tensor | None = None,
                   cond: Any = None) -> tuple[Any, int]:
    """Fused Gaussians (CPU) of all trajectories and the count before pruning.

    Args:
        order: the trajectory order of the decoder's token sequence (default: ``INFERENCE_ORDER`` for the
            method's six trajectories, else as given).
        time: [1, T_l + 1, C, h, w] time conditioning of a time-conditioned decoder (``ConditioningCache.time``).
        cond: a :class:`lyra.train.conditioning.ConditioningCache` to reuse (its Plücker maps are cached across
            calls); None makes one.
    """
    from lyra.train.conditioning import ConditioningCache

    V = len(samples)
    if order is None:
        order = INFERENCE_ORDER if V == len(INFERENCE_ORDER) else range(V)
    picked = [samples[i] for i in order]
    dev = decoder.device
    latents = torch.cat([s.latents.permute(1, 0, 2, 3) for s in picked])[None].to(dev)  # [1, V*T_l, C, h, w]
    cond = ConditioningCache(tokenizer, device=dev) if cond is None else cond
    plucker, rays_o, rays_d = (t.to(dev) for t in cond.sample([s.cameras for s in picked]))
    out = decoder(latents, plucker, rays_o, rays_d, num_views=V, prune_ratio=prune,
                  time=None if time is None else time.to(dev))
    n_all = V * decoder.config.num_frames(picked[0].latents.shape[1]) * latents.shape[-2] * latents.shape[-1]
    g = out.gaussians[0]
    return g.to("cpu") if hasattr(g, "to") else g, n_all


@torch.no_grad()
def render_views(gaussians: Any, cameras: Cameras, *, mode: str = "classic", device: str = "cpu",
                 background: Sequence[float] = (1.0, 1.0, 1.0), chunk: int = 16) -> tuple[Tensor, Tensor, Tensor]:
    """(rgb [N, 3, H, W], depth [N, 1, H, W], alpha [N, 1, H, W]) on CPU, rendered ``chunk`` cameras at a time."""
    from lyra.render import rasterize

    g = gaussians.to(device)
    bg = torch.tensor(list(background), dtype=torch.float32, device=device)
    rgb, dep, alpha = [], [], []
    for s in range(0, len(cameras), chunk):
        o = rasterize(g, cameras[s:s + chunk].to(device), bg, near=0.01, mode=mode)  # type: ignore[arg-type]
        rgb.append(o.rgb.cpu())
        dep.append(o.depth.cpu())
        alpha.append(o.alpha.cpu())
    return torch.cat(rgb), torch.cat(dep), torch.cat(alpha)


def preview_image(source: SourceView, novel_rgb: Tensor, novel_depth: Tensor, novel_alpha: Tensor,
                  min_height: int = 192) -> Tensor:
    """[3, s·H, 3·s·W]: input | a novel view | its depth (colourised, black where nothing was drawn).

    Pocket-size images are enlarged by the integer factor s (nearest) that makes them ``min_height`` tall.
    """
    import torch.nn.functional as F

    from lyra.utils.images import colorize_depth

    d = torch.where(novel_alpha > 0.5, novel_depth, torch.zeros_like(novel_depth))
    row = torch.cat([source.image.cpu(), novel_rgb.cpu(), colorize_depth(d)], dim=-1)
    s = max(1, math.ceil(min_height / row.shape[-2]))
    return F.interpolate(row[None], scale_factor=s, mode="nearest")[0] if s > 1 else row


# ---------------------------------------------------------------------------------------------- the run
def run_pipeline(source: SourceView, cfg: GenerateConfig, out: str | os.PathLike, *,
                 world: Any = None, generator: Generator | None = None, models: tuple[Any, Any] | None = None,
                 timer: StageTimer | None = None, input_info: dict[str, Any] | None = None,
                 depth_scale: float = 1.0) -> PipelineResult:
    """Trajectories -> generator -> decoder -> outputs in ``out`` (see the module docstring).

    Args:
        source: the prepared source view (:func:`prepare_source`, :func:`source_from_world`).
        world: a procedural world for the ``oracle`` generator.
        generator: a ready generator (else built from ``cfg.generator`` and ``cfg.generator_options``).
        models: (tokenizer, decoder) already loaded (else :func:`load_models`).
        input_info: what the input was (recorded in the report).
        depth_scale: the scale applied to the input depth (recorded in the report).
    """
    import lyra.generator.cache  # noqa: F401 - registers "cache"
    import lyra.generator.gen3c  # noqa: F401 - registers "gen3c"
    from lyra.cameras import save_cameras_npz
    from lyra.export import export_scene
    from lyra.gaussians import save_gaussians
    from lyra.generator import GeneratorError, make_generator
    from lyra.render.video import write_video
    from lyra.utils.images import save_png

    cfg.validate()
    timer = timer or StageTimer()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if models is None:
        with timer.stage("load models", f"tokenizer {cfg.tokenizer}, decoder {cfg.decoder}"):
            models = load_models(cfg)
    tok, dec = models

    with timer.stage("trajectories"):
        trajs = method_trajectories(source.K, cfg.height, cfg.width, cfg.frames, center_depth=cfg.center_depth,
                                    movement_factor=cfg.movement_factor, seed=cfg.seed,
                                    anchor_w2c=None if source.w2c is None else source.w2c)
        novel = novel_orbit(source, cfg.orbit_frames)

    with timer.stage("generate", f"{cfg.generator}, {len(trajs)} trajectories x {cfg.frames} frames"):
        try:
            gen = generator
            if gen is None:
                gen = make_generator(cfg.generator, tokenizer=tok, world=world, **cfg.generator_options)
                gen.decode_frames = False  # only the latents are decoded (into Gaussians): skip the RGB decode
        except TypeError as exc:
            raise PipelineError(f"generator {cfg.generator!r}: {exc}") from exc
        if gen.needs_source and source.depth is None:
            raise GeneratorError(f"generator {cfg.generator!r} needs depth for the input image")
        samples = gen.generate(trajs, source, seed=cfg.seed)
        if len(samples) != len(trajs) and cfg.generator != "gen3c":
            raise PipelineError(f"generator returned {len(samples)} samples for {len(trajs)} trajectories")
        trajs = [s.cameras for s in samples]

    with timer.stage("decode", f"prune {cfg.prune}"):
        g, n_all = decode_samples(dec, tok, samples, cfg.prune)
    decoded, anchored = None, {}
    if cfg.anchor_source and source.depth is None:
        timer.warn("the input image has no depth: the scene is the decoder's alone (not anchored to the input view)")
    elif cfg.anchor_source:
        from lyra.cache3d import anchor_to_source

        with timer.stage("anchor", "the source view replaces the decoded Gaussians it explains"):
            decoded = g
            g, dropped = anchor_to_source(g, source.image, source.depth, source.camera)
        anchored = {"source_gaussians": len(g) - (len(decoded) - dropped), "decoded_dropped": dropped}

    shown = [t[:: cfg.flythrough_stride] for t in trajs]
    n_traj = sum(len(t) for t in shown)
    with timer.stage("render", f"{n_traj} trajectory + {cfg.orbit_frames} orbit frames, {cfg.mode}"):
        all_cams = Cameras.cat(shown + [novel])
        rgb, depth, alpha = render_views(g, all_cams, mode=cfg.mode, device=cfg.device, background=cfg.background)
    novel_rgb, novel_depth, novel_alpha = rgb[n_traj:], depth[n_traj:], alpha[n_traj:]

    with timer.stage("write outputs"):
        save_gaussians(out / OUTPUT_FILES["ply"], g)
        export_scene(g, out / OUTPUT_FILES["spz"])
        write_video(out / OUTPUT_FILES["video"], rgb, fps=cfg.fps)
        k = len(novel) // 8
        save_png(out / OUTPUT_FILES["preview"], preview_image(source, novel_rgb[k], novel_depth[k], novel_alpha[k]))
        save_cameras_npz(out / OUTPUT_FILES["cameras"], Cameras.cat(trajs))

    settings = asdict(cfg)
    report: dict[str, Any] = {
        "input": input_info or {},
        "depth_scale": depth_scale,
        "scene_units": "input depth unit x depth_scale",
        "settings": settings,
        "trajectories": len(trajs),
        "frames_per_trajectory": cfg.frames,
        "video_frames": int(rgb.shape[0]),
        "orbit_frames": cfg.orbit_frames,
        "gaussians": {"decoded": int(n_all), "kept": len(g), "prune_ratio": cfg.prune,
                      "kept_per_pixel": round(len(g) / (cfg.height * cfg.width), 4), **anchored},  # of one view
        "decoder": {"source": str(cfg.decoder), "parameters": int(dec.num_parameters())},
        "tokenizer": str(cfg.tokenizer),
        "timings_s": dict(timer.timings),
        "outputs": dict(OUTPUT_FILES),
    }
    report["total_s"] = sum(timer.timings.values())
    write_report(out / OUTPUT_FILES["report"], report)
    return PipelineResult(g, samples, report, out, novel, novel_rgb, source, decoded)


def generate_from_image(
    image: str | os.PathLike | Tensor, cfg: GenerateConfig, out: str | os.PathLike, *,
    depth_file: str | os.PathLike | None = None, depth_scale: float | None = None,
    stereo_right: str | os.PathLike | None = None, calib: str | os.PathLike | None = None,
    depth_model: str | os.PathLike | None = None, depth: Tensor | None = None, K: Tensor | None = None,
    timer: StageTimer | None = None, input_info: dict[str, Any] | None = None,
) -> PipelineResult:
    """Image (file or [3, H, W] tensor) + one depth source -> :func:`run_pipeline`.

    ``depth`` (+ ``K``) given directly skips the depth sources (the demo's ground truth).
    """
    from lyra.depth import resolve_depth
    from lyra.utils.images import load_image

    cfg.validate()
    timer = timer or StageTimer()
    info = dict(input_info or {})
    with timer.stage("load input"):
        img = load_image(image) if not isinstance(image, Tensor) else image
        info.setdefault("image", str(image) if not isinstance(image, Tensor) else "tensor")
        info["image_size"] = [int(img.shape[-2]), int(img.shape[-1])]
    # fail on missing weights before the (possibly slow) depth stage
    with timer.stage("load models", f"tokenizer {cfg.tokenizer}, decoder {cfg.decoder}"):
        models = load_models(cfg)
    if depth is None:
        with timer.stage("depth"):
            d = resolve_depth(img, depth_file=depth_file, depth_scale=depth_scale, stereo_right=stereo_right,
                              calib=calib, depth_model=depth_model, device=cfg.device)
        depth, K = d.depth, d.K if K is None else K
        info.update(depth_source=d.source, depth_metric=d.metric)
        if d.note:
            timer.warn(d.note)
            info["depth_note"] = d.note
    else:
        info.setdefault("depth_source", "given")
    with timer.stage("prepare"):
        source, scale = prepare_source(img, depth, K, cfg.height, cfg.width, target_median=cfg.target_median,
                                       fov_x_deg=cfg.fov_x_deg)
    info["intrinsics"] = "given" if K is not None else f"assumed ({cfg.fov_x_deg} deg horizontal FoV)"
    return run_pipeline(source, cfg, out, models=models, timer=timer, input_info=info, depth_scale=scale)


def source_from_world(world: Any, tokenizer: Any, cfg: GenerateConfig) -> SourceView:
    """The exact view of a procedural world from the origin camera at the pipeline resolution."""
    from lyra.generator import OracleGenerator

    K = default_intrinsics(cfg.height, cfg.width, cfg.fov_x_deg)
    return OracleGenerator(world, tokenizer).render_source(Cameras(torch.eye(4), K, cfg.height, cfg.width))


def _metrics() -> tuple[Any, Any]:
    try:
        from lyra.eval import psnr, ssim
    except ImportError:  # the training losses carry the same definitions
        from lyra.train.losses import psnr, ssim
    return psnr, ssim


@torch.no_grad()
def world_metrics(result: PipelineResult, world: Any, source: SourceView, cfg: GenerateConfig,
                  cameras: Cameras | None = None) -> dict[str, Any]:
    """PSNR / SSIM at novel cameras against the world's exact renders, for the pipeline and the baseline.

    The baseline is plain depth lifting: every source pixel one Gaussian (``depth_to_gaussians``), no decoder.
    ``cameras`` default to the run's novel orbit (off the method's trajectories).
    """
    cams = result.novel_cameras if cameras is None else cameras
    ours = result.novel_rgb if cameras is None else None
    return novel_view_metrics(result, source, cfg, cams, world.render(cams, 0.0, supersample=2).rgb, ours)


@torch.no_grad()
def novel_view_metrics(result: PipelineResult, source: SourceView, cfg: GenerateConfig, cameras: Cameras,
                       target: Tensor, rendered: Tensor | None = None) -> dict[str, Any]:
    """PSNR / SSIM of the pipeline's scene and of plain depth lifting (every source pixel one Gaussian, no decoder)
    at ``cameras`` against ``target`` [N, 3, H, W] in [0, 1]; ``rendered``: the scene's renders there if known.
    An anchored run (``result.decoded``) also scores the decoder's Gaussians alone (``decoder_only``)."""
    from lyra.cache3d import depth_to_gaussians

    psnr, ssim = _metrics()
    ours = rendered if rendered is not None else render_views(result.gaussians, cameras, mode=cfg.mode,
                                                              device=cfg.device, background=cfg.background)[0]
    base_g = depth_to_gaussians(source.image, source.depth, source.camera)
    base = render_views(base_g, cameras, mode=cfg.mode, device=cfg.device, background=cfg.background)[0]

    def scores(x: Tensor) -> dict[str, float]:
        return {"psnr": float(psnr(x, target).mean()), "ssim": float(ssim(x, target))}

    out = {"cameras": len(cameras), "pipeline": scores(ours), "baseline_depth_lifting": scores(base),
           "baseline_gaussians": len(base_g), "pipeline_gaussians": len(result.gaussians)}
    if result.decoded is not None:  # anchored: the decoder's own scene beside it
        alone = render_views(result.decoded, cameras, mode=cfg.mode, device=cfg.device, background=cfg.background)[0]
        out["decoder_only"] = scores(alone)
    return out


def stereo_view(image: Tensor, K: Tensor, baseline: float, scale: float, height: int,
                width: int) -> tuple[Cameras, Tensor]:
    """The second camera of a rectified stereo pair as a novel view of a scene made from the first image.

    Args:
        image: [3, H0, W0] the second image in [0, 1]; K: its [3, 3] intrinsics at H0×W0.
        baseline: camera distance in the first image's depth unit (the second camera at +x, same orientation).
        scale: the run's depth scale (scene units per depth unit, report ``depth_scale``).
        height, width: the run's working size (the image is cropped and resized as the source was).
    Returns:
        (the camera in scene units, world = the first camera; the image [1, 3, height, width]).
    """
    from lyra.data.reader import crop_resize

    img, K1 = crop_resize(image.float()[None], K.float().reshape(1, 3, 3), (height, width))
    w2c = torch.eye(4)
    w2c[0, 3] = -baseline * scale
    return Cameras(w2c[None], K1, height, width), img.clamp(0, 1)
