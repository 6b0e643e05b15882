"""Camera files: the custom-trajectory npz (w2c [N,4,4] + K [N,3,3] + image size)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from lyra.cameras.camera import CameraError, Cameras
from lyra.utils.files import atomic_path


def save_cameras_npz(path: str | os.PathLike, cameras: Cameras) -> Path:
    """Write ``cameras`` as npz with keys w2c [N,4,4], K [N,3,3], height, width (atomically)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, w2c=cameras.w2c.detach().cpu().numpy().astype(np.float32),
                     K=cameras.K.detach().cpu().numpy().astype(np.float32),
                     height=np.int64(cameras.height), width=np.int64(cameras.width))
    return path


def load_cameras_npz(path: str | os.PathLike) -> Cameras:
    """Read a custom-trajectory npz: ``w2c`` [N,4,4] (or ``c2w``), ``K`` [N,3,3] or [3,3], ``height``, ``width``.

    ``K`` may also be given as [N,4] / [4] rows of (fx, fy, cx, cy). Raises CameraError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CameraError(f"{path}: camera file not found")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy raises many kinds for a bad file
        raise CameraError(f"{path}: not a readable npz file ({exc})") from exc
    keys = set(data.files)
    if "w2c" in keys:
        w2c = torch.from_numpy(np.asarray(data["w2c"], dtype=np.float64))
    elif "c2w" in keys:
        w2c = torch.linalg.inv(torch.from_numpy(np.asarray(data["c2w"], dtype=np.float64)))
    else:
        raise CameraError(f"{path}: needs a 'w2c' (or 'c2w') array [N,4,4]; found keys {sorted(keys)}")
    missing = [k for k in ("K", "height", "width") if k not in keys]
    if missing:
        raise CameraError(f"{path}: missing {', '.join(missing)} (keys found: {sorted(keys)})")
    K = np.asarray(data["K"], dtype=np.float64)
    if K.shape[-1] == 4 and K.ndim in (1, 2):
        fx, fy, cx, cy = np.moveaxis(K.reshape(-1, 4), -1, 0)
        Km = np.zeros((fx.shape[0], 3, 3))
        Km[:, 0, 0], Km[:, 1, 1], Km[:, 0, 2], Km[:, 1, 2], Km[:, 2, 2] = fx, fy, cx, cy, 1.0
        K = Km
    try:
        return Cameras(w2c.to(torch.float32), torch.from_numpy(K).to(torch.float32),
                       int(data["height"]), int(data["width"]))
    except CameraError as exc:
        raise CameraError(f"{path}: {exc}") from exc
