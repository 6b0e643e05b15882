"""``lyra generate IMAGE | --prompt TEXT``: one image (or a prompt) -> a 3D Gaussian scene and its outputs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any


def add_pipeline_args(p: argparse.ArgumentParser, default_out: str | None = None) -> None:
    """Options shared by ``lyra generate`` and ``lyra demo`` (models, resolution, rendering); model, resolution and
    pruning defaults come from a shipped version's setting (:mod:`lyra.utils.shipped`, see :func:`apply_version`)."""
    from lyra.utils.shipped import DEFAULT_VERSION, SETTINGS, SHIPPED_NAMES

    v1, v2 = SETTINGS["pocket-v1"], SETTINGS["pocket-v2"]
    if default_out is None:
        p.add_argument("--out", required=True, help="output folder (created)")
    else:
        p.add_argument("--out", default=default_out, help=f"output folder (default {default_out})")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--version", choices=SHIPPED_NAMES, metavar="NAME",
                   help="shipped version whose models and setting give the defaults of --tokenizer, --decoder, "
                   "--height, --width, --frames, --prune, --flythrough-stride and --target-median: pocket-v2 "
                   f"({v2.height}x{v2.width}, {v2.frames} frames, prune {v2.prune}) or pocket-v1 ({v1.height}x"
                   f"{v1.width}, {v1.frames} frames: the fast setting); default: the version --tokenizer or --decoder "
                   f"names, else {DEFAULT_VERSION}")
    p.add_argument("--frames", type=int, help=f"frames per trajectory, 1 + 8k (default: the version's, {v2.frames} / "
                   f"{v1.frames})")
    p.add_argument("--height", type=int, help=f"image height, multiple of 16 (default: the version's, {v2.height} / "
                   f"{v1.height})")
    p.add_argument("--width", type=int, help=f"image width, multiple of 16 (default: the version's, {v2.width} / "
                   f"{v1.width})")
    p.add_argument("--decoder", help=f"a shipped version ('shipped' = {DEFAULT_VERSION}, 'pocket-v1') or a decoder "
                   "folder (config.json + model.safetensors); default: the version's")
    p.add_argument("--tokenizer", help=f"a shipped version ('shipped' = {DEFAULT_VERSION}, 'pocket-v1') or a tokenizer "
                   "folder (native, Cosmos); a shipped decoder needs the tokenizer of its version; default: the "
                   "version's")
    p.add_argument("--prune", type=float, help="fraction of Gaussians dropped by opacity (default: the version's, "
                   f"{v2.prune} / {v1.prune})")
    p.add_argument("--mode", choices=("classic", "eval3d"), default="classic", help="rasterizer mode of the outputs")
    p.add_argument("--orbit-frames", type=int, default=48, help="novel-orbit frames after the "
                   "trajectories in the fly-through (default 48)")
    p.add_argument("--flythrough-stride", type=int,
                   help="show every k-th frame of each trajectory in the fly-through (1: all; default: the version's, "
                   f"{v1.flythrough_stride} / {v2.flythrough_stride})")
    p.add_argument("--target-median", type=float, metavar="M",
                   help="scene scale of a photo input: its median depth becomes M scene units, which sets the "
                   f"parallax of the fixed trajectories (default: the version's, {v1.target_median} / "
                   f"{v2.target_median}; the pocket models were trained on procedural worlds whose source views have "
                   "median depth 6.85, 10-90 %%: 5.7-8.0)")
    p.add_argument("--anchor-source", action=argparse.BooleanOptionalAction, default=True,
                   help="keep the input view exact: the input image lifted with its depth replaces the decoded "
                   "Gaussians it already explains, and the decoder fills what it does not see (default: on; "
                   "--no-anchor-source: the decoder's Gaussians alone, the method's output)")
    p.add_argument("--seed", type=int, default=0, help="trajectory distances and sampling seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no per-stage lines")


