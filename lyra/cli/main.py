"""The ``lyra`` command: one sub-command per pipeline stage.

Errors: a bad input (:class:`lyra.errors.InputError`, a missing or unreadable path, a missing optional
package) prints one line ``lyra <cmd>: error: <file>: <what>`` and exits 2; any other exception prints one
line ``lyra <cmd>: failed: <Type>: <message>`` and exits 1; Ctrl-C exits 130. ``--debug`` (or ``LYRA_DEBUG=1``)
lets the exception through with its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from lyra import __version__
from lyra.errors import InputError, describe, one_line

# exceptions that mean "the input is wrong", not "lyra is broken"
USER_ERRORS: tuple[type[BaseException], ...] = (InputError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
                                                PermissionError, FileExistsError, ImportError)
DEBUG_HELP = "show the full traceback of an error (also LYRA_DEBUG=1)"


class CLIError(InputError):
    """A user-facing error about the command line itself: printed as one line, exit code 2."""


def _register(subparsers: argparse._SubParsersAction) -> None:
    from lyra.cli import (
        data_cmd,
        demo_cmd,
        eval_cmd,
        export_cmd,
        generate_cmd,
        info,
        mesh_cmd,
        render_cmd,
        sdg_cmd,
        sim_cmd,
        teacher_cmd,
        train_cmd,
        video4d_cmd,
        view_cmd,
        world_cmd,
    )
    from lyra.tokenizer import cli as tokenizer_cmd

    for mod in (info, demo_cmd, generate_cmd, world_cmd, render_cmd, export_cmd, view_cmd, tokenizer_cmd,
                sdg_cmd, data_cmd, train_cmd, teacher_cmd, eval_cmd, mesh_cmd, sim_cmd):
        mod.add_parser(subparsers)
    video4d_cmd.add_parser(subparsers)


def _add_debug(parser: argparse.ArgumentParser) -> None:
    """``--debug`` on every sub-command too (``lyra render x.ply --debug``), without overriding a global one."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
                _add_debug(sub)


def build_parser(register: Callable[[argparse._SubParsersAction], object] = _register) -> argparse.ArgumentParser:
    """The ``lyra`` parser with the sub-commands ``register`` adds (all of them by default)."""
    parser = argparse.ArgumentParser(prog="lyra", description="Generative 3D/4D scene reconstruction (Lyra-style).")
    parser.add_argument("--version", action="version", version=f"lyra {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    register(parser.add_subparsers(dest="command", metavar="COMMAND"))
    _add_debug(parser)
    return parser


def error_message(exc: BaseException) -> str:
    """What an input error says: "<file>: <what>" (OS errors as "<file>: <reason>")."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; exceptions become one line on stderr and an exit code (see the module docstring)."""
    func: Callable[[argparse.Namespace], int | None] = args.func
    if getattr(args, "debug", False) or os.environ.get("LYRA_DEBUG", "") not in ("", "0"):
        return int(func(args) or 0)
    name = f"lyra {args.command}"
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        print(one_line(f"{name}: error: {error_message(exc)}"), file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        print(one_line(f"{name}: failed: {describe(exc)} (run with --debug for the traceback)"), file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 1
    return run_command(args)


def standalone(add_parser: Callable[[argparse._SubParsersAction], object], command: str,
               argv: Sequence[str] | None = None) -> int:
    """Run one sub-command on its own (``python -m lyra.cli.train_cmd ...``) with the same error handling."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != command:
        argv = [command, *argv]
    args = build_parser(add_parser).parse_args(argv)
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
