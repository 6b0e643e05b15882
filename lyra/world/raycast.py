"""Analytic ray-primitive intersection in a primitive's local frame (vectorised torch, pure functions).

Vectors are passed component-wise (structure of arrays): ``o = (ox, oy, oz)``, each component a
tensor [M] or a Python float shared by all M rays (a camera centre, a light direction); this keeps
every operation on contiguous memory and lets shared values cost nothing. Directions need not be
unit length. ``hit_*`` return the ray parameter ``t`` [M] of the nearest hit with ``t > t_min``
(``inf`` where the ray misses), so the hit point is ``o + t * d``. ``surface_*`` take local hit
points and return local outward normals and texture coordinates ``(u, v)`` in scene units.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lyra.world.primitives import Box, Cylinder, Plane, Primitive, Sphere

Scalar = Tensor | float
Vec = tuple[Scalar, Scalar, Scalar]  # components: tensors [M] or floats
_TINY = 1e-12


def _safe(x: Scalar) -> Scalar:
    """``x`` with zeros and tiny magnitudes replaced by +-1e-12 (keeps the sign): a safe divisor."""
    if isinstance(x, Tensor):
        return torch.where(x.abs() < _TINY, torch.where(x < 0, -_TINY, _TINY), x)
    return x if abs(x) >= _TINY else math.copysign(_TINY, x)


def _nonzero_dir(x: Scalar) -> Tensor | bool:
    return x.abs() >= _TINY if isinstance(x, Tensor) else abs(x) >= _TINY


def tensor_of(*xs: Scalar) -> Tensor:
    """The first tensor among ray components (gives the batch shape, dtype and device)."""
    for x in xs:
        if isinstance(x, Tensor):
            return x
    raise ValueError("at least one ray component must be a tensor")


def as_tensor(x: Scalar, ref: Tensor) -> Tensor:
    """``x`` as a tensor shaped like ``ref`` (a shared float is broadcast)."""
    return x if isinstance(x, Tensor) else torch.full_like(ref, x)


def _miss_where(ok: Tensor, t: Tensor) -> Tensor:
    return torch.where(ok, t, math.inf)


def dot(a: Vec, b: Vec) -> Scalar:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


# ---------------------------------------------------------------------------------------------- intersections
def hit_plane(o: Vec, d: Vec, half_size: tuple[float, float] | None, t_min: float) -> Tensor:
    """Local plane z = 0, bounded by |x| <= hx, |y| <= hy when ``half_size`` is given -> t [M]."""
    t = as_tensor(-o[2] / _safe(d[2]), tensor_of(*o, *d))
    ok = (t > t_min) & _nonzero_dir(d[2])
    if half_size is not None:
        ok = ok & ((o[0] + t * d[0]).abs() <= half_size[0]) & ((o[1] + t * d[1]).abs() <= half_size[1])
    return _miss_where(ok, t)


def hit_box(o: Vec, d: Vec, half_size: tuple[float, float, float], t_min: float) -> Tensor:
    """Axis-aligned local box |x_i| <= h_i (slab method); from inside, the exit point -> t [M]."""
    ref = tensor_of(*o, *d)
    t_near = torch.full_like(ref, -math.inf)
    t_far = torch.full_like(ref, math.inf)
    for i in range(3):
        inv = 1.0 / _safe(d[i])
        t1 = as_tensor((-half_size[i] - o[i]) * inv, ref)
        t2 = as_tensor((half_size[i] - o[i]) * inv, ref)
        t_near = torch.maximum(t_near, torch.minimum(t1, t2))
        t_far = torch.minimum(t_far, torch.maximum(t1, t2))
    ok = (t_near <= t_far) & (t_far > t_min)
    return _miss_where(ok, torch.where(t_near > t_min, t_near, t_far))


def _quadratic_roots(a: Scalar, b_half: Scalar, c: Scalar, ref: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Roots t0 <= t1 of a t^2 + 2 b_half t + c = 0 (a > 0) and a mask of real roots (shaped like ``ref``)."""
    disc = as_tensor(b_half * b_half - a * c, ref)
    sq = torch.sqrt(disc.clamp_min(0.0))
    inv_a = 1.0 / _safe(a)
    return (-b_half - sq) * inv_a, (-b_half + sq) * inv_a, disc >= 0


def hit_sphere(o: Vec, d: Vec, radius: float, t_min: float) -> Tensor:
    """Local sphere |p| = radius around the origin -> t [M]."""
    t0, t1, real = _quadratic_roots(dot(d, d), dot(o, d), dot(o, o) - radius * radius, tensor_of(*o, *d))
    t = torch.where(t0 > t_min, t0, t1)
    return _miss_where(real & (t > t_min), t)


