"""Video -> 4D Gaussians (``lyra video4d``): a source clip -> six time-aligned trajectories -> one scene per time.

Stages (docs/dynamic.md, method §2.5): a source clip of T = 1 + 8k frames with per-frame z-depth and cameras (a
video file + depth maps, static camera; or a procedural moving world seen from its origin camera) -> the method's
six trajectories anchored on the per-frame source cameras (frame i of every trajectory shows time t_i = i / (T - 1),
as the dynamic SDG makes them) -> a teacher (``oracle``: exact world renders; ``cache``: the 4D cache, frame i warped
from source frame i) -> tokenizer latents -> for every requested time t, the time-conditioned decoder
(``time = encode_time(tokenizer, t_input, t, H, W)``) fuses and prunes the Gaussians of all trajectories -> one
scene per time, written as a 4D sequence (:mod:`lyra.gaussians.sequence`) with three videos, a preview and a report.
"""

from __future__ import annotations

import math
import os
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lyra.cameras import Cameras
from lyra.generator import SourceView, TrajectorySample
from lyra.pipelines.image_to_3d import GenerateConfig, PipelineError
from lyra.pipelines.report import StageTimer
from lyra.pipelines.sdg_dynamic import DYNAMIC_GENERATORS, SourceVideo
from lyra.utils.shipped import DYNAMIC, DYNAMIC_VERSION

OUTPUT_FILES = {
    "sequence": "sequence.json",
    "cameras": "cameras.npz",
    "camera_through_time": "camera_through_time.mp4",
    "fixed_camera": "fixed_camera.mp4",
    "frozen_time": "frozen_time.mp4",
    "preview": "preview.png",
    "report": "report.json",
}
STALE_OUTPUTS = (*OUTPUT_FILES.values(), "frame_*.ply")  # an earlier run's files in an existing --out
UNTRAINED_NOTE = ("the decoder's time embeddings are zero (a static decoder turned time-conditioned, untrained): "
                  "every time gets the same Gaussians until dynamic weights are trained (--decoder DIR with "
                  "use_time and trained time embeddings)")


class Video4DError(PipelineError):
    """A user-facing video -> 4D error (bad times, inputs, settings)."""


@dataclass
class Video4DConfig(GenerateConfig):
    """Settings of one video -> 4D run: :class:`GenerateConfig`'s fields (``fps`` is the output videos' rate,
    ``orbit_frames`` the novel orbit's length) plus:

    Attributes:
        times: the normalised times in [0, 1] to reconstruct (strictly increasing; :func:`parse_times`).
        generator: teacher, "oracle" (needs a world) or "cache" (the 4D cache).
        supersample: s x s rays per pixel for the RGB of world renders (source video and oracle frames).
        metric_cameras: novel cameras (an even subset of the orbit) per time for the ``--world`` metrics.

    The size, frames, prune ratio, weights and photo scale default to the setting of ``DYNAMIC_VERSION`` (pocket-v1,
    the version whose time-conditioned decoder ships), not to image -> 3D's default version.
    """

    height: int = DYNAMIC.height
    width: int = DYNAMIC.width
    frames: int = DYNAMIC.frames
    tokenizer: str = DYNAMIC_VERSION
    decoder: str = DYNAMIC_VERSION
    prune: float = DYNAMIC.prune
    target_median: float | None = DYNAMIC.target_median
    flythrough_stride: int = DYNAMIC.flythrough_stride
    times: tuple[float, ...] = (0.0, 0.5, 1.0)
    generator: str = "cache"
    supersample: int = 1
    metric_cameras: int = 8

    def validate(self) -> Video4DConfig:
        super().validate()
        if self.frames < 2:
            raise Video4DError(f"--frames must be at least 9 for a video (1 + 8k, k >= 1), got {self.frames}")
        check_times(self.times)
        if self.generator not in DYNAMIC_GENERATORS:
            raise Video4DError(f"--generator must be one of {', '.join(DYNAMIC_GENERATORS)}, got {self.generator!r}")
        if self.supersample < 1 or self.metric_cameras < 1:
            raise Video4DError(f"supersample and metric cameras must be >= 1, got {self.supersample}, "
                               f"{self.metric_cameras}")
        return self


