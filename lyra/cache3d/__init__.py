"""cache3d: lift an image with depth to 3D points/Gaussians (and, later, forward-warp them into cameras)."""

from lyra.cache3d.lift import depth_to_gaussians, unproject_depth

__all__ = ["depth_to_gaussians", "unproject_depth"]
