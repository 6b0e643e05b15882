"""Real photographs that installed packages ship (offline), by name, with a train / held-out split.

One registry for every user of real photos (photo-domain worlds, the tokenizer's photo clips). Sources:

* ``skimage``: scikit-image's bundled ``skimage.data`` images (only those in the wheel, no download);
* ``matplotlib``: matplotlib's sample data (``grace_hopper.jpg``);
* ``viser``: the equirectangular Poly Haven HDRI previews (CC0, 1024 x 512 JPEG) that viser ships for its
  environment maps; their usable rows are the middle band (``band``), where the projection bends least.

Splits: ``train`` photos may be used for training; ``heldout`` photos only for evaluation; ``benchmark`` is the
Middlebury 2014 "Motorcycle" stereo pair (``motorcycle_left`` / ``motorcycle_right``), the demo's and the
evaluation's real input with ground-truth depth: never training data, and never part of generated worlds.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

PhotoSplit = Literal["train", "heldout", "benchmark"]
PhotoSource = Literal["skimage", "matplotlib", "viser"]
PHOTO_SPLITS: tuple[str, ...] = ("train", "heldout", "benchmark")


@dataclass(frozen=True)
class Photo:
    """One registered photo.

    Attributes:
        name: registry key (for skimage, the ``skimage.data`` function unless ``ref`` says otherwise).
        source: the package that ships the file.
        split: "train", "heldout" or "benchmark" (see the module docstring).
        ref: what the source loads (skimage function, sample-data file, asset file); defaults to ``name``.
        band: usable rows as fractions of the height (v0, v1); panoramas use their middle band.
    """

    name: str
    source: PhotoSource
    split: PhotoSplit
    ref: str = ""
    band: tuple[float, float] = (0.0, 1.0)

    @property
    def panorama(self) -> bool:
        return self.source == "viser"


def _sk(names: str, split: PhotoSplit) -> list[Photo]:
    return [Photo(n, "skimage", split) for n in names.split()]


def _hdri(names: str, split: PhotoSplit) -> list[Photo]:
    return [Photo(n, "viser", split, f"{n}_1k.jpg", (0.25, 0.78)) for n in names.split()]


# Order matters: the tokenizer draws its photo clips by index into ``photo_names(split, "skimage")``.
# skimage's ``cat`` is the same picture as ``chelsea`` and is left out (it would leak across splits).
PHOTOS: dict[str, Photo] = {p.name: p for p in [
    *_sk("astronaut chelsea hubble_deep_field immunohistochemistry retina colorwheel logo brick grass gravel "
         "moon coins clock page text", "train"),
    *_sk("coffee rocket camera", "heldout"),
    Photo("grace_hopper", "matplotlib", "train", "grace_hopper.jpg"),
    *_hdri("dikhololo_night empty_warehouse_01 forest_slope kiara_1_dawn lebombo potsdamer_platz rooitou_park "
           "studio_small_03", "train"),
    *_hdri("st_fagans_interior venice_sunset", "heldout"),
    Photo("motorcycle_left", "skimage", "benchmark", "stereo_motorcycle"),
    Photo("motorcycle_right", "skimage", "benchmark", "stereo_motorcycle"),
]}


def photo_names(split: PhotoSplit, source: PhotoSource | None = None) -> tuple[str, ...]:
    """Registered photo names of one split (optionally of one source), in registry order."""
    if split not in PHOTO_SPLITS:
        raise ValueError(f"unknown photo split {split!r} (one of {', '.join(PHOTO_SPLITS)})")
    return tuple(p.name for p in PHOTOS.values() if p.split == split and (source is None or p.source == source))


def photo_info(name: str) -> Photo:
    """The registry entry of ``name``; ValueError naming the known photos otherwise."""
    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r} (registered: {', '.join(PHOTOS)})")
    return PHOTOS[name]


def _read(p: Photo) -> np.ndarray:
    """The photo's pixels as the source package ships them (uint8, bool or float arrays)."""
    if p.source == "skimage":
        try:
            import skimage.data as skd
        except ImportError as e:  # pragma: no cover - a hard dependency
            raise ImportError("photos need scikit-image: pip install scikit-image") from e
        if p.ref == "stereo_motorcycle":
            return skd.stereo_motorcycle()[0 if p.name == "motorcycle_left" else 1]
        return getattr(skd, p.ref or p.name)()
    from PIL import Image

    if p.source == "matplotlib":
        from matplotlib.cbook import get_sample_data

        path = Path(get_sample_data(p.ref, asfileobj=False))
    else:
        spec = importlib.util.find_spec("viser")  # the package's folder, without importing viser
        if spec is None or spec.origin is None:
            raise FileNotFoundError(f"photo {p.name!r} ships with viser, which is not installed")
        path = Path(spec.origin).parent / "_assets" / "hdri" / p.ref
    if not path.is_file():
        raise FileNotFoundError(f"photo {p.name!r}: {path} is missing from the installed {p.source}")
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@cache
def load_photo(name: str) -> Tensor:
    """A registered photo as ``[3, H, W]`` float32 in [0, 1] (grey repeated, alpha dropped; cached, read-only)."""
    a = np.asarray(_read(photo_info(name)))
    if a.dtype == bool:
        a = a.astype(np.float32)
    elif a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    else:
        a = a.astype(np.float32)
        a = (a - a.min()) / max(float(a.max() - a.min()), 1e-6)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    a = a[..., :3]
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).contiguous()


@cache
def photo_level(name: str, lod: int) -> Tensor:
    """``load_photo(name)`` pre-filtered to 1 / 2**lod of its size (area average): ``[3, ceil(H / 2**lod), ...]``.

    Level 0 is the photo itself. The image still spans [0, 1] x [0, 1] in normalised coordinates at every level.
    """
    img = load_photo(name)
    if lod <= 0:
        return img
    f = 2**lod
    size = (max(1, math.ceil(img.shape[1] / f)), max(1, math.ceil(img.shape[2] / f)))
    return F.interpolate(img[None], size=size, mode="area")[0].contiguous()


def photo_size(name: str) -> tuple[int, int]:
    """(height, width) of the photo in pixels (level 0)."""
    img = load_photo(name)
    return int(img.shape[1]), int(img.shape[2])


@cache
def photo_is_grey(name: str) -> bool:
    """Whether the photo's three channels are equal (a greyscale photo)."""
    img = load_photo(name)
    return bool(torch.equal(img[0], img[1]) and torch.equal(img[1], img[2]))
