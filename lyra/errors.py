"""The project's one error type for bad inputs (files, folders, settings), and a guard for third-party readers.

Every reader of user input raises :class:`InputError` (or a domain subclass: ``DepthError``, ``CameraError``,
``ConfigError``...) with the file's name and what is wrong with it; the ``lyra`` command prints it as one line
(``lyra <cmd>: error: <file>: <what>``) and exits with code 2.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

MAX_DETAIL = 240  # characters of a library's own message kept in ours


class InputError(ValueError):
    """A bad input: ``InputError(path, what)`` reads "<path>: <what>"; ``InputError(message)`` is taken as is.

    A ValueError, so existing ``except ValueError`` callers keep working.
    """

    def __init__(self, path_or_message: object, what: str | None = None) -> None:
        self.path: str | None = None if what is None else os.fspath(path_or_message)  # type: ignore[arg-type]
        self.what: str = str(path_or_message) if what is None else what
        super().__init__(self.what if self.path is None else f"{self.path}: {self.what}")


def one_line(text: object, limit: int | None = None) -> str:
    """``text`` with its lines joined by "; " (blank ones dropped), cut to ``limit`` characters."""
    s = "; ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return s if limit is None or len(s) <= limit else s[: limit - 3] + "..."


def describe(exc: BaseException) -> str:
    """``"TypeName: message"`` of a library's exception, on one short line."""
    msg = one_line(exc, MAX_DETAIL)
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str, error: type[InputError] = InputError) -> Iterator[None]:
    """Turn any exception a third-party reader raises inside the block into ``error(path, "what (Type: msg)")``.

    Project errors (InputError) and missing files pass through unchanged; so do KeyboardInterrupt and
    MemoryError (not a property of the file).
    """
    try:
        yield
    except (InputError, FileNotFoundError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - readers raise anything for a malformed file
        raise error(path, f"{what} ({describe(exc)})") from exc
