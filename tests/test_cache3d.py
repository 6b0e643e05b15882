"""Tests for lyra.cache3d: lifting, discontinuity filtering, z-buffered forward warping, hole inpainting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lyra.cache3d import (
    PointCache,
    WarpResult,
    depth_edges,
    depth_to_gaussians,
    forward_warp,
    inpaint,
    lift_points,
    unproject_depth,
    warp_cpu,
    warp_image,
)
from lyra.cache3d.inpaint import _inpaint_torch
from lyra.cache3d.warp import _forward_warp_torch
from lyra.cameras import Cameras, default_intrinsics, intrinsics_matrix, look_at, trajectory_w2c
from lyra.gaussians import Gaussians
from lyra.world import generate_world


def cam(h: int = 16, w: int = 24, f: float = 20.0, w2c: torch.Tensor | None = None) -> Cameras:
    w2c = torch.eye(4) if w2c is None else w2c
    return Cameras(w2c, intrinsics_matrix(f, f, w / 2, h / 2).expand(w2c.reshape(-1, 4, 4).shape[0], 3, 3), h, w)


def translated(tx: float = 0.0, ty: float = 0.0, tz: float = 0.0) -> torch.Tensor:
    """w2c of a camera whose centre is at (tx, ty, tz), axes aligned with the world."""
    w2c = torch.eye(4)
    w2c[:3, 3] = -torch.tensor([tx, ty, tz])
    return w2c


def random_rgb(h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------- lifting
def test_lift_points_drops_invalid_and_keeps_pixel_order() -> None:
    c = cam(6, 8)
    depth = torch.full((1, 6, 8), 2.0)
    depth[0, 1, 2] = 0.0
    depth[0, 3, 4] = float("nan")
    depth[0, 4, 5] = -1.0
    rgb = random_rgb(6, 8)
    pc = lift_points(rgb, depth, c)
    assert isinstance(pc, PointCache) and len(pc) == 6 * 8 - 3
    assert torch.equal(pc.pixels, torch.tensor([i for i in range(48) if i not in (1 * 8 + 2, 3 * 8 + 4, 4 * 8 + 5)]))
    assert torch.allclose(pc.points, unproject_depth(torch.full((1, 6, 8), 2.0), c).reshape(-1, 3)[pc.pixels])
    assert torch.equal(pc.colors, rgb.reshape(3, -1).T[pc.pixels])
    assert torch.allclose(pc.points[:, 2], torch.full((len(pc),), 2.0))
    far = lift_points(rgb, depth, c, max_depth=1.5)
    assert len(far) == 0


def test_lift_points_in_world_frame_of_a_moved_camera() -> None:
    w2c = look_at(torch.tensor([1.0, -0.5, -2.0]), torch.tensor([0.0, 0.0, 1.0]))
    c = cam(8, 10, w2c=w2c)
    depth = torch.rand(1, 8, 10, generator=torch.Generator().manual_seed(1)) + 1.0
    pc = lift_points(random_rgb(8, 10), depth, c, edge_threshold=None)
    p_cam = pc.points @ c.R[0].T + c.t[0]
    assert torch.allclose(p_cam[:, 2], depth.reshape(-1), atol=1e-5)


def test_lift_points_shape_errors() -> None:
    with pytest.raises(ValueError, match="rgb must be"):
        lift_points(torch.rand(3, 5, 5), torch.ones(1, 6, 8), cam(6, 8))
    with pytest.raises(ValueError, match="points must be"):
        PointCache(torch.zeros(4, 2), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))


def test_depth_edges_step_but_not_slanted_plane_or_sky() -> None:
    c = cam(32, 40, f=30.0)
    # a plane tilted 80 degrees (a grazing floor): inverse depth is affine in the pixel, no edges
    from lyra.cameras import camera_rays

    _, d = camera_rays(c)
    n = torch.tensor([0.0, -0.985, -0.174])  # normal ~80 deg away from the optical axis
    t = -1.0 / (d * n[None, :, None, None]).sum(1)
    z = (t * d[:, 2])[0:1]
    z = torch.where((t > 0) & (z < 100), z, torch.zeros_like(z))[0]
    assert (z > 0).float().mean() > 0.3
    assert not depth_edges(z).any()
    # the same plane with a box in front: edges on both sides of the step only
    step = torch.full((1, 32, 40), 4.0)
    step[:, 10:20, 10:30] = 2.0
    e = depth_edges(step)[0]
    ring_in = torch.zeros(32, 40, dtype=torch.bool)
    ring_in[10:20, 10:30] = True
    ring_in[11:19, 11:29] = False
    ring_out = torch.zeros(32, 40, dtype=torch.bool)
    ring_out[9:21, 9:31] = True
    ring_out[10:20, 10:30] = False
    assert torch.equal(e, ring_in | ring_out)
    # a silhouette against the sky (depth 0) is not an edge; a 4 % step is below the default threshold
    sky = torch.full((1, 32, 40), 3.0)
    sky[:, :, 20:] = 0.0
    assert not depth_edges(sky).any()
    small = torch.full((1, 32, 40), 3.0)
    small[:, :, 20:] = 3.12
    assert not depth_edges(small).any() and depth_edges(small, threshold=0.02).any()
    assert depth_edges(step, dilate=1).sum() > e.sum()
    with pytest.raises(ValueError):
        depth_edges(step, threshold=0.0)


def test_lift_drops_discontinuities() -> None:
    step = torch.full((1, 32, 40), 4.0)
    step[:, 10:20, 10:30] = 2.0
    c = cam(32, 40)
    assert len(lift_points(random_rgb(32, 40), step, c)) == 32 * 40 - int(depth_edges(step).sum())
    assert len(lift_points(random_rgb(32, 40), step, c, edge_threshold=None)) == 32 * 40


def test_depth_to_gaussians_unchanged() -> None:
    g = depth_to_gaussians(random_rgb(6, 8), torch.full((1, 6, 8), 2.0), cam(6, 8))
    assert g.means.shape == (48, 3)


# ---------------------------------------------------------------------------------------------- warping basics
def test_warp_into_source_camera_is_identity() -> None:
    c = cam(12, 20)
    rgb = random_rgb(12, 20)
    depth = torch.rand(1, 12, 20, generator=torch.Generator().manual_seed(3)) * 0.01 + 2.0
    r = warp_image(rgb, depth, c, c)
    assert r.rgb.shape == (1, 3, 12, 20) and r.depth.shape == (1, 1, 12, 20) and r.mask.shape == (1, 1, 12, 20)
    assert torch.all(r.mask == 1)
    assert torch.allclose(r.rgb[0], rgb) and torch.allclose(r.depth[0], depth, atol=1e-5)
    assert torch.equal(r.index.reshape(-1), torch.arange(240))


def test_warp_known_translation_direction() -> None:
    """A camera moved right by tx sees a fronto-parallel plane at z shifted left by f * tx / z pixels."""
    H, W, f, z = 10, 30, 20.0, 2.0
    c = cam(H, W, f)
    rgb = random_rgb(H, W)
    depth = torch.full((1, H, W), z)
    tx, ty = 0.3, -0.2  # 3 px left, 2 px down
    r = warp_image(rgb, depth, c, cam(H, W, f, translated(tx, ty)))
    exp = torch.zeros(3, H, W)
    exp[:, 2:, :W - 3] = rgb[:, :H - 2, 3:]
    assert torch.equal(r.mask[0, 0] > 0, exp.abs().sum(0) > 0)
    assert torch.allclose(r.rgb[0], exp)
    assert torch.allclose(r.depth[0][r.mask[0] > 0], torch.tensor(z))
    # moving forward magnifies: the centre stays, the border leaves the frame; behind-camera points vanish
    fwd = warp_image(rgb, depth, c, cam(H, W, f, translated(tz=1.0)))
    assert torch.allclose(fwd.depth[fwd.mask > 0], torch.tensor(1.0))
    behind = warp_image(rgb, depth, c, cam(H, W, f, translated(tz=2.5)))
    assert behind.mask.sum() == 0 and torch.all(behind.depth == 0)


def test_z_buffer_nearest_wins_and_ties_are_deterministic() -> None:
    c = cam(4, 4, f=4.0)
    # three points on the ray through the centre of pixel (1, 2): z = 3, 1, 2 -> the z = 1 point wins
    u, v = 2.5, 1.5
    ray = torch.tensor([(u - 2) / 4.0, (v - 2) / 4.0, 1.0])
    pts = torch.stack([ray * 3.0, ray * 1.0, ray * 2.0])
    cols = torch.eye(3)
    for perm in ([0, 1, 2], [2, 1, 0], [1, 0, 2]):
        pc = PointCache(pts[perm], cols[perm], torch.arange(3))
        r = forward_warp(pc, c)
        assert r.mask.sum() == 1 and r.mask[0, 0, 1, 2] == 1
        assert r.depth[0, 0, 1, 2] == pytest.approx(1.0)
        assert torch.equal(r.rgb[0, :, 1, 2], cols[1])
        assert int(r.index[0, 0, 1, 2]) == perm.index(1)
    # equal depth: the lowest point index wins
    pc = PointCache(torch.stack([ray, ray, ray]), torch.eye(3), torch.arange(3))
    r = forward_warp(pc, c)
    assert int(r.index[0, 0, 1, 2]) == 0 and torch.equal(r.rgb[0, :, 1, 2], torch.eye(3)[0])
    # background value in holes
    assert torch.all(forward_warp(pc, c, background=-1.0).rgb[0, :, 0, 0] == -1)


def test_occlusion_in_a_two_layer_scene() -> None:
    """A near square in front of a far wall: after a lateral move the square still hides the wall."""
    H, W, f = 24, 32, 24.0
    c = cam(H, W, f)
    depth = torch.full((1, H, W), 4.0)
    depth[:, 8:16, 12:20] = 1.0
    rgb = torch.zeros(3, H, W)
    rgb[0] = 1.0
    rgb[:, 8:16, 12:20] = torch.tensor([0.0, 0.0, 1.0])[:, None, None]
    tgt = cam(H, W, f, translated(0.2))  # near square shifts 4.8 px left, wall 1.2 px
    r = warp_image(rgb, depth, c, tgt)
    # exact target depth: square at 1 where its (shrunk, edge-dropped) footprint projects
    u = torch.arange(W) + 0.5
    x_world = (u - W / 2) / f * 1.0 + 0.2  # world x seen at depth 1 from the target
    u_src = x_world * f + W / 2  # source pixel coordinate of that point
    cols_in = ((u_src >= 13) & (u_src < 19)).nonzero().flatten()  # strictly inside the square (edges dropped)
    near = r.depth[0, 0, 9:15][:, cols_in]
    assert torch.allclose(near, torch.ones_like(near))
    assert torch.all(r.rgb[0, 2, 9:15][:, cols_in] == 1.0)
    # wall points visible in the source land on part of the square: there the z-test must keep the square
    pc = lift_points(rgb, depth, c)
    far = pc.points[:, 2] > 2
    far_only = forward_warp(PointCache(pc.points[far], pc.colors[far], pc.pixels[far]), tgt)
    conflict = far_only.mask[0, 0, 9:15][:, cols_in] > 0
    assert conflict.sum() >= 6
    assert torch.all(near[conflict] == 1.0)


def test_warp_chunking_and_batch_are_consistent() -> None:
    c = cam(12, 16)
    rgb = random_rgb(12, 16)
    depth = 1.5 + torch.rand(1, 12, 16, generator=torch.Generator().manual_seed(5))
    pc = lift_points(rgb, depth, c, edge_threshold=None)
    targets = Cameras(trajectory_w2c("left", 5, 0.3), c.K.expand(5, 3, 3), 12, 16)
    for fp in ("nearest", "bilinear"):
        a, b = forward_warp(pc, targets, footprint=fp), forward_warp(pc, targets, footprint=fp, max_elements=10)
        assert torch.equal(a.index, b.index) and torch.equal(a.mask, b.mask)
        assert torch.allclose(a.rgb, b.rgb, atol=1e-5) and torch.allclose(a.depth, b.depth, atol=1e-5)
        single = forward_warp(pc, targets[3], footprint=fp)
        assert torch.allclose(single.rgb[0], a.rgb[3], atol=1e-5) and torch.equal(single.mask[0], a.mask[3])
    with pytest.raises(ValueError, match="footprint"):
        forward_warp(pc, targets, footprint="cubic")  # type: ignore[arg-type]
    empty = forward_warp(PointCache(torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)), targets)
    assert empty.mask.sum() == 0 and torch.all(empty.index == -1)


def test_warp_to_other_resolution() -> None:
    c = cam(10, 16, f=16.0)
    rgb = random_rgb(10, 16)
    r = warp_image(rgb, torch.full((1, 10, 16), 2.0), c, c.resized(20, 32))
    assert r.rgb.shape == (1, 3, 20, 32)
    # every other target pixel receives a point (2x upsampling of a plane, nearest splatting)
    assert r.mask.mean() == pytest.approx(0.25)


# ---------------------------------------------------------------------------------------------- numba warp kernel
def _tricky_cloud(channels: int, seed: int = 0) -> PointCache:
    """Random points around z = 3 plus points behind the camera, far off-screen, non-finite, at z = near, on a
    plane z = 2 denser than the pixels (equal-z ties) and exact duplicates (100..159 repeated as 200..259)."""
    g = torch.Generator().manual_seed(seed)
    n = 600
    pts = torch.randn(n, 3, generator=g) * torch.tensor([1.5, 1.0, 1.0]) + torch.tensor([0.0, 0.0, 3.0])
    pts[:40, 2] = -1.0 - torch.rand(40, generator=g)  # behind the identity camera
    pts[40:80, :2] *= 25.0  # off-screen
    gy, gx = torch.meshgrid(torch.linspace(-0.5, 0.5, 10), torch.linspace(-0.7, 0.7, 12), indexing="ij")
    pts[80:200] = torch.stack([gx.reshape(-1), gy.reshape(-1), torch.full((120,), 2.0)], 1)
    pts[200:260] = pts[100:160]
    pts[260] = float("nan")
    pts[261] = torch.tensor([0.0, 0.0, float("inf")])  # projects to (cx, cy) at z = inf: a pixel of depth inf
    pts[262] = torch.tensor([float("inf"), 0.0, 3.0])
    pts[263] = torch.tensor([0.1, 0.1, 1e-3])  # exactly at camera 0's near plane: dropped there
    return PointCache(pts, torch.rand(n, channels, generator=g), torch.arange(n))


def _tricky_cameras(dtype: torch.dtype) -> Cameras:
    H, W = 14, 19
    w2c = torch.cat([torch.eye(4)[None], translated(0.3, -0.2, 0.4)[None],
                     look_at(torch.tensor([[0.5, 0.3, -1.0], [0.0, 0.0, 6.0]]), torch.tensor([[0.0, 0.0, 3.0]] * 2)),
                     translated(tz=2.5)[None]])  # the last two see the points behind the first camera
    K = intrinsics_matrix(15.0, 16.0, W / 2 + 0.3, H / 2 - 0.2).expand(len(w2c), 3, 3)
    return Cameras(w2c, K, H, W).to(dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("footprint", ["nearest", "bilinear"])
def test_warp_numba_kernel_matches_torch(footprint: str, dtype: torch.dtype) -> None:
    for channels, kwargs in ((3, {}), (1, dict(near=0.5, background=-1.0, depth_tolerance=0.1))):
        cache, cams = _tricky_cloud(channels), _tricky_cameras(dtype)
        assert warp_cpu.supports(cache.points, cache.colors, cams)
        a = forward_warp(cache, cams, footprint=footprint, **kwargs)  # type: ignore[arg-type]
        b = _forward_warp_torch(cache, cams, footprint=footprint, **kwargs)  # type: ignore[arg-type]
        assert a.rgb.dtype == a.depth.dtype == a.mask.dtype == torch.float32 and a.index.dtype == torch.int64
        assert torch.equal(a.index, b.index) and torch.equal(a.mask, b.mask)
        if footprint == "nearest":
            assert torch.equal(a.rgb, b.rgb) and torch.equal(a.depth, b.depth)
        else:
            assert torch.allclose(a.rgb, b.rgb, rtol=1e-6, atol=1e-6)
            assert torch.allclose(a.depth, b.depth, rtol=1e-6, atol=1e-6)
        assert 0.05 < a.mask.mean() < 0.95
        # z ties: a duplicate never beats its lower-index twin; the plane's equal-z points compete per pixel
        assert torch.isin(a.index, torch.arange(100, 160)).any()
        assert not torch.isin(a.index, torch.tensor([*range(200, 261), 262])).any()
        assert not (a.index[0] == 263).any()  # at the near plane of camera 0
    # one camera, and chunked torch cameras, give the same frames
    single = forward_warp(cache, cams[2], footprint=footprint)  # type: ignore[arg-type]
    chunked = _forward_warp_torch(cache, cams, footprint=footprint, max_elements=700)  # type: ignore[arg-type]
    assert torch.equal(single.index[0], chunked.index[2])
    assert torch.allclose(single.rgb[0], chunked.rgb[2], rtol=1e-6, atol=1e-6)


def test_warp_and_inpaint_kernels_keep_torch_threads() -> None:
    """torch's thread count is unchanged by the kernels; the parallel (2 threads) and serial results agree."""
    cache, cams = _tricky_cloud(3), _tricky_cameras(torch.float32)
    out = []
    for n in (1, 2, 1):
        torch.set_num_threads(n)
        r = forward_warp(cache, cams, footprint="bilinear")
        forward_warp(cache, cams[:1])
        out.append((r, inpaint(r.rgb, r.mask, smooth_iters=2)))
        assert torch.get_num_threads() == n
    for r, filled in out[1:]:
        assert torch.equal(r.rgb, out[0][0].rgb) and torch.equal(r.index, out[0][0].index)
        assert torch.equal(filled, out[0][1])


