"""Seeded procedural world generation: closed rooms, open yards and photo worlds around the origin camera.

Worlds are built for an anchor camera at the origin looking down +z (OpenCV; world up is -y): the
origin is inside the room (or above the yard's ground, at eye height) and content lies ~1-15 units
away, mostly in front of it. ``generate_world(seed, kind)`` is a pure function of its arguments
(Python's ``random.Random`` seeded from a string, identical on every platform) and of the installed
photo files (``lyra.world.photos``).
"""

from __future__ import annotations

import colorsys
import math
import random
from dataclasses import dataclass, replace
from typing import Literal

from lyra.world.photos import photo_info, photo_is_grey, photo_names, photo_size
from lyra.world.primitives import Box, Cylinder, Motion, Plane, Primitive, Sphere, Vec3, cross, quat_about_axis
from lyra.world.scene import DirectionalLight, Sky, World
from lyra.world.textures import Color, Texture, WrapMode

WorldKind = Literal["room", "yard", "photo", "random", "mix"]
WORLD_KINDS: tuple[str, ...] = ("room", "yard", "photo", "random", "mix")
# "mix": the training-data default, a fixed share of each concrete kind chosen by the seed
MIX_WEIGHTS: dict[str, float] = {"room": 0.35, "yard": 0.25, "photo": 0.4}
PhotoSet = Literal["train", "heldout"]
_EPS = 1e-3  # overlap of the room's wall rectangles (no cracks at corners)
_DOWN: Vec3 = (0.0, 1.0, 0.0)
TEXELS_PER_UNIT = 128.0  # photo textures are pre-filtered (lod) to at most this many texels per scene unit


@dataclass
class _Group:
    """Primitives that form one object (and move together); ``radius``: footprint on the ground."""

    prims: list[Primitive]
    x: float
    z: float
    radius: float
    movable: bool = True
    clearance: float = 1.0  # minimum gap between the footprint and the origin camera


# ---------------------------------------------------------------------------------------------- colours, textures
def _hsv(h: float, s: float, v: float) -> Color:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (round(r, 4), round(g, 4), round(b, 4))


def _object_texture(rng: random.Random) -> Texture:
    """A colourful texture for a free-standing object."""
    h = rng.random()
    a = _hsv(h, rng.uniform(0.45, 0.85), rng.uniform(0.55, 0.95))
    kind = rng.choices(["solid", "checker", "noise", "stripes", "gradient"], [1, 2, 3, 2, 1])[0]
    if kind == "solid":
        return Texture("solid", a, a, scale=0.5, detail=0.35, seed=rng.randrange(1 << 30))
    h2 = h + rng.choice([0.5, 0.08, -0.08, 0.33])
    b = _hsv(h2, rng.uniform(0.3, 0.8), rng.uniform(0.25, 0.9))
    scale = {"checker": rng.uniform(0.12, 0.3), "noise": rng.uniform(0.15, 0.4),
             "stripes": rng.uniform(0.06, 0.18), "gradient": rng.uniform(0.6, 1.2)}[kind]
    return Texture(kind, a, b, scale=round(scale, 4), angle=round(rng.uniform(0, 180), 2),
                   octaves=4, seed=rng.randrange(1 << 30), detail=0.2)


def _floor_texture(rng: random.Random) -> Texture:
    style = rng.choice(["tiles", "planks", "carpet"])
    seed = rng.randrange(1 << 30)
    if style == "tiles":
        h = rng.random()
        return Texture("checker", _hsv(h, 0.15, 0.85), _hsv(h, 0.25, 0.35), scale=round(rng.uniform(0.4, 0.7), 3),
                       seed=seed, detail=0.3)
    if style == "planks":
        h = rng.uniform(0.05, 0.1)
        return Texture("stripes", _hsv(h, 0.55, 0.62), _hsv(h, 0.6, 0.45), scale=round(rng.uniform(0.14, 0.22), 3),
                       angle=rng.choice([0.0, 90.0]), seed=seed, detail=0.6)
    h = rng.random()
    return Texture("noise", _hsv(h, 0.45, 0.55), _hsv(h + 0.05, 0.5, 0.3), scale=0.25, octaves=4, seed=seed)


def _wall_texture(rng: random.Random, h: float) -> Texture:
    style = rng.choice(["plaster", "wallpaper", "gradient"])
    seed = rng.randrange(1 << 30)
    if style == "plaster":
        return Texture("noise", _hsv(h, 0.12, 0.9), _hsv(h, 0.2, 0.68), scale=0.6, octaves=4, seed=seed)
    if style == "wallpaper":
        return Texture("stripes", _hsv(h, 0.2, 0.9), _hsv(h + 0.04, 0.35, 0.72), scale=round(rng.uniform(0.12, 0.3), 3),
                       seed=seed, detail=0.25)
    return Texture("gradient", _hsv(h, 0.3, 0.55), _hsv(h, 0.08, 0.95), scale=3.0, angle=90.0, seed=seed, detail=0.3)


# ---------------------------------------------------------------------------------------------- object builders
def _yaw(rng: random.Random) -> tuple[float, float, float, float]:
    return quat_about_axis((0.0, -1.0, 0.0), round(rng.uniform(0, 90), 2))


