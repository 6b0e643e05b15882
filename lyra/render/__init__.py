"""Differentiable Gaussian rasterization: ``rasterize(gaussians, cameras) -> RenderOutput`` (docs/rasterizer.md)."""

from lyra.render.api import (
    RenderError,
    RenderOutput,
    available_backends,
    rasterize,
    register_backend,
    select_backend,
)
from lyra.render.options import RenderOptions
from lyra.render.sh import eval_sh, sh_to_colors

__all__ = [
    "RenderError",
    "RenderOptions",
    "RenderOutput",
    "available_backends",
    "eval_sh",
    "rasterize",
    "register_backend",
    "select_backend",
    "sh_to_colors",
]
