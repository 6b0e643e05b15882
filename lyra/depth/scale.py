"""Scene-scale normalisation of depth (so the method's fixed trajectory sizes fit any scene) and resizing."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.depth.files import DepthError

# Median valid depth after normalisation, in scene units. The method's trajectories are fixed in
# scene units (look-at point at depth 1.0, movements 0.1-0.6; sdg.md §4.3) and assume MoGe-scale
# geometry. With the median surface at 2.0:
#   * the look-at point (1.0) sits between the camera and the bulk of the scene, as in the method's
#     typical inputs, and the largest forward move (zoom_in, 0.4) keeps the median surface 1.6 ahead;
#   * a 0.3 lateral move gives ~8.5 deg of parallax at the median depth (~15 % of a 60 deg view):
#     visible 3D motion with disocclusions the generator can fill. 1.0 would double that (holes
#     everywhere, cameras inside near objects); 3.0+ makes the trajectories nearly pure rotations.
DEFAULT_TARGET_MEDIAN = 2.0


def normalize_scene_scale(
    depth: Tensor, target_median: float = DEFAULT_TARGET_MEDIAN, mask: Tensor | None = None,
) -> tuple[Tensor, float]:
    """Scale depth so that its median over valid pixels equals ``target_median``.

    Args:
        depth: [..., 1, H, W] z-depth in any unit (0 or non-finite = invalid, kept as 0).
        target_median: the median depth wanted, in scene units.
        mask: optional [..., 1, H, W] bool/0-1 selection of the pixels the median is taken over.
    Returns:
        (scaled depth, scale): ``scaled = depth * scale``; scene units = input units x scale (report it).
    """
    if not target_median > 0:
        raise DepthError(f"normalize_scene_scale: target_median must be > 0, got {target_median}")
    valid = torch.isfinite(depth) & (depth > 0)
    sel = valid if mask is None else valid & (mask > 0)
    if not sel.any():
        raise DepthError("normalize_scene_scale: the depth map has no valid pixel (all zero, negative or non-finite)")
    med = float(depth[sel].double().median())
    scale = target_median / med
    out = torch.where(valid, depth * scale, torch.zeros_like(depth))
    return out, scale


def resize_depth(depth: Tensor, height: int, width: int) -> Tensor:
    """Resize [..., 1, h, w] depth to ``height x width`` by nearest neighbour (no mixing across edges or holes)."""
    if tuple(depth.shape[-2:]) == (height, width):
        return depth
    lead = depth.shape[:-2]
    d = depth.reshape(-1, 1, *depth.shape[-2:]).float()
    out = F.interpolate(d, size=(height, width), mode="nearest-exact")
    return out.reshape(*lead, height, width)
