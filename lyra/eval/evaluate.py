"""Evaluation of a trained decoder on held-out SDG scenes (method §10, with an exact ground truth added).

Per held-out scene (the test split by scene key, the same rule as training), all trajectories are decoded
twice: **fusion on** (the V trajectories' tokens form one sequence, the method's inference) and **fusion off**
(each trajectory decoded alone, the per-trajectory Gaussian sets merged afterwards). Each merged set is
rendered

* at every ``stride``-th frame of every trajectory and compared with the teacher frames (decoded mp4), and
* for SDG data from procedural worlds (``flag/<key>.world.json``), at cameras that lie off every trajectory
  (midpoints of two trajectories at the same frame, looking at the trajectories' look-at point) and compared
  with the world rendered exactly there.

The teacher frames themselves are also compared with the exact world renders at the trajectory cameras,
which bounds what the decoder can reach against ground truth through the tokenizer.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lyra.cameras import Cameras, look_at
from lyra.data.layout import DataError
from lyra.decoder import LyraDecoder
from lyra.eval.metrics import LPIPSVGG, psnr, ssim
from lyra.render import RenderOptions
from lyra.train.conditioning import ConditioningCache
from lyra.train.render_loss import render_views
from lyra.utils.inputs import read_json

# trajectory pairs (folder indices, method §8.1) whose midpoints give off-trajectory cameras:
# left+up, right+up, left+zoom-out, right+zoom-in, up+spiral
OFF_PAIRS: tuple[tuple[int, int], ...] = ((0, 2), (1, 2), (0, 3), (1, 4), (2, 5))


@dataclass
class EvalConfig:
    """One evaluation run.

    Attributes:
        data: SDG dataset folder.
        decoder: decoder folder (config.json + model.safetensors; a training checkpoint works too).
        tokenizer: "shipped" or a tokenizer folder (must be the one the data were written with).
        split: "test" (held out by key, ``num_test_scenes`` last keys) or "all".
        num_test_scenes, split_method, test_fraction: must equal the training run's data settings.
        stride: every stride-th frame of each trajectory is a target (frame 0 included).
        max_scenes: evaluate at most this many scenes (None: all).
        off_trajectory: also evaluate against exact world renders at off-trajectory cameras.
        fusion: evaluate "on", "off" or both ("both").
        lpips_weights: local LPIPS files (metric reported when given).
        stats: latent statistics file (None: the dataset's).
        render: rasterizer options (white background as in training).
        threads: torch threads (0: default).
    """

    data: str = ""
    decoder: str = "shipped"
    tokenizer: str = "shipped"
    split: str = "test"
    num_test_scenes: int = 8
    split_method: str = "last"
    test_fraction: float = 0.05
    stride: int = 4
    max_scenes: int | None = None
    off_trajectory: bool = True
    fusion: str = "both"
    lpips_weights: str | None = None
    stats: str | None = None
    near: float = 0.1
    far: float = 500.0
    mode: str = "classic"
    backend: str = "auto"
    background: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    threads: int = 0


def load_decoder(spec: str | os.PathLike, device: torch.device | str = "cpu") -> LyraDecoder:
    """The shipped pocket decoder (``"shipped"``) or one from a folder (pretrained or a training checkpoint-* /
    final folder); see :func:`lyra.pipelines.load_decoder`."""
    from lyra.pipelines.image_to_3d import load_decoder as load

    return load(spec, device=device)


def off_trajectory_cameras(trajs: list[Cameras], stride: int, center_depth: float = 1.0,
                           pairs: tuple[tuple[int, int], ...] = OFF_PAIRS) -> Cameras:
    """Cameras at midpoints of two trajectories' centres at the same frame, looking at (0, 0, center_depth).

    Frame 0 is skipped (every trajectory starts at the source camera). Coordinates are those of ``trajs``
    (the SDG world frame, whose source camera is the identity).
    """
    out = []
    n = len(trajs[0])
    target = torch.tensor([0.0, 0.0, center_depth])
    for a, b in pairs:
        if max(a, b) >= len(trajs):
            continue
        frames = list(range(stride, n, stride)) or [n - 1]
        eye = 0.5 * (trajs[a].centers[frames] + trajs[b].centers[frames])
        w2c = look_at(eye, target)
        out.append(Cameras(w2c, trajs[a].K[frames], trajs[a].height, trajs[a].width))
    if not out:
        raise ValueError("off_trajectory_cameras: no trajectory pair available")
    return Cameras.cat(out)


def image_metrics(pred: Tensor, target: Tensor, lpips: LPIPSVGG | None = None) -> dict[str, list[float]]:
    """Per-image PSNR, SSIM (and LPIPS) of [N, 3, H, W] images in [0, 1]."""
    pred, target = pred.float().clamp(0, 1), target.float().clamp(0, 1)
    out = {"psnr": psnr(pred, target).tolist(), "ssim": ssim(pred, target, reduction="none").tolist()}
    if lpips is not None:
        with torch.no_grad():
            out["lpips"] = torch.cat([lpips(pred[i : i + 8], target[i : i + 8])
                                      for i in range(0, len(pred), 8)]).tolist()
    return out


@torch.no_grad()
def decode_scene(model: LyraDecoder, cond: ConditioningCache, latents: Tensor, trajs: list[Cameras], fused: bool
                 ) -> Tensor:
    """[M, 14] Gaussian records of one scene: one joint forward (fused) or one forward per trajectory, merged."""
    V = len(trajs)
    T_l = latents.shape[0] // V
    dev = model.device
    if fused:
        pl, ro, rd = cond.sample(trajs)
        return model(latents[None].to(dev), pl.to(dev), ro.to(dev), rd.to(dev), num_views=V).records[0]
    parts = []
    for v in range(V):
        pl, ro, rd = cond.sample([trajs[v]])
        z = latents[v * T_l : (v + 1) * T_l]
        parts.append(model(z[None].to(dev), pl.to(dev), ro.to(dev), rd.to(dev), num_views=1).records[0])
    return torch.cat(parts)


def _mean(d: dict[str, list[float]]) -> dict[str, float]:
    return {k: float(np.mean(v)) for k, v in d.items() if v}


def evaluate(cfg: EvalConfig, model: LyraDecoder | None = None, tokenizer: Any = None,
             progress: bool = True) -> dict[str, Any]:
    """Run the evaluation; returns the report dictionary (per scene and overall means)."""
    from tqdm import tqdm

    from lyra.data import ReaderConfig, SamplePlan, SamplingConfig, SceneDataset
    from lyra.world import World

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    model = model if model is not None else load_decoder(cfg.decoder)
    if tokenizer is None:
        from lyra.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(cfg.tokenizer)
    cond = ConditioningCache(tokenizer)
    lpips = LPIPSVGG.from_files(cfg.lpips_weights) if cfg.lpips_weights else None
    rc = ReaderConfig(sampling=SamplingConfig(mode="latent"), split_method=cfg.split_method,  # type: ignore[arg-type]
                      num_test_scenes=cfg.num_test_scenes, test_fraction=cfg.test_fraction,
                      load_depth=False, relative_poses=False, stats=cfg.stats)
    ds = SceneDataset(cfg.data, rc, split=cfg.split)  # type: ignore[arg-type]
    keys = ds.keys[: cfg.max_scenes] if cfg.max_scenes else ds.keys
    center_depth = 1.0
    if ds.layout.run_path.is_file():
        run = read_json(ds.layout.run_path, "SDG run file", DataError).get("config", {})
        center_depth = float(run.get("center_depth", 1.0)) if isinstance(run, dict) else 1.0
    opts = RenderOptions(near=cfg.near, far=cfg.far, mode=cfg.mode, backend=cfg.backend)  # type: ignore[arg-type]
    bg = torch.tensor(cfg.background, dtype=torch.float32)
    fusions = {"both": [True, False], "on": [True], "off": [False]}[cfg.fusion]
    scenes: list[dict[str, Any]] = []
    for key in tqdm(keys, desc="eval", unit="scene", disable=not progress):
        views = ds.views
        n = ds.num_frames(key, views[0])
        frames = list(range(0, n, cfg.stride))
        plan = SamplePlan(list(views), list(range(n)), [(v, f) for v in views for f in frames])
        s = ds.load(key, plan=plan)
        trajs = s.cameras_input
        row: dict[str, Any] = {"key": key, "views": len(views), "frames": n, "targets": len(s.cameras_target)}
        world = None
        if cfg.off_trajectory and ds.layout.world_path(key).is_file():
            world = World.load_json(ds.layout.world_path(key))
            gt_on = world.render(s.cameras_target).rgb
            row["teacher_vs_gt"] = _mean(image_metrics(s.images_target, gt_on, lpips))
            off = off_trajectory_cameras(trajs, cfg.stride, center_depth)
            gt_off = world.render(off).rgb
            row["off_cameras"] = len(off)
        for fused in fusions:
            tag = "fusion_on" if fused else "fusion_off"
            rec = decode_scene(model, cond, s.latents, trajs, fused).float().cpu()
            r = render_views(rec, s.cameras_target, bg, opts)
            res = {"gaussians": int(rec.shape[0]), "vs_teacher": _mean(image_metrics(r.rgb, s.images_target, lpips))}
            if world is not None:
                res["vs_gt_on_trajectory"] = _mean(image_metrics(r.rgb, gt_on, lpips))
                r_off = render_views(rec, off, bg, opts)
                res["vs_gt_off_trajectory"] = _mean(image_metrics(r_off.rgb, gt_off, lpips))
            row[tag] = res
        scenes.append(row)
    summary: dict[str, Any] = {}
    for tag in ("fusion_on", "fusion_off"):
        if tag not in scenes[0]:
            continue
        summary[tag] = {}
        for part in ("vs_teacher", "vs_gt_on_trajectory", "vs_gt_off_trajectory"):
            vals = [sc[tag][part] for sc in scenes if part in sc[tag]]
            if vals:
                summary[tag][part] = {m: float(np.mean([v[m] for v in vals])) for m in vals[0]}
    tv = [sc["teacher_vs_gt"] for sc in scenes if "teacher_vs_gt" in sc]
    if tv:
        summary["teacher_vs_gt"] = {m: float(np.mean([v[m] for v in tv])) for m in tv[0]}
    return {"config": asdict(cfg), "decoder_parameters": model.num_parameters(), "num_scenes": len(scenes),
            "seconds": time.perf_counter() - t0, "summary": summary, "scenes": scenes}
