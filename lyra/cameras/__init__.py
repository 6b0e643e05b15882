"""Cameras: the camera batch type, the method's trajectories, custom trajectories and Plücker rays."""

from lyra.cameras.camera import CameraError, Cameras, intrinsics_matrix, look_at
from lyra.cameras.io import load_cameras_npz, save_cameras_npz
from lyra.cameras.rays import camera_rays, pixel_grid, plucker_rays
from lyra.cameras.trajectories import (
    INFERENCE_ORDER,
    METHOD_TRAJECTORIES,
    TRAJECTORY_KINDS,
    TrajectorySpec,
    default_intrinsics,
    method_trajectories,
    nominal_positions,
    orbit,
    relative_matrices,
    trajectory_w2c,
)

__all__ = [
    "INFERENCE_ORDER", "METHOD_TRAJECTORIES", "TRAJECTORY_KINDS", "CameraError", "Cameras",
    "TrajectorySpec", "camera_rays", "default_intrinsics", "intrinsics_matrix", "load_cameras_npz",
    "look_at", "method_trajectories", "nominal_positions", "orbit", "pixel_grid", "plucker_rays",
    "relative_matrices", "save_cameras_npz", "trajectory_w2c",
]
