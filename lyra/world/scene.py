"""The World type: primitives, lights and sky; exact RGB / z-depth / object-mask rendering; JSON I/O.

Rendering casts one ray through each pixel centre (OpenCV pinhole, see ``lyra.cameras``), finds the
nearest analytic hit, and shades it with Lambert lighting from directional lights plus ambient
(optionally with hard shadows). Shading is view-independent, so every view of a world agrees.
Depth is camera-space z (0 where the ray sees the sky); mask ids are 1 + the primitive's index in
``World.primitives`` (0 = sky).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lyra.cameras import Cameras
from lyra.errors import InputError
from lyra.utils.inputs import read_json
from lyra.utils.typed import from_plain
from lyra.world.primitives import (
    PRIMITIVE_TYPES,
    Box,
    Cylinder,
    Motion,
    Plane,
    Primitive,
    Sphere,
    Vec3,
    normalize,
    validate_primitive,
)
from lyra.world.raycast import Scalar, Vec, as_tensor, dot, intersect, surface, tensor_of
from lyra.world.textures import Color, eval_texture

WORLD_FORMAT = "lyra.world"
WORLD_VERSION = 2  # 2: image textures (photo, crop, wrap, lod); version 1 files read unchanged
UP: Vec3 = (0.0, -1.0, 0.0)  # world up (OpenCV y points down)
T_MIN = 1e-4  # primary rays ignore hits closer than this (scene units)
SHADOW_OFFSET = 1e-3  # shadow rays start this far off the surface, along its normal


class WorldError(InputError):
    """Raised for malformed world data (bad JSON, unknown primitive types, missing fields)."""


@dataclass(frozen=True)
class DirectionalLight:
    """A light at infinity. ``direction`` points from the scene towards the light (world)."""

    direction: Vec3
    color: Color = (1.0, 1.0, 1.0)
    intensity: float = 1.0

    def __post_init__(self) -> None:
        normalize(self.direction)


@dataclass(frozen=True)
class Sky:
    """A gradient dome at infinite distance with an optional sun disk.

    Attributes:
        zenith, horizon, ground: colours straight up, at the horizon and below it.
        sun_direction: direction towards the sun (world).
        sun_color: colour of the disk (and of its glow).
        sun_radius_deg: angular radius of the disk in degrees; 0 = no sun.
        sun_glow: strength of a soft halo around the sun.
    """

    zenith: Color = (0.25, 0.45, 0.85)
    horizon: Color = (0.75, 0.85, 0.95)
    ground: Color = (0.45, 0.42, 0.38)
    sun_direction: Vec3 = (0.3, -0.6, 0.7)
    sun_color: Color = (1.0, 0.95, 0.8)
    sun_radius_deg: float = 0.0
    sun_glow: float = 0.0

    def __post_init__(self) -> None:
        normalize(self.sun_direction)


@dataclass(frozen=True)
class WorldRender:
    """Exact renders of a world.

    Attributes:
        rgb: [N, 3, H, W] float32 in [0, 1].
        depth: [N, 1, H, W] float32 camera-space z (scene units); 0 where the sky is seen.
        mask: [N, 1, H, W] int64 object ids (1 + index into ``World.primitives``); 0 = sky.
    """

    rgb: Tensor
    depth: Tensor
    mask: Tensor


@dataclass(frozen=True)
class World:
    """A procedural scene with exact ground truth.

    Attributes:
        primitives: the surfaces; mask id of ``primitives[i]`` is ``i + 1``.
        lights: directional lights (Lambert shading).
        ambient: ambient light colour added to every surface.
        sky: the background at infinity.
        shadows: whether lights are occluded by primitives with ``casts_shadow``.
        name, kind, seed: provenance (free text, "room" / "yard" / "photo" / "custom", generator seed or None).
    """

    primitives: tuple[Primitive, ...]
    lights: tuple[DirectionalLight, ...] = ()
    ambient: Color = (0.35, 0.35, 0.35)
    sky: Sky = field(default_factory=Sky)
    shadows: bool = True
    name: str = ""
    kind: str = "custom"
    seed: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "primitives", tuple(self.primitives))
        object.__setattr__(self, "lights", tuple(self.lights))
        for p in self.primitives:
            validate_primitive(p)

    # ------------------------------------------------------------------ queries
    @property
    def names(self) -> list[str]:
        """Primitive names; ``names[i - 1]`` belongs to mask id ``i``."""
        return [p.name for p in self.primitives]

    @property
    def moving_ids(self) -> list[int]:
        """Mask ids of primitives that move with time."""
        return [i + 1 for i, p in enumerate(self.primitives) if not p.motion.is_static]

    def at_time(self, time: float) -> World:
        """This world with every primitive moved to where it is at ``time`` (all made static)."""
        prims = tuple(replace(p, center=p.motion.position(p.center, time), motion=Motion())
                      for p in self.primitives)
        return replace(self, primitives=prims)

    # ------------------------------------------------------------------ rendering
    def render(
        self,
        cameras: Cameras,
        time: float | Sequence[float] | Tensor = 0.0,
        *,
        supersample: int = 1,
        chunk: int = 1 << 15,
    ) -> WorldRender:
        """Render RGB, z-depth and object masks for every camera.

        On CPU the work is many small tensor operations, for which torch's intra-op threads cost more
        than they give (tens of times more on a busy machine): rendering runs with one torch thread and
        restores the thread count afterwards. Parallelise over processes instead.

        Args:
            cameras: N cameras (H x W pixels).
            time: normalised time in [0, 1] for moving primitives: one value, or [N] one per camera.
            supersample: s > 1 averages s x s sub-pixel rays for RGB (anti-aliasing); depth and mask
                always come from the exact pixel-centre ray.
            chunk: rays processed at once per camera (bounds memory: about 1 KB per ray).
        Returns:
            WorldRender with rgb [N, 3, H, W], depth [N, 1, H, W], mask [N, 1, H, W].
        """
        n = len(cameras)
        times = torch.as_tensor(time, dtype=torch.float64).reshape(-1)
        if times.numel() == 1:
            times = times.expand(n)
        if times.numel() != n:
            raise WorldError(f"render: got {times.numel()} times for {n} cameras")
        if supersample < 1:
            raise WorldError(f"render: supersample must be >= 1, got {supersample}")
        if chunk < 1:
            raise WorldError(f"render: chunk must be >= 1, got {chunk}")
        H, W = cameras.height, cameras.width
        rgb = torch.empty(n, 3, H * W, dtype=torch.float32, device=cameras.device)
        depth = torch.empty(n, H * W, dtype=torch.float32, device=cameras.device)
        mask = torch.empty(n, H * W, dtype=torch.int64, device=cameras.device)
        hi = cameras.resized(H * supersample, W * supersample) if supersample > 1 else None
        posed_at: dict[float, list[_Posed]] = {}
        with _one_cpu_thread(cameras.device):
            for i, t_val in enumerate(times.tolist()):
                if t_val not in posed_at:
                    posed_at[t_val] = _pose_primitives(self.primitives, t_val)
                posed = posed_at[t_val]
                for start in range(0, H * W, chunk):
                    end = min(start + chunk, H * W)
                    c, t, ids = _render_rays(self, posed, *_camera_rays(cameras, i, start, end))
                    rgb[i, :, start:end] = c
                    depth[i, start:end] = torch.where(ids > 0, t, 0.0)
                    mask[i, start:end] = ids
                if hi is not None:
                    rgb[i] = _render_rgb(self, posed, hi, i, chunk, supersample)
        return WorldRender(rgb.reshape(n, 3, H, W), depth.reshape(n, 1, H, W), mask.reshape(n, 1, H, W))

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists for vectors); ``World.from_dict`` inverts it exactly."""
        return {
            "format": WORLD_FORMAT,
            "version": WORLD_VERSION,
            "name": self.name,
            "kind": self.kind,
            "seed": self.seed,
            "ambient": list(self.ambient),
            "shadows": self.shadows,
            "sky": _to_plain(self.sky),
            "lights": [_to_plain(light) for light in self.lights],
            "primitives": [{"type": _type_name(p), **_to_plain(p)} for p in self.primitives],
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> World:
        """Rebuild a world from ``to_dict`` output; raises WorldError on malformed data."""
        if not isinstance(data, dict):
            raise WorldError(f"world: expected a JSON object, got {type(data).__name__}")
        if data.get("format", WORLD_FORMAT) != WORLD_FORMAT:
            raise WorldError(f"world: format is {data.get('format')!r}, expected {WORLD_FORMAT!r}")
        if "version" not in data:
            raise WorldError("world: missing field 'version'")
        version = data["version"]
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= WORLD_VERSION:
            raise WorldError(f"world: unsupported version {version!r} (this lyra reads 1..{WORLD_VERSION})")
        if "primitives" not in data:
            raise WorldError("world: missing field 'primitives'")
        if not isinstance(data["primitives"], list):
            raise WorldError("world: 'primitives' must be a list")
        prims = []
        for i, raw in enumerate(data["primitives"]):
            if not isinstance(raw, dict):
                raise WorldError(f"primitive {i}: expected an object, got {type(raw).__name__}")
            if "type" not in raw:
                raise WorldError(f"primitive {i}: missing field 'type'")
            cls = PRIMITIVE_TYPES.get(raw["type"])
            if cls is None:
                raise WorldError(f"primitive {i}: unknown type {raw['type']!r} "
                                 f"(one of {', '.join(sorted(PRIMITIVE_TYPES))})")
            body = {k: v for k, v in raw.items() if k != "type"}
            prims.append(_from_plain(cls, body, f"primitive {i} ({raw['type']})"))
        top = {k: v for k, v in data.items() if k not in ("format", "version", "primitives")}
        top["primitives"] = ()
        world = _from_plain(World, top, "world")
        try:
            return replace(world, primitives=tuple(prims))
        except (TypeError, ValueError) as e:
            raise WorldError(f"world: {e}") from e

    def save_json(self, path: str | Path) -> None:
        """Write the world as JSON (atomically: temp file then rename)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        tmp.replace(path)

    @staticmethod
    def load_json(path: str | Path) -> World:
        """Read a world written by ``save_json``; raises WorldError naming the file on malformed files."""
        data = read_json(path, "world JSON file", WorldError)
        try:
            return World.from_dict(data)
        except WorldError as exc:
            raise WorldError(path, str(exc)) from exc


# ---------------------------------------------------------------------------------------------- rendering internals
# Vectors are component triples (structure of arrays, see ``raycast``): tensors [M] or shared floats.
Rows = tuple[Vec3, Vec3, Vec3]


@dataclass(frozen=True)
class _Posed:
    """A primitive at one time: centre (world), ``rows`` of its local-to-world rotation (columns = local
    axes) and the radius of a bounding sphere around the centre (inf for unbounded planes)."""

    prim: Primitive
    center: Vec3
    rows: Rows
    radius: float


def bounding_radius(p: Primitive) -> float:
    """Radius of a sphere around ``p.center`` that contains ``p`` (inf for an unbounded plane)."""
    if isinstance(p, Plane):
        return math.inf if p.half_size is None else math.hypot(*p.half_size)
    if isinstance(p, Box):
        return math.sqrt(sum(h * h for h in p.half_size))
    if isinstance(p, Sphere):
        return p.radius
    if isinstance(p, Cylinder):
        return math.hypot(p.radius, p.half_height)
    raise TypeError(f"not a primitive: {type(p).__name__}")


@contextlib.contextmanager
def _one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Run the body with one torch intra-op thread on CPU (restored afterwards)."""
    n = torch.get_num_threads()
    if device.type != "cpu" or n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _pose_primitives(prims: Sequence[Primitive], time: float) -> list[_Posed]:
    out = []
    for p in prims:
        center, rows = p.frame()
        out.append(_Posed(p, p.motion.position(center, time), rows, bounding_radius(p)))
    return out


def _lincomb(coef: Vec3, v: Vec) -> Scalar:
    """coef . v, skipping zero coefficients (axis-aligned frames cost one copy, not nine multiplies)."""
    out: Scalar | None = None
    for c, x in zip(coef, v, strict=True):
        if c == 0.0:
            continue
        term = x if c == 1.0 else (-x if c == -1.0 else c * x)
        out = term if out is None else out + term
    return 0.0 if out is None else out


def _to_local(ps: _Posed, v: Vec, is_point: bool) -> Vec:
    """World point or direction -> the primitive's local frame."""
    if is_point:
        v = tuple(x - c if c != 0.0 else x for x, c in zip(v, ps.center, strict=True))  # type: ignore[assignment]
    r = ps.rows
    return tuple(_lincomb((r[0][i], r[1][i], r[2][i]), v) for i in range(3))  # type: ignore[return-value]


def _to_world_dir(ps: _Posed, v: Vec) -> Vec:
    return tuple(_lincomb(ps.rows[j], v) for j in range(3))  # type: ignore[return-value]


def _take(v: Vec, idx: Tensor) -> Vec:
    """Select rays ``idx`` from each tensor component (shared floats stay shared)."""
    return tuple(x[idx] if isinstance(x, Tensor) else x for x in v)  # type: ignore[return-value]


@dataclass(frozen=True)
class _View:
    """One camera's pixel chunk: flat row-major pixel range [start, end) of an H x W image."""

    R: Rows  # world-to-camera rotation rows
    t: Vec3  # world-to-camera translation
    fx: float
    fy: float
    cx: float
    cy: float
    height: int
    width: int
    start: int
    end: int


def _camera_rays(cameras: Cameras, i: int, start: int, end: int) -> tuple[Vec, Vec, _View]:
    """Origin (shared floats) and directions ([M] each) of camera ``i``'s pixels [start, end) (row-major).

    Directions have camera-space z = 1, so the ray parameter of a hit is its z-depth.
    """
    W = cameras.width
    pix = torch.arange(start, end, device=cameras.device)
    u = (pix % W).to(cameras.dtype) + 0.5
    v = torch.div(pix, W, rounding_mode="floor").to(cameras.dtype) + 0.5
    fx, fy, cx, cy = (float(x[i]) for x in (cameras.fx, cameras.fy, cameras.cx, cameras.cy))
    xc, yc = (u - cx) / fx, (v - cy) / fy
    R = cameras.R[i].tolist()  # rows: camera axes in world coordinates
    one = torch.ones_like(xc)
    d = tuple(as_tensor(_lincomb((R[0][j], R[1][j], R[2][j]), (xc, yc, one)), xc) for j in range(3))
    o = tuple(float(x) for x in cameras.centers[i])
    view = _View(tuple(tuple(r) for r in R), tuple(cameras.t[i].tolist()), fx, fy, cx, cy,  # type: ignore[arg-type]
                 cameras.height, W, start, end)
    return o, d, view  # type: ignore[return-value]


def _screen_candidates(ps: _Posed, view: _View, device: torch.device) -> Tensor | None:
    """Chunk-local indices of the pixels whose centres fall in the projected bounding box of the primitive's
    bounding sphere; None when the sphere reaches behind the near side of the camera (no bound)."""
    if isinstance(ps.prim, Plane) or not math.isfinite(ps.radius):
        return None
    c = [sum(view.R[j][k] * ps.center[k] for k in range(3)) + view.t[j] for j in range(3)]
    r = ps.radius * (1 + 1e-4) + 1e-6
    if c[2] + r <= 0:  # entirely behind the camera
        return torch.zeros(0, dtype=torch.int64, device=device)
    if c[2] - r <= 1e-6:
        return None
    zs = (c[2] - r, c[2] + r)
    xs = [(c[0] + sx) / z for sx in (-r, r) for z in zs]
    ys = [(c[1] + sy) / z for sy in (-r, r) for z in zs]
    # pixel u covers [u, u + 1); its centre is u + 0.5; one pixel of margin on each side
    u0 = max(0, math.floor(view.fx * min(xs) + view.cx - 0.5) - 1)
    u1 = min(view.width - 1, math.ceil(view.fx * max(xs) + view.cx - 0.5) + 1)
    v0 = max(view.start // view.width, math.floor(view.fy * min(ys) + view.cy - 0.5) - 1)
    v1 = min((view.end - 1) // view.width, math.ceil(view.fy * max(ys) + view.cy - 0.5) + 1)
    if u0 > u1 or v0 > v1:
        return torch.zeros(0, dtype=torch.int64, device=device)
    rows = torch.arange(v0, v1 + 1, device=device) * view.width
    flat = (rows[:, None] + torch.arange(u0, u1 + 1, device=device)[None, :]).flatten() - view.start
    if view.start % view.width or view.end % view.width:  # chunk boundaries inside a row
        flat = flat[(flat >= 0) & (flat < view.end - view.start)]
    return flat


def _candidates(ps: _Posed, o: Vec, d: Vec, dd: Tensor) -> Tensor | None:
    """Indices of rays passing within the bounding sphere of ``ps`` ahead of their origin, or None for
    "all rays" (planes: cheaper to test directly). dd: [M] = |d|^2."""
    if isinstance(ps.prim, Plane) or not math.isfinite(ps.radius):
        return None
    oc = tuple(c - x for c, x in zip(ps.center, o, strict=True))
    b = as_tensor(dot(oc, d), dd)
    oc2 = dot(oc, oc)
    r2 = (ps.radius * (1 + 1e-4) + 1e-6) ** 2
    near = (oc2 - b * b / dd <= r2) & ((b > 0) | (oc2 <= r2))
    return torch.nonzero(near).flatten()


def _nearest_hit(posed: Sequence[_Posed], o: Vec, d: Vec, view: _View | None = None) -> tuple[Tensor, Tensor]:
    """Nearest hit over all primitives -> (t [M], inf on a miss; id [M] int64, 0 on a miss).

    With the camera ``view`` of a pixel chunk, primitives are culled by their projected bounding boxes.
    """
    dd = as_tensor(dot(d, d), tensor_of(*o, *d))
    best_t = torch.full_like(dd, math.inf)
    best_id = torch.zeros(dd.shape, dtype=torch.int64, device=dd.device)
    for k, ps in enumerate(posed):
        idx = _screen_candidates(ps, view, dd.device) if view is not None else None
        if idx is None:
            idx = _candidates(ps, o, d, dd)
        if idx is None:
            t = intersect(ps.prim, _to_local(ps, o, True), _to_local(ps, d, False), T_MIN)
            closer = t < best_t
            best_t = torch.where(closer, t, best_t)
            best_id = torch.where(closer, k + 1, best_id)
        elif idx.numel():
            t = intersect(ps.prim, _to_local(ps, _take(o, idx), True), _to_local(ps, _take(d, idx), False), T_MIN)
            cur = best_t[idx]
            closer = t < cur
            best_t[idx] = torch.where(closer, t, cur)
            best_id[idx] = torch.where(closer, k + 1, best_id[idx])
    return best_t, best_id


def _occluded(posed: Sequence[_Posed], o: Vec, d: Vec) -> Tensor:
    """Whether each ray hits any shadow-casting primitive -> [M] bool."""
    dd = as_tensor(dot(d, d), tensor_of(*o, *d))
    blocked = torch.zeros(dd.shape, dtype=torch.bool, device=dd.device)
    for ps in posed:
        if not ps.prim.casts_shadow:
            continue
        idx = _candidates(ps, o, d, dd)
        if idx is None:
            blocked |= torch.isfinite(intersect(ps.prim, _to_local(ps, o, True), _to_local(ps, d, False), T_MIN))
        elif idx.numel():
            o_l, d_l = _to_local(ps, _take(o, idx), True), _to_local(ps, _take(d, idx), False)
            blocked[idx] |= torch.isfinite(intersect(ps.prim, o_l, d_l, T_MIN))
    return blocked


def sky_color(sky: Sky, d: Tensor) -> Tensor:
    """Colour of the sky dome along world directions ``d`` [3, ...] (any length) -> [3, ...] float32."""
    dx, dy, dz = d.to(torch.float32)
    inv = torch.rsqrt((dx * dx + dy * dy + dz * dz).clamp_min(1e-30))
    s = (dx * UP[0] + dy * UP[1] + dz * UP[2]) * inv  # elevation sine
    extra = (1,) * s.ndim

    def col(c: Color) -> Tensor:
        return torch.tensor(c, dtype=torch.float32, device=d.device).reshape(3, *extra)

    zen, hor, gnd = col(sky.zenith), col(sky.horizon), col(sky.ground)
    out = torch.where(s >= 0, torch.lerp(hor, zen, s.clamp(0, 1).sqrt()), torch.lerp(hor, gnd, (-s * 6.0).clamp(0, 1)))
    if sky.sun_radius_deg > 0 or sky.sun_glow > 0:
        sx, sy, sz = normalize(sky.sun_direction)
        cos = (dx * sx + dy * sy + dz * sz) * inv
        sun = col(sky.sun_color)
        out = out + sky.sun_glow * sun * cos.clamp_min(0) ** 64
        if sky.sun_radius_deg > 0:
            out = torch.where(cos >= math.cos(math.radians(sky.sun_radius_deg)), sun, out)
    return out.clamp(0, 1)


def _shade_hits(world: World, posed: Sequence[_Posed], p: Vec, d: Vec, ids: Tensor) -> Tensor:
    """Lambert colours [3, K] of hit points ``p`` (world, [K] each) seen along ``d``, sorted by ``ids``."""
    counts = torch.bincount(ids, minlength=len(posed) + 1).tolist()
    device = ids.device
    albedo = torch.empty(3, ids.numel(), dtype=torch.float32, device=device)
    normal = torch.empty(3, ids.numel(), dtype=p[0].dtype, device=device)
    start = counts[0]
    for k, ps in enumerate(posed):
        end = start + counts[k + 1]
        if end > start:
            p_l = _to_local(ps, tuple(x[start:end] for x in p), True)  # type: ignore[arg-type]
            n_l, uv = surface(ps.prim, p_l)  # type: ignore[arg-type]
            normal[:, start:end] = torch.stack([as_tensor(x, n_l[0]) for x in _to_world_dir(ps, n_l)])
            planar = isinstance(ps.prim, Plane)
            p_tex = torch.stack(p_l).to(torch.float32)  # type: ignore[arg-type]
            albedo[:, start:end] = eval_texture(ps.prim.texture, torch.stack(uv).to(torch.float32), p_tex, planar)
        start = end
    facing = dot(tuple(normal), d) > 0  # type: ignore[arg-type]
    normal = torch.where(facing, -normal, normal)  # double-sided: face the viewer
    light = torch.tensor(world.ambient, dtype=torch.float32, device=device)[:, None].expand(3, ids.numel())
    for lt in world.lights:
        ldir = normalize(lt.direction)
        lam = (normal[0] * ldir[0] + normal[1] * ldir[1] + normal[2] * ldir[2]).clamp_min(0)
        if world.shadows:
            lit = torch.nonzero(lam > 0).flatten()
            if lit.numel():
                origin = tuple(x[lit] + SHADOW_OFFSET * nx[lit] for x, nx in zip(p, normal, strict=True))
                blocked = _occluded(posed, origin, ldir)  # type: ignore[arg-type]
                lam[lit] = torch.where(blocked, 0.0, lam[lit])
        col = torch.tensor(lt.color, dtype=torch.float32, device=device)[:, None] * lt.intensity
        light = light + lam.to(torch.float32)[None] * col
    return (albedo * light).clamp(0, 1)


def _render_rays(world: World, posed: Sequence[_Posed], o: Vec, d: Vec,
                 view: _View | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Colour [3, M], ray parameter t [M] (inf on a miss) and id [M] of rays (o, d) (of camera chunk ``view``)."""
    t, ids = _nearest_hit(posed, o, d, view)
    rgb = torch.empty(3, t.numel(), dtype=torch.float32, device=t.device)
    miss = torch.nonzero(ids == 0).flatten()
    if miss.numel():
        rgb[:, miss] = sky_color(world.sky, torch.stack(_take(d, miss)))  # type: ignore[arg-type]
    hit = torch.nonzero(ids > 0).flatten()
    if hit.numel():
        order = hit[torch.argsort(ids[hit], stable=True)]  # hits grouped by primitive
        d_h = _take(d, order)
        t_h = t[order]
        p = tuple(x + t_h * dx for x, dx in zip(_take(o, order), d_h, strict=True))
        rgb[:, order] = _shade_hits(world, posed, p, d_h, ids[order])  # type: ignore[arg-type]
    return rgb, t, ids


def _render_rgb(world: World, posed: Sequence[_Posed], hi: Cameras, i: int, chunk: int, s: int) -> Tensor:
    """Camera ``i`` of the supersampled cameras ``hi``, box-filtered by ``s`` -> [3, H * W]."""
    H, W = hi.height, hi.width
    rgb = torch.empty(3, H * W, dtype=torch.float32, device=hi.device)
    for start in range(0, H * W, chunk):
        end = min(start + chunk, H * W)
        rgb[:, start:end] = _render_rays(world, posed, *_camera_rays(hi, i, start, end))[0]
    return torch.nn.functional.avg_pool2d(rgb.reshape(1, 3, H, W), s).reshape(3, -1)


# ---------------------------------------------------------------------------------------------- dict conversion
def _type_name(p: Primitive) -> str:
    for name, cls in PRIMITIVE_TYPES.items():
        if type(p) is cls:
            return name
    raise WorldError(f"not a primitive: {type(p).__name__}")


def _to_plain(obj: Any) -> Any:
    """Dataclasses -> dicts, tuples -> lists, recursively."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [_to_plain(v) for v in obj]
    return obj


def _from_plain(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a plain dict, checking fields; raises WorldError."""
    return from_plain(cls, data, where, WorldError)