def add_diffusion_args(p: argparse.ArgumentParser) -> None:
    """``--diffusion-model DIR``, ``--diffusion-steps N``, ``--diffusion-guidance G`` and ``--diffusion-noise-scale
    TAU`` of the ``diffusion`` generator."""
    p.add_argument("--diffusion-model", metavar="DIR", help="diffusion generator: weights folder (config.json + "
                   "model.safetensors, e.g. a `lyra teacher train` checkpoint, or the official GEN3C-Cosmos-7B "
                   "model.pt)")
    p.add_argument("--diffusion-steps", type=int, default=35, help="diffusion generator: sampler steps (default 35, "
                   "the official count)")
    p.add_argument("--diffusion-guidance", type=float, default=None, help="diffusion generator: guidance g of "
                   "F_c + g(F_c - F_u) (default: the weights folder's generation_config.json, else 1, official; the "
                   "shipped pocket teacher: 0; 0 halves the cost)")
    p.add_argument("--diffusion-noise-scale", type=float, default=None, metavar="TAU", help="diffusion generator: "
                   "scale of the sampler's initial noise, in [0, 1] (default: the weights folder's "
                   "generation_config.json, else 1, official)")


def diffusion_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``diffusion`` generator's options from the arguments; fails early (one line) on missing weights."""
    from lyra.cli.main import CLIError
    from lyra.generator.diffusion.generator import resolve_model_dir

    if args.diffusion_steps < 1:
        raise CLIError(f"--diffusion-steps must be >= 1, got {args.diffusion_steps}")
    folder = resolve_model_dir(args.diffusion_model)
    check_diffusion_tokenizer(folder, getattr(args, "tokenizer", None))
    from lyra.generator.diffusion.generator import default_guidance, default_noise_scale

    guidance = args.diffusion_guidance
    if guidance is None:
        guidance = default_guidance(args.diffusion_model)
    tau = args.diffusion_noise_scale
    if tau is None:
        tau = default_noise_scale(args.diffusion_model)  # checked there
    elif not 0 <= tau <= 1:
        raise CLIError(f"--diffusion-noise-scale must be in [0, 1], got {tau}")
    return {"model": args.diffusion_model, "steps": args.diffusion_steps, "guidance": guidance, "noise_scale": tau}


def check_diffusion_tokenizer(folder: Path, tokenizer: object) -> None:
    """CLIError when a pocket diffusion network records a shipped tokenizer version other than ``tokenizer``'s."""
    from lyra.cli.main import CLIError
    from lyra.generator.diffusion import Gen3CNetConfig
    from lyra.utils.shipped import shipped_version
    from lyra.utils.weights import CONFIG_NAME

    if not (folder / CONFIG_NAME).is_file() or tokenizer is None:
        return
    wanted = Gen3CNetConfig.load(folder / CONFIG_NAME).tokenizer
    have = shipped_version(tokenizer)
    if wanted and have and shipped_version(wanted) and shipped_version(wanted) != have:
        raise CLIError(f"--diffusion-model {folder} samples the latents of tokenizer {wanted}, not of --tokenizer "
                       f"{tokenizer} ({have}); add --tokenizer {wanted} and a decoder of that version")


def apply_version(args: argparse.Namespace) -> str:
    """Fill the model, resolution and pruning options left unset from a shipped version's setting; returns the
    version. The version is ``--version``, else the one ``--tokenizer`` or ``--decoder`` names, else the default
    (idempotent: a second call changes nothing)."""
    from lyra.utils.shipped import DEFAULT_VERSION, SETTINGS, shipped_version

    version = (shipped_version(args.version) if getattr(args, "version", None) else None) \
        or (shipped_version(args.tokenizer) if args.tokenizer else None) \
        or (shipped_version(args.decoder) if args.decoder else None) or DEFAULT_VERSION
    s = SETTINGS[version]
    for name, value in (("tokenizer", version), ("decoder", version), ("height", s.height), ("width", s.width),
                        ("frames", s.frames), ("prune", s.prune), ("flythrough_stride", s.flythrough_stride)):
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    args.version = version
    return version