@dataclass
class Video4DResult:
    """What a run produced.

    Attributes:
        scenes: one fused, pruned Gaussian set per requested time (CPU).
        times: the requested times, increasing.
        samples: the six trajectories' teacher samples (frames = the teacher's frames before the tokenizer).
        report: the content of ``report.json``.
        out: the run folder.
        orbit: the novel orbit cameras of the videos (off the trajectories).
    """

    scenes: list[Any]
    times: tuple[float, ...]
    samples: list[TrajectorySample]
    report: dict[str, Any]
    out: Path
    orbit: Cameras


# ---------------------------------------------------------------------------------------------- times
def check_times(times: Sequence[float]) -> tuple[float, ...]:
    """``times`` as floats once they are non-empty, finite, in [0, 1] and strictly increasing."""
    ts = tuple(float(t) for t in times)
    if not ts:
        raise Video4DError("--times: no time given")
    bad = [t for t in ts if not (math.isfinite(t) and 0.0 <= t <= 1.0)]
    if bad:
        raise Video4DError(f"--times: times are normalised to [0, 1] (0: first frame, 1: last), got {bad[0]:g}")
    if any(b <= a for a, b in zip(ts, ts[1:])):
        raise Video4DError(f"--times must increase strictly, got {', '.join(f'{t:g}' for t in ts)}")
    return ts


