"""Depth maps from files: npy/npz, 16-bit PNG, EXR (OpenEXR, optional) and PFM (own reader/writer)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch import Tensor

from lyra.errors import InputError, reading
from lyra.utils.files import atomic_path
from lyra.utils.inputs import load_npy, load_npz, require_file

DEPTH_SUFFIXES = (".npy", ".npz", ".png", ".exr", ".pfm")
EXR_CHANNELS = ("Z", "Y", "depth", "D")


class DepthError(InputError):
    """Raised for missing, unreadable or malformed depth inputs (one-line, actionable message)."""


# ---------------------------------------------------------------------------------------------- PFM
def read_pfm(path: str | os.PathLike) -> np.ndarray:
    """Read a PFM file ("Pf" greyscale or "PF" colour) as float32 [H, W] or [H, W, 3], top row first.

    PFM stores rows bottom-to-top; a negative scale means little-endian data (Middlebury's disparities).
    """
    path = require_file(path, "PFM file", DepthError, missing=DepthError)
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.readline(16).strip()
        if header not in (b"PF", b"Pf"):
            raise DepthError(f"{path}: not a PFM file (header {header[:8]!r}, expected PF or Pf)")
        dims = f.readline(256)
        while dims.startswith(b"#"):
            dims = f.readline(256)
        m = re.match(rb"^\s*(\d+)\s+(\d+)\s*$", dims)
        if not m:
            raise DepthError(f"{path}: malformed PFM size line {dims[:40]!r}")
        width, height = int(m.group(1)), int(m.group(2))
        try:
            scale = float(f.readline(256).strip())
        except ValueError as e:
            raise DepthError(f"{path}: malformed PFM scale line") from e
        if width == 0 or height == 0 or not np.isfinite(scale) or scale == 0:
            raise DepthError(f"{path}: PFM size {width}x{height} or scale {scale} is not usable")
        channels = 3 if header == b"PF" else 1
        dtype = np.dtype("<f4") if scale < 0 else np.dtype(">f4")
        count = width * height * channels
        if count * 4 > size - f.tell():  # checked before reading: a header may promise any size
            raise DepthError(f"{path}: truncated PFM (header promises {width}x{height}x{channels} floats, "
                             f"{size - f.tell()} bytes follow)")
        data = np.frombuffer(f.read(count * 4), dtype=dtype)
    shape = (height, width, 3) if channels == 3 else (height, width)
    return np.flipud(data.reshape(shape)).astype(np.float32)


def write_pfm(path: str | os.PathLike, array: np.ndarray | Tensor) -> Path:
    """Write float32 [H, W] or [H, W, 3] as a little-endian PFM (bottom row first), atomically."""
    arr = array.detach().cpu().numpy() if isinstance(array, Tensor) else np.asarray(array)
    arr = np.squeeze(arr) if arr.ndim == 3 and arr.shape[0] == 1 else arr
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise DepthError(f"write_pfm: array must be [H, W] or [H, W, 3], got {list(arr.shape)}")
    header = b"PF\n" if arr.ndim == 3 else b"Pf\n"
    h, w = arr.shape[:2]
    body = np.ascontiguousarray(np.flipud(arr.astype("<f4"))).tobytes()
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(header + f"{w} {h}\n-1.0\n".encode() + body)
    return Path(path)


# ---------------------------------------------------------------------------------------------- EXR
def require_openexr(error: type[InputError] = DepthError):
    """The OpenEXR module, or ``error`` saying how to install it."""
    try:
        import OpenEXR
    except ImportError as e:
        raise error("reading/writing EXR depth needs OpenEXR: pip install OpenEXR") from e
    return OpenEXR


def exr_channels(source: str | os.PathLike | BinaryIO, where: str | os.PathLike,
                 error: type[InputError] = DepthError) -> dict[str, np.ndarray]:
    """Every channel of an EXR file (a path or a binary stream) by name; ``error`` names ``where`` if unreadable."""
    OpenEXR = require_openexr(error)
    src = str(source) if isinstance(source, (str, os.PathLike)) else source
    with reading(where, "cannot read EXR", error), OpenEXR.File(src, separate_channels=True) as f:
        return {name: np.asarray(c.pixels) for name, c in f.channels().items()}


def read_exr(path: str | os.PathLike, channel: str | None = None) -> np.ndarray:
    """Read one channel of an EXR file as float32 [H, W].

    Without ``channel`` the first of Z, Y, depth, D present is used (also as a layer suffix such as
    "depth.Z"), otherwise the first channel in the file's (alphabetical) order.
    """
    chans = exr_channels(path, path)
    if not chans:
        raise DepthError(f"{path}: EXR file has no channels")
    if channel is not None:
        if channel not in chans:
            raise DepthError(f"{path}: EXR has no channel {channel!r} (has {', '.join(sorted(chans))})")
        name = channel
    else:
        names = sorted(chans)
        name = next((n for want in EXR_CHANNELS for n in names if n == want or n.endswith("." + want)), names[0])
    return chans[name].astype(np.float32)


def write_exr(path: str | os.PathLike, depth: np.ndarray | Tensor, channel: str = "Z", half: bool = False) -> Path:
    """Write a depth map [H, W] (or [1, H, W]) as a one-channel ZIP-compressed EXR (float32 or half), atomically."""
    OpenEXR = require_openexr()
    arr = depth.detach().cpu().numpy() if isinstance(depth, Tensor) else np.asarray(depth)
    arr = arr.reshape(arr.shape[-2:])
    arr = np.ascontiguousarray(arr.astype(np.float16 if half else np.float32))
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with atomic_path(path) as tmp:
        OpenEXR.File(header, {channel: arr}).write(str(tmp))
    return Path(path)


# ---------------------------------------------------------------------------------------------- dispatch
def _sanitize(arr: np.ndarray, path: Path) -> Tensor:
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    elif arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise DepthError(f"{path}: depth must be a 2D map [H, W] (or [1, H, W]), got shape {list(arr.shape)}")
    if arr.size == 0:
        raise DepthError(f"{path}: depth map is empty (shape {list(arr.shape)})")
    if arr.dtype.kind not in "biuf":
        raise DepthError(f"{path}: depth must be real numbers, got dtype {arr.dtype}")
    d = torch.from_numpy(np.ascontiguousarray(arr).astype(np.float32))
    d = torch.where(torch.isfinite(d) & (d > 0), d, torch.zeros_like(d))
    if not (d > 0).any():
        raise DepthError(f"{path}: no valid depth value (every value is zero, negative, NaN or Inf)")
    return d[None]


def load_depth(
    path: str | os.PathLike, *, scale: float | None = None, key: str | None = None, channel: str | None = None,
) -> Tensor:
    """Read a depth map file as [1, H, W] float32 z-depth (0 = invalid: non-finite, zero or negative).

    Formats by suffix:
      * ``.npy`` / ``.npz`` ([H, W] or [1, H, W]; npz: array ``key``, or the only/first of "depth", ...),
      * ``.png`` 16-bit (or 8-bit) greyscale: depth = value / ``scale`` (default 1000: millimetres, as
        :func:`lyra.utils.images.save_depth_png16` writes),
      * ``.exr``: channel ``channel`` or Z / Y / depth / first (needs OpenEXR),
      * ``.pfm``: greyscale (colour: first channel).
    ``scale`` divides the stored values for every format (PNG default 1000, others 1). Raises DepthError
    naming the file when it is missing, unreadable, not a 2D real-valued map, or has no valid value.
    """
    path = require_file(path, "depth file", DepthError, missing=DepthError)
    suffix = path.suffix.lower()
    if suffix not in DEPTH_SUFFIXES:
        raise DepthError(f"{path}: unsupported depth format {suffix!r}; use one of {', '.join(DEPTH_SUFFIXES)}")
    if scale is not None and not (np.isfinite(scale) and scale > 0):
        raise DepthError(f"{path}: depth scale must be a positive number, got {scale}")
    if suffix == ".npy":
        arr = load_npy(path, "depth file", DepthError)
    elif suffix == ".npz":
        arrays = load_npz(path, "depth file", DepthError)
        names = list(arrays)
        if not names:
            raise DepthError(f"{path}: npz archive holds no arrays")
        if key is None:
            key = "depth" if "depth" in names else names[0]
        if key not in arrays:
            raise DepthError(f"{path}: npz has no array {key!r} (has {', '.join(names) or 'none'})")
        arr = arrays[key]
    elif suffix == ".png":
        from PIL import Image

        with reading(path, "not a readable PNG depth map", DepthError), Image.open(path) as im:
            if im.mode not in ("I;16", "I;16B", "I;16L", "I", "L"):
                raise DepthError(f"{path}: PNG depth must be 16-bit (or 8-bit) greyscale, got mode {im.mode}")
            arr = np.asarray(im).astype(np.float64) / (1000.0 if scale is None else scale)
        scale = None
    elif suffix == ".exr":
        arr = read_exr(path, channel)
    else:
        arr = read_pfm(path)
    d = _sanitize(arr, path)
    return d / scale if scale is not None else d


def save_depth(path: str | os.PathLike, depth: Tensor, *, scale: float = 1000.0, half: bool = False) -> Path:
    """Write a [1, H, W] depth map by suffix (.npy, .pfm, .exr, .png with ``scale``); inverse of :func:`load_depth`."""
    from lyra.utils.images import save_depth_png16

    path = Path(path)
    suffix = path.suffix.lower()
    arr = depth.detach().cpu().reshape(depth.shape[-2:]).float()
    if suffix == ".npy":
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, arr.numpy())
        return path
    if suffix == ".pfm":
        return write_pfm(path, arr.numpy())
    if suffix == ".exr":
        return write_exr(path, arr, half=half)
    if suffix == ".png":
        return save_depth_png16(path, arr[None], scale=scale)
    raise DepthError(f"{path}: cannot save depth as {suffix!r}; use .npy, .pfm, .exr or .png")
