"""Dynamic SDG (``lyra sdg --dynamic``): moving procedural worlds -> a source video and 12 time-aligned trajectories.

What the official dynamic SDG produces (sdg.md §5, method.md §8.1), with a procedural world in place of ViPE + GEN3C:

* a **source video** of T frames from a static or slowly moving camera (per-frame exact RGB, z-depth, pose and
  intrinsics), frame i at scene time t_i = i / (T - 1); written in ViPE's layout under ``flag/source/``;
* folders **0-5**: the six trajectories of the method anchored on the per-frame source camera
  (``w2c_v,i = M_v,i @ w2c_src,i``, sdg.md §5.3); frame i shows scene time t_i from that camera;
* folders **6-11** (``flip``): the same six trajectories generated on the **time-reversed** source video (fresh
  distances, anchored on the original last frame: ``gen_i = M'_v,i @ w2c_src,T-1-i`` at time t_(T-1-i)) and flipped
  back to the original time order. Unlike the official script, the stored poses are flipped with the frames: frame
  i of folder 6+v shows time t_i from camera ``M'_v,T-1-i @ w2c_src,i`` and ``pose[i]`` is that camera. The latents
  stay in generation (reversed) order, as NVIDIA stores them; the done marker lists those folders
  (``latents_reversed``) and the reader refuses them as latent inputs.

Teachers: ``oracle`` (exact ray-cast renders of the world at each frame's time and camera, round-tripped through
the tokenizer) and ``cache`` (the 4D cache of sdg.md §5.2: frame i is forward-warped from source frame i only,
holes inpainted, round-tripped).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lyra.cameras import Cameras
from lyra.data.layout import DataError
from lyra.data.writer import WriteOptions, scene_complete, write_scene, write_source
from lyra.pipelines.sdg import SDGConfig, run_scenes, scene_seed, start_run

FLIP_OFFSET = 6  # folder of the flipped twin of trajectory v: v + 6
SOURCE_MOTIONS = ("static", "slow")
DYNAMIC_GENERATORS = ("oracle", "cache")
SLOW_DRIFT = (0.05, 0.15)  # source camera drift over the clip (scene units, uniform)
SLOW_YAW_DEG = 5.0  # source camera turn over the clip (degrees, uniform in +-)


@dataclass
class DynamicSDGConfig(SDGConfig):
    """A dynamic synthetic-data-generation run: the fields of :class:`SDGConfig` (worlds are generated with moving
    objects) plus:

    Attributes:
        source_motion: "static" (the source camera stays at the origin) or "slow" (it drifts 5-15 cm sideways or
            forward and turns by up to 5 degrees, linearly over the clip).
        flip: also write the time-reversed supervision (folders 6-11).
        dynamic: marks the run file of a dynamic dataset (always True).
    """

    source_motion: str = "static"
    flip: bool = True
    dynamic: bool = field(default=True, init=False)


@dataclass
class SourceVideo:
    """The source video of a dynamic scene.

    Attributes:
        frames: [T, 3, H, W] float32 in [0, 1] (exact renders).
        depth: [T, 1, H, W] float32 z-depth (0 = sky).
        cameras: T per-frame cameras.
        times: [T] float64 scene times (the world's normalised time).
    """

    frames: Tensor
    depth: Tensor
    cameras: Cameras
    times: Tensor


@dataclass
class DynamicTrajectory:
    """One written trajectory folder, in stored (original time) order.

    Attributes:
        frames: [T, 3, H, W] the teacher's (decoded) frames; frame i shows scene time ``times[i]``.
        latents: [C, T_l, h, w] raw latents (generation order: reversed for flipped folders).
        cameras: T cameras, camera i belongs to frame i.
        depth: [T, 1, H, W] z-depth of frame i.
        raw: [T, 3, H, W] the teacher's frames before the tokenizer round trip (exact renders for ``oracle``), kept
            only with ``keep_raw``, else None.
        flipped: whether this is time-reversed supervision (folders 6-11).
        distance: the trajectory's movement distance (after ``movement_factor``).
    """

    frames: Tensor
    latents: Tensor
    cameras: Cameras
    depth: Tensor
    raw: Tensor | None
    flipped: bool
    distance: float


@dataclass
class DynamicScene:
    """A generated dynamic scene: its world, source video and trajectories (folder order 0..11)."""

    world: Any
    source: SourceVideo
    trajectories: list[DynamicTrajectory]


# ---------------------------------------------------------------------------------------------- cameras and times
def frame_times(n: int) -> Tensor:
    """[n] float64 scene times i / (n - 1) of the frames of an n-frame clip (0 for one frame)."""
    return torch.linspace(0.0, 1.0, n, dtype=torch.float64) if n > 1 else torch.zeros(1, dtype=torch.float64)


def source_cameras(K: Tensor, height: int, width: int, n: int, motion: str, seed: int) -> Cameras:
    """The n per-frame cameras of the source video.

    ``static``: the origin camera in every frame. ``slow``: the centre moves linearly to ``m (sin a, 0, cos a)``
    with m ~ U(SLOW_DRIFT) and a ~ U(0, 2 pi), and the camera turns about the vertical by up to +-SLOW_YAW_DEG,
    both linear in the frame index (frame 0 is the origin camera).
    """
    if motion not in SOURCE_MOTIONS:
        raise DataError(f"source motion must be one of {', '.join(SOURCE_MOTIONS)}, got {motion!r}")
    w2c = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    if motion == "slow":
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x50C])
        m, a = rng.uniform(*SLOW_DRIFT), rng.uniform(0, 2 * math.pi)
        yaw = math.radians(rng.uniform(-SLOW_YAW_DEG, SLOW_YAW_DEG))
        s = frame_times(n)
        c = torch.stack([m * math.sin(a) * s, torch.zeros_like(s), m * math.cos(a) * s], -1)  # [n, 3] centres
        ang = yaw * s
        R = torch.zeros(n, 3, 3, dtype=torch.float64)  # camera-to-world rotation about the y axis
        R[:, 0, 0], R[:, 0, 2], R[:, 1, 1], R[:, 2, 0], R[:, 2, 2] = ang.cos(), ang.sin(), 1.0, -ang.sin(), ang.cos()
        w2c[:, :3, :3] = R.transpose(1, 2)
        w2c[:, :3, 3] = -(R.transpose(1, 2) @ c[..., None])[..., 0]
    return Cameras(w2c.float(), K.float().expand(n, 3, 3).clone(), height, width)


def trajectory_distances(seed: int, movement_factor: float = 1.0, flip: bool = True) -> list[float]:
    """Movement distances of folders 0-5 (the draws of ``method_trajectories(seed=seed)``, so a dynamic scene's
    forward trajectories move as far as the static SDG's) and, with ``flip``, fresh draws for folders 6-11."""
    from lyra.cameras import METHOD_TRAJECTORIES

    rng = np.random.default_rng(seed)
    specs = list(METHOD_TRAJECTORIES) * (2 if flip else 1)
    return [float(rng.uniform(*s.distance_range)) * movement_factor for s in specs]


def anchored_trajectory(kind: str, anchors: Cameras, distance: float, center_depth: float = 1.0) -> Cameras:
    """A method trajectory on per-frame anchors: camera i is ``M_i @ w2c_anchor,i`` with anchor i's intrinsics."""
    from lyra.cameras import trajectory_w2c

    w2c = trajectory_w2c(kind, len(anchors), distance, center_depth, anchor_w2c=anchors.w2c.double())
    return Cameras(w2c, anchors.K.clone(), anchors.height, anchors.width)


def reverse_cameras(cams: Cameras) -> Cameras:
    """The camera batch in reversed frame order."""
    return Cameras(cams.w2c.flip(0), cams.K.flip(0), cams.height, cams.width)


# ---------------------------------------------------------------------------------------------- teachers
class _Teacher:
    """Pre-tokenizer frames of one trajectory: ``frames(cams, idx)`` -> (rgb [T, 3, H, W], depth [T, 1, H, W]), where
    camera j sees scene time ``times[idx[j]]`` (``idx`` are source frame indices, in generation order)."""

    def __init__(self, name: str, world, tokenizer, source: SourceVideo, supersample: int,
                 options: dict[str, Any]) -> None:
        self.name, self.world, self.source, self.supersample = name, world, source, supersample
        self._caches: dict[int, Any] = {}  # source frame -> lifted point cache
        if name == "cache":
            from lyra.generator import CacheGenerator

            self._cache_gen = CacheGenerator(tokenizer=tokenizer, **options)  # its lift / warp settings
        elif options:
            raise DataError(f"generator {name!r} takes no options, got {sorted(options)}")

    def frames(self, cams: Cameras, idx: Sequence[int]) -> tuple[Tensor, Tensor]:
        times = self.source.times[list(idx)]
        if self.name == "oracle":
            r = self.world.render(cams, times, supersample=self.supersample)
            return r.rgb, r.depth
        from lyra.cache3d import forward_warp, inpaint
        from lyra.generator import SourceView

        g = self._cache_gen
        rgb, depth = [], []
        for j, i in enumerate(idx):  # the 4D cache: frame j is warped from source frame i only (sdg.md §5.2)
            if i not in self._caches:
                s = self.source
                self._caches[i] = g.lift(SourceView(s.frames[i], s.cameras.K[i], s.depth[i], s.cameras.w2c[i]))
            cam = Cameras(cams.w2c[j : j + 1].float(), cams.K[j : j + 1].float(), cams.height, cams.width)
            w = forward_warp(self._caches[i], cam, footprint=g.footprint)
            rgb.append(inpaint(w.rgb, w.mask, smooth_iters=g.smooth_iters).clamp(0, 1))
            depth.append(w.depth)
        return torch.cat(rgb), torch.cat(depth)


# ---------------------------------------------------------------------------------------------- one scene
def _check_config(cfg: DynamicSDGConfig) -> None:
    from lyra.pipelines.sdg import check_world_options

    if cfg.generator not in DYNAMIC_GENERATORS:
        raise DataError(f"dynamic SDG supports the generators {', '.join(DYNAMIC_GENERATORS)}, got {cfg.generator!r}")
    check_world_options(cfg)
    if cfg.source_motion not in SOURCE_MOTIONS:
        raise DataError(f"source motion must be one of {', '.join(SOURCE_MOTIONS)}, got {cfg.source_motion!r}")
    if cfg.frames < 2:
        raise DataError(f"a dynamic clip needs at least 2 frames, got {cfg.frames}")


def generate_dynamic_scene(cfg: DynamicSDGConfig, tokenizer, index: int, *, keep_raw: bool = False,
                           generator_options: dict[str, Any] | None = None) -> DynamicScene:
    """Scene ``index`` of a dynamic run: moving world, source video, then trajectories 0-5 (and flipped 6-11).

    Args:
        keep_raw: keep each trajectory's frames before the tokenizer round trip (``DynamicTrajectory.raw``).
    """
    from lyra.cameras import METHOD_TRAJECTORIES, default_intrinsics
    from lyra.generator import teacher_roundtrip
    from lyra.world import generate_world

    _check_config(cfg)
    s = scene_seed(cfg.seed, index)
    world = generate_world(s, cfg.kind, moving=True, photos=cfg.photos)  # type: ignore[arg-type]
    T = cfg.frames
    K = default_intrinsics(cfg.height, cfg.width, cfg.fov_x_deg)
    src_cams = source_cameras(K, cfg.height, cfg.width, T, cfg.source_motion, s)
    times = frame_times(T)
    r = world.render(src_cams, times, supersample=cfg.supersample)
    source = SourceVideo(r.rgb, r.depth, src_cams, times)
    teacher = _Teacher(cfg.generator, world, tokenizer, source, cfg.supersample, dict(generator_options or {}))
    dists = trajectory_distances(s, cfg.movement_factor, cfg.flip)
    fwd, rev = list(range(T)), list(range(T - 1, -1, -1))
    out = []
    for v, d in enumerate(dists):
        spec, flipped = METHOD_TRAJECTORIES[v % FLIP_OFFSET], v >= FLIP_OFFSET
        # generation order: the forward clip, or the time-reversed clip (anchored on the original last frame)
        order = rev if flipped else fwd
        anchors = reverse_cameras(src_cams) if flipped else src_cams
        gen_cams = anchored_trajectory(spec.kind, anchors, d, cfg.center_depth)
        rgb, depth = teacher.frames(gen_cams, order)
        latents, decoded = teacher_roundtrip(tokenizer, rgb)
        decoded = rgb if decoded is None else decoded  # (never None with decode=True)
        if flipped:  # back to the original time order: frames, depth and poses together
            rgb, decoded, depth, gen_cams = rgb.flip(0), decoded.flip(0), depth.flip(0), reverse_cameras(gen_cams)
        out.append(DynamicTrajectory(decoded, latents, gen_cams, depth, rgb if keep_raw else None, flipped, d))
    return DynamicScene(world, source, out)


# ---------------------------------------------------------------------------------------------- the run
def scene_meta(cfg: DynamicSDGConfig, index: int, scene: DynamicScene) -> dict[str, Any]:
    """The done-marker meta of a dynamic scene (the reader takes ``times`` and ``latents_reversed`` from it)."""
    from lyra.cameras import METHOD_TRAJECTORIES

    kinds = [METHOD_TRAJECTORIES[v % FLIP_OFFSET].kind + (" (flipped)" if t.flipped else "")
             for v, t in enumerate(scene.trajectories)]
    flipped = [v for v, t in enumerate(scene.trajectories) if t.flipped]
    return {"index": index, "scene_seed": scene_seed(cfg.seed, index), "world_kind": scene.world.kind,
            "photos": cfg.photos, "generator": cfg.generator, "frames": cfg.frames, "height": cfg.height,
            "width": cfg.width, "dynamic": True, "source_motion": cfg.source_motion, "trajectories": kinds,
            "distances": [t.distance for t in scene.trajectories], "flipped_views": flipped,
            "latents_reversed": flipped, "times": scene.source.times.tolist(),
            "moving_objects": [scene.world.names[i - 1] for i in scene.world.moving_ids]}


def run_dynamic_sdg(cfg: DynamicSDGConfig, out: str | os.PathLike, tokenizer, *, options: WriteOptions | None = None,
                    progress: bool = True, generator_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Generate ``cfg.scenes`` dynamic scenes into ``out`` (resumable: complete scenes are skipped).

    Returns a summary: keys written and skipped, seconds per written scene.
    """
    _check_config(cfg)
    layout = start_run(cfg, out, tokenizer, "official (method.md §8.1), dynamic: 0-5 forward, 6-11 time-reversed "
                                            "supervision; flag/source: source videos (ViPE layout)")

    def make(i: int, key: str) -> None:
        scene = generate_dynamic_scene(cfg, tokenizer, i, generator_options=generator_options)
        extra = write_source(layout, key, scene.source, options)
        write_scene(layout, key, scene.trajectories, tokenizer.normalize_latents, options=options,
                    meta=scene_meta(cfg, i, scene), world_json=scene.world.to_dict(), extra_files=extra)

    return run_scenes(cfg.scenes, cfg.seed, "sdg --dynamic", lambda key: scene_complete(layout, key), make, progress)
