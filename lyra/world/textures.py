"""Textures: checker, multi-octave value noise, stripes, gradients and real photos (pure torch, deterministic).

A texture maps surface coordinates to albedo. Patterned kinds (checker, stripes, gradient, image) read 2D
surface coordinates ``uv`` [2, M] (scene units along the surface); noise reads the 3D object-local
point ``p`` [3, M] (solid noise: no seams on spheres or box edges). Internally, point sets are
component rows ([3, M]) for contiguous arithmetic; ``value_noise`` / ``fbm`` take [..., 3].
Every kind may add ``detail``: a fine multiplicative noise that gives flat regions texture.

``image`` samples a registered photo (``lyra.world.photos``) bilinearly: a crop rectangle of the photo is laid
on the surface centred on uv = (0, 0), ``scale`` scene units wide, with square pixels; u runs along the
photo's columns and v along its rows (down). It is stored by name and parameters, never by pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from lyra.world.photos import photo_info, photo_level, photo_size

TextureKind = Literal["solid", "checker", "noise", "stripes", "gradient", "image"]
TEXTURE_KINDS: tuple[str, ...] = ("solid", "checker", "noise", "stripes", "gradient", "image")
WrapMode = Literal["clamp", "repeat", "mirror"]
WRAP_MODES: tuple[str, ...] = ("clamp", "repeat", "mirror")

Color = tuple[float, float, float]
DETAIL_SCALE = 0.08  # cell size of the ``detail`` noise (scene units)


@dataclass(frozen=True)
class Texture:
    """Albedo pattern of one surface.

    Attributes:
        kind: "solid" (color_a), "checker", "noise" (value-noise fBm), "stripes", "gradient" or "image" (a photo).
        color_a, color_b: linear RGB in [0, 1]; patterns blend or alternate between them; "image" multiplies the
            photo by color_a (a tint: (1, 1, 1) keeps its colours).
        scale: feature size in scene units (checker cell, stripe period, noise cell, gradient length, width of
            the photo crop).
        angle: pattern direction in the uv plane, degrees (stripes, gradient, checker and photo rotation).
        octaves: number of noise octaves (noise kind and detail).
        seed: integer seed of the noise lattice.
        detail: strength in [0, 1] of a fine multiplicative noise (cells of DETAIL_SCALE units) on top of any kind.
        photo: "image" only: registered photo name (``lyra.world.photos.PHOTOS``).
        crop: "image" only: (u0, v0, u1, v1) rectangle of the photo in normalised coordinates ([0, 1], x then y).
        wrap: "image" only: outside the crop, "clamp" (edge pixels), "repeat" (tile) or "mirror" (tile, mirrored).
        lod: "image" only: sample the photo pre-filtered to 1 / 2**lod of its size (view-independent anti-aliasing).
    """

    kind: TextureKind = "solid"
    color_a: Color = (0.7, 0.7, 0.7)
    color_b: Color = (0.3, 0.3, 0.3)
    scale: float = 1.0
    angle: float = 0.0
    octaves: int = 3
    seed: int = 0
    detail: float = 0.0
    photo: str = ""
    crop: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    wrap: WrapMode = "clamp"
    lod: int = 0

    def __post_init__(self) -> None:
        if self.kind not in TEXTURE_KINDS:
            raise ValueError(f"Texture: unknown kind {self.kind!r} (one of {', '.join(TEXTURE_KINDS)})")
        if not self.scale > 0:
            raise ValueError(f"Texture: scale must be > 0, got {self.scale}")
        if self.octaves < 1:
            raise ValueError(f"Texture: octaves must be >= 1, got {self.octaves}")
        if self.kind != "image":
            if self.photo:
                raise ValueError(f"Texture: photo {self.photo!r} given for kind {self.kind!r} (only 'image' uses it)")
            return
        photo_info(self.photo)
        u0, v0, u1, v1 = self.crop
        if not (0.0 <= u0 < u1 <= 1.0 and 0.0 <= v0 < v1 <= 1.0):
            raise ValueError(f"Texture: crop must satisfy 0 <= u0 < u1 <= 1 and 0 <= v0 < v1 <= 1, got {self.crop}")
        if self.wrap not in WRAP_MODES:
            raise ValueError(f"Texture: unknown wrap {self.wrap!r} (one of {', '.join(WRAP_MODES)})")
        if not 0 <= self.lod <= 12:
            raise ValueError(f"Texture: lod must be in 0..12, got {self.lod}")


# ---------------------------------------------------------------------------------------------- noise
_MASK31 = 0x7FFFFFFF


def _mix(h: Tensor) -> Tensor:
    """Avalanche a non-negative int64 tensor (31-bit) -> float32 in [0, 1]."""
    h = ((h ^ (h >> 15)) * 1274126177) & _MASK31
    h = ((h ^ (h >> 13)) * 668265263) & _MASK31
    h = h ^ (h >> 16)
    return (h & 0xFFFF).to(torch.float32) * (1.0 / 65535.0)


def noise3(p: Tensor, seed: int = 0, planar: bool = False) -> Tensor:
    """Smooth 3D value noise in [0, 1] with a unit lattice. p: [3, M] (component rows) -> [M].

    ``planar=True`` evaluates the z = 0 slice (p[2] is ignored) at half the cost; it equals the full
    noise at z = 0.
    """
    cell = torch.floor(p[:2] if planar else p)
    f = ((p[:2] if planar else p) - cell).to(torch.float32)
    w = f * f * (3.0 - 2.0 * f)  # smoothstep fade
    primes = (73856093, 19349663, 83492791)
    a0 = cell.to(torch.int64) * torch.tensor(primes[: cell.shape[0]], dtype=torch.int64, device=p.device)[:, None]
    ax, ay = (torch.stack([a0[k], a0[k] + primes[k]]) for k in range(2))  # lower/upper corner terms [2, M]
    s = (seed * 2654435761 + 12345) & _MASK31
    if planar:
        corners = _mix((ax[:, None] ^ ay[None, :] ^ s) & _MASK31)  # [2, 2, M]
    else:
        az = torch.stack([a0[2], a0[2] + primes[2]])
        corners = _mix((ax[:, None, None] ^ ay[None, :, None] ^ az[None, None, :] ^ s) & _MASK31)  # [2, 2, 2, M]
        corners = torch.lerp(corners[:, :, 0], corners[:, :, 1], w[2])  # [2, 2, M]
    c = torch.lerp(corners[0], corners[1], w[0])  # [2, M]
    return torch.lerp(c[0], c[1], w[1])


def fbm3(p: Tensor, octaves: int = 3, seed: int = 0, planar: bool = False) -> Tensor:
    """Multi-octave value noise (lacunarity 2, gain 0.5) in [0, 1]. p: [3, M] -> [M]."""
    total = torch.zeros(p.shape[1:], dtype=torch.float32, device=p.device)
    amp, norm = 1.0, 0.0
    for k in range(octaves):
        total = total + amp * noise3(p * (2.0**k) + 17.31 * k, seed + 101 * k, planar)
        norm += amp
        amp *= 0.5
    return total * (1.0 / norm)


def value_noise(p: Tensor, seed: int = 0) -> Tensor:
    """Smooth 3D value noise in [0, 1] with a unit lattice. p: [..., 3] -> [...]."""
    return noise3(p.reshape(-1, 3).T.contiguous(), seed).reshape(p.shape[:-1])


def fbm(p: Tensor, octaves: int = 3, seed: int = 0) -> Tensor:
    """Multi-octave value noise in [0, 1]. p: [..., 3] -> [...]."""
    return fbm3(p.reshape(-1, 3).T.contiguous(), octaves, seed).reshape(p.shape[:-1])


# ---------------------------------------------------------------------------------------------- patterns
def _rotate_uv(uv: Tensor, angle_deg: float) -> tuple[Tensor, Tensor]:
    """uv [2, M] rotated by -angle (the pattern direction becomes the first axis)."""
    if angle_deg == 0.0:
        return uv[0], uv[1]
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return c * uv[0] + s * uv[1], -s * uv[0] + c * uv[1]


def pattern_weight(tex: Texture, uv: Tensor, p: Tensor, planar: bool = False) -> Tensor:
    """Blend weight of color_b in [0, 1]. uv: [2, M] surface coords, p: [3, M] local points -> [M].

    ``planar``: the points lie on their local z = 0 plane (noise is evaluated on that slice, cheaper).
    """
    if tex.kind == "solid":
        return torch.zeros(uv.shape[1], dtype=torch.float32, device=uv.device)
    if tex.kind == "noise":
        return fbm3(p * (1.0 / tex.scale), tex.octaves, tex.seed, planar)
    qu, qv = _rotate_uv(uv, tex.angle)
    qu, qv = qu * (1.0 / tex.scale), qv * (1.0 / tex.scale)
    if tex.kind == "checker":
        return (torch.floor(qu) + torch.floor(qv)).remainder(2.0).to(torch.float32)
    if tex.kind == "stripes":
        return torch.floor(qu).remainder(2.0).to(torch.float32)
    # gradient: color_a at -scale/2, color_b at +scale/2 along the pattern direction
    return (qu + 0.5).clamp(0.0, 1.0).to(torch.float32)


def _wrap(s: Tensor, mode: str) -> Tensor:
    """Crop fractions ``s`` folded into [0, 1] by the wrap mode."""
    if mode == "clamp":
        return s.clamp(0.0, 1.0)
    if mode == "repeat":
        return s - torch.floor(s)
    return 1.0 - (s.remainder(2.0) - 1.0).abs()  # mirror: 0 -> 0, 1 -> 1, 2 -> 0


def image_coords(tex: Texture, uv: Tensor) -> tuple[Tensor, Tensor]:
    """Where surface coords ``uv`` [2, M] (scene units) land on ``tex``'s photo: normalised (x, y), each [M].

    The crop's centre sits at uv = (0, 0); it is ``tex.scale`` units wide and as tall as its pixel aspect says.
    """
    h, w = photo_size(tex.photo)
    u0, v0, u1, v1 = tex.crop
    height = tex.scale * ((v1 - v0) * h) / ((u1 - u0) * w)
    qu, qv = _rotate_uv(uv, tex.angle)
    su = _wrap(qu * (1.0 / tex.scale) + 0.5, tex.wrap)
    sv = _wrap(qv * (1.0 / height) + 0.5, tex.wrap)
    return u0 + su * (u1 - u0), v0 + sv * (v1 - v0)


def sample_bilinear(img: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Bilinear lookup of ``img`` [3, H, W] at normalised coords ``x``, ``y`` [M] in [0, 1] -> [3, M].

    Pixel (i, j) has its centre at ((j + 0.5) / W, (i + 0.5) / H); beyond the outer centres the edge pixels
    hold (``grid_sample(..., align_corners=False, padding_mode="border")`` semantics).
    """
    _, H, W = img.shape
    px = (x * W - 0.5).clamp(0.0, W - 1.0)
    py = (y * H - 0.5).clamp(0.0, H - 1.0)
    x0, y0 = torch.floor(px), torch.floor(py)
    fx, fy = px - x0, py - y0
    i0, j0 = y0.to(torch.int64), x0.to(torch.int64)
    i1, j1 = (i0 + 1).clamp_max(H - 1), (j0 + 1).clamp_max(W - 1)
    flat = img.reshape(3, H * W)

    def at(i: Tensor, j: Tensor) -> Tensor:
        return flat[:, i * W + j]

    top = torch.lerp(at(i0, j0), at(i0, j1), fx[None])
    bottom = torch.lerp(at(i1, j0), at(i1, j1), fx[None])
    return torch.lerp(top, bottom, fy[None])


def eval_texture(tex: Texture, uv: Tensor, p: Tensor, planar: bool = False) -> Tensor:
    """Albedo of ``tex`` at surface coords ``uv`` [2, M] and local points ``p`` [3, M] -> [3, M] in [0, 1].

    ``planar``: the points lie on their local z = 0 plane (noise is evaluated on that slice, cheaper).
    """
    a = torch.tensor(tex.color_a, dtype=torch.float32, device=uv.device)[:, None]
    if tex.kind == "image":
        x, y = image_coords(tex, uv.to(torch.float32))
        rgb = sample_bilinear(photo_level(tex.photo, tex.lod).to(uv.device), x, y) * a
    else:
        w = pattern_weight(tex, uv, p, planar)
        b = torch.tensor(tex.color_b, dtype=torch.float32, device=uv.device)[:, None]
        rgb = torch.lerp(a, b, w[None]) if tex.kind != "solid" else a.expand(3, w.shape[0])
    if tex.detail > 0:
        fine = fbm3(p * (1.0 / DETAIL_SCALE) + 3.7, 2, tex.seed + 7919, planar)
        rgb = rgb * (1.0 - tex.detail * (fine - 0.5))
    return rgb.clamp(0.0, 1.0)
