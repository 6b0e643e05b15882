"""The rasterizer entry point ``rasterize(gaussians, cameras)`` and its backend registry.

Kernel-level backend interface (the torch reference, the numba ``cpu`` backend and gsplat all
implement exactly this; semantics in docs/rasterizer.md)::

    fn(means,       # [N, 3]    world-space centres
       quats,       # [N, 4]    (w, x, y, z), not necessarily normalised (the backend normalises)
       scales,      # [N, 3]    standard deviations (> 0)
       opacities,   # [N]       in [0, 1]
       colors,      # [C, N, 3] per-camera RGB (SH already evaluated)
       w2c,         # [C, 4, 4] world-to-camera (OpenCV axes)
       K,           # [C, 3, 3] pixel intrinsics
       width: int, height: int,
       background,  # [C, 3]
       opts: RenderOptions,
    ) -> (rgb [C, H, W, 3], depth [C, H, W, 1], alpha [C, H, W, 1])

Outputs are floating tensors (float32, or float64 where a backend supports it and is given
float64) on the input device, differentiable w.r.t. means, quats, scales, opacities and colors;
depth is the expected depth D / max(alpha, 1e-10). Backends register with
``register_backend(name, fn, available)``; the ``cpu`` backend registers itself when
``lyra.render.cpu`` is imported, which this module does lazily. The ``cpu`` backend is always
handed CPU tensors (the API moves them there and the results back).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lyra.cameras.camera import Cameras
from lyra.gaussians.gaussians import Gaussians
from lyra.render.gsplat_backend import gsplat_available, rasterize_gsplat
from lyra.render.options import Backend, Mode, RenderOptions
from lyra.render.reference import rasterize_reference
from lyra.render.sh import sh_to_colors

BackendFn = Callable[..., tuple[Tensor, Tensor, Tensor]]


class RenderError(ValueError):
    """Raised for invalid rasterize() inputs or an unusable backend."""


@dataclass(frozen=True)
class _Registered:
    fn: BackendFn
    available: Callable[[], bool]


_REGISTRY: dict[str, _Registered] = {}
_CPU_IMPORT_ERROR: list[str] = []  # why lyra.render.cpu could not be imported, if it could not


def register_backend(name: str, fn: BackendFn, available: Callable[[], bool]) -> None:
    """Register (or replace) a kernel-level backend ``fn`` under ``name``; ``available()`` says if it can run."""
    _REGISTRY[name] = _Registered(fn, available)


register_backend("torch", rasterize_reference, lambda: True)
register_backend("gsplat", rasterize_gsplat, gsplat_available)


def _load_cpu() -> None:
    """Import lyra.render.cpu once (it registers the ``cpu`` backend); remember why if it fails."""
    if "cpu" in _REGISTRY or _CPU_IMPORT_ERROR:
        return
    try:
        importlib.import_module("lyra.render.cpu")
    except ImportError as e:
        _CPU_IMPORT_ERROR.append(str(e))


def available_backends() -> dict[str, bool]:
    """Which backends can run on this machine, e.g. ``{"cpu": True, "torch": True, "gsplat": False}``."""
    _load_cpu()
    out = {"cpu": False}
    for name, reg in _REGISTRY.items():
        try:
            out[name] = bool(reg.available())
        except Exception:  # an availability probe must never break `lyra info`
            out[name] = False
    return out


def _cpu_usable() -> bool:
    _load_cpu()
    reg = _REGISTRY.get("cpu")
    return reg is not None and bool(reg.available())


def select_backend(name: str, device: torch.device) -> str:
    """Resolve ``name`` ("auto" included) to a registered, usable backend for tensors on ``device``."""
    if name == "auto":
        if device.type == "cuda" and gsplat_available():
            return "gsplat"
        if _cpu_usable():
            return "cpu"
        why = _CPU_IMPORT_ERROR[0] if _CPU_IMPORT_ERROR else "its availability check failed"
        warnings.warn(
            f"rasterize: the fast 'cpu' backend is unavailable ({why}); using the slow torch reference",
            RuntimeWarning,
            stacklevel=3,
        )
        return "torch"
    if name == "cpu":
        _load_cpu()
        if "cpu" not in _REGISTRY:
            why = _CPU_IMPORT_ERROR[0] if _CPU_IMPORT_ERROR else "lyra.render.cpu did not register it"
            raise RenderError(f"backend 'cpu' is unavailable: {why}; use backend='torch' or 'auto'")
        if not _cpu_usable():
            raise RenderError("backend 'cpu' is installed but reports unavailable (numba missing?)")
        return "cpu"
    if name not in _REGISTRY:
        raise RenderError(f"unknown backend {name!r}; registered: {sorted(_REGISTRY)} (and 'auto', 'cpu')")
    return name  # gsplat reports its own missing-package / non-CUDA errors with instructions


@dataclass
class RenderOutput:
    """Rendered images, channels first.

    Attributes:
        rgb: [C, 3, H, W] colour composited over the background.
        depth: [C, 1, H, W] expected camera-space z (scene units); 0 where nothing was drawn.
        alpha: [C, 1, H, W] accumulated opacity 1 - T.
    """

    rgb: Tensor
    depth: Tensor
    alpha: Tensor


def _background(background: Tensor | Sequence[float] | float | None, C: int, like: Tensor) -> Tensor:
    """Broadcast a background [3] / [C, 3] / scalar / None (black) to [C, 3] in like's dtype and device."""
    if background is None:
        return torch.zeros(C, 3, dtype=like.dtype, device=like.device)
    if isinstance(background, Tensor):
        if background.device != like.device:
            raise RenderError(f"rasterize: background is on {background.device} but the Gaussians are on {like.device}")
        bg = background.to(like.dtype)
    else:
        bg = torch.as_tensor(background, dtype=like.dtype, device=like.device)
    if bg.ndim == 0:
        bg = bg.expand(3)
    if bg.shape == (3,):
        return bg.expand(C, 3)
    if bg.shape == (C, 3):
        return bg
    raise RenderError(f"rasterize: background must be [3] or [C, 3] with C={C}, got {list(bg.shape)}")


