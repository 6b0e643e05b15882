"""Camera trajectories of the method (GEN3C/Lyra SDG set), plus orbits and custom npz trajectories.

All trajectories are expressed relative to an *anchor* camera (by default the identity: the first
input camera is the world origin, looking down +z). For frame i of n, a nominal camera position p_i
and the look-at point q = (0, 0, center_depth) give a relative matrix M_i, and ``w2c_i = M_i @ w2c_anchor``.

Compatibility note: like the official SDG, M_i uses rotation rows (right, up, forward) from a
look-at with world-y reference and translation **-p_i** (not -R p_i), so the true camera centre is
R^T p_i: "left" at 0.3 sits slightly on an arc. We keep this so that our trajectories are bit-compatible
with NVIDIA's released data; zoom trajectories have R = I and are exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lyra.cameras.camera import CameraError, Cameras, intrinsics_matrix, look_at

TRAJECTORY_KINDS = (
    "left", "right", "up", "down", "zoom_in", "zoom_out", "clockwise", "counterclockwise",
)


@dataclass(frozen=True)
class TrajectorySpec:
    """One trajectory of the multi-trajectory set: its kind and movement-distance range."""

    kind: str
    distance_range: tuple[float, float]


# The method's six trajectories, in SDG folder order 0..5 (sdg.md §4.3).
METHOD_TRAJECTORIES: tuple[TrajectorySpec, ...] = (
    TrajectorySpec("left", (0.2, 0.3)),
    TrajectorySpec("right", (0.2, 0.3)),
    TrajectorySpec("up", (0.1, 0.2)),
    TrajectorySpec("zoom_out", (0.3, 0.4)),
    TrajectorySpec("zoom_in", (0.3, 0.4)),
    TrajectorySpec("clockwise", (0.4, 0.6)),
)
# Lyra's inference configs feed the folders in this order.
INFERENCE_ORDER = (5, 0, 1, 2, 3, 4)


def nominal_positions(
    kind: str, n_frames: int, distance: float, center_depth: float = 1.0,
    radius_x_factor: float = 0.15, radius_y_factor: float = 0.10, num_circles: float = 2.0,
) -> Tensor:
    """[n, 3] nominal camera positions p_i (anchor frame, float64) of a trajectory family."""
    if kind not in TRAJECTORY_KINDS:
        raise CameraError(f"unknown trajectory {kind!r}; choose from {', '.join(TRAJECTORY_KINDS)}")
    if n_frames < 1:
        raise CameraError(f"a trajectory needs at least 1 frame, got {n_frames}")
    n = n_frames
    i = torch.arange(n, dtype=torch.float64)
    step = i * distance * center_depth / n
    p = torch.zeros(n, 3, dtype=torch.float64)
    if kind in ("left", "right"):
        p[:, 0] = -step if kind == "left" else step
    elif kind in ("up", "down"):
        p[:, 1] = -step if kind == "up" else step
    elif kind in ("zoom_in", "zoom_out"):
        p[:, 2] = step if kind == "zoom_in" else -step
    else:
        theta = 2 * math.pi * num_circles * i / max(n - 1, 1)
        rx, ry = distance * radius_x_factor, distance * radius_y_factor
        sign = 1.0 if kind == "clockwise" else -1.0
        p[:, 0] = sign * rx * (torch.cos(theta) - 1) * center_depth
        p[:, 1] = ry * torch.sin(theta) * center_depth
    return p


def relative_matrices(positions: Tensor, center_depth: float = 1.0) -> Tensor:
    """[n, 4, 4] relative w2c matrices M_i for nominal positions [n, 3] looking at (0, 0, center_depth).

    Rotation rows are (right, up, forward) with right = normalize(y x forward); translation is -p
    (the official construction, see the module docstring).
    """
    p = positions.to(torch.float64)
    q = torch.tensor([0.0, 0.0, center_depth], dtype=torch.float64)
    f = q - p
    norm = f.norm(dim=-1, keepdim=True)
    if (norm < 1e-12).any():
        raise CameraError("trajectory passes through its look-at point; lower the movement distance")
    f = f / norm
    y = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64).expand_as(f)
    r = torch.nn.functional.normalize(torch.cross(y, f, dim=-1), dim=-1)
    u = torch.cross(f, r, dim=-1)
    M = torch.eye(4, dtype=torch.float64).repeat(p.shape[0], 1, 1)
    M[:, :3, :3] = torch.stack([r, u, f], dim=1)
    M[:, :3, 3] = -p
    return M


def trajectory_w2c(
    kind: str, n_frames: int, distance: float, center_depth: float = 1.0,
    anchor_w2c: Tensor | None = None, **kwargs: float,
) -> Tensor:
    """[n, 4, 4] float32 w2c of one trajectory: ``M_i @ anchor_w2c`` (anchor defaults to identity)."""
    M = relative_matrices(nominal_positions(kind, n_frames, distance, center_depth, **kwargs), center_depth)
    anchor = torch.eye(4, dtype=torch.float64) if anchor_w2c is None else anchor_w2c.to(torch.float64)
    return (M @ anchor).to(torch.float32)


def method_trajectories(
    K: Tensor, height: int, width: int, n_frames: int = 17, *, center_depth: float = 1.0,
    movement_factor: float = 1.0, seed: int | None = 0, anchor_w2c: Tensor | None = None,
    specs: tuple[TrajectorySpec, ...] = METHOD_TRAJECTORIES,
) -> list[Cameras]:
    """The method's six trajectories (folder order 0..5) as a list of camera batches.

    Args:
        K: [3, 3] pixel intrinsics of the anchor image (kept constant along every trajectory).
        n_frames: frames per trajectory (the method uses 121; the pocket scale 17).
        center_depth: depth of the look-at point in scene units (the method uses 1.0).
        movement_factor: multiplies every movement distance (the SDG's total factor).
        seed: seeds the per-trajectory distance draws U(lo, hi); None draws the range midpoints.
    """
    rng = np.random.default_rng(seed)
    out = []
    for spec in specs:
        lo, hi = spec.distance_range
        d = (lo + hi) / 2 if seed is None else float(rng.uniform(lo, hi))
        w2c = trajectory_w2c(spec.kind, n_frames, d * movement_factor, center_depth, anchor_w2c)
        out.append(Cameras(w2c, K.to(torch.float32).expand(n_frames, 3, 3).clone(), height, width))
    return out


def orbit(
    n_frames: int, radius: float, target: Tensor | tuple[float, float, float] = (0.0, 0.0, 1.0),
    height: int = 128, width: int = 128, fov_x_deg: float = 60.0, elevation_deg: float = 10.0,
    start_deg: float = 0.0, K: Tensor | None = None,
) -> Cameras:
    """A circular orbit of ``radius`` around ``target`` (world y is down), looking at it.

    Frame 0 sits at angle ``start_deg`` behind the target on the -z side (azimuth 0 = the anchor view direction).
    """
    target = torch.as_tensor(target, dtype=torch.float32)
    az = torch.deg2rad(torch.tensor(start_deg) + torch.arange(n_frames) * 360.0 / n_frames)
    el = math.radians(elevation_deg)
    eye = torch.stack([
        radius * math.cos(el) * torch.sin(az),
        torch.full_like(az, -radius * math.sin(el)),
        -radius * math.cos(el) * torch.cos(az),
    ], dim=-1) + target
    w2c = look_at(eye, target)
    if K is None:
        return Cameras.from_fov(w2c, height, width, fov_x_deg)
    return Cameras(w2c, K.to(torch.float32).expand(n_frames, 3, 3).clone(), height, width)


def default_intrinsics(height: int, width: int, fov_x_deg: float = 60.0) -> Tensor:
    """[3, 3] intrinsics with square pixels, centred principal point and horizontal FoV in degrees."""
    f = 0.5 * width / math.tan(math.radians(fov_x_deg) / 2)
    return intrinsics_matrix(f, f, width / 2.0, height / 2.0)
