"""Recycled numpy buffers for the cpu rasterizer: no fresh pages on every call.

A forward+backward allocates tens of MB (float64 copies of the inputs, projected records, per-thread
gradient buffers, outputs). glibc returns such blocks to the system on free and every new one is
page-faulted in again: measured at 64k Gaussians @ 128^2 on a 2-core VM, that was ~20 ms of a
~65 ms forward+backward. Here each call site (a ``key``) keeps up to ``MAX_PER_KEY`` byte buffers
per thread and hands out typed views of them. A buffer is free again when nothing references it any
more: every view of it (numpy collapses ``.base`` to the owner), a torch tensor made with
``torch.from_numpy``, an autograd context. That is decided by CPython reference counts, so a buffer
is never handed out twice while in use.
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np

MAX_PER_KEY = 4  # buffers kept per call site and thread; beyond that plain allocations
MAX_BYTES = 1 << 30  # bytes kept per thread: a one-off huge render does not pin its memory for good
_FREE_REFS = 3  # sys.getrefcount of a buffer held only by its list (+ loop variable + argument)

_local = threading.local()


def _pool() -> dict[str, list[np.ndarray]]:
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    return pool


def empty(key: str, shape: tuple[int, ...], dtype: np.dtype | type = np.float64) -> np.ndarray:
    """An uninitialised C-contiguous array, backed by a recycled buffer of call site ``key`` if one is free."""
    dtype = np.dtype(dtype)
    count = math.prod(shape)
    nbytes = max(count, 1) * dtype.itemsize
    bufs = _pool().setdefault(key, [])
    chosen = None
    for i in range(len(bufs)):  # not enumerate(): its result tuple would hold one more reference
        buf = bufs[i]
        if sys.getrefcount(buf) == _FREE_REFS:
            if buf.nbytes >= nbytes:
                chosen = buf
                break
            bufs.pop(i)  # free but too small: replaced below
            break
    if chosen is None:
        size = nbytes + nbytes // 8  # some head-room for slightly larger calls
        if len(bufs) >= MAX_PER_KEY or pooled_bytes() + size > MAX_BYTES:
            return np.empty(shape, dtype)
        chosen = np.empty(size, np.uint8)
        bufs.append(chosen)
    return chosen[:nbytes].view(dtype)[:count].reshape(shape)


def zeros(key: str, shape: tuple[int, ...], dtype: np.dtype | type = np.float64) -> np.ndarray:
    """Like :func:`empty`, filled with zeros."""
    out = empty(key, shape, dtype)
    out.fill(0)
    return out


def pooled_bytes() -> int:
    """Bytes of all buffers this thread keeps (free or in use)."""
    return sum(b.nbytes for bufs in _pool().values() for b in bufs)


def clear() -> None:
    """Drop this thread's idle buffers (those in use stay alive with their users)."""
    _pool().clear()
