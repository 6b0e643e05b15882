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
        note: what was done to fit the depth to the image (a resize), to tell the user; None if nothing.
    """

    depth: Tensor
    K: Tensor | None
    source: str
    metric: bool
    note: str | None = None


ASPECT_TOLERANCE = 0.01  # relative aspect-ratio difference a depth map may have beyond pixel rounding


def fit_depth_to_image(depth: Tensor, height: int, width: int, where: str | os.PathLike) -> tuple[Tensor, str | None]:
    """Resize [1, h, w] depth (nearest) to the image's ``height x width`` when the aspect ratios agree.

    Returns (depth, note): the note says what was resized (None when the sizes already match). A depth map of
    another aspect ratio (beyond pixel rounding or 1 %) cannot belong to the image: DepthError naming ``where``.
    """
    h, w = depth.shape[-2:]
    if (h, w) == (height, width):
        return depth, None
    rounding = min(abs(w - h * width / height), abs(h - w * height / width)) <= 0.5 + 1e-9
    if not rounding and abs(w * height / (h * width) - 1.0) > ASPECT_TOLERANCE:
        raise DepthError(f"{where}: depth map is {w}x{h} (aspect {w / h:.3f}) but the image is {width}x{height} "
                         f"(aspect {width / height:.3f}); give the depth map of this image")
    return resize_depth(depth, height, width), f"{where}: depth map {w}x{h} resized to the image's {width}x{height}"


def resolve_depth(
    image: Tensor, *, depth_file: str | os.PathLike | None = None, depth_scale: float | None = None,
    stereo_right: str | os.PathLike | Tensor | None = None, calib: str | os.PathLike | dict | None = None,
    depth_model: str | os.PathLike | None = None, device: torch.device | str = "cpu",
) -> DepthInput:
    """Depth for ``image`` [3, H, W] from exactly one source (file, stereo pair + calibration, model).

    A depth map of another size but the same aspect ratio is resized (nearest) to the image (``note`` says so);
    another aspect ratio is an error. Raises DepthError with :data:`NO_DEPTH_MESSAGE` when no source is given.
    """
    H, W = image.shape[-2:]
    given = [n for n, v in (("--depth", depth_file), ("--stereo", stereo_right), ("--depth-model", depth_model))
             if v is not None]
    if not given:
        raise DepthError(NO_DEPTH_MESSAGE)
    if len(given) > 1:
        raise DepthError(f"give only one depth source, got {' and '.join(given)}")
    if depth_file is not None:
        d, note = fit_depth_to_image(load_depth(depth_file, scale=depth_scale), H, W, depth_file)
        return DepthInput(d, None, "file", False, note)
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
            where = "--stereo" if isinstance(stereo_right, Tensor) else stereo_right
            raise DepthError(f"{where}: the right image is {right.shape[-1]}x{right.shape[-2]} but the left is "
                             f"{W}x{H}; give the rectified pair at one size")
        d, K = stereo_depth(image, right, cal)
        return DepthInput(d, K, "stereo", True)
    from lyra.depth.model import load_depth_model

    model = load_depth_model(depth_model, device=device)
    return DepthInput(model(image), None, "model", model.output == "depth")
