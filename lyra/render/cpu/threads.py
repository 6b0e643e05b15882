"""Numba threading set-up for the cpu rasterizer: which thread pool runs the kernels, and when.

Two pools fighting for the same cores cost a lot on small machines. torch's OpenMP threads spin
for several milliseconds after every parallel torch op; a numba pool of its own then shares the
cores with spinning threads, and a kernel launched right after a loss computation ran 2x slower
(measured on 2 cores). numba's OpenMP layer linked to the system's libgomp is a second OpenMP
runtime and fights torch's the same way (3-10x slower).

So, where it can, the backend makes numba's ``omp`` layer run on **torch's own** GNU OpenMP runtime:
torch's libgomp is promoted to the global symbol scope before numba loads its OpenMP pool, whose
``GOMP_*`` calls then bind to it, and numba's parallel regions reuse torch's (already spinning)
threads. Where that is not possible (no GNU OpenMP in torch, another OS, numba's pool already
started) it uses numba's ``workqueue`` layer. An explicit ``NUMBA_THREADING_LAYER`` set by the user
always wins; ``lyra/__init__.py`` sets ``workqueue`` as the default for numba code that runs before
this module is imported.

GNU OpenMP is not fork-safe (numba terminates a forked child that starts a parallel region), so in
a process forked after this module was imported, :func:`parallel_allowed` is False and the kernels
run on the calling thread. The workqueue layer is not thread-safe (numba aborts the process when two
Python threads launch at once), so there :func:`kernel_section` serialises the launches.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import sys
import threading
import warnings
from collections.abc import Iterator

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.ufunc import parallel as _parallel

WORKQUEUE, OMP = "workqueue", "omp"
AUTO_MARK = "LYRA_NUMBA_LAYER_AUTO"  # set by lyra/__init__.py next to the default it chose

_state: dict = {"shared_openmp": False, "pid": os.getpid()}
_launch_lock = threading.Lock()


def _user_choice() -> str | None:
    """The user's explicit NUMBA_THREADING_LAYER, or None when it is unset or lyra's default."""
    layer = os.environ.get("NUMBA_THREADING_LAYER")
    if not layer or os.environ.get(AUTO_MARK) == layer:
        return None
    return layer


def torch_libgomp() -> str | None:
    """Path of the GNU OpenMP runtime loaded by torch (Linux wheels ship one), or None."""
    if not sys.platform.startswith("linux"):
        return None
    import torch

    root = os.path.dirname(torch.__file__)
    candidates = glob.glob(os.path.join(root, "lib", "libgomp*.so*"))
    candidates += glob.glob(os.path.join(os.path.dirname(root), "torch.libs", "libgomp*.so*"))
    try:
        with open("/proc/self/maps") as f:
            loaded = {line.split()[-1] for line in f if "libgomp" in line}
    except OSError:
        return None
    for path in candidates:
        if os.path.realpath(path) in {os.path.realpath(p) for p in loaded}:
            return path
    return None


def _share_torch_openmp() -> bool:
    """Bind numba's OpenMP pool to torch's libgomp; False (and nothing loaded) where it cannot."""
    lib = torch_libgomp()
    if lib is None:
        return False
    try:
        handle = ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL | os.RTLD_NOLOAD)
        # what a library loaded from now on binds GOMP_parallel to: torch's copy, if the promotion worked
        if ctypes.cast(ctypes.CDLL(None).GOMP_parallel, ctypes.c_void_p).value != \
                ctypes.cast(handle.GOMP_parallel, ctypes.c_void_p).value:
            return False
        from numba.np.ufunc import omppool  # binds its GOMP_* symbols now, to torch's runtime
    except (OSError, AttributeError, ImportError):
        return False
    return getattr(omppool, "openmp_vendor", None) == "GNU"


def configure_threading() -> None:
    """Choose numba's threading layer for the kernels (see the module docstring); idempotent."""
    if _user_choice() is not None:
        return
    if getattr(_parallel, "_is_initialized", False):  # a pool already runs: too late to choose
        if numba.threading_layer() not in (WORKQUEUE, OMP) or (numba.threading_layer() == OMP
                                                                and not _state["shared_openmp"]):
            warnings.warn(
                f"lyra.render.cpu: numba's threading layer is already {numba.threading_layer()!r} with its own "
                "thread pool; the cpu rasterizer may be slow next to torch (import lyra before running numba code)",
                RuntimeWarning, stacklevel=2,
            )
        return
    _state["shared_openmp"] = _share_torch_openmp()
    numba.config.THREADING_LAYER = OMP if _state["shared_openmp"] else WORKQUEUE
    _start_pool()


