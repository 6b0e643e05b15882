"""Real spherical harmonics (degree 0..3) evaluated to per-camera RGB, 3DGS/gsplat conventions.

colour = sum_k sh[k] * Y_k(dir) + 0.5, clamped at 0 from below, with dir = normalize(mean - camera centre).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lyra.gaussians.ops import SH_C1, sh_basis

__all__ = ["SH_C1", "eval_sh", "sh_basis", "sh_to_colors"]


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
