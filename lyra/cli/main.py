"""The ``lyra`` command: one sub-command per pipeline stage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from lyra import __version__


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def _register(subparsers: argparse._SubParsersAction) -> None:
    from lyra.cli import export_cmd, info, render_cmd, view_cmd, world_cmd

    for mod in (info, world_cmd, render_cmd, export_cmd, view_cmd):
        mod.add_parser(subparsers)
    optional: list[tuple[str, str]] = [("lyra.tokenizer.cli", "add_parser")]
    for module, fn in optional:
        try:
            mod = __import__(module, fromlist=[fn])
        except ImportError:
            continue
        getattr(mod, fn)(subparsers)


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
