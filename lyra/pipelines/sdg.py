"""SDG run: procedural scenes -> a generator's multi-trajectory samples -> files in the official layout, resumable.

The orchestration above both the generators (:mod:`lyra.generator`) and the dataset layout (:mod:`lyra.data`):
it builds each scene's world and trajectories, asks the chosen generator for its samples and hands them to
:func:`lyra.data.writer.write_scene`. Imports flow one way: this module imports both; ``lyra.data`` never imports a
generator.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lyra.data.exr import require_openexr
from lyra.data.layout import DataError, Layout
from lyra.data.reader import load_latent_stats
from lyra.data.writer import WriteOptions, json_atomic, save_latent_stats, scene_complete, write_scene
from lyra.utils.inputs import read_json
from lyra.utils.shipped import DEFAULT


@dataclass
class SDGConfig:
    """A synthetic-data-generation run (``lyra sdg``).

    Attributes:
        scenes: number of scenes (keys ``scene_<seed>_<i>``).
        seed: base seed; scene i uses a seed derived from (seed, i) for its world and trajectory distances.
        frames: frames per trajectory (1 + 8k).
        height, width: image size in pixels (multiples of the tokenizer's size multiple).
        kind: procedural world kind (``lyra.world.WORLD_KINDS``): room, yard, photo, random (room or yard) or
            mix (room, yard and photo worlds in fixed shares by scene seed: the training default).
        photos: the photos photo worlds show: "train" or "heldout" (evaluation data).
        generator: generator backend name (``lyra.generator.GENERATORS``).
        world: world source ("procedural").
        tokenizer: "shipped" or a tokenizer folder.
        fov_x_deg: horizontal field of view of the source camera.
        movement_factor: multiplies every trajectory's movement distance.
        center_depth: look-at depth of the trajectories (scene units).
        supersample: s x s rays per pixel, box-averaged, for the RGB of exact world renders (the oracle's frames,
            the source view); depth stays the pixel-centre ray. 2 anti-aliases photo textures at the pocket size.
    """

    scenes: int = 1
    seed: int = 0
    frames: int = DEFAULT.frames
    height: int = DEFAULT.height
    width: int = DEFAULT.width
    kind: str = "mix"
    photos: str = "train"
    generator: str = "oracle"
    world: str = "procedural"
    tokenizer: str = "shipped"
    fov_x_deg: float = 60.0
    movement_factor: float = 1.0
    center_depth: float = 1.0
    supersample: int = 1

    def identity(self) -> dict[str, Any]:
        """The fields that must match when resuming into an existing folder (everything but ``scenes``)."""
        d = asdict(self)
        d.pop("scenes")
        return d


def scene_seed(seed: int, index: int) -> int:
    """A per-scene seed from the run seed and the scene index (stable across platforms)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(1)[0])


def scene_key(seed: int, index: int) -> str:
    return f"scene_{seed}_{index:05d}"


def _check_resume(layout: Layout, cfg: SDGConfig, mean: Tensor, std: Tensor) -> None:
    if layout.run_path.is_file():
        old = read_json(layout.run_path, "SDG run file", DataError).get("config", {})
        if not isinstance(old, dict):
            raise DataError(layout.run_path, "'config' must be an object")
        dynamic = bool(getattr(cfg, "dynamic", False))
        if bool(old.get("dynamic")) != dynamic:
            held = "a dynamic SDG run (lyra sdg --dynamic)" if old.get("dynamic") else "a static SDG run"
            raise DataError(f"{layout.root} holds {held}; use another --out folder")
        old.pop("scenes", None)
        # a field the folder's run predates counts as its default (the run was made without it)
        defaults = type(cfg)().identity()
        diff = {k: (old.get(k, defaults[k]), v) for k, v in cfg.identity().items() if old.get(k, defaults[k]) != v}
        if diff:
            raise DataError(f"{layout.root} holds an SDG run with other settings {diff} (old, new); "
                            "use another --out folder")
    if layout.stats_path.is_file():
        old_mean, old_std = load_latent_stats(layout.stats_path)
        same = (old_mean.shape == mean.shape and torch.allclose(old_mean, mean, atol=1e-6)
                and torch.allclose(old_std, std, atol=1e-6))
        if not same:
            raise DataError(f"{layout.stats_path}: latent statistics differ from this tokenizer's; "
                            "the folder was written with another tokenizer (use another --out folder)")


