"""Real spherical harmonics (degree 0..3) evaluated to per-camera RGB, 3DGS/gsplat conventions.

colour = sum_k sh[k] * Y_k(dir) + 0.5, clamped at 0 from below, with dir = normalize(mean - camera centre).
"""

from __future__ import annotations

import torch
from torch import Tensor

SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (
    -0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
    -0.4570457994644658, 1.445305721320277, -0.5900435899266435,
)


def sh_basis(dirs: Tensor, degree: int) -> Tensor:
    """Real SH basis values [..., (degree+1)^2] at unit directions dirs [..., 3] (band 0 first)."""
    if not 0 <= degree <= 3:
        raise ValueError(f"SH degree must be 0..3, got {degree}")
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        out += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [
            SH_C2[0] * x * y,
            SH_C2[1] * y * z,
            SH_C2[2] * (2 * zz - xx - yy),
            SH_C2[3] * x * z,
            SH_C2[4] * (xx - yy),
        ]
    if degree >= 3:
        out += [
            SH_C3[0] * y * (3 * xx - yy),
            SH_C3[1] * x * y * z,
            SH_C3[2] * y * (4 * zz - xx - yy),
            SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            SH_C3[4] * x * (4 * zz - xx - yy),
            SH_C3[5] * z * (xx - yy),
            SH_C3[6] * x * (xx - 3 * yy),
        ]
    return torch.stack(out, dim=-1)


def eval_sh(sh: Tensor, dirs: Tensor) -> Tensor:
    """RGB from SH coefficients sh [..., K, 3] at directions dirs [..., 3] (normalised here).

    Returns [..., 3] = clamp_min(sum_k sh_k Y_k + 0.5, 0). Differentiable w.r.t. sh and dirs.
    """
    k = sh.shape[-2]
    degree = int(round(k**0.5)) - 1
    if (degree + 1) ** 2 != k:
        raise ValueError(f"{k} SH coefficients per channel is not (degree+1)^2")
    basis = sh_basis(torch.nn.functional.normalize(dirs, dim=-1), degree)  # [..., K]
    return ((basis[..., None] * sh).sum(-2) + 0.5).clamp(min=0.0)


def sh_to_colors(sh: Tensor, means: Tensor, centers: Tensor) -> Tensor:
    """Per-camera colours [C, N, 3] of SH sh [N, K, 3] at means [N, 3] seen from camera centres [C, 3]."""
    dirs = means[None, :, :] - centers[:, None, :]  # [C, N, 3]
    return eval_sh(sh[None], dirs)
