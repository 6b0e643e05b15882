"""Per-camera projection of 3D Gaussians (forward) and its analytic backward, in numba.

Every kernel computes in float64 whatever the caller's dtype. The forward writes, per camera c and
Gaussian n, a record ``rec[c, n, :NF]`` (layout below), the touched tile rectangle
``rect[c, n] = (x0, x1, y0, y1)`` (exclusive ends, empty when culled) and a pixel box
``pbox[c, n] = (u0, u1, v0, v1)`` that contains every pixel where the Gaussian's alpha can reach
1/255 (sub-tile culling; see ``docs/rasterizer.md``).

Record layout (float64; classic records may be allocated with NF_CLASSIC fields):
    0 mx, 1 my: 2D mean (pixels); 2 z: camera-space depth; 3 o: opacity; 4 L = ln(255 o);
    5..10 culling conic P00 P01 P02 P11 P12 P22 over homogeneous pixel centres w = (x, y, 1):
        alpha >= 1/255 only where w^T P w <= 0;
    classic: 11 a, 12 b, 13 c (conic = inverse 2D covariance), 14..16 exp(-a), exp(-b), exp(-c)
        (the second-difference factors of the kernels' exp recurrences);
    eval3d: 11..19 M (3x3 row-major, camera space -> Gaussian frame), 20..22 go = -M p.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

NF = 23
NF_CLASSIC = 17  # classic records stop after the conic and its exp factors
R_MX, R_MY, R_Z, R_O, R_L, R_P, R_GEO = 0, 1, 2, 3, 4, 5, 11

ALPHA_MIN = 1.0 / 255.0
EXTEND_MAX = 3.33
CULL_SIGMA_MARGIN = 1e-6  # culling conic uses L + margin (sigma units): a safe superset
CULL_PIXEL_MARGIN = 1e-3  # and widens pixel intervals by this much

# Gradient buffer layout per (camera, Gaussian), see backward.py.
G_COL, G_O, G_Z, G_GEO = 0, 3, 4, 5
NG_CLASSIC = 10  # + mx my a b c
NG_EVAL3D = 17  # + M (9) go (3)


@njit(cache=True, inline="always")
def quat_to_rot(qw: float, qx: float, qy: float, qz: float):
    """Rotation matrix (row-major 9-tuple) of the normalised quaternion; also the normalised quat and norm."""
    nrm = math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
    w, x, y, z = qw / nrm, qx / nrm, qy / nrm, qz / nrm
    rot = (
        1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - w * z), 2.0 * (x * z + w * y),
        2.0 * (x * y + w * z), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - w * x),
        2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y),
    )
    return rot, (w, x, y, z), nrm


@njit(cache=True, inline="always")
def rot_vjp(q, nrm: float, g):
    """Gradient w.r.t. the raw quaternion given g = dL/dR (row-major 9-tuple), q normalised, nrm = |q_raw|."""
    w, x, y, z = q
    g00, g01, g02, g10, g11, g12, g20, g21, g22 = g
    gw = 2.0 * (-z * g01 + y * g02 + z * g10 - x * g12 - y * g20 + x * g21)
    gx = 2.0 * (y * g01 + z * g02 + y * g10 - 2.0 * x * g11 - w * g12 + z * g20 + w * g21 - 2.0 * x * g22)
    gy = 2.0 * (-2.0 * y * g00 + x * g01 + w * g02 + x * g10 + z * g12 - w * g20 + z * g21 - 2.0 * y * g22)
    gz = 2.0 * (-2.0 * z * g00 - w * g01 + x * g02 + w * g10 - 2.0 * z * g11 + y * g12 + x * g20 + y * g21)
    dot = w * gw + x * gx + y * gy + z * gz
    return ((gw - w * dot) / nrm, (gx - x * dot) / nrm, (gy - y * dot) / nrm, (gz - z * dot) / nrm)


@njit(cache=True, inline="always")
def camera_covariance(w00, w01, w02, w10, w11, w12, w20, w21, w22, rot, s0: float, s1: float, s2: float):
    """Upper triangle (00, 01, 02, 11, 12, 22) of Sc = A A^T, A = W R diag(s) (W: world-to-camera rotation)."""
    r00, r01, r02, r10, r11, r12, r20, r21, r22 = rot
    a00 = (w00 * r00 + w01 * r10 + w02 * r20) * s0
    a01 = (w00 * r01 + w01 * r11 + w02 * r21) * s1
    a02 = (w00 * r02 + w01 * r12 + w02 * r22) * s2
    a10 = (w10 * r00 + w11 * r10 + w12 * r20) * s0
    a11 = (w10 * r01 + w11 * r11 + w12 * r21) * s1
    a12 = (w10 * r02 + w11 * r12 + w12 * r22) * s2
    a20 = (w20 * r00 + w21 * r10 + w22 * r20) * s0
    a21 = (w20 * r01 + w21 * r11 + w22 * r21) * s1
    a22 = (w20 * r02 + w21 * r12 + w22 * r22) * s2
    return (a00 * a00 + a01 * a01 + a02 * a02, a00 * a10 + a01 * a11 + a02 * a12, a00 * a20 + a01 * a21 + a02 * a22,
            a10 * a10 + a11 * a11 + a12 * a12, a10 * a20 + a11 * a21 + a12 * a22, a20 * a20 + a21 * a21 + a22 * a22)


@njit(cache=True, inline="always")
def gaussian_frame(w00, w01, w02, w10, w11, w12, w20, w21, w22, rot, s0: float, s1: float, s2: float):
    """M = diag(1/s) R^T W (camera space -> the Gaussian's unit frame), row-major 9-tuple."""
    r00, r01, r02, r10, r11, r12, r20, r21, r22 = rot
    i0, i1, i2 = 1.0 / s0, 1.0 / s1, 1.0 / s2
    return (i0 * (r00 * w00 + r10 * w10 + r20 * w20), i0 * (r00 * w01 + r10 * w11 + r20 * w21),
            i0 * (r00 * w02 + r10 * w12 + r20 * w22),
            i1 * (r01 * w00 + r11 * w10 + r21 * w20), i1 * (r01 * w01 + r11 * w11 + r21 * w21),
            i1 * (r01 * w02 + r11 * w12 + r21 * w22),
            i2 * (r02 * w00 + r12 * w10 + r22 * w20), i2 * (r02 * w01 + r12 * w11 + r22 * w21),
            i2 * (r02 * w02 + r12 * w12 + r22 * w22))


@njit(cache=True)
def _project_range(means, quats, scales, opacities, w2c, Ks, n0: int, n1: int, width: int, height: int, tile: int,
                   near: float, far: float, eps2d: float, eval3d: bool, rec, rect, pbox) -> None:
    """Project Gaussians [n0, n1) into every camera (see the module docstring).

    One loop body, no per-Gaussian call and no temporary arrays: an inlined function with early returns
    or array slices cost numba reference-count traffic that made this 3-10x slower.
    """
    n_gauss, nf = rec.shape[1], rec.shape[2]
    r = rec.reshape(rec.size)
    inv_tile = 1.0 / tile
    lims = np.empty((w2c.shape[0], 4))  # gsplat's clamp of x/z, y/z for the EWA Jacobian, per camera
    for c in range(w2c.shape[0]):
        fx, fy, cx, cy = Ks[c, 0, 0], Ks[c, 1, 1], Ks[c, 0, 2], Ks[c, 1, 2]
        tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
        lims[c, 0] = (width - cx) / fx + 0.3 * tan_fovx
        lims[c, 1] = cx / fx + 0.3 * tan_fovx
        lims[c, 2] = (height - cy) / fy + 0.3 * tan_fovy
        lims[c, 3] = cy / fy + 0.3 * tan_fovy
    for n in range(n0, n1):
        for c in range(w2c.shape[0]):
            rect[c, n, 0] = 0
            rect[c, n, 1] = 0
            rect[c, n, 2] = 0
            rect[c, n, 3] = 0
            pbox[c, n, 0] = 0
            pbox[c, n, 1] = 0
            pbox[c, n, 2] = 0
            pbox[c, n, 3] = 0
            mx0, my0, mz0 = means[n, 0], means[n, 1], means[n, 2]
            px = w2c[c, 0, 0] * mx0 + w2c[c, 0, 1] * my0 + w2c[c, 0, 2] * mz0 + w2c[c, 0, 3]
            py = w2c[c, 1, 0] * mx0 + w2c[c, 1, 1] * my0 + w2c[c, 1, 2] * mz0 + w2c[c, 1, 3]
            pz = w2c[c, 2, 0] * mx0 + w2c[c, 2, 1] * my0 + w2c[c, 2, 2] * mz0 + w2c[c, 2, 3]
            if not (pz > near and pz < far):
                continue
            o = opacities[n]
            if not (o >= ALPHA_MIN):
                continue
            fx, fy, cx, cy = Ks[c, 0, 0], Ks[c, 1, 1], Ks[c, 0, 2], Ks[c, 1, 2]
            rot, _, _ = quat_to_rot(quats[n, 0], quats[n, 1], quats[n, 2], quats[n, 3])
            w00, w01, w02 = w2c[c, 0, 0], w2c[c, 0, 1], w2c[c, 0, 2]
            w10, w11, w12 = w2c[c, 1, 0], w2c[c, 1, 1], w2c[c, 1, 2]
            w20, w21, w22 = w2c[c, 2, 0], w2c[c, 2, 1], w2c[c, 2, 2]
            s0, s1, s2 = scales[n, 0], scales[n, 1], scales[n, 2]
            # camera-space covariance: Sc = A A^T with A = R_c R_q diag(s)
            sc00, sc01, sc02, sc11, sc12, sc22 = camera_covariance(w00, w01, w02, w10, w11, w12, w20, w21, w22,
                                                                   rot, s0, s1, s2)
            # EWA Jacobian with gsplat's clamped tx, ty
            lim_xp, lim_xn, lim_yp, lim_yn = lims[c, 0], lims[c, 1], lims[c, 2], lims[c, 3]
            iz = 1.0 / pz
            tx = pz * min(lim_xp, max(-lim_xn, px * iz))
            ty = pz * min(lim_yp, max(-lim_yn, py * iz))
            j00 = fx * iz
            j02 = -fx * tx * iz * iz
            j11 = fy * iz
            j12 = -fy * ty * iz * iz
            # Sigma2 = J Sc J^T (J = [[j00, 0, j02], [0, j11, j12]])
            s2a = j00 * (j00 * sc00 + j02 * sc02) + j02 * (j00 * sc02 + j02 * sc22) + eps2d
            s2b = j00 * (j11 * sc01 + j12 * sc02) + j02 * (j11 * sc12 + j12 * sc22)
            s2c = j11 * (j11 * sc11 + j12 * sc12) + j12 * (j11 * sc12 + j12 * sc22) + eps2d
            det = s2a * s2c - s2b * s2b
            if not (det > 0.0):
                continue
            idet = 1.0 / det
            ca, cb, cc = s2c * idet, -s2b * idet, s2a * idet
            mx = fx * px * iz + cx
            my = fy * py * iz + cy
            L = math.log(o * 255.0)
            extend = min(EXTEND_MAX, math.sqrt(2.0 * L))
            rx = math.ceil(extend * math.sqrt(s2a))
            ry = math.ceil(extend * math.sqrt(s2c))
            if rx <= 0.0 and ry <= 0.0:
                continue
            if mx + rx <= 0.0 or mx - rx >= width or my + ry <= 0.0 or my - ry >= height:
                continue
            tw = (width + tile - 1) // tile
            th = (height + tile - 1) // tile
            x0 = min(max(math.floor((mx - rx) * inv_tile), 0), tw)
            x1 = min(max(math.ceil((mx + rx) * inv_tile), 0), tw)
            y0 = min(max(math.floor((my - ry) * inv_tile), 0), th)
            y1 = min(max(math.ceil((my + ry) * inv_tile), 0), th)
            if x1 <= x0 or y1 <= y0:
                continue
            b = (c * n_gauss + n) * nf
            r[b + R_MX] = mx
            r[b + R_MY] = my
            r[b + R_Z] = pz
            r[b + R_O] = o
            r[b + R_L] = L
            Lc = L + CULL_SIGMA_MARGIN
            if not eval3d:
                r[b + R_GEO] = ca
                r[b + R_GEO + 1] = cb
                r[b + R_GEO + 2] = cc
                r[b + R_GEO + 3] = math.exp(-ca)
                r[b + R_GEO + 4] = math.exp(-cb)
                r[b + R_GEO + 5] = math.exp(-cc)
                # sigma - L <= 0 with sigma = 0.5 a (x-mx)^2 + b (x-mx)(y-my) + 0.5 c (y-my)^2
                p00, p01, p11 = 0.5 * ca, 0.5 * cb, 0.5 * cc
                p02 = -0.5 * (ca * mx + cb * my)
                p12 = -0.5 * (cb * mx + cc * my)
                p22 = 0.5 * ca * mx * mx + cb * mx * my + 0.5 * cc * my * my - Lc
            else:
                # M = diag(1/s) R_q^T R_c; go = -M p
                m = gaussian_frame(w00, w01, w02, w10, w11, w12, w20, w21, w22, rot, s0, s1, s2)
                go0 = -(m[0] * px + m[1] * py + m[2] * pz)
                go1 = -(m[3] * px + m[4] * py + m[5] * pz)
                go2 = -(m[6] * px + m[7] * py + m[8] * pz)
                for k in range(9):
                    r[b + R_GEO + k] = m[k]
                r[b + R_GEO + 9] = go0
                r[b + R_GEO + 10] = go1
                r[b + R_GEO + 11] = go2
                # ray r: sigma <= L  <=>  r^T Q r <= 0, Q = (|go|^2 - 2L) M^T M - u u^T, u = M^T go
                gg = go0 * go0 + go1 * go1 + go2 * go2 - 2.0 * Lc
                u0 = m[0] * go0 + m[3] * go1 + m[6] * go2
                u1 = m[1] * go0 + m[4] * go1 + m[7] * go2
                u2 = m[2] * go0 + m[5] * go1 + m[8] * go2
                q00 = gg * (m[0] * m[0] + m[3] * m[3] + m[6] * m[6]) - u0 * u0
                q01 = gg * (m[0] * m[1] + m[3] * m[4] + m[6] * m[7]) - u0 * u1
                q02 = gg * (m[0] * m[2] + m[3] * m[5] + m[6] * m[8]) - u0 * u2
                q11 = gg * (m[1] * m[1] + m[4] * m[4] + m[7] * m[7]) - u1 * u1
                q12 = gg * (m[1] * m[2] + m[4] * m[5] + m[7] * m[8]) - u1 * u2
                q22 = gg * (m[2] * m[2] + m[5] * m[5] + m[8] * m[8]) - u2 * u2
                # to pixel centres: r = (a0 x + b0, a1 y + b1, 1)
                a0, b0, a1, b1 = 1.0 / fx, -cx / fx, 1.0 / fy, -cy / fy
                p00 = q00 * a0 * a0
                p01 = q01 * a0 * a1
                p11 = q11 * a1 * a1
                p02 = a0 * (q00 * b0 + q01 * b1 + q02)
                p12 = a1 * (q01 * b0 + q11 * b1 + q12)
                p22 = (q00 * b0 * b0 + 2.0 * q01 * b0 * b1 + 2.0 * q02 * b0 + q11 * b1 * b1 + 2.0 * q12 * b1 + q22)
            r[b + R_P] = p00
            r[b + R_P + 1] = p01
            r[b + R_P + 2] = p02
            r[b + R_P + 3] = p11
            r[b + R_P + 4] = p12
            r[b + R_P + 5] = p22
            # pixel box: the tile rectangle, shrunk to the bounding box of the culling ellipse when bounded
            u0p, u1p = x0 * tile, min(x1 * tile, width)
            v0p, v1p = y0 * tile, min(y1 * tile, height)
            qa = p01 * p01 - p00 * p11
            if p00 > 0.0 and p11 > 0.0 and qa < 0.0:
                qb = p01 * p02 - p00 * p12
                qc = p02 * p02 - p00 * p22
                disc = qb * qb - qa * qc
                qbx = p01 * p12 - p11 * p02
                qcx = p12 * p12 - p11 * p22
                discx = qbx * qbx - qa * qcx
                if not (math.isfinite(disc) and math.isfinite(discx)):
                    pass  # degenerate numbers: keep the tile rectangle
                elif disc < 0.0 or discx < 0.0:
                    u1p = u0p
                    v1p = v0p
                else:
                    sd = math.sqrt(disc)
                    iqa = 1.0 / qa
                    ylo = (-qb + sd) * iqa  # qa < 0: this is the smaller root
                    yhi = (-qb - sd) * iqa
                    sdx = math.sqrt(discx)
                    xlo = (-qbx + sdx) * iqa
                    xhi = (-qbx - sdx) * iqa
                    v0p = max(v0p, min(v1p, math.ceil(max(ylo - 0.5 - CULL_PIXEL_MARGIN, -1.0))))
                    v1p = min(v1p, max(v0p, math.floor(min(yhi - 0.5 + CULL_PIXEL_MARGIN, 1e9)) + 1))
                    u0p = max(u0p, min(u1p, math.ceil(max(xlo - 0.5 - CULL_PIXEL_MARGIN, -1.0))))
                    u1p = min(u1p, max(u0p, math.floor(min(xhi - 0.5 + CULL_PIXEL_MARGIN, 1e9)) + 1))
            rect[c, n, 0] = x0
            rect[c, n, 1] = x1
            rect[c, n, 2] = y0
            rect[c, n, 3] = y1
            pbox[c, n, 0] = u0p
            pbox[c, n, 1] = u1p
            pbox[c, n, 2] = v0p
            pbox[c, n, 3] = v1p


@njit(parallel=True, cache=True)
def project_forward(means, quats, scales, opacities, w2c, Ks, width: int, height: int, tile: int,
                    near: float, far: float, eps2d: float, eval3d: bool, n_work: int, rec, rect, pbox) -> None:
    """Fill rec [C,N,NF], rect [C,N,4] and pbox [C,N,4] for all cameras and Gaussians (float64 inputs).

    n_work: number of work items (contiguous Gaussian chunks), e.g. 4x the thread count.
    """
    n_gauss = means.shape[0]
    for w in prange(n_work):
        _project_range(means, quats, scales, opacities, w2c, Ks, w * n_gauss // n_work, (w + 1) * n_gauss // n_work,
                       width, height, tile, near, far, eps2d, eval3d, rec, rect, pbox)


@njit(cache=True)
def _backward_range(means, quats, scales, w2c, Ks, n0: int, n1: int, width: int, height: int, eps2d: float,
                    eval3d: bool, rect, gbuf, g_means, g_quats, g_scales, g_opac, g_colors) -> None:
    """For each Gaussian in [n0, n1): sum the per-worker image-space gradients and chain them to its 3D
    parameters (one loop body and work arrays allocated once: see _project_range)."""
    n_work, n_cam, _, ng = gbuf.shape
    gm, grot, gs, g = np.empty(3), np.empty(9), np.empty(3), np.empty(ng)
    a, gsig, gmm = np.empty(9), np.empty(9), np.empty(9)
    for n in range(n0, n1):
        rot, qn, nrm = quat_to_rot(quats[n, 0], quats[n, 1], quats[n, 2], quats[n, 3])
        s = (scales[n, 0], scales[n, 1], scales[n, 2])
        gm[:] = 0.0
        grot[:] = 0.0
        gs[:] = 0.0
        go_ = 0.0
        for c in range(n_cam):
            if rect[c, n, 1] <= rect[c, n, 0]:
                continue
            for k in range(ng):
                g[k] = 0.0
            for w in range(n_work):
                for k in range(ng):
                    g[k] += gbuf[w, c, n, k]
            for k in range(3):
                g_colors[c, n, k] = g[G_COL + k]
            go_ += g[G_O]
            m0, m1, m2 = means[n, 0], means[n, 1], means[n, 2]
            px = w2c[c, 0, 0] * m0 + w2c[c, 0, 1] * m1 + w2c[c, 0, 2] * m2 + w2c[c, 0, 3]
            py = w2c[c, 1, 0] * m0 + w2c[c, 1, 1] * m1 + w2c[c, 1, 2] * m2 + w2c[c, 1, 3]
            pz = w2c[c, 2, 0] * m0 + w2c[c, 2, 1] * m1 + w2c[c, 2, 2] * m2 + w2c[c, 2, 3]
            gp0, gp1, gp2 = 0.0, 0.0, g[G_Z]
            w00, w01, w02 = w2c[c, 0, 0], w2c[c, 0, 1], w2c[c, 0, 2]
            w10, w11, w12 = w2c[c, 1, 0], w2c[c, 1, 1], w2c[c, 1, 2]
            w20, w21, w22 = w2c[c, 2, 0], w2c[c, 2, 1], w2c[c, 2, 2]
            if not eval3d:
                fx, fy, cx, cy = Ks[c, 0, 0], Ks[c, 1, 1], Ks[c, 0, 2], Ks[c, 1, 2]
                sc00, sc01, sc02, sc11, sc12, sc22 = camera_covariance(w00, w01, w02, w10, w11, w12, w20, w21, w22,
                                                                       rot, s[0], s[1], s[2])
                tan_fovx = 0.5 * width / fx
                tan_fovy = 0.5 * height / fy
                lim_xp = (width - cx) / fx + 0.3 * tan_fovx
                lim_xn = cx / fx + 0.3 * tan_fovx
                lim_yp = (height - cy) / fy + 0.3 * tan_fovy
                lim_yn = cy / fy + 0.3 * tan_fovy
                ux, uy = px / pz, py / pz
                tx = pz * min(lim_xp, max(-lim_xn, ux))
                ty = pz * min(lim_yp, max(-lim_yn, uy))
                iz = 1.0 / pz
                iz2 = iz * iz
                j00, j02, j11, j12 = fx * iz, -fx * tx * iz2, fy * iz, -fy * ty * iz2
                s2a = j00 * (j00 * sc00 + j02 * sc02) + j02 * (j00 * sc02 + j02 * sc22)
                s2b = j00 * (j11 * sc01 + j12 * sc02) + j02 * (j11 * sc12 + j12 * sc22)
                s2c = j11 * (j11 * sc11 + j12 * sc12) + j12 * (j11 * sc12 + j12 * sc22)
                # gradients w.r.t. the conic (a, b, c) -> w.r.t. Sigma2 entries (A, B, C)
                gmx, gmy = g[G_GEO], g[G_GEO + 1]
                gca, gcb, gcc = g[G_GEO + 2], g[G_GEO + 3], g[G_GEO + 4]
                s2a += eps2d
                s2c += eps2d
                det = s2a * s2c - s2b * s2b
                id2 = 1.0 / (det * det)
                gA = (-s2c * s2c * gca + s2b * s2c * gcb - s2b * s2b * gcc) * id2
                gB = (2.0 * s2b * s2c * gca - (s2a * s2c + s2b * s2b) * gcb + 2.0 * s2a * s2b * gcc) * id2
                gC = (-s2b * s2b * gca + s2a * s2b * gcb - s2a * s2a * gcc) * id2
                # G_Sc = gA J0 J0^T + gB J0 J1^T + gC J1 J1^T, J0 = (j00, 0, j02), J1 = (0, j11, j12)
                # symmetrised (Sc is symmetric)
                gs00 = gA * j00 * j00
                gs02 = gA * j00 * j02
                gs22 = gA * j02 * j02 + gB * j02 * j12 + gC * j12 * j12
                gs01 = 0.5 * gB * j00 * j11
                gs02 += 0.5 * gB * j00 * j12
                gs12 = 0.5 * gB * j02 * j11 + gC * j11 * j12
                gs11 = gC * j11 * j11
                # gradients w.r.t. J rows: G_J0 = 2 gA Sc J0 + gB Sc J1, G_J1 = gB Sc J0 + 2 gC Sc J1
                scj0_0 = sc00 * j00 + sc02 * j02
                scj0_2 = sc02 * j00 + sc22 * j02
                scj1_1 = sc11 * j11 + sc12 * j12
                scj1_2 = sc12 * j11 + sc22 * j12
                gj00 = 2.0 * gA * scj0_0 + gB * (sc01 * j11 + sc02 * j12)
                gj02 = 2.0 * gA * scj0_2 + gB * scj1_2
                gj11 = gB * (sc01 * j00 + sc12 * j02) + 2.0 * gC * scj1_1
                gj12 = gB * scj0_2 + 2.0 * gC * scj1_2
                iz3 = iz2 * iz
                gp2 += (-fx * iz2 * gj00 + 2.0 * fx * tx * iz3 * gj02 - fy * iz2 * gj11 + 2.0 * fy * ty * iz3 * gj12)
                gtx = -fx * iz2 * gj02
                gty = -fy * iz2 * gj12
                if ux >= -lim_xn and ux <= lim_xp:
                    gp0 += gtx
                else:
                    gp2 += gtx * (lim_xp if ux > lim_xp else -lim_xn)
                if uy >= -lim_yn and uy <= lim_yp:
                    gp1 += gty
                else:
                    gp2 += gty * (lim_yp if uy > lim_yp else -lim_yn)
                # mean2d = (fx px/z + cx, fy py/z + cy)
                gp0 += gmx * fx * iz
                gp1 += gmy * fy * iz
                gp2 += -(gmx * fx * px + gmy * fy * py) * iz2
                # G_Sigma = R_c^T G_Sc R_c, as R_c^T (G_Sc R_c)
                for k in range(3):
                    gk0 = gs00 if k == 0 else (gs01 if k == 1 else gs02)
                    gk1 = gs01 if k == 0 else (gs11 if k == 1 else gs12)
                    gk2 = gs02 if k == 0 else (gs12 if k == 1 else gs22)
                    for j in range(3):
                        a[3 * k + j] = gk0 * w2c[c, 0, j] + gk1 * w2c[c, 1, j] + gk2 * w2c[c, 2, j]
                for i in range(3):
                    for j in range(3):
                        gsig[3 * i + j] = w2c[c, 0, i] * a[j] + w2c[c, 1, i] * a[3 + j] + w2c[c, 2, i] * a[6 + j]
                # Sigma = sum_k s_k^2 r_k r_k^T (r_k = column k of R_q); gsig symmetric
                for k in range(3):
                    rk0, rk1, rk2 = rot[k], rot[3 + k], rot[6 + k]
                    t0 = gsig[0] * rk0 + gsig[1] * rk1 + gsig[2] * rk2
                    t1 = gsig[3] * rk0 + gsig[4] * rk1 + gsig[5] * rk2
                    t2 = gsig[6] * rk0 + gsig[7] * rk1 + gsig[8] * rk2
                    gs[k] += 2.0 * s[k] * (rk0 * t0 + rk1 * t1 + rk2 * t2)
                    f = 2.0 * s[k] * s[k]
                    grot[k] += f * t0
                    grot[3 + k] += f * t1
                    grot[6 + k] += f * t2
            else:
                for k in range(9):
                    gmm[k] = g[G_GEO + k]
                g0, g1, g2 = g[G_GEO + 9], g[G_GEO + 10], g[G_GEO + 11]
                inv = (1.0 / s[0], 1.0 / s[1], 1.0 / s[2])
                m = gaussian_frame(w00, w01, w02, w10, w11, w12, w20, w21, w22, rot, s[0], s[1], s[2])
                # go = -M p
                for k in range(3):
                    gk = g0 if k == 0 else (g1 if k == 1 else g2)
                    gmm[3 * k] -= gk * px
                    gmm[3 * k + 1] -= gk * py
                    gmm[3 * k + 2] -= gk * pz
                gp0 -= m[0] * g0 + m[3] * g1 + m[6] * g2
                gp1 -= m[1] * g0 + m[4] * g1 + m[7] * g2
                gp2 -= m[2] * g0 + m[5] * g1 + m[8] * g2
                # M = Mw R_c, Mw[k, :] = r_k^T / s_k: G_Mw = G_M R_c^T
                for k in range(3):
                    gw0 = gmm[3 * k] * w2c[c, 0, 0] + gmm[3 * k + 1] * w2c[c, 0, 1] + gmm[3 * k + 2] * w2c[c, 0, 2]
                    gw1 = gmm[3 * k] * w2c[c, 1, 0] + gmm[3 * k + 1] * w2c[c, 1, 1] + gmm[3 * k + 2] * w2c[c, 1, 2]
                    gw2 = gmm[3 * k] * w2c[c, 2, 0] + gmm[3 * k + 1] * w2c[c, 2, 1] + gmm[3 * k + 2] * w2c[c, 2, 2]
                    grot[k] += gw0 * inv[k]
                    grot[3 + k] += gw1 * inv[k]
                    grot[6 + k] += gw2 * inv[k]
                    gs[k] -= (gw0 * rot[k] + gw1 * rot[3 + k] + gw2 * rot[6 + k]) * inv[k] * inv[k]
            # p = R_c mu + t
            for i in range(3):
                gm[i] += w2c[c, 0, i] * gp0 + w2c[c, 1, i] * gp1 + w2c[c, 2, i] * gp2
        gq = rot_vjp(qn, nrm, (grot[0], grot[1], grot[2], grot[3], grot[4], grot[5], grot[6], grot[7], grot[8]))
        for i in range(3):
            g_means[n, i] = gm[i]
            g_scales[n, i] = gs[i]
        for i in range(4):
            g_quats[n, i] = gq[i]
        g_opac[n] = go_


@njit(parallel=True, cache=True)
def project_backward(means, quats, scales, w2c, Ks, width: int, height: int, eps2d: float, eval3d: bool,
                     n_work: int, rect, gbuf, g_means, g_quats, g_scales, g_opac, g_colors) -> None:
    """Reduce per-worker image-space gradients gbuf [W,C,N,NG] and chain them to 3D parameters.

    Writes g_means [N,3], g_quats [N,4], g_scales [N,3], g_opac [N] (summed over cameras) and
    g_colors [C,N,3].
    """
    n_gauss = means.shape[0]
    for w in prange(n_work):
        _backward_range(means, quats, scales, w2c, Ks, w * n_gauss // n_work, (w + 1) * n_gauss // n_work,
                        width, height, eps2d, eval3d, rect, gbuf, g_means, g_quats, g_scales, g_opac, g_colors)


@njit(cache=True)
def project_forward_serial(means, quats, scales, opacities, w2c, Ks, width: int, height: int, tile: int,
                           near: float, far: float, eps2d: float, eval3d: bool, rec, rect, pbox) -> None:
    """project_forward on the calling thread (small scenes: no parallel-region launch)."""
    _project_range(means, quats, scales, opacities, w2c, Ks, 0, means.shape[0], width, height, tile,
                   near, far, eps2d, eval3d, rec, rect, pbox)


@njit(cache=True)
def project_backward_serial(means, quats, scales, w2c, Ks, width: int, height: int, eps2d: float, eval3d: bool,
                            rect, gbuf, g_means, g_quats, g_scales, g_opac, g_colors) -> None:
    """project_backward on the calling thread (small scenes)."""
    _backward_range(means, quats, scales, w2c, Ks, 0, means.shape[0], width, height, eps2d, eval3d,
                    rect, gbuf, g_means, g_quats, g_scales, g_opac, g_colors)
