"""Depth zips of the official layout: one OpenEXR per frame (``00000.exr`` ...), a single ``Z`` channel.

NVIDIA's files hold half floats (ViPE); float32 files are read as well (the pixel type comes from
the EXR header, so no byte-count guessing is needed). Depth is camera z in scene units; the reader
returns float32 with non-finite or non-positive values set to 0 (invalid), as the method does.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lyra.depth.files import DepthError, exr_channels
from lyra.depth.files import require_openexr as _require_openexr
from lyra.utils.files import atomic_path

DEPTH_CHANNEL = "Z"
_FRAME_NAME = re.compile(r"^(?:.*/)?(\d+)\.exr$", re.IGNORECASE)


class DepthZipError(DepthError):
    """A missing, unreadable or malformed depth zip / EXR frame (the message names the file)."""


def require_openexr():
    """The OpenEXR module, or DepthZipError saying how to install it."""
    return _require_openexr(DepthZipError)


def encode_exr(depth: np.ndarray | Tensor, half: bool = True, channel: str = DEPTH_CHANNEL) -> bytes:
    """One depth map [H, W] (or [1, H, W]) -> bytes of a one-channel ZIP-compressed scanline EXR."""
    OpenEXR = require_openexr()
    arr = depth.detach().cpu().numpy() if isinstance(depth, Tensor) else np.asarray(depth)
    arr = np.ascontiguousarray(arr.reshape(arr.shape[-2:]).astype(np.float16 if half else np.float32))
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    buf = io.BytesIO()
    OpenEXR.File(header, {channel: arr}).write(buf)
    return buf.getvalue()


def decode_exr(data: bytes, where: str = "<exr>", channel: str = DEPTH_CHANNEL) -> np.ndarray:
    """EXR bytes -> float32 [H, W] of ``channel`` (the only channel is used if ``channel`` is absent)."""
    chans = exr_channels(io.BytesIO(data), where, DepthZipError)
    if channel in chans:
        arr = chans[channel]
    elif len(chans) == 1:
        arr = next(iter(chans.values()))
    else:
        raise DepthZipError(f"{where}: EXR has no {channel!r} channel (has {sorted(chans)})")
    if arr.ndim != 2 or arr.dtype.kind != "f":
        raise DepthZipError(f"{where}: expected a 2D float channel, got {arr.dtype} {list(arr.shape)}")
    return arr.astype(np.float32)


def write_depth_zip(path: str | os.PathLike, depth: Tensor | np.ndarray, half: bool = True,
                    frame_indices: Sequence[int] | None = None) -> Path:
    """Write depth [T, 1, H, W] (or [T, H, W]) as a zip of ``NNNNN.exr`` (stored, not re-compressed), atomically."""
    arr = depth.detach().cpu().numpy() if isinstance(depth, Tensor) else np.asarray(depth)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise DepthZipError(f"{path}: depth must be [T, 1, H, W] or [T, H, W], got {list(arr.shape)}")
    inds = list(range(arr.shape[0])) if frame_indices is None else [int(i) for i in frame_indices]
    if len(inds) != arr.shape[0]:
        raise DepthZipError(f"{path}: {len(inds)} frame indices for {arr.shape[0]} depth maps")
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for i, d in zip(inds, arr):
                zf.writestr(f"{i:05d}.exr", encode_exr(d, half=half))
    return Path(path)


def depth_zip_frames(path: str | os.PathLike) -> dict[int, str]:
    """Frame index -> member name of every ``NNNNN.exr`` in a depth zip."""
    path = Path(path)
    if not path.is_file():
        raise DepthZipError(f"{path}: depth zip not found")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DepthZipError(f"{path}: not a readable zip archive ({exc})") from exc
    out: dict[int, str] = {}
    for n in names:
        m = _FRAME_NAME.match(n)
        if m:
            out[int(m.group(1))] = n
    if not out:
        raise DepthZipError(f"{path}: no NNNNN.exr frames in the zip (members: {names[:5]})")
    return out


def read_depth_zip(path: str | os.PathLike, frames: Sequence[int] | None = None) -> Tensor:
    """Read depth frames from a zip as [N, 1, H, W] float32 (0 = invalid); all frames if ``frames`` is None."""
    path = Path(path)
    members = depth_zip_frames(path)
    want = sorted(members) if frames is None else [int(i) for i in frames]
    missing = [i for i in want if i not in members]
    if missing:
        raise DepthZipError(f"{path}: frames {missing[:8]} missing (zip has {len(members)} frames, "
                            f"{min(members)}..{max(members)})")
    maps = []
    try:
        with zipfile.ZipFile(path) as zf:
            for i in want:
                maps.append(decode_exr(zf.read(members[i]), f"{path}:{members[i]}"))
    except (zipfile.BadZipFile, OSError) as exc:
        raise DepthZipError(f"{path}: cannot read zip member ({exc})") from exc
    shapes = {m.shape for m in maps}
    if len(shapes) != 1:
        raise DepthZipError(f"{path}: depth frames have different sizes {sorted(shapes)}")
    d = np.stack(maps)[:, None]
    d[~(np.isfinite(d) & (d > 0))] = 0.0
    return torch.from_numpy(d)