def hit_cylinder(o: Vec, d: Vec, radius: float, half_height: float, t_min: float) -> Tensor:
    """Local capped cylinder x^2 + z^2 <= r^2, |y| <= half_height -> t [M]."""
    ref = tensor_of(*o, *d)
    best = torch.full_like(ref, math.inf)
    # side
    a = d[0] * d[0] + d[2] * d[2]
    t0, t1, real = _quadratic_roots(a, o[0] * d[0] + o[2] * d[2], o[0] * o[0] + o[2] * o[2] - radius * radius,
                                    ref)
    real = real & (a > _TINY)
    for tc in (t0, t1):
        ok = real & (tc > t_min) & ((o[1] + tc * d[1]).abs() <= half_height) & (tc < best)
        best = torch.where(ok, tc, best)
    # caps
    inv_dy = 1.0 / _safe(d[1])
    for y_cap in (-half_height, half_height):
        tc = (y_cap - o[1]) * inv_dy
        tc = as_tensor(tc, ref)
        x, z = o[0] + tc * d[0], o[2] + tc * d[2]
        ok = (tc > t_min) & (x * x + z * z <= radius * radius) & _nonzero_dir(d[1]) & (tc < best)
        best = torch.where(ok, tc, best)
    return best


def intersect(prim: Primitive, o: Vec, d: Vec, t_min: float) -> Tensor:
    """Nearest hit of local rays with ``prim`` (in its own frame) -> t [M], inf where missed."""
    if isinstance(prim, Plane):
        return hit_plane(o, d, prim.half_size, t_min)
    if isinstance(prim, Box):
        return hit_box(o, d, prim.half_size, t_min)
    if isinstance(prim, Sphere):
        return hit_sphere(o, d, prim.radius, t_min)
    if isinstance(prim, Cylinder):
        return hit_cylinder(o, d, prim.radius, prim.half_height, t_min)
    raise TypeError(f"not a primitive: {type(prim).__name__}")


# ---------------------------------------------------------------------------------------------- surfaces
Surface = tuple[tuple[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


def surface_plane(p: tuple[Tensor, Tensor, Tensor]) -> Surface:
    """Normal +z and uv = local (x, y)."""
    zero = torch.zeros_like(p[0])
    return (zero, zero, torch.ones_like(p[0])), (p[0], p[1])


def surface_box(p: tuple[Tensor, Tensor, Tensor], half_size: tuple[float, float, float]) -> Surface:
    """Face normal (the axis where |p_i| / h_i is largest) and uv = the face's other two coordinates."""
    ax, ay, az = (p[i].abs() / half_size[i] for i in range(3))
    on_x = (ax >= ay) & (ax >= az)
    on_y = ~on_x & (ay >= az)
    on_z = ~on_x & ~on_y
    n = tuple(torch.where(m, torch.sign(p[i]), 0.0) for i, m in enumerate((on_x, on_y, on_z)))
    u = torch.where(on_x, p[1], torch.where(on_y, p[2], p[0]))
    v = torch.where(on_x, p[2], torch.where(on_y, p[0], p[1]))
    return n, (u, v)  # type: ignore[return-value]


def surface_sphere(p: tuple[Tensor, Tensor, Tensor], radius: float) -> Surface:
    """Normal p / r and uv = (longitude, latitude) * r (arc lengths at the equator)."""
    n = (p[0] / radius, p[1] / radius, p[2] / radius)
    u = torch.atan2(p[2], p[0]) * radius
    v = torch.asin(n[1].clamp(-1.0, 1.0)) * radius
    return n, (u, v)


def surface_cylinder(p: tuple[Tensor, Tensor, Tensor], radius: float, half_height: float) -> Surface:
    """Side normal radial, cap normal +-y; uv = (arc length, y) on the side, (x, z) on the caps."""
    rho = torch.sqrt(p[0] * p[0] + p[2] * p[2])
    cap = p[1].abs() / half_height > rho / radius
    inv = 1.0 / rho.clamp_min(_TINY)
    n = (torch.where(cap, 0.0, p[0] * inv), torch.where(cap, torch.sign(p[1]), 0.0),
         torch.where(cap, 0.0, p[2] * inv))
    u = torch.where(cap, p[0], torch.atan2(p[2], p[0]) * radius)
    v = torch.where(cap, p[2], p[1])
    return n, (u, v)


def surface(prim: Primitive, p: tuple[Tensor, Tensor, Tensor]) -> Surface:
    """Local normals (nx, ny, nz) and uv (u, v), each [M], of ``prim`` at local hit points ``p``."""
    if isinstance(prim, Plane):
        return surface_plane(p)
    if isinstance(prim, Box):
        return surface_box(p, prim.half_size)
    if isinstance(prim, Sphere):
        return surface_sphere(p, prim.radius)
    if isinstance(prim, Cylinder):
        return surface_cylinder(p, prim.radius, prim.half_height)
    raise TypeError(f"not a primitive: {type(prim).__name__}")
