"""Viewer: a web viewer (viser) for Gaussian scenes and their trajectory cameras."""

from lyra.viewer.viewer import DEFAULT_MAX_GAUSSIANS, SceneViewer, camera_poses, splat_arrays

__all__ = ["DEFAULT_MAX_GAUSSIANS", "SceneViewer", "camera_poses", "splat_arrays"]
