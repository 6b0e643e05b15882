"""Benchmark: what the cpu backend's deterministic backward costs against dynamic tile claiming.

The six scenes of ``benchmarks/rasterizer.py``; for each, the median forward+backward time with
``RenderOptions(deterministic=True)`` (fixed tile-to-worker assignment, the default) and ``False``
(tiles claimed at run time), measured alternately in one process, and their ratio. Usage::

    python benchmarks/rasterizer_determinism.py [--quick] [--mode classic|eval3d] [--rounds 3]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rasterizer import FULL, QUICK, measure, scene  # noqa: E402

from lyra.render.cpu import rasterize_cpu  # noqa: E402
from lyra.render.options import RenderOptions  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--mode", default="classic", choices=["classic", "eval3d"])
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per scene (median of each mode)")
    args = ap.parse_args()
    plan = QUICK if args.quick else FULL
    print(f"load average {os.getloadavg()[0]:.2f}; median forward+backward of {args.rounds} rounds x "
          f"{plan['reps_cpu']} repeats; ratio = deterministic / dynamic")
    ratios = []
    for n, size in plan["sizes"]:
        params, cam = scene(n, size)
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.rounds):
            for det in (True, False):
                opts = RenderOptions(mode=args.mode, deterministic=det)
                times[det].append(measure(rasterize_cpu, params, cam, opts, plan["reps_cpu"])[1])
        d, y = statistics.median(times[True]), statistics.median(times[False])
        ratios.append(d / y)
        print(f"{n // 1024:>3}k@{size}^2  deterministic {d * 1e3:7.2f} ms  dynamic {y * 1e3:7.2f} ms  "
              f"ratio {d / y:.3f}")
    print(f"geometric mean ratio {math.exp(statistics.mean(math.log(r) for r in ratios)):.3f}")


if __name__ == "__main__":
    main()
