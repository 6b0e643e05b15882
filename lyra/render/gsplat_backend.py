"""The CUDA backend: the kernel-level interface of lyra.render.api on top of gsplat >= 1.5.

gsplat is imported lazily; asking for this backend without gsplat or without CUDA tensors fails
with an instruction instead of a deep ImportError.
"""

from __future__ import annotations

import importlib.util

import torch
from torch import Tensor

from lyra.render.options import RenderOptions

INSTALL_HINT = "install the GPU extra (`pip install 'lyra3d[gpu]'`, i.e. gsplat>=1.5 and packaging) on a CUDA machine"


class GsplatUnavailableError(RuntimeError):
    """Raised when the gsplat backend is asked for but cannot run here."""


def gsplat_available() -> bool:
    """True when gsplat is installed and CUDA is usable (gsplat itself is not imported)."""
    return importlib.util.find_spec("gsplat") is not None and torch.cuda.is_available()


def _import_rasterization():
    try:
        from gsplat.rendering import rasterization
    except ImportError as e:  # gsplat or one of its own dependencies is missing
        raise GsplatUnavailableError(f"backend 'gsplat' needs the gsplat package ({e}); {INSTALL_HINT}") from e
    return rasterization


def rasterize_gsplat(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    colors: Tensor,  # [C, N, 3]
    w2c: Tensor,  # [C, 4, 4]
    K: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    background: Tensor,  # [C, 3]
    opts: RenderOptions,
) -> tuple[Tensor, Tensor, Tensor]:
    """gsplat ``rasterization(render_mode="RGB+ED")``; returns rgb [C,H,W,3], depth [C,H,W,1], alpha [C,H,W,1]."""
    if not means.is_cuda:
        raise GsplatUnavailableError(
            f"backend 'gsplat' needs CUDA tensors, got tensors on {means.device}; "
            "move the Gaussians and cameras to a CUDA device, or use backend='cpu'"
        )
    rasterization = _import_rasterization()
    eval3d = opts.mode == "eval3d"
    f32 = torch.float32
    render, alpha, _ = rasterization(
        means.to(f32),
        quats.to(f32),
        scales.to(f32),
        opacities.to(f32),
        colors.to(f32),
        w2c.to(f32),
        K.to(f32),
        width,
        height,
        near_plane=opts.near,
        far_plane=opts.far,
        eps2d=opts.eps2d,
        packed=False,
        tile_size=opts.tile_size,
        backgrounds=background.to(f32),
        render_mode="RGB+ED",
        rasterize_mode="classic",
        with_ut=eval3d,
        with_eval3d=eval3d,
    )
    return render[..., :3], render[..., 3:4], alpha
