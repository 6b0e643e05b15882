"""``lyra teacher data|train|sample``: the pocket diffusion teacher (GEN3C's DiT at CPU scale), trained here.

* ``data``: procedural worlds -> the latents of exact renders (targets) and of the warped 3D cache (conditions);
* ``train``: EDM training from a YAML config (resumable, checkpoints are ``--diffusion-model`` folders);
* ``sample``: a held-out world through ``cache`` and ``diffusion`` beside the exact renders: a comparison video
  and PSNR/SSIM inside and outside the cache's holes (``metrics.json``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def run_data(args: argparse.Namespace) -> int:
    import torch

    from lyra.cli.main import CLIError
    from lyra.pipelines.teacher_data import TeacherDataConfig, build_teacher_data
    from lyra.tokenizer import load_tokenizer

    if args.scenes < 1:
        raise CLIError(f"--scenes must be >= 1, got {args.scenes}")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TeacherDataConfig(scenes=args.scenes, seed=args.seed, frames=args.frames, height=args.height,
                            width=args.width, kind=args.kind, tokenizer=str(args.tokenizer),
                            supersample=args.supersample, cache_fill=args.cache_fill)
    tok = load_tokenizer(cfg.tokenizer)
    if hasattr(tok, "eval"):
        tok.eval()
    s = build_teacher_data(cfg, args.out, tok, progress=not args.quiet)
    timing = f", {s['seconds_per_scene']:.1f} s per scene" if s["written"] else ""
    print(f"{args.out}: {len(s['written'])} scenes written, {len(s['skipped'])} already complete{timing}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from lyra.cli.train_cmd import config_overrides
    from lyra.train.teacher import TeacherTrainConfig, TeacherTrainer

    cfg = TeacherTrainConfig.load(args.config, config_overrides(args))
    s = TeacherTrainer(cfg, progress=not args.quiet).run()
    rate = f", {s['steps_this_run']} steps at {s['steps_per_s']:.2f} steps/s" if s["steps_this_run"] else ""
    print(f"{cfg.output_dir}: step {s['steps']}{rate}; weights: {s['checkpoint']}")
    return 0


def parse_worlds(text: str) -> list[tuple[str, int]]:
    """``"room:1,yard:2"`` -> [("room", 1), ("yard", 2)]; CLIError on anything else."""
    from lyra.cli.main import CLIError
    from lyra.world.generate import WORLD_KINDS

    out = []
    for item in text.split(","):
        kind, _, seed = item.strip().partition(":")
        if kind not in WORLD_KINDS or not seed.strip().lstrip("-").isdigit():
            raise CLIError(f"--worlds: {item!r} is not KIND:SEED with KIND one of {', '.join(WORLD_KINDS)}")
        out.append((kind, int(seed)))
    return out


def run_sample(args: argparse.Namespace) -> int:
    import torch

    from lyra.cli.main import CLIError
    from lyra.eval.teacher import holes_table
    from lyra.generator import make_generator
    from lyra.generator.diffusion.generator import DiffusionGenerator
    from lyra.tokenizer import load_tokenizer

    worlds = parse_worlds(args.worlds) if args.worlds else None
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.diffusion_steps < 1:
        raise CLIError(f"--diffusion-steps must be >= 1, got {args.diffusion_steps}")
    if args.noise_scale is not None and not 0 <= args.noise_scale <= 1:
        raise CLIError(f"--noise-scale must be in [0, 1], got {args.noise_scale}")
    tok = load_tokenizer(args.tokenizer)
    if hasattr(tok, "eval"):
        tok.eval()
    gens = {"cache": make_generator("cache", tokenizer=tok),
            "diffusion": DiffusionGenerator(tok, model=args.diffusion_model, steps=args.diffusion_steps,
                                            guidance=args.guidance, noise_scale=args.noise_scale)}
    if args.mean_of:
        if args.mean_of < 2:
            raise CLIError(f"--mean-of must be >= 2, got {args.mean_of}")
        from lyra.eval.teacher import SampleMean

        gens[f"mean of {args.mean_of}"] = SampleMean(gens["diffusion"], args.mean_of)
    if worlds is None:
        _sample_world(args, gens, tok, args.world_kind, args.world_seed, Path(args.out))
        return 0
    results = {f"{k} {s}": _sample_world(args, gens, tok, k, s, Path(args.out) / f"{k}-{s}") for k, s in worlds}
    table, beats = holes_table(results)
    verdict = ("the diffusion teacher beats push-pull inside the holes (PSNR and SSIM) on every world" if beats else
               "the diffusion teacher does not beat push-pull inside the holes (PSNR and SSIM) on every world")
    (Path(args.out) / "summary.json").write_text(json.dumps(
        {"guidance": gens["diffusion"].sampler.guidance, "noise_scale": gens["diffusion"].sampler.noise_scale,
         "diffusion_model": str(args.diffusion_model),
         "beats_cache_in_holes": beats, "worlds": results}, indent=1) + "\n")
    (Path(args.out) / "summary.md").write_text(table + "\n" + verdict + "\n")
    print(table + verdict)
    print(f"wrote {Path(args.out) / 'summary.json'}, summary.md")
    return 0


def _sample_world(args: argparse.Namespace, gens: dict, tok: object, kind: str, seed: int, out: Path) -> dict:
    """One held-out world through ``gens`` into ``out`` (metrics.json, comparison.mp4/png); its metrics."""
    from lyra.eval.teacher import compare_generators
    from lyra.utils.files import atomic_dir
    from lyra.world import generate_world

    world = generate_world(seed, kind, photos="heldout")
    cmp = compare_generators(world, tok, gens, height=args.height, width=args.width, frames=args.frames,
                             seed=seed, trajectories=args.trajectories)
    with atomic_dir(out) as tmp:
        report = {"world_seed": seed, "world_kind": world.kind, "height": args.height,
                  "width": args.width, "frames": args.frames, "diffusion_model": str(args.diffusion_model),
                  "diffusion_steps": args.diffusion_steps, "guidance": gens["diffusion"].sampler.guidance,
                  "noise_scale": gens["diffusion"].sampler.noise_scale,
                  "metrics": cmp.metrics}
        (tmp / "metrics.json").write_text(json.dumps(report, indent=1) + "\n")
        _write_comparison(cmp.frames, tmp)
    print(f"{kind} {seed}:")
    for name, m in cmp.metrics.items():
        print(f"{name:9s} all {m['all']['psnr']:.2f} / {m['all']['ssim']:.3f}  visible {m['visible']['psnr']:.2f} / "
              f"{m['visible']['ssim']:.3f}  holes {m['holes']['psnr']:.2f} / {m['holes']['ssim']:.3f}  "
              f"{m['seconds']:.1f} s")
    print(f"wrote {out / 'metrics.json'}, comparison.mp4, comparison.png")
    return cmp.metrics


def _write_comparison(frames: dict, out: Path) -> None:
    """comparison.mp4 (every trajectory, rows exact | cache | diffusion, holes tinted in the exact row) and
    comparison.png (the last frame of each trajectory)."""
    import imageio.v3 as iio
    import numpy as np
    import torch

    from lyra.render.video import write_video

    exact = frames["exact"] * (1 - 0.4 * frames["holes"]) + 0.4 * frames["holes"] * frames["exact"].new_tensor(
        [1.0, 0.0, 1.0]).view(1, 1, 3, 1, 1)
    rows = [exact] + [frames[k] for k in frames if k not in ("exact", "holes")]
    grid = torch.cat(rows, dim=-2)  # [V, T, 3, R·H, W]
    write_video(out / "comparison.mp4", grid.flatten(0, 1), fps=12)
    last = torch.cat(list(grid[:, -1]), dim=-1)  # [3, R·H, V·W]
    iio.imwrite(out / "comparison.png", (last.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8))


def add_parser(sub: argparse._SubParsersAction) -> None:
    from lyra.world.generate import WORLD_KINDS

    p = sub.add_parser("teacher", help="the pocket diffusion teacher: make its data, train it, compare it with the "
                                       "cache generator on a held-out world")
    tsub = p.add_subparsers(dest="teacher_command", required=True, metavar="{data,train,sample}")

    d = tsub.add_parser("data", help="latents of exact renders and of the warped 3D cache of procedural worlds "
                                     "(resumable)")
    d.add_argument("--scenes", type=int, required=True, help="number of scenes (6 trajectories each)")
    d.add_argument("--out", required=True, help="data folder (an interrupted run resumes there)")
    d.add_argument("--seed", type=int, default=3000, help="base seed (default 3000; evaluation worlds use 0-99)")
    d.add_argument("--frames", type=int, default=49, help="frames per trajectory (default 49)")
    d.add_argument("--height", type=int, default=176, help="image height (default 176)")
    d.add_argument("--width", type=int, default=320, help="image width (default 320)")
    d.add_argument("--kind", default="mix", choices=WORLD_KINDS, help="world kind (default mix)")
    d.add_argument("--tokenizer", default="pocket-v2", help="tokenizer whose latents the teacher samples "
                   "(default pocket-v2)")
    d.add_argument("--supersample", type=int, default=1, help="s x s rays per pixel of the exact renders")
    d.add_argument("--cache-fill", default="black", choices=("black", "inpaint"), help="the cache renders' holes: "
                   "black (official, default) or inpaint (push-pull filled); a teacher trained on the data reads "
                   "its cache the same way")
    d.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=run_data)

    t = tsub.add_parser("train", help="train the teacher (YAML config, e.g. configs/teacher/pocket-v2.yaml; "
                                      "resumes from the latest checkpoint)")
    t.add_argument("config", help="run config (YAML)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value; repeatable")
    t.add_argument("--steps", type=int, help="override the step count")
    t.add_argument("--output-dir", help="override the output folder")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=run_train)

    s = tsub.add_parser("sample", help="a held-out world through the cache and diffusion generators, scored "
                                       "against exact renders inside and outside the cache's holes")
    s.add_argument("--diffusion-model", metavar="DIR", help="weights folder (default: the shipped pocket teacher)")
    s.add_argument("--diffusion-steps", type=int, default=35, help="sampler steps (default 35)")
    s.add_argument("--guidance", type=float, default=None, help="guidance g (default: the weights folder's "
                   "generation_config.json, else 1, official; the shipped teacher: 0; 0 halves the cost)")
    s.add_argument("--noise-scale", type=float, default=None, metavar="TAU", help="scale of the sampler's initial "
                   "noise in [0, 1] (default: the weights folder's generation_config.json, else 1, official)")
    s.add_argument("--world-seed", type=int, default=0, help="world seed (default 0)")
    s.add_argument("--world-kind", default="room", choices=WORLD_KINDS, help="world kind (default room)")
    s.add_argument("--worlds", metavar="KIND:SEED,...", help="several held-out worlds (e.g. room:1,yard:2,photo:3), "
                   "each into OUT/KIND-SEED, plus OUT/summary.json and summary.md (the table, and whether the "
                   "teacher beats push-pull inside the holes everywhere); replaces --world-kind/--world-seed")
    s.add_argument("--trajectories", type=int, default=None, help="the first N of the six trajectories")
    s.add_argument("--mean-of", type=int, default=0, metavar="N", help="also score the per-pixel mean of N more "
                   "diffusion samples (a diagnostic: how much of the loss inside the holes is the samples' spread)")
    s.add_argument("--frames", type=int, default=49, help="frames per trajectory (default 49)")
    s.add_argument("--height", type=int, default=176, help="image height (default 176)")
    s.add_argument("--width", type=int, default=320, help="image width (default 320)")
    s.add_argument("--tokenizer", default="pocket-v2", help="tokenizer (default pocket-v2)")
    s.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's)")
    s.add_argument("--out", required=True, help="output folder (metrics.json, comparison.mp4/png)")
    s.set_defaults(func=run_sample)
