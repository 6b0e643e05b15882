"""Benchmark: the numba ``cpu`` rasterizer against the torch reference, side by side in one run.

Six random scenes (4k, 16k, 64k Gaussians x 128^2, 256^2; means x, y ~ U(-1.2, 1.2), z ~ U(2, 5),
log-scales ~ U(ln .01, ln .05), opacity ~ U(.1, .9), random quats and colours, one camera at the
identity with fx = fy = W, cx = W/2, cy = H/2). For each: median forward and forward+backward
time of the cpu backend and of the torch reference (numba compilation excluded by a warm-up),
the reference both at torch's thread count and single-threaded, the ratios, their geometric
means, and the peak RSS of one 64k @ 256^2 forward+backward per backend (each in a fresh
subprocess). Usage::

    python benchmarks/rasterizer.py [--quick | --pocket] [--json] [--mode classic|eval3d]

``--pocket`` replaces the six scenes by the pocket working resolution (176x320) at one Gaussian per pixel (56,320,
the density of ``lyra demo``'s kept Gaussians), plus 4x that (the official model's density is about 2.3 per pixel).

Timings are wall-clock; on a shared machine they are noisy (the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

from lyra.render.cpu import rasterize_cpu
from lyra.render.options import RenderOptions
from lyra.render.reference import rasterize_reference

BACKENDS = {"cpu": rasterize_cpu, "torch": rasterize_reference}
FULL = dict(sizes=[(4096, 128), (16384, 128), (65536, 128), (4096, 256), (16384, 256), (65536, 256)],
            reps_cpu=9, reps_ref=3, mem=(65536, 256))
QUICK = dict(sizes=[(1024, 64), (4096, 128)], reps_cpu=3, reps_ref=1, mem=(4096, 128))
POCKET = dict(sizes=[(56320, (176, 320)), (225280, (176, 320))], reps_cpu=5, reps_ref=1, mem=(56320, (176, 320)))
RELAUNCH_ENV = "LYRA_BENCH_RELAUNCH"
MAX_RELAUNCH = 5  # on our 2-core machines roughly every second process is affected


def hw(size: int | tuple[int, int]) -> tuple[int, int]:
    """(H, W) of a scene size: a side (square) or (H, W)."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def size_label(size: int | tuple[int, int]) -> str:
    H, W = hw(size)
    return f"{H}^2" if H == W else f"{H}x{W}"


def scene(n: int, size: int | tuple[int, int], seed: int = 0) -> tuple[list[torch.Tensor], tuple]:
    """The benchmark scene: parameters [means, quats, scales, opacities, colors] and camera args (fx = fy = W)."""
    g = torch.Generator().manual_seed(seed)
    means = torch.cat([torch.rand(n, 2, generator=g) * 2.4 - 1.2, torch.rand(n, 1, generator=g) * 3 + 2], 1)
    lo, hi = math.log(0.01), math.log(0.05)
    scales = torch.exp(torch.rand(n, 3, generator=g) * (hi - lo) + lo)
    params = [means, torch.randn(n, 4, generator=g), scales, torch.rand(n, generator=g) * 0.8 + 0.1,
              torch.rand(1, n, 3, generator=g)]
    H, W = hw(size)
    K = torch.tensor([[W, 0.0, W / 2], [0.0, W, H / 2], [0.0, 0.0, 1.0]])[None]
    return params, (torch.eye(4)[None], K, W, H, torch.zeros(1, 3))


def fwd_bwd(fn, params: list[torch.Tensor], cam: tuple, opts: RenderOptions) -> tuple[float, float]:
    """Seconds for one forward and one forward+backward (loss: weighted sum of rgb, depth, alpha)."""
    ps = [p.clone().requires_grad_(True) for p in params]
    t0 = time.perf_counter()
    rgb, depth, alpha = fn(*ps, *cam, opts)
    t1 = time.perf_counter()
    loss = rgb.sum() + 0.1 * depth.sum() + alpha.sum()
    loss.backward()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t0


