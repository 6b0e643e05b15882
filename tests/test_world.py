"""Tests for lyra.world: analytic ray casting, masks, motion, generation and JSON I/O."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lyra.cameras import Cameras, intrinsics_matrix, look_at
from lyra.world import (
    Box,
    Cylinder,
    DirectionalLight,
    Motion,
    Plane,
    Sphere,
    Texture,
    World,
    WorldError,
    fbm,
    generate_world,
    quat_about_axis,
)


def identity_camera(h: int = 33, w: int = 33, f: float = 30.0) -> Cameras:
    """Identity camera with the principal point at the image centre (odd sizes: a pixel centre on the axis)."""
    return Cameras(torch.eye(4), intrinsics_matrix(f, f, w / 2, h / 2), h, w)


def pixel_dirs(cam: Cameras) -> torch.Tensor:
    """[H, W, 3] camera-space directions (z = 1) through pixel centres of one camera."""
    v, u = torch.meshgrid(torch.arange(cam.height) + 0.5, torch.arange(cam.width) + 0.5, indexing="ij")
    K = cam.K[0]
    return torch.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], torch.ones_like(u)], -1)


def tex(c: tuple[float, float, float] = (0.5, 0.5, 0.5)) -> Texture:
    return Texture("solid", c, c)


# ---------------------------------------------------------------------------------------------- intersections
def test_plane_depth_exact() -> None:
    world = World((Plane((0.0, 0.0, 2.0), (0.0, 0.0, -1.0), texture=tex()),))
    r = world.render(identity_camera(24, 40))
    assert r.rgb.shape == (1, 3, 24, 40) and r.rgb.dtype == torch.float32
    assert r.depth.shape == (1, 1, 24, 40) and r.mask.dtype == torch.int64
    assert torch.all(r.depth == 2.0)
    assert torch.all(r.mask == 1)


def test_bounded_plane_edges() -> None:
    world = World((Plane((0.0, 0.0, 2.0), (0.0, 0.0, -1.0), (1.0, 0.0, 0.0), (0.5, 0.25), tex()),))
    cam = identity_camera()
    r = world.render(cam)
    p = pixel_dirs(cam) * 2.0
    inside = (p[..., 0].abs() <= 0.5) & (p[..., 1].abs() <= 0.25)
    assert torch.equal(r.mask[0, 0] == 1, inside)
    assert torch.all(r.depth[0, 0][~inside] == 0)


def test_sphere_centre_depth() -> None:
    world = World((Sphere((0.0, 0.0, 5.0), 1.5, tex()),))
    r = world.render(identity_camera())
    assert r.depth[0, 0, 16, 16].item() == pytest.approx(3.5, abs=1e-5)
    assert r.mask[0, 0, 16, 16].item() == 1 and r.mask[0, 0, 0, 0].item() == 0


def test_sphere_depth_matches_analytic() -> None:
    c, rad = torch.tensor([0.3, -0.2, 4.0]), 1.0
    world = World((Sphere(tuple(c.tolist()), rad, tex()),))
    cam = identity_camera()
    r = world.render(cam)
    d = pixel_dirs(cam)
    a = (d * d).sum(-1)
    b = (d * c).sum(-1)
    disc = b * b - a * (c @ c - rad**2)
    t = (b - disc.clamp_min(0).sqrt()) / a
    expect = torch.where(disc >= 0, t, torch.zeros_like(t))
    assert torch.allclose(r.depth[0, 0], expect, atol=1e-4)


def test_box_front_face() -> None:
    world = World((Box((0.0, 0.0, 3.0), (1.0, 1.0, 0.5), texture=tex()),))
    cam = identity_camera()
    r = world.render(cam)
    p = pixel_dirs(cam) * 2.5
    on_face = (p[..., 0].abs() <= 1.0) & (p[..., 1].abs() <= 1.0)
    assert torch.all(r.depth[0, 0][on_face] == 2.5)
    assert torch.equal(r.mask[0, 0] == 1, on_face)


def test_rotated_box_corner_depth() -> None:
    # a cube turned 45 deg about the vertical axis presents an edge to the camera at z = 3 - sqrt(2) * 0.5
    world = World((Box((0.0, 0.0, 3.0), (0.5, 0.5, 0.5), quat_about_axis((0.0, 1.0, 0.0), 45.0), tex()),))
    r = world.render(identity_camera())
    assert r.depth[0, 0, 16, 16].item() == pytest.approx(3 - math.sqrt(0.5), abs=1e-5)


def test_cylinder_side_and_cap() -> None:
    world = World((Cylinder((0.0, 0.0, 4.0), 1.0, 0.5, texture=tex()),))
    r = world.render(identity_camera())
    assert r.depth[0, 0, 16, 16].item() == pytest.approx(3.0, abs=1e-5)
    # from above (world up is -y): looking down the axis we see the cap at distance 3 - 0.5
    w2c = look_at(torch.tensor([0.0, -3.0, 4.0]), torch.tensor([0.0, 0.0, 4.0]), torch.tensor([0.0, 0.0, 1.0]))
    cam = Cameras(w2c, intrinsics_matrix(30.0, 30.0, 16.5, 16.5), 33, 33)
    r = world.render(cam)
    assert r.depth[0, 0, 16, 16].item() == pytest.approx(2.5, abs=1e-5)


def test_nearest_hit_wins_in_any_order() -> None:
    plane = Plane((0.0, 0.0, 6.0), (0.0, 0.0, -1.0), texture=tex((0.2, 0.2, 0.8)))
    ball = Sphere((0.0, 0.0, 3.0), 0.5, tex((0.9, 0.1, 0.1)))
    cam = identity_camera()
    r1 = World((plane, ball)).render(cam)
    r2 = World((ball, plane)).render(cam)
    assert torch.equal(r1.depth, r2.depth)
    assert r1.mask[0, 0, 16, 16].item() == 2 and r2.mask[0, 0, 16, 16].item() == 1
    assert r1.mask[0, 0, 0, 0].item() == 1 and r2.mask[0, 0, 0, 0].item() == 2
    assert r1.depth[0, 0, 16, 16].item() == pytest.approx(2.5, abs=1e-5)
    assert r1.depth[0, 0, 0, 0].item() == 6.0


def test_lambert_shading_and_shadow() -> None:
    floor = Plane((0.0, 1.0, 3.0), (0.0, -1.0, 0.0), texture=tex((1.0, 1.0, 1.0)))
    light = DirectionalLight((0.0, -1.0, 0.0), (1.0, 1.0, 1.0), 0.5)
    lit = World((floor,), (light,), ambient=(0.25, 0.25, 0.25))
    r = lit.render(identity_camera())
    assert torch.allclose(r.rgb[0, :, 30, 16], torch.full((3,), 0.75))
    blocker = Sphere((0.0, -1.0, 1.0 / (15.0 / 30.0)), 0.3, tex())  # above the floor point seen at row 31
    r = World((floor, blocker), (light,), ambient=(0.25, 0.25, 0.25)).render(identity_camera())
    assert torch.allclose(r.rgb[0, :, 31, 16], torch.full((3,), 0.25))


# ---------------------------------------------------------------------------------------------- textures
def test_noise_is_smooth_deterministic_and_bounded() -> None:
    p = torch.rand(2000, 3, generator=torch.Generator().manual_seed(0)) * 10
    a, b = fbm(p, 4, seed=3), fbm(p, 4, seed=3)
    assert torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1 and a.std() > 0.05
    assert (fbm(p + 1e-4, 4, seed=3) - a).abs().max() < 1e-2
    assert not torch.equal(a, fbm(p, 4, seed=4))


@pytest.mark.parametrize("kind", ["solid", "checker", "noise", "stripes", "gradient"])
def test_texture_kinds_render(kind: str) -> None:
    t = Texture(kind, (0.9, 0.2, 0.1), (0.1, 0.3, 0.9), scale=0.3, detail=0.2)
    r = World((Plane((0.0, 0.0, 2.0), (0.0, 0.0, -1.0), texture=t),), ambient=(1.0, 1.0, 1.0)).render(
        identity_camera())
    assert r.rgb.min() >= 0 and r.rgb.max() <= 1
    if kind != "solid":
        assert r.rgb.std(dim=(2, 3)).max() > 0.05


# ---------------------------------------------------------------------------------------------- motion
def test_moving_objects_move_static_ones_do_not() -> None:
    ball = Sphere((-1.0, 0.0, 4.0), 0.4, tex(), Motion("linear", delta=(0.0, -0.8, 0.0)))
    orbit = Sphere((-1.0, 1.0, 4.0), 0.2, tex(), Motion("circular", pivot=(-1.0, 1.0, 4.5), turns=0.25))
    cube = Box((1.0, 0.0, 4.0), (0.4, 0.4, 0.4), texture=tex())
    world = World((ball, orbit, cube))
    cam = identity_camera()
    r0, r1 = world.render(cam, 0.0), world.render(cam, 1.0)
    for k in (1, 2):
        assert not torch.equal(r0.mask == k, r1.mask == k)
    assert torch.equal(r0.mask == 3, r1.mask == 3)
    assert torch.equal(r0.depth[..., 17:], r1.depth[..., 17:])
    assert world.moving_ids == [1, 2]
    # per-camera times equal separate renders
    both = world.render(Cameras.cat([cam, cam]), [0.0, 1.0])
    assert torch.equal(both.depth[0], r0.depth[0]) and torch.equal(both.depth[1], r1.depth[0])
    # at_time freezes positions
    assert torch.equal(world.at_time(1.0).render(cam).depth, r1.depth)


def test_circular_motion_position() -> None:
    m = Motion("circular", pivot=(0.0, 0.0, 3.0), axis=(0.0, -1.0, 0.0), turns=1.0)
    for t in (0.0, 0.25, 0.5, 1.0):
        p = m.position((1.0, 0.0, 3.0), t)
        assert math.hypot(p[0], p[2] - 3.0) == pytest.approx(1.0)
    assert m.position((1.0, 0.0, 3.0), 1.0) == pytest.approx((1.0, 0.0, 3.0))
    assert m.position((1.0, 0.0, 3.0), 0.5) == pytest.approx((-1.0, 0.0, 3.0))


def test_generated_moving_world() -> None:
    world = generate_world(5, "room", moving=True)
    static = generate_world(5, "room", moving=False)
    assert world.moving_ids and not static.moving_ids
    cam = Cameras.from_fov(torch.eye(4), 24, 40, 90.0)
    r0, r1 = world.render(cam, 0.0), world.render(cam, 1.0)
    assert not torch.equal(r0.depth, r1.depth)
    still = [i for i in range(1, len(world.primitives) + 1) if i not in world.moving_ids]
    for i in still:
        p = world.primitives[i - 1]
        assert p.motion.position(p.center, 1.0) == p.center


# ---------------------------------------------------------------------------------------------- generation
@pytest.mark.parametrize("kind", ["room", "yard", "photo", "random", "mix"])
def test_generation_is_reproducible(kind: str) -> None:
    a, b = generate_world(11, kind), generate_world(11, kind)
    assert a == b
    assert a != generate_world(12, kind)
    cam = Cameras.from_fov(torch.eye(4), 16, 24, 70.0)
    assert torch.equal(a.render(cam).rgb, b.render(cam).rgb)


def test_room_is_closed_around_origin() -> None:
    world = generate_world(0, "room")
    targets = torch.tensor([[0, 0, 1], [0, 0, -1], [1, 0, 0], [-1, 0, 0], [0, 1, 0.01], [0, -1, 0.01]],
                           dtype=torch.float32)
    cams = Cameras.from_fov(look_at(torch.zeros(6, 3), targets), 12, 12, 90.0)
    r = world.render(cams)
    assert torch.all(r.mask > 0) and torch.all(r.depth > 0)
    front = world.render(Cameras.from_fov(torch.eye(4), 24, 40, 70.0))
    assert 1.0 < front.depth.median() < 12.0


def test_yard_has_ground_and_sky() -> None:
    world = generate_world(0, "yard")
    r = world.render(Cameras.from_fov(torch.eye(4), 24, 40, 70.0))
    ground_id = world.names.index("ground") + 1
    assert (r.mask == 0).any() and (r.mask == ground_id).any()
    assert torch.all(r.depth[r.mask == 0] == 0) and torch.all(r.depth[r.mask > 0] > 0)


def test_generate_world_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        generate_world(0, "castle")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- JSON
def test_json_round_trip_identical_render(tmp_path) -> None:
    world = generate_world(7, "yard", moving=True)
    path = tmp_path / "w.json"
    world.save_json(path)
    loaded = World.load_json(path)
    assert loaded == world
    assert World.from_dict(json.loads(json.dumps(world.to_dict()))) == world
    cam = Cameras.from_fov(torch.eye(4), 16, 24, 70.0)
    a, b = world.render(cam, 0.3), loaded.render(cam, 0.3)
    assert torch.equal(a.rgb, b.rgb) and torch.equal(a.depth, b.depth) and torch.equal(a.mask, b.mask)


def _bad(mutate) -> dict:
    d = World((Sphere((0.0, 0.0, 3.0), 1.0, name="s"),)).to_dict()
    mutate(d)
    return d


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["primitives"][0].update(type="cone"), "unknown type 'cone'"),
        (lambda d: d["primitives"][0].pop("radius"), "missing field 'radius'"),
        (lambda d: d["primitives"][0].pop("type"), "missing field 'type'"),
        (lambda d: d["primitives"][0].update(center=[0, 1]), "expected 3 values"),
        (lambda d: d["primitives"][0].update(radius="big"), "expected a number"),
        (lambda d: d["primitives"][0].update(radius=-1.0), "radius must be > 0"),
        (lambda d: d["primitives"][0].update(colour=[1, 0, 0]), "unknown field"),
        (lambda d: d["primitives"][0]["texture"].update(kind="marble"), "marble"),
        (lambda d: d["primitives"][0]["motion"].update(kind="teleport"), "teleport"),
        (lambda d: d.pop("version"), "missing field 'version'"),
        (lambda d: d.update(version=99), "unsupported version"),
        (lambda d: d.pop("primitives"), "missing field 'primitives'"),
        (lambda d: d.update(lights=[{"color": [1, 1, 1]}]), "missing field 'direction'"),
    ],
)
def test_malformed_json_errors(mutate, message: str) -> None:
    with pytest.raises(WorldError, match=message):
        World.from_dict(_bad(mutate))


def test_load_json_rejects_invalid_text(tmp_path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(WorldError, match="not valid JSON"):
        World.load_json(path)


# ---------------------------------------------------------------------------------------------- batches
def test_batch_render_6x17_frames() -> None:
    world = generate_world(1, "random", moving=True)
    n = 6 * 17
    angles = torch.linspace(-0.3, 0.3, n)
    eye = torch.stack([angles, torch.zeros(n), torch.zeros(n)], -1)
    cams = Cameras.from_fov(look_at(eye, eye + torch.tensor([0.0, 0.0, 2.0])), 64, 112, 60.0)
    r = world.render(cams, torch.linspace(0, 1, n))
    assert r.rgb.shape == (n, 3, 64, 112) and r.depth.shape == (n, 1, 64, 112) and r.mask.shape == (n, 1, 64, 112)
    assert torch.isfinite(r.rgb).all() and r.rgb.min() >= 0 and r.rgb.max() <= 1


def test_render_restores_thread_count() -> None:
    torch.set_num_threads(2)
    World((Sphere((0.0, 0.0, 3.0), 1.0),)).render(identity_camera(8, 8))
    assert torch.get_num_threads() == 2


def test_supersample_keeps_exact_depth_and_mask() -> None:
    world = generate_world(2, "room")
    cam = Cameras.from_fov(torch.eye(4), 16, 24, 70.0)
    a, b = world.render(cam), world.render(cam, supersample=2)
    assert torch.equal(a.depth, b.depth) and torch.equal(a.mask, b.mask)
    assert not torch.equal(a.rgb, b.rgb) and (a.rgb - b.rgb).abs().mean() < 0.1


@pytest.mark.parametrize("kind", ["room", "photo"])
def test_supersample_is_a_box_filtered_finer_render(kind: str) -> None:
    world = generate_world(2, kind)
    cam = Cameras.from_fov(torch.eye(4), 16, 24, 70.0)
    base, one, two = world.render(cam), world.render(cam, supersample=1), world.render(cam, supersample=2)
    assert torch.equal(one.rgb, base.rgb) and torch.equal(one.depth, base.depth) and torch.equal(one.mask, base.mask)
    fine = world.render(cam.resized(32, 48))  # sub-pixel centres at +0.25 / +0.75 of each pixel
    assert torch.equal(two.rgb, torch.nn.functional.avg_pool2d(fine.rgb, 2))
    assert torch.equal(two.depth, base.depth) and torch.equal(two.mask, base.mask)  # the pixel-centre ray


def test_culling_matches_brute_force() -> None:
    from lyra.world.raycast import intersect
    from lyra.world.scene import _camera_rays, _nearest_hit, _pose_primitives, _to_local

    world = generate_world(4, "yard", moving=True)
    eye = torch.tensor([[0.4, -0.3, -0.5], [-2.0, -1.0, 1.0]])
    cams = Cameras.from_fov(look_at(eye, torch.tensor([0.0, 0.5, 4.0])), 20, 36, 100.0)
    posed = _pose_primitives(world.primitives, 0.4)
    for i in range(2):
        for start, end in ((0, 720), (13, 500)):
            o, d, view = _camera_rays(cams, i, start, end)
            ts = torch.stack([intersect(ps.prim, _to_local(ps, o, True), _to_local(ps, d, False), 1e-4)
                              for ps in posed])
            t_ref, k = ts.min(0)
            id_ref = torch.where(torch.isfinite(t_ref), k + 1, 0)
            for v in (view, None):
                t, ids = _nearest_hit(posed, o, d, v)
                assert torch.equal(ids, id_ref)
                assert torch.equal(t, t_ref)


def test_chunking_and_float64_agree() -> None:
    world = generate_world(3, "room", moving=True)
    cams = Cameras.from_fov(look_at(torch.tensor([[0.3, 0.1, 0.2]]), torch.tensor([0.0, 0.0, 3.0])), 18, 30, 70.0)
    a = world.render(cams, 0.5)
    b = world.render(cams, 0.5, chunk=97)
    assert torch.equal(a.rgb, b.rgb) and torch.equal(a.depth, b.depth) and torch.equal(a.mask, b.mask)
    c = world.render(cams.to(dtype=torch.float64), 0.5)
    assert c.depth.dtype == torch.float32 and c.mask.dtype == torch.int64
    agree = (c.mask == a.mask).float().mean()
    assert agree > 0.99
    same = c.mask == a.mask
    assert torch.allclose(c.depth[same], a.depth[same], rtol=1e-4, atol=1e-4)
