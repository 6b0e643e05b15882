"""Pick the depth of an input image from what the user gave: a file, a stereo pair, or a depth model."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor

from lyra.depth.files import DepthError, load_depth
from lyra.depth.scale import resize_depth

NO_DEPTH_MESSAGE = (
    "no depth for the input image: give --depth FILE (npy/npz/png16/exr/pfm), "
    "--stereo RIGHT --calib FILE (a rectified right image and its Middlebury calib.txt), "
    "or --depth-model DIR (a local transformers depth model, e.g. Depth Anything)"
)


@dataclass(frozen=True)
class DepthInput:
    """Depth of an input image and where it came from.

    Attributes:
        depth: [1, H, W] float32 z-depth at the image's size (0 = invalid), in the source's unit.
        K: [3, 3] pixel intrinsics when the source knows them (stereo calibration), else None.
        source: "file", "stereo" or "model".
        metric: whether the unit is metres (stereo, metric models) rather than relative.
    """

    depth: Tensor
    K: Tensor | None
    source: str
    metric: bool


def resolve_depth(
    image: Tensor, *, depth_file: str | os.PathLike | None = None, depth_scale: float | None = None,
    stereo_right: str | os.PathLike | Tensor | None = None, calib: str | os.PathLike | dict | None = None,
    depth_model: str | os.PathLike | None = None, device: torch.device | str = "cpu",
) -> DepthInput:
    """Depth for ``image`` [3, H, W] from exactly one source (file, stereo pair + calibration, model).

    A depth map of another size is resized (nearest) to the image. Raises DepthError with
    :data:`NO_DEPTH_MESSAGE` when no source is given.
    """
    H, W = image.shape[-2:]
    given = [n for n, v in (("--depth", depth_file), ("--stereo", stereo_right), ("--depth-model", depth_model))
             if v is not None]
    if not given:
        raise DepthError(NO_DEPTH_MESSAGE)
    if len(given) > 1:
        raise DepthError(f"give only one depth source, got {' and '.join(given)}")
    if depth_file is not None:
        d = load_depth(depth_file, scale=depth_scale)
        return DepthInput(resize_depth(d, H, W), None, "file", False)
    if stereo_right is not None:
        from lyra.depth.stereo import parse_calib, stereo_depth

        if calib is None:
            raise DepthError("--stereo RIGHT needs --calib FILE (Middlebury calib.txt: cam0, baseline, doffs...)")
        cal = parse_calib(calib)
        if isinstance(stereo_right, Tensor):
            right = stereo_right
        else:
            from lyra.utils.images import load_image

            right = load_image(stereo_right)
        if right.shape != image.shape:
            raise DepthError(f"--stereo: right image is {list(right.shape)} but the left is {list(image.shape)}")
        d, K = stereo_depth(image, right, cal)
        return DepthInput(d, K, "stereo", True)
    from lyra.depth.model import load_depth_model

    model = load_depth_model(depth_model, device=device)
    return DepthInput(model(image), None, "model", model.output == "depth")
