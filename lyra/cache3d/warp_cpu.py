"""Numba kernel of :func:`lyra.cache3d.warp.forward_warp` for CPU tensors, parallel over the target cameras.

It reproduces the torch implementation operation by operation in the cameras' dtype (float32 or
float64; every constant is cast to that dtype, as torch casts Python scalars), so both paths agree
on the projection, the z-buffer (nearest z wins; among equal z the lowest point index) and
``index`` exactly, and the bilinear blend sums each pixel's contributions in the torch path's order
(corners (0,0), (1,0), (0,1), (1,1); points in index order within a corner).

Per camera: one pass projects every point to its footprint pixels (1 or 4) and weights and z-tests
them (nearest: a second pass z-tests), and in bilinear mode one more pass accumulates the weights,
depths and colours of the points within the depth band. Each worker thread takes every n-th camera
and reuses one set of scratch arrays (O(P + C H W)), so the cameras need no chunking.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange
from torch import Tensor

from lyra.cameras.camera import Cameras
from lyra.render.cpu import threads

DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


@njit(cache=True, error_model="numpy")
def _warp_cameras(first: int, step: int, points, colors, w2c, K, W: int, Wf, Hf, near, tiny, one, half, band,
                  bilinear: bool, bg, out_rgb, out_depth, out_index) -> None:
    """Warp all points into cameras first, first + step, ... (one set of scratch arrays for all of them).

    points [P, 3], colors [P, C], w2c [N, 4, 4], K [N, 3, 3] of the compute dtype; ``Wf, Hf, near, tiny,
    one, half, band`` scalars of that dtype (``band`` = 1 + depth_tolerance). Writes out_rgb [N, C, H*W]
    and out_depth [N, H*W] (float32), out_index [N, H*W] (int64).
    """
    P, C, HW = points.shape[0], colors.shape[1], out_index.shape[1]
    dt = points.dtype
    zero = one - one
    zs = np.empty(P, dt)
    pix = np.empty((4, P), np.int32)  # bilinear: flat pixel of each point's footprint corner k (-1: none)
    wts = np.empty((4, P), dt)  # bilinear weights
    zbuf, win = np.empty(HW, dt), np.empty(HW, np.int64)
    acc = np.empty((HW, C + 2), dt)  # per pixel: weight sum, weighted z sum, weighted colour sums
    for n in range(first, w2c.shape[0], step):
        r00, r01, r02, t0 = w2c[n, 0, 0], w2c[n, 0, 1], w2c[n, 0, 2], w2c[n, 0, 3]
        r10, r11, r12, t1 = w2c[n, 1, 0], w2c[n, 1, 1], w2c[n, 1, 2], w2c[n, 1, 3]
        r20, r21, r22, t2 = w2c[n, 2, 0], w2c[n, 2, 1], w2c[n, 2, 2], w2c[n, 2, 3]
        fx, fy, cx, cy = K[n, 0, 0], K[n, 1, 1], K[n, 0, 2], K[n, 1, 2]
        zbuf[:] = np.inf
        win[:] = P
        for p in range(P):  # torch: ((r0 x + r1 y) + r2 z) + t, then (f x) / z + c, one rounding per operation
            for k in range(4 if bilinear else 1):
                pix[k, p] = -1
            px, py, pz = points[p, 0], points[p, 1], points[p, 2]
            x = r00 * px + r01 * py + r02 * pz + t0
            y = r10 * px + r11 * py + r12 * pz + t1
            z = r20 * px + r21 * py + r22 * pz + t2
            zd = z if abs(z) > tiny else tiny
            u = fx * x / zd + cx
            v = fy * y / zd + cy
            zs[p] = z
            if not z > near:
                continue
            if not bilinear:  # 0 <= floor(u) < W <=> 0 <= u < W (so u is finite), then floor = truncation
                if u >= zero and u < Wf and v >= zero and v < Hf:
                    pix[0, p] = int(v) * W + int(u)
                continue
            xs, ys = u - half, v - half
            if not (xs >= -one and xs < Wf and ys >= -one and ys < Hf):  # no corner on screen (or not finite)
                continue
            x0, y0 = np.floor(xs), np.floor(ys)
            ax, ay = xs - x0, ys - y0
            bx, by = one - ax, one - ay
            ix, iy = int(x0), int(y0)  # the corners (ix + dx, iy + dy) are exact integers in [-1, W] x [-1, H]
            for k in range(4):  # torch's corner order (0,0), (1,0), (0,1), (1,1)
                dx, dy = k & 1, k >> 1
                wt = (ax if dx else bx) * (ay if dy else by)
                wts[k, p] = wt
                ci, ri = ix + dx, iy + dy
                if wt > zero and ci >= 0 and ci < W and ri >= 0 and ri * W < HW:
                    f = ri * W + ci
                    pix[k, p] = f
                    if z < zbuf[f]:  # z-buffer: nearest z; a tie keeps the lower (earlier) index
                        zbuf[f] = z
                        win[f] = p
        if not bilinear:
            for p in range(P):
                f = pix[0, p]
                if f >= 0 and zs[p] < zbuf[f]:
                    zbuf[f] = zs[p]
                    win[f] = p
            for f in range(HW):
                hit = win[f] < P
                out_depth[n, f] = zbuf[f] if hit else 0.0
                out_index[n, f] = win[f] if hit else -1
            for c in range(C):
                for f in range(HW):
                    out_rgb[n, c, f] = colors[win[f], c] if win[f] < P else bg
            continue
        acc[:] = 0
        for k in range(4):  # depth-band blend, in the torch path's summation order
            for p in range(P):
                f = pix[k, p]
                if f >= 0 and zs[p] <= zbuf[f] * band:
                    wt = wts[k, p]
                    acc[f, 0] += wt
                    acc[f, 1] += wt * zs[p]
                    for c in range(C):
                        acc[f, 2 + c] += wt * colors[p, c]
        for f in range(HW):
            hit = win[f] < P
            safe = acc[f, 0] if acc[f, 0] > tiny else tiny  # torch: clamp(min=1e-12)
            out_depth[n, f] = acc[f, 1] / safe if hit else 0.0
            out_index[n, f] = win[f] if hit else -1
            for c in range(C):
                out_rgb[n, c, f] = acc[f, 2 + c] / safe if hit else bg


@njit(cache=True, parallel=True, error_model="numpy")
def _warp_parallel(n_work: int, points, colors, w2c, K, W, Wf, Hf, near, tiny, one, half, band, bilinear, bg,
                   out_rgb, out_depth, out_index) -> None:
    """_warp_cameras on n_work threads, worker i taking cameras i, i + n_work, ..."""
    for i in prange(n_work):
        _warp_cameras(i, n_work, points, colors, w2c, K, W, Wf, Hf, near, tiny, one, half, band, bilinear, bg,
                      out_rgb, out_depth, out_index)


def supports(points: Tensor, colors: Tensor, cameras: Cameras) -> bool:
    """Whether the numba kernel handles this warp (CPU tensors, float32 or float64 cameras (w2c and K alike),
    no autograd)."""
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (points, colors, cameras.w2c, cameras.K))
    on_cpu = cameras.device.type == "cpu" and points.device.type == "cpu" and colors.device.type == "cpu"
    fits = (cameras.height + 1) * (cameras.width + 1) < 2**31  # int32 pixel indices
    return on_cpu and cameras.dtype in DTYPES and cameras.K.dtype == cameras.dtype and not needs_grad and fits


def forward_warp_cpu(points: Tensor, colors: Tensor, cameras: Cameras, *, bilinear: bool, near: float,
                     depth_tolerance: float, background: float) -> tuple[Tensor, Tensor, Tensor]:
    """The numba forward warp of P points ([P, 3] world, [P, C] colours) into N cameras (H x W).

    Returns rgb [N, C, H, W], depth [N, 1, H, W] (float32) and index [N, 1, H, W] (int64, -1 in holes);
    see :func:`lyra.cache3d.warp.forward_warp` for the semantics.
    """
    N, H, W = len(cameras), cameras.height, cameras.width
    dt = cameras.dtype
    sc = DTYPES[dt]
    a_points = points.detach().to(dt).contiguous().numpy()
    a_colors = colors.detach().to(dt).contiguous().numpy()
    C = a_colors.shape[1]
    a_w2c = cameras.w2c.detach().contiguous().numpy()
    a_K = cameras.K.detach().contiguous().numpy()
    rgb = torch.empty(N, C, H, W, dtype=torch.float32)
    depth = torch.empty(N, 1, H, W, dtype=torch.float32)
    index = torch.empty(N, 1, H, W, dtype=torch.int64)
    args = (a_points, a_colors, a_w2c, a_K, W, sc(W), sc(H), sc(near), sc(1e-12), sc(1.0), sc(0.5),
            sc(1 + depth_tolerance), bilinear, np.float32(background), rgb.numpy().reshape(N, C, H * W),
            depth.numpy().reshape(N, H * W), index.numpy().reshape(N, H * W))
    threads.follow_torch_threads()
    with threads.kernel_section():
        n_work = min(N, threads.num_workers())
        if n_work > 1:
            _warp_parallel(n_work, *args)
        else:
            _warp_cameras(0, 1, *args)
    return rgb, depth, index
