"""Source anchoring: keep the input view exact in a decoded scene.

The input image with its depth is the one view of the scene that is known, not generated. Anchoring replaces the
decoded Gaussians that this view already explains with the view itself, lifted one Gaussian per pixel
(:func:`lyra.cache3d.depth_to_gaussians`), and keeps the decoded Gaussians everywhere the view says nothing: outside
its frustum, behind its surfaces (what novel cameras see through disocclusions) and on pixels without depth.

A decoded Gaussian counts as explained when any source pixel under its footprint (``footprint`` standard deviations
of its largest axis, projected into the source camera) shows a surface at or behind it: from the source camera it
would cover a surface that the image shows unobstructed. Testing the centre alone keeps large blobs that straddle
silhouettes and image borders, which then smear over the sharp lifted surfaces at novel views.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.cache3d.lift import depth_to_gaussians
from lyra.cache3d.warp import project_points
from lyra.cameras.camera import Cameras
from lyra.gaussians.gaussians import Gaussians
from lyra.gaussians.ops import merge

RADII_PX = (0, 1, 2, 4, 8, 16, 32)  # footprint radii of the max-pooled depth maps; larger footprints use the last


def explained_by_source(means: Tensor, depth: Tensor, camera: Cameras, tolerance: float = 0.05,
                        radius_px: Tensor | None = None) -> Tensor:
    """[N] bool: the points that the source view already shows, or shows to be empty.

    A point counts when, within ``radius_px`` of its projection (rounded up to the next of ``RADII_PX``), some pixel
    with depth d > 0 has 0 < z <= d · (1 + ``tolerance``), z being the point's camera-space depth: the point is on
    that visible surface or in front of it, where the view saw free space. Points near the image border count the
    same way against the border pixels within their radius.

    Args:
        means: [N, 3] world points (scene units).
        depth: [1, H, W] the source view's z-depth (0 = unknown).
        camera: the source camera (one camera, H x W).
        tolerance: relative depth band counted as the surface itself.
        radius_px: [N] footprint radii in source pixels (None: the centre pixel alone).
    """
    if len(camera) != 1:
        raise ValueError(f"explained_by_source: expects one camera, got {len(camera)}")
    H, W = camera.height, camera.width
    if tuple(depth.shape[-2:]) != (H, W):
        raise ValueError(f"explained_by_source: depth is {list(depth.shape)} but the camera is {H}x{W}")
    if tolerance < 0:
        raise ValueError(f"explained_by_source: tolerance must be >= 0, got {tolerance}")
    u, v, z = (t[0] for t in project_points(means, camera))
    d0 = depth.reshape(1, 1, H, W).to(z.dtype)
    radii = torch.tensor(RADII_PX, dtype=z.dtype, device=z.device)
    if radius_px is None:
        level = torch.zeros_like(z, dtype=torch.long)
    else:
        level = torch.searchsorted(radii, radius_px.to(z.dtype).contiguous()).clamp(max=len(RADII_PX) - 1)
    r = radii[level]
    inside = (u >= -r) & (u < W + r) & (v >= -r) & (v < H + r) & (z > 0)
    pyramid = torch.stack([F.max_pool2d(d0, 2 * k + 1, 1, k)[0, 0] if k else d0[0, 0]
                           for k in RADII_PX[: int(level.max()) + 1 if level.numel() else 1]])
    d = pyramid[level, v.clamp(0, H - 1).long(), u.clamp(0, W - 1).long()]
    return inside & (d > 0) & (z <= d * (1 + tolerance))


def anchor_to_source(gaussians: Gaussians, image: Tensor, depth: Tensor, camera: Cameras,
                     tolerance: float = 0.05, footprint: float = 2.0) -> tuple[Gaussians, int]:
    """The decoded scene with the source view kept exact.

    Args:
        gaussians: the decoded (fused, pruned) scene, RGB colours.
        image: [3, H, W] the source image in [0, 1]; depth: [1, H, W] its z-depth (0 = unknown).
        camera: the source camera.
        tolerance: see :func:`explained_by_source`.
        footprint: a decoded Gaussian's footprint radius in standard deviations of its largest axis (0: its
            centre alone).
    Returns:
        (the lifted source view followed by the decoded Gaussians it does not explain, how many decoded ones were
        dropped).
    """
    z = project_points(gaussians.means, camera)[2][0].clamp(min=1e-6)
    radius = footprint * gaussians.scales.max(dim=-1).values * camera.fx[0].to(z.dtype) / z
    drop = explained_by_source(gaussians.means, depth, camera, tolerance, radius)
    lifted = depth_to_gaussians(image, depth, camera).to(gaussians.device)
    kept = gaussians.index(~drop)
    return merge([lifted, kept]), int(drop.sum())
