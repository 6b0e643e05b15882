"""The video → 4D evaluation protocol (issue 11): held-out moving worlds, exact ground truth at cameras off every
trajectory, at the video's frame times and at held-out times between them.

Per world (``generate_world(seed, kind, moving=True)``, seeds that no training run uses): the source video from the
static origin camera (T frames, frame i at time t_i = i/(T−1)) and the six method trajectories anchored on it, frame
i of each showing time t_i, made by ``teacher`` exactly as ``lyra sdg --dynamic`` makes folders 0–5 (``cache``, the
default: the 4D cache of the video, frame i warped from source frame i, i.e. only what the video saw; ``oracle``:
exact renders). Novel cameras: :func:`lyra.eval.evaluate.off_trajectory_cameras` (midpoints of trajectory pairs,
every ``stride``-th frame), all of them at every evaluated time. Evaluated times: ``seen`` (frame times t_i,
i ∈ ``eval_frames``, default 2, 6, 10, 14 of 17) and ``held-out`` ((i + ½)/(T−1): no video frame shows them).
Ground truth: ``world.render(cameras, t)``.

Methods:

* ``dynamic``: the time-conditioned decoder at time t on all frames of the six trajectories (the method);
* ``static_per_frame``: the static method on the source frame nearest to t as a still image: the same teacher
  makes the six trajectories of that frozen instant (``cache``: source frame i warped along them, as ``lyra generate``
  does for a photo; ``oracle``: the world frozen at t_i rendered along them), the static decoder reads them (the
  baseline);
* ``static_whole``: the static decoder on the whole trajectories (all times mixed into one scene).

Opacity statistics of the dynamic decoder's Gaussians (mean, fraction above 0.1 and 0.5, before pruning) are
reported per world: they show whether a decoder trained without flipped supervision collapses.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lyra.cameras import Cameras
from lyra.decoder import LyraDecoder, records_to_gaussians
from lyra.eval.evaluate import image_metrics, load_decoder, off_trajectory_cameras
from lyra.render import RenderOptions, rasterize
from lyra.train.conditioning import ConditioningCache

METHODS = ("dynamic", "static_per_frame", "static_whole")


def _render(records: Tensor, cams: Cameras, options: RenderOptions) -> Tensor:
    return rasterize(records_to_gaussians(records.float()), cams, torch.ones(3), options=options).rgb


@torch.no_grad()
def _decode(model: LyraDecoder, cond: ConditioningCache, latents: Sequence[Tensor], trajs: Sequence[Cameras],
            time_cond: Tensor | None = None, prune: float | None = None) -> Tensor:
    """[M, 14] records of V trajectories (``latents``: V × [C, T_l, h, w] raw) fused in one forward."""
    z = torch.cat([lat.permute(1, 0, 2, 3) for lat in latents])[None]
    pl, ro, rd = cond.sample(list(trajs))
    return model(z, pl, ro, rd, num_views=len(trajs), time=time_cond, prune_ratio=prune).records[0]


def opacity_stats(records: Tensor) -> dict[str, float]:
    """Mean activated opacity and the fractions of Gaussians above 0.1 and 0.5 (records [M, 14], column 3)."""
    o = records[:, 3].float()
    return {"mean": float(o.mean()), "above_0.1": float((o > 0.1).float().mean()),
            "above_0.5": float((o > 0.5).float().mean())}


@torch.no_grad()
def evaluate_world(seed: int, dynamic: LyraDecoder, static: LyraDecoder | None, tokenizer: Any, *,
                   kind: str = "mix", frames: int = 17, height: int = 64, width: int = 112, stride: int = 4,
                   eval_frames: Sequence[int] | None = None, prune: float | None = None,
                   teacher: str = "cache") -> dict[str, Any]:
    """The protocol on one held-out world; returns per method and time group the mean PSNR/SSIM, plus opacities."""
    from lyra.pipelines.sdg_dynamic import DynamicSDGConfig, generate_dynamic_scene
    from lyra.pipelines.video4d import frozen_instant

    if not dynamic.config.use_time:
        raise ValueError("the dynamic decoder must be time-conditioned (config use_time)")
    cfg = DynamicSDGConfig(scenes=1, seed=seed, frames=frames, height=height, width=width, kind=kind, flip=False,
                           generator=teacher)
    scene = generate_dynamic_scene(cfg, tokenizer, 0)
    world, trajs = scene.world, [t.cameras for t in scene.trajectories]
    latents = [t.latents for t in scene.trajectories]
    cond = ConditioningCache(tokenizer)
    cams = off_trajectory_cameras(trajs, stride)
    options = RenderOptions(near=0.1, far=500.0, backend="cpu")
    times_in = scene.source.times.float()
    T = frames
    if eval_frames is None:  # four frames at the middles of the quarters: (2, 6, 10, 14) of 17
        eval_frames = [(T - 1) * (2 * k + 1) // 8 for k in range(4)]
    groups = {"seen": [i / (T - 1) for i in eval_frames], "held-out": [(i + 0.5) / (T - 1) for i in eval_frames]}
    whole = _decode(static, cond, latents, trajs, prune=prune) if static is not None else None
    scores: dict[str, dict[str, dict[str, list[float]]]] = {m: {g: {"psnr": [], "ssim": []} for g in groups}
                                                             for m in METHODS}
    opac = []
    for group, ts in groups.items():
        for t in ts:
            gt = world.render(cams, float(t)).rgb
            tc = cond.time(times_in, t, height, width)
            rec_all = _decode(dynamic, cond, latents, trajs, tc, prune=0.0)
            opac.append(opacity_stats(rec_all))
            rec = rec_all if prune == 0.0 else _decode(dynamic, cond, latents, trajs, tc, prune=prune)
            preds = {"dynamic": _render(rec, cams, options)}
            if static is not None:
                i = int(round(t * (T - 1)))  # the source frame nearest to t, as a still image
                frozen = frozen_instant(world, scene.source, i, trajs, tokenizer, teacher)
                preds["static_per_frame"] = _render(_decode(static, cond, frozen, trajs, prune=prune), cams, options)
                preds["static_whole"] = _render(whole, cams, options)
            for m, p in preds.items():
                im = image_metrics(p, gt)
                scores[m][group]["psnr"] += im["psnr"]
                scores[m][group]["ssim"] += im["ssim"]
    out: dict[str, Any] = {"seed": seed, "kind": world.kind, "teacher": teacher, "cameras": len(cams), "times": groups,
                           "opacity": {k: float(np.mean([o[k] for o in opac])) for k in opac[0]}}
    for m in METHODS:
        if scores[m]["seen"]["psnr"]:
            out[m] = {g: {k: float(np.mean(v)) for k, v in d.items()} for g, d in scores[m].items()}
    return out


def summarize(worlds: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over worlds per method and time group."""
    out: dict[str, Any] = {}
    for m in METHODS:
        rows = [w[m] for w in worlds if m in w]
        if rows:
            out[m] = {g: {k: float(np.mean([r[g][k] for r in rows])) for k in ("psnr", "ssim")} for g in rows[0]}
    out["opacity"] = {k: float(np.mean([w["opacity"][k] for w in worlds])) for k in worlds[0]["opacity"]}
    return out


