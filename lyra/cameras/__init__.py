"""Cameras: the camera batch type, the method's trajectories and Plücker rays."""

from lyra.cameras.camera import CameraError, Cameras, intrinsics_matrix, look_at

__all__ = ["CameraError", "Cameras", "intrinsics_matrix", "look_at"]