@contextlib.contextmanager
def _keeping_torch_threads() -> Iterator[int]:
    """Yield torch's thread count and restore it afterwards: numba's pool start and OpenMP launches set the
    shared runtime's count to numba's own, which would change ``torch.get_num_threads()`` behind the user's back."""
    import torch

    n = torch.get_num_threads()
    try:
        yield n
    finally:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


def _start_pool() -> None:
    """Start numba's pool now (the start resets the runtime's thread count), keeping torch's thread count."""
    with _keeping_torch_threads():
        _parallel._launch_threads()


def shares_torch_openmp() -> bool:
    """Whether numba's parallel regions run on torch's OpenMP thread pool."""
    return bool(_state["shared_openmp"])


def describe() -> str:
    """One line: which pool runs the kernels (for ``lyra info`` and bug reports)."""
    layer = numba.config.THREADING_LAYER
    pool = "torch's OpenMP runtime" if shares_torch_openmp() else "numba's own pool"
    return f"{numba.get_num_threads()} (numba layer {layer!r}, {pool})"


def parallel_allowed() -> bool:
    """Whether the kernels may start numba parallel regions in this process (False in a forked child
    of a process that uses GNU OpenMP: the runtime is not fork-safe)."""
    return not _state["shared_openmp"] or os.getpid() == _state["pid"]


def follow_torch_threads() -> None:
    """Make the kernels use torch's thread count (``torch.set_num_threads`` governs both pools).

    numba's OpenMP launches set the runtime's thread count to numba's own; on torch's shared runtime
    that silently changed ``torch.get_num_threads()`` after the first render (1 -> 2 on 2 cores), so a
    process that had rendered ran its torch ops with other reduction orders than a fresh one: a resumed
    training run drifted from an uninterrupted one in the last bits.
    """
    if not parallel_allowed():
        return
    with _keeping_torch_threads() as n:
        want = max(1, min(n, numba.config.NUMBA_NUM_THREADS))
        if numba.get_num_threads() != want:
            numba.set_num_threads(want)  # the first call starts numba's pool, which resets the runtime's count


@contextlib.contextmanager
def kernel_section() -> Iterator[None]:
    """Context for a sequence of parallel kernel launches: a process-wide lock where the threading layer is
    not thread-safe (numba aborts the process when two Python threads launch on the workqueue layer at once),
    none where it is (OpenMP); torch's thread count is the same after it as before."""
    shared = numba.config.THREADING_LAYER == OMP or (getattr(_parallel, "_is_initialized", False)
                                                     and numba.threading_layer() == OMP)
    with contextlib.nullcontext() if shared else _launch_lock, _keeping_torch_threads():
        yield


def num_workers() -> int:
    """Number of independent work items (and per-worker gradient buffers) the kernels use."""
    return max(1, int(numba.get_num_threads())) if parallel_allowed() else 1


@intrinsic
def fetch_add(typingctx, counter, value):
    """``old = counter[0]; counter[0] += value; return old`` as one atomic operation (int64 array)."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64 and isinstance(value, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        arr, val = args
        ary = context.make_array(sig.args[0])(context, builder, arr)
        ptr = cgutils.get_item_pointer(context, builder, sig.args[0], ary, [ir.Constant(ir.IntType(64), 0)])
        val = context.cast(builder, val, sig.args[1], types.int64)
        return builder.atomic_rmw("add", ptr, val, "monotonic")

    return types.int64(counter, value), codegen


configure_threading()
