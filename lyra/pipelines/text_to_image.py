"""Text -> image with a diffusers text-to-image pipeline: a local folder or a Hugging Face hub id.

Any folder written by ``DiffusionPipeline.save_pretrained`` (or a Hugging Face snapshot, or a hub id downloaded
into the normal cache, see :mod:`lyra.utils.hub`) whose pipeline takes a ``prompt`` and returns ``.images``
works: Stable Diffusion 1.x/2.x/XL, PixArt, SANA, FLUX... Most of them need ``transformers`` for their
text encoder; its absence is reported with the install command.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lyra.errors import InputError, describe
from lyra.utils.hub import loading, resolve_pretrained


class TextToImageError(InputError):
    """No model folder, an unreadable one, or a missing optional dependency."""


NO_MODEL_MESSAGE = (
    "--prompt needs --t2i-model DIR (a local diffusers text-to-image folder: model_index.json + components, "
    "e.g. a Stable Diffusion snapshot saved with save_pretrained) or --t2i-model OWNER/NAME (a Hugging Face model id)"
)


def load_text_to_image(model_dir: str | os.PathLike | None, device: torch.device | str = "cpu",
                       dtype: torch.dtype | None = None) -> Any:
    """``DiffusionPipeline.from_pretrained`` of a folder or hub id (see :mod:`lyra.utils.hub`) with one-line errors.

    ``dtype`` defaults to float32 on CPU and float16 on CUDA.
    """
    if model_dir is None:
        raise TextToImageError(NO_MODEL_MESSAGE)
    ref = resolve_pretrained(model_dir, "text-to-image model", marker="model_index.json", flag="--t2i-model",
                             error=TextToImageError)
    try:
        from diffusers import DiffusionPipeline
    except ImportError as exc:
        raise TextToImageError("text-to-image needs diffusers: pip install diffusers") from exc
    dev = torch.device(device)
    if dtype is None:
        dtype = torch.float16 if dev.type == "cuda" else torch.float32
    with loading(ref, "cannot load the text-to-image pipeline", TextToImageError):
        try:
            pipe = DiffusionPipeline.from_pretrained(ref.source, torch_dtype=dtype, **ref.kwargs)
        except (ImportError, ValueError, AttributeError) as exc:
            if not isinstance(exc, ImportError) and "transformers" not in str(exc).lower():
                raise
            raise TextToImageError(ref.name, f"this pipeline needs a missing package ({describe(exc)}); most text "
                                   "encoders need `pip install transformers`") from exc
    pipe = pipe.to(dev)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return pipe


def to_image_tensor(image: Any) -> Tensor:
    """A pipeline output image (PIL, numpy HWC in [0, 1] or uint8, or a CHW tensor) -> [3, H, W] float32 in [0, 1]."""
    if isinstance(image, Tensor):
        x = image.detach().float().cpu()
        if x.ndim == 4:
            x = x[0]
        if x.shape[0] not in (1, 3) and x.shape[-1] in (1, 3):
            x = x.permute(2, 0, 1)
        return x.expand(3, -1, -1).clamp(0, 1).contiguous()
    if hasattr(image, "convert"):  # PIL
        arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    else:
        arr = np.asarray(image)
        if arr.ndim == 4:
            arr = arr[0]
        arr = arr.astype(np.float32) / (255.0 if arr.dtype == np.uint8 else 1.0)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=-1)
    return torch.from_numpy(np.ascontiguousarray(arr[..., :3])).permute(2, 0, 1).clamp(0, 1).contiguous()


def text_to_image(prompt: str, pipe: Any, *, seed: int = 0, steps: int | None = None,
                  height: int | None = None, width: int | None = None, guidance_scale: float | None = None) -> Tensor:
    """Run a loaded text-to-image pipeline once: [3, H, W] float32 in [0, 1].

    ``steps``, ``height``, ``width`` and ``guidance_scale`` are passed only when given (the pipeline's defaults
    otherwise); ``seed`` seeds a CPU generator.
    """
    if not prompt or not prompt.strip():
        raise TextToImageError("--prompt is empty")
    kwargs: dict[str, Any] = {"generator": torch.Generator("cpu").manual_seed(seed)}
    for name, value in (("num_inference_steps", steps), ("height", height), ("width", width),
                        ("guidance_scale", guidance_scale)):
        if value is not None:
            kwargs[name] = value
    result = pipe(prompt, **kwargs)
    images = getattr(result, "images", result)
    if isinstance(images, (list, tuple)):
        images = images[0]
    return to_image_tensor(images)
