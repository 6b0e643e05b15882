"""Tile rasterizer forward pass (numba): front-to-back alpha compositing per pixel, gsplat rules.

Per pixel the tile keeps T (stored negated once the pixel is done), the colour and depth sums and
the entry index of the last composited Gaussian. Threads claim tiles one at a time, in image order,
through an atomic counter (dynamic scheduling: a thread slowed down by anything else on its core
does not hold the others back). Inside a tile a Gaussian is
evaluated only on the pixels of its culling conic (``project.py``): per row, the interval where
alpha can reach 1/255; every other pixel provably has alpha < 1/255 and would be skipped anyway.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from lyra.render.cpu.project import R_GEO, R_MX, R_MY, R_O, R_P, R_Z
from lyra.render.cpu.threads import fetch_add

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
T_MIN = 1e-4
ROW_MARGIN = 1e-3  # pixels; widens each row interval (a superset is always safe)
GRID_SIGMA_MAX = 600.0  # block recurrences only where exp(-sigma) stays far from float64 underflow (~745)


@njit(cache=True, inline="always")
def record_geometry(r, b: int, eval3d: bool):
    """The mode-specific part of the projected record at r[b:] (r: the flat record array), decoded identically
    by the forward and backward kernels.

    eval3d: M (3x3, row-major), go (3) and go x (M column 0) (3); classic: the conic (a, b, c) and
    the second-difference factors exp(-a), exp(-b), exp(-c) of exp(-sigma) (see classic_block_start).
    Unused entries are 0.
    """
    m00 = m01 = m02 = m10 = m11 = m12 = m20 = m21 = m22 = g0 = g1 = g2 = xm0 = xm1 = xm2 = 0.0
    ca = cb = cc = 0.0
    ka = kb = kc = 1.0
    if eval3d:
        m00, m01, m02 = r[b + R_GEO], r[b + R_GEO + 1], r[b + R_GEO + 2]
        m10, m11, m12 = r[b + R_GEO + 3], r[b + R_GEO + 4], r[b + R_GEO + 5]
        m20, m21, m22 = r[b + R_GEO + 6], r[b + R_GEO + 7], r[b + R_GEO + 8]
        g0, g1, g2 = r[b + R_GEO + 9], r[b + R_GEO + 10], r[b + R_GEO + 11]
        # go x (M r) is linear in r: go x (M col0) per unit of rx, go x (row part) per row
        xm0 = g1 * m20 - g2 * m10
        xm1 = g2 * m00 - g0 * m20
        xm2 = g0 * m10 - g1 * m00
    else:
        ca, cb, cc = r[b + R_GEO], r[b + R_GEO + 1], r[b + R_GEO + 2]
        ka, kb, kc = r[b + R_GEO + 3], r[b + R_GEO + 4], r[b + R_GEO + 5]
    return m00, m01, m02, m10, m11, m12, m20, m21, m22, g0, g1, g2, xm0, xm1, xm2, ca, cb, cc, ka, kb, kc


@njit(cache=True, inline="always")
def eval3d_row(m01: float, m02: float, m11: float, m12: float, m21: float, m22: float, g0: float, g1: float,
               g2: float, ry: float):
    """eval3d, per pixel row: the ray-independent parts h = M (0, ry, 1) and go x h, so that along the row
    w = M r = h + rx M[:, 0] and go x w = go x h + rx (go x M[:, 0])."""
    h0 = m01 * ry + m02
    h1 = m11 * ry + m12
    h2 = m21 * ry + m22
    return h0, h1, h2, g1 * h2 - g2 * h1, g2 * h0 - g0 * h2, g0 * h1 - g1 * h0


@njit(cache=True, inline="always")
def row_span(p00: float, p01: float, p02: float, p11: float, p12: float, p22: float, yc: float,
             lo: int, hi: int):
    """Pixel columns [lo', hi') of row centre yc inside the culling conic, clipped to [lo, hi)."""
    if p00 <= 0.0:
        return lo, hi
    bh = p01 * yc + p02
    cq = (p11 * yc + 2.0 * p12) * yc + p22
    disc = bh * bh - p00 * cq
    if disc < 0.0:
        return lo, lo
    sd = math.sqrt(disc)
    xl = (-bh - sd) / p00 - 0.5 - ROW_MARGIN
    xh = (-bh + sd) / p00 - 0.5 + ROW_MARGIN
    if xl > lo:
        lo = min(hi, int(math.ceil(min(xl, 1e9))))
    if xh < hi - 1:
        hi = max(lo, int(math.floor(max(xh, -1e9))) + 1)
    return lo, hi


@njit(cache=True, inline="always")
def classic_row_start(ca: float, cb: float, cc: float, mx: float, dy: float, u: int):
    """exp(-sigma) at pixel u of a row and the factor to the next pixel (classic mode).

    Along a row sigma is quadratic in u with second difference a, so
    exp(-sigma(u+1)) = exp(-sigma(u)) q(u) and q(u+1) = q(u) exp(-a): two products per pixel
    instead of an exp (relative drift ~1e-16 per step; rows are at most a tile long).
    """
    dx = mx - (u + 0.5)
    sig = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
    return math.exp(-sig), math.exp(cb * dy - ca * (0.5 - dx))


@njit(cache=True, inline="always")
def classic_block_start(ca: float, cb: float, cc: float, mx: float, my: float, u0: int, u1: int, v0: int, v1: int):
    """Seeds of the classic-mode recurrences over the pixel block [u0, u1) x [v0, v1).

    sigma is quadratic in (u, v), so with E_v = exp(-sigma(u0, v)): E_{v+1} = E_v R_v and
    R_{v+1} = R_v exp(-c); the row's per-column factor (classic_row_start) at u0 is Q_v, with
    Q_{v+1} = Q_v exp(-b). No exp per row, no row interval: the alpha threshold does the culling.
    Returns (ok, E, Q, R) at v0; ok is False where sigma at a block corner exceeds GRID_SIGMA_MAX
    (then the caller works row by row).
    """
    dx0, dy0 = mx - (u0 + 0.5), my - (v0 + 0.5)
    dx1, dy1 = dx0 - (u1 - 1 - u0), dy0 - (v1 - 1 - v0)
    s00 = 0.5 * (ca * dx0 * dx0 + cc * dy0 * dy0) + cb * dx0 * dy0
    s10 = 0.5 * (ca * dx1 * dx1 + cc * dy0 * dy0) + cb * dx1 * dy0
    s01 = 0.5 * (ca * dx0 * dx0 + cc * dy1 * dy1) + cb * dx0 * dy1
    s11 = 0.5 * (ca * dx1 * dx1 + cc * dy1 * dy1) + cb * dx1 * dy1
    if max(max(s00, s10), max(s01, s11)) > GRID_SIGMA_MAX:  # sigma is convex: its maximum is at a corner
        return False, 0.0, 0.0, 0.0
    return True, math.exp(-s00), math.exp(cb * dy0 - ca * (0.5 - dx0)), math.exp(cb * dx0 - cc * (0.5 - dy0))


@njit(cache=True, inline="always")
def walk_start(r, b: int, eval3d: bool, ca: float, cb: float, cc: float, mx: float, my: float, u0: int, u1: int,
               v0: int, v1: int):
    """How a tile entry's pixel block [u0, u1) x [v0, v1) is walked, decided identically by both kernels.

    Returns (block, E, Q, R, P00, P01, P02, P11, P12, P22): classic blocks walk by recurrences
    (classic_block_start); otherwise rows are clipped to the culling conic P (read only then).
    """
    block, e_blk, q_blk, r_blk = (False, 0.0, 0.0, 0.0) if eval3d else \
        classic_block_start(ca, cb, cc, mx, my, u0, u1, v0, v1)
    p00 = p01 = p02 = p11 = p12 = p22 = 0.0
    if not block:
        p00, p01, p02 = r[b + R_P], r[b + R_P + 1], r[b + R_P + 2]
        p11, p12, p22 = r[b + R_P + 3], r[b + R_P + 4], r[b + R_P + 5]
    return block, e_blk, q_blk, r_blk, p00, p01, p02, p11, p12, p22


@njit(cache=True)
def tile_queue(starts):
    """(order, counter): the tiles in row-major order and the shared position in that order, claimed with
    :func:`claim`. Neighbouring tiles share many Gaussians, so walking them in image order keeps records
    in cache; it measured a few percent faster than claiming the longest lists first."""
    return np.arange(starts.shape[0] - 1), np.zeros(1, dtype=np.int64)


@njit(cache=True, inline="always")
def claim(order, counter) -> int:
    """The next unclaimed tile of the queue (atomically, from any thread), or -1 when none is left."""
    i = fetch_add(counter, 1)
    return order[i] if i < order.shape[0] else -1


@njit(cache=True)
def _render_tile(t: int, rec, colors, pbox, starts, ids, Ks, bg, width: int, height: int, tile: int,
                 tiles_w: int, tiles_per_cam: int, eval3d: bool, rgb, depth, alpha, t_final, d_final, last,
                 tl, acc, dacc, lastl, rxs, row_left) -> None:
    c = t // tiles_per_cam
    tt = t - c * tiles_per_cam
    ty = tt // tiles_w
    tx = tt - ty * tiles_w
    u0, v0 = tx * tile, ty * tile
    u1, v1 = min(u0 + tile, width), min(v0 + tile, height)
    tw = u1 - u0
    npix = tw * (v1 - v0)
    for i in range(npix):
        tl[i] = 1.0
        acc[3 * i] = 0.0
        acc[3 * i + 1] = 0.0
        acc[3 * i + 2] = 0.0
        dacc[i] = 0.0
        lastl[i] = -1
    for i in range(v1 - v0):
        row_left[i] = tw
    fx, fy, cx, cy = Ks[c, 0, 0], Ks[c, 1, 1], Ks[c, 0, 2], Ks[c, 1, 2]
    n_gauss, nf = rec.shape[1], rec.shape[2]
    r = rec.reshape(rec.size)
    for u in range(u0, u1):
        rxs[u - u0] = (u + 0.5 - cx) / fx
    n_done = 0
    for k in range(starts[t], starts[t + 1]):
        if n_done == npix:
            break
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
        for v in range(gv0, gv1):
            if block:  # exp(-sigma) at (gu0, v) and its per-column factor; advance to the next row
                e_next, q = e_blk, q_blk
                e_blk *= r_blk
                r_blk *= k_c
                q_blk *= k_b
            if row_left[v - v0] == 0:
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
                    tcur = tl[li]
                    if tcur < 0.0:
                        continue
                    rx = rxs[u - u0]
                    w0 = m00 * rx + h0
                    w1 = m10 * rx + h1
                    w2 = m20 * rx + h2
                    x0 = xm0 * rx + xr0  # = go x w
                    x1 = xm1 * rx + xr1
                    x2 = xm2 * rx + xr2
                    im = 1.0 / (w0 * w0 + w1 * w1 + w2 * w2)
                    e = math.exp(-(0.5 * (x0 * x0 + x1 * x1 + x2 * x2) * im))  # the backward's sigma, bit for bit
                    a = min(ALPHA_MAX, o * e)
                    if a < ALPHA_MIN:
                        continue
                    tnext = tcur * (1.0 - a)
                    if tnext <= T_MIN:
                        tl[li] = -tcur
                        n_done += 1
                        row_left[v - v0] -= 1
                        continue
                    wgt = a * tcur
                    acc[3 * li] += col0 * wgt
                    acc[3 * li + 1] += col1 * wgt
                    acc[3 * li + 2] += col2 * wgt
                    dacc[li] += z * wgt
                    tl[li] = tnext
                    lastl[li] = k
            else:
                for u in range(lo, hi):
                    e = e_next  # exp(-sigma) at u, by the recurrence (see classic_row_start)
                    e_next *= q
                    q *= k_step
                    li = row + u
                    tcur = tl[li]
                    if tcur < 0.0:
                        continue
                    if e >= 1.0:  # sigma <= 0 up to rounding: decide the sign of sigma exactly
                        dx = mx - (u + 0.5)
                        if 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy < 0.0:
                            continue
                    a = min(ALPHA_MAX, o * e)
                    if a < ALPHA_MIN:
                        continue
                    tnext = tcur * (1.0 - a)
                    if tnext <= T_MIN:
                        tl[li] = -tcur
                        n_done += 1
                        row_left[v - v0] -= 1
                        continue
                    wgt = a * tcur
                    acc[3 * li] += col0 * wgt
                    acc[3 * li + 1] += col1 * wgt
                    acc[3 * li + 2] += col2 * wgt
                    dacc[li] += z * wgt
                    tl[li] = tnext
                    lastl[li] = k
    for v in range(v0, v1):
        for u in range(u0, u1):
            li = (v - v0) * tw + (u - u0)
            tf = abs(tl[li])
            aout = 1.0 - tf
            rgb[c, v, u, 0] = acc[3 * li] + tf * bg[c, 0]
            rgb[c, v, u, 1] = acc[3 * li + 1] + tf * bg[c, 1]
            rgb[c, v, u, 2] = acc[3 * li + 2] + tf * bg[c, 2]
            alpha[c, v, u, 0] = aout
            depth[c, v, u, 0] = dacc[li] / max(aout, 1e-10)
            t_final[c, v, u] = tf
            d_final[c, v, u] = dacc[li]
            last[c, v, u] = lastl[li]


@njit(cache=True)
def _forward_worker(order, counter, rec, colors, pbox, starts, ids, Ks, bg, width: int, height: int, tile: int,
                    tiles_w: int, tiles_h: int, eval3d: bool, rgb, depth, alpha, t_final, d_final, last) -> None:
    """Render tiles claimed from the queue (tile_queue) until none is left."""
    npix = tile * tile
    tl = np.empty(npix)
    acc = np.empty(3 * npix)
    dacc = np.empty(npix)
    lastl = np.empty(npix, dtype=np.int64)
    rxs = np.empty(tile)
    row_left = np.empty(tile, dtype=np.int64)
    while True:
        t = claim(order, counter)
        if t < 0:
            return
        _render_tile(t, rec, colors, pbox, starts, ids, Ks, bg, width, height, tile, tiles_w,
                     tiles_w * tiles_h, eval3d, rgb, depth, alpha, t_final, d_final, last,
                     tl, acc, dacc, lastl, rxs, row_left)


@njit(parallel=True, cache=True)
def rasterize_forward(rec, colors, pbox, starts, ids, Ks, bg, width: int, height: int, tile: int,
                      tiles_w: int, tiles_h: int, eval3d: bool, n_work: int,
                      rgb, depth, alpha, t_final, d_final, last) -> None:
    """Composite all tiles of all cameras on n_work threads.

    Args:
        rec [C,N,NF], colors [C,N,3], pbox [C,N,4]: projected Gaussians (project.py); starts, ids: tile
        lists (binning.py); Ks [C,3,3]; bg [C,3].
    Writes rgb [C,H,W,3], depth [C,H,W,1], alpha [C,H,W,1] and, for the backward, the final
    transmittance t_final [C,H,W], the depth sum d_final [C,H,W] and the entry index of the last
    composited Gaussian last [C,H,W] (-1: none).
    """
    order, counter = tile_queue(starts)
    for _ in prange(n_work):
        _forward_worker(order, counter, rec, colors, pbox, starts, ids, Ks, bg, width, height, tile, tiles_w,
                        tiles_h, eval3d, rgb, depth, alpha, t_final, d_final, last)


@njit(cache=True)
def rasterize_forward_serial(rec, colors, pbox, starts, ids, Ks, bg, width: int, height: int, tile: int,
                             tiles_w: int, tiles_h: int, eval3d: bool, n_work: int,
                             rgb, depth, alpha, t_final, d_final, last) -> None:
    """rasterize_forward on the calling thread (n_work is ignored)."""
    order, counter = tile_queue(starts)
    _forward_worker(order, counter, rec, colors, pbox, starts, ids, Ks, bg,
                    width, height, tile, tiles_w, tiles_h, eval3d, rgb, depth, alpha, t_final, d_final, last)
