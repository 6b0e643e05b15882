"""Rendering options shared by every rasterizer backend (see docs/rasterizer.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["classic", "eval3d"]
Backend = Literal["auto", "cpu", "torch", "gsplat"]

ALPHA_THRESHOLD = 1.0 / 255.0  # a Gaussian contributes to a pixel only if its alpha reaches this
ALPHA_MAX = 0.999  # per-Gaussian alpha clamp
T_MIN = 1e-4  # a pixel whose transmittance would fall to this is done
EXTEND_MAX = 3.33  # binning radius in standard deviations (before the opacity-aware cap)


@dataclass(frozen=True)
class RenderOptions:
    """Knobs of one rasterization call.

    Attributes:
        near, far: clipping planes on camera-space z (scene units).
        mode: "classic" EWA splatting or "eval3d" (each Gaussian evaluated in 3D along the pixel ray,
            gsplat's 3DGUT ``with_eval3d``; the official Lyra model was trained with it).
        eps2d: added to the diagonal of projected 2D covariances (pixels^2).
        tile_size: tile edge in pixels for binning.
        backend: "auto" (gsplat on CUDA when installed, else cpu), "cpu", "torch" (slow reference), "gsplat".
        deterministic: the cpu backend's backward gives every tile to a fixed thread, so gradients are
            bit-identical in every run with the same ``torch.get_num_threads()`` (a resumed training run
            matches an uninterrupted one). False: tiles are claimed dynamically, which can balance uneven
            tiles better but makes the last bits of gradients depend on timing. The torch reference is
            always deterministic; gsplat (CUDA atomics) never is.
    """

    near: float = 0.01
    far: float = 1e10
    mode: Mode = "classic"
    eps2d: float = 0.3
    tile_size: int = 16
    backend: Backend = "auto"
    deterministic: bool = True

    def __post_init__(self) -> None:
        if not (0 < self.near < self.far):
            raise ValueError(f"RenderOptions: need 0 < near < far, got near={self.near}, far={self.far}")
        if self.mode not in ("classic", "eval3d"):
            raise ValueError(f"RenderOptions: mode must be 'classic' or 'eval3d', got {self.mode!r}")
        if self.backend not in ("auto", "cpu", "torch", "gsplat"):
            raise ValueError(f"RenderOptions: unknown backend {self.backend!r} (auto, cpu, torch, gsplat)")
        if self.tile_size <= 0 or self.eps2d < 0:
            raise ValueError("RenderOptions: tile_size must be > 0 and eps2d >= 0")