def main(argv: list[str] | None = None) -> int:
    from lyra.tokenizer import load_tokenizer

    p = argparse.ArgumentParser(prog="python -m lyra.eval.dynamic", description=__doc__.split("\n\n")[0])
    p.add_argument("--decoder", required=True, help="time-conditioned decoder folder (a dynamic stage's checkpoint)")
    p.add_argument("--static-decoder", default="pocket-v1", help="static decoder of the baselines (default pocket-v1; "
                   "'none' skips them)")
    p.add_argument("--tokenizer", default="pocket-v1", help="tokenizer (default pocket-v1)")
    p.add_argument("--seeds", type=int, nargs="+", default=[9000, 9001, 9002, 9003, 9004],
                   help="held-out world seeds (default 9000-9004)")
    p.add_argument("--kind", default="mix", help="world kind (default mix)")
    p.add_argument("--teacher", default="cache", choices=("cache", "oracle"),
                   help="what makes the trajectories: cache (the video's 4D cache, default) or oracle (exact renders)")
    p.add_argument("--prune", type=float, default=None, help="prune ratio (default: each decoder's own)")
    p.add_argument("--frames", type=int, default=17, help="video frames (default 17)")
    p.add_argument("--height", type=int, default=64, help="height (default 64)")
    p.add_argument("--width", type=int, default=112, help="width (default 112)")
    p.add_argument("--threads", type=int, default=0, help="torch threads")
    p.add_argument("--out", help="write the report (JSON) here")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    tok = load_tokenizer(a.tokenizer).eval()
    dyn = load_decoder(a.decoder).eval()
    static = None if a.static_decoder == "none" else load_decoder(a.static_decoder).eval()
    t0 = time.perf_counter()
    worlds = []
    for s in a.seeds:
        w = evaluate_world(s, dyn, static, tok, kind=a.kind, prune=a.prune, teacher=a.teacher, frames=a.frames,
                           height=a.height, width=a.width)
        worlds.append(w)
        line = "  ".join(f"{m} {w[m]['seen']['psnr']:.2f}/{w[m]['seen']['ssim']:.3f} held-out "
                         f"{w[m]['held-out']['psnr']:.2f}/{w[m]['held-out']['ssim']:.3f}" for m in METHODS if m in w)
        print(f"seed {s} ({w['kind']}): {line}  opacity mean {w['opacity']['mean']:.3f}", flush=True)
    report = {"decoder": a.decoder, "static_decoder": a.static_decoder, "tokenizer": a.tokenizer, "kind": a.kind,
              "teacher": a.teacher,
              "seeds": a.seeds, "worlds": worlds, "mean": summarize(worlds), "seconds": time.perf_counter() - t0}
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(report, fh, indent=1)
    print(json.dumps(report["mean"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
