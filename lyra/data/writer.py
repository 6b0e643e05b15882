"""SDG writer: the files of multi-trajectory samples in the official layout, atomic (the run loop that feeds it
is :mod:`lyra.pipelines.sdg`).

Per scene ``<key>`` and trajectory ``v`` (method.md §8.1-8.2, sdg.md §6):

* ``<v>/rgb/<key>.mp4``: the teacher's (decoded) frames, H.264;
* ``<v>/latent/<key>.pkl``: ``torch.save`` of a numpy float32 array (1, C, T_l, h, w) in diffusion space
  ``0.5 (z - mean) / std`` (as NVIDIA writes it);
* ``<v>/pose/<key>.npz``: ``data`` (T, 4, 4) float32 OpenCV c2w, ``inds`` (T,) int64;
* ``<v>/intrinsics/<key>.npz``: ``data`` (T, 4) float32 [fx, fy, cx, cy] in pixels, ``inds``;
* ``<v>/depth/<key>.zip``: ``NNNNN.exr`` per frame, one half-float ``Z`` channel (z-depth, 0 = invalid).

Extras under ``flag/`` (ignored by the official loader): ``latent_stats.npz`` (mean/std [C, T_stats]),
``lyra_sdg.json`` (the run config), ``<key>.world.json``, for dynamic scenes the source video
``source/{rgb,pose,intrinsics,depth}/<key>.*`` (ViPE layout, :func:`write_source`) and ``<key>.done.json``
(meta, written last: a scene is complete only when its done marker exists). Every file is written to a
temporary name and renamed, so no half-written file ever carries a final name.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from lyra.cameras import Cameras
from lyra.data.exr import write_depth_zip
from lyra.data.layout import DataError, Layout
from lyra.data.safe_pickle import save_numpy_pickle
from lyra.render.video import write_video
from lyra.utils.files import atomic_path
from lyra.utils.inputs import read_json


class TrajectoryRecord(Protocol):
    """What the writer needs of one trajectory (``lyra.generator.TrajectorySample`` has it).

    Attributes:
        frames: [T, 3, H, W] float in [0, 1] (None: the writer refuses the sample).
        latents: [C, T_l, h, w] raw tokenizer latents.
        cameras: T cameras.
        depth: [T, 1, H, W] z-depth (0 = invalid), or None.
    """

    frames: Tensor | None
    latents: Tensor
    cameras: Cameras
    depth: Tensor | None


class SourceRecord(Protocol):
    """What the writer needs of a dynamic scene's source video.

    Attributes:
        frames: [T, 3, H, W] float in [0, 1].
        cameras: T cameras (per-frame pose and intrinsics).
        depth: [T, 1, H, W] z-depth (0 = invalid).
    """

    frames: Tensor
    cameras: Cameras
    depth: Tensor


@dataclass
class WriteOptions:
    """How sample files are encoded.

    Attributes:
        fps: mp4 frame rate (the SDG default is 24).
        crf: x264 quality of the rgb mp4 (lower is better; 0 is lossless).
        depth_half: EXR depth as half floats (NVIDIA's format) rather than float32.
    """

    fps: float = 24.0
    crf: int = 18
    depth_half: bool = True


def json_atomic(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")


def save_npz_atomic(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """``np.savez`` (uncompressed, as the official SDG) to a temporary file, then rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return Path(path)


def save_latent_stats(path: str | os.PathLike, mean: Tensor, std: Tensor, sigma_data: float = 0.5) -> Path:
    """Write the raw-latent statistics (mean, std [C, T_stats]) used for normalisation as npz."""
    m = torch.as_tensor(mean).detach().float().cpu().numpy()
    s = torch.as_tensor(std).detach().float().cpu().numpy()
    if m.shape != s.shape:
        raise DataError(f"{path}: mean {m.shape} and std {s.shape} differ in shape")
    return save_npz_atomic(path, mean=m, std=s, sigma_data=np.float32(sigma_data))


def write_trajectory(layout: Layout, view: int, key: str, sample: TrajectoryRecord, latents_normalized: Tensor,
                     options: WriteOptions | None = None) -> list[Path]:
    """Write the files of one trajectory; returns their paths.

    Args:
        latents_normalized: [C, T_l, h, w] diffusion-space latents (``tokenizer.normalize_latents``).
    """
    o = options or WriteOptions()
    if sample.frames is None:
        raise DataError(f"{key}: trajectory {view} has no teacher frames (a generator with decode_frames=False); "
                        "SDG needs them for the rgb mp4")
    T = sample.frames.shape[0]
    inds = np.arange(T, dtype=np.int64)
    c2w, intr = _camera_arrays(sample.cameras)
    paths = [
        write_video(layout.path(view, "rgb", key), sample.frames, fps=o.fps, crf=o.crf),
        save_numpy_pickle(layout.path(view, "latent", key),
                          latents_normalized.detach().float().cpu().numpy()[None].astype(np.float32)),
        save_npz_atomic(layout.path(view, "pose", key), data=c2w, inds=inds),
        save_npz_atomic(layout.path(view, "intrinsics", key), data=intr, inds=inds.copy()),
    ]
    if sample.depth is not None:
        paths.append(write_depth_zip(layout.path(view, "depth", key), sample.depth, half=o.depth_half))
    return paths


def _camera_arrays(cams: Cameras) -> tuple[np.ndarray, np.ndarray]:
    """(c2w [T, 4, 4], [fx, fy, cx, cy] [T, 4]) float32 arrays of a camera batch."""
    K = cams.K.detach().cpu().double()
    intr = torch.stack([K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2]], -1).float().numpy()
    return cams.c2w.detach().cpu().float().numpy(), intr


