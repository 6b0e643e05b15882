"""lyra: Lyra-style generative 3D/4D scene reconstruction that runs anywhere (CPU included)."""

import os as _os

# numba's default OpenMP threading layer fights torch's OpenMP pool (3-10x slower on 2-core machines);
# choose the workqueue layer before any numba parallel region runs (gsply also uses numba). A user's
# explicit NUMBA_THREADING_LAYER wins.
_os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")

__version__ = "0.1.0"
