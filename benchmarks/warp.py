"""Benchmark: the numba forward warp of the 3D cache against the torch implementation, side by side in one run.

The demo's size: a 176x320 source image with a smooth random depth (2..6) lifted to 56,320 points,
warped into the 49 cameras of one of the method's trajectories (``method_trajectories``), footprint
``bilinear`` and ``nearest``. Per footprint: median wall time of each path (numba compilation
excluded by a warm-up), the torch/numba ratio, and whether both gave identical results; then the
same for ``inpaint`` (smooth_iters=4, the cache generator's setting) of the bilinear warp. Usage::

    python benchmarks/warp.py [--frames 49] [--reps 3] [--threads N] [--json]

Timings are wall-clock; on a shared machine they are noisy (the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from collections.abc import Callable

import torch

from lyra.cache3d import PointCache, forward_warp, inpaint, lift_points
from lyra.cache3d.inpaint import _inpaint_torch
from lyra.cache3d.warp import _forward_warp_torch
from lyra.cameras import Cameras, default_intrinsics
from lyra.cameras.trajectories import method_trajectories


def scene(height: int, width: int, frames: int, seed: int = 0) -> tuple[PointCache, Cameras]:
    """The lifted source image (H*W points) and the target cameras of the method's first trajectory."""
    g = torch.Generator().manual_seed(seed)
    K = default_intrinsics(height, width)
    anchor = Cameras(torch.eye(4), K, height, width)
    low = torch.rand(1, 1, 6, 10, generator=g)
    depth = 2.0 + 4.0 * torch.nn.functional.interpolate(low, size=(height, width), mode="bicubic",
                                                        align_corners=False).clamp(0, 1)[0]
    rgb = torch.rand(3, height, width, generator=g)
    cache = lift_points(rgb, depth, anchor, edge_threshold=None)
    cams = method_trajectories(K, height, width, frames, center_depth=3.0, seed=seed)[0]
    return cache, cams


def median_time(fn: Callable[[], object], reps: int) -> tuple[float, object]:
    """Median seconds of ``reps`` calls and the last result."""
    times, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--height", type=int, default=176)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--frames", type=int, default=49)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cache, cams = scene(args.height, args.width, args.frames)
    rows = []
    bil = None
    for fp in ("bilinear", "nearest"):
        forward_warp(cache, cams[:2], footprint=fp)  # compile / load the numba kernel
        t_numba, a = median_time(lambda fp=fp: forward_warp(cache, cams, footprint=fp), max(3, args.reps))
        t_torch, b = median_time(lambda fp=fp: _forward_warp_torch(cache, cams, footprint=fp), args.reps)
        same = all(torch.equal(x, y) for x, y in zip((a.rgb, a.depth, a.index), (b.rgb, b.depth, b.index),
                                                     strict=True))
        rows.append(dict(case=f"forward_warp {fp}", torch_s=t_torch, numba_s=t_numba, ratio=t_torch / t_numba,
                         identical=same))
        bil = a if fp == "bilinear" else bil
    valid = bil.mask > 0.5
    inpaint(bil.rgb[:2], bil.mask[:2], smooth_iters=4)  # compile / load the numba kernel
    t_numba, a = median_time(lambda: inpaint(bil.rgb, bil.mask, smooth_iters=4), max(3, args.reps))
    t_torch, b = median_time(lambda: _inpaint_torch(bil.rgb, valid, 4, 0.5), args.reps)
    rows.append(dict(case="inpaint smooth_iters=4", torch_s=t_torch, numba_s=t_numba, ratio=t_torch / t_numba,
                     identical=torch.equal(a, b), max_abs_diff=float((a - b).abs().max())))
    if args.json:
        print(json.dumps(dict(points=len(cache), cameras=len(cams), threads=torch.get_num_threads(), rows=rows)))
        return
    print(f"{len(cache)} points -> {len(cams)} cameras {args.height}x{args.width}, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}")
    for r in rows:
        diff = f"  max |diff| {r['max_abs_diff']:.1e}" if "max_abs_diff" in r else ""
        print(f"  {r['case']:<24} torch {r['torch_s']:7.3f} s  numba {r['numba_s']:7.3f} s  "
              f"ratio {r['ratio']:6.1f}x  identical={r['identical']}{diff}")
    ratios = [r["ratio"] for r in rows]
    print(f"  geometric mean ratio {math.exp(statistics.fmean(math.log(x) for x in ratios)):.1f}x")


if __name__ == "__main__":
    main()