def measure(fn, params: list[torch.Tensor], cam: tuple, opts: RenderOptions, reps: int) -> tuple[float, float]:
    """Median forward and forward+backward seconds over reps runs after one warm-up run."""
    fwd_bwd(fn, params, cam, opts)
    runs = [fwd_bwd(fn, params, cam, opts) for _ in range(reps)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def torch_threads_healthy() -> tuple[bool, float]:
    """Whether torch's thread pool runs a matmul at least about as fast as a single thread.

    A pool whose threads are stuck together on one core runs ~100x slower than one thread.
    Returns (healthy, multi-thread time / single-thread time).
    """
    a = torch.randn(384, 384)
    n = torch.get_num_threads()

    def best(threads: int) -> float:
        torch.set_num_threads(threads)
        a @ a
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(4):
                a @ a
            ts.append(time.perf_counter() - t)
        return min(ts)

    one = best(1)
    many = best(n)
    torch.set_num_threads(n)
    ratio = many / one
    return ratio < 3.0, ratio


def ensure_healthy_threads(quiet: bool) -> float:
    """Re-launch this process (bounded) when torch's threads are stuck on one core; else warn.

    Returns the multi-/single-thread matmul time ratio of the process that goes on.
    """
    healthy, ratio = torch_threads_healthy()
    if healthy:
        return ratio
    tries = int(os.environ.get(RELAUNCH_ENV, "0"))
    msg = f"torch threads look stuck on one core ({torch.get_num_threads()}-thread matmul {ratio:.1f}x slower than 1)"
    if tries < MAX_RELAUNCH:
        print(f"[bench] {msg}; re-launching ({tries + 1}/{MAX_RELAUNCH})", file=sys.stderr)
        os.environ[RELAUNCH_ENV] = str(tries + 1)
        os.execv(sys.executable, [sys.executable, *sys.argv])
    print(f"[bench] WARNING: {msg} after {MAX_RELAUNCH} re-launches; timings of torch are unreliable",
          file=sys.stderr if quiet else sys.stdout)
    return ratio


def peak_rss_child(backend: str, n: int, size: int | tuple[int, int], mode: str) -> dict:
    """Peak RSS (MiB) of a fresh process doing a warm-up on a tiny scene and one forward+backward."""
    H, W = hw(size)
    cmd = [sys.executable, os.path.abspath(__file__), "--_mem", backend, "--_n", str(n), "--_size", f"{H}x{W}",
           "--mode", mode]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, RELAUNCH_ENV: "99"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _proc_status_mib(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux ``clear_refs``); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _mem_child(backend: str, n: int, size: tuple[int, int], mode: str) -> None:
    """Print the RSS high-water mark of one forward+backward (after warm-up and scene creation)."""
    opts = RenderOptions(mode=mode)
    fn = BACKENDS[backend]
    small, cam_small = scene(64, 32)
    fwd_bwd(fn, small, cam_small, opts)  # numba compile / torch start-up before the baseline
    params, cam = scene(n, size)
    before = _proc_status_mib("VmRSS")
    if _reset_peak_rss() and before is not None:
        fwd_bwd(fn, params, cam, opts)
        peak = _proc_status_mib("VmHWM")
    else:  # the process-lifetime peak (includes start-up)
        fwd_bwd(fn, params, cam, opts)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        before = before or 0.0
    print(json.dumps({"backend": backend, "peak_mib": round(peak, 1), "before_mib": round(before, 1),
                      "render_mib": round(peak - before, 1)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="two small scenes, fewer repeats (smoke run)")
    ap.add_argument("--pocket", action="store_true", help="the pocket working resolution 176x320 at 1 and 4 "
                    "Gaussians per pixel instead of the six scenes")
    ap.add_argument("--json", action="store_true", help="print one machine-readable JSON line only")
    ap.add_argument("--mode", default="classic", choices=["classic", "eval3d"])
    ap.add_argument("--no-mem", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--torch-threads", type=int, default=0,
                    help="torch intra-op threads (default: torch's choice); 1 gives the reference a stable "
                         "single-thread baseline where its thread pool misbehaves")
    ap.add_argument("--_mem", help=argparse.SUPPRESS)
    ap.add_argument("--_n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--_size", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._mem:
        _mem_child(args._mem, args._n, tuple(int(v) for v in args._size.split("x")), args.mode)
        return
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    ratio_start = ensure_healthy_threads(args.json) if torch.get_num_threads() > 1 else 1.0
    cfg = QUICK if args.quick else POCKET if args.pocket else FULL
    opts = RenderOptions(mode=args.mode)
    say = (lambda *a: None) if args.json else print
    say(f"# rasterizer benchmark, mode={args.mode}, torch threads={torch.get_num_threads()}, "
        f"numba threads={__import__('numba').get_num_threads()}, load average={os.getloadavg()[0]:.1f}, "
        f"torch matmul {torch.get_num_threads()}-thread/1-thread time {ratio_start:.2f}")
    warm, warm_cam = scene(64, 32)
    fwd_bwd(rasterize_cpu, warm, warm_cam, opts)  # numba compilation (or cache load)
    n_threads = torch.get_num_threads()
    # the reference at torch's thread count and, as a second baseline, single-threaded: on small
    # shared machines its many small ops can run several times faster on one thread
    baselines = [("torch", n_threads)] + ([("torch1", 1)] if n_threads > 1 else [])
    head = f"{'scene':>14} | {'':>5} {'cpu':>8}"
    for _, t in baselines:
        head += f" | {f'torch {t}t':>10} {'x':>7}"
    say(head)
    say("-" * len(head))
    rows = []
    for n, size in cfg["sizes"]:
        params, cam = scene(n, size)
        cf, cb = measure(rasterize_cpu, params, cam, opts, cfg["reps_cpu"])
        row = dict(n=n, size=size, cpu_fwd_ms=cf * 1e3, cpu_fwdbwd_ms=cb * 1e3)
        for name, t in baselines:
            torch.set_num_threads(t)
            rf, rb = measure(rasterize_reference, params, cam, opts, cfg["reps_ref"])
            row.update({f"{name}_fwd_ms": rf * 1e3, f"{name}_fwdbwd_ms": rb * 1e3,
                        f"speedup_{name}_fwd": rf / cf, f"speedup_{name}_fwdbwd": rb / cb})
        torch.set_num_threads(n_threads)
        rows.append(row)
        for kind, key in (("fwd", "fwd"), ("f+b", "fwdbwd")):
            label = f"{n // 1024}k@{size_label(size)}" if kind == "fwd" else ""
            line = f"{label:>14} | {kind:>5} {row[f'cpu_{key}_ms']:6.1f}ms"
            for name, _ in baselines:
                line += f" | {row[f'{name}_{key}_ms']:8.1f}ms {row[f'speedup_{name}_{key}']:6.1f}x"
            say(line)
    say("-" * len(head))
    summary = {}
    for name, t in baselines:
        for key in ("fwd", "fwdbwd"):
            ratios = [r[f"speedup_{name}_{key}"] for r in rows]
            summary[f"geomean_{name}_{key}"] = math.exp(statistics.fmean(math.log(x) for x in ratios))
            summary[f"min_{name}_{key}"] = min(ratios)
        say(f"vs torch {t} thread(s): geomean speed-up forward {summary[f'geomean_{name}_fwd']:.1f}x, "
            f"forward+backward {summary[f'geomean_{name}_fwdbwd']:.1f}x "
            f"(min {summary[f'min_{name}_fwdbwd']:.1f}x)")
    healthy_end, ratio_end = torch_threads_healthy() if torch.get_num_threads() > 1 else (True, 1.0)
    say(f"torch matmul {torch.get_num_threads()}-thread/1-thread time at the end: {ratio_end:.2f}"
        + ("" if healthy_end else "  (WARNING: torch threads degraded during the run; torch timings unreliable)"))
    result = dict(mode=args.mode, quick=args.quick, pocket=args.pocket, scenes=rows, **summary, torch_threads=n_threads,
                  numba_threads=__import__("numba").get_num_threads(), loadavg=os.getloadavg()[0],
                  torch_thread_ratio_start=ratio_start, torch_thread_ratio_end=ratio_end)
    if not args.no_mem:
        n, size = cfg["mem"]
        mem = {b: peak_rss_child(b, n, size, args.mode) for b in BACKENDS}
        result["peak_rss"] = dict(n=n, size=size, **mem)
        for b, m in mem.items():
            say(f"peak RSS, {n // 1024}k@{size_label(size)} forward+backward, {b:>5}: {m['peak_mib']:.0f} MiB "
                f"(RSS before the render {m['before_mib']:.0f} MiB: +{m['render_mib']:.0f} MiB)")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