def _r(x: float) -> float:
    return round(x, 4)


def _furniture(rng: random.Random, x: float, z: float, floor: float, idx: int) -> _Group:
    """One object standing on the floor plane y = ``floor`` at (x, z)."""
    kind = rng.choices(["box", "sphere", "cylinder", "pedestal", "stack", "table"], [2, 2, 2, 2, 2, 1])[0]
    name = f"{kind}_{idx}"
    if kind == "table":
        hx, hz, top_h = _r(rng.uniform(0.35, 0.6)), _r(rng.uniform(0.3, 0.45)), _r(rng.uniform(0.65, 0.8))
        wood = Texture("stripes", _hsv(rng.uniform(0.05, 0.1), 0.55, rng.uniform(0.4, 0.7)),
                       _hsv(0.07, 0.6, 0.3), scale=0.06, seed=rng.randrange(1 << 30), detail=0.5)
        prims: list[Primitive] = [Box((x, _r(floor - top_h), z), (hx, 0.03, hz), texture=wood, name=name + "_top")]
        leg_h = _r((top_h - 0.03) / 2)
        for j, (sx, sz) in enumerate(((-1, -1), (-1, 1), (1, -1), (1, 1))):
            prims.append(Cylinder((_r(x + sx * (hx - 0.06)), _r(floor - leg_h), _r(z + sz * (hz - 0.06))), 0.035,
                                  leg_h, texture=wood, name=f"{name}_leg{j}"))
        rs = _r(rng.uniform(0.08, 0.15))
        prims.append(Sphere((_r(x + rng.uniform(-0.5, 0.5) * hx), _r(floor - top_h - 0.03 - rs),
                             _r(z + rng.uniform(-0.5, 0.5) * hz)), rs, _object_texture(rng), name=name + "_ball"))
        return _Group(prims, x, z, math.hypot(hx, hz), movable=False)
    if kind == "box":
        hx, hy, hz = (_r(rng.uniform(0.2, 0.5)) for _ in range(3))
        prim = Box((x, _r(floor - hy), z), (hx, hy, hz), _yaw(rng), _object_texture(rng), name=name)
        return _Group([prim], x, z, math.hypot(hx, hz))
    if kind == "sphere":
        r = _r(rng.uniform(0.2, 0.5))
        return _Group([Sphere((x, _r(floor - r), z), r, _object_texture(rng), name=name)], x, z, r)
    if kind == "cylinder":
        r, hh = _r(rng.uniform(0.15, 0.4)), _r(rng.uniform(0.2, 0.8))
        return _Group([Cylinder((x, _r(floor - hh), z), r, hh, texture=_object_texture(rng), name=name)], x, z, r)
    if kind == "pedestal":
        r, hh, rs = _r(rng.uniform(0.15, 0.3)), _r(rng.uniform(0.3, 0.55)), _r(rng.uniform(0.18, 0.32))
        col = Cylinder((x, _r(floor - hh), z), r, hh, texture=_object_texture(rng), name=name + "_column")
        ball = Sphere((x, _r(floor - 2 * hh - rs), z), rs, _object_texture(rng), name=name + "_ball")
        return _Group([col, ball], x, z, max(r, rs))
    # stack: two boxes
    h1, h2 = _r(rng.uniform(0.15, 0.3)), _r(rng.uniform(0.1, 0.22))
    w1 = _r(rng.uniform(0.3, 0.5))
    w2 = _r(w1 * rng.uniform(0.5, 0.8))
    low = Box((x, _r(floor - h1), z), (w1, h1, w1), _yaw(rng), _object_texture(rng), name=name + "_low")
    top = Box((x, _r(floor - 2 * h1 - h2), z), (w2, h2, w2), _yaw(rng), _object_texture(rng), name=name + "_top")
    return _Group([low, top], x, z, w1 * math.sqrt(2))


