"""COLMAP text model export: ``cameras.txt``, ``images.txt``, ``points3D.txt`` from cameras and Gaussians.

The three files are written into one folder (use it as ``<dataset>/sparse/0`` for 3DGS-style trainers):

- ``cameras.txt``: ``CAMERA_ID PINHOLE WIDTH HEIGHT fx fy cx cy``, one camera per distinct K;
- ``images.txt``: ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`` (the world-to-camera rotation as a
  unit quaternion with qw >= 0, and the w2c translation), then an empty line of 2D points;
- ``points3D.txt``: ``POINT3D_ID X Y Z R G B ERROR`` with an empty track, one point per Gaussian mean,
  its colour the view-independent RGB (8-bit), error 0.

COLMAP's camera model is OpenCV's (x right, y down, z forward; world-to-camera) and its pixel
coordinates put pixel centres at +0.5, exactly as ``lyra.cameras``: no conversion is applied.
Image names default to ``frame_00000.png``... (the frames ``lyra render --cameras`` writes are
``rgb_00000.png``...; pass ``image_names`` to match your files).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from lyra.cameras import Cameras
from lyra.errors import InputError
from lyra.gaussians import Gaussians, rotmat_to_quat
from lyra.utils.files import atomic_path

COLMAP_FILES = ("cameras.txt", "images.txt", "points3D.txt")


def _write_text(path: Path, lines: list[str]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def _fmt(x: float) -> str:
    return repr(float(x))  # shortest round-trip representation


def save_colmap(
    out_dir: str | os.PathLike,
    g: Gaussians | None,
    cameras: Cameras,
    image_names: Sequence[str] | None = None,
) -> Path:
    """Write a COLMAP text model (see module docstring) into ``out_dir``; returns the folder.

    Args:
        g: Gaussian set for ``points3D.txt`` (None writes an empty point list).
        cameras: the N trajectory cameras (one image each).
        image_names: N image file names (default ``frame_{i:05d}.png``).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: COLMAP export writes a folder, and this is a file")
    n = len(cameras)
    if n == 0:
        raise InputError("COLMAP export needs at least one camera")
    names = list(image_names) if image_names is not None else [f"frame_{i:05d}.png" for i in range(n)]
    if len(names) != n or len(set(names)) != n or any(not s or any(c.isspace() for c in s) for s in names):
        raise InputError(f"COLMAP export needs {n} distinct image names without spaces")
    out.mkdir(parents=True, exist_ok=True)

    K = cameras.K.detach().to("cpu", torch.float64).numpy()
    w2c = cameras.w2c.detach().to("cpu", torch.float64)
    intr = [(K[i, 0, 0], K[i, 1, 1], K[i, 0, 2], K[i, 1, 2]) for i in range(n)]
    cam_ids: dict[tuple[float, ...], int] = {}
    for k in intr:
        cam_ids.setdefault(k, len(cam_ids) + 1)
    lines = ["# Camera list with one line of data per camera:",
             "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
             f"# Number of cameras: {len(cam_ids)}"]
    lines += [f"{cid} PINHOLE {cameras.width} {cameras.height} " + " ".join(_fmt(v) for v in k)
              for k, cid in cam_ids.items()]
    _write_text(out / "cameras.txt", lines)

    q = rotmat_to_quat(w2c[:, :3, :3]).numpy()  # (w, x, y, z), w >= 0
    t = w2c[:, :3, 3].numpy()
    lines = ["# Image list with two lines of data per image:",
             "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
             "#   POINTS2D[] as (X, Y, POINT3D_ID)",
             f"# Number of images: {n}, mean observations per image: 0"]
    for i in range(n):
        vals = " ".join(_fmt(v) for v in (*q[i], *t[i]))
        lines += [f"{i + 1} {vals} {cam_ids[intr[i]]} {names[i]}", ""]
    _write_text(out / "images.txt", lines)

    if g is None:
        xyz, rgb = np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    else:
        xyz = g.means.detach().to("cpu", torch.float64).numpy()
        rgb = (g.rgb().detach().to("cpu", torch.float64).clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.int64)
    lines = ["# 3D point list with one line of data per point:",
             "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)",
             f"# Number of points: {len(xyz)}, mean track length: 0"]
    lines += [f"{j + 1} {_fmt(p[0])} {_fmt(p[1])} {_fmt(p[2])} {c[0]} {c[1]} {c[2]} 0"
              for j, (p, c) in enumerate(zip(xyz.tolist(), rgb.tolist()))]
    _write_text(out / "points3D.txt", lines)
    return out
