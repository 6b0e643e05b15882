"""Source anchoring: keep the input view exact in a decoded scene.

The input image with its depth is the one view of the scene that is known, not generated. Anchoring replaces the
decoded Gaussians that this view already explains with the view itself, lifted one Gaussian per pixel
(:func:`lyra.cache3d.depth_to_gaussians`), and keeps the decoded Gaussians everywhere the view says nothing: outside
its frustum, behind its surfaces (what novel cameras see through disocclusions) and on pixels without depth.
"""

from __future__ import annotations

from torch import Tensor

from lyra.cache3d.lift import depth_to_gaussians
from lyra.cache3d.warp import project_points
from lyra.cameras.camera import Cameras
from lyra.gaussians.gaussians import Gaussians
from lyra.gaussians.ops import merge


def explained_by_source(means: Tensor, depth: Tensor, camera: Cameras, tolerance: float = 0.05) -> Tensor:
    """[N] bool: the points that the source view already shows, or that it shows to be empty.

    A point counts when it projects inside the image onto a pixel with depth d > 0 at camera-space z with
    0 < z <= d · (1 + ``tolerance``): on the visible surface, or in front of it where the view saw free space.

    Args:
        means: [N, 3] world points (scene units).
        depth: [1, H, W] the source view's z-depth (0 = unknown).
        camera: the source camera (one camera, H x W).
        tolerance: relative depth band counted as the surface itself.
    """
    if len(camera) != 1:
        raise ValueError(f"explained_by_source: expects one camera, got {len(camera)}")
    H, W = camera.height, camera.width
    if tuple(depth.shape[-2:]) != (H, W):
        raise ValueError(f"explained_by_source: depth is {list(depth.shape)} but the camera is {H}x{W}")
    if tolerance < 0:
        raise ValueError(f"explained_by_source: tolerance must be >= 0, got {tolerance}")
    u, v, z = (t[0] for t in project_points(means, camera))
    inside = (u >= 0) & (u < W) & (v >= 0) & (v < H) & (z > 0)
    d = depth.reshape(H, W).to(z.dtype)[v.clamp(0, H - 1).long(), u.clamp(0, W - 1).long()]
    return inside & (d > 0) & (z <= d * (1 + tolerance))


def anchor_to_source(gaussians: Gaussians, image: Tensor, depth: Tensor, camera: Cameras,
                     tolerance: float = 0.05) -> tuple[Gaussians, int]:
    """The decoded scene with the source view kept exact.

    Args:
        gaussians: the decoded (fused, pruned) scene, RGB colours.
        image: [3, H, W] the source image in [0, 1]; depth: [1, H, W] its z-depth (0 = unknown).
        camera: the source camera.
        tolerance: see :func:`explained_by_source`.
    Returns:
        (the lifted source view followed by the decoded Gaussians it does not explain, how many decoded ones were
        dropped).
    """
    drop = explained_by_source(gaussians.means, depth, camera, tolerance)
    lifted = depth_to_gaussians(image, depth, camera).to(gaussians.device)
    kept = gaussians.index(~drop)
    return merge([lifted, kept]), int(drop.sum())
