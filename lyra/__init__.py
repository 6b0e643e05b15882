"""lyra: Lyra-style generative 3D/4D scene reconstruction that runs anywhere (CPU included)."""

import os as _os

# numba's default OpenMP threading layer (the system's libgomp) fights torch's OpenMP pool (3-10x
# slower on 2-core machines). Default to the workqueue layer before any numba parallel region runs
# (gsply also uses numba); the cpu rasterizer may then switch to numba's OpenMP layer on torch's own
# runtime (lyra/render/cpu/threads.py). A user's explicit NUMBA_THREADING_LAYER wins.
if not _os.environ.get("NUMBA_THREADING_LAYER"):
    _os.environ["NUMBA_THREADING_LAYER"] = _os.environ["LYRA_NUMBA_LAYER_AUTO"] = "workqueue"

__version__ = "0.1.0"
