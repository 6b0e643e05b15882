"""Source anchoring: keep the input view exact in a decoded scene.

The input image with its depth is the one view of the scene that is known, not generated. Anchoring replaces the
decoded Gaussians that this view already explains with the view itself, lifted one Gaussian per pixel
(:func:`lyra.cache3d.depth_to_gaussians`), and keeps the decoded Gaussians everywhere the view says nothing: outside
its frustum, behind its surfaces (what novel cameras see through disocclusions) and on pixels without depth.

A decoded Gaussian counts as explained when its centre lies on a visible surface of the source view or in front of
it, or when its footprint (``footprint`` standard deviations of its largest axis, projected into the source camera)
reaches a source pixel whose surface lies clearly behind it (by more than ``occlusion_margin``): from the source
camera it would hide part of a surface that the image shows unobstructed. Testing the centre alone keeps large
blobs that straddle silhouettes and image borders, which then smear over the sharp lifted surfaces at novel views;
the margin keeps the blobs that continue a surface at its own depth beyond the border of the image.
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
                        radius: Tensor | None = None, occlusion_margin: float = 0.15) -> Tensor:
    """[N] bool: the points that the source view already shows, shows to be empty, or would have to hide.

    With z a point's camera-space depth and d the source depth (> 0) at its projection, a point counts when
    0 < z <= d · (1 + ``tolerance``) at its own pixel (on the visible surface or in front of it), or when some pixel
    with depth d within its footprint (``radius`` projected at depth z, in pixels rounded up to the next of
    ``RADII_PX``) has
    z < d · (1 − ``occlusion_margin``): its footprint would cover that surface. Points just outside the image count
    the second way against the border pixels within their radius.

    Args:
        means: [N, 3] world points (scene units).
        depth: [1, H, W] the source view's z-depth (0 = unknown).
        camera: the source camera (one camera, H x W).
        tolerance: relative depth band counted as the surface itself.
        radius: [N] footprint radii in scene units (None: the centre pixel alone).
        occlusion_margin: how far in front of a surface (relative) a footprint must lie to count as hiding it.
    """
    if len(camera) != 1:
        raise ValueError(f"explained_by_source: expects one camera, got {len(camera)}")
    H, W = camera.height, camera.width
    if tuple(depth.shape[-2:]) != (H, W):
        raise ValueError(f"explained_by_source: depth is {list(depth.shape)} but the camera is {H}x{W}")
    if tolerance < 0 or not 0 <= occlusion_margin < 1:
        raise ValueError(f"explained_by_source: need tolerance >= 0 and 0 <= occlusion_margin < 1, got "
                         f"{tolerance}, {occlusion_margin}")
    u, v, z = (t[0] for t in project_points(means, camera))
    d0 = depth.reshape(1, 1, H, W).to(z.dtype)
    ui, vi = u.clamp(0, W - 1).long(), v.clamp(0, H - 1).long()
    inside = (u >= 0) & (u < W) & (v >= 0) & (v < H) & (z > 0)
    d = d0[0, 0, vi, ui]
    explained = inside & (d > 0) & (z <= d * (1 + tolerance))
    if radius is None or not len(z):
        return explained
    radius_px = radius.to(z.dtype) * camera.fx[0].to(z.dtype) / z.clamp(min=1e-6)
    radii = torch.tensor(RADII_PX, dtype=z.dtype, device=z.device)
    level = torch.searchsorted(radii, radius_px.contiguous()).clamp(max=len(RADII_PX) - 1)
    r = radii[level]
    near = (u >= -r) & (u < W + r) & (v >= -r) & (v < H + r) & (z > 0)
    pyramid = torch.stack([F.max_pool2d(d0, 2 * k + 1, 1, k)[0, 0] if k else d0[0, 0]
                           for k in RADII_PX[: int(level.max()) + 1]])
    dmax = pyramid[level, vi, ui]
    return explained | (near & (dmax > 0) & (z < dmax * (1 - occlusion_margin)))


def anchor_to_source(gaussians: Gaussians, image: Tensor, depth: Tensor, camera: Cameras,
                     tolerance: float = 0.05, footprint: float = 2.0,
                     occlusion_margin: float = 0.15) -> tuple[Gaussians, int]:
    """The decoded scene with the source view kept exact.

    Args:
        gaussians: the decoded (fused, pruned) scene, RGB colours.
        image: [3, H, W] the source image in [0, 1]; depth: [1, H, W] its z-depth (0 = unknown).
        camera: the source camera.
        tolerance, occlusion_margin: see :func:`explained_by_source`.
        footprint: a decoded Gaussian's footprint radius in standard deviations of its largest axis (0: its
            centre alone).
    Returns:
        (the lifted source view followed by the decoded Gaussians it does not explain, how many decoded ones were
        dropped).
    """
    radius = footprint * gaussians.scales.max(dim=-1).values
    drop = explained_by_source(gaussians.means, depth, camera, tolerance, radius, occlusion_margin)
    lifted = depth_to_gaussians(image, depth, camera).to(gaussians.device)
    kept = gaussians.index(~drop)
    return merge([lifted, kept]), int(drop.sum())