def write_source(layout: Layout, key: str, source: SourceRecord, options: WriteOptions | None = None) -> list[Path]:
    """Write a dynamic scene's source video in ViPE's layout under ``flag/source/``; returns the paths.

    ``rgb`` mp4, ``pose`` npz (c2w), ``intrinsics`` npz ([fx, fy, cx, cy]) and ``depth`` zip, frame i = row i.
    """
    o = options or WriteOptions()
    T = source.frames.shape[0]
    if len(source.cameras) != T or source.depth.shape[0] != T:
        raise DataError(f"{key}: source video has {T} frames, {len(source.cameras)} cameras and "
                        f"{source.depth.shape[0]} depth maps")
    inds = np.arange(T, dtype=np.int64)
    c2w, intr = _camera_arrays(source.cameras)
    return [
        write_video(layout.source_path("rgb", key), source.frames, fps=o.fps, crf=o.crf),
        save_npz_atomic(layout.source_path("pose", key), data=c2w, inds=inds),
        save_npz_atomic(layout.source_path("intrinsics", key), data=intr, inds=inds.copy()),
        write_depth_zip(layout.source_path("depth", key), source.depth, half=o.depth_half),
    ]


def write_scene(layout: Layout, key: str, samples: Sequence[TrajectoryRecord], normalize, *,
                options: WriteOptions | None = None, meta: dict[str, Any] | None = None,
                world_json: dict[str, Any] | None = None, extra_files: Sequence[Path] = ()) -> None:
    """Write every trajectory of one scene (views 0..len-1), the world file, then the done marker.

    Args:
        normalize: raw latents [B, C, T_l, h, w] -> diffusion space (e.g. ``tokenizer.normalize_latents``).
        meta: stored in the done marker with the list of written files.
        extra_files: files of the scene written before (e.g. by :func:`write_source`), listed in the done marker
            so that the scene counts as complete only while they exist.
    """
    files: list[str] = [str(Path(p).relative_to(layout.root)) for p in extra_files]
    for v, s in enumerate(samples):
        z = normalize(s.latents[None].float())[0]
        files += [str(p.relative_to(layout.root)) for p in write_trajectory(layout, v, key, s, z, options)]
    if world_json is not None:
        json_atomic(layout.world_path(key), world_json)
    json_atomic(layout.done_path(key), {**(meta or {}), "key": key, "files": sorted(files),
                                         "written_at": time.strftime("%Y-%m-%dT%H:%M:%S")})


def scene_complete(layout: Layout, key: str) -> bool:
    """Whether a scene's done marker exists and every file it lists is present."""
    p = layout.done_path(key)
    if not p.is_file():
        return False
    try:
        files = read_json(p, "scene done marker", DataError).get("files", [])
    except (DataError, OSError):  # a damaged marker: the scene is written again
        return False
    return (isinstance(files, list) and bool(files)
            and all(isinstance(f, str) and (layout.root / f).is_file() for f in files))