def config_from_args(args: argparse.Namespace, generator: str, **extra) -> object:
    from lyra.cli.main import CLIError
    from lyra.pipelines import GenerateConfig
    from lyra.utils.shipped import SETTINGS

    version = apply_version(args)
    median = getattr(args, "target_median", None)
    if median is not None:
        if "target_median" in extra:  # world inputs keep their own scale
            raise CLIError("--target-median applies to a photo input; a procedural world keeps its own scale")
        extra["target_median"] = median
    elif "target_median" not in extra:
        extra["target_median"] = SETTINGS[version].target_median
    return GenerateConfig(height=args.height, width=args.width, frames=args.frames, generator=generator,
                          tokenizer=args.tokenizer, decoder=args.decoder, prune=args.prune, mode=args.mode,
                          device=args.device, seed=args.seed, orbit_frames=args.orbit_frames,
                          flythrough_stride=args.flythrough_stride, anchor_source=args.anchor_source,
                          **extra).validate()


def print_summary(result, out: Path) -> None:
    """The closing lines: Gaussian count, total time, where the outputs are."""
    r = result.report
    g = r["gaussians"]
    print(f"done in {r['total_s']:.1f} s: {g['kept']} Gaussians (of {g['decoded']} decoded), "
          f"depth scale {r['depth_scale']:.4g}")
    for name in ("scene.ply", "scene.spz", "flythrough.mp4", "preview.png", "cameras.npz", "report.json"):
        print(f"  {out / name}")


def build_outputs(out: str, build: Callable[[Path], Any]) -> Any:
    """Run ``build(folder)`` in a temporary folder beside ``out`` that becomes ``out`` only when it returns.

    A failed or interrupted run leaves no partial output folder (and an existing ``out`` keeps its old files).
    Returns the pipeline result, its ``out`` set to the final folder.
    """
    from lyra.pipelines.image_to_3d import OUTPUT_FILES
    from lyra.utils.files import atomic_dir

    with atomic_dir(out, stale=(*OUTPUT_FILES.values(), "input.png")) as tmp:
        result = build(tmp)
    result.out = Path(out)
    return result


def run(args: argparse.Namespace) -> int:
    from lyra.cli.main import CLIError
    from lyra.pipelines import StageTimer

    timer = StageTimer(quiet=args.quiet)
    apply_version(args)
    gen_opts: dict = {}
    if args.generator == "gen3c":
        if not args.gen3c:
            raise CLIError("--generator gen3c needs --gen3c DIR (the GEN3C output folder, view folders 0..5)")
        gen_opts = {"root": args.gen3c, "size": (args.height, args.width), "frames": args.frames}
        if args.target_median is not None:
            raise CLIError("--target-median does not apply to --generator gen3c (its videos fix the scale)")
    elif args.gen3c:
        raise CLIError("--gen3c DIR is only used with --generator gen3c")
    if args.generator == "diffusion":
        gen_opts = diffusion_options(args)
    elif args.diffusion_model:
        raise CLIError("--diffusion-model DIR is only used with --generator diffusion")
    if args.generator == "oracle":
        return _run_world(args, timer)
    if args.image and args.prompt:
        raise CLIError("give an IMAGE or --prompt TEXT, not both")
    if not args.image and not args.prompt:
        raise CLIError("give an IMAGE (a photo) or --prompt TEXT (with --t2i-model DIR)")
    cfg = config_from_args(args, args.generator, generator_options=gen_opts, fov_x_deg=args.fov)
    if args.depth_scale is not None and args.depth is None:
        raise CLIError("--depth-scale only applies to --depth FILE")
    result = build_outputs(args.out, lambda out: _run_image(args, cfg, timer, out))
    print_summary(result, Path(args.out))
    return 0


def _run_image(args: argparse.Namespace, cfg: Any, timer: Any, out: Path) -> Any:
    """The image (or prompt) pipeline, writing into ``out``."""
    from lyra.pipelines import generate_from_image, run_pipeline

    image, info = args.image, {}
    if args.prompt:
        from lyra.pipelines import load_text_to_image, text_to_image
        from lyra.utils.images import save_png

        with timer.stage("text to image", args.t2i_model or "no model"):
            pipe = load_text_to_image(args.t2i_model, device=args.device)
            image = text_to_image(args.prompt, pipe, seed=args.seed, steps=args.t2i_steps)
        save_png(out / "input.png", image)
        info = {"prompt": args.prompt, "t2i_model": args.t2i_model, "image": "input.png"}
    if args.generator != "gen3c":
        return generate_from_image(image, cfg, out, depth_file=args.depth, depth_scale=args.depth_scale,
                                   stereo_right=args.stereo, calib=args.calib, depth_model=args.depth_model,
                                   timer=timer, input_info=info)
    import torch

    from lyra.pipelines import load_models, prepare_source
    from lyra.utils.images import load_image

    # the GEN3C run already holds the trajectories; the image only gives the preview (no depth needed)
    img = load_image(image) if isinstance(image, str) else image
    cfg_models = load_models(cfg)
    source, _ = prepare_source(img, torch.ones(1, *img.shape[-2:]), None, cfg.height, cfg.width,
                               target_median=None, fov_x_deg=cfg.fov_x_deg)
    source = type(source)(source.image, source.K, None)
    return run_pipeline(source, cfg, out, models=cfg_models, timer=timer,
                        input_info={"image": str(args.image), "gen3c": args.gen3c})


