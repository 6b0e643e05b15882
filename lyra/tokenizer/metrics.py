"""Image metrics for tokenizer training and evaluation: PSNR and SSIM on [0, 1] images."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def psnr(a: Tensor, b: Tensor, max_val: float = 1.0) -> Tensor:
    """PSNR in dB between images ``[..., 3, H, W]`` in [0, max_val], averaged over everything."""
    mse = (a.float() - b.float()).pow(2).mean()
    return 10 * torch.log10(max_val**2 / mse.clamp_min(1e-12))


def _gauss_window(size: int, sigma: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_map(a: Tensor, b: Tensor, max_val: float = 1.0, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-pixel SSIM (Wang et al. 2004; Gaussian 11x11, sigma 1.5, valid region) of ``[N, C, H, W]``.

    The window shrinks to the image size for images smaller than 11 pixels.
    """
    N, C, H, W = a.shape
    size = min(window, H, W)
    g = _gauss_window(size, sigma, a.device, a.dtype)
    kx = g.view(1, 1, 1, size).expand(C, 1, 1, size)
    ky = g.view(1, 1, size, 1).expand(C, 1, size, 1)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(x, kx, groups=C), ky, groups=C)

    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    mu_a, mu_b = blur(a), blur(b)
    saa = blur(a * a) - mu_a**2
    sbb = blur(b * b) - mu_b**2
    sab = blur(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))


def ssim(a: Tensor, b: Tensor, max_val: float = 1.0) -> Tensor:
    """Mean SSIM of images ``[..., C, H, W]`` (leading dims folded into the batch)."""
    C, H, W = a.shape[-3:]
    return ssim_map(a.reshape(-1, C, H, W).float(), b.reshape(-1, C, H, W).float(), max_val).mean()


def video_to_frames(video: Tensor) -> Tensor:
    """``[B, 3, T, H, W]`` in [-1, 1] -> ``[B*T, 3, H, W]`` in [0, 1] (clamped)."""
    B, C, T, H, W = video.shape
    return ((video.permute(0, 2, 1, 3, 4).reshape(B * T, C, H, W) + 1) / 2).clamp(0, 1)


def mean_db(values: list[float]) -> float:
    """Average of PSNR values (dB), NaN for an empty list."""
    return sum(values) / len(values) if values else math.nan
