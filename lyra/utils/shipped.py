"""The weights shipped in ``lyra/assets``: their names, folders, and which decoder reads which tokenizer's latents.

A shipped *version* is a tokenizer and the decoder trained on its latents, with the setting it was trained for.
``pocket-v2``: 176x320, 49 frames, the default (``shipped``, ``DEFAULT_VERSION``) of image -> 3D (``lyra demo``,
``lyra generate``), ``lyra sdg``, ``lyra eval`` and training. ``pocket-v1`` (also ``pocket`` and ``native``): 64x112,
17 frames, the fast setting, and the default of video -> 4D (``DYNAMIC_VERSION``: the only version whose
time-conditioned decoder ships). A decoder only works with the tokenizer of its version. ``dynamic_decoder``: the
version's time-conditioned decoder (video -> 4D), where one ships (pocket-v1: ``lyra/assets/decoder-dynamic``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ASSETS = Path(__file__).resolve().parents[1] / "assets"
DEFAULT_VERSION = "pocket-v2"
DYNAMIC_VERSION = "pocket-v1"  # `lyra video4d` and its evaluation: the version with a dynamic decoder
FOLDERS = {"pocket-v1": {"tokenizer": "tokenizer", "decoder": "decoder", "dynamic_decoder": "decoder-dynamic"},
           "pocket-v2": {"tokenizer": "tokenizer-v2", "decoder": "decoder-v2", "dynamic_decoder": "decoder-v2-dynamic"}}
ALIASES = {"shipped": DEFAULT_VERSION, "pocket": "pocket-v1", "native": "pocket-v1"}
SHIPPED_NAMES = (*FOLDERS, *ALIASES)


@dataclass(frozen=True)
class Setting:
    """The working setting a shipped version was trained for (the defaults of ``lyra demo/generate/sdg``).

    Attributes:
        height, width: image size in pixels.
        frames: frames per trajectory (1 + 8k).
        prune: fraction of the fused Gaussians dropped by opacity (chosen so that about one Gaussian per pixel of a
            view is kept).
        flythrough_stride: every k-th trajectory frame is shown in the fly-through.
        target_median: median depth a photo input is scaled to, in scene units (``--target-median``).
    """

    height: int
    width: int
    frames: int
    prune: float
    flythrough_stride: int
    target_median: float


# target_median: the method's 2.0 for v1; for v2 the median source depth of its training worlds, 6.85, which scored
# better on the motorcycle's real right view (docs/demo.md), while v1 scored better at 2.0
SETTINGS = {"pocket-v1": Setting(64, 112, 17, 0.8, 1, 2.0), "pocket-v2": Setting(176, 320, 49, 0.78, 4, 6.85)}
DEFAULT = SETTINGS[DEFAULT_VERSION]
DYNAMIC = SETTINGS[DYNAMIC_VERSION]


def shipped_version(name: object) -> str | None:
    """The version a shipped name stands for (``"shipped"`` -> ``DEFAULT_VERSION``), or None for anything else."""
    n = str(name)
    return n if n in FOLDERS else ALIASES.get(n)


def shipped_dir(kind: Literal["tokenizer", "decoder", "dynamic_decoder"], name: str = "shipped") -> Path:
    """Folder of the shipped ``kind`` of version ``name``; ValueError for a name that is not shipped."""
    v = shipped_version(name)
    if v is None:
        raise ValueError(f"unknown shipped {kind} {name!r} (known: {', '.join(SHIPPED_NAMES)})")
    return ASSETS / FOLDERS[v][kind]
