"""Photo-domain worlds: the photo registry and its splits, image textures, photo worlds, the "mix" kind."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from test_world import identity_camera, pixel_dirs  # the tests folder is on sys.path (no __init__.py)

from lyra.cameras import Cameras, default_intrinsics, method_trajectories
from lyra.world import Motion, Plane, Texture, World, WorldError, generate_world
from lyra.world.generate import MIX_WEIGHTS
from lyra.world.photos import PHOTOS, load_photo, photo_level, photo_names
from lyra.world.textures import image_coords, sample_bilinear

MOTORCYCLE = {"motorcycle_left", "motorcycle_right"}


def anchor(h: int = 33, w: int = 49, f: float = 40.0) -> Cameras:
    return identity_camera(h, w, f)


def photo_panel(z: float, half: tuple[float, float], tex: Texture, x: float = 0.0, name: str = "") -> Plane:
    """A panel facing the origin camera, photo upright (local x = world x, local y = world y = down)."""
    return Plane((x, 0.0, z), (0.0, 0.0, 1.0), (1.0, 0.0, 0.0), half, tex, name=name)


def image_textures(world: World) -> list[Texture]:
    return [p.texture for p in world.primitives if p.texture.kind == "image"]


def grid_lookup(img: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Reference bilinear lookup: torch's grid_sample at normalised coords in [0, 1] -> [3, M]."""
    grid = torch.stack([2 * x - 1, 2 * y - 1], -1).reshape(1, 1, -1, 2)
    return F.grid_sample(img[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0, :, 0]


# ---------------------------------------------------------------------------------------------- registry
def test_training_photos_exclude_the_motorcycle_and_the_heldout_photos() -> None:
    from lyra.tokenizer.data import HELDOUT_PHOTOS, TRAIN_PHOTOS

    train, heldout, bench = (set(photo_names(s)) for s in ("train", "heldout", "benchmark"))
    assert bench == MOTORCYCLE
    assert not train & heldout and not train & MOTORCYCLE and not heldout & MOTORCYCLE
    assert set(TRAIN_PHOTOS) <= train and not set(TRAIN_PHOTOS) & (MOTORCYCLE | heldout | set(HELDOUT_PHOTOS))
    assert set(HELDOUT_PHOTOS) <= heldout
    assert "cat" not in PHOTOS  # skimage's cat is chelsea: it would leak across the split
    assert {p.source for p in PHOTOS.values()} == {"skimage", "matplotlib", "viser"}
    with pytest.raises(ValueError, match="split"):
        photo_names("test")  # type: ignore[arg-type]


def test_every_registered_photo_loads_offline() -> None:
    for name in PHOTOS:
        img = load_photo(name)
        assert img.dtype == torch.float32 and img.ndim == 3 and img.shape[0] == 3, name
        assert min(img.shape[1:]) >= 128 and 0 <= img.min() and img.max() <= 1 and img.std() > 0.02, name
    assert not torch.equal(load_photo("motorcycle_left"), load_photo("motorcycle_right"))


def test_photo_levels_are_area_averages() -> None:
    img = load_photo("astronaut")  # 512 x 512: level 1 is exactly the 2 x 2 box average
    assert torch.allclose(photo_level("astronaut", 1), F.avg_pool2d(img[None], 2)[0], atol=1e-6)
    assert photo_level("astronaut", 0) is img
    assert photo_level("coffee", 3).shape == (3, 50, 75)


# ---------------------------------------------------------------------------------------------- image textures
def test_bilinear_sampler_matches_grid_sample() -> None:
    img = load_photo("coffee")
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(5000, generator=g) * 1.2 - 0.1, torch.rand(5000, generator=g) * 1.2 - 0.1
    assert torch.allclose(sample_bilinear(img, x, y), grid_lookup(img, x, y), atol=2e-6)


@pytest.mark.parametrize(("wrap", "angle"), [("clamp", 0.0), ("repeat", 30.0), ("mirror", 0.0)])
def test_image_texture_renders_the_exact_bilinear_lookup(wrap: str, angle: float) -> None:
    crop = (0.2, 0.1, 0.7, 0.6)
    tex = Texture("image", (1.0, 1.0, 1.0), scale=0.8, angle=angle, photo="chelsea", crop=crop, wrap=wrap)  # type: ignore[arg-type]
    z = 2.0
    world = World((photo_panel(z, (1.2, 0.9), tex),), ambient=(1.0, 1.0, 1.0))
    cam = anchor()
    r = world.render(cam)
    assert torch.all(r.mask == 1)
    uv = (pixel_dirs(cam)[..., :2] * z).reshape(-1, 2).T  # hit points = plane coords (centre at the origin)
    a = math.radians(angle)
    qu = math.cos(a) * uv[0] + math.sin(a) * uv[1]
    qv = -math.sin(a) * uv[0] + math.cos(a) * uv[1]
    img = load_photo("chelsea")
    height = 0.8 * (0.5 * img.shape[1]) / (0.5 * img.shape[2])  # square photo pixels
    su, sv = qu / 0.8 + 0.5, qv / height + 0.5
    fold = {"clamp": lambda s: s.clamp(0, 1), "repeat": lambda s: s - s.floor(),
            "mirror": lambda s: 1 - ((s % 2) - 1).abs()}[wrap]
    x, y = crop[0] + fold(su) * (crop[2] - crop[0]), crop[1] + fold(sv) * (crop[3] - crop[1])
    want = grid_lookup(img, x, y).reshape(3, cam.height, cam.width)
    close = (r.rgb[0] - want).abs().amax(0) <= 1e-4
    # "repeat" jumps at the crop's seams, where the last float bit decides the side: a few pixels may differ there
    assert close.all() if wrap != "repeat" else close.float().mean() > 0.98
    if wrap != "clamp":  # the view is wider than the crop: it repeats
        assert (su.min() < 0) and (su.max() > 1)


def test_image_texture_is_upright_and_unmirrored_from_the_front() -> None:
    img = load_photo("astronaut")
    tex = Texture("image", (1.0, 1.0, 1.0), scale=2.0, photo="astronaut", lod=3)  # 512 px -> 64 texels
    cam = anchor(64, 64, 64.0)  # a 2 x 2 panel at z = 2 fills the view exactly: one texel per pixel
    r = World((photo_panel(2.0, (1.0, 1.0), tex),), ambient=(1.0, 1.0, 1.0)).render(cam)
    want = F.avg_pool2d(img[None], 8)[0]
    err = (r.rgb[0] - want).abs().mean()
    assert err < 1e-4
    assert err < 0.5 * (r.rgb[0] - want.flip(-1)).abs().mean() and err < 0.5 * (r.rgb[0] - want.flip(-2)).abs().mean()


def test_image_texture_tint_and_lod() -> None:
    base = Texture("image", (1.0, 1.0, 1.0), scale=1.0, photo="brick")
    uv = torch.rand(2, 100) - 0.5
    p = torch.zeros(3, 100)
    from lyra.world import eval_texture

    plain = eval_texture(base, uv, p)
    tinted = eval_texture(replace(base, color_a=(1.0, 0.5, 0.25)), uv, p)
    assert torch.allclose(tinted, plain * torch.tensor([1.0, 0.5, 0.25])[:, None])
    x, y = image_coords(base, uv)
    assert torch.equal(eval_texture(replace(base, lod=2), uv, p), sample_bilinear(photo_level("brick", 2), x, y))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "image", "photo": "no_such_photo"}, "unknown photo"),
        ({"kind": "image", "photo": "coffee", "crop": (0.5, 0.0, 0.4, 1.0)}, "crop"),
        ({"kind": "image", "photo": "coffee", "wrap": "tile"}, "wrap"),
        ({"kind": "image", "photo": "coffee", "lod": -1}, "lod"),
        ({"kind": "checker", "photo": "coffee"}, "only 'image'"),
    ],
)
def test_image_texture_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Texture(**kwargs)


