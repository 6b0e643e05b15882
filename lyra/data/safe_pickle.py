"""Safe loading of pickled numpy arrays (the SDG latent ``.pkl`` files) without arbitrary code execution.

NVIDIA's SDG writes each latent with ``torch.save`` of a **numpy** array, which ``torch.load`` reads only
with ``weights_only=False`` (a plain unpickler that can run any code). Here a restricted unpickler
accepts exactly the globals a numpy array's pickle needs (``numpy...multiarray._reconstruct``,
``numpy.ndarray``, ``numpy.dtype`` and ``_codecs.encode`` with the latin-1 codec that protocol-2
pickles use for raw bytes) and refuses everything else, naming the file and the refused global.

Accepted containers: ``torch.save``'s zip archive (``<prefix>/data.pkl``), torch's legacy
non-zip format (magic number, protocol, system info, object) and a plain pickle.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from lyra.errors import InputError

# torch's legacy serialization magic number (first object of a non-zip torch.save file)
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_MAX_PICKLE_BYTES = 1 << 34  # 16 GiB: refuse absurd archive members before reading them


class UnsafePickleError(InputError):
    """A pickle asked for something other than a numpy array (refused, nothing was executed)."""


def _latin1_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` restricted to what protocol-2 pickles of bytes use: ``(str, 'latin1')``."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise UnsafePickleError(f"_codecs.encode only with (str, 'latin1'); got ({type(obj).__name__}, {encoding!r})")
    return obj.encode("latin1")


def _allowed() -> dict[tuple[str, str], Any]:
    """The only globals a numpy array's pickle needs (numpy 1.x and 2.x module names)."""
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can only build numpy arrays (and plain Python literals)."""

    def __init__(self, file: io.BufferedIOBase, where: str = "<pickle>") -> None:
        super().__init__(file)
        self.where = where
        self._globals = _allowed()

    def find_class(self, module: str, name: str) -> Any:
        obj = self._globals.get((module, name))
        if obj is None:
            raise UnsafePickleError(
                f"{self.where}: refused to unpickle global {module}.{name} (only numpy arrays are accepted; "
                "this file is not a plain latent array and may be malicious)"
            )
        return obj

    def persistent_load(self, pid: Any) -> Any:
        kind = pid[0] if isinstance(pid, tuple) and pid else pid
        raise UnsafePickleError(
            f"{self.where}: refused persistent object {kind!r} (torch tensors/storages are not accepted; "
            "latent files must hold a numpy array)"
        )


def _unpickle_bytes(data: bytes, where: str) -> Any:
    try:
        return NumpyOnlyUnpickler(io.BytesIO(data), where).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # noqa: BLE001 - pickle raises many kinds for corrupt data
        raise UnsafePickleError(f"{where}: corrupt or unsupported pickle ({type(exc).__name__}: {exc})") from exc


def _load_plain_or_legacy(data: bytes, where: str) -> Any:
    f = io.BytesIO(data)
    try:
        first = NumpyOnlyUnpickler(f, where).load()
        if isinstance(first, int) and first == _TORCH_LEGACY_MAGIC:  # torch legacy: magic, protocol, sys info, obj
            NumpyOnlyUnpickler(f, where).load()
            NumpyOnlyUnpickler(f, where).load()
            return NumpyOnlyUnpickler(f, where).load()
        return first
    except UnsafePickleError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise UnsafePickleError(f"{where}: corrupt or unsupported pickle ({type(exc).__name__}: {exc})") from exc


def load_numpy_pickle(path: str | os.PathLike) -> np.ndarray:
    """Load a numpy array saved with ``torch.save`` (zip or legacy) or ``pickle.dump``, safely.

    Returns the array (numeric or bool dtype). Raises :class:`UnsafePickleError` naming the file for
    refused globals, torch tensors, non-array objects or corrupt data; ``FileNotFoundError`` if absent.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    where = str(path)
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                members = [i for i in zf.infolist() if i.filename.endswith("data.pkl")]
                if len(members) != 1:
                    raise UnsafePickleError(f"{where}: zip archive without exactly one data.pkl "
                                            f"(has {[i.filename for i in zf.infolist()][:6]})")
                if members[0].file_size > _MAX_PICKLE_BYTES:
                    raise UnsafePickleError(f"{where}: data.pkl is {members[0].file_size} bytes, too large")
                data = zf.read(members[0])
        except (zipfile.BadZipFile, OSError) as exc:
            raise UnsafePickleError(f"{where}: unreadable zip archive ({exc})") from exc
        obj = _unpickle_bytes(data, where)
    else:
        obj = _load_plain_or_legacy(path.read_bytes(), where)
    if not isinstance(obj, np.ndarray):
        raise UnsafePickleError(f"{where}: expected a numpy array, found {type(obj).__name__}")
    if obj.dtype.kind not in "biuf":
        raise UnsafePickleError(f"{where}: expected a numeric numpy array, found dtype {obj.dtype}")
    return obj


def save_numpy_pickle(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as the official SDG does (``torch.save`` of a numpy array, zip format), atomically."""
    import torch

    from lyra.utils.files import atomic_path

    arr = np.ascontiguousarray(array)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            torch.save(arr, fh)
    return Path(path)