def _yard_object(rng: random.Random, x: float, z: float, ground: float, idx: int) -> _Group:
    """One object standing on the ground y = ``ground`` at (x, z)."""
    kind = rng.choices(["tree", "boulder", "crate", "shed", "post", "furniture"], [4, 2, 2, 1, 1, 2])[0]
    name = f"{kind}_{idx}"
    if kind == "tree":
        r, hh = _r(rng.uniform(0.1, 0.2)), _r(rng.uniform(0.5, 1.0))
        bark = Texture("stripes", _hsv(0.07, 0.5, 0.4), _hsv(0.07, 0.55, 0.28), scale=0.05, angle=90.0,
                       seed=rng.randrange(1 << 30), detail=0.4)
        trunk = Cylinder((x, _r(ground - hh), z), r, hh, texture=bark, name=name + "_trunk")
        rc = _r(rng.uniform(0.6, 1.1))
        h = rng.uniform(0.22, 0.38)
        leaves = Texture("noise", _hsv(h, 0.6, 0.55), _hsv(h + 0.04, 0.7, 0.25), scale=0.3, octaves=4,
                         seed=rng.randrange(1 << 30))
        canopy = Sphere((x, _r(ground - 2 * hh - 0.7 * rc), z), rc, leaves, name=name + "_canopy")
        return _Group([trunk, canopy], x, z, rc, movable=False)
    if kind == "boulder":
        r = _r(rng.uniform(0.3, 0.8))
        v = rng.uniform(0.4, 0.7)
        tex = Texture("noise", _hsv(0.08, 0.1, v), _hsv(0.1, 0.15, v * 0.55), scale=0.25, octaves=4,
                      seed=rng.randrange(1 << 30))
        return _Group([Sphere((x, _r(ground - 0.55 * r), z), r, tex, name=name)], x, z, r)
    if kind == "crate":
        hs = _r(rng.uniform(0.25, 0.5))
        tex = Texture("stripes", _hsv(0.09, 0.5, 0.7), _hsv(0.08, 0.55, 0.5), scale=_r(hs / 3), angle=90.0,
                      seed=rng.randrange(1 << 30), detail=0.5)
        return _Group([Box((x, _r(ground - hs), z), (hs, hs, hs), _yaw(rng), tex, name=name)], x, z, hs * 1.5)
    if kind == "shed":
        hx, hy, hz = _r(rng.uniform(0.8, 1.5)), _r(rng.uniform(0.6, 1.0)), _r(rng.uniform(0.8, 1.3))
        yaw = round(rng.uniform(-30, 30), 2)
        q = quat_about_axis((0.0, -1.0, 0.0), yaw)
        h = rng.random()
        walls = Texture("stripes", _hsv(h, 0.4, 0.8), _hsv(h, 0.45, 0.65), scale=0.12, seed=rng.randrange(1 << 30),
                        detail=0.3)
        body = Box((x, _r(ground - hy), z), (hx, hy, hz), q, walls, name=name + "_body")
        # a box turned 45 degrees about the shed's local x axis, centred on the roof line: a gable roof
        roof_q = _quat_mul(q, quat_about_axis((1.0, 0.0, 0.0), 45.0))
        s = _r(hz / math.sqrt(2) + 0.1)
        roof_tex = Texture("stripes", _hsv(0.02, 0.6, 0.5), _hsv(0.02, 0.65, 0.35), scale=0.1, angle=90.0,
                           seed=rng.randrange(1 << 30), detail=0.3)
        roof = Box((x, _r(ground - 2 * hy), z), (_r(hx + 0.1), s, s), roof_q, roof_tex, name=name + "_roof")
        return _Group([body, roof], x, z, math.hypot(hx, hz) + 0.2, movable=False, clearance=5.0)
    if kind == "post":
        r, hh = _r(rng.uniform(0.08, 0.15)), _r(rng.uniform(0.6, 1.2))
        post = Cylinder((x, _r(ground - hh), z), r, hh, texture=_object_texture(rng), name=name)
        lamp = Sphere((x, _r(ground - 2 * hh - 0.12), z), 0.15,
                      Texture("solid", (1.0, 0.95, 0.7), (1.0, 0.95, 0.7)), name=name + "_lamp")
        return _Group([post, lamp], x, z, 0.2, movable=False)
    return _furniture(rng, x, z, ground, idx)


def _quat_mul(a: tuple[float, float, float, float], b: tuple[float, float, float, float]
              ) -> tuple[float, float, float, float]:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return (w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2)


def _place(rng: random.Random, groups: list[_Group], sample_xz, build, tries: int = 60) -> _Group | None:
    """Rejection-sample a footprint that overlaps no existing group and keeps its clearance from the origin."""
    for _ in range(tries):
        x, z = sample_xz()
        g = build(_r(x), _r(z))
        if math.hypot(g.x, g.z) < g.radius + g.clearance:
            continue
        if all(math.hypot(g.x - o.x, g.z - o.z) > g.radius + o.radius + 0.15 for o in groups):
            return g
    return None


# ---------------------------------------------------------------------------------------------- motion
def _add_motion(rng: random.Random, groups: list[_Group], bounds: tuple[float, float, float, float],
                floor: float, n_moving: int, drone_size: float) -> list[_Group]:
    """Give up to ``n_moving`` movable groups a linear or circular path, and add one flying sphere."""
    xmin, xmax, zmin, zmax = bounds

    def ok(g: _Group, m: Motion) -> bool:
        for k in range(9):
            px, _, pz = m.position((g.x, 0.0, g.z), k / 8)
            if not (xmin + g.radius <= px <= xmax - g.radius and zmin + g.radius <= pz <= zmax - g.radius):
                return False
            if math.hypot(px, pz) < g.radius + 1.0:
                return False
        return True

    movable = [g for g in groups if g.movable]
    rng.shuffle(movable)
    for g in movable[:n_moving]:
        for _ in range(20):
            if rng.random() < 0.6:
                a = rng.uniform(0, 2 * math.pi)
                length = rng.uniform(0.5, 1.5)
                m = Motion("linear", delta=(_r(length * math.cos(a)), 0.0, _r(length * math.sin(a))))
            else:
                a = rng.uniform(0, 2 * math.pi)
                rad = rng.uniform(0.3, 0.8)
                m = Motion("circular", pivot=(_r(g.x + rad * math.cos(a)), 0.0, _r(g.z + rad * math.sin(a))),
                           axis=(0.0, rng.choice([-1.0, 1.0]), 0.0), turns=round(rng.uniform(0.5, 1.0), 3))
            if ok(g, m):
                g.prims = [replace(p, motion=m) for p in g.prims]
                break
    # a flying sphere circling in front of the camera
    r = _r(drone_size)
    cz = _r(rng.uniform(2.5, 3.5))
    height = _r(floor - rng.uniform(1.3, 1.8))
    m = Motion("circular", pivot=(0.0, height, cz), axis=(0.0, rng.choice([-1.0, 1.0]), 0.0),
               turns=round(rng.uniform(0.5, 1.0), 3))
    x0 = _r(rng.uniform(0.8, 1.2))
    tex = Texture("checker", _hsv(rng.random(), 0.8, 0.95), (0.95, 0.95, 0.95), scale=0.08, seed=rng.randrange(1 << 30))
    drone = Sphere((x0, height, cz), r, tex, motion=m, name="flyer")
    return [*groups, _Group([drone], x0, cz, r, movable=False)]


