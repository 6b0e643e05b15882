"""Viewer: a web viewer (viser) for Gaussian scenes, 4D sequences and their trajectory cameras."""

from lyra.viewer.sequence import SequenceViewer, frame_intervals, nearest_frame
from lyra.viewer.trajectories import (
    infer_frames_per_trajectory,
    marker_cameras,
    report_frames_per_trajectory,
    trajectory_ranges,
)
from lyra.viewer.viewer import DEFAULT_MAX_GAUSSIANS, SceneViewer, camera_poses, splat_arrays

__all__ = [
    "DEFAULT_MAX_GAUSSIANS", "SceneViewer", "SequenceViewer", "camera_poses", "frame_intervals",
    "infer_frames_per_trajectory", "marker_cameras", "nearest_frame", "report_frames_per_trajectory",
    "splat_arrays", "trajectory_ranges",
]
