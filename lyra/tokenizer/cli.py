"""``lyra tokenizer train | eval | roundtrip``: the tokenizer's command-line interface.

``add_parser(subparsers)`` registers the ``tokenizer`` command on the main ``lyra`` parser;
``python -m lyra.tokenizer.cli ...`` runs the same commands standalone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

TOKENIZER_HELP = ("tokenizer: 'pocket' (shipped weights, default), a native folder (config.json + "
                  "model.safetensors), a Cosmos TorchScript folder (encoder.jit, decoder.jit, mean_std.pt) "
                  "or a diffusers AutoencoderKLCosmos folder")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``tokenizer {train,eval,roundtrip}`` on ``subparsers``; each sets ``func(args) -> int``."""
    p = subparsers.add_parser("tokenizer", help="video tokenizer: train, evaluate, round-trip a video",
                              description="Video tokenizer (causal 8x8x8 VAE): train, evaluate, round trip.")
    sub = p.add_subparsers(dest="tokenizer_command", metavar="{train,eval,roundtrip}", required=True)

    t = sub.add_parser("train", help="train the native pocket tokenizer (resumable)")
    t.add_argument("--config", help="YAML/JSON file of TrainConfig fields (e.g. configs/tokenizer/v2.yaml); "
                                    "the options below override it")
    t.add_argument("--out", help="output folder (checkpoint, log, exported weights; default runs/tokenizer)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    t.add_argument("--max-minutes", type=float,
                   help="wall-time budget of the run, resumes included (default 40; it stops the run early; "
                        "the lr schedule follows --max-steps)")
    t.add_argument("--max-steps", type=int, help="optimiser steps (default 20000)")
    t.add_argument("--batch-size", type=int, help="clips per step (default 4)")
    t.add_argument("--frames", type=int, help="frames per training clip, 1 + 8k (default 17)")
    t.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="training crop size (default 32 32)")
    t.add_argument("--lr", type=float, help="peak learning rate (default 1.5e-3)")
    t.add_argument("--kl-weight", type=float, help="default 1e-4")
    t.add_argument("--ssim-weight", type=float, help="default 0.2")
    t.add_argument("--seed", type=int, help="default 0")
    t.add_argument("--threads", type=int,
                   help="torch CPU threads (default 1, the fastest on a shared CPU; 0: torch's default)")
    t.add_argument("--checkpoint-every", type=float, help="seconds between checkpoints (default 120)")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("eval", help="PSNR/SSIM on held-out procedural clips and photos")
    e.add_argument("--tokenizer", default="pocket", help=TOKENIZER_HELP)
    e.add_argument("--clips", type=int, default=16)
    e.add_argument("--frames", type=int, default=17)
    e.add_argument("--size", type=int, nargs=2, default=(64, 112), metavar=("H", "W"))
    e.add_argument("--device", default="cpu")
    e.add_argument("--json", dest="json_out", default=None, help="also write the results to this JSON file")
    e.set_defaults(func=_cmd_eval)

    r = sub.add_parser("roundtrip", help="encode and decode a video file")
    r.add_argument("input", help="input video (any format FFmpeg reads)")
    r.add_argument("output", help="output mp4")
    r.add_argument("--tokenizer", default="pocket", help=TOKENIZER_HELP)
    r.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="resize frames first (default: crop to a multiple of the tokenizer's size rule)")
    r.add_argument("--chunk", type=int, default=121, help="frames per independently coded chunk (1 + 8k)")
    r.add_argument("--max-frames", type=int, default=None)
    r.add_argument("--device", default="cpu")
    r.set_defaults(func=_cmd_roundtrip)
    return p


def _cmd_train(args: argparse.Namespace) -> int:
    from lyra.tokenizer.train import TrainConfig, train

    d: dict = {"out": "runs/tokenizer", "threads": 1}
    if args.config:
        from lyra.utils.inputs import parse_yaml, read_text

        d.update(parse_yaml(read_text(args.config, "tokenizer training config"), args.config) or {})
    given = {"out": args.out, "frames": args.frames, "batch_size": args.batch_size, "lr": args.lr,
             "max_steps": args.max_steps, "max_minutes": args.max_minutes, "kl_weight": args.kl_weight,
             "ssim_weight": args.ssim_weight, "seed": args.seed, "threads": args.threads,
             "checkpoint_every_s": args.checkpoint_every}
    if args.size:
        given["height"], given["width"] = args.size
    d.update({k: v for k, v in given.items() if v is not None})
    cfg = TrainConfig.from_dict(d, args.config or "lyra tokenizer train")
    out = train(cfg, resume=args.resume, progress=not args.no_progress)
    print(f"tokenizer weights written to {out}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from lyra.tokenizer.evaluate import evaluate, format_results
    from lyra.tokenizer.loading import load_tokenizer

    tok = load_tokenizer(args.tokenizer, device=args.device)
    t0 = time.time()
    results = evaluate(tok, n_clips=args.clips, frames=args.frames, height=args.size[0], width=args.size[1],
                       device=args.device)
    print(format_results(results))
    print(f"({time.time() - t0:.1f} s)")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    return 0


def _cmd_roundtrip(args: argparse.Namespace) -> int:
    from lyra.tokenizer.loading import load_tokenizer, roundtrip_frames
    from lyra.tokenizer.metrics import psnr
    from lyra.tokenizer.video_io import read_video, write_video

    tok = load_tokenizer(args.tokenizer, device=args.device)
    frames, fps = read_video(args.input, max_frames=args.max_frames)
    size = tuple(args.size) if args.size else None
    src, rec = roundtrip_frames(tok, frames, size=size, chunk=args.chunk, device=args.device)
    write_video(args.output, rec, fps=fps)
    print(f"{args.output}: {rec.shape[0]} frames {rec.shape[2]}x{rec.shape[3]}, PSNR {float(psnr(rec, src)):.2f} dB")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m lyra.tokenizer.cli {train,eval,roundtrip} ...``."""
    from lyra.cli.main import standalone

    return standalone(add_parser, "tokenizer", argv)


if __name__ == "__main__":
    sys.exit(main())