# ---------------------------------------------------------------------------------------------- worlds
def _room(rng: random.Random, seed: int, motion_rng: random.Random | None) -> World:
    cam_h = _r(rng.uniform(1.2, 1.6))
    height = _r(rng.uniform(2.6, 3.4))
    floor, ceil = cam_h, _r(cam_h - height)
    xl, xr = _r(-rng.uniform(2.5, 4.0)), _r(rng.uniform(2.5, 4.0))
    zf, zb = _r(-rng.uniform(2.5, 4.0)), _r(rng.uniform(6.0, 9.0))
    cx, cz, cy = (xl + xr) / 2, (zf + zb) / 2, (floor + ceil) / 2
    hw, hd, hh = (xr - xl) / 2 + _EPS, (zb - zf) / 2 + _EPS, height / 2 + _EPS
    wall_h = rng.random()
    wall = _wall_texture(rng, wall_h)
    accent = _wall_texture(rng, wall_h + 0.5) if rng.random() < 0.5 else wall
    ceiling_tex = Texture("noise", _hsv(wall_h, 0.05, 0.95), _hsv(wall_h, 0.08, 0.85), scale=0.5, octaves=3,
                          seed=rng.randrange(1 << 30))
    shell = [
        Plane((cx, floor, cz), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0), (hw, hd), _floor_texture(rng), name="floor"),
        Plane((cx, ceil, cz), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (hw, hd), ceiling_tex, name="ceiling"),
        Plane((cx, cy, zb), (0.0, 0.0, -1.0), (1.0, 0.0, 0.0), (hw, hh), accent, name="wall_back"),
        Plane((cx, cy, zf), (0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (hw, hh), wall, name="wall_front"),
        Plane((xl, cy, cz), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (hd, hh), wall, name="wall_left"),
        Plane((xr, cy, cz), (-1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (hd, hh), wall, name="wall_right"),
    ]
    shell = [replace(p, casts_shadow=False) for p in shell]
    # paintings on the back and side walls: thin boxes
    deco: list[Primitive] = []
    for i in range(rng.randint(1, 3)):
        w, h = _r(rng.uniform(0.3, 0.7)), _r(rng.uniform(0.25, 0.5))
        y = _r(ceil + height * rng.uniform(0.3, 0.45))
        side = rng.choice(["back", "left", "right"])
        if side == "back":
            c: Vec3 = (_r(rng.uniform(xl + 0.3 + w, xr - 0.3 - w)), y, _r(zb - 0.02))
            half: Vec3 = (w, h, 0.02)
        else:
            x = _r(xl + 0.02) if side == "left" else _r(xr - 0.02)
            c, half = (x, y, _r(rng.uniform(1.5 + w, zb - 0.5 - w))), (0.02, h, w)
        deco.append(Box(c, half, texture=_object_texture(rng), name=f"painting_{i}", casts_shadow=False))
    if rng.random() < 0.6:  # a rug, just above the floor
        rw, rd = _r(rng.uniform(0.8, 1.6)), _r(rng.uniform(0.6, 1.2))
        rc = (_r(rng.uniform(xl + rw + 0.2, xr - rw - 0.2) if xr - xl > 2 * rw + 0.4 else cx), _r(floor - 0.004),
              _r(rng.uniform(1.5 + rd, max(1.5 + rd, zb - rd - 0.5))))
        h = rng.random()
        rug_tex = Texture(rng.choice(["checker", "stripes"]), _hsv(h, 0.6, 0.7), _hsv(h + 0.5, 0.5, 0.5),
                          scale=_r(rng.uniform(0.1, 0.25)), angle=rng.choice([0.0, 45.0, 90.0]),
                          seed=rng.randrange(1 << 30), detail=0.4)
        deco.append(Plane(rc, (0.0, -1.0, 0.0), (1.0, 0.0, 0.0), (rw, rd), rug_tex, name="rug", casts_shadow=False))
    groups: list[_Group] = []
    for i in range(rng.randint(0, 2)):  # shelves against the side walls
        hx, hy, hz = _r(rng.uniform(0.15, 0.25)), _r(rng.uniform(0.6, min(1.0, height / 2 - 0.2))), _r(
            rng.uniform(0.35, 0.7))
        left = rng.random() < 0.5
        x = _r(xl + hx + 0.01) if left else _r(xr - hx - 0.01)
        z = _r(rng.uniform(1.5 + hz, zb - 0.3 - hz))
        h = rng.uniform(0.05, 0.12)
        wood = Texture("stripes", _hsv(h, 0.5, rng.uniform(0.45, 0.7)), _hsv(h, 0.55, 0.35), scale=0.12,
                       angle=90.0, seed=rng.randrange(1 << 30), detail=0.5)
        g = _Group([Box((x, _r(floor - hy), z), (hx, hy, hz), texture=wood, name=f"shelf_{i}")], x, z,
                   math.hypot(hx, hz), movable=False)
        if all(math.hypot(g.x - o.x, g.z - o.z) > g.radius + o.radius + 0.1 for o in groups):
            groups.append(g)
    margin = 0.4

    def sample_xz() -> tuple[float, float]:
        behind = rng.random() < 0.15
        z = rng.uniform(zf + margin + 0.4, -0.8) if behind else rng.uniform(1.3, zb - margin - 0.4)
        return rng.uniform(xl + margin + 0.4, xr - margin - 0.4), z

    for i in range(rng.randint(5, 8)):
        g = _place(rng, groups, sample_xz, lambda x, z, i=i: _furniture(rng, x, z, floor, i))
        if g is not None and xl < g.x - g.radius and g.x + g.radius < xr and zf < g.z - g.radius < g.z + g.radius < zb:
            groups.append(g)
    if motion_rng is not None:
        groups = _add_motion(motion_rng, groups, (xl, xr, zf, zb), floor, motion_rng.randint(1, 2),
                             motion_rng.uniform(0.12, 0.2))
    key = (_r(rng.uniform(-0.6, 0.6)), -1.0, _r(rng.uniform(-0.9, -0.3)))
    fill = (_r(-key[0] * 1.5), -0.5, _r(rng.uniform(-0.5, 0.5)))
    warm = _hsv(rng.uniform(0.08, 0.14), rng.uniform(0.05, 0.25), 1.0)
    lights = (DirectionalLight(key, warm, 0.6), DirectionalLight(fill, (0.85, 0.9, 1.0), 0.25))
    prims = tuple(shell + deco + [p for g in groups for p in g.prims])
    return World(prims, lights, (0.38, 0.38, 0.4), Sky(sun_direction=key), True, f"room-{seed}", "room", seed)


def _yard(rng: random.Random, seed: int, motion_rng: random.Random | None) -> World:
    ground = _r(rng.uniform(1.3, 2.0))
    style = rng.choices(["grass", "sand", "paving"], [3, 1, 1])[0]
    gseed = rng.randrange(1 << 30)
    if style == "grass":
        h = rng.uniform(0.22, 0.3)
        gtex = Texture("noise", _hsv(h, 0.55, 0.6), _hsv(h + 0.03, 0.65, 0.32), scale=0.6, octaves=4, seed=gseed)
    elif style == "sand":
        gtex = Texture("noise", _hsv(0.11, 0.35, 0.85), _hsv(0.09, 0.4, 0.6), scale=0.8, octaves=4, seed=gseed)
    else:
        h = rng.random()
        gtex = Texture("checker", _hsv(h, 0.1, 0.7), _hsv(h, 0.15, 0.5), scale=_r(rng.uniform(0.5, 0.9)),
                       angle=round(rng.uniform(0, 90), 2), seed=gseed, detail=0.35)
    size = 40.0
    ground_plane = Plane((0.0, ground, 10.0), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0), (size, size), gtex, name="ground",
                         casts_shadow=False)
    elev = rng.uniform(0.45, 1.0)
    az = rng.uniform(-1.2, 1.2)
    sun = (_r(math.sin(az)), -elev, _r(-math.cos(az) * rng.uniform(0.3, 1.0)))
    sky = Sky(zenith=_hsv(0.6, rng.uniform(0.5, 0.7), rng.uniform(0.75, 0.9)),
              horizon=_hsv(0.58, rng.uniform(0.1, 0.25), 0.95), ground=gtex.color_b, sun_direction=sun,
              sun_radius_deg=2.5, sun_glow=0.35)
    hills: list[Primitive] = []
    for i in range(rng.randint(2, 4)):
        r = _r(rng.uniform(8.0, 16.0))
        a = rng.uniform(-0.9, 0.9)
        dist = rng.uniform(28.0, 38.0)
        h = rng.uniform(0.25, 0.35)
        tex = Texture("noise", _hsv(h, 0.45, 0.5), _hsv(h + 0.05, 0.5, 0.3), scale=2.0, octaves=4,
                      seed=rng.randrange(1 << 30))
        hills.append(Sphere((_r(dist * math.sin(a)), _r(ground + 0.75 * r), _r(dist * math.cos(a))), r, tex,
                            name=f"hill_{i}", casts_shadow=False))
    groups: list[_Group] = []

    def sample_xz() -> tuple[float, float]:
        if rng.random() < 0.1:
            return rng.uniform(-5, 5), rng.uniform(-6, -2)
        z = rng.uniform(2.0, 14.0)
        return rng.uniform(-0.6 * z - 1, 0.6 * z + 1), z

    for i in range(rng.randint(6, 10)):
        g = _place(rng, groups, sample_xz, lambda x, z, i=i: _yard_object(rng, x, z, ground, i))
        if g is not None:
            groups.append(g)
    if motion_rng is not None:
        groups = _add_motion(motion_rng, groups, (-15.0, 15.0, -8.0, 20.0), ground, motion_rng.randint(1, 3),
                             motion_rng.uniform(0.15, 0.25))
    lights = (DirectionalLight(sun, (1.0, 0.96, 0.88), 0.75), DirectionalLight((0.0, -1.0, 0.0), (0.75, 0.85, 1.0),
                                                                                0.15))
    prims = tuple([ground_plane, *hills] + [p for g in groups for p in g.prims])
    return World(prims, lights, (0.33, 0.35, 0.4), sky, True, f"yard-{seed}", "yard", seed)