def start_run(cfg: SDGConfig, out: str | os.PathLike, tokenizer, layout_note: str) -> Layout:
    """Check the tokenizer, OpenEXR and a resumed folder's settings; write the latent statistics and the run file.

    Shared by the static and the dynamic run (``cfg.dynamic``). Returns the dataset layout.
    """
    tokenizer.check_video_shape((1, 3, cfg.frames, cfg.height, cfg.width))
    require_openexr()  # depth zips; fail before any work
    layout = Layout(out)
    mean = tokenizer.latents_mean.detach().float().cpu()
    std = tokenizer.latents_std.detach().float().cpu()
    _check_resume(layout, cfg, mean, std)
    layout.extra.mkdir(parents=True, exist_ok=True)
    if not layout.stats_path.is_file():
        save_latent_stats(layout.stats_path, mean, std)
    json_atomic(layout.run_path, {"format": "lyra-sdg", "version": 1, "config": asdict(cfg), "layout": layout_note})
    return layout


def check_world_options(cfg: Any) -> None:
    """DataError unless ``cfg``'s world, kind, photos and supersample fields are valid (static and dynamic runs)."""
    from lyra.world import WORLD_KINDS

    if cfg.world != "procedural":
        raise DataError(f"unknown world source {cfg.world!r} (available: procedural)")
    if cfg.kind not in WORLD_KINDS:
        raise DataError(f"world kind must be one of {', '.join(WORLD_KINDS)}, got {cfg.kind!r}")
    if cfg.photos not in ("train", "heldout"):
        raise DataError(f"photos must be train or heldout, got {cfg.photos!r}")
    if not isinstance(cfg.supersample, int) or cfg.supersample < 1:
        raise DataError(f"supersample must be an integer >= 1, got {cfg.supersample!r}")


def run_scenes(scenes: int, seed: int, desc: str, complete: Callable[[str], bool], make: Callable[[int, str], None],
               progress: bool = True) -> dict[str, Any]:
    """The resumable loop of a scene run: scene i (key ``scene_key(seed, i)``) is skipped when ``complete(key)``,
    else made by ``make(i, key)`` (which writes it). Returns keys written and skipped and seconds per written scene."""
    from tqdm import tqdm

    written, skipped, seconds = [], [], []
    bar = tqdm(range(scenes), desc=desc, unit="scene", disable=not progress)
    for i in bar:
        key = scene_key(seed, i)
        if complete(key):
            skipped.append(key)
            continue
        t0 = time.perf_counter()
        make(i, key)
        seconds.append(time.perf_counter() - t0)
        written.append(key)
        bar.set_postfix(s_per_scene=f"{np.mean(seconds):.1f}")
    return {"written": written, "skipped": skipped, "seconds_per_scene": float(np.mean(seconds)) if seconds else 0.0}


def run_sdg(cfg: SDGConfig, out: str | os.PathLike, tokenizer, *, options: WriteOptions | None = None,
            progress: bool = True, generator_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Generate ``cfg.scenes`` scenes into ``out`` (resumable: complete scenes are skipped).

    Returns a summary: keys written and skipped, seconds per written scene.
    """
    from lyra.cameras import METHOD_TRAJECTORIES, default_intrinsics, method_trajectories
    from lyra.generator import GENERATORS, GeneratorError, OracleGenerator, make_generator
    from lyra.world import generate_world

    if cfg.generator not in GENERATORS:
        raise GeneratorError(f"unknown generator {cfg.generator!r}; available: {', '.join(sorted(GENERATORS))}")
    check_world_options(cfg)
    layout = start_run(cfg, out, tokenizer, "official (method.md §8.1)")
    K = default_intrinsics(cfg.height, cfg.width, cfg.fov_x_deg)

    def make(i: int, key: str) -> None:
        s = scene_seed(cfg.seed, i)
        world = generate_world(s, cfg.kind, photos=cfg.photos)  # type: ignore[arg-type]
        trajs = method_trajectories(K, cfg.height, cfg.width, cfg.frames, center_depth=cfg.center_depth,
                                    movement_factor=cfg.movement_factor, seed=s)
        exact = {"supersample": cfg.supersample} if cfg.generator == "oracle" else {}
        gen = make_generator(cfg.generator, world=world, tokenizer=tokenizer, **exact, **(generator_options or {}))
        # the source view of a scene is the exact render of its world at the first camera
        source = (OracleGenerator(world, tokenizer, supersample=cfg.supersample).render_source(trajs[0][0])
                  if gen.needs_source else None)
        samples = gen.generate(trajs, source, seed=s)
        meta = {"index": i, "scene_seed": s, "world_kind": world.kind, "photos": cfg.photos, "generator": cfg.generator,
                "frames": cfg.frames, "height": cfg.height, "width": cfg.width,
                "trajectories": [t.kind for t in METHOD_TRAJECTORIES]}
        write_scene(layout, key, samples, tokenizer.normalize_latents, options=options, meta=meta,
                    world_json=world.to_dict())

    return run_scenes(cfg.scenes, cfg.seed, "sdg", lambda key: scene_complete(layout, key), make, progress)
