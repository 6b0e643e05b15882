"""Classical hole filling of warped frames: push-pull (pyramid) interpolation plus optional diffusion."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _push_pull(cw: Tensor, w: Tensor, fill: float) -> Tensor:
    """Fill ``c = cw / w`` where the weight w [B, 1, h, w] is < 1 from coarser levels (recursive)."""
    h, wd = w.shape[-2:]
    if h == 1 and wd == 1:
        c = cw / w.clamp(min=1e-12)
        return torch.where(w > 0, c, torch.full_like(c, fill))
    ph, pw = h % 2, wd % 2
    cw2 = F.avg_pool2d(F.pad(cw, (0, pw, 0, ph)), 2) * 4  # zero padding = zero weight
    w2 = F.avg_pool2d(F.pad(w, (0, pw, 0, ph)), 2) * 4
    coarse = _push_pull(cw2, w2, fill)
    # a pixel keeps its own mean colour with weight min(1, w) and takes the rest from the coarser level
    up = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)[..., :h, :wd]
    wf = w.clamp(max=1)
    c = cw / w.clamp(min=1e-12)
    return torch.where(w > 0, wf * c + (1 - wf) * up, up)


def inpaint(frames: Tensor, mask: Tensor, *, smooth_iters: int = 0, fill: float = 0.5) -> Tensor:
    """Fill holes of warped frames with colours interpolated from their valid neighbourhood.

    Push-pull: valid pixels are averaged down an image pyramid (2 x 2, weight = number of valid
    pixels), then each level's holes take the bilinearly upsampled colour of the level below, so a
    hole gets the mean colour of the nearest valid region at the scale of the hole. Optional Jacobi
    diffusion (``smooth_iters`` 3 x 3 averaging steps on hole pixels only) smooths the result.

    Args:
        frames: [..., C, H, W] images.
        mask: [..., 1, H, W] validity (> 0.5 = valid), e.g. ``WarpResult.mask``.
        smooth_iters: diffusion steps after push-pull (0 = none).
        fill: value of frames with no valid pixel at all.
    Returns:
        [..., C, H, W] filled frames; valid pixels are returned unchanged (bit-exact).
    """
    if frames.ndim < 3 or mask.shape[-2:] != frames.shape[-2:] or mask.shape[-3] != 1:
        raise ValueError(f"inpaint: frames [..., C, H, W] and mask [..., 1, H, W] expected, "
                         f"got {list(frames.shape)} and {list(mask.shape)}")
    C, H, W = frames.shape[-3:]
    x = frames.reshape(-1, C, H, W)
    valid = (mask.expand(*frames.shape[:-3], 1, H, W).reshape(-1, 1, H, W) > 0.5)
    if bool(valid.all()):
        return frames.clone()
    xf = x.to(torch.float64)
    w = valid.to(torch.float64)
    out = _push_pull(xf * w, w, fill)
    hole = ~valid
    for _ in range(smooth_iters):
        avg = F.avg_pool2d(F.pad(out, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        out = torch.where(hole, avg, out)
    out = torch.where(valid, xf, out).to(frames.dtype)
    out = torch.where(valid, x, out)
    return out.reshape(frames.shape)