# ---------------------------------------------------------------------------------------------- photo worlds
def _photo_texture(rng: random.Random, name: str, aspect: float, width: float, wrap: WrapMode = "clamp",
                   frac: tuple[float, float] = (0.4, 1.0)) -> Texture:
    """A random crop of photo ``name`` with pixel aspect ``aspect`` (height / width), laid ``width`` units wide.

    The crop keeps to the photo's usable band; its size is a fraction ``frac`` of the largest such crop. Grey
    photos get a random tint; the level of detail keeps the texel density at most ``TEXELS_PER_UNIT``.
    """
    h, w = photo_size(name)
    b0, b1 = photo_info(name).band
    band = (b1 - b0) * h
    cw = min(w, band / aspect) * rng.uniform(*frac)
    ch = cw * aspect
    x0, y0 = rng.uniform(0, w - cw), b0 * h + rng.uniform(0, band - ch)
    crop = (round(x0 / w, 5), round(y0 / h, 5), round((x0 + cw) / w, 5), round((y0 + ch) / h, 5))
    density = cw / width / TEXELS_PER_UNIT
    lod = max(0, math.ceil(math.log2(density))) if density > 1 else 0
    tint = _hsv(rng.random(), rng.uniform(0.15, 0.45), 1.0) if photo_is_grey(name) else (1.0, 1.0, 1.0)
    return Texture("image", tint, tint, scale=_r(width), photo=name, crop=crop, wrap=wrap, lod=lod)


