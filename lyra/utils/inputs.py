"""Readers of the generic input containers (plain files, folders, JSON, YAML, npy/npz), checked before use.

Each raises :class:`lyra.errors.InputError` (or the ``error`` subclass a caller passes) naming the file and
what is wrong with it; a missing path raises FileNotFoundError with the same one-line form. Arrays are read
without pickles (``allow_pickle=False``) and an npy header is checked against the bytes actually present
before anything is allocated, so a header promising 10^12 elements costs nothing.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from lyra.errors import InputError, reading

MAX_ARRAY_BYTES = 1 << 32  # 4 GiB: an npy/npz array promising more is refused before reading


def a(kind: str) -> str:
    """``kind`` with its indefinite article ("an image file", "a depth file")."""
    return f"{'an' if kind[:1].lower() in 'aeio' else 'a'} {kind}"


def require_file(path: str | os.PathLike, kind: str = "file", error: type[InputError] = InputError,
                 missing: type[Exception] = FileNotFoundError) -> Path:
    """``path`` as a Path once it is an existing, non-empty regular file (``kind`` names it in messages).

    A missing file raises ``missing`` (FileNotFoundError unless a caller's contract says otherwise).
    """
    p = Path(path)
    if not p.exists():
        raise missing(f"{p}: {kind} not found")
    if p.is_dir():
        raise error(p, f"is a folder, expected {a(kind)}")
    if p.stat().st_size == 0:
        raise error(p, f"is empty (0 bytes), expected {a(kind)}")
    return p


def require_dir(path: str | os.PathLike, kind: str = "folder", error: type[InputError] = InputError) -> Path:
    """``path`` as a Path once it is an existing folder."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: {kind} not found")
    if not p.is_dir():
        raise error(p, f"is a file, expected {a(kind)}")
    return p


def read_text(path: str | os.PathLike, kind: str = "text file", error: type[InputError] = InputError,
              missing: type[Exception] = FileNotFoundError) -> str:
    """The UTF-8 text of a file (a binary file is an error, not mojibake)."""
    p = require_file(path, kind, error, missing)
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(p, f"not a UTF-8 text file (byte {exc.start}), expected {a(kind)}") from exc


def read_json(path: str | os.PathLike, kind: str = "JSON file", error: type[InputError] = InputError) -> dict:
    """A JSON file whose top level is an object."""
    p = Path(path)
    text = read_text(p, kind, error)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(p, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    except RecursionError as exc:
        raise error(p, "JSON nested too deeply") from exc
    if not isinstance(data, dict):
        raise error(p, f"the top level must be a JSON object, got {type(data).__name__}")
    return data


def parse_yaml(text: str, where: str | os.PathLike, error: type[InputError] = InputError) -> Any:
    """``yaml.safe_load(text)`` with a syntax error reported as one line with its position."""
    import yaml

    try:
        return yaml.safe_load(text)
    except RecursionError as exc:
        raise error(where, "YAML nested too deeply") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(where, f"not valid YAML ({at}{problem})") from exc


# ---------------------------------------------------------------------------------------------- npy / npz
def _checked_npy_header(fh: BinaryIO, size: int, where: str, error: type[InputError]) -> None:
    """Read an npy header from ``fh`` (``size`` bytes long from its start) and check it promises no more than that."""
    from numpy.lib import format as npy

    with reading(where, "not a readable npy array", error):
        version = npy.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(fh)
        else:
            shape, _, dtype = npy._read_array_header(fh, version)
    if dtype.hasobject:
        raise error(where, "holds Python objects (a pickle); only plain numeric arrays are read")
    need = math.prod(shape) * dtype.itemsize
    have = size - fh.tell()
    if need > MAX_ARRAY_BYTES:
        raise error(where, f"header promises a {list(shape)} {dtype} array ({need} bytes), more than the "
                           f"{MAX_ARRAY_BYTES} bytes this reader accepts")
    if need != have:
        raise error(where, f"header promises a {list(shape)} {dtype} array ({need} bytes) but {have} bytes follow "
                           "(truncated or corrupt)")


def load_npy(path: str | os.PathLike, kind: str = "NumPy .npy file", error: type[InputError] = InputError,
             missing: type[Exception] = FileNotFoundError) -> np.ndarray:
    """An ``.npy`` array (no pickles; the header checked against the file size first)."""
    p = require_file(path, kind, error, missing)
    with open(p, "rb") as fh:
        _checked_npy_header(fh, p.stat().st_size, str(p), error)
        fh.seek(0)
        with reading(p, "not a readable npy array", error):
            return np.load(fh, allow_pickle=False)


def load_npz(path: str | os.PathLike, kind: str = "NumPy .npz archive", error: type[InputError] = InputError,
             missing: type[Exception] = FileNotFoundError) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` archive by name (no pickles; each member's header checked before reading it)."""
    p = require_file(path, kind, error, missing)
    out: dict[str, np.ndarray] = {}
    with reading(p, f"not a readable npz archive, expected {a(kind)}", error), zipfile.ZipFile(p) as zf:
        for info in zf.infolist():
            name = info.filename.removesuffix(".npy")
            where = f"{p}: array {name!r}"
            with zf.open(info) as member:
                head = member.read(min(info.file_size, 1 << 16))
                _checked_npy_header(io.BytesIO(head), info.file_size, where, error)
                data = head + member.read()
            with reading(where, "not a readable npy array", error):
                out[name] = np.load(io.BytesIO(data), allow_pickle=False)
    return out


# ---------------------------------------------------------------------------------------------- weights
def load_tensors(path: str | os.PathLike, kind: str = "weights file", error: type[InputError] = InputError,
                 missing: type[Exception] = FileNotFoundError) -> Any:
    """The tensors of a ``.safetensors`` file (a dict), or the object of a weights-only ``torch.load`` (no code runs).

    A corrupt, truncated or foreign file raises ``error`` naming it.
    """
    p = require_file(path, kind, error, missing)
    with reading(p, f"not a readable {kind}", error):
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(p), device="cpu")
        import torch

        return torch.load(p, map_location="cpu", weights_only=True)
