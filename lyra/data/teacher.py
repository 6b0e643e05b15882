"""Reader of the diffusion teacher's training data (written by :mod:`lyra.pipelines.teacher_data`).

A folder holds ``lyra_teacher_data.json`` (the run's settings) and one ``<key>.npz`` per scene with, per trajectory,
``target`` [N, C, T_l, h, w] (the exact renders' latents) and ``cache`` [N, 2C, T_l, h, w] (the warped cache's render
and mask latents), float16 in the tokenizer's diffusion space, and ``holes`` [N] (uncovered pixel fraction).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lyra.data.layout import DataError
from lyra.utils.inputs import read_json

META_NAME = "lyra_teacher_data.json"


def scene_file(root: str | os.PathLike, key: str) -> Path:
    return Path(root) / f"{key}.npz"


def scene_files(root: str | os.PathLike) -> list[Path]:
    """The complete scene files of a teacher data folder, sorted by name (DataError when there are none)."""
    root = Path(root)
    if not (root / META_NAME).is_file():
        raise DataError(root, f"not a teacher data folder (no {META_NAME}; make one with `lyra teacher data`)")
    files = sorted(root.glob("scene_*.npz"))
    if not files:
        raise DataError(root, "holds no scenes yet")
    return files


class TeacherDataset:
    """Every trajectory of a teacher data folder in memory (float16), served as random crops.

    Attributes:
        cache_fill: what the cache renders hold in their holes (``"black"``, or ``"inpaint"``: push-pull filled),
            from the folder's run file.

    Args:
        root: the folder.
        crop: (h, w) latent crop (None: whole frames); every clip keeps all its latent frames.
        scenes: the first ``scenes`` scene files only (None: all).
    """

    def __init__(self, root: str | os.PathLike, crop: tuple[int, int] | None = None, scenes: int | None = None) -> None:
        files = scene_files(root)[:scenes]
        target, cache = [], []
        for f in files:
            try:
                with np.load(f) as z:
                    target.append(z["target"])
                    cache.append(z["cache"])
            except (OSError, KeyError, ValueError) as exc:
                raise DataError(f, f"unreadable teacher scene ({exc})") from exc
        self.target = torch.from_numpy(np.concatenate(target))  # [N, C, T_l, h, w] float16
        self.cache = torch.from_numpy(np.concatenate(cache))  # [N, 2C, T_l, h, w] float16
        if self.cache.shape[0] != self.target.shape[0] or self.cache.shape[2:] != self.target.shape[2:] \
                or self.cache.shape[1] != 2 * self.target.shape[1]:
            raise DataError(root, f"target {list(self.target.shape)} and cache {list(self.cache.shape)} disagree")
        h, w = self.target.shape[-2:]
        self.crop = (h, w) if crop is None else (min(crop[0], h), min(crop[1], w))
        self.scenes = len(files)
        meta = read_json(Path(root) / META_NAME, "teacher data run file", DataError)
        self.cache_fill = str(meta.get("config", {}).get("cache_fill", "black"))  # the cache renders' holes

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def batch(self, rng: np.random.Generator, size: int, first: int = 0) -> tuple[Tensor, Tensor]:
        """(target [B, C, T_l, ch, cw], cache [B, 2C, T_l, ch, cw]) float32: ``size`` random clips of index >= ``first``
        (the ones before are held out), each at a random crop position."""
        h, w = self.target.shape[-2:]
        ch, cw = self.crop
        idx = rng.integers(first, len(self), size)
        ys, xs = rng.integers(0, h - ch + 1, size), rng.integers(0, w - cw + 1, size)
        crops = [(slice(y, y + ch), slice(x, x + cw)) for y, x in zip(ys, xs)]
        return (torch.stack([self.target[i, ..., a, b] for i, (a, b) in zip(idx, crops)]).float(),
                torch.stack([self.cache[i, ..., a, b] for i, (a, b) in zip(idx, crops)]).float())