def _panel(center: Vec3, facing: Vec3, half: tuple[float, float], tex: Texture, name: str,
           casts_shadow: bool = True) -> Plane:
    """A photo panel whose front faces ``facing`` (horizontal, towards the viewer): the photo upright, unmirrored.

    The plane's normal points away from the viewer so that local x (photo columns) is the viewer's right and
    local y (photo rows) is world down.
    """
    normal = (-facing[0], -facing[1], -facing[2])
    return Plane(center, normal, cross(_DOWN, normal), half, tex, name=name, casts_shadow=casts_shadow)


def _cutout(panel: Plane, hole: tuple[float, float, float, float]) -> list[Plane]:
    """``panel`` with a rectangular hole (u0, v0, u1, v1 in its local units) as up to four strips whose photo
    crops continue the panel's photo."""
    assert panel.half_size is not None
    hw, hh = panel.half_size
    a0, b0, a1, b1 = hole
    (_, rows) = panel.frame()
    ax, ay = (rows[0][0], rows[1][0], rows[2][0]), (rows[0][1], rows[1][1], rows[2][1])  # local x, y (world)
    tex = panel.texture
    cu0, cv0, cu1, cv1 = tex.crop
    strips = [(-hw, -hh, hw, b0, "top"), (-hw, b1, hw, hh, "bottom"), (-hw, b0, a0, b1, "left"),
              (a1, b0, hw, b1, "right")]
    out = []
    for u0, v0, u1, v1, side in strips:
        if u1 - u0 < 1e-3 or v1 - v0 < 1e-3:
            continue
        uc, vc = (u0 + u1) / 2, (v0 + v1) / 2
        center = tuple(panel.center[i] + uc * ax[i] + vc * ay[i] for i in range(3))
        fu = ((u0 + hw) / (2 * hw), (u1 + hw) / (2 * hw))
        fv = ((v0 + hh) / (2 * hh), (v1 + hh) / (2 * hh))
        crop = (cu0 + fu[0] * (cu1 - cu0), cv0 + fv[0] * (cv1 - cv0), cu0 + fu[1] * (cu1 - cu0),
                cv0 + fv[1] * (cv1 - cv0))
        out.append(replace(panel, center=center, half_size=((u1 - u0) / 2, (v1 - v0) / 2),  # type: ignore[arg-type]
                           texture=replace(tex, scale=u1 - u0, crop=crop), name=f"{panel.name}_{side}"))
    return out


def _facing_origin(rng: random.Random, x: float, z: float, jitter_deg: float) -> Vec3:
    """Horizontal unit direction from (x, z) towards the origin, turned by up to ``jitter_deg`` about the vertical."""
    a = math.atan2(-x, -z) + math.radians(rng.uniform(-jitter_deg, jitter_deg))
    return (_r(math.sin(a)), 0.0, _r(math.cos(a)))


