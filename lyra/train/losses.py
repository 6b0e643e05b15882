"""Training losses of the self-distillation (method §6), evaluated in float32.

Fixes of the method's quirks (method §13): the opacity term is the mean *activated* opacity (no second
sigmoid); depth statistics (median, mean absolute deviation) are taken over valid pixels only and the
Smooth-L1 is averaged over valid pixels only; every term is computed in float32 whatever the autocast
precision of the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lyra.eval.metrics import LPIPSVGG, gaussian_window, psnr, ssim

__all__ = ["LPIPSVGG", "LossWeights", "depth_loss", "gaussian_window", "normalize_depth", "opacity_loss", "psnr",
           "ssim", "ssim_loss", "total_loss"]


def ssim_loss(pred: Tensor, target: Tensor) -> Tensor:
    """(1 - SSIM) / 2 over [N, 3, H, W] images in [0, 1] (in [0, 1], 0 for identical images)."""
    return (1.0 - ssim(pred, target)) / 2.0


# ---------------------------------------------------------------------------------------------- depth
def normalize_depth(depth: Tensor, valid: Tensor) -> Tensor:
    """Scale/shift-normalise each map over its valid pixels: (d - median) / clamp(MAD, 1e-3, 1e3), 0 elsewhere.

    Args:
        depth: [N, 1, H, W] (or [N, H, W]) depth.
        valid: boolean mask of the same shape.
    The median is ``torch.median`` of the valid values (the lower middle value for an even count);
    MAD is the mean absolute deviation from that median over the valid values. Maps with no valid pixel
    are all zero.
    """
    out = torch.zeros_like(depth)
    for i in range(depth.shape[0]):
        m = valid[i]
        if not bool(m.any()):
            continue
        v = depth[i][m]
        med = v.median()
        mad = (v - med).abs().mean().clamp(1e-3, 1e3)
        out[i] = torch.where(m, (depth[i] - med) / mad, torch.zeros_like(depth[i]))
    return out


def depth_loss(pred: Tensor, target: Tensor, valid: Tensor | None = None, beta: float = 1.0) -> Tensor:
    """Scale- and shift-invariant depth loss (method §6, valid pixels only).

    Both maps are normalised per image with the same validity mask (target > 0 and finite, and ``valid``),
    then Smooth-L1 (``beta``) is averaged over the valid pixels of the whole batch (0 when there are none).

    Args:
        pred: [N, 1, H, W] rendered expected depth.
        target: [N, 1, H, W] reference depth (0 / non-finite = invalid).
    """
    pred, target = pred.float(), target.float()
    mask = torch.isfinite(target) & (target > 0)
    if valid is not None:
        mask = mask & valid.bool()
    mask = mask & torch.isfinite(pred)
    target = torch.where(mask, target, torch.zeros_like(target))
    pred = torch.where(mask, pred, torch.zeros_like(pred))
    n = mask.sum()
    if int(n) == 0:
        return pred.sum() * 0.0
    a, b = normalize_depth(pred, mask), normalize_depth(target, mask)
    per_pixel = F.smooth_l1_loss(a, b, reduction="none", beta=beta)
    return (per_pixel * mask).sum() / n


def opacity_loss(opacities: Tensor) -> Tensor:
    """Mean activated opacity of the kept Gaussians (the method applies a second sigmoid; we do not)."""
    return opacities.float().mean()


# ---------------------------------------------------------------------------------------------- total
@dataclass
class LossWeights:
    """Weights of the loss terms (method §6 defaults: MSE 1, LPIPS 0.5, depth 0.05, opacity 0 / 0.1 when pruning).

    ``ssim`` is used in place of ``lpips`` when no LPIPS weights are available (``ssim_fallback``), on the
    (1 - SSIM)/2 form.
    """

    mse: float = 1.0
    lpips: float = 0.5
    ssim: float = 0.0
    ssim_fallback: bool = True
    depth: float = 0.05
    opacity: float = 0.0


def total_loss(weights: LossWeights, pred_rgb: Tensor, target_rgb: Tensor, pred_depth: Tensor | None = None,
               target_depth: Tensor | None = None, opacities: Tensor | None = None,
               lpips: nn.Module | None = None, lpips_chunk: int = 8) -> tuple[Tensor, dict[str, float]]:
    """Weighted loss and its float terms.

    Args:
        pred_rgb, target_rgb: [N, 3, H, W] in [0, 1].
        pred_depth, target_depth: [N, 1, H, W] (depth term skipped when either is None or its weight is 0).
        opacities: [M] activated opacities of the kept Gaussians (opacity term).
        lpips: an LPIPS module, or None (then the LPIPS weight moves to SSIM when ``ssim_fallback``).
    """
    pred_rgb, target_rgb = pred_rgb.float(), target_rgb.float()
    terms: dict[str, Tensor] = {"mse": F.mse_loss(pred_rgb, target_rgb)}
    total = weights.mse * terms["mse"]
    ssim_w = weights.ssim
    if weights.lpips > 0:
        if lpips is not None:
            vals = [lpips(pred_rgb[i : i + lpips_chunk], target_rgb[i : i + lpips_chunk])
                    for i in range(0, pred_rgb.shape[0], lpips_chunk)]
            terms["lpips"] = torch.cat(vals).mean()
            total = total + weights.lpips * terms["lpips"]
        elif weights.ssim_fallback:
            ssim_w += weights.lpips
    if ssim_w > 0:
        terms["ssim"] = ssim_loss(pred_rgb, target_rgb)
        total = total + ssim_w * terms["ssim"]
    if weights.depth > 0 and pred_depth is not None and target_depth is not None:
        terms["depth"] = depth_loss(pred_depth, target_depth)
        total = total + weights.depth * terms["depth"]
    if weights.opacity > 0 and opacities is not None:
        terms["opacity"] = opacity_loss(opacities)
        total = total + weights.opacity * terms["opacity"]
    out = {k: float(v.detach()) for k, v in terms.items()}
    out["loss"] = float(total.detach())
    return total, out
