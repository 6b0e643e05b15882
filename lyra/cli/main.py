"""The ``lyra`` command: one sub-command per pipeline stage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from lyra import __version__


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def _register(subparsers: argparse._SubParsersAction) -> None:
    from lyra.cli import (
        data_cmd,
        demo_cmd,
        eval_cmd,
        export_cmd,
        generate_cmd,
        info,
        render_cmd,
        sdg_cmd,
        train_cmd,
        view_cmd,
        world_cmd,
    )
    from lyra.tokenizer import cli as tokenizer_cmd

    for mod in (info, demo_cmd, generate_cmd, world_cmd, render_cmd, export_cmd, view_cmd, tokenizer_cmd,
                sdg_cmd, data_cmd, train_cmd, eval_cmd):
        mod.add_parser(subparsers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lyra", description="Generative 3D/4D scene reconstruction (Lyra-style).")
    parser.add_argument("--version", action="version", version=f"lyra {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int | None] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 1
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("lyra: interrupted", file=sys.stderr)
        return 130
    except (CLIError, FileNotFoundError, ValueError, ImportError) as exc:
        print(f"lyra {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
