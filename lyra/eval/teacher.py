"""The teacher's frames against exact renders, inside the 3D cache's disocclusion holes and outside them.

For a procedural world (held-out seeds and photos), every generator (``cache``, ``diffusion``, …) makes the six method
trajectories from the same source view; each one's decoded frames are scored against the exact renders with PSNR
and SSIM restricted to the pixels the cache covers ("visible") and to the holes it leaves ("holes"). SSIM is the
per-pixel map of :func:`lyra.eval.metrics.ssim` averaged over the mask (cropped to the map's valid region).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lyra.eval.metrics import psnr, ssim


def masked_scores(pred: Tensor, target: Tensor, mask: Tensor, win_size: int = 11) -> dict[str, float]:
    """PSNR (dB) and SSIM of ``pred`` against ``target`` ([N, 3, H, W] in [0, 1]) over the pixels where ``mask``
    ([N, 1, H, W], bool or 0/1) is set; NaN when it selects nothing."""
    m = mask.bool()
    n = int(m.sum())
    if n == 0:
        return {"psnr": float("nan"), "ssim": float("nan"), "pixels": 0}
    err = ((pred.float().clamp(0, 1) - target.float().clamp(0, 1)) ** 2).mean(1, keepdim=True)
    mse = float(err[m].mean())
    s_map = ssim(pred, target, win_size=win_size, reduction="map").mean(1, keepdim=True)
    r = win_size // 2
    m_valid = m[..., r:m.shape[-2] - r, r:m.shape[-1] - r]
    s = float(s_map[m_valid].mean()) if bool(m_valid.any()) else float("nan")
    return {"psnr": float(-10 * torch.log10(torch.tensor(max(mse, 1e-12)))), "ssim": s, "pixels": n}


class SampleMean:
    """A diagnostic generator: the per-pixel mean of ``n`` samples of ``generator`` (seeds ``seed · 7 + 1 + k``, none of
    them ``seed`` itself: samples beside the generator's own).

    A sampler's error against the truth is its mean's error plus its spread: where the truth cannot be predicted (a
    disocclusion behind an unknown object), even a perfect sampler's PSNR is 3 dB under its own mean's. This row
    tells that part of a teacher's loss inside the holes from its bias. Frames only (``latents`` are the mean of the
    samples' latents); not a method generator.
    """

    name = "mean"
    decode_frames = True

    def __init__(self, generator: Any, n: int) -> None:
        if n < 2:
            raise ValueError(f"SampleMean needs n >= 2 samples, got {n}")
        self.generator, self.n = generator, int(n)

    def generate(self, trajectories: Any, source: Any = None, *, seed: int = 0) -> list[Any]:
        from dataclasses import replace

        self.generator.decode_frames = True
        runs = [self.generator.generate(trajectories, source, seed=seed * 7 + 1 + k) for k in range(self.n)]
        return [replace(first, frames=torch.stack([r[i].frames for r in runs]).mean(0),
                        latents=torch.stack([r[i].latents for r in runs]).mean(0))
                for i, first in enumerate(runs[0])]


@dataclass
class TeacherComparison:
    """What :func:`compare_generators` measured.

    Attributes:
        metrics: per generator {"all", "visible", "holes"} -> {"psnr", "ssim", "pixels"}, plus "seconds" (generation
            and decoding of all trajectories).
        frames: per generator the decoded trajectories [V, T, 3, H, W]; "exact" the ground truth; "holes" the
            hole masks [V, T, 1, H, W] (1 in holes).
    """

    metrics: dict[str, Any]
    frames: dict[str, Tensor]


def compare_generators(world: Any, tokenizer: Any, generators: Mapping[str, Any], *, height: int, width: int,
                       frames: int, seed: int = 0, trajectories: int | None = None,
                       fov_x_deg: float = 60.0) -> TeacherComparison:
    """Score each generator's decoded frames against the exact renders of ``world`` (inside / outside the holes).

    Args:
        generators: name -> a ready generator (its ``decode_frames`` is switched on here).
        trajectories: the first this many method trajectories (None: all six).
    """
    from lyra.cameras import default_intrinsics, method_trajectories
    from lyra.generator import CacheGenerator, OracleGenerator

    K = default_intrinsics(height, width, fov_x_deg)
    trajs = method_trajectories(K, height, width, frames, seed=seed)[:trajectories]
    source = OracleGenerator(world, tokenizer).render_source(trajs[0][0])
    exact = torch.stack([world.render(c, 0.0).rgb for c in trajs])  # [V, T, 3, H, W]
    holes = torch.stack([w.mask < 0.5 for w in CacheGenerator(tokenizer).warp(trajs, source)]).float()
    out: dict[str, Tensor] = {"exact": exact, "holes": holes}
    metrics: dict[str, Any] = {}
    for name, gen in generators.items():
        gen.decode_frames = True
        t0 = time.perf_counter()
        samples = gen.generate(trajs, source, seed=seed)
        secs = time.perf_counter() - t0
        pred = torch.stack([s.frames for s in samples])
        out[name] = pred
        p, e, h = pred.flatten(0, 1), exact.flatten(0, 1), holes.flatten(0, 1)
        metrics[name] = {"all": {"psnr": float(psnr(p, e).mean()), "ssim": float(ssim(p, e)), "pixels": h.numel()},
                         "visible": masked_scores(p, e, h < 0.5), "holes": masked_scores(p, e, h > 0.5),
                         "seconds": secs}
    return TeacherComparison(metrics, out)


def holes_table(results: Mapping[str, Mapping[str, Any]], reference: str = "cache",
                candidate: str = "diffusion") -> tuple[str, bool]:
    """A Markdown table of several worlds' :attr:`TeacherComparison.metrics` (world name -> metrics), one row per
    world and generator (all / visible / holes as PSNR dB / SSIM), and whether ``candidate`` beats ``reference``
    inside the holes on both PSNR and SSIM on every world (other rows, such as a :class:`SampleMean`, are shown)."""
    lines = ["| world | generator | all | visible | holes |", "|---|---|---|---|---|"]
    beats = True
    for world, metrics in results.items():
        ref, cand = metrics[reference]["holes"], metrics[candidate]["holes"]
        for name, m in metrics.items():
            cells = [f"{m[k]['psnr']:.2f} / {m[k]['ssim']:.3f}" for k in ("all", "visible", "holes")]
            lines.append(f"| {world} | {name} | " + " | ".join(cells) + " |")
        beats &= cand["psnr"] > ref["psnr"] and cand["ssim"] > ref["ssim"]
    return "\n".join(lines) + "\n", beats
