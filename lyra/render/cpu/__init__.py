"""The ``cpu`` rasterizer backend: tile-based, differentiable, hand-written numba kernels.

``rasterize_cpu(means, quats, scales, opacities, colors, w2c, K, width, height, background, opts)``
returns rgb [C,H,W,3], depth [C,H,W,1], alpha [C,H,W,1] with the semantics of docs/rasterizer.md
and an analytic backward. Importing this package picks the thread pool the kernels run on
(see ``threads.py``) and registers the backend as ``"cpu"``.
"""

from __future__ import annotations

from lyra.render.cpu import threads  # noqa: F401  (must run before the first numba parallel call)
from lyra.render.cpu.autograd import RasterizeCPU, rasterize_cpu

__all__ = ["RasterizeCPU", "rasterize_cpu"]

try:
    from lyra.render.api import register_backend
except ImportError:  # the registry is optional for using the kernels directly
    register_backend = None

if register_backend is not None:
    register_backend("cpu", rasterize_cpu, available=lambda: True)
