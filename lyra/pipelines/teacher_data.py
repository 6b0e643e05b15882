"""Training data of the pocket diffusion teacher (``lyra teacher data``): procedural worlds -> per trajectory the
diffusion-space latents of the exact renders (the target) and of the source view's warped 3D cache (the condition).

Per scene (the same worlds, trajectories and seeds as ``lyra sdg``): the world is rendered exactly along the six
method trajectories, the source view (the first camera's exact image and depth) is lifted and forward-warped into
every camera (:meth:`lyra.generator.cache.CacheGenerator.warp`: the raw warp, holes black, and its coverage mask), and
the tokenizer encodes the exact frames, the warp and the mask (:func:`lyra.generator.diffusion.encode_video`,
:func:`~lyra.generator.diffusion.conditioning.encode_cache`). One ``<key>.npz`` per scene, written atomically
(resumable), read by :class:`lyra.data.teacher.TeacherDataset`. The target's first latent frame is the first-frame
condition (the causal encoder makes latent 0 depend on pixel frame 0 alone, and every trajectory starts at the source
view), so no separate condition clip is stored.

Orchestration above the generators and the data reader: imports flow one way, as in :mod:`lyra.pipelines.sdg`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lyra.data.layout import DataError
from lyra.data.teacher import META_NAME, scene_file
from lyra.pipelines.sdg import SDGConfig, check_world_options, run_scenes, scene_seed
from lyra.utils.files import atomic_write
from lyra.utils.inputs import read_json


@dataclass
class TeacherDataConfig(SDGConfig):
    """One ``lyra teacher data`` run: the worlds, trajectories and cameras of :class:`SDGConfig` (``generator`` is
    unused: the targets are always exact renders) at the pocket-v2 setting, plus:

    Attributes:
        edge_threshold: relative depth jump dropped from the cache (as the ``cache``/``diffusion`` generators).
        cache_fill: the cache renders' holes: ``"black"`` (official) or ``"inpaint"`` (push-pull filled); a network
            trained on the data takes this as its ``Gen3CNetConfig.cache_fill``.
    """

    frames: int = 49
    height: int = 176
    width: int = 320
    tokenizer: str = "pocket-v2"
    edge_threshold: float = 0.05
    cache_fill: str = "black"

    def __post_init__(self) -> None:
        from lyra.generator.diffusion.config import CACHE_FILLS

        if self.cache_fill not in CACHE_FILLS:
            raise DataError(f"cache_fill must be one of {', '.join(CACHE_FILLS)}, got {self.cache_fill!r}")


def _check_resume(out: Path, cfg: TeacherDataConfig) -> None:
    meta = out / META_NAME
    if meta.is_file():
        old = read_json(meta, "teacher data run file", DataError).get("config", {})
        old.pop("scenes", None)
        old.setdefault("cache_fill", "black")  # folders made before the option
        if old != cfg.identity():
            diff = sorted(k for k in set(old) | set(cfg.identity()) if old.get(k) != cfg.identity().get(k))
            raise DataError(out, f"holds teacher data made with other settings ({', '.join(diff)}); use a new folder")


def encode_scene(world: Any, tokenizer: Any, cfg: TeacherDataConfig, seed: int) -> dict[str, np.ndarray]:
    """One scene's arrays: ``target`` [N, C, T_l, h, w] and ``cache`` [N, 2C, T_l, h, w] (float16, diffusion space),
    ``holes`` [N] (fraction of pixels the cache does not cover)."""
    from lyra.cameras import default_intrinsics, method_trajectories
    from lyra.generator import CacheGenerator, OracleGenerator
    from lyra.generator.diffusion.conditioning import encode_cache, encode_video

    K = default_intrinsics(cfg.height, cfg.width, cfg.fov_x_deg)
    trajs = method_trajectories(K, cfg.height, cfg.width, cfg.frames, center_depth=cfg.center_depth,
                                movement_factor=cfg.movement_factor, seed=seed)
    oracle = OracleGenerator(world, tokenizer, supersample=cfg.supersample)
    source = oracle.render_source(trajs[0][0])
    warped = CacheGenerator(tokenizer, edge_threshold=cfg.edge_threshold).warp(trajs, source)
    targets, caches, holes = [], [], []
    with torch.no_grad():
        for cams, w in zip(trajs, warped, strict=True):
            exact = world.render(cams, 0.0, supersample=cfg.supersample).rgb  # [T, 3, H, W]
            targets.append(encode_video(tokenizer, exact)[0])
            caches.append(encode_cache(tokenizer, w.frames[None], w.mask[None], buffers=1, fill=cfg.cache_fill)[0])
            holes.append(float(1 - (w.mask > 0.5).float().mean()))
    return {"target": torch.stack(targets).half().numpy(), "cache": torch.stack(caches).half().numpy(),
            "holes": np.asarray(holes, np.float32)}


def _save_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:  # a file object: np.savez would append ".npz" to a temporary name
        np.savez(fh, **arrays)


def build_teacher_data(cfg: TeacherDataConfig, out: str | os.PathLike, tokenizer: Any, *,
                       progress: bool = True) -> dict[str, Any]:
    """Write ``cfg.scenes`` scenes into ``out`` (complete scenes are skipped); returns keys written, skipped and
    seconds per written scene."""
    from lyra.world import generate_world

    check_world_options(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_resume(out, cfg)
    atomic_write(out / META_NAME, lambda p: Path(p).write_text(json.dumps(
        {"config": asdict(cfg), "latent_channels": tokenizer.latent_channels}, indent=1) + "\n"))

    def make(i: int, key: str) -> None:
        s = scene_seed(cfg.seed, i)
        arrays = encode_scene(generate_world(s, cfg.kind, photos=cfg.photos), tokenizer, cfg, s)  # type: ignore[arg-type]
        atomic_write(scene_file(out, key), lambda p: _save_npz(p, arrays))

    return run_scenes(cfg.scenes, cfg.seed, "teacher data", lambda key: scene_file(out, key).is_file(), make, progress)
