"""Tile rasterizer backward pass (numba): analytic, back to front per pixel.

From the stored final transmittance T_f and the entry index of the last composited Gaussian per
pixel, each tile walks its list backwards, recovers T before every Gaussian by division
(T_i = T_{i+1} / (1 - alpha_i)) and keeps the suffix sum S = sum_{j>i} (g . f_j) alpha_j T_j + g_T T_f,
so memory is O(pixels + Gaussians), independent of the number of tile-Gaussian intersections.
Per-Gaussian gradients are summed over the tile's pixels and added to the thread's own buffer
``gbuf[w]`` (no races); project.py reduces the buffers. Tiles go to the workers in a fixed interleaved order (the
result is the same in every run with the same thread count), or are claimed dynamically as in forward.py when
``RenderOptions.deterministic`` is off.

Gradient buffer layout per (camera, Gaussian): 0..2 colour, 3 opacity, 4 z (depth channel), then
classic: 5 mx, 6 my, 7 a, 8 b, 9 c; eval3d: 5..13 M (row-major), 14..16 go.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from lyra.render.cpu.forward import (
    ALPHA_MAX,
    ALPHA_MIN,
    claim,
    classic_row_start,
    eval3d_row,
    record_geometry,
    row_span,
    tile_queue,
    walk_start,
)
from lyra.render.cpu.project import G_COL, G_GEO, G_O, G_Z, R_MX, R_MY, R_O, R_Z


@njit(cache=True)
def _backward_tile(t: int, rec, colors, pbox, starts, ids, Ks, bg, width: int, height: int, tile: int,
                   tiles_w: int, tiles_per_cam: int, eval3d: bool, g_rgb, g_depth, g_alpha,
                   t_final, d_final, last, gb, tl, sacc, grgb, gdn, lastl, rxs, row_last) -> None:
    c = t // tiles_per_cam
    tt = t - c * tiles_per_cam
    ty = tt // tiles_w
    tx = tt - ty * tiles_w
    u0, v0 = tx * tile, ty * tile
    u1, v1 = min(u0 + tile, width), min(v0 + tile, height)
    tw = u1 - u0
    kmax = -1
    for v in range(v0, v1):
        row_last[v - v0] = -1
        for u in range(u0, u1):
            li = (v - v0) * tw + (u - u0)
            lk = last[c, v, u]
            lastl[li] = lk
            if lk < 0:
                continue
            kmax = max(kmax, lk)
            row_last[v - v0] = max(row_last[v - v0], lk)
            tf = t_final[c, v, u]
            aout = 1.0 - tf
            gr0, gr1, gr2 = g_rgb[c, v, u, 0], g_rgb[c, v, u, 1], g_rgb[c, v, u, 2]
            gd = g_depth[c, v, u, 0]
            # rgb = sum + T_f bg; alpha = 1 - T_f; depth = D / max(1 - T_f, 1e-10)
            gt = gr0 * bg[c, 0] + gr1 * bg[c, 1] + gr2 * bg[c, 2] - g_alpha[c, v, u, 0]
            if aout > 1e-10:
                gt += gd * d_final[c, v, u] / (aout * aout)
            tl[li] = tf
            sacc[li] = gt * tf
            grgb[3 * li] = gr0
            grgb[3 * li + 1] = gr1
            grgb[3 * li + 2] = gr2
            gdn[li] = gd / max(aout, 1e-10)
    if kmax < 0:
        return
    fx, fy, cx, cy = Ks[c, 0, 0], Ks[c, 1, 1], Ks[c, 0, 2], Ks[c, 1, 2]
    n_gauss, nf = rec.shape[1], rec.shape[2]
    r = rec.reshape(rec.size)
    for u in range(u0, u1):
        rxs[u - u0] = (u + 0.5 - cx) / fx
    for k in range(kmax, starts[t] - 1, -1):
        n = ids[k]
        gu0, gu1 = max(u0, pbox[c, n, 0]), min(u1, pbox[c, n, 1])
        gv0, gv1 = max(v0, pbox[c, n, 2]), min(v1, pbox[c, n, 3])
        if gu0 >= gu1 or gv0 >= gv1:
            continue
        b = (c * n_gauss + n) * nf  # record of (c, n) in the flat array: no per-entry array view
        o, z, mx, my = r[b + R_O], r[b + R_Z], r[b + R_MX], r[b + R_MY]
        col0, col1, col2 = colors[c, n, 0], colors[c, n, 1], colors[c, n, 2]
        (m00, m01, m02, m10, m11, m12, m20, m21, m22, g0, g1, g2, xm0, xm1, xm2,
         ca, cb, cc, k_step, k_b, k_c) = record_geometry(r, b, eval3d)
        e_next = q = 0.0
        block, e_blk, q_blk, r_blk, p00, p01, p02, p11, p12, p22 = walk_start(r, b, eval3d, ca, cb, cc, mx, my,
                                                                               gu0, gu1, gv0, gv1)
        # per-Gaussian sums over this tile's pixels, in registers
        a_c0 = a_c1 = a_c2 = a_o = a_z = 0.0
        s_x = s_y = s_xx = s_xy = s_yy = 0.0  # classic: sums of dsig * (dx, dy, dx^2, dx dy, dy^2)
        a_m00 = a_m01 = a_m02 = a_m10 = a_m11 = a_m12 = a_m20 = a_m21 = a_m22 = 0.0  # eval3d: dL/dM
        a_g0 = a_g1 = a_g2 = 0.0  # eval3d: dL/dgo
        touched = False
        for v in range(gv0, gv1):
            if block:  # exp(-sigma) at (gu0, v) and its per-column factor; advance to the next row
                e_next, q = e_blk, q_blk
                e_blk *= r_blk
                r_blk *= k_c
                q_blk *= k_b
            if k > row_last[v - v0]:
                continue
            yc = v + 0.5
            lo, hi = (gu0, gu1) if block else row_span(p00, p01, p02, p11, p12, p22, yc, gu0, gu1)
            if lo >= hi:
                continue
            row = (v - v0) * tw - u0
            ry = h0 = h1 = h2 = xr0 = xr1 = xr2 = dy = 0.0
            if eval3d:
                ry = (yc - cy) / fy
                h0, h1, h2, xr0, xr1, xr2 = eval3d_row(m01, m02, m11, m12, m21, m22, g0, g1, g2, ry)
            else:
                dy = my - yc
                if not block:
                    e_next, q = classic_row_start(ca, cb, cc, mx, dy, lo)
            if eval3d:
                for u in range(lo, hi):
                    li = row + u
                    if k > lastl[li]:
                        continue
                    rx = rxs[u - u0]
                    w0 = m00 * rx + h0
                    w1 = m10 * rx + h1
                    w2 = m20 * rx + h2
                    x0 = xm0 * rx + xr0  # = go x w
                    x1 = xm1 * rx + xr1
                    x2 = xm2 * rx + xr2
                    im = 1.0 / (w0 * w0 + w1 * w1 + w2 * w2)
                    sig = 0.5 * (x0 * x0 + x1 * x1 + x2 * x2) * im  # the forward's sigma, bit for bit
                    e = math.exp(-sig)
                    raw = o * e
                    a = min(ALPHA_MAX, raw)
                    if a < ALPHA_MIN:
                        continue
                    touched = True
                    ia = 1.0 / (1.0 - a)
                    tcur = tl[li] * ia
                    wgt = a * tcur
                    gr0, gr1, gr2, gz = grgb[3 * li], grgb[3 * li + 1], grgb[3 * li + 2], gdn[li]
                    gf = gr0 * col0 + gr1 * col1 + gr2 * col2 + gz * z
                    s = sacc[li]
                    dalpha = tcur * gf - s * ia
                    a_c0 += gr0 * wgt
                    a_c1 += gr1 * wgt
                    a_c2 += gr2 * wgt
                    a_z += gz * wgt
                    sacc[li] = s + gf * wgt
                    tl[li] = tcur
                    if raw > ALPHA_MAX:
                        continue  # clamped: no gradient to o or sigma
                    a_o += dalpha * e
                    dsig = -dalpha * a
                    # sigma = 0.5 |go x w|^2 / |w|^2
                    f = 2.0 * sig * im
                    y0 = x1 * g2 - x2 * g1  # (go x w) x go
                    y1 = x2 * g0 - x0 * g2
                    y2 = x0 * g1 - x1 * g0
                    dw0 = dsig * (y0 * im - f * w0)
                    dw1 = dsig * (y1 * im - f * w1)
                    dw2 = dsig * (y2 * im - f * w2)
                    a_m00 += dw0 * rx
                    a_m01 += dw0 * ry
                    a_m02 += dw0
                    a_m10 += dw1 * rx
                    a_m11 += dw1 * ry
                    a_m12 += dw1
                    a_m20 += dw2 * rx
                    a_m21 += dw2 * ry
                    a_m22 += dw2
                    ds = dsig * im  # d sigma / d go = (w x (go x w)) / |w|^2
                    a_g0 += ds * (w1 * x2 - w2 * x1)
                    a_g1 += ds * (w2 * x0 - w0 * x2)
                    a_g2 += ds * (w0 * x1 - w1 * x0)
            else:
                for u in range(lo, hi):
                    e = e_next  # the forward's recurrence, bit for bit
                    e_next *= q
                    q *= k_step
                    li = row + u
                    if k > lastl[li]:
                        continue
                    dx = mx - (u + 0.5)
                    if e >= 1.0 and 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy < 0.0:
                        continue
                    raw = o * e
                    a = min(ALPHA_MAX, raw)
                    if a < ALPHA_MIN:
                        continue
                    touched = True
                    ia = 1.0 / (1.0 - a)
                    tcur = tl[li] * ia
                    wgt = a * tcur
                    gr0, gr1, gr2, gz = grgb[3 * li], grgb[3 * li + 1], grgb[3 * li + 2], gdn[li]
                    gf = gr0 * col0 + gr1 * col1 + gr2 * col2 + gz * z
                    s = sacc[li]
                    dalpha = tcur * gf - s * ia
                    a_c0 += gr0 * wgt
                    a_c1 += gr1 * wgt
                    a_c2 += gr2 * wgt
                    a_z += gz * wgt
                    sacc[li] = s + gf * wgt
                    tl[li] = tcur
                    if raw > ALPHA_MAX:
                        continue  # clamped: no gradient to o or sigma
                    a_o += dalpha * e
                    dsig = -dalpha * a
                    sdx = dsig * dx
                    sdy = dsig * dy
                    s_x += sdx
                    s_y += sdy
                    s_xx += sdx * dx
                    s_xy += sdx * dy
                    s_yy += sdy * dy
        if touched:
            gn = gb[c, n]
            gn[G_COL] += a_c0
            gn[G_COL + 1] += a_c1
            gn[G_COL + 2] += a_c2
            gn[G_O] += a_o
            gn[G_Z] += a_z
            if eval3d:
                gn[G_GEO] += a_m00
                gn[G_GEO + 1] += a_m01
                gn[G_GEO + 2] += a_m02
                gn[G_GEO + 3] += a_m10
                gn[G_GEO + 4] += a_m11
                gn[G_GEO + 5] += a_m12
                gn[G_GEO + 6] += a_m20
                gn[G_GEO + 7] += a_m21
                gn[G_GEO + 8] += a_m22
                gn[G_GEO + 9] += a_g0
                gn[G_GEO + 10] += a_g1
                gn[G_GEO + 11] += a_g2
            else:  # sigma = 0.5 a dx^2 + b dx dy + 0.5 c dy^2, (dx, dy) = mean2d - pixel
                gn[G_GEO] += ca * s_x + cb * s_y
                gn[G_GEO + 1] += cb * s_x + cc * s_y
                gn[G_GEO + 2] += 0.5 * s_xx
                gn[G_GEO + 3] += s_xy
                gn[G_GEO + 4] += 0.5 * s_yy


@njit(cache=True)
def _backward_worker(w: int, n_work: int, deterministic: bool, order, counter, rec, colors, pbox, starts, ids, Ks,
                     bg, width: int, height: int, tile: int, tiles_w: int, tiles_h: int, eval3d: bool, g_rgb, g_depth,
                     g_alpha, t_final, d_final, last, gb) -> None:
    """Back-propagate tiles into gb [C,N,NG] until none is left: worker ``w`` of ``n_work`` takes the tiles
    w, w + n_work, ... of the queue when ``deterministic`` (every Gaussian's per-tile sums then reach the
    same buffer in the same order in every run), else whichever tile is unclaimed next (tile_queue)."""
    npix = tile * tile
    tl = np.empty(npix)
    sacc = np.empty(npix)
    grgb = np.empty(3 * npix)
    gdn = np.empty(npix)
    lastl = np.empty(npix, dtype=np.int64)
    rxs = np.empty(tile)
    row_last = np.empty(tile, dtype=np.int64)
    i = np.int64(w)
    while True:
        if deterministic:
            t = order[i] if i < order.shape[0] else -1
            i += n_work
        else:
            t = claim(order, counter)
        if t < 0:
            return
        _backward_tile(t, rec, colors, pbox, starts, ids, Ks, bg, width, height, tile, tiles_w,
                       tiles_w * tiles_h, eval3d, g_rgb, g_depth, g_alpha, t_final, d_final, last, gb,
                       tl, sacc, grgb, gdn, lastl, rxs, row_last)


@njit(parallel=True, cache=True)
def rasterize_backward(rec, colors, pbox, starts, ids, Ks, bg, width: int, height: int, tile: int,
                       tiles_w: int, tiles_h: int, eval3d: bool, deterministic: bool, g_rgb, g_depth, g_alpha,
                       t_final, d_final, last, gbuf) -> None:
    """Accumulate image-space gradients of every Gaussian into gbuf [n_work, C, N, NG] (one buffer per thread).

    g_rgb [C,H,W,3], g_depth [C,H,W,1], g_alpha [C,H,W,1]: gradients of the outputs;
    t_final, d_final, last: saved by rasterize_forward. gbuf must be zero on entry. ``deterministic``: a fixed
    tile-to-worker assignment (see _backward_worker), so the result depends on n_work only, not on timing.
    """
    order, counter = tile_queue(starts)
    n_work = gbuf.shape[0]
    for w in prange(n_work):
        _backward_worker(w, n_work, deterministic, order, counter, rec, colors, pbox, starts, ids, Ks, bg, width,
                         height, tile, tiles_w, tiles_h, eval3d, g_rgb, g_depth, g_alpha, t_final, d_final, last,
                         gbuf[w])


@njit(cache=True)
def rasterize_backward_serial(rec, colors, pbox, starts, ids, Ks, bg, width: int, height: int, tile: int,
                              tiles_w: int, tiles_h: int, eval3d: bool, deterministic: bool, g_rgb, g_depth,
                              g_alpha, t_final, d_final, last, gbuf) -> None:
    """rasterize_backward on the calling thread, into gbuf[0]."""
    order, counter = tile_queue(starts)
    _backward_worker(0, 1, True, order, counter, rec, colors, pbox, starts, ids, Ks, bg,
                     width, height, tile, tiles_w, tiles_h, eval3d, g_rgb, g_depth, g_alpha, t_final, d_final,
                     last, gbuf[0])
