"""Median depth of Gaussian splats: the camera z at which a pixel's transmittance first drops to 1/2.

The rasterizer's expected depth (sum of w_i z_i / alpha) is pulled towards the camera wherever splats overlap in
depth: the tails of large splats in front of a surface (e.g. ones fitted from a far view, or any splat on a
surface seen at a grazing angle) blend in first. The median depth (as in 2DGS / RaDe-GS mesh extraction) is the
depth of the splat that makes the pixel half opaque, which the thin tails in front do not reach. Same EWA
projection as the renderer (``lyra.render.projection.project``, eps2d included); alpha = min(0.99, o exp(-q/2)),
contributions below 1/255 skipped, front-to-back by camera z of the centres (global sort per camera, no tiles).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99


@numba.njit(cache=True, nogil=True)
def _splat_median(order, mx, my, conic, rx, ry, op, z, W, H):  # pragma: no cover - numba
    T = np.ones((H, W), np.float64)
    med = np.zeros((H, W), np.float32)
    for k in range(order.shape[0]):
        i = order[k]
        x0 = max(0, int(np.floor(mx[i] - rx[i])))
        x1 = min(W - 1, int(np.ceil(mx[i] + rx[i])))
        y0 = max(0, int(np.floor(my[i] - ry[i])))
        y1 = min(H - 1, int(np.ceil(my[i] + ry[i])))
        a, b, c = conic[i, 0], conic[i, 1], conic[i, 2]
        for y in range(y0, y1 + 1):
            dy = y + 0.5 - my[i]
            for x in range(x0, x1 + 1):
                t = T[y, x]
                if t < 1e-4:
                    continue
                dx = x + 0.5 - mx[i]
                q = a * dx * dx + 2.0 * b * dx * dy + c * dy * dy
                if q < 0.0:
                    continue
                al = min(ALPHA_MAX, op[i] * np.exp(-0.5 * q))
                if al < ALPHA_MIN:
                    continue
                tn = t * (1.0 - al)
                if t > 0.5 >= tn:
                    med[y, x] = z[i]
                T[y, x] = tn
    return med, (1.0 - T).astype(np.float32)


def render_median_depth(gaussians: Any, cameras: Any, near: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """(median depth [N, H, W] (0 where alpha never reaches 1/2), alpha [N, H, W]) float32 of ``gaussians``."""
    import torch

    from lyra.render.options import RenderOptions
    from lyra.render.projection import project

    g = gaussians.detach().to("cpu", torch.float32)
    cams = cameras.to("cpu", torch.float32)
    H, W = cams.height, cams.width
    eps2d = RenderOptions().eps2d
    depths, alphas = [], []
    with torch.no_grad():
        for c in range(len(cams)):
            pr = project(g.means, g.quats, g.scales, g.opacities, cams.w2c[c:c + 1], cams.K[c:c + 1], W, H,
                         near, 1e10, eps2d)
            vis = pr.visible[0].numpy()
            idx = np.nonzero(vis)[0]
            z = pr.p_cam[0, :, 2].numpy().astype(np.float64)
            order = idx[np.argsort(z[idx], kind="stable")].astype(np.int64)
            m2 = pr.mean2d[0].numpy().astype(np.float64)
            rad = pr.radii[0].numpy().astype(np.float64)
            med, alpha = _splat_median(order, m2[:, 0].copy(), m2[:, 1].copy(),
                                       pr.conic[0].numpy().astype(np.float64), rad[:, 0].copy(), rad[:, 1].copy(),
                                       g.opacities.numpy().astype(np.float64), z, W, H)
            depths.append(med)
            alphas.append(alpha)
    return np.stack(depths), np.stack(alphas)