def test_world_json_names_photos_and_rejects_unknown_ones() -> None:
    world = generate_world(0, "photo")
    text = json.dumps(world.to_dict())
    assert len(text) < 60_000  # textures are stored by name and parameters, never by pixels
    d = json.loads(text)
    i = next(i for i, p in enumerate(d["primitives"]) if p["texture"]["kind"] == "image")
    d["primitives"][i]["texture"]["photo"] = "mona_lisa"
    with pytest.raises(WorldError, match="unknown photo 'mona_lisa'"):
        World.from_dict(d)


# ---------------------------------------------------------------------------------------------- geometry
def test_photo_layer_depth_is_exact_and_nearer_layers_occlude() -> None:
    near = photo_panel(2.0, (0.5, 0.4), Texture("image", (1.0, 1.0, 1.0), scale=1.0, photo="rocket"), -0.3)
    far = photo_panel(3.5, (0.9, 0.7), Texture("image", (1.0, 1.0, 1.0), scale=1.8, photo="coffee"), 0.2)
    cam = anchor()
    xy = pixel_dirs(cam)[..., :2]
    in_near = ((xy[..., 0] * 2.0 + 0.3).abs() <= 0.5) & ((xy[..., 1] * 2.0).abs() <= 0.4)
    in_far = ((xy[..., 0] * 3.5 - 0.2).abs() <= 0.9) & ((xy[..., 1] * 3.5).abs() <= 0.7)
    assert (in_near & in_far).any() and (in_far & ~in_near).any()
    for prims, ids in (((near, far), (1, 2)), ((far, near), (2, 1))):  # order of the primitives does not matter
        r = World(prims).render(cam)
        m, d = r.mask[0, 0], r.depth[0, 0]
        assert torch.all(m[in_near] == ids[0]) and torch.all(d[in_near] == 2.0)
        assert torch.all(m[in_far & ~in_near] == ids[1]) and torch.all(d[in_far & ~in_near] == 3.5)
        assert torch.all(m[~in_near & ~in_far] == 0) and torch.all(d[~in_near & ~in_far] == 0)


