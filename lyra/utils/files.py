"""File helpers: atomic writes (a file or a folder of outputs appears under its final name only when complete)."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from lyra.errors import InputError


def _umask() -> int:
    """The process umask, read without changing it (Linux /proc; 0o022 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``, on error removed.

    A failed write leaves any existing ``path`` untouched; the file gets the usual 0o666 & ~umask mode.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it over ``path``."""
    with atomic_path(path) as tmp:
        write(str(tmp))


def _merge_into(src: Path, dst: Path) -> None:
    """Move every entry of ``src`` into the existing folder ``dst`` (namesakes replaced, other files kept)."""
    for entry in src.iterdir():
        target = dst / entry.name
        if entry.is_dir() and target.is_dir():
            _merge_into(entry, target)
            entry.rmdir()
            continue
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)


def _remove_empty_parents(path: Path, stop: Path | None) -> None:
    """Remove ``path``'s parents up to ``stop`` (the first folder this call created) while they are empty."""
    if stop is None:
        return
    for d in [path.parent, *path.parent.parents]:
        with contextlib.suppress(OSError):
            d.rmdir()
        if d == stop:
            return


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, stale: Sequence[str] = ()) -> Iterator[Path]:
    """Yield an empty hidden folder beside ``path`` to write outputs into; on success they land in ``path``.

    A new ``path`` is the renamed temporary folder. An existing folder keeps the user's other files: each output
    replaces its namesake only at the end, and old entries matching a ``stale`` glob pattern (an earlier run's
    outputs, e.g. ``rgb_*.png``) that this run did not write are removed then, so runs never mix. On any
    exception, KeyboardInterrupt included, the temporary folder (and any parent folder made for it) is removed
    and ``path`` is untouched.
    """
    path = Path(os.path.abspath(path))
    if path.exists() and not path.is_dir():
        raise InputError(path, "exists and is not a folder (the output here is a folder)")
    made = next((p for p in reversed([path.parent, *path.parent.parents]) if not p.exists()), None)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            os.rename(tmp, path)  # a new (or empty) folder
        except OSError:
            new = {e.name for e in tmp.iterdir()}
            for old in path.iterdir():
                if old.name not in new and any(fnmatch.fnmatchcase(old.name, pat) for pat in stale):
                    shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
            _merge_into(tmp, path)
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty_parents(tmp, made)
        raise
