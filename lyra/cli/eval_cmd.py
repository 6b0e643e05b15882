"""``lyra eval``: PSNR/SSIM (LPIPS with local weights) of decoded 3DGS scenes on held-out SDG scenes."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from lyra.cli.main import CLIError
    from lyra.eval.evaluate import EvalConfig, evaluate
    from lyra.eval.report import write_report
    from lyra.utils.files import atomic_dir

    if args.stride < 1:
        raise CLIError(f"--stride must be >= 1, got {args.stride}")
    cfg = EvalConfig(data=args.data, decoder=args.decoder, tokenizer=args.tokenizer, split=args.split,
                     num_test_scenes=args.num_test_scenes, split_method=args.split_method,
                     test_fraction=args.test_fraction, stride=args.stride,
                     max_scenes=args.max_scenes, off_trajectory=not args.no_ground_truth, fusion=args.fusion,
                     lpips_weights=args.lpips_weights, stats=args.stats, mode=args.mode, backend=args.backend,
                     threads=args.threads)
    report = evaluate(cfg, progress=not args.quiet)
    with atomic_dir(args.out) as tmp:
        write_report(report, tmp)
    js, md = (Path(args.out) / name for name in ("eval.json", "eval.md"))
    s = report["summary"]
    for tag in ("fusion_on", "fusion_off"):
        if tag in s:
            parts = ", ".join(f"{p} {v['psnr']:.2f} dB / SSIM {v['ssim']:.3f}" for p, v in s[tag].items())
            print(f"{tag}: {parts}")
    print(f"wrote {js} and {md}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a decoder on held-out SDG scenes (teacher frames and exact "
                                    "ground truth off the trajectories; fusion on vs off)")
    p.add_argument("--data", required=True, help="SDG dataset folder")
    p.add_argument("--decoder", default="shipped", help="'shipped' or a decoder folder / training checkpoint")
    p.add_argument("--tokenizer", default="shipped", help="'shipped' or the tokenizer folder the data used")
    p.add_argument("--out", required=True, help="report folder (eval.json, eval.md)")
    p.add_argument("--split", choices=("test", "all"), default="test", help="held-out scenes (default) or all")
    p.add_argument("--num-test-scenes", type=int, default=8, help="test split size (as in training; default 8)")
    p.add_argument("--split-method", choices=("last", "hash"), default="last", help="split rule (as in training)")
    p.add_argument("--test-fraction", type=float, default=0.05,
                   help="share of keys held out by the 'hash' split (as in training; default 0.05)")
    p.add_argument("--stride", type=int, default=4, help="evaluate every n-th frame (default 4)")
    p.add_argument("--max-scenes", type=int, help="evaluate at most this many scenes")
    p.add_argument("--fusion", choices=("both", "on", "off"), default="both", help="trajectory fusion (default both)")
    p.add_argument("--no-ground-truth", action="store_true", help="skip the exact-world comparisons")
    p.add_argument("--lpips-weights", help="local VGG-16 + LPIPS head weight files/folder (adds LPIPS)")
    p.add_argument("--stats", help="latent statistics file (default: the dataset's)")
    p.add_argument("--mode", choices=("classic", "eval3d"), default="classic", help="rasterizer mode")
    p.add_argument("--backend", choices=("auto", "cpu", "torch", "gsplat"), default="auto", help="render backend")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    """Run ``lyra eval`` on its own (``python -m lyra.cli.eval_cmd ...``)."""
    from lyra.cli.main import standalone

    return standalone(add_parser, "eval", argv)


if __name__ == "__main__":
    raise SystemExit(main())
