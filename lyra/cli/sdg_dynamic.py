"""``lyra sdg --dynamic``: the options and the run of dynamic SDG (moving worlds, 12 time-aligned trajectories).

Wired into ``lyra sdg`` (:mod:`lyra.cli.sdg_cmd`): :func:`add_dynamic_arguments` adds the flags, :func:`run_dynamic`
runs when ``--dynamic`` is given.
"""

from __future__ import annotations

import argparse


def add_dynamic_arguments(p: argparse.ArgumentParser) -> None:
    """The dynamic-SDG flags of ``lyra sdg``."""
    g = p.add_argument_group("dynamic SDG (video -> 4D training data)")
    g.add_argument("--dynamic", action="store_true",
                   help="moving worlds: a source video (flag/source/) and six trajectories whose frame t shows time t "
                        "(folders 0-5), plus time-reversed supervision (folders 6-11); generators oracle or cache")
    g.add_argument("--source-motion", default="static", choices=("static", "slow"),
                   help="camera of the source video: static (default) or slow (drifts 5-15 cm, turns <= 5 degrees)")
    g.add_argument("--no-flip", action="store_true", help="skip the time-reversed folders 6-11")


def run_dynamic(args: argparse.Namespace) -> int:
    """``lyra sdg --dynamic ...`` (the other flags as for static SDG)."""
    import torch

    from lyra.cli.main import CLIError
    from lyra.data.writer import WriteOptions
    from lyra.pipelines.sdg_dynamic import DynamicSDGConfig, run_dynamic_sdg
    from lyra.tokenizer import load_tokenizer

    if args.scenes < 1:
        raise CLIError(f"--scenes must be >= 1, got {args.scenes}")
    if args.supersample < 1:
        raise CLIError(f"--supersample must be >= 1, got {args.supersample}")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = DynamicSDGConfig(scenes=args.scenes, seed=args.seed, frames=args.frames, height=args.height,
                           width=args.width, kind=args.kind, photos=args.photos, generator=args.generator,
                           world=args.world, tokenizer=str(args.tokenizer), fov_x_deg=args.fov,
                           movement_factor=args.movement_factor, supersample=args.supersample,
                           source_motion=args.source_motion, flip=not args.no_flip)
    tok = load_tokenizer(args.tokenizer)
    opts = WriteOptions(crf=args.crf, depth_half=not args.depth_float32)
    summary = run_dynamic_sdg(cfg, args.out, tok, options=opts, progress=not args.quiet)
    n_w, n_s = len(summary["written"]), len(summary["skipped"])
    timing = f", {summary['seconds_per_scene']:.1f} s per scene" if n_w else ""
    print(f"{args.out}: {n_w} dynamic scenes written, {n_s} already complete{timing}")
    return 0
