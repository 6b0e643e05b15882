"""Camera files: the custom-trajectory npz (w2c [N,4,4] + K [N,3,3] + image size)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from lyra.cameras.camera import CameraError, Cameras
from lyra.errors import reading
from lyra.utils.files import atomic_path
from lyra.utils.inputs import load_npz

CAMERA_KEYS = ("w2c", "c2w", "K", "height", "width")
MAX_CAMERAS = 100_000  # cameras in one file
MAX_IMAGE_SIDE = 16_384  # pixels of height / width


def save_cameras_npz(path: str | os.PathLike, cameras: Cameras) -> Path:
    """Write ``cameras`` as npz with keys w2c [N,4,4], K [N,3,3], height, width (atomically)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, w2c=cameras.w2c.detach().cpu().numpy().astype(np.float32),
                     K=cameras.K.detach().cpu().numpy().astype(np.float32),
                     height=np.int64(cameras.height), width=np.int64(cameras.width))
    return path


def _real_array(arrays: dict[str, np.ndarray], name: str, path: Path) -> np.ndarray:
    """Array ``name`` as float64 once it is real-valued and finite."""
    a = arrays[name]
    if a.dtype.kind not in "biuf":
        raise CameraError(path, f"{name} must hold real numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise CameraError(path, f"{name} has NaN/Inf values")
    return a


def _image_side(arrays: dict[str, np.ndarray], name: str, path: Path) -> int:
    """``height`` / ``width``: one whole number in 1..MAX_IMAGE_SIDE."""
    a = arrays[name]
    if a.size != 1 or a.dtype.kind not in "iuf":
        raise CameraError(path, f"{name} must be one integer, got {a.dtype} of shape {list(a.shape)}")
    v = float(a.reshape(()))
    if not (v.is_integer() and 1 <= v <= MAX_IMAGE_SIDE):
        raise CameraError(path, f"{name} must be a whole number of pixels in 1..{MAX_IMAGE_SIDE}, got {v:g}")
    return int(v)


def load_cameras_npz(path: str | os.PathLike) -> Cameras:
    """Read a custom-trajectory npz: ``w2c`` [N,4,4] (or ``c2w``), ``K`` [N,3,3] or [3,3], ``height``, ``width``.

    ``K`` may also be given as [N,4] / [4] rows of (fx, fy, cx, cy). Every array is checked (no pickles, real
    finite values, shapes, 1..MAX_CAMERAS cameras, sizes 1..MAX_IMAGE_SIDE, no unknown arrays); raises
    CameraError naming the file.
    """
    path = Path(path)
    arrays = load_npz(path, "camera file", CameraError, missing=CameraError)
    keys = set(arrays)
    unknown = sorted(keys - set(CAMERA_KEYS))
    if unknown:
        raise CameraError(path, f"unknown array(s) {', '.join(map(repr, unknown))} (expected w2c or c2w, K, "
                                "height, width)")
    if {"w2c", "c2w"} <= keys:
        raise CameraError(path, "give either w2c or c2w, not both")
    pose_key = "w2c" if "w2c" in keys else "c2w" if "c2w" in keys else None
    if pose_key is None:
        raise CameraError(path, f"needs a 'w2c' (or 'c2w') array [N,4,4]; found keys {sorted(keys)}")
    missing = [k for k in ("K", "height", "width") if k not in keys]
    if missing:
        raise CameraError(path, f"missing {', '.join(missing)} (keys found: {sorted(keys)})")
    pose = _real_array(arrays, pose_key, path)
    pose = pose[None] if pose.ndim == 2 else pose
    if pose.ndim != 3 or pose.shape[1:] != (4, 4) or not 1 <= pose.shape[0] <= MAX_CAMERAS:
        raise CameraError(path, f"{pose_key} must be [N, 4, 4] with 1 <= N <= {MAX_CAMERAS}, got {list(pose.shape)}")
    K = _real_array(arrays, "K", path)
    if K.shape[-1] == 4 and K.ndim in (1, 2):
        fx, fy, cx, cy = np.moveaxis(K.reshape(-1, 4), -1, 0)
        Km = np.zeros((fx.shape[0], 3, 3))
        Km[:, 0, 0], Km[:, 1, 1], Km[:, 0, 2], Km[:, 1, 2], Km[:, 2, 2] = fx, fy, cx, cy, 1.0
        K = Km
    height, width = _image_side(arrays, "height", path), _image_side(arrays, "width", path)
    w2c = torch.from_numpy(pose)
    if pose_key == "c2w":
        with reading(path, "c2w is not invertible", CameraError):
            w2c = torch.linalg.inv(w2c)
    try:
        return Cameras(w2c.to(torch.float32), torch.from_numpy(K).to(torch.float32), height, width)
    except CameraError as exc:
        raise CameraError(path, str(exc).removeprefix("Cameras: ")) from exc