def test_warp_with_gradients_takes_the_torch_path() -> None:
    cache, cams = _tricky_cloud(3), _tricky_cameras(torch.float32)
    colors = cache.colors.clone().requires_grad_(True)
    assert not warp_cpu.supports(cache.points, colors, cams)
    r = forward_warp(PointCache(cache.points, colors, cache.pixels), cams, footprint="bilinear")
    r.rgb.sum().backward()
    assert colors.grad is not None and colors.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------- procedural worlds
def _depth_range_ok(warped: torch.Tensor, exact: torch.Tensor, rel: float = 5e-3) -> torch.Tensor:
    """Whether warped depth lies within the exact depth range of the 3x3 neighbourhood of its pixel.

    Nearest-pixel splatting moves a point by < 1 pixel, so its exact z lies between the min and max of
    the exact depth around the pixel where it lands (unless it shows through a gap of a nearer surface).
    Callers evaluate interior pixels only (:func:`_interior`): the frame cuts border neighbourhoods.
    """
    big = torch.full_like(exact, 1e9)
    lo = -F.max_pool2d(-torch.where(exact > 0, exact, big), 3, 1, 1)
    hi = F.max_pool2d(exact, 3, 1, 1)
    return (warped >= lo * (1 - rel)) & (warped <= hi * (1 + rel))


