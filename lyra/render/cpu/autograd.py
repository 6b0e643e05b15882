"""The cpu backend's kernel-level entry point: a torch.autograd.Function around the numba kernels."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from lyra.render.cpu import threads, workspace
from lyra.render.cpu.backward import rasterize_backward, rasterize_backward_serial
from lyra.render.cpu.binning import bin_gaussians
from lyra.render.cpu.forward import rasterize_forward, rasterize_forward_serial
from lyra.render.cpu.project import (
    NF,
    NF_CLASSIC,
    NG_CLASSIC,
    NG_EVAL3D,
    project_backward,
    project_backward_serial,
    project_forward,
    project_forward_serial,
)
from lyra.render.options import RenderOptions

_NUMPY_DTYPES = {torch.float64: np.float64, torch.float32: np.float32, torch.float16: np.float16}


def _f64(t: Tensor, key: str) -> np.ndarray:
    """t as a C-contiguous float64 array: t's own memory when it already is one, else a workspace copy
    (numpy converts single-threaded: no OpenMP barrier)."""
    t = t.detach().cpu()
    if t.dtype not in _NUMPY_DTYPES:  # e.g. bfloat16, which numpy lacks
        t = t.to(torch.float64)
    a = t.numpy()
    if a.dtype == np.float64 and a.flags.c_contiguous:
        return a
    out = workspace.empty(key, a.shape)
    np.copyto(out, a)
    return out


def _torch(a: np.ndarray, dtype: torch.dtype, key: str) -> Tensor:
    """float64 array -> tensor of dtype (a workspace copy where the dtype differs; see _f64)."""
    if dtype == torch.float64:
        return torch.from_numpy(a)
    if dtype in _NUMPY_DTYPES:
        out = workspace.empty(key, a.shape, _NUMPY_DTYPES[dtype])
        np.copyto(out, a)
        return torch.from_numpy(out)
    return torch.from_numpy(a).to(dtype)


PARALLEL_MIN_PAIRS = 2048  # below this many (camera, Gaussian) pairs, per-Gaussian kernels run serially


def _chunks(n: int) -> int:
    """Work items for per-Gaussian kernels: a few per thread."""
    return max(1, min(n, 4 * threads.num_workers()))


def _check(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor, w2c: Tensor,
           K: Tensor, background: Tensor) -> None:
    n = means.shape[0]
    c = w2c.shape[0]
    expect = {"means": (means, (n, 3)), "quats": (quats, (n, 4)), "scales": (scales, (n, 3)),
              "opacities": (opacities, (n,)), "colors": (colors, (c, n, 3)), "w2c": (w2c, (c, 4, 4)),
              "K": (K, (c, 3, 3)), "background": (background, (c, 3))}
    for name, (t, shape) in expect.items():
        if tuple(t.shape) != shape:
            raise ValueError(f"rasterize_cpu: {name} must have shape {list(shape)}, got {list(t.shape)}")
        if t.device.type != "cpu":
            raise ValueError(f"rasterize_cpu: {name} is on {t.device}; the cpu backend needs CPU tensors")


class RasterizeCPU(torch.autograd.Function):
    """Differentiable w.r.t. means, quats, scales, opacities and colors (analytic backward)."""

    @staticmethod
    def forward(ctx: Any, means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor,
                w2c: Tensor, K: Tensor, background: Tensor, width: int, height: int,
                opts: RenderOptions) -> tuple[Tensor, Tensor, Tensor]:
        threads.follow_torch_threads()
        n_cam, n_gauss = w2c.shape[0], means.shape[0]
        tile = int(opts.tile_size)
        tiles_w, tiles_h = (width + tile - 1) // tile, (height + tile - 1) // tile
        eval3d = opts.mode == "eval3d"
        a_means, a_quats, a_scales = _f64(means, "means"), _f64(quats, "quats"), _f64(scales, "scales")
        a_opac, a_colors = _f64(opacities, "opacities"), _f64(colors, "colors")
        a_w2c, a_K, a_bg = _f64(w2c, "w2c"), _f64(K, "K"), _f64(background, "background")
        rec = workspace.empty("rec", (n_cam, n_gauss, NF if eval3d else NF_CLASSIC))
        rect = workspace.empty("rect", (n_cam, n_gauss, 4), np.int32)
        pbox = workspace.empty("pbox", (n_cam, n_gauss, 4), np.int32)
        geometry = (a_means, a_quats, a_scales, a_opac, a_w2c, a_K, width, height, tile,
                    float(opts.near), float(opts.far), float(opts.eps2d), eval3d)
        rgb = workspace.empty("rgb", (n_cam, height, width, 3))
        depth = workspace.empty("depth", (n_cam, height, width, 1))
        alpha = workspace.empty("alpha", (n_cam, height, width, 1))
        t_final = workspace.empty("t_final", (n_cam, height, width))
        d_final = workspace.empty("d_final", (n_cam, height, width))
        last = workspace.empty("last", (n_cam, height, width), np.int64)
        with threads.kernel_section():  # several Python threads may render at once
            parallel = threads.parallel_allowed() and n_cam * n_gauss >= PARALLEL_MIN_PAIRS
            if parallel:
                project_forward(*geometry, _chunks(n_gauss), rec, rect, pbox)
            else:
                project_forward_serial(*geometry, rec, rect, pbox)
            starts, ids = bin_gaussians(rec, rect, tiles_w, tiles_h, parallel)
            composite = rasterize_forward if threads.parallel_allowed() else rasterize_forward_serial
            composite(rec, a_colors, pbox, starts, ids, a_K, a_bg, width, height, tile, tiles_w, tiles_h,
                      eval3d, threads.num_workers(), rgb, depth, alpha, t_final, d_final, last)
        ctx.state = dict(
            arrays=(a_means, a_quats, a_scales, a_colors, a_w2c, a_K, a_bg, rec, rect, pbox, starts, ids,
                    t_final, d_final, last),
            sizes=(width, height, tile, tiles_w, tiles_h, eval3d, float(opts.eps2d), bool(opts.deterministic)),
            dtypes=(means.dtype, quats.dtype, scales.dtype, opacities.dtype, colors.dtype),
        )
        dtype = means.dtype
        return _torch(rgb, dtype, "out_rgb"), _torch(depth, dtype, "out_depth"), _torch(alpha, dtype, "out_alpha")

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g_rgb: Tensor | None, g_depth: Tensor | None, g_alpha: Tensor | None):
        (a_means, a_quats, a_scales, a_colors, a_w2c, a_K, a_bg, rec, rect, pbox, starts, ids,
         t_final, d_final, last) = ctx.state["arrays"]
        width, height, tile, tiles_w, tiles_h, eval3d, eps2d, deterministic = ctx.state["sizes"]
        threads.follow_torch_threads()
        n_cam, n_gauss = rec.shape[0], rec.shape[1]
        shape_rgb, shape_1 = (n_cam, height, width, 3), (n_cam, height, width, 1)
        gr = _f64(g_rgb, "g_rgb") if g_rgb is not None else workspace.zeros("g_rgb", shape_rgb)
        gd = _f64(g_depth, "g_depth") if g_depth is not None else workspace.zeros("g_depth", shape_1)
        ga = _f64(g_alpha, "g_alpha") if g_alpha is not None else workspace.zeros("g_alpha", shape_1)
        gbuf = workspace.zeros("gbuf", (threads.num_workers(), n_cam, n_gauss, NG_EVAL3D if eval3d else NG_CLASSIC))
        g_means = workspace.empty("g_means", (n_gauss, 3))  # written for every Gaussian
        g_quats = workspace.empty("g_quats", (n_gauss, 4))
        g_scales = workspace.empty("g_scales", (n_gauss, 3))
        g_opac = workspace.empty("g_opac", (n_gauss,))
        g_colors = workspace.zeros("g_colors", (n_cam, n_gauss, 3))  # only where a camera sees the Gaussian
        geometry = (a_means, a_quats, a_scales, a_w2c, a_K, width, height, eps2d, eval3d)
        grads = (g_means, g_quats, g_scales, g_opac, g_colors)
        with threads.kernel_section():
            composite_grad = rasterize_backward if threads.parallel_allowed() else rasterize_backward_serial
            composite_grad(rec, a_colors, pbox, starts, ids, a_K, a_bg, width, height, tile, tiles_w, tiles_h,
                           eval3d, deterministic, gr, gd, ga, t_final, d_final, last, gbuf)
            if threads.parallel_allowed() and n_cam * n_gauss >= PARALLEL_MIN_PAIRS:
                project_backward(*geometry, _chunks(n_gauss), rect, gbuf, *grads)
            else:
                project_backward_serial(*geometry, rect, gbuf, *grads)
        out = []
        names = ("means", "quats", "scales", "opacities", "colors")
        for name, g, need, dt in zip(names, grads, ctx.needs_input_grad[:5], ctx.state["dtypes"], strict=True):
            out.append(_torch(g, dt, f"out_{name}") if need else None)
        return (*out, None, None, None, None, None, None)


def rasterize_cpu(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4] (w, x, y, z), normalised inside
    scales: Tensor,  # [N, 3] standard deviations
    opacities: Tensor,  # [N]
    colors: Tensor,  # [C, N, 3]
    w2c: Tensor,  # [C, 4, 4]
    K: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    background: Tensor,  # [C, 3] (or [3])
    opts: RenderOptions,
) -> tuple[Tensor, Tensor, Tensor]:
    """Rasterize N Gaussians into C cameras with the numba kernels (semantics: docs/rasterizer.md).

    Returns rgb [C,H,W,3], depth [C,H,W,1] (expected depth, 0 where empty), alpha [C,H,W,1], in the
    dtype of ``means``; differentiable w.r.t. means, quats, scales, opacities and colors.
    """
    width, height = int(width), int(height)
    if background.ndim == 1:
        background = background.expand(w2c.shape[0], 3)
    _check(means, quats, scales, opacities, colors, w2c, K, background)
    return RasterizeCPU.apply(means, quats, scales, opacities, colors, w2c, K, background, width, height, opts)