def _photo_layer(rng: random.Random, x: float, z: float, floor: float, names: tuple[str, ...], idx: int) -> _Group:
    """A free-standing photo panel (sometimes with a rectangular cut-out) at (x, z), facing the origin."""
    name = rng.choice(names)
    h, w = photo_size(name)
    b0, b1 = photo_info(name).band
    aspect = min(max((b1 - b0) * h / w * rng.uniform(0.8, 1.25), 0.5), 1.6)
    hw = _r(min(1.6, z * math.tan(math.radians(30)) * rng.uniform(0.12, 0.32)))
    hh = _r(hw * aspect)
    standing = rng.random() < 0.5
    cy = _r(rng.uniform(-0.7, 0.5))
    if standing or cy + hh > floor - 0.05:
        cy = _r(floor - hh - (0.0 if standing else rng.uniform(0.05, 0.3)))
    panel = _panel((x, cy, z), _facing_origin(rng, x, z, 20.0), (hw, hh),
                   _photo_texture(rng, name, hh / hw, 2 * hw), f"layer_{idx}")
    if rng.random() < 0.3:  # a window cut into the panel
        aw, ah = hw * rng.uniform(0.25, 0.45), hh * rng.uniform(0.25, 0.45)
        ox, oy = rng.uniform(-0.4, 0.4) * (hw - aw), rng.uniform(-0.4, 0.4) * (hh - ah)
        prims: list[Primitive] = list(_cutout(panel, (_r(ox - aw), _r(oy - ah), _r(ox + aw), _r(oy + ah))))
    else:
        prims = [panel]
    return _Group(prims, x, z, hw)


def _photo_object(rng: random.Random, x: float, z: float, floor: float, names: tuple[str, ...], idx: int) -> _Group:
    """A box (photo on its faces) or a column (photo wrapped around it) standing on the floor at (x, z)."""
    name = rng.choice(names)
    if rng.random() < 0.7:
        hx, hy, hz = _r(rng.uniform(0.2, 0.55)), _r(rng.uniform(0.2, 0.55)), _r(rng.uniform(0.2, 0.55))
        tex = _photo_texture(rng, name, hy / hx, 2 * hx, wrap="mirror")
        return _Group([Box((x, _r(floor - hy), z), (hx, hy, hz), _yaw(rng), tex, name=f"photo_box_{idx}")], x, z,
                      math.hypot(hx, hz))
    r, hh = _r(rng.uniform(0.15, 0.35)), _r(rng.uniform(0.4, 1.0))
    circumference = 2 * math.pi * r
    tex = _photo_texture(rng, name, 2 * hh / circumference, circumference, wrap="repeat")
    return _Group([Cylinder((x, _r(floor - hh), z), r, hh, texture=tex, name=f"photo_column_{idx}")], x, z, r)


