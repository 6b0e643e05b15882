"""Procedural textures: checker, multi-octave value noise, stripes, gradients (pure torch, deterministic).

A texture maps surface coordinates to albedo. Patterned kinds (checker, stripes, gradient) read 2D
surface coordinates ``uv`` [2, M] (scene units along the surface); noise reads the 3D object-local
point ``p`` [3, M] (solid noise: no seams on spheres or box edges). Internally, point sets are
component rows ([3, M]) for contiguous arithmetic; ``value_noise`` / ``fbm`` take [..., 3].
Every kind may add ``detail``: a fine multiplicative noise that gives flat regions texture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

TextureKind = Literal["solid", "checker", "noise", "stripes", "gradient"]
TEXTURE_KINDS: tuple[str, ...] = ("solid", "checker", "noise", "stripes", "gradient")

Color = tuple[float, float, float]
DETAIL_SCALE = 0.08  # cell size of the ``detail`` noise (scene units)


@dataclass(frozen=True)
class Texture:
    """Albedo pattern of one surface.

    Attributes:
        kind: "solid" (color_a), "checker", "noise" (value-noise fBm), "stripes" or "gradient".
        color_a, color_b: linear RGB in [0, 1]; patterns blend or alternate between them.
        scale: feature size in scene units (checker cell, stripe period, noise cell, gradient length).
        angle: pattern direction in the uv plane, degrees (stripes, gradient, checker rotation).
        octaves: number of noise octaves (noise kind and detail).
        seed: integer seed of the noise lattice.
        detail: strength in [0, 1] of a fine multiplicative noise (cells of DETAIL_SCALE units) on top of any kind.
    """

    kind: TextureKind = "solid"
    color_a: Color = (0.7, 0.7, 0.7)
    color_b: Color = (0.3, 0.3, 0.3)
    scale: float = 1.0
    angle: float = 0.0
    octaves: int = 3
    seed: int = 0
    detail: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in TEXTURE_KINDS:
            raise ValueError(f"Texture: unknown kind {self.kind!r} (one of {', '.join(TEXTURE_KINDS)})")
        if not self.scale > 0:
            raise ValueError(f"Texture: scale must be > 0, got {self.scale}")
        if self.octaves < 1:
            raise ValueError(f"Texture: octaves must be >= 1, got {self.octaves}")


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


def eval_texture(tex: Texture, uv: Tensor, p: Tensor, planar: bool = False) -> Tensor:
    """Albedo of ``tex`` at surface coords ``uv`` [2, M] and local points ``p`` [3, M] -> [3, M] in [0, 1].

    ``planar``: the points lie on their local z = 0 plane (noise is evaluated on that slice, cheaper).
    """
    w = pattern_weight(tex, uv, p, planar)
    a = torch.tensor(tex.color_a, dtype=torch.float32, device=uv.device)[:, None]
    b = torch.tensor(tex.color_b, dtype=torch.float32, device=uv.device)[:, None]
    rgb = torch.lerp(a, b, w[None]) if tex.kind != "solid" else a.expand(3, w.shape[0])
    if tex.detail > 0:
        fine = fbm3(p * (1.0 / DETAIL_SCALE) + 3.7, 2, tex.seed + 7919, planar)
        rgb = rgb * (1.0 - tex.detail * (fine - 0.5))
    return rgb.clamp(0.0, 1.0)