def parse_times(spec: str, frames: int) -> tuple[float, ...]:
    """Requested normalised times from a ``--times`` spec, increasing.

    ``"0,0.5,1"``: a list (sorted, duplicates dropped); ``"a:b:n"``: n evenly spaced times from a to b;
    ``"all"``: every source frame's time i / (frames - 1).
    """
    s = spec.strip().lower()
    try:
        if s == "all":
            ts = [i / (frames - 1) for i in range(frames)] if frames > 1 else [0.0]
        elif ":" in s:
            parts = s.split(":")
            if len(parts) != 3:
                raise ValueError
            a, b, n = float(parts[0]), float(parts[1]), int(parts[2])
            if n < 1:
                raise Video4DError(f"--times {spec}: the count n of a:b:n must be >= 1, got {n}")
            ts = [a] if n == 1 else [a + (b - a) * k / (n - 1) for k in range(n)]
        else:
            ts = [float(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise Video4DError(f"--times {spec!r}: expected a list (0,0.5,1), a range a:b:n or 'all'") from None
    return check_times(sorted(set(ts)))


def nearest_frame(t: float, frames: int) -> int:
    """The source frame whose time i / (frames - 1) is nearest to ``t``."""
    return min(frames - 1, max(0, round(t * (frames - 1))))


# ---------------------------------------------------------------------------------------------- sources
def world_source(world: Any, cfg: Video4DConfig) -> SourceVideo:
    """A moving world's source clip from the static origin camera (exact RGB and z-depth, frame i at i / (T - 1)),
    as ``lyra sdg --dynamic --source-motion static`` makes it."""
    from lyra.cameras import default_intrinsics
    from lyra.pipelines.sdg_dynamic import frame_times, source_cameras

    K = default_intrinsics(cfg.height, cfg.width, cfg.fov_x_deg)
    cams = source_cameras(K, cfg.height, cfg.width, cfg.frames, "static", cfg.seed)
    times = frame_times(cfg.frames)
    r = world.render(cams, times, supersample=cfg.supersample)
    return SourceVideo(r.rgb, r.depth, cams, times)


def read_depth_frames(path: str | os.PathLike) -> Tensor:
    """Per-frame z-depth [N, 1, H, W] (0 = invalid) from a folder of depth files (``.npy``, ``.npz``, 16-bit
    ``.png`` in millimetres, ``.exr``, ``.pfm``; frame order = sorted file names) or a depth zip of ``NNNNN.exr``
    frames (as ``lyra sdg --dynamic`` writes under ``flag/source/depth``)."""
    from lyra.data.exr import read_depth_zip
    from lyra.depth.files import DEPTH_SUFFIXES, load_depth

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: depth folder or zip not found")
    if p.is_file():
        if p.suffix.lower() != ".zip":
            raise Video4DError(p, "--depth takes a folder of per-frame depth files or a zip of NNNNN.exr frames")
        return read_depth_zip(p)
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in DEPTH_SUFFIXES)
    if not files:
        raise Video4DError(p, f"no depth files ({', '.join(DEPTH_SUFFIXES)}) in the folder")
    maps = [load_depth(f) for f in files]
    sizes = {tuple(m.shape) for m in maps}
    if len(sizes) != 1:
        raise Video4DError(p, f"depth files have different sizes {sorted(sizes)}")
    return torch.stack(maps)


def pick_frames(available: int, frames: int) -> list[int]:
    """``frames`` indices evenly spread over a clip of ``available`` frames (first and last included)."""
    if available < frames:
        raise Video4DError(f"the video has {available} frames, fewer than --frames {frames}")
    return [round(i * (available - 1) / (frames - 1)) for i in range(frames)]


def video_source(video: str | os.PathLike, depth: str | os.PathLike,
                 cfg: Video4DConfig) -> tuple[SourceVideo, float, dict[str, Any]]:
    """A video file + per-frame depth -> (source clip at the pipeline size, depth scale, info).

    The clip's T = ``cfg.frames`` frames are spread evenly over the video; the camera is static (identity poses) with
    a ``cfg.fov_x_deg`` horizontal field of view; every frame is centre-cropped and resized like the static
    pipeline's image, and the depth of the whole clip is scaled by one factor so that its median is
    ``cfg.target_median`` (None: kept).

    Returns:
        (source, scale applied to the depth, input info for the report).
    """
    from lyra.depth import normalize_scene_scale
    from lyra.pipelines.image_to_3d import prepare_source
    from lyra.pipelines.sdg_dynamic import frame_times
    from lyra.tokenizer.video_io import read_video

    rgb, fps = read_video(video)
    d = read_depth_frames(depth)
    if d.shape[0] != rgb.shape[0]:
        raise Video4DError(f"--depth {depth}: {d.shape[0]} depth maps for the {rgb.shape[0]} frames of {video}")
    idx = pick_frames(rgb.shape[0], cfg.frames)
    views = [prepare_source(rgb[i], d[i], None, cfg.height, cfg.width, target_median=None,
                            fov_x_deg=cfg.fov_x_deg)[0] for i in idx]
    depth_t = torch.stack([v.depth for v in views])  # type: ignore[misc]
    scale = 1.0
    if cfg.target_median is not None:
        depth_t, scale = normalize_scene_scale(depth_t, cfg.target_median)
    K = torch.stack([v.K for v in views]).float()
    cams = Cameras(torch.eye(4).repeat(len(idx), 1, 1), K, cfg.height, cfg.width)
    clip_fps = fps * (cfg.frames - 1) / max(1, idx[-1] - idx[0])  # rate of the picked frames in video time
    info = {"video": str(video), "depth": str(depth), "video_frames": int(rgb.shape[0]), "video_fps": fps,
            "picked_frames": idx, "clip_fps": clip_fps, "video_size": [int(rgb.shape[-2]), int(rgb.shape[-1])],
            "intrinsics": f"assumed ({cfg.fov_x_deg} deg horizontal FoV)", "camera": "static (identity poses)"}
    frames = torch.stack([v.image for v in views])
    return SourceVideo(frames, depth_t, cams, frame_times(cfg.frames)), float(scale), info


def source_view(source: SourceVideo, i: int) -> SourceView:
    """Frame ``i`` of a source clip as a static pipeline's source view."""
    return SourceView(source.frames[i], source.cameras.K[i], source.depth[i], source.cameras.w2c[i])


# ---------------------------------------------------------------------------------------------- trajectories
def dynamic_trajectories(source: SourceVideo, cfg: Video4DConfig) -> list[Cameras]:
    """The method's six trajectories anchored on the per-frame source cameras (``w2c_v,i = M_v,i @ w2c_src,i``),
    with the movement distances the dynamic SDG draws for seed ``cfg.seed`` (folders 0-5)."""
    from lyra.cameras import METHOD_TRAJECTORIES
    from lyra.pipelines.sdg_dynamic import anchored_trajectory, trajectory_distances

    dists = trajectory_distances(cfg.seed, cfg.movement_factor, flip=False)
    return [anchored_trajectory(spec.kind, source.cameras, d, cfg.center_depth)
            for spec, d in zip(METHOD_TRAJECTORIES, dists)]


@torch.no_grad()
def generate_trajectories(source: SourceVideo, trajectories: Sequence[Cameras], tokenizer: Any, cfg: Video4DConfig, *,
                          world: Any = None, progress: bool = True) -> list[TrajectorySample]:
    """Teacher frames (frame i at time t_i) and tokenizer latents of every trajectory.

    The samples' ``frames`` are the teacher's frames before the tokenizer (exact renders for ``oracle``, the
    inpainted 4D-cache warp for ``cache``); ``depth`` is the teacher's.
    """
    from tqdm import tqdm

    from lyra.generator import teacher_roundtrip
    from lyra.generator.cache import tokenizer_device
    from lyra.pipelines.sdg_dynamic import _Teacher

    if cfg.generator == "oracle" and world is None:
        raise Video4DError("--generator oracle renders a procedural world: give --world SEED")
    teacher = _Teacher(cfg.generator, world, tokenizer, source, cfg.supersample, dict(cfg.generator_options))
    dev, order = tokenizer_device(tokenizer), list(range(len(source.cameras)))
    out = []
    for cams in tqdm(trajectories, desc="video4d teacher", unit="trajectory", disable=not progress):
        rgb, depth = teacher.frames(cams, order)
        latents, _ = teacher_roundtrip(tokenizer, rgb.to(dev), decode=False)
        out.append(TrajectorySample(rgb.float().cpu(), latents, cams, depth.float().cpu()))
    return out


# ---------------------------------------------------------------------------------------------- decoder
def time_ignored(decoder: Any) -> bool:
    """Whether the decoder's output cannot depend on the time: no time conditioning, or zero convolution weights
    in both time embeddings (their tokens are then constant, exactly 0 after :meth:`with_time_conditioning`)."""
    if not decoder.config.use_time:
        return True
    return all(not m.proj.weight.detach().ne(0).any() for m in (decoder.patch_time_embed, decoder.patch_time_embed_tgt))


def shipped_dynamic_decoder(spec: Any, device: Any = "cpu") -> Any:
    """The shipped time-conditioned decoder of a shipped ``--decoder`` name's version (pocket-v1:
    ``lyra/assets/decoder-dynamic``), or None for a folder or a version without one."""
    from lyra.decoder import LyraDecoder
    from lyra.utils.shipped import shipped_dir, shipped_version

    v = shipped_version(spec)
    d = None if v is None else shipped_dir("dynamic_decoder", v)
    if d is None or not (d / "model.safetensors").is_file():
        return None
    return LyraDecoder.from_pretrained(d, device=device, dtype=torch.float32).eval()


def time_decoder(decoder: Any) -> Any:
    """A decoder that takes ``time=``: ``decoder`` itself when its config has ``use_time``, else its
    :meth:`~lyra.decoder.LyraDecoder.with_time_conditioning` copy (zero time embeddings: the static Gaussians)."""
    return decoder if decoder.config.use_time else decoder.with_time_conditioning().eval()


@torch.no_grad()
def decode_at_time(decoder: Any, tokenizer: Any, samples: Sequence[TrajectorySample], times_input: Tensor, t: float,
                   prune: float, cond: Any = None) -> tuple[Any, int]:
    """Fused, pruned Gaussians (CPU) of all trajectories at normalised time ``t``, and the count before pruning.

    Args:
        decoder: a time-conditioned decoder (``config.use_time``; :func:`time_decoder`).
        times_input: [T] normalised times of the trajectories' frames.
        cond: a :class:`lyra.train.conditioning.ConditioningCache` reused across times (its time part equals
            ``encode_time(tokenizer, times_input, t, H, W)``); None makes one.
    """
    from lyra.pipelines.image_to_3d import decode_samples
    from lyra.train.conditioning import ConditioningCache

    cond = ConditioningCache(tokenizer, device=decoder.device) if cond is None else cond
    cams = samples[0].cameras
    tc = cond.time(torch.as_tensor(times_input, dtype=torch.float32), float(t), cams.height, cams.width)
    return decode_samples(decoder, tokenizer, samples, prune, time=tc, cond=cond)


def frozen_instant(world: Any, source: SourceVideo, i: int, trajs: Sequence[Cameras], tokenizer: Any,
                   teacher: str) -> list[Tensor]:
    """Raw latents [C, T_l, h, w] of the trajectories of source frame ``i`` seen as a still image (every frame at
    time t_i): ``cache`` warps frame i (its depth and camera) along them, as the static pipeline does for a photo;
    ``oracle`` renders ``world`` frozen at t_i."""
    from lyra.generator import CacheGenerator, teacher_roundtrip

    if teacher == "oracle":
        frames = [world.render(c, float(source.times[i])).rgb for c in trajs]
    else:
        frames = [w.frames for w in CacheGenerator(tokenizer).warp(list(trajs), source_view(source, i))]
    return [teacher_roundtrip(tokenizer, f, False)[0] for f in frames]


@torch.no_grad()
def frame_baseline(decoder: Any, tokenizer: Any, world: Any, source: SourceVideo, trajs: Sequence[Cameras], i: int,
                   prune: float, teacher: str) -> Any:
    """The per-frame static baseline at source frame ``i``: the static decoder on the trajectories of that frozen
    instant (:func:`frozen_instant`, the same teacher) -> fused, pruned Gaussians (CPU)."""
    from lyra.pipelines.image_to_3d import decode_samples

    lat = frozen_instant(world, source, i, trajs, tokenizer, teacher)
    return decode_samples(decoder, tokenizer, [TrajectorySample(None, z, c) for z, c in zip(lat, trajs)], prune)[0]


# ---------------------------------------------------------------------------------------------- renders
def scene_schedule(n: int, k: int) -> list[int]:
    """Which of ``k`` scenes each of ``n`` video frames shows when time advances evenly over the video."""
    return [min(k - 1, j * k // n) for j in range(n)]


def render_through_time(scenes: Sequence[Any], cameras: Cameras, cfg: Video4DConfig) -> Tensor:
    """[N, 3, H, W]: camera j of ``cameras`` renders the scene :func:`scene_schedule` gives it (time advances while
    the camera moves)."""
    from lyra.pipelines.image_to_3d import render_views

    sched = scene_schedule(len(cameras), len(scenes))
    out = torch.zeros(len(cameras), 3, cameras.height, cameras.width)
    for k, g in enumerate(scenes):
        idx = [j for j, s in enumerate(sched) if s == k]
        if idx:
            out[idx] = render_views(g, cameras[idx], mode=cfg.mode, device=cfg.device, background=cfg.background)[0]
    return out


def render_fixed(scenes: Sequence[Any], camera: Cameras, cfg: Video4DConfig) -> tuple[Tensor, Tensor, Tensor]:
    """(rgb, depth, alpha), each [K, C, H, W]: every scene from one camera."""
    from lyra.pipelines.image_to_3d import render_views

    parts = [render_views(g, camera, mode=cfg.mode, device=cfg.device, background=cfg.background) for g in scenes]
    return tuple(torch.cat([p[c] for p in parts]) for c in range(3))  # type: ignore[return-value]


def preview(source: SourceVideo, times: Sequence[float], fixed: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """[3, rows·h, w]: one row per shown time (first, middle, last): source frame nearest that time | the novel
    fixed view at that time | its depth."""
    from lyra.pipelines.image_to_3d import preview_image

    shown = sorted({0, len(times) // 2, len(times) - 1})
    T = len(source.cameras)
    rows = [preview_image(source_view(source, nearest_frame(times[k], T)), fixed[0][k], fixed[1][k], fixed[2][k])
            for k in shown]
    return torch.cat(rows, dim=-2)


# ---------------------------------------------------------------------------------------------- metrics
@torch.no_grad()
def world_metrics_4d(scenes: Sequence[Any], times: Sequence[float], world: Any, cameras: Cameras, cfg: Video4DConfig,
                     baseline: Sequence[Any] | None) -> dict[str, Any]:
    """PSNR / SSIM per time at novel ``cameras`` against the world's exact renders at that time, for the pipeline
    and (when given) the per-frame static baseline's scenes (one per time)."""
    from lyra.eval import psnr, ssim
    from lyra.pipelines.image_to_3d import render_views

    def score(g: Any, gt: Tensor) -> dict[str, float]:
        x = render_views(g, cameras, mode=cfg.mode, device=cfg.device, background=cfg.background)[0]
        return {"psnr": float(psnr(x, gt).mean()), "ssim": float(ssim(x, gt))}

    per_time = []
    for k, (g, t) in enumerate(zip(scenes, times)):
        gt = world.render(cameras, t, supersample=2).rgb
        row: dict[str, Any] = {"time": t, "pipeline": score(g, gt)}
        if baseline is not None:
            row["baseline_per_frame_static"] = score(baseline[k], gt)
            row["baseline_frame"] = nearest_frame(t, cfg.frames)
            row["baseline_gaussians"] = len(baseline[k])
        per_time.append(row)

    def mean(key: str, m: str) -> float:
        return sum(r[key][m] for r in per_time) / len(per_time)

    summary = {"pipeline": {m: mean("pipeline", m) for m in ("psnr", "ssim")}}
    if baseline is not None:
        summary["baseline_per_frame_static"] = {m: mean("baseline_per_frame_static", m) for m in ("psnr", "ssim")}
    return {"cameras": len(cameras), "per_time": per_time, "mean": summary}


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process (and peak CUDA allocation when CUDA was used), in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"peak_rss_mb": rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


# ---------------------------------------------------------------------------------------------- the run
def run_video4d(source: SourceVideo, cfg: Video4DConfig, out: str | os.PathLike, *, world: Any = None,
                models: tuple[Any, Any] | None = None, timer: StageTimer | None = None,
                input_info: dict[str, Any] | None = None, depth_scale: float = 1.0, clip_fps: float = 24.0,
                units: str = "input depth unit x depth_scale") -> Video4DResult:
    """Trajectories -> teacher -> decoder per time -> outputs in ``out`` (see the module docstring).

    Args:
        source: the source clip (:func:`world_source`, :func:`video_source`), ``cfg.frames`` frames.
        world: the procedural world (``oracle`` teacher; also enables the metrics).
        models: (tokenizer, decoder) already loaded (else :func:`lyra.pipelines.load_models`).
        clip_fps: frame rate of the source clip (the sequence's ``fps``).
        units: what one scene unit is (the sequence's ``units``).
    """
    from tqdm import tqdm

    from lyra.cameras import save_cameras_npz
    from lyra.gaussians.sequence import write_sequence
    from lyra.pipelines.image_to_3d import load_models, novel_orbit
    from lyra.pipelines.report import write_report
    from lyra.render.video import write_video
    from lyra.train.conditioning import ConditioningCache
    from lyra.utils.images import save_png

    cfg.validate()
    timer = timer or StageTimer()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    T = len(source.cameras)
    if T != cfg.frames or (source.cameras.height, source.cameras.width) != (cfg.height, cfg.width):
        raise Video4DError(f"the source clip is {T} frames of {source.cameras.height}x{source.cameras.width}, not "
                           f"--frames {cfg.frames} of {cfg.height}x{cfg.width}")
    if models is None:
        with timer.stage("load models", f"tokenizer {cfg.tokenizer}, decoder {cfg.decoder}"):
            models = load_models(cfg)
    tok, dec = models
    dec_t = time_decoder(shipped_dynamic_decoder(cfg.decoder, dec.device) or dec)
    untrained = time_ignored(dec_t)
    if untrained:
        timer.warn(UNTRAINED_NOTE)

    with timer.stage("trajectories"):
        trajs = dynamic_trajectories(source, cfg)
        orbit = novel_orbit(source_view(source, 0), cfg.orbit_frames)
    with timer.stage("generate", f"{cfg.generator}, {len(trajs)} trajectories x {T} frames"):
        samples = generate_trajectories(source, trajs, tok, cfg, world=world, progress=not timer.quiet)

    times = cfg.times
    scenes, counts, per_time_s = [], [], []
    cond = ConditioningCache(tok, device=dec_t.device)
    with timer.stage("decode", f"{len(times)} times, prune {cfg.prune}"):
        for t in tqdm(times, desc="video4d decode", unit="time", disable=timer.quiet):
            t0 = time.perf_counter()
            g, n_all = decode_at_time(dec_t, tok, samples, source.times, t, cfg.prune, cond)
            per_time_s.append(time.perf_counter() - t0)
            scenes.append(g)
            counts.append({"time": t, "decoded": int(n_all), "kept": len(g)})

    n_orbit, mid = len(orbit), len(times) // 2
    fixed_cam = orbit[n_orbit // 8]
    with timer.stage("render", f"{n_orbit} + {len(times)} + {n_orbit} frames, {cfg.mode}"):
        through = render_through_time(scenes, orbit, cfg)
        fixed = render_fixed(scenes, fixed_cam, cfg)
        frozen = render_through_time([scenes[mid]], orbit, cfg)
    hold = max(1, math.ceil(n_orbit / len(times)))  # each time's fixed-camera frame is held for `hold` video frames

    metrics = None
    if world is not None:
        static = None if dec.config.use_time else dec
        step = max(1, n_orbit // cfg.metric_cameras)
        mcams = orbit[list(range(0, n_orbit, step))[: cfg.metric_cameras]]
        with timer.stage("metrics", f"{len(mcams)} novel cameras x {len(times)} times vs exact world renders"):
            base = None if static is None else [frame_baseline(static, tok, world, source, trajs, nearest_frame(t, T),
                                                               cfg.prune, cfg.generator)
                                                for t in times]
            metrics = world_metrics_4d(scenes, times, world, mcams, cfg, base)
            metrics["baseline"] = ("per-frame static: the static decoder on source frame i (nearest to t) as a still "
                                   "image: the six trajectories of that frozen instant from the same teacher, "
                                   "pruned as the pipeline")
            if static is None:
                metrics["baseline_note"] = ("per-frame static baseline skipped: --decoder is time-conditioned "
                                            "(the baseline runs a static decoder)")

    with timer.stage("write outputs"):
        save_cameras_npz(out / OUTPUT_FILES["cameras"], Cameras.cat(trajs))
        write_sequence(out, scenes, times, fps=clip_fps, video_frames=T, units=units, cameras=OUTPUT_FILES["cameras"])
        write_video(out / OUTPUT_FILES["camera_through_time"], through, fps=cfg.fps)
        write_video(out / OUTPUT_FILES["fixed_camera"], fixed[0].repeat_interleave(hold, 0), fps=cfg.fps)
        write_video(out / OUTPUT_FILES["frozen_time"], frozen, fps=cfg.fps)
        save_png(out / OUTPUT_FILES["preview"], preview(source, times, fixed))

    report: dict[str, Any] = {
        "input": input_info or {},
        "depth_scale": depth_scale,
        "scene_units": units,
        "settings": asdict(cfg),
        "times": list(times),
        "source_frames": T,
        "source_times": [float(x) for x in source.times],
        "trajectories": len(trajs),
        "generator": cfg.generator,
        "decoder": {"source": str(cfg.decoder), "parameters": int(dec_t.num_parameters()),
                    "given_use_time": bool(dec.config.use_time)},
        "decoder_time_conditioned": not untrained,
        "tokenizer": str(cfg.tokenizer),
        "gaussians": counts,
        "decode_s_per_time": per_time_s,
        "videos": {"camera_through_time": {"frames": int(through.shape[0]), "orbit_frames": n_orbit},
                   "fixed_camera": {"frames": int(fixed[0].shape[0] * hold), "frames_per_time": hold,
                                    "camera": "novel orbit camera " + str(n_orbit // 8)},
                   "frozen_time": {"frames": int(frozen.shape[0]), "time": times[mid]}},
        "outputs": dict(OUTPUT_FILES, frames=[f"frame_{k:04d}.ply" for k in range(len(times))]),
    }
    if untrained:
        report["note"] = UNTRAINED_NOTE
    if metrics is not None:
        report["metrics"] = metrics
    report["timings_s"] = dict(timer.timings)
    report["total_s"] = sum(timer.timings.values())
    report["memory"] = peak_memory_mb()
    write_report(out / OUTPUT_FILES["report"], report)
    return Video4DResult(scenes, times, samples, report, out, orbit)
