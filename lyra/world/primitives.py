"""Scene primitives (planes, oriented boxes, spheres, capped cylinders) and their motion paths.

Every primitive has a rigid local frame: ``frame()`` returns its centre (world, scene units) and a
3x3 matrix whose columns are the local x, y, z axes in world coordinates. Ray casting happens in
that frame (see ``raycast``). World "up" is -y (OpenCV: y points down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from lyra.world.textures import Texture

Vec3 = tuple[float, float, float]
MotionKind = Literal["static", "linear", "circular"]
MOTION_KINDS: tuple[str, ...] = ("static", "linear", "circular")


# ---------------------------------------------------------------------------------------------- small vector math
def _norm(v: Vec3) -> float:
    return math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])


def normalize(v: Vec3) -> Vec3:
    """Unit vector along ``v`` (error for a zero vector)."""
    n = _norm(v)
    if not n > 0:
        raise ValueError(f"cannot normalise the zero vector {v}")
    return (v[0] / n, v[1] / n, v[2] / n)


def cross(a: Vec3, b: Vec3) -> Vec3:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def dot(a: Vec3, b: Vec3) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def rotate_about_axis(v: Vec3, axis: Vec3, angle: float) -> Vec3:
    """``v`` rotated by ``angle`` radians about the unit ``axis`` (Rodrigues)."""
    k = normalize(axis)
    c, s = math.cos(angle), math.sin(angle)
    kxv = cross(k, v)
    kdv = dot(k, v)
    return tuple(v[i] * c + kxv[i] * s + k[i] * kdv * (1 - c) for i in range(3))  # type: ignore[return-value]


def quat_to_matrix(q: tuple[float, float, float, float]) -> tuple[Vec3, Vec3, Vec3]:
    """Rows of the rotation matrix of quaternion (w, x, y, z) (normalised here)."""
    n = math.sqrt(sum(c * c for c in q))
    if not n > 0:
        raise ValueError("zero quaternion")
    w, x, y, z = (c / n for c in q)
    return (
        (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    )


def quat_about_axis(axis: Vec3, angle_deg: float) -> tuple[float, float, float, float]:
    """Quaternion (w, x, y, z) of a rotation by ``angle_deg`` about ``axis``."""
    k = normalize(axis)
    h = math.radians(angle_deg) / 2
    s = math.sin(h)
    return (math.cos(h), k[0] * s, k[1] * s, k[2] * s)


def columns_to_rows(cx: Vec3, cy: Vec3, cz: Vec3) -> tuple[Vec3, Vec3, Vec3]:
    """Row-major 3x3 from three column vectors."""
    return ((cx[0], cy[0], cz[0]), (cx[1], cy[1], cz[1]), (cx[2], cy[2], cz[2]))


def _basis_from_axis(axis: Vec3) -> tuple[Vec3, Vec3]:
    """Two unit vectors orthogonal to unit ``axis`` and to each other (deterministic)."""
    ref = (0.0, 0.0, 1.0) if abs(axis[2]) < 0.9 else (1.0, 0.0, 0.0)
    a = normalize(cross(ref, axis))
    return a, cross(axis, a)


# ---------------------------------------------------------------------------------------------- motion
@dataclass(frozen=True)
class Motion:
    """A translation path over normalised time t in [0, 1] (orientation is kept).

    Attributes:
        kind: "static", "linear" (displacement ``t * delta``) or "circular" (the centre turns
            about the line through ``pivot`` along ``axis`` by ``turns * 360 deg * t``).
        delta: linear displacement at t = 1 (scene units).
        pivot: a point on the circular path's axis (world).
        axis: the circular path's axis direction (world; the sign sets the direction of travel).
        turns: number of revolutions over t in [0, 1] (may be fractional or negative).
    """

    kind: MotionKind = "static"
    delta: Vec3 = (0.0, 0.0, 0.0)
    pivot: Vec3 = (0.0, 0.0, 0.0)
    axis: Vec3 = (0.0, -1.0, 0.0)
    turns: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in MOTION_KINDS:
            raise ValueError(f"Motion: unknown kind {self.kind!r} (one of {', '.join(MOTION_KINDS)})")
        if self.kind == "circular":
            normalize(self.axis)

    def position(self, base: Vec3, t: float) -> Vec3:
        """Where a centre that is at ``base`` at t = 0 is at time ``t``."""
        if self.kind == "static":
            return base
        if self.kind == "linear":
            return (base[0] + t * self.delta[0], base[1] + t * self.delta[1], base[2] + t * self.delta[2])
        r = (base[0] - self.pivot[0], base[1] - self.pivot[1], base[2] - self.pivot[2])
        r = rotate_about_axis(r, self.axis, 2 * math.pi * self.turns * t)
        return (self.pivot[0] + r[0], self.pivot[1] + r[1], self.pivot[2] + r[2])

    @property
    def is_static(self) -> bool:
        return self.kind == "static" or (self.kind == "linear" and self.delta == (0.0, 0.0, 0.0)) or (
            self.kind == "circular" and self.turns == 0.0)


# ---------------------------------------------------------------------------------------------- primitives
@dataclass(frozen=True)
class Plane:
    """A flat rectangle (or an unbounded plane), double-sided.

    Local frame: x = ``tangent``, z = ``normal``, y = z cross x; the surface is local z = 0 and its
    texture coordinates are local (x, y).

    Attributes:
        center: a point of the plane (world).
        normal: unit normal (world); shading uses the side facing the ray.
        tangent: in-plane direction of local x (made orthogonal to the normal).
        half_size: half extents along local x and y (scene units), or None for an unbounded plane.
    """

    center: Vec3
    normal: Vec3
    tangent: Vec3 = (1.0, 0.0, 0.0)
    half_size: tuple[float, float] | None = None
    texture: Texture = field(default_factory=Texture)
    motion: Motion = field(default_factory=Motion)
    name: str = ""
    casts_shadow: bool = True

    def frame(self) -> tuple[Vec3, tuple[Vec3, Vec3, Vec3]]:
        z = normalize(self.normal)
        x = normalize(cross(cross(z, self.tangent), z))
        return self.center, columns_to_rows(x, cross(z, x), z)


@dataclass(frozen=True)
class Box:
    """An oriented box: ``half_size`` along its local axes, rotated by quaternion ``rotation`` (w, x, y, z)."""

    center: Vec3
    half_size: Vec3
    rotation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    texture: Texture = field(default_factory=Texture)
    motion: Motion = field(default_factory=Motion)
    name: str = ""
    casts_shadow: bool = True

    def frame(self) -> tuple[Vec3, tuple[Vec3, Vec3, Vec3]]:
        return self.center, quat_to_matrix(self.rotation)


@dataclass(frozen=True)
class Sphere:
    """A sphere of ``radius`` around ``center`` (local frame axis-aligned with the world)."""

    center: Vec3
    radius: float
    texture: Texture = field(default_factory=Texture)
    motion: Motion = field(default_factory=Motion)
    name: str = ""
    casts_shadow: bool = True

    def frame(self) -> tuple[Vec3, tuple[Vec3, Vec3, Vec3]]:
        return self.center, ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


@dataclass(frozen=True)
class Cylinder:
    """A capped cylinder around ``axis`` through ``center``; local y = axis, length 2 * ``half_height``."""

    center: Vec3
    radius: float
    half_height: float
    axis: Vec3 = (0.0, -1.0, 0.0)
    texture: Texture = field(default_factory=Texture)
    motion: Motion = field(default_factory=Motion)
    name: str = ""
    casts_shadow: bool = True

    def frame(self) -> tuple[Vec3, tuple[Vec3, Vec3, Vec3]]:
        y = normalize(self.axis)
        x, _ = _basis_from_axis(y)
        return self.center, columns_to_rows(x, y, cross(x, y))


Primitive = Plane | Box | Sphere | Cylinder
PRIMITIVE_TYPES: dict[str, type] = {"plane": Plane, "box": Box, "sphere": Sphere, "cylinder": Cylinder}


def validate_primitive(p: Primitive) -> None:
    """Raise ValueError for non-positive sizes or degenerate axes."""
    if isinstance(p, Plane):
        normalize(p.normal)
        if _norm(cross(p.normal, p.tangent)) < 1e-9:
            raise ValueError(f"Plane {p.name!r}: tangent is parallel to the normal")
        if p.half_size is not None and not all(h > 0 for h in p.half_size):
            raise ValueError(f"Plane {p.name!r}: half_size must be > 0, got {p.half_size}")
    elif isinstance(p, Box):
        if not all(h > 0 for h in p.half_size):
            raise ValueError(f"Box {p.name!r}: half_size must be > 0, got {p.half_size}")
        quat_to_matrix(p.rotation)
    elif isinstance(p, Sphere):
        if not p.radius > 0:
            raise ValueError(f"Sphere {p.name!r}: radius must be > 0, got {p.radius}")
    elif isinstance(p, Cylinder):
        normalize(p.axis)
        if not (p.radius > 0 and p.half_height > 0):
            raise ValueError(f"Cylinder {p.name!r}: radius and half_height must be > 0")
    else:
        raise TypeError(f"not a primitive: {type(p).__name__}")