def _interior(x: torch.Tensor) -> torch.Tensor:
    return x[..., 1:-1, 1:-1]


@pytest.mark.parametrize(("seed", "kind", "min_ok"), [(0, "room", 0.99), (1, "yard", 0.95)])
def test_warp_matches_world_render(seed: int, kind: str, min_ok: float) -> None:
    """Warped depth = exact depth up to nearest-pixel snapping, colours mostly equal (textures alias at
    this size); the yard's thin trees let some background show through magnified gaps, hence its lower
    bound. A mirrored cache (a flipped axis) fails the same checks."""
    H, W = 40, 64
    K = default_intrinsics(H, W)
    anchor = Cameras(torch.eye(4), K, H, W)
    world = generate_world(seed, kind)
    src = world.render(anchor)
    cache = lift_points(src.rgb[0], src.depth[0], anchor)
    # end frames of three of the method's trajectories (movement in scene units; the worlds are metric)
    w2c = torch.stack([trajectory_w2c(k, 3, d)[-1] for k, d in (("left", 0.6), ("up", 0.4), ("zoom_in", 0.8))])
    w2c = torch.cat([w2c, look_at(torch.tensor([0.3, -0.2, 0.1]), torch.tensor([0.0, 0.0, 5.0]))])
    targets = Cameras(w2c, K.expand(4, 3, 3), H, W)
    gt = world.render(targets)

    def agreement(r: WarpResult) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per camera: fraction of visible interior pixels with matching depth, colour, and both."""
        vis = _interior(r.mask > 0)
        d_ok = _interior(_depth_range_ok(r.depth, gt.depth))
        c_ok = _interior((r.rgb - gt.rgb).abs().amax(1, keepdim=True) < 0.15)
        n = vis.sum((1, 2, 3)).clamp(min=1)
        return ((d_ok & vis).sum((1, 2, 3)) / n, (c_ok & vis).sum((1, 2, 3)) / n,
                (d_ok & c_ok & vis).sum((1, 2, 3)) / n)

    r = forward_warp(cache, targets)
    vis = r.mask > 0
    assert vis.float().mean() > 0.5 * (src.depth > 0).float().mean()
    assert torch.all(r.depth[~vis] == 0) and torch.all(r.index[~vis] == -1)
    near_surface = F.max_pool2d(gt.depth, 3, 1, 1) > 0
    assert torch.all(near_surface[vis]), "a cache point landed far from any surface of the exact render"
    d_ok, c_ok, both = agreement(r)
    assert torch.all(d_ok > min_ok), f"warped depth disagrees with the exact render: {d_ok.tolist()}"
    assert torch.all(c_ok > 0.75), f"warped colours disagree with the exact render: {c_ok.tolist()}"
    # the winning point's camera-space z is the warped depth (the depth buffer holds real points)
    p = cache.points[r.index[vis]]
    cam_i = torch.nonzero(vis)[:, 0]
    z = (targets.R[cam_i] @ p[:, :, None])[:, 2, 0] + targets.t[cam_i, 2]
    assert torch.allclose(z, r.depth[vis], rtol=1e-5)
    # the check is discriminative: a mirrored scene (a flipped x or y axis) fails it
    for flip in (torch.tensor([-1.0, 1.0, 1.0]), torch.tensor([1.0, -1.0, 1.0])):
        bad = agreement(forward_warp(PointCache(cache.points * flip, cache.colors, cache.pixels), targets))[2]
        assert bad.mean() < 0.9 and bad.mean() < both.mean() - 0.05


def test_bilinear_footprint_fills_more_and_stays_close() -> None:
    H, W = 40, 64
    K = default_intrinsics(H, W)
    anchor = Cameras(torch.eye(4), K, H, W)
    world = generate_world(0, "room")
    src = world.render(anchor)
    cache = lift_points(src.rgb[0], src.depth[0], anchor)
    targets = Cameras(translated(tz=1.5), K, H, W)  # 1.5 units forward in a ~6 unit room: magnified
    gt = world.render(targets)
    near = forward_warp(cache, targets)
    bil = forward_warp(cache, targets, footprint="bilinear")
    assert bil.mask.sum() > near.mask.sum()
    vis = bil.mask > 0
    rel = (bil.depth - gt.depth).abs() / gt.depth.clamp(min=1e-6)
    assert (rel[vis] < 0.05).float().mean() > 0.9


# ---------------------------------------------------------------------------------------------- inpainting
def test_inpaint_keeps_valid_pixels_and_fills_holes() -> None:
    H, W = 32, 48
    v, u = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    img = torch.stack([u, v, 0.5 * (u + v)])[None].repeat(2, 1, 1, 1)  # smooth ramps
    mask = torch.ones(2, 1, H, W)
    mask[0, :, 10:18, 20:30] = 0
    mask[1, :, :, 40:] = 0  # a border band
    mask[1, :, 5:7, 5:7] = 0
    holes = img * mask
    out = inpaint(holes, mask)
    assert out.shape == img.shape and out.dtype == img.dtype
    assert torch.equal(out[mask.expand_as(img) > 0], holes[mask.expand_as(img) > 0])
    inner = torch.zeros_like(img, dtype=torch.bool)
    inner[0, :, 10:18, 20:30] = True
    inner[1, :, 5:7, 5:7] = True
    err = (out - img).abs()
    assert err[inner].max() < 0.1 and err[inner].mean() < 0.04  # interpolation inside holes
    # extrapolation into the border band: within the colours of its valid neighbourhood, near its edge
    band, near = out[1, :, :, 40:], img[1, :, :, 24:40]
    assert torch.all(band >= near.amin((1, 2), keepdim=True)) and torch.all(band <= near.amax((1, 2), keepdim=True))
    assert (band - img[1, :, :, 39:40]).abs().mean() < 0.1
    smooth = inpaint(holes, mask, smooth_iters=20)
    assert torch.equal(smooth[mask.expand_as(img) > 0], holes[mask.expand_as(img) > 0])
    assert (smooth - img).abs()[inner].mean() < 0.04


def test_inpaint_uses_neighbour_colours() -> None:
    img = torch.zeros(3, 40, 40)
    img[0, :, :20] = 1.0  # red left half
    img[2, :, 20:] = 1.0  # blue right half
    mask = torch.ones(1, 40, 40)
    mask[:, 16:22, 4:10] = 0  # a hole inside the red half
    mask[:, 2:6, 30:36] = 0  # a hole inside the blue half
    out = inpaint(img * mask, mask)
    assert torch.allclose(out[:, 16:22, 4:10], torch.tensor([1.0, 0, 0])[:, None, None].expand(3, 6, 6), atol=0.02)
    assert torch.allclose(out[:, 2:6, 30:36], torch.tensor([0, 0, 1.0])[:, None, None].expand(3, 4, 6), atol=0.02)


def test_inpaint_edge_cases() -> None:
    img = torch.rand(2, 3, 7, 9)
    full = torch.ones(2, 1, 7, 9)
    assert torch.equal(inpaint(img, full), img)
    none = torch.zeros(2, 1, 7, 9)
    assert torch.all(inpaint(img, none, fill=0.25) == 0.25)
    one = torch.zeros(1, 7, 9)
    one[0, 3, 4] = 1
    out = inpaint(img[0], one)
    assert torch.allclose(out, img[0][:, 3:4, 4:5].expand(3, 7, 9))
    with pytest.raises(ValueError):
        inpaint(img, torch.ones(2, 1, 7, 8))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inpaint_numba_kernel_matches_torch(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(3)
    for shape in ((3, 3, 17, 23), (2, 1, 1, 1), (2, 2, 1, 9), (1, 4, 8, 1), (2, 3, 32, 48)):
        B, C, H, W = shape
        x = torch.rand(*shape, generator=g, dtype=torch.float64).to(dtype)
        valid = torch.rand(B, 1, H, W, generator=g) > 0.6
        valid[0] = False  # a frame without any valid pixel
        if B > 1:
            valid[1, :, : H // 2 + 1] = True  # and one with a large hole
        for iters in (0, 3):
            a = inpaint(x, valid.float(), smooth_iters=iters, fill=0.25)
            b = _inpaint_torch(x, valid, iters, 0.25)
            assert a.dtype == dtype and a.shape == x.shape
            keep = valid.expand_as(x)
            assert torch.equal(a[keep], x[keep])
            assert torch.allclose(a, b, rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-12)
    # leading batch dimensions
    x = torch.rand(2, 3, 3, 9, 10, generator=g, dtype=torch.float64).to(dtype)
    m = (torch.rand(2, 3, 1, 9, 10, generator=g) > 0.5).float()
    ref = _inpaint_torch(x.reshape(6, 3, 9, 10), m.reshape(6, 1, 9, 10) > 0.5, 2, 0.5).reshape(x.shape)
    assert torch.allclose(inpaint(x, m, smooth_iters=2), ref, rtol=0, atol=1e-6)


def test_warp_then_inpaint_world() -> None:
    H, W = 32, 48
    K = default_intrinsics(H, W)
    anchor = Cameras(torch.eye(4), K, H, W)
    world = generate_world(2, "room")
    src = world.render(anchor)
    tgt = Cameras(trajectory_w2c("right", 2, 0.8)[-1:], K, H, W)
    r = warp_image(src.rgb[0], src.depth[0], anchor, tgt)
    filled = inpaint(r.rgb, r.mask, smooth_iters=4)
    assert filled.min() >= 0 and filled.max() <= 1
    gt = world.render(tgt).rgb
    hole = r.mask.expand_as(filled) == 0
    assert hole.any()
    # filled holes are closer to the truth than a grey fill
    assert (filled - gt).abs()[hole].mean() < (0.5 - gt).abs()[hole].mean()


def _points_gaussians(points: torch.Tensor, color: float) -> Gaussians:
    n = points.shape[0]
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1
    return Gaussians(means=points, quats=quats, scales=torch.full((n, 3), 0.2), opacities=torch.full((n,), 0.9),
                     colors=torch.full((n, 3), color))


def test_explained_by_source_keeps_what_the_view_cannot_see() -> None:
    from lyra.cache3d import explained_by_source

    c = cam()  # 16 x 24, f 20, principal point at the centre, at the origin
    depth = torch.full((1, 16, 24), 2.0)
    depth[:, :, :4] = 0.0  # no depth in the four left columns (x < -0.8 z)
    pts = torch.tensor([
        [0.0, 0.0, 2.0],    # on the surface: explained
        [0.0, 0.0, 1.0],    # in front of it, where the view saw free space: explained
        [0.0, 0.0, 2.05],   # within the 5 % band: explained
        [0.0, 0.0, 3.0],    # behind it: a disocclusion a novel view may see
        [5.0, 0.0, 2.0],    # outside the frustum
        [0.0, 0.0, -1.0],   # behind the camera
        [-1.8, 0.0, 2.0],   # on a pixel without depth
    ])
    got = explained_by_source(pts, depth, c)
    assert got.tolist() == [True, True, True, False, False, False, False]
    assert explained_by_source(pts, depth, c, tolerance=0.6)[3]  # 3.0 <= 2 * 1.6
    with pytest.raises(ValueError, match="one camera"):
        explained_by_source(pts, depth, Cameras.cat([c, c]))
    with pytest.raises(ValueError, match="depth is"):
        explained_by_source(pts, depth[..., :8], c)


def test_anchoring_restores_the_source_view_and_keeps_the_fill() -> None:
    """A decoded scene that is wrong on the visible surface renders the source image exactly once anchored, and the
    decoded Gaussians behind the surface survive for the views that look behind it."""
    from lyra.cache3d import anchor_to_source
    from lyra.render import rasterize

    h, w = 16, 24
    c = cam(h, w)
    image = F.interpolate(random_rgb(4, 6, seed=3)[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    depth = torch.full((1, h, w), 2.0)
    surface = unproject_depth(depth, c).reshape(-1, 3)
    behind = surface[::7] * 1.5
    wrong = _points_gaussians(torch.cat([surface, behind]), 0.5)  # flat grey everywhere
    anchored, dropped = anchor_to_source(wrong, image, depth, c)
    assert dropped == h * w
    assert len(anchored) == h * w + len(behind)
    assert torch.allclose(anchored.means[h * w:], behind)
    bg = torch.ones(3)
    before = rasterize(wrong, c, bg, near=0.01).rgb[0]
    after = rasterize(anchored, c, bg, near=0.01).rgb[0]
    lifted = rasterize(depth_to_gaussians(image, depth, c), c, bg, near=0.01).rgb[0]
    assert (after - lifted).abs().max() < 0.01  # the fill behind the surface stays hidden from the source camera
    err_before, err_after = (before - image).abs().mean(), (after - image).abs().mean()
    assert err_after < 0.5 * err_before, (err_after, err_before)


def test_a_decoded_blob_over_a_visible_surface_counts_by_its_footprint() -> None:
    """A large Gaussian centred on a pixel without depth, clearly in front of the surface beside it, would smear over
    that surface: its footprint makes it explained (dropped), its centre alone does not; a small one stays, and so
    does a large one that continues the surface at its own depth."""
    from lyra.cache3d import explained_by_source

    c = cam()  # 16 x 24, f 20
    depth = torch.full((1, 16, 24), 2.0)
    depth[:, :, 12:] = 0.0  # the right half shows sky
    pts = torch.tensor([[0.2, 0.0, 1.5], [0.2, 0.0, 1.5], [0.9, 0.0, 1.5], [0.2, 0.0, 3.0], [0.2, 0.0, 1.9]])
    # pixel u of the points: 12 + 20 * x / z = 14.7, 14.7, 24 (outside), 13.3, 14.1; the first sky column is 12
    radius = torch.tensor([4.0, 0.5, 4.0, 4.0, 4.0]) * pts[:, 2] / 20  # scene units: 4 (or 0.5) pixels at depth z
    assert explained_by_source(pts, depth, c).tolist() == [False] * 5
    assert explained_by_source(pts, depth, c, radius=radius).tolist() == [True, False, False, False, False]
    assert explained_by_source(pts, depth, c, radius=radius, occlusion_margin=0.0)[4]  # 1.9 < 2.0
    # the border counts the same way: a blob just outside the image, clearly in front of the surface at the edge
    edge = torch.tensor([[-1.0, 0.0, 1.5]])  # u = -1.3
    full = torch.full((1, 16, 24), 2.0)
    assert not explained_by_source(edge, full, c)[0]
    assert explained_by_source(edge, full, c, radius=torch.tensor([0.3]))[0]  # 4 pixels at z = 1.5
    with pytest.raises(ValueError, match="occlusion_margin"):
        explained_by_source(edge, full, c, occlusion_margin=1.0)
