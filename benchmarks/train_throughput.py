"""Training-step throughput of the pocket decoder on synthetic samples (no dataset needed).

    python benchmarks/train_throughput.py [--steps 10] [--threads 1]

Reports seconds per step and peak RSS for deferred vs plain back-propagation at the pocket stage settings
(64×112 images, 17 frames, V trajectories × targets per trajectory).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lyra.cameras import Cameras, default_intrinsics, method_trajectories
from lyra.tokenizer import CausalVAEConfig, CausalVideoVAE
from lyra.train.config import TrainConfig
from lyra.train.trainer import Trainer, TrainSample


class Synthetic:
    def __init__(self, H: int, W: int, T: int, V: int, targets: int, size: tuple[int, int]) -> None:
        K = default_intrinsics(H, W, 60.0)
        self.trajs = method_trajectories(K, H, W, T, seed=0)
        self.H, self.W, self.T, self.V, self.targets, self.size = H, W, T, V, targets, size

    def __len__(self) -> int:
        return 4

    def get(self, index: int, rng: np.random.Generator) -> TrainSample:
        views = [int(v) for v in rng.choice(6, self.V, replace=False)]
        frames = [int(f) for f in rng.choice(self.T, self.targets, replace=False)]
        tc = Cameras.cat([self.trajs[v][f] for v in views for f in frames]).resized(*self.size)
        n = len(tc)
        g = torch.Generator().manual_seed(index)
        T_l = 1 + (self.T - 1) // 8
        return TrainSample("s", torch.randn(self.V * T_l, 16, self.H // 8, self.W // 8, generator=g), None,
                           [self.trajs[v] for v in views], torch.rand(n, 3, *self.size, generator=g),
                           1 + torch.rand(n, 1, *self.size, generator=g), tc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    tok = CausalVideoVAE(CausalVAEConfig()).eval()
    root = Path(__file__).resolve().parents[1] / "configs" / "pocket"
    print(f"{'stage':<8} {'V x targets':<12} {'size':<8} {'deferred':<9} {'s/step':>7} {'peak RSS MB':>12}")
    for stage, V, targets, size in (("stage1", 1, 4, (32, 56)), ("stage2", 6, 2, (64, 112)),
                                    ("stage3", 6, 2, (64, 112))):
        for deferred in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                cfg = TrainConfig.load(root / f"{stage}.yaml", [f"output_dir={tmp}", "init_from=null",
                                                                f"render.deferred={str(deferred).lower()}"])
                tr = Trainer(cfg, source=Synthetic(64, 112, 17, V, targets, size), tokenizer=tok, progress=False)
                tr.train_step()  # warm-up (numba JIT, caches)
                t0 = time.perf_counter()
                for _ in range(a.steps):
                    tr.train_step()
                dt = (time.perf_counter() - t0) / a.steps
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{stage:<8} {f'{V} x {targets}':<12} {f'{size[0]}x{size[1]}':<8} {str(deferred):<9} "
                  f"{dt:>7.3f} {rss:>12.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
