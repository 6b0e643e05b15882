"""Lift an image with depth to world-space points, or to one Gaussian per pixel (the plain depth-lifting baseline)."""

from __future__ import annotations

import torch
from torch import Tensor

from lyra.cameras.camera import Cameras
from lyra.cameras.rays import pixel_grid
from lyra.gaussians.gaussians import Gaussians


def unproject_depth(depth: Tensor, camera: Cameras) -> Tensor:
    """World points [H, W, 3] of every pixel centre at camera-space z = ``depth`` [1, H, W] (one camera)."""
    if len(camera) != 1:
        raise ValueError(f"unproject_depth: expects one camera, got {len(camera)}")
    H, W = camera.height, camera.width
    if tuple(depth.shape[-2:]) != (H, W):
        raise ValueError(f"unproject_depth: depth is {list(depth.shape)} but the camera is {H}x{W}")
    z = depth.reshape(H, W).to(camera.dtype)
    u, v = pixel_grid(H, W, camera.device, camera.dtype)
    x = (u - camera.cx[0]) / camera.fx[0] * z
    y = (v - camera.cy[0]) / camera.fy[0] * z
    p_cam = torch.stack([x, y, z], dim=-1)
    c2w = camera.c2w[0]
    return p_cam @ c2w[:3, :3].T + c2w[:3, 3]


def depth_to_gaussians(
    rgb: Tensor, depth: Tensor, camera: Cameras, opacity: float = 0.95, scale_factor: float = 0.7,
    stride: int = 1,
) -> Gaussians:
    """One isotropic Gaussian per valid pixel (depth > 0), sized to cover its pixel footprint.

    Args:
        rgb: [3, H, W] colours in [0, 1].
        depth: [1, H, W] camera-space z (0 = invalid).
        camera: the single camera that saw the image.
        scale_factor: Gaussian std as a fraction of the pixel footprint z/f (times ``stride``).
        stride: keep every ``stride``-th pixel in each direction.
    Returns:
        Gaussians with RGB colours.
    """
    pts = unproject_depth(depth, camera)[::stride, ::stride].reshape(-1, 3)
    z = depth.reshape(depth.shape[-2:])[::stride, ::stride].reshape(-1).to(pts.dtype)
    col = rgb[:, ::stride, ::stride].reshape(3, -1).T.to(pts.dtype)
    keep = z > 0
    pts, z, col = pts[keep], z[keep], col[keep]
    n = pts.shape[0]
    f = 0.5 * (camera.fx[0] + camera.fy[0])
    s = (z / f * scale_factor * stride).clamp(min=1e-6)
    quats = torch.zeros(n, 4, dtype=pts.dtype, device=pts.device)
    quats[:, 0] = 1.0
    return Gaussians(means=pts, quats=quats, scales=s[:, None].expand(n, 3).contiguous(),
                     opacities=torch.full((n,), opacity, dtype=pts.dtype, device=pts.device),
                     colors=col.clamp(0, 1).contiguous())
