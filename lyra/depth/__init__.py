"""depth: depth sources for an input image (files, stereo pairs, local transformers models) and scene scale."""

from lyra.depth.files import DepthError, load_depth, read_exr, read_pfm, save_depth, write_exr, write_pfm
from lyra.depth.model import DepthModel, load_depth_model
from lyra.depth.scale import DEFAULT_TARGET_MEDIAN, normalize_scene_scale, resize_depth
from lyra.depth.source import NO_DEPTH_MESSAGE, DepthInput, resolve_depth
from lyra.depth.stereo import (
    StereoCalibration,
    block_matching,
    calibrated_depth,
    disparity_to_depth,
    motorcycle_calibration,
    motorcycle_depth,
    motorcycle_right_view,
    parse_calib,
    stereo_depth,
)

__all__ = [
    "DEFAULT_TARGET_MEDIAN", "NO_DEPTH_MESSAGE", "DepthError", "DepthInput", "DepthModel", "StereoCalibration",
    "block_matching", "calibrated_depth", "disparity_to_depth", "load_depth", "load_depth_model",
    "motorcycle_calibration", "motorcycle_depth", "motorcycle_right_view", "normalize_scene_scale", "parse_calib",
    "read_exr", "read_pfm", "resize_depth", "resolve_depth", "save_depth", "stereo_depth", "write_exr", "write_pfm",
]
