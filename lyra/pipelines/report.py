"""Run reports: per-stage wall times printed as they finish, collected into ``report.json``."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from lyra.utils.files import atomic_path


class StageTimer:
    """Times named stages; prints one line per stage (``[lyra] name ... 1.23 s``) unless quiet.

    Attributes:
        timings: stage name -> wall seconds, in the order the stages ran.
    """

    def __init__(self, prefix: str = "lyra", quiet: bool = False, stream: TextIO | None = None) -> None:
        self.prefix = prefix
        self.quiet = quiet
        self.stream = stream
        self.timings: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def _print(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream or sys.stdout, flush=True)

    @contextmanager
    def stage(self, name: str, detail: str = "") -> Iterator[None]:
        """Time the block as stage ``name`` (a repeated name accumulates)."""
        self._print(f"[{self.prefix}] {name}{' (' + detail + ')' if detail else ''} ...")
        t = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t
            self.timings[name] = self.timings.get(name, 0.0) + dt
        self._print(f"[{self.prefix}] {name}: {dt:.2f} s")

    def note(self, text: str) -> None:
        """Print an informational line."""
        self._print(f"[{self.prefix}] {text}")

    @staticmethod
    def warn(text: str) -> None:
        """Print a line the user should see on stderr (also when quiet): something was changed or assumed."""
        print(f"lyra: note: {text}", file=sys.stderr, flush=True)

    @property
    def total(self) -> float:
        """Seconds since the timer was created."""
        return time.perf_counter() - self._t0


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float):
        return round(obj, 6)
    if hasattr(obj, "item") and callable(obj.item):
        return _jsonable(obj.item())
    return obj


def write_report(path: str | os.PathLike, report: dict[str, Any]) -> Path:
    """Write ``report`` as indented JSON, atomically (Paths, tuples and numpy/torch scalars converted)."""
    path = Path(path)
    text = json.dumps(_jsonable(report), indent=2) + "\n"
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return path
