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
def _radix_order(keys, out) -> None:
    """out[c] = the stable ascending order of keys[c] (uint64): LSD radix sort, 8-bit digits.

    Passes whose digit is the same for every key (e.g. the sign and exponent bits of depths) are skipped.
    """
    n = keys.shape[1]
    counts = np.empty(256, dtype=np.int64)
    idx_b = np.empty(n, dtype=np.int64)
    key_a = np.empty(n, dtype=np.uint64)
    key_b = np.empty(n, dtype=np.uint64)
    mask = np.uint64(255)
    for c in range(keys.shape[0]):
        idx_a = out[c]
        for i in range(n):
            idx_a[i] = i
            key_a[i] = keys[c, i]
        src_i, src_k, dst_i, dst_k = idx_a, key_a, idx_b, key_b
        for p in range(8):
            shift = np.uint64(8 * p)
            counts[:] = 0
            for i in range(n):
                counts[(src_k[i] >> shift) & mask] += 1
            if counts.max() == n:
                continue
            total = 0
            for d in range(256):
                cnt = counts[d]
                counts[d] = total
                total += cnt
            for i in range(n):
                d = (src_k[i] >> shift) & mask
                j = counts[d]
                counts[d] = j + 1
                dst_i[j] = src_i[i]
                dst_k[j] = src_k[i]
            src_i, src_k, dst_i, dst_k = dst_i, dst_k, src_i, src_k
        if src_i is not idx_a:
            idx_a[:] = src_i


def depth_order(rec: np.ndarray, rect: np.ndarray) -> np.ndarray:
    """[C, N] int64: per camera, Gaussian indices sorted by (z, index); culled ones last.

    Depths of projected Gaussians are > near > 0, so their float64 bit patterns sort like the values
    (culled ones get +inf); a stable radix sort of the bits keeps equal depths in index order.
    """
    z = np.where(rect[..., 1] > rect[..., 0], rec[..., R_Z], np.inf)
    order = workspace.empty("order", z.shape, np.int64)
    _radix_order(np.ascontiguousarray(z).view(np.uint64), order)
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
