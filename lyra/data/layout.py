"""The SDG dataset layout (method.md §8.1, sdg.md §6): ``<root>/<view>/<modality>/<key>.<ext>``.

``<view>`` is the trajectory index (0..5 static, 0..11 dynamic), ``<key>`` the scene name, identical
across views and modalities. The official loader counts every root entry except ``flag`` as a view,
so everything lyra adds (per-scene done markers and meta, world files, latent statistics, the run
config, and for dynamic data the source video of each scene) lives under ``<root>/flag/``; a dataset
written by ``lyra sdg`` stays readable by the official loader.

Dynamic datasets (``lyra sdg --dynamic``) keep each scene's source video in ViPE's artifact layout
(sdg.md §5.1) under ``<root>/flag/source/<modality>/<key>.<ext>`` (rgb, pose, intrinsics, depth).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lyra.errors import InputError

MODALITY_SUFFIX: dict[str, str] = {
    "rgb": ".mp4",
    "latent": ".pkl",
    "pose": ".npz",
    "intrinsics": ".npz",
    "depth": ".zip",
}
MODALITIES = tuple(MODALITY_SUFFIX)
EXTRA_DIR = "flag"  # ignored by the official loader
STATS_NAME = "latent_stats.npz"  # [C, T_stats] mean / std of raw latents used for normalisation
RUN_NAME = "lyra_sdg.json"  # our SDG run config (marks a lyra-written dataset)
DONE_SUFFIX = ".done.json"  # per-scene completion marker (written last) with the scene's meta
WORLD_SUFFIX = ".world.json"
SOURCE_DIR = "source"  # under EXTRA_DIR: the source videos of dynamic scenes (ViPE layout)
SOURCE_MODALITIES = ("rgb", "pose", "intrinsics", "depth")


class DataError(InputError):
    """A missing or malformed dataset file; the message names the file."""


@dataclass(frozen=True)
class Layout:
    """Paths of one dataset root."""

    root: Path

    def __init__(self, root: str | os.PathLike) -> None:
        object.__setattr__(self, "root", Path(root))

    def path(self, view: int, modality: str, key: str) -> Path:
        """``<root>/<view>/<modality>/<key><suffix>``."""
        if modality not in MODALITY_SUFFIX:
            raise DataError(f"unknown modality {modality!r} (one of {', '.join(MODALITIES)})")
        return self.root / str(view) / modality / f"{key}{MODALITY_SUFFIX[modality]}"

    def source_path(self, modality: str, key: str) -> Path:
        """``<root>/flag/source/<modality>/<key><suffix>``: a dynamic scene's source video (ViPE layout)."""
        if modality not in SOURCE_MODALITIES:
            raise DataError(f"unknown source modality {modality!r} (one of {', '.join(SOURCE_MODALITIES)})")
        return self.extra / SOURCE_DIR / modality / f"{key}{MODALITY_SUFFIX[modality]}"

    @property
    def extra(self) -> Path:
        return self.root / EXTRA_DIR

    @property
    def stats_path(self) -> Path:
        return self.extra / STATS_NAME

    @property
    def run_path(self) -> Path:
        return self.extra / RUN_NAME

    def done_path(self, key: str) -> Path:
        return self.extra / f"{key}{DONE_SUFFIX}"

    def world_path(self, key: str) -> Path:
        return self.extra / f"{key}{WORLD_SUFFIX}"

    @property
    def is_lyra(self) -> bool:
        """Whether ``lyra sdg`` wrote this root (then only scenes with a done marker are complete)."""
        return self.run_path.is_file()

    def views(self) -> list[int]:
        """Sorted integer view folders under the root (other entries, e.g. ``flag``, are ignored)."""
        if not self.root.is_dir():
            raise DataError(f"{self.root}: dataset folder not found")
        return sorted(int(p.name) for p in self.root.iterdir() if p.is_dir() and p.name.isdigit())

    def keys_in(self, view: int, modality: str) -> set[str]:
        """Scene keys with a ``<modality>`` file in ``view`` (hidden temp files are skipped)."""
        d = self.root / str(view) / modality
        if not d.is_dir():
            return set()
        suffix = MODALITY_SUFFIX[modality]
        return {p.name[: -len(suffix)] for p in d.iterdir()
                if p.name.endswith(suffix) and not p.name.startswith(".")}

    def done_keys(self) -> set[str]:
        """Keys whose done marker exists (lyra-written data only)."""
        if not self.extra.is_dir():
            return set()
        return {p.name[: -len(DONE_SUFFIX)] for p in self.extra.iterdir()
                if p.name.endswith(DONE_SUFFIX) and not p.name.startswith(".")}

    def scene_keys(self) -> list[str]:
        """Sorted unique scene keys (once per scene, not once per view folder).

        A key is any stem of ``rgb/*.mp4`` or ``latent/*.pkl`` in any view folder; in a lyra-written
        dataset only scenes with a done marker count (an interrupted scene is not a sample).
        """
        keys: set[str] = set()
        for v in self.views():
            keys |= self.keys_in(v, "rgb") | self.keys_in(v, "latent")
        if self.is_lyra:
            keys &= self.done_keys()
        return sorted(keys)
