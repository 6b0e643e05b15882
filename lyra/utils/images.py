"""Image files: PNG colour images, 16-bit depth PNGs, depth colourisation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lyra.errors import reading
from lyra.utils.files import atomic_path
from lyra.utils.inputs import require_file


def save_png(path: str | os.PathLike, image: Tensor) -> Path:
    """Write a [3, H, W] float image in [0, 1] as an 8-bit PNG (atomically)."""
    from PIL import Image

    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"save_png: image must be [3, H, W], got {list(image.shape)}")
    arr = (image.detach().cpu().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
    return Path(path)


def load_image(path: str | os.PathLike) -> Tensor:
    """Read an image file as [3, H, W] float32 in [0, 1] (alpha dropped, greyscale expanded).

    Raises FileNotFoundError, or InputError naming the file when it is empty, not an image, truncated or
    larger than PIL's decompression-bomb limit (checked from the header, before decoding).
    """
    import warnings

    from PIL import Image

    p = require_file(path, "image file")
    with reading(p, "not a readable image"), warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the error (2x) still applies
        with Image.open(p) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def save_depth_png16(path: str | os.PathLike, depth: Tensor, scale: float = 1000.0) -> Path:
    """Write a [1, H, W] depth map as a 16-bit PNG of round(depth * scale) (0 = invalid; millimetres by default)."""
    from PIL import Image

    d = depth.detach().cpu().reshape(depth.shape[-2], depth.shape[-1]).double() * scale
    if d.max() > 65535:
        raise ValueError(f"save_depth_png16: depth * scale exceeds 65535 (max {d.max():.0f}); lower the scale")
    arr = d.clamp(min=0).round().to(torch.int32).numpy().astype(np.uint16)
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
    return Path(path)


def colorize_depth(depth: Tensor, lo: float | None = None, hi: float | None = None) -> Tensor:
    """[1, H, W] depth -> [3, H, W] colour image (near = warm, far = cool, invalid = black).

    Inverse depth is mapped linearly between the 1st and 99th percentile of valid pixels (or ``lo``/``hi``).
    """
    d = depth.detach().float().reshape(depth.shape[-2:])
    valid = d > 0
    out = torch.zeros(3, *d.shape)
    if not valid.any():
        return out
    inv = torch.zeros_like(d)
    inv[valid] = 1.0 / d[valid]
    vals = inv[valid]
    a = 1.0 / hi if hi else torch.quantile(vals, 0.01).item()
    b = 1.0 / lo if lo else torch.quantile(vals, 0.99).item()
    x = ((inv - a) / max(b - a, 1e-12)).clamp(0, 1)
    # a compact "turbo-like" ramp: blue -> cyan -> yellow -> red
    stops = torch.tensor([[0.19, 0.07, 0.23], [0.11, 0.55, 0.85], [0.35, 0.85, 0.45], [0.98, 0.75, 0.2],
                          [0.75, 0.1, 0.05]])
    pos = x * (len(stops) - 1)
    i0 = pos.floor().long().clamp(max=len(stops) - 2)
    w = (pos - i0).unsqueeze(0)
    col = stops[i0].permute(2, 0, 1) * (1 - w) + stops[i0 + 1].permute(2, 0, 1) * w
    return torch.where(valid.unsqueeze(0), col, out)
