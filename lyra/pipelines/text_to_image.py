"""Text -> image with a diffusers text-to-image pipeline loaded from a local folder (nothing is downloaded).

Any folder written by ``DiffusionPipeline.save_pretrained`` (or a Hugging Face snapshot) whose pipeline takes a
``prompt`` and returns ``.images`` works: Stable Diffusion 1.x/2.x/XL, PixArt, SANA, FLUX... Most of them need
``transformers`` for their text encoder; its absence is reported with the install command.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lyra.errors import InputError


class TextToImageError(InputError):
    """No model folder, an unreadable one, or a missing optional dependency."""


NO_MODEL_MESSAGE = (
    "--prompt needs --t2i-model DIR: a local diffusers text-to-image folder (model_index.json + components, "
    "e.g. a Stable Diffusion snapshot saved with save_pretrained); nothing is downloaded"
)


def load_text_to_image(model_dir: str | os.PathLike | None, device: torch.device | str = "cpu",
                       dtype: torch.dtype | None = None) -> Any:
    """``DiffusionPipeline.from_pretrained(model_dir, local_files_only=True)`` with one-line errors.

    ``dtype`` defaults to float32 on CPU and float16 on CUDA.
    """
    if model_dir is None:
        raise TextToImageError(NO_MODEL_MESSAGE)
    d = Path(model_dir)
    if not d.is_dir():
        raise TextToImageError(f"{d}: text-to-image model folder not found ({NO_MODEL_MESSAGE})")
    if not (d / "model_index.json").is_file():
        raise TextToImageError(f"{d}: not a diffusers pipeline folder (no model_index.json)")
    try:
        from diffusers import DiffusionPipeline
    except ImportError as exc:
        raise TextToImageError("text-to-image needs diffusers: pip install diffusers") from exc
    dev = torch.device(device)
    if dtype is None:
        dtype = torch.float16 if dev.type == "cuda" else torch.float32
    try:
        pipe = DiffusionPipeline.from_pretrained(str(d), local_files_only=True, torch_dtype=dtype)
    except ImportError as exc:
        raise TextToImageError(f"{d}: this pipeline needs a missing package ({exc}); most text encoders need "
                               "`pip install transformers`") from exc
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "transformers" in str(exc).lower():
            msg += " (pip install transformers)"
        raise TextToImageError(f"{d}: cannot load the text-to-image pipeline: {msg}") from exc
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
