"""Decoder benchmark on CPU: forward time and peak memory per config, and the chunked Mamba-2 scan vs the recurrence.

Usage:
    python benchmarks/decoder.py                 # pocket + official forward, scan at 4096 tokens
    python benchmarks/decoder.py --repeats 1 --scan-tokens 1024 --threads 2 --json out.json

Each forward configuration runs in its own subprocess so that its peak RSS (``ru_maxrss``) is its own; random
weights, ``torch.no_grad()``, float32. The scan comparison runs both scans side by side in one process on the
same inputs (official head sizes: 16 heads × 64, d_state 256) and prints the speed ratio and the max difference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

FORWARD_CASES = {
    # name: (preset, H, W, frames, trajectories)
    "pocket 128x224x17 V=1": ("pocket", 128, 224, 17, 1),
    "pocket 128x224x17 V=6": ("pocket", 128, 224, 17, 6),
    "official 176x320x17 V=1": ("official", 176, 320, 17, 1),
}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_forward_case(preset: str, H: int, W: int, frames: int, V: int, repeats: int) -> dict:
    """Build a random-weight decoder and time its forward (called inside the subprocess)."""
    import torch

    from lyra.decoder import DecoderConfig, LyraDecoder

    rss_start = _rss_mib()
    torch.manual_seed(0)
    cfg = getattr(DecoderConfig, preset)()
    model = LyraDecoder(cfg).eval()
    h, w, T_l = H // 8, W // 8, (frames - 1) // 8 + 1
    T = cfg.num_frames(T_l)
    x = dict(
        latents=torch.randn(1, V * T_l, cfg.latent_channels, h, w),
        plucker=torch.randn(1, V * T_l, cfg.plucker_channels, h, w),
        rays_o=torch.zeros(1, V * T, 3, h, w),
        rays_d=torch.nn.functional.normalize(torch.randn(1, V * T, 3, h, w), dim=2),
        num_views=V,
    )
    rss_model = _rss_mib()
    times = []
    with torch.no_grad():
        for _ in range(repeats + 1):  # first run is warm-up
            t0 = time.perf_counter()
            out = model(**x)
            times.append(time.perf_counter() - t0)
    return dict(
        params=model.num_parameters(), tokens=V * T_l * (h // cfg.patch_size) * (w // cfg.patch_size),
        gaussians=int(out.records.shape[1]), warmup_s=times[0], median_s=statistics.median(times[1:]),
        min_s=min(times[1:]), rss_start_mib=rss_start, rss_model_mib=rss_model, peak_rss_mib=_rss_mib(),
        threads=torch.get_num_threads(),
    )


def run_scan_comparison(tokens: int, chunk_sizes: list[int], repeats: int) -> dict:
    """Chunked SSD vs sequential recurrence on the same random inputs (official head sizes)."""
    import torch
    import torch.nn.functional as F

    from lyra.decoder import ssd_chunked, ssd_sequential

    g = torch.Generator().manual_seed(0)
    b, h, p, n = 1, 16, 64, 256
    x = torch.randn(b, tokens, h, p, generator=g)
    dt = F.softplus(torch.randn(b, tokens, h, generator=g) - 4.0)
    A = -torch.empty(h).uniform_(1.0, 16.0, generator=g)
    B = torch.randn(b, tokens, 1, n, generator=g) / n**0.5
    C = torch.randn(b, tokens, 1, n, generator=g) / n**0.5

    def timed(fn, reps):
        best, out = float("inf"), None
        for _ in range(reps):
            t0 = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t0)
        return best, out

    with torch.no_grad():
        t_seq, y_seq = timed(lambda: ssd_sequential(x, dt, A, B, C), 1)
        rows = {}
        for q in chunk_sizes:
            t_chk, y = timed(lambda q=q: ssd_chunked(x, dt, A, B, C, q), repeats)
            err = (y - y_seq).abs().max().item()
            rows[q] = dict(chunked_s=t_chk, speedup=t_seq / t_chk, max_abs_diff=err,
                           max_rel_diff=err / y_seq.abs().max().item())
    return dict(tokens=tokens, heads=h, headdim=p, d_state=n, sequential_s=t_seq, chunks=rows,
                y_absmax=y_seq.abs().max().item())


def _child(args: argparse.Namespace) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    preset, H, W, frames, V = FORWARD_CASES[args.child]
    print(json.dumps(run_forward_case(preset, H, W, frames, V, args.repeats)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2, help="timed forwards after one warm-up")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--scan-tokens", type=int, default=4096)
    ap.add_argument("--chunk-sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--cases", nargs="+", default=list(FORWARD_CASES), choices=list(FORWARD_CASES))
    ap.add_argument("--skip-forward", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict = dict(
        machine=dict(python=platform.python_version(), torch=torch.__version__, cpus=os.cpu_count(),
                     threads=torch.get_num_threads(), load_avg=os.getloadavg()),
        forward={},
    )
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f}")
    if not args.skip_forward:
        print(f"\n{'decoder forward (no grad, fp32)':34s} {'params':>10s} {'tokens':>7s} {'Gaussians':>10s} "
              f"{'median s':>9s} {'min s':>7s} {'peak RSS MiB':>13s} {'(model MiB)':>11s}")
        repo = Path(__file__).resolve().parents[1]
        for name in args.cases:
            cmd = [sys.executable, __file__, "--child", name, "--repeats", str(args.repeats),
                   "--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=repo)
            if proc.returncode:
                print(f"{name}: failed\n{proc.stderr[-2000:]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results["forward"][name] = r
            print(f"{name:34s} {r['params']:>10,d} {r['tokens']:>7,d} {r['gaussians']:>10,d} {r['median_s']:>9.2f} "
                  f"{r['min_s']:>7.2f} {r['peak_rss_mib']:>13.0f} {r['rss_model_mib']:>11.0f}")

    s = run_scan_comparison(args.scan_tokens, args.chunk_sizes, args.repeats)
    results["scan"] = s
    print(f"\nMamba-2 scan, {s['tokens']} tokens, {s['heads']} heads x {s['headdim']}, d_state {s['d_state']} "
          f"(|y| max {s['y_absmax']:.3g}): sequential {s['sequential_s']:.3f} s")
    for q, r in s["chunks"].items():
        print(f"  chunked Q={q:<4d} {r['chunked_s']:.3f} s   speed-up x{r['speedup']:.1f}   "
              f"max |diff| {r['max_abs_diff']:.2e} (relative {r['max_rel_diff']:.2e})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
