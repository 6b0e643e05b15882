"""Rendering of decoded Gaussians into the target views, with deferred back-propagation (method §5).

``render_views(records, cameras, ..., deferred=True)`` renders every target view under ``no_grad`` in the
forward pass and keeps only the images; in backward it re-renders one view at a time with gradients and
back-propagates that view's incoming image gradients into the Gaussian records, so peak memory is that of
one view's rasterization graph (each view is rasterized twice). ``deferred=False`` renders with a normal
autograd graph (all views alive at once); both give the same gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lyra.cameras import Cameras
from lyra.decoder import records_to_gaussians
from lyra.render import RenderOptions, rasterize


@dataclass
class Rendered:
    """Rendered target views: rgb [N, 3, H, W], depth [N, 1, H, W], alpha [N, 1, H, W] (float32)."""

    rgb: Tensor
    depth: Tensor
    alpha: Tensor


def _render_one(records: Tensor, camera: Cameras, background: Tensor, options: RenderOptions
                ) -> tuple[Tensor, Tensor, Tensor]:
    out = rasterize(records_to_gaussians(records), camera, background, options=options)
    return out.rgb, out.depth, out.alpha


class _DeferredRender(torch.autograd.Function):
    @staticmethod
    def forward(ctx, records: Tensor, w2c: Tensor, K: Tensor, height: int, width: int,  # type: ignore[override]
                background: Tensor, options: RenderOptions, chunk: int) -> tuple[Tensor, Tensor, Tensor]:
        cams = Cameras(w2c, K, height, width)
        outs = []
        with torch.no_grad():
            for i in range(0, len(cams), chunk):
                outs.append(_render_one(records.detach(), cams[i : i + chunk], background, options))
        ctx.save_for_backward(records, w2c, K, background)
        ctx.size, ctx.options, ctx.chunk = (height, width), options, chunk
        return tuple(torch.cat([o[k] for o in outs]) for k in range(3))  # type: ignore[return-value]

    @staticmethod
    def backward(ctx, g_rgb: Tensor | None, g_depth: Tensor | None, g_alpha: Tensor | None):  # type: ignore[override]
        records, w2c, K, background = ctx.saved_tensors
        cams = Cameras(w2c, K, *ctx.size)
        grad = torch.zeros_like(records)
        for i in range(0, len(cams), ctx.chunk):
            sl = slice(i, i + ctx.chunk)
            pairs = [(o, g[sl]) for o, g in zip(range(3), (g_rgb, g_depth, g_alpha)) if g is not None]
            if not pairs or all(not bool(g.any()) for _, g in pairs):
                continue
            with torch.enable_grad():
                r = records.detach().requires_grad_(True)
                out = _render_one(r, cams[sl], background, ctx.options)
                outs, grads = zip(*[(out[k], g) for k, g in pairs])
                (gr,) = torch.autograd.grad(outs, (r,), grads, allow_unused=True)
            if gr is not None:
                grad += gr
        return grad, None, None, None, None, None, None, None


def render_views(records: Tensor, cameras: Cameras, background: Tensor | float = 1.0,
                 options: RenderOptions | None = None, deferred: bool = True, chunk: int = 1) -> Rendered:
    """Render one Gaussian set into every camera.

    Args:
        records: [M, 14] activated Gaussian records (x, y, z, opacity, scales, quaternion, rgb), float32.
        cameras: N target cameras (one image size).
        background: RGB [3] or a scalar grey level (white, 1.0, in the method).
        options: rasterizer options (near/far, mode, backend).
        deferred: deferred back-propagation (memory of ``chunk`` views) instead of a full autograd graph.
        chunk: views rendered per rasterizer call.
    """
    options = options or RenderOptions()
    bg = torch.as_tensor(background, dtype=records.dtype, device=records.device)
    bg = bg.expand(3).contiguous() if bg.ndim == 0 else bg
    records = records.float()
    if deferred and torch.is_grad_enabled() and records.requires_grad:
        rgb, depth, alpha = _DeferredRender.apply(records, cameras.w2c, cameras.K, cameras.height, cameras.width,
                                                  bg, options, chunk)
    else:
        outs = [_render_one(records, cameras[i : i + chunk], bg, options) for i in range(0, len(cameras), chunk)]
        rgb, depth, alpha = (torch.cat([o[k] for o in outs]) for k in range(3))
    return Rendered(rgb, depth, alpha)
