"""Splitting a cameras file into its trajectories, and the one camera per trajectory the viewer marks.

``lyra generate`` / ``lyra demo`` write ``cameras.npz`` as the six trajectories one after another (``Cameras.cat``;
no orbit cameras), every trajectory starting at the input camera, and record ``trajectories`` and
``frames_per_trajectory`` in ``report.json`` beside it. Without such a report the split is recovered from the poses:
the smallest period ``p`` (dividing the camera count) at which cameras 0, p, 2p, ... all equal the first one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from lyra.cameras import Cameras

REPORT = "report.json"


def report_frames_per_trajectory(cameras_path: str | os.PathLike, n_cameras: int) -> int | None:
    """``frames_per_trajectory`` of the ``report.json`` beside ``cameras_path`` when it accounts for exactly
    ``n_cameras`` cameras (trajectories x frames); None when there is no such report (or it does not fit)."""
    report = Path(cameras_path).parent / REPORT
    try:
        d = json.loads(report.read_text())
        frames, trajs = d["frames_per_trajectory"], d["trajectories"]
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError):
        return None
    ok = isinstance(frames, int) and isinstance(trajs, int) and frames >= 1 and frames * trajs == n_cameras
    return frames if ok else None


def _same_pose(w2c: np.ndarray, i: int, j: int, tol: float = 1e-5) -> bool:
    """Whether cameras ``i`` and ``j`` of ``w2c`` [N, 4, 4] have the same pose (up to ``tol`` x scale)."""
    scale = max(1.0, float(np.abs(w2c[j, :3, 3]).max()))
    return bool(np.allclose(w2c[i], w2c[j], rtol=0.0, atol=tol * scale))


def infer_frames_per_trajectory(cameras: Cameras) -> int:
    """Trajectory length of concatenated trajectories that all start at the first camera: the smallest period
    ``p`` (dividing N) with cameras 0, p, 2p, ... equal to camera 0; N (one trajectory) when there is none."""
    w2c = cameras.w2c.detach().to("cpu", torch.float64).numpy()
    n = len(w2c)
    for p in range(2, n):
        if n % p == 0 and all(_same_pose(w2c, k, 0) for k in range(p, n, p)):
            return p
    return max(n, 1)


def trajectory_ranges(cameras: Cameras, frames_per_trajectory: int | None = None) -> list[range]:
    """Camera index ranges of the trajectories, ``frames_per_trajectory`` cameras each (inferred when None; a
    shorter last one if it does not divide the count)."""
    n = len(cameras)
    if n == 0:
        return []
    p = infer_frames_per_trajectory(cameras) if frames_per_trajectory is None else int(frames_per_trajectory)
    if p < 1:
        raise ValueError(f"frames_per_trajectory must be >= 1, got {p}")
    return [range(s, min(s + p, n)) for s in range(0, n, p)]


def marker_cameras(cameras: Cameras, ranges: list[range]) -> list[int]:
    """Per trajectory, the camera farthest from its first camera (the end of a straight move, half-way round a
    circle; the first camera of a trajectory that does not move)."""
    centres = cameras.c2w.detach().to("cpu", torch.float64)[:, :3, 3]
    out = []
    for r in ranges:
        d = (centres[r.start:r.stop] - centres[r.start]).norm(dim=-1)
        out.append(r.start + int(torch.argmax(d)) if float(d.max()) > 0 else r.start)
    return out
