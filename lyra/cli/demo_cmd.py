"""``lyra demo``: the whole pipeline on a real photo (or a procedural world) with the shipped weights, on CPU.

Default: the rectified Middlebury "Motorcycle" left image bundled with scikit-image, with metric depth from its
ground-truth disparity and its calibrated intrinsics -> cache generator -> decoder -> outputs in ./lyra_demo.
``--world``: a procedural room seen from its origin camera -> a generator (``--generator``: oracle by default,
cache or diffusion) -> decoder, plus PSNR/SSIM at novel cameras against the world's exact renders, beside the plain
depth-lifting baseline (photo worlds show held-out photos only); report.json records which generator ran.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lyra.cli.generate_cmd import (
    add_diffusion_args,
    add_pipeline_args,
    apply_version,
    build_outputs,
    config_from_args,
    diffusion_options,
    print_summary,
)
from lyra.world.generate import WORLD_KINDS


def generator_choice(args: argparse.Namespace) -> tuple[str, dict]:
    """(generator name, its options): ``--generator`` or the default (oracle with ``--world``, else cache)."""
    from lyra.cli.main import CLIError

    name = args.generator or ("oracle" if args.world else "cache")
    if name == "oracle" and not args.world:
        raise CLIError("--generator oracle renders a procedural world: add --world")
    if name != "diffusion":
        if args.diffusion_model:
            raise CLIError("--diffusion-model DIR is only used with --generator diffusion")
        return name, {}
    import lyra.generator.diffusion  # noqa: F401 - registers "diffusion"

    return name, diffusion_options(args)


def run(args: argparse.Namespace) -> int:
    from lyra.pipelines import StageTimer

    timer = StageTimer(quiet=args.quiet)
    apply_version(args)
    out = Path(args.out)
    name, options = generator_choice(args)
    if args.world:
        return _run_world(args, timer, out, name, options)
    from lyra.depth import motorcycle_depth, motorcycle_right_view
    from lyra.pipelines import generate_from_image, novel_view_metrics, stereo_view

    cfg = config_from_args(args, name, generator_options=options)
    with timer.stage("example photo", "Middlebury Motorcycle (scikit-image), ground-truth depth"):
        image, depth, K = motorcycle_depth()
        right, K_right, baseline = motorcycle_right_view()
    info = {"image": "skimage.data.stereo_motorcycle (left)",
            "depth_source": "ground-truth disparity + calibration (metric)"}

    def build(tmp: Path):
        result = generate_from_image(image, cfg, tmp, depth=depth, K=K, timer=timer, input_info=info)
        with timer.stage("metrics", "the right camera of the stereo pair vs the real right image"):
            cams, target = stereo_view(right, K_right, baseline, result.report["depth_scale"], cfg.height, cfg.width)
            result.report["metrics"] = {"view": "stereo right camera (real photo)",
                                        **novel_view_metrics(result, result.source, cfg, cams, target)}
        return _rewrite_report(result, timer, tmp)

    result = build_outputs(args.out, build)
    print_summary(result, out)
    p, b = result.report["metrics"]["pipeline"], result.report["metrics"]["baseline_depth_lifting"]
    d = result.report["metrics"].get("decoder_only")
    alone = f"; the decoder alone PSNR {d['psnr']:.2f} dB, SSIM {d['ssim']:.3f}" if d else ""
    print(f"the stereo pair's right camera, vs the real right photo: pipeline PSNR {p['psnr']:.2f} dB, "
          f"SSIM {p['ssim']:.3f}{alone}; depth lifting PSNR {b['psnr']:.2f} dB, SSIM {b['ssim']:.3f}")
    print(f"look at {out / 'preview.png'} (input | novel view | its depth) and {out / 'flythrough.mp4'}; "
          f"`lyra view {out / 'scene.ply'}` opens the scene in a browser")
    return 0


def _run_world(args: argparse.Namespace, timer, out: Path, name: str, options: dict) -> int:
    from lyra.pipelines import load_models, run_pipeline, source_from_world, world_metrics
    from lyra.world import generate_world

    world = generate_world(args.world_seed, args.world_kind, photos="heldout")  # evaluation: never training photos
    cfg = config_from_args(args, name, generator_options=options, target_median=None)
    with timer.stage("load models", f"tokenizer {cfg.tokenizer}, decoder {cfg.decoder}"):
        models = load_models(cfg)
    with timer.stage("world source view", f"{world.kind} seed {args.world_seed}"):
        source = source_from_world(world, models[0], cfg)

    def build(tmp: Path):
        result = run_pipeline(source, cfg, tmp, world=world, models=models, timer=timer,
                              input_info={"world_seed": args.world_seed, "world_kind": world.kind})
        with timer.stage("metrics", f"{cfg.orbit_frames} novel cameras vs exact world renders"):
            result.report["metrics"] = {"generator": name, **world_metrics(result, world, source, cfg)}
        result.report["generator"] = {"name": name, **options}
        return _rewrite_report(result, timer, tmp)

    result = build_outputs(args.out, build)
    m = result.report["metrics"]
    print_summary(result, out)
    p, b = m["pipeline"], m["baseline_depth_lifting"]
    print(f"novel views ({m['cameras']} cameras off the trajectories), vs the world's exact renders:")
    print(f"  pipeline ({name} generator, decoder, {m['pipeline_gaussians']} Gaussians):  PSNR {p['psnr']:.2f} dB, "
          f"SSIM {p['ssim']:.3f}")
    if "decoder_only" in m:
        d = m["decoder_only"]
        print(f"  decoder alone (before anchoring to the source view):  PSNR {d['psnr']:.2f} dB, SSIM {d['ssim']:.3f}")
    print(f"  baseline (depth lifting, {m['baseline_gaussians']} Gaussians):  PSNR {b['psnr']:.2f} dB, "
          f"SSIM {b['ssim']:.3f}")
    return 0


def _rewrite_report(result, timer, folder: Path):
    """``report.json`` again, with what was added after the pipeline wrote it and the timings of every stage."""
    from lyra.pipelines import write_report

    result.report["timings_s"] = dict(timer.timings)
    result.report["total_s"] = sum(timer.timings.values())
    write_report(folder / "report.json", result.report)
    return result


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the whole pipeline on a bundled real photo (or --world), CPU, shipped weights",
                       description="Middlebury Motorcycle photo (scikit-image) with ground-truth depth -> 3D "
                       "Gaussians; --world: a procedural room with exact ground truth and novel-view metrics.")
    p.add_argument("--world", action="store_true", help="use a procedural world and report PSNR/SSIM at novel "
                   "cameras against its exact renders, beside the depth-lifting baseline")
    p.add_argument("--generator", choices=("cache", "diffusion", "oracle"),
                   help="teacher: oracle (exact world renders; the --world default), cache (warp + inpaint; the photo "
                   "default) or diffusion (the GEN3C DiT, --diffusion-model DIR)")
    add_diffusion_args(p)
    p.add_argument("--world-seed", type=int, default=0, help="procedural world seed (default 0)")
    p.add_argument("--world-kind", choices=WORLD_KINDS, default="room",
                   help="procedural world kind (default room)")
    add_pipeline_args(p, default_out="lyra_demo")
    p.set_defaults(func=run)