def _run_world(args: argparse.Namespace, timer) -> int:
    from lyra.cli.main import CLIError
    from lyra.pipelines import load_models, run_pipeline, source_from_world
    from lyra.world import World, generate_world

    if args.image or args.prompt:
        raise CLIError("--generator oracle renders a procedural world: give --world SEED|FILE.json, not an image")
    w = args.world or "0"
    world = generate_world(int(w), "random") if w.isdigit() else World.load_json(w)
    cfg = config_from_args(args, "oracle", target_median=None, fov_x_deg=args.fov)
    with timer.stage("load models", f"tokenizer {cfg.tokenizer}, decoder {cfg.decoder}"):
        models = load_models(cfg)
    source = source_from_world(world, models[0], cfg)
    result = build_outputs(args.out, lambda out: run_pipeline(source, cfg, out, world=world, models=models,
                                                              timer=timer, input_info={"world": w,
                                                                                       "world_kind": world.kind}))
    print_summary(result, Path(args.out))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="one image (or a text prompt) -> a 3D Gaussian scene (PLY, SPZ, mp4, ...)",
                       description="Image -> depth -> six trajectories -> generator -> latent 3DGS decoder -> "
                       "scene.ply, scene.spz, flythrough.mp4, preview.png, cameras.npz, report.json.")
    p.add_argument("image", nargs="?", help="input photo (PNG/JPEG)")
    depth = p.add_argument_group("depth of the input (exactly one)")
    depth.add_argument("--depth", help="depth file: npy/npz/png16/exr/pfm (z-depth)")
    depth.add_argument("--depth-scale", type=float, metavar="S",
                       help="divide the depth file's values by S (16-bit PNG default 1000 = millimetres; others 1)")
    depth.add_argument("--stereo", metavar="RIGHT", help="rectified right image of a stereo pair")
    depth.add_argument("--calib", help="Middlebury calib.txt of the stereo pair")
    depth.add_argument("--depth-model", metavar="DIR|ID", help="transformers depth model: a local folder or a "
                       "Hugging Face id, e.g. depth-anything/Depth-Anything-V2-Small-hf (cached; @REVISION optional)")
    p.add_argument("--fov", type=float, default=60.0,
                   help="horizontal field of view (deg) when the depth source gives no intrinsics (default 60)")
    p.add_argument("--generator", default="cache", choices=("cache", "oracle", "gen3c", "diffusion"),
                   help="cache: warp + inpaint (default); oracle: a procedural world (--world); "
                   "gen3c: GEN3C outputs made on a GPU (--gen3c DIR); diffusion: the GEN3C DiT (--diffusion-model DIR)")
    p.add_argument("--world", help="oracle generator: world seed or world JSON file (default seed 0)")
    p.add_argument("--gen3c", metavar="DIR", help="gen3c generator: the GEN3C output folder (official layout)")
    add_diffusion_args(p)
    t2i = p.add_argument_group("text to image")
    t2i.add_argument("--prompt", help="make the input image from this text first")
    t2i.add_argument("--t2i-model", metavar="DIR|ID", help="diffusers text-to-image pipeline: a local folder or a "
                     "Hugging Face id (owner/name[@revision], cached)")
    t2i.add_argument("--t2i-steps", type=int, help="denoising steps (default: the pipeline's)")
    add_pipeline_args(p)
    p.set_defaults(func=run)
