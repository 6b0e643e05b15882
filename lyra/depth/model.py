"""Monocular depth from a transformers depth model (Depth Anything, DPT, ZoeDepth...): a local folder or a
Hugging Face hub id (downloaded into the normal cache; see :mod:`lyra.utils.hub`).

transformers is imported lazily, only when a model is loaded.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.depth.files import DepthError
from lyra.utils.hub import loading, resolve_pretrained

Output = Literal["auto", "depth", "disparity"]

# model types whose ``predicted_depth`` is metric depth rather than relative inverse depth
_METRIC_MODEL_TYPES = ("zoedepth", "glpn")


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as e:
        raise DepthError(
            "--depth-model needs the transformers package: pip install transformers "
            "(or give --depth FILE / --stereo RIGHT --calib FILE instead)"
        ) from e
    return transformers


class DepthModel:
    """A loaded depth model: ``model(image [3, H, W] in [0, 1]) -> depth [1, H, W]``.

    Attributes:
        output: "depth" if the network predicts depth (metric models), "disparity" if it predicts
            relative inverse depth (Depth Anything "relative", DPT); disparities are turned into depth
            as ``max(disp) / disp`` (nearest surface at 1, shift assumed 0, at most ``max_range`` x
            farther), i.e. depth known only up to scale: normalise it with
            :func:`lyra.depth.scale.normalize_scene_scale`.
    """

    def __init__(self, model: Any, processor: Any, output: Literal["depth", "disparity"],
                 device: torch.device | str = "cpu", max_range: float = 1000.0) -> None:
        self.model = model
        self.processor = processor
        self.output = output
        self.device = torch.device(device)
        self.max_range = max_range

    @torch.no_grad()
    def predict_raw(self, image: Tensor) -> Tensor:
        """The network's prediction resized to the image: [1, H, W] float32 (depth or disparity)."""
        if image.ndim != 3 or image.shape[0] != 3:
            raise DepthError(f"depth model: image must be [3, H, W], got {list(image.shape)}")
        H, W = image.shape[-2:]
        arr = (image.detach().cpu().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
        inputs = self.processor(images=arr, return_tensors="pt")
        inputs = {k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in inputs.items()}
        out = self.model(**inputs)
        pred = out.predicted_depth if hasattr(out, "predicted_depth") else out[0]
        pred = pred.float().reshape(-1, 1, *pred.shape[-2:])[:1]
        pred = F.interpolate(pred, size=(H, W), mode="bilinear", align_corners=False)
        return pred[0].cpu()

    def __call__(self, image: Tensor) -> Tensor:
        """[1, H, W] float32 depth (0 = invalid) of a [3, H, W] image in [0, 1]."""
        raw = self.predict_raw(image)
        valid = torch.isfinite(raw) & (raw > 0)
        if not valid.any():
            return torch.zeros_like(raw)
        if self.output == "depth":
            return torch.where(valid, raw, torch.zeros_like(raw))
        top = raw[valid].max()
        disp = raw.clamp(min=float(top) / self.max_range)
        return torch.where(valid, top / disp, torch.zeros_like(raw))


def load_depth_model(path: str | os.PathLike, *, device: torch.device | str = "cpu", output: Output = "auto",
                     dtype: torch.dtype = torch.float32) -> DepthModel:
    """Load a transformers depth-estimation model and its image processor.

    Args:
        path: a folder with ``config.json``, weights and ``preprocessor_config.json`` (as written by
            ``save_pretrained`` or a Hugging Face snapshot), or a hub id ``owner/name[@revision]`` such as
            ``depth-anything/Depth-Anything-V2-Small-hf`` (from the Hugging Face cache, downloaded there first
            when the hub can be reached).
        output: what the network predicts: "depth", "disparity", or "auto" (metric if the config says
            ``depth_estimation_type: metric`` or the model type is ZoeDepth/GLPN, else disparity).
    """
    ref = resolve_pretrained(path, "depth model", marker="config.json", flag="--depth-model", error=DepthError)
    if output not in ("auto", "depth", "disparity"):
        raise DepthError(f"depth model: output must be 'auto', 'depth' or 'disparity', got {output!r}")
    tf = _import_transformers()
    with loading(ref, "cannot load a depth model", DepthError):
        model = tf.AutoModelForDepthEstimation.from_pretrained(ref.source, **ref.kwargs)
        processor = tf.AutoImageProcessor.from_pretrained(ref.source, **ref.kwargs)
    model = model.to(device=device, dtype=dtype).eval()
    if output == "auto":
        cfg = model.config
        metric = (getattr(cfg, "depth_estimation_type", None) == "metric"
                  or getattr(cfg, "model_type", "") in _METRIC_MODEL_TYPES)
        output = "depth" if metric else "disparity"
    return DepthModel(model, processor, output, device)
