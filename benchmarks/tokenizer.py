"""Tokenizer benchmark on CPU: encode and decode throughput (frames/s) of the shipped pocket VAE.

Usage:
    python benchmarks/tokenizer.py                         # 64x112 and 128x224, 17 frames, batch 1
    python benchmarks/tokenizer.py --sizes 64x112 --frames 17 121 --threads 2 --json out.json
    python benchmarks/tokenizer.py --tokenizer /path/to/Cosmos-Tokenize1-CV8x8x8-720p --device cuda

Median wall time of ``--repeats`` runs after one warm-up, ``torch.no_grad()``, float32 (or the
tokenizer's own dtype). Frames/s counts pixel frames (input frames for encode, output for decode).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch


def _time(fn, repeats: int, sync) -> float:
    fn()
    sync()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", default="pocket")
    ap.add_argument("--sizes", nargs="+", default=["64x112", "128x224"], help="HxW")
    ap.add_argument("--frames", nargs="+", type=int, default=[17])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from lyra.tokenizer import load_tokenizer

    tok = load_tokenizer(args.tokenizer, device=args.device)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    rows = []
    print(f"# tokenizer={args.tokenizer} device={args.device} threads={torch.get_num_threads()} "
          f"cpu={platform.processor() or platform.machine()} cores={os.cpu_count()} torch={torch.__version__}")
    print("| size | frames | batch | encode s | encode frames/s | decode s | decode frames/s |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        H, W = (int(v) for v in size.lower().split("x"))
        for T in args.frames:
            x = torch.rand(args.batch, 3, T, H, W, device=dev) * 2 - 1
            with torch.no_grad():
                z = tok.encode(x)
                t_enc = _time(lambda x=x: tok.encode(x), args.repeats, sync)
                t_dec = _time(lambda z=z: tok.decode(z), args.repeats, sync)
            n = args.batch * T
            row = {"height": H, "width": W, "frames": T, "batch": args.batch, "encode_s": t_enc,
                   "encode_fps": n / t_enc, "decode_s": t_dec, "decode_fps": n / t_dec}
            rows.append(row)
            print(f"| {H}x{W} | {T} | {args.batch} | {t_enc:.3f} | {n / t_enc:.1f} | {t_dec:.3f} | {n / t_dec:.1f} |",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"tokenizer": args.tokenizer, "device": args.device, "threads": torch.get_num_threads(),
                       "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
