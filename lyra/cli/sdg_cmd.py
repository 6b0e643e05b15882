"""``lyra sdg``: synthetic data generation (multi-trajectory teacher samples in the official layout)."""

from __future__ import annotations

import argparse

from lyra.utils.shipped import DEFAULT as D
from lyra.utils.shipped import DEFAULT_VERSION
from lyra.world.generate import MIX_WEIGHTS, WORLD_KINDS


def run(args: argparse.Namespace) -> int:
    import torch

    from lyra.cli.main import CLIError
    from lyra.data.writer import WriteOptions
    from lyra.pipelines.sdg import SDGConfig, run_sdg
    from lyra.tokenizer import load_tokenizer

    if args.scenes < 1:
        raise CLIError(f"--scenes must be >= 1, got {args.scenes}")
    if args.supersample < 1:
        raise CLIError(f"--supersample must be >= 1, got {args.supersample}")
    if args.diffusion_model and args.generator != "diffusion":
        raise CLIError("--diffusion-model DIR is only used with --generator diffusion")
    if args.threads:
        torch.set_num_threads(args.threads)
    fields = dict(scenes=args.scenes, seed=args.seed, frames=args.frames, height=args.height, width=args.width,
                  kind=args.kind, photos=args.photos, generator=args.generator, world=args.world,
                  tokenizer=str(args.tokenizer), fov_x_deg=args.fov, movement_factor=args.movement_factor,
                  supersample=args.supersample)
    opts = WriteOptions(crf=args.crf, depth_half=not args.depth_float32)
    if args.dynamic:  # moving worlds, 12 time-aligned trajectories (lyra.pipelines.sdg_dynamic)
        from lyra.pipelines.sdg_dynamic import DynamicSDGConfig, run_dynamic_sdg

        cfg = DynamicSDGConfig(**fields, source_motion=args.source_motion, flip=not args.no_flip)
        summary = run_dynamic_sdg(cfg, args.out, load_tokenizer(args.tokenizer), options=opts,
                                  progress=not args.quiet)
    else:
        gen_opts: dict = {}
        if args.generator == "diffusion":
            from lyra.cli.generate_cmd import diffusion_options

            gen_opts = diffusion_options(args)  # registers "diffusion"; one line when the weights are missing
        summary = run_sdg(SDGConfig(**fields), args.out, load_tokenizer(args.tokenizer), options=opts,
                          progress=not args.quiet, generator_options=gen_opts)
    n_w, n_s = len(summary["written"]), len(summary["skipped"])
    timing = f", {summary['seconds_per_scene']:.1f} s per scene" if n_w else ""
    print(f"{args.out}: {n_w} {'dynamic ' if args.dynamic else ''}scenes written, {n_s} already complete{timing}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sdg", help="generate multi-trajectory training data (latents, decoded frames, cameras, "
                                   "depth) in the official Lyra SDG layout; resumable")
    p.add_argument("--generator", default="oracle", help="generator backend: oracle (default), cache, diffusion "
                   "(--diffusion-model DIR) or any registered name")
    from lyra.cli.generate_cmd import add_diffusion_args

    add_diffusion_args(p)
    p.add_argument("--world", default="procedural", choices=("procedural",), help="scene source (procedural)")
    mix = ", ".join(f"{k} {100 * w:.0f}%%" for k, w in MIX_WEIGHTS.items())  # %% : argparse formats help with %
    p.add_argument("--kind", default="mix", choices=WORLD_KINDS,
                   help=f"procedural world kind: room, yard, photo (real photographs on walls, floor, boxes and "
                        f"free-standing layers), random (room or yard) or mix ({mix}, by scene seed; the default)")
    p.add_argument("--photos", default="train", choices=("train", "heldout"),
                   help="photos of photo worlds: train (default) or heldout (evaluation data only)")
    p.add_argument("--scenes", type=int, required=True, help="number of scenes")
    p.add_argument("--out", required=True, help="dataset folder (created; an interrupted run resumes there)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--frames", type=int, default=D.frames,
                   help=f"frames per trajectory, 1 + 8k (default {D.frames}; pocket-v1: 17 at 64 x 112)")
    p.add_argument("--height", type=int, default=D.height, help=f"image height (default {D.height})")
    p.add_argument("--width", type=int, default=D.width, help=f"image width (default {D.width})")
    p.add_argument("--fov", type=float, default=60.0, help="horizontal field of view in degrees (default 60)")
    p.add_argument("--supersample", type=int, default=1,
                   help="s x s rays per pixel for the RGB of exact world renders (default 1; 2 anti-aliases photos)")
    p.add_argument("--movement-factor", type=float, default=1.0, help="scales every trajectory's movement")
    p.add_argument("--tokenizer", default="shipped", help=f"'shipped' (= {DEFAULT_VERSION}), 'pocket-v1' or a "
                   "tokenizer folder (native, Cosmos)")
    p.add_argument("--crf", type=int, default=18, help="x264 quality of the rgb mp4s (default 18; 0 lossless)")
    p.add_argument("--depth-float32", action="store_true", help="write float32 EXR depth (default half, as NVIDIA)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    from lyra.cli.sdg_dynamic import add_dynamic_arguments

    add_dynamic_arguments(p)
    p.set_defaults(func=run)