def _resolve_options(
    options: RenderOptions | None, near: float, far: float, mode: Mode, backend: Backend
) -> RenderOptions:
    if options is None:
        return RenderOptions(near=near, far=far, mode=mode, backend=backend)
    loose = {"near": (near, 0.01), "far": (far, 1e10), "mode": (mode, "classic"), "backend": (backend, "auto")}
    clash = [k for k, (v, default) in loose.items() if v != default]
    if clash:
        raise RenderError(f"rasterize: give either options=RenderOptions(...) or {clash}, not both")
    return options


def rasterize(
    gaussians: Gaussians,
    cameras: Cameras,
    background: Tensor | Sequence[float] | float | None = None,
    near: float = 0.01,
    far: float = 1e10,
    *,
    mode: Mode = "classic",
    backend: Backend = "auto",
    options: RenderOptions | None = None,
) -> RenderOutput:
    """Render ``gaussians`` from every camera; differentiable w.r.t. every Gaussian parameter.

    Args:
        gaussians: N Gaussians (colours or SH up to degree 3; SH is evaluated per camera here).
        cameras: C cameras of one image size H x W, on the Gaussians' device.
        background: RGB [3] or [C, 3] (default black).
        near, far: clipping planes on camera-space z.
        mode: "classic" EWA splatting or "eval3d" (3D evaluation along pixel rays, as gsplat 3DGUT).
        backend: "auto" (gsplat on CUDA when installed, else cpu, else the torch reference with a
            warning), "cpu", "torch" or "gsplat".
        options: all knobs at once (eps2d, tile_size too); exclusive with near/far/mode/backend.
    Returns:
        RenderOutput with rgb [C, 3, H, W], depth [C, 1, H, W], alpha [C, 1, H, W].
    """
    if not isinstance(gaussians, Gaussians):
        raise RenderError(f"rasterize: gaussians must be a lyra Gaussians, got {type(gaussians).__name__}")
    if not isinstance(cameras, Cameras):
        raise RenderError(f"rasterize: cameras must be a lyra Cameras, got {type(cameras).__name__}")
    opts = _resolve_options(options, near, far, mode, backend)
    gaussians.validate(check_values=False)
    means = gaussians.means
    if cameras.device != means.device:
        raise RenderError(f"rasterize: cameras are on {cameras.device} but the Gaussians are on {means.device}")
    C, N = len(cameras), len(gaussians)
    w2c, K = cameras.w2c.to(means.dtype), cameras.K.to(means.dtype)
    bg = _background(background, C, means)
    if gaussians.sh is not None:
        colors = sh_to_colors(gaussians.sh, means, cameras.centers.to(means.dtype))
    else:
        colors = gaussians.colors[None].expand(C, N, 3)
    name = select_backend(opts.backend, means.device)
    args = [means, gaussians.quats, gaussians.scales, gaussians.opacities, colors.contiguous(), w2c, K]
    device = means.device
    if name == "cpu" and device.type != "cpu":
        args = [a.cpu() for a in args]
        bg = bg.cpu()
    rgb, depth, alpha = _REGISTRY[name].fn(*args, cameras.width, cameras.height, bg.contiguous(), opts)
    _check_outputs(name, rgb, depth, alpha, C, cameras.height, cameras.width)
    return RenderOutput(*(x.to(device).permute(0, 3, 1, 2).contiguous() for x in (rgb, depth, alpha)))


def _check_outputs(name: str, rgb: Tensor, depth: Tensor, alpha: Tensor, C: int, H: int, W: int) -> None:
    for label, x, ch in (("rgb", rgb, 3), ("depth", depth, 1), ("alpha", alpha, 1)):
        if tuple(x.shape) != (C, H, W, ch):
            raise RenderError(f"backend {name!r} returned {label} of shape {list(x.shape)}, expected {[C, H, W, ch]}")
