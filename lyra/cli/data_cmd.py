"""``lyra data check DIR``: validate an SDG dataset (ours or NVIDIA's) and list every problem with its file."""

from __future__ import annotations

import argparse
import sys


def run_check(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from lyra.data.check import CheckOptions, check_dataset
    from lyra.data.layout import MODALITIES
    from lyra.utils.inputs import require_dir

    require_dir(args.dir, "dataset folder")  # a missing root is a wrong argument, not a dataset problem
    require = tuple(m for m in MODALITIES if not (m == "depth" and args.no_depth))
    opts = CheckOptions(require=require, stats=args.stats, decode=not args.quick,
                        views=tuple(args.views) if args.views else None)

    def bar(items):
        return tqdm(items, desc="check", unit="file set", disable=args.quiet or len(items) < 8)

    problems = check_dataset(args.dir, opts, progress=bar)
    for p in problems:
        print(p)
    if problems:
        print(f"{args.dir}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.dir}: ok")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="dataset tools (check)")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    c = dsub.add_parser("check", help="validate a dataset in the SDG layout; lists every problem with its file "
                                      "and exits 1 if there is one")
    c.add_argument("dir", help="dataset root (<dir>/<view>/<modality>/<key>.<ext>)")
    c.add_argument("--stats", default=None, help="latent statistics file (NVIDIA data: the tokenizer's mean_std.pt)")
    c.add_argument("--no-depth", action="store_true", help="do not require depth zips")
    c.add_argument("--quick", action="store_true", help="count frames from the containers and read one EXR per zip")
    c.add_argument("--views", type=int, nargs="+", default=None, help="check only these trajectory folders")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=run_check, command="data check")