def _photo(rng: random.Random, seed: int, motion_rng: random.Random | None, photos: PhotoSet) -> World:
    """Real photographs on a room's walls and floor (or a stage: backdrop and floor under the sky), photo boxes
    and columns, and 3-6 free-standing photo panels at several depths facing the origin, occluding each other."""
    names = photo_names(photos)
    panoramas = tuple(n for n in names if photo_info(n).panorama) or names
    floor = _r(rng.uniform(1.2, 1.6))
    closed = rng.random() < 0.5
    if closed:
        height = _r(rng.uniform(2.8, 3.6))
        ceil = _r(floor - height)
        xl, xr = _r(-rng.uniform(3.0, 4.5)), _r(rng.uniform(3.0, 4.5))
        zf, zb = _r(-rng.uniform(2.5, 4.0)), _r(rng.uniform(7.0, 10.0))
    else:
        height = _r(rng.uniform(3.5, 5.0))
        ceil = _r(floor - height)
        xl, xr, zf, zb = -12.0, 12.0, -4.0, _r(rng.uniform(9.0, 12.0))
    cx, cz, cy = (xl + xr) / 2, (zf + zb) / 2, (floor + ceil) / 2
    hw, hd, hh = (xr - xl) / 2 + _EPS, (zb - zf) / 2 + _EPS, height / 2 + _EPS

    def wall_tex(pano: bool, aspect: float, width: float, wrap: WrapMode = "clamp") -> Texture:
        return _photo_texture(rng, rng.choice(panoramas if pano else names), aspect, width, wrap, (0.6, 1.0))

    floor_tex = wall_tex(False, 1.0, _r(rng.uniform(1.5, 4.0)), rng.choice(["repeat", "mirror"]))
    shell: list[Primitive] = [
        Plane((cx, floor, cz), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0), (hw, hd), floor_tex, name="floor"),
        _panel((cx, cy, zb), (0.0, 0.0, -1.0), (hw, hh), wall_tex(True, hh / hw, 2 * hw), "wall_back"),
    ]
    if closed:
        side = _r(rng.uniform(2.0, 3.5))
        ceiling_tex = Texture("noise", _hsv(rng.random(), 0.05, 0.95), _hsv(rng.random(), 0.08, 0.8), scale=0.5,
                              seed=rng.randrange(1 << 30))
        shell += [
            Plane((cx, ceil, cz), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (hw, hd), ceiling_tex, name="ceiling"),
            _panel((cx, cy, zf), (0.0, 0.0, 1.0), (hw, hh), wall_tex(False, hh / hw, 2 * hw), "wall_front"),
            _panel((xl, cy, cz), (1.0, 0.0, 0.0), (hd, hh), wall_tex(False, 2 * hh / side, side, "mirror"),
                   "wall_left"),
            _panel((xr, cy, cz), (-1.0, 0.0, 0.0), (hd, hh), wall_tex(False, 2 * hh / side, side, "mirror"),
                   "wall_right"),
        ]
        sky = Sky()
    else:  # a stage: backdrop and two angled flats on a wide floor, open to the sky
        for sgn, label in ((-1.0, "left"), (1.0, "right")):
            fw, fh = _r(rng.uniform(1.5, 2.5)), _r(rng.uniform(1.2, 2.0))
            fx, fz = _r(sgn * rng.uniform(3.5, 5.0)), _r(rng.uniform(3.0, zb - 3.0))
            shell.append(_panel((fx, _r(floor - fh), fz), _facing_origin(rng, fx, fz, 10.0), (fw, fh),
                                wall_tex(rng.random() < 0.5, fh / fw, 2 * fw), f"flat_{label}"))
        h = rng.uniform(0.55, 0.65)
        sky = Sky(zenith=_hsv(h, rng.uniform(0.4, 0.7), rng.uniform(0.7, 0.9)), horizon=_hsv(h, 0.15, 0.95),
                  ground=(0.4, 0.4, 0.4))
    shell = [replace(p, casts_shadow=False) for p in shell]
    groups: list[_Group] = []
    zmax = zb - 1.5

    def sample_xz() -> tuple[float, float]:
        z = rng.uniform(1.6, zmax)
        return z * math.tan(rng.uniform(-0.45, 0.45)), z

    for i in range(rng.randint(3, 6)):
        g = _place(rng, groups, sample_xz, lambda x, z, i=i: _photo_layer(rng, x, z, floor, names, i))
        if g is not None and xl < g.x - g.radius and g.x + g.radius < xr:
            groups.append(g)
    for i in range(rng.randint(1, 3)):
        g = _place(rng, groups, sample_xz, lambda x, z, i=i: _photo_object(rng, x, z, floor, names, i))
        if g is not None and xl < g.x - g.radius and g.x + g.radius < xr:
            groups.append(g)
    if motion_rng is not None:
        groups = _add_motion(motion_rng, groups, (xl, xr, zf, zb), floor, motion_rng.randint(1, 2),
                             motion_rng.uniform(0.12, 0.2))
    # a key light from behind the camera: photos facing it keep about their own brightness
    key = (_r(rng.uniform(-0.5, 0.5)), -0.8, -1.0)
    lights = (DirectionalLight(key, _hsv(rng.uniform(0.08, 0.14), rng.uniform(0.0, 0.15), 1.0), 0.45),
              DirectionalLight((0.0, -1.0, 0.0), (0.9, 0.95, 1.0), 0.1))
    prims = tuple(shell + [p for g in groups for p in g.prims])
    name = f"photo-{seed}" if photos == "train" else f"photo-{photos}-{seed}"
    return World(prims, lights, (0.55, 0.55, 0.55), sky, True, name, "photo", seed)


def generate_world(seed: int, kind: WorldKind = "random", moving: bool = False, photos: PhotoSet = "train") -> World:
    """A reproducible procedural world.

    Args:
        seed: any integer; the same (seed, kind, moving, photos) always gives the same world.
        kind: "room" (closed, textured room with furniture and paintings), "yard" (ground, sky with sun,
            trees, boulders, crates, sheds, distant hills), "photo" (real photographs on walls, floor, boxes and
            free-standing layers at several depths), "random" (room or yard, chosen by the seed) or "mix"
            (room, yard or photo in the proportions ``MIX_WEIGHTS``, chosen by the seed: the training default).
        moving: give 1-3 objects linear or circular paths over t in [0, 1] and add a flying sphere
            (the static layout is the same as with ``moving=False``).
        photos: the photos a photo world may show: "train" (training photos) or "heldout" (for evaluation only);
            the benchmark photos (Middlebury motorcycle) are never used.
    Returns:
        The World (origin camera inside the room / at eye height above the ground, looking down +z).
    """
    if kind not in WORLD_KINDS:
        raise ValueError(f"generate_world: kind must be one of {', '.join(map(repr, WORLD_KINDS))}, got {kind!r}")
    if photos not in ("train", "heldout"):
        raise ValueError(f"generate_world: photos must be 'train' or 'heldout', got {photos!r}")
    if kind == "random":
        kind = random.Random(f"lyra-world-kind:{int(seed)}").choice(["room", "yard"])
    elif kind == "mix":
        kind = random.Random(f"lyra-world-mix:{int(seed)}").choices(list(MIX_WEIGHTS), list(MIX_WEIGHTS.values()))[0]
    tag = f"{kind}-heldout" if kind == "photo" and photos == "heldout" else kind
    rng = random.Random(f"lyra-world:{tag}:{int(seed)}")
    motion_rng = random.Random(f"lyra-world-motion:{tag}:{int(seed)}") if moving else None
    if kind == "photo":
        return _photo(rng, int(seed), motion_rng, photos)
    return _room(rng, int(seed), motion_rng) if kind == "room" else _yard(rng, int(seed), motion_rng)
