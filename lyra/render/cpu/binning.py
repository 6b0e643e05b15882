"""Parallel tile binning: per-tile lists of Gaussian indices sorted front to back by (z, index).

Tiles of all cameras are numbered ``tid = c * TH * TW + ty * TW + tx``. Gaussians are split into
contiguous chunks of their per-camera front-to-back order (one stable sort of z per camera, ties
by index), one chunk per work item: each item counts its tile hits, an exclusive prefix sum over
(tile, item) gives every item its write offsets and each item fills its slots in order, so every
tile list comes out sorted by (z, index) without per-tile sorting.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

from lyra.render.cpu import workspace
from lyra.render.cpu.project import R_Z


@njit(cache=True)
def _count_chunk(rect, order, tiles_w: int, tiles_per_cam: int, w: int, n_work: int, counts) -> None:
    """Tile hits of the w-th of n_work chunks of the front-to-back order, into counts[w]."""
    n_cam, n_gauss = rect.shape[0], rect.shape[1]
    for c in range(n_cam):
        base = c * tiles_per_cam
        for r in range(w * n_gauss // n_work, (w + 1) * n_gauss // n_work):
            n = order[c, r]
            x0, x1, y0, y1 = rect[c, n, 0], rect[c, n, 1], rect[c, n, 2], rect[c, n, 3]
            for ty in range(y0, y1):
                for tx in range(x0, x1):
                    counts[w, base + ty * tiles_w + tx] += 1


@njit(cache=True)
def _fill_chunk(rect, order, tiles_w: int, tiles_per_cam: int, w: int, slot, ids) -> None:
    """Write the w-th chunk's Gaussian indices at its slots (slot[w] advances)."""
    n_cam, n_gauss = rect.shape[0], rect.shape[1]
    n_work = slot.shape[0]
    for c in range(n_cam):
        base = c * tiles_per_cam
        for r in range(w * n_gauss // n_work, (w + 1) * n_gauss // n_work):
            n = order[c, r]
            x0, x1, y0, y1 = rect[c, n, 0], rect[c, n, 1], rect[c, n, 2], rect[c, n, 3]
            for ty in range(y0, y1):
                for tx in range(x0, x1):
                    t = base + ty * tiles_w + tx
                    ids[slot[w, t]] = n
                    slot[w, t] += 1


@njit(parallel=True, cache=True)
def _count(rect, order, tiles_w: int, tiles_per_cam: int, n_work: int):
    counts = np.zeros((n_work, rect.shape[0] * tiles_per_cam), dtype=np.int64)
    for w in prange(n_work):
        _count_chunk(rect, order, tiles_w, tiles_per_cam, w, n_work, counts)
    return counts


@njit(parallel=True, cache=True)
def _fill(rect, order, tiles_w: int, tiles_per_cam: int, slot, ids) -> None:
    for w in prange(slot.shape[0]):
        _fill_chunk(rect, order, tiles_w, tiles_per_cam, w, slot, ids)


@njit(cache=True)
def _offsets(counts):
    n_work, n_tiles = counts.shape
    starts = np.empty(n_tiles + 1, dtype=np.int64)
    slot = np.empty((n_work, n_tiles), dtype=np.int64)
    total = 0
    for t in range(n_tiles):
        starts[t] = total
        for w in range(n_work):
            slot[w, t] = total
            total += counts[w, t]
    starts[n_tiles] = total
    return starts, slot


@njit(cache=True)
def _bin_serial(rect, order, tiles_w: int, tiles_per_cam: int):
    counts = np.zeros((1, rect.shape[0] * tiles_per_cam), dtype=np.int64)
    _count_chunk(rect, order, tiles_w, tiles_per_cam, 0, 1, counts)
    starts, slot = _offsets(counts)
    ids = np.empty(starts[-1], dtype=np.int32)
    _fill_chunk(rect, order, tiles_w, tiles_per_cam, 0, slot, ids)
    return starts, ids


@njit(cache=True)
def _order_ties_by_index(order, zs) -> None:
    """Within every run of equal keys of a sorted row, put the indices in increasing order (in place)."""
    for c in range(order.shape[0]):
        n = order.shape[1]
        i = 0
        while i < n and np.isfinite(zs[c, i]):  # culled (inf) ones sit at the end, in any order
            j = i + 1
            while j < n and zs[c, j] == zs[c, i]:
                j += 1
            for a in range(i + 1, j):  # insertion sort: runs are short
                v = order[c, a]
                b = a - 1
                while b >= i and order[c, b] > v:
                    order[c, b + 1] = order[c, b]
                    b -= 1
                order[c, b + 1] = v
            i = j


def depth_order(rec: np.ndarray, rect: np.ndarray) -> np.ndarray:
    """[C, N] int64: per camera, Gaussian indices sorted by (z, index); culled ones last."""
    z = np.where(rect[..., 1] > rect[..., 0], rec[..., R_Z], np.inf)
    order = np.argsort(z, axis=1)  # numpy's SIMD sort, not stable: equal depths are fixed up below
    zs = np.take_along_axis(z, order, axis=1)
    tie = (zs[:, 1:] == zs[:, :-1]) & np.isfinite(zs[:, 1:])
    if tie.any():
        _order_ties_by_index(order, zs)
    return order


def bin_gaussians(rec: np.ndarray, rect: np.ndarray, tiles_w: int, tiles_h: int,
                  parallel: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per-tile sorted Gaussian lists.

    Args:
        rec: [C, N, NF] float64 projected records (depth at ``R_Z``).
        rect: [C, N, 4] int32 touched tile rectangles (x0, x1, y0, y1), exclusive ends.
        tiles_w, tiles_h: tiles per row / column.
        parallel: use the parallel kernels (else all on the calling thread).
    Returns:
        starts: [C*TH*TW + 1] int64, tile t's entries are ``ids[starts[t]:starts[t+1]]``;
        ids: [n_entries] int32 Gaussian indices, front to back within each tile.
    """
    tiles_per_cam = tiles_w * tiles_h
    n_work = max(1, min(rect.shape[1], get_num_threads()))
    order = depth_order(rec, rect)
    if not parallel or n_work == 1:
        return _bin_serial(rect, order, tiles_w, tiles_per_cam)
    counts = _count(rect, order, tiles_w, tiles_per_cam, n_work)
    starts, slot = _offsets(counts)
    ids = workspace.empty("ids", (int(starts[-1]),), np.int32)
    _fill(rect, order, tiles_w, tiles_per_cam, slot, ids)
    return starts, ids
