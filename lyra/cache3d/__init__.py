"""cache3d: lift an image with depth to a 3D point cache, forward-warp it into cameras (z-buffer, holes), fill holes;
anchor a decoded scene to the input view."""

from lyra.cache3d.anchor import anchor_to_source, explained_by_source
from lyra.cache3d.inpaint import inpaint
from lyra.cache3d.lift import PointCache, depth_edges, depth_to_gaussians, lift_points, unproject_depth
from lyra.cache3d.warp import WarpResult, forward_warp, project_points, warp_image

__all__ = [
    "PointCache", "WarpResult", "anchor_to_source", "depth_edges", "explained_by_source",
    "depth_to_gaussians", "forward_warp", "inpaint", "lift_points",
    "project_points", "unproject_depth", "warp_image",
]