# ---------------------------------------------------------------------------------------------- photo worlds
def test_photo_world_is_reproducible_and_round_trips_exactly(tmp_path) -> None:
    a, b = generate_world(3, "photo", moving=True), generate_world(3, "photo", moving=True)
    assert a == b and a != generate_world(4, "photo", moving=True) and a.kind == "photo"
    a.save_json(tmp_path / "w.json")
    loaded = World.load_json(tmp_path / "w.json")
    assert loaded == a
    cam = Cameras.from_fov(torch.eye(4), 24, 40, 60.0)
    r, s = a.render(cam, 0.4), loaded.render(cam, 0.4)
    assert torch.equal(r.rgb, s.rgb) and torch.equal(r.depth, s.depth) and torch.equal(r.mask, s.mask)


def test_photo_world_contents() -> None:
    for seed in range(4):
        world = generate_world(seed, "photo")
        names = world.names
        assert "floor" in names and "wall_back" in names
        layers = {n.split("_")[1] for n in names if n.startswith("layer_")}
        assert len(layers) >= 3
        texs = image_textures(world)
        assert len(texs) >= len(layers) + 2
        assert {t.photo for t in texs} <= set(photo_names("train"))
        assert len({t.photo for t in texs}) >= 3
        r = world.render(Cameras.from_fov(torch.eye(4), 44, 80, 60.0))
        seen = {names[i - 1] for i in r.mask.unique().tolist() if i > 0}
        assert len({n for n in seen if n.startswith("layer_")}) >= 2, seed
        d = r.depth[r.depth > 0]
        assert d.min() < 4.0 and d.max() > 7.0  # layers at several depths before a far wall


def test_photo_worlds_occlude_and_disocclude_along_the_trajectories() -> None:
    H, W = 44, 80
    K = default_intrinsics(H, W, 60.0)
    occluded_layers = 0
    for seed in range(3):
        world = generate_world(seed, "photo")
        trajs = method_trajectories(K, H, W, 9, seed=seed)
        first = world.render(trajs[0][0:1])  # the anchor camera
        for i, p in enumerate(world.primitives):
            if not p.name.startswith("layer_"):
                continue
            alone = World((p,)).render(trajs[0][0:1]).mask[0, 0] > 0
            covered = alone & (first.mask[0, 0] != i + 1)
            occluded_layers += int(covered.any())
        # moving the camera changes which layer is seen at some pixels (parallax, disocclusion)
        far = [int((t.centers - t.centers[0]).norm(dim=-1).argmax()) for t in trajs]  # the orbit returns home
        last = world.render(Cameras.cat([t[k : k + 1] for t, k in zip(trajs, far)]))
        for v in range(6):
            changed = first.mask[0, 0] != last.mask[v, 0]
            assert changed.float().mean() > 0.01, (seed, v)
    assert occluded_layers >= 3


def test_moving_photo_world_keeps_the_static_layout() -> None:
    static, moving = generate_world(5, "photo"), generate_world(5, "photo", moving=True)
    assert moving.moving_ids and not static.moving_ids
    assert tuple(replace(p, motion=Motion()) for p in moving.primitives[:-1]) == static.primitives  # + a flyer
    cam = Cameras.from_fov(torch.eye(4), 24, 40, 60.0)
    assert not torch.equal(moving.render(cam, 0.0).mask, moving.render(cam, 1.0).mask)


def test_heldout_photo_worlds_use_heldout_photos_only() -> None:
    heldout, train = set(photo_names("heldout")), set(photo_names("train"))
    for seed in range(3):
        h = generate_world(seed, "photo", photos="heldout")
        t = generate_world(seed, "photo")
        assert {x.photo for x in image_textures(h)} <= heldout and {x.photo for x in image_textures(t)} <= train
        assert h.name == f"photo-heldout-{seed}" and t.name == f"photo-{seed}"
    with pytest.raises(ValueError, match="photos"):
        generate_world(0, "photo", photos="benchmark")  # type: ignore[arg-type]


def test_mix_kind_draws_every_kind_and_random_stays_room_or_yard() -> None:
    kinds = [generate_world(s, "mix").kind for s in range(60)]
    for k, share in MIX_WEIGHTS.items():
        assert abs(kinds.count(k) / 60 - share) < 0.15, (k, kinds.count(k))
    assert generate_world(7, "mix") == generate_world(7, kinds[7])
    assert {generate_world(s, "random").kind for s in range(20)} == {"room", "yard"}
