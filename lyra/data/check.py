"""``lyra data check``: validate a whole SDG dataset (ours or NVIDIA's) and list every problem with its file."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lyra.data.exr import DepthZipError, depth_zip_frames, read_depth_zip
from lyra.data.layout import MODALITIES, DataError, Layout
from lyra.data.reader import (
    cameras_from_arrays,
    load_latent_stats,
    read_indexed_npz,
    read_latent,
    read_video_frames,
    video_info,
)


@dataclass(frozen=True)
class Problem:
    """One problem: the file (or folder) and what is wrong with it."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class CheckOptions:
    """What to check.

    Attributes:
        require: modalities every (scene, view) must have.
        stats: latent statistics file (None: ``flag/latent_stats.npz`` when present).
        decode: decode every mp4 frame and every EXR (slow at full scale) instead of the container
            frame count and the first EXR.
        views: restrict to these trajectory folders (None: all present).
    """

    require: tuple[str, ...] = MODALITIES
    stats: str | None = None
    decode: bool = True
    views: tuple[int, ...] | None = None


def _strip(msg: str, path: Path) -> str:
    """Drop a leading ``<path>: `` from an error message (the problem already names the file)."""
    s = str(msg)
    for prefix in (f"{path}: ", f"{path}:"):
        if s.startswith(prefix):
            return s[len(prefix):]
    return s


def check_scene_view(layout: Layout, key: str, view: int, opts: CheckOptions, stats=None) -> list[Problem]:
    """Problems of one trajectory of one scene."""
    probs: list[Problem] = []
    paths = {m: layout.path(view, m, key) for m in MODALITIES}

    def attempt(modality: str, fn: Callable[[Path], object]) -> object | None:
        p = paths[modality]
        if not p.is_file():
            if modality in opts.require:
                probs.append(Problem(p, "missing"))
            return None
        try:
            return fn(p)
        except (DataError, DepthZipError, FileNotFoundError, ValueError) as exc:
            probs.append(Problem(p, _strip(str(exc), p)))
            return None

    pose = attempt("pose", lambda p: read_indexed_npz(p, None, (4, 4)))
    intr = attempt("intrinsics", lambda p: read_indexed_npz(p, None, (4,)))
    n = None
    if pose is not None:
        n = len(pose)
        c2w = np.asarray(pose)
        if not np.allclose(c2w[:, 3], [0, 0, 0, 1], atol=1e-4):
            probs.append(Problem(paths["pose"], "last row of some c2w matrices is not [0, 0, 0, 1]"))
        else:
            R = c2w[:, :3, :3].astype(np.float64)
            err = np.abs(R @ R.transpose(0, 2, 1) - np.eye(3)).max() if len(R) else 0.0
            if err > 1e-3 or (len(R) and (np.linalg.det(R) < 0).any()):
                probs.append(Problem(paths["pose"], f"rotations are not proper orthonormal (error {err:.2g})"))
    if intr is not None:
        f = np.asarray(intr)
        if (f[:, :2] <= 0).any():
            probs.append(Problem(paths["intrinsics"], "non-positive focal lengths"))
        if n is not None and len(f) != n:
            probs.append(Problem(paths["intrinsics"], f"{len(f)} frames but pose has {n}"))
    info = attempt("rgb", lambda p: video_info(p))
    hw = None
    if info is not None:
        nf, h, w = info  # type: ignore[misc]
        hw = (h, w)
        if opts.decode:
            frames = attempt("rgb", lambda p: read_video_frames(p))
            if frames is not None:
                nf = frames.shape[0]  # type: ignore[attr-defined]
        if n is not None and nf != n:
            probs.append(Problem(paths["rgb"], f"{nf} frames but pose has {n}"))
    if pose is not None and intr is not None and hw is not None and len(intr) == n:
        try:
            cameras_from_arrays(pose, intr, *hw, where=str(paths["pose"]))
        except DataError as exc:
            probs.append(Problem(paths["pose"], _strip(str(exc), paths["pose"])))
    z = attempt("latent", read_latent)
    if z is not None:
        C, T_l, h_l, w_l = np.asarray(z).shape
        if n is not None:
            want = 1 + (n - 1) // 8 if (n - 1) % 8 == 0 else None
            if want is None:
                probs.append(Problem(paths["latent"], f"trajectory has {n} frames, not 1 + 8k"))
            elif T_l != want:
                probs.append(Problem(paths["latent"], f"{T_l} latent frames but {n} video frames need {want}"))
        if hw is not None and (h_l * 8, w_l * 8) != hw:
            probs.append(Problem(paths["latent"], f"latent grid {h_l}x{w_l} does not match the {hw[0]}x{hw[1]} "
                                                  "video (8x spatial compression)"))
        if stats is not None and stats[0].numel() % C:
            probs.append(Problem(paths["latent"], f"{C} channels do not divide the {stats[0].numel()} statistics"))
    if paths["depth"].is_file() or "depth" in opts.require:
        def depth(p: Path) -> None:
            members = depth_zip_frames(p)
            if n is not None and sorted(members) != list(range(n)):
                raise DataError(f"{len(members)} EXR frames ({min(members)}..{max(members)}) but pose has {n}")
            read_depth_zip(p, None if opts.decode else [min(members)])

        attempt("depth", depth)
    return probs


def check_dataset(root: str | os.PathLike, options: CheckOptions | None = None,
                  progress: Callable[[Iterable], Iterable] | None = None) -> list[Problem]:
    """Every problem of the dataset at ``root`` (an empty list means it is valid)."""
    opts = options or CheckOptions()
    layout = Layout(root)
    try:
        views = layout.views()
    except DataError as exc:
        return [Problem(Path(root), _strip(str(exc), Path(root)))]
    if opts.views is not None:
        views = [v for v in views if v in opts.views]
    if not views:
        return [Problem(layout.root, "no trajectory folders (0, 1, ...)")]
    probs: list[Problem] = []
    stats = None
    stats_path = Path(opts.stats) if opts.stats else layout.stats_path
    if opts.stats or stats_path.is_file():
        try:
            stats = load_latent_stats(stats_path)
        except DataError as exc:
            probs.append(Problem(stats_path, _strip(str(exc), stats_path)))
    elif layout.is_lyra:
        probs.append(Problem(stats_path, "missing (written by lyra sdg)"))
    keys: set[str] = set()
    for v in views:
        for m in MODALITIES:
            keys |= layout.keys_in(v, m)
    if layout.is_lyra:
        done = layout.done_keys()
        for k in sorted(keys - done):
            probs.append(Problem(layout.done_path(k), "missing: scene is incomplete (interrupted run; "
                                                      "rerun lyra sdg to finish it)"))
        keys &= done
    if not keys:
        probs.append(Problem(layout.root, "no scenes found"))
    items = [(k, v) for k in sorted(keys) for v in views]
    for k, v in (progress(items) if progress else items):
        probs += check_scene_view(layout, k, v, opts, stats)
    return probs
