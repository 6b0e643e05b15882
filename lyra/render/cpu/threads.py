"""Numba threading set-up for the cpu rasterizer (workqueue layer, worker count).

numba's OpenMP layer and torch's OpenMP pool fight for the same cores (measured 3-10x slower on
2-core machines), so the kernels run on numba's built-in ``workqueue`` layer. It must be chosen
before numba launches its first parallel region; importing this module does that unless the
user already picked a layer (``NUMBA_THREADING_LAYER``). The workqueue layer is not re-entrant:
do not call the rasterizer from several Python threads at once.
"""

from __future__ import annotations

import os
import warnings

import numba
from numba.np.ufunc import parallel as _parallel

LAYER = "workqueue"


def configure_threading() -> None:
    """Select numba's ``workqueue`` threading layer if no parallel region has run yet."""
    if os.environ.get("NUMBA_THREADING_LAYER"):
        return  # an explicit user choice wins
    if getattr(_parallel, "_is_initialized", False):
        if numba.threading_layer() != LAYER:
            warnings.warn(
                f"lyra.render.cpu: numba's threading layer is already {numba.threading_layer()!r}; "
                "the cpu rasterizer may be slow next to torch (set NUMBA_THREADING_LAYER=workqueue)",
                RuntimeWarning, stacklevel=2,
            )
        return
    numba.config.THREADING_LAYER = LAYER


def num_workers() -> int:
    """Number of independent work items (and per-worker gradient buffers) the kernels use."""
    return max(1, int(numba.get_num_threads()))


configure_threading()
