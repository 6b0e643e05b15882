"""The torch reference rasterizer against docs/rasterizer.md: a spec-literal per-pixel loop,
hand-computed geometry, the compositing rules and float64 finite-difference gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lyra.render.options import RenderOptions
from lyra.render.projection import eval3d_frames, eval3d_pixel_boxes, world_to_camera
from lyra.render.reference import rasterize_reference

F64 = torch.float64


def _cams(C: int, H: int, W: int, dtype=F64, f: float = 40.0):
    w2c = torch.eye(4, dtype=dtype).repeat(C, 1, 1)
    for c in range(1, C):  # small sideways shifts and a slight yaw
        a = 0.1 * c
        w2c[c, :3, :3] = torch.tensor(
            [[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]], dtype=dtype
        )
        w2c[c, 0, 3] = 0.15 * c
    K = torch.tensor([[f, 0, W / 2 + 0.3], [0, f * 1.1, H / 2 - 0.2], [0, 0, 1]], dtype=dtype).repeat(C, 1, 1)
    return w2c, K


def _scene(N: int, C: int, seed: int = 0, dtype=F64, spread: float = 0.6, size: float = 0.08):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(N, 3, generator=g, dtype=dtype) - 0.5) * 2 * spread
    means[:, 2] += 2.5
    quats = torch.randn(N, 4, generator=g, dtype=dtype)
    scales = torch.rand(N, 3, generator=g, dtype=dtype) * size + 0.02
    opac = torch.rand(N, generator=g, dtype=dtype) * 0.85 + 0.1
    colors = torch.rand(C, N, 3, generator=g, dtype=dtype)
    return means, quats, scales, opac, colors


def _render(means, quats, scales, opac, colors, w2c, K, W, H, bg=None, **kw):
    C = w2c.shape[0]
    bg = torch.zeros(C, 3, dtype=means.dtype) if bg is None else bg
    opt_kw = {k: kw.pop(k) for k in list(kw) if k in ("mode", "near", "far", "eps2d") or k == "opt_tile"}
    if "opt_tile" in opt_kw:
        opt_kw["tile_size"] = opt_kw.pop("opt_tile")
    return rasterize_reference(means, quats, scales, opac, colors, w2c, K, W, H, bg, RenderOptions(**opt_kw), **kw)


# ---------------------------------------------------------------------------------------------
# spec-literal per-pixel loop (numpy float64), written independently of lyra.render.projection
def _rotmat(q):
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z],
    ])


def _naive(means, quats, scales, opac, colors, w2c, K, W, H, bg, opts: RenderOptions):
    means, quats, scales, opac, colors, w2c, K, bg = (
        x.detach().double().numpy() for x in (means, quats, scales, opac, colors, w2c, K, bg)
    )
    C, N = colors.shape[:2]
    T_ = opts.tile_size
    tw, th = math.ceil(W / T_), math.ceil(H / T_)
    rgb, depth, alpha = np.zeros((C, H, W, 3)), np.zeros((C, H, W, 1)), np.zeros((C, H, W, 1))
    for c in range(C):
        R, t = w2c[c, :3, :3], w2c[c, :3, 3]
        fx, fy, cx, cy = K[c, 0, 0], K[c, 1, 1], K[c, 0, 2], K[c, 1, 2]
        recs = []
        for n in range(N):
            Rq = _rotmat(quats[n])
            p = R @ means[n] + t
            z = p[2]
            if z <= opts.near or z >= opts.far:
                continue
            tfx, tfy = 0.5 * W / fx, 0.5 * H / fy
            tx = z * min((W - cx) / fx + 0.3 * tfx, max(-(cx / fx + 0.3 * tfx), p[0] / z))
            ty = z * min((H - cy) / fy + 0.3 * tfy, max(-(cy / fy + 0.3 * tfy), p[1] / z))
            J = np.array([[fx / z, 0, -fx * tx / z**2], [0, fy / z, -fy * ty / z**2]])
            S3 = Rq @ np.diag(scales[n] ** 2) @ Rq.T
            S2 = J @ R @ S3 @ R.T @ J.T + opts.eps2d * np.eye(2)
            if np.linalg.det(S2) <= 0 or opac[n] < 1 / 255:
                continue
            conic = np.linalg.inv(S2)
            mx, my = fx * p[0] / z + cx, fy * p[1] / z + cy
            ext = min(3.33, math.sqrt(2 * math.log(opac[n] * 255)))
            rx, ry = math.ceil(ext * math.sqrt(S2[0, 0])), math.ceil(ext * math.sqrt(S2[1, 1]))
            if (rx <= 0 and ry <= 0) or mx + rx <= 0 or mx - rx >= W or my + ry <= 0 or my - ry >= H:
                continue
            x0, x1 = min(max(math.floor((mx - rx) / T_), 0), tw), min(max(math.ceil((mx + rx) / T_), 0), tw)
            y0, y1 = min(max(math.floor((my - ry) / T_), 0), th), min(max(math.ceil((my + ry) / T_), 0), th)
            M = np.diag(1 / scales[n]) @ Rq.T @ R
            recs.append((z, n, mx, my, conic, (x0, x1, y0, y1), M, -M @ p))
        recs.sort(key=lambda r: (r[0], r[1]))
        for v in range(H):
            for u in range(W):
                Tr, acc, D = 1.0, np.zeros(3), 0.0
                for z, n, mx, my, conic, (x0, x1, y0, y1), M, go in recs:
                    if not (x0 <= u // T_ < x1 and y0 <= v // T_ < y1):
                        continue
                    if opts.mode == "classic":
                        dx, dy = mx - (u + 0.5), my - (v + 0.5)
                        sig = 0.5 * (conic[0, 0] * dx * dx + conic[1, 1] * dy * dy) + conic[0, 1] * dx * dy
                        if sig < 0:
                            continue
                    else:
                        r = np.array([(u + 0.5 - cx) / fx, (v + 0.5 - cy) / fy, 1.0])
                        gd = M @ r
                        gd /= np.linalg.norm(gd)
                        sig = 0.5 * float(np.sum(np.cross(gd, go) ** 2))
                    a = min(0.999, opac[n] * math.exp(-sig))
                    if a < 1 / 255:
                        continue
                    Tn = Tr * (1 - a)
                    if Tn <= 1e-4:
                        break
                    acc += colors[c, n] * a * Tr
                    D += z * a * Tr
                    Tr = Tn
                alpha[c, v, u, 0] = 1 - Tr
                rgb[c, v, u] = acc + Tr * bg[c]
                depth[c, v, u, 0] = D / max(1 - Tr, 1e-10)
    return rgb, depth, alpha


@pytest.mark.parametrize("mode", ["classic", "eval3d"])
def test_matches_spec_literal_loop(mode):
    H, W, C = 20, 28, 2
    scene = _scene(40, C, seed=1, size=0.12)
    w2c, K = _cams(C, H, W)
    bg = torch.tensor([[0.1, 0.2, 0.3], [0.9, 0.8, 0.7]], dtype=F64)
    opts = RenderOptions(mode=mode, tile_size=8)
    ours = rasterize_reference(*scene, w2c, K, W, H, bg, opts, chunk=8)
    want = _naive(*scene, w2c, K, W, H, bg, opts)
    assert ours[2].max() > 0.9  # the scene is not trivially empty
    for got, exp in zip(ours, want, strict=True):
        np.testing.assert_allclose(got.numpy(), exp, atol=1e-10)


@pytest.mark.parametrize("mode", ["classic", "eval3d"])
def test_compositing_tile_and_chunk_do_not_change_results(mode):
    H, W, C = 30, 44, 2
    far = _scene(120, C, seed=2)
    near = _scene(12, C, seed=7, spread=0.5, size=0.6)  # large, close, some around the camera
    near[0][:, 2] -= 2.4
    scene = [torch.cat([a, b], dim=-2 if a.ndim == 3 else 0) for a, b in zip(far, near, strict=True)]
    w2c, K = _cams(C, H, W)
    base = _render(*scene, w2c, K, W, H, mode=mode, tile_size=16, chunk=64)
    assert base[2].max() > 0.9
    for ts, ch in ((1, 7), (4, 3), (8, 200)):
        other = _render(*scene, w2c, K, W, H, mode=mode, tile_size=ts, chunk=ch)
        for a, b in zip(base, other, strict=True):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_eval3d_pixel_boxes_bound_the_support():
    """Every pixel whose eval3d alpha reaches 1/255 lies inside the Gaussian's pixel box."""
    H, W, C = 40, 56, 2
    means, quats, scales, opac, _ = _scene(60, C, seed=8, spread=0.8, size=0.4)
    means[:20, 2] -= 2.0  # some very close to (or around) the camera
    w2c, K = _cams(C, H, W)
    p_cam = world_to_camera(means, w2c)
    box, bounded = eval3d_pixel_boxes(quats, scales, opac, p_cam, w2c, K)
    assert bounded.float().mean() > 0.5 and (~bounded).any()
    M, go = eval3d_frames(quats, scales, p_cam, w2c)
    v, u = torch.meshgrid(torch.arange(H, dtype=F64) + 0.5, torch.arange(W, dtype=F64) + 0.5, indexing="ij")
    for c in range(C):
        r = torch.stack([(u - K[c, 0, 2]) / K[c, 0, 0], (v - K[c, 1, 2]) / K[c, 1, 1], torch.ones_like(u)], -1)
        gd = torch.nn.functional.normalize(torch.einsum("nij,hwj->nhwi", M[c], r), dim=-1)
        sigma = 0.5 * torch.linalg.cross(gd, go[c][:, None, None, :].expand_as(gd)).pow(2).sum(-1)
        hit = opac[:, None, None] * torch.exp(-sigma) >= 1 / 255  # [N, H, W]
        b = box[c]
        inside = ((u >= b[:, 0, None, None]) & (u <= b[:, 1, None, None])
                  & (v >= b[:, 2, None, None]) & (v <= b[:, 3, None, None]))
        assert not (hit & ~inside).any()
        assert hit.any()


# ---------------------------------------------------------------------------------------------
# hand-computed geometry
def _one(z=2.0, s=0.05, o=0.8, color=(1.0, 0.5, 0.25), xy=(0.0, 0.0), dtype=F64):
    means = torch.tensor([[xy[0], xy[1], z]], dtype=dtype)
    quats = torch.tensor([[1.0, 0, 0, 0]], dtype=dtype)
    scales = torch.full((1, 3), s, dtype=dtype)
    return means, quats, scales, torch.tensor([o], dtype=dtype), torch.tensor([[color]], dtype=dtype)


def _one_cam(H=24, W=32, f=50.0, dtype=F64):
    K = torch.tensor([[[f, 0, 16.5], [0, f, 12.5], [0, 0, 1]]], dtype=dtype)  # centre of pixel (16, 12)
    return torch.eye(4, dtype=dtype)[None], K, W, H


def test_single_isotropic_gaussian_geometry():
    z, s, o, f = 2.0, 0.05, 0.8, 50.0
    w2c, K, W, H = _one_cam(f=f)
    rgb, depth, alpha = _render(*_one(z, s, o), w2c, K, W, H)
    a = alpha[0, ..., 0]
    assert a.argmax().item() == 12 * W + 16
    assert a[12, 16].item() == pytest.approx(o, abs=1e-12)
    assert depth[0, 12, 16, 0].item() == pytest.approx(z, abs=1e-12)
    var = (f * s / z) ** 2 + 0.3  # projected variance (pixels^2) incl. eps2d
    for du in (1, 2, 3):
        assert a[12, 16 + du].item() == pytest.approx(o * math.exp(-0.5 * du * du / var), rel=1e-9)
        assert a[12 + du, 16].item() == pytest.approx(o * math.exp(-0.5 * du * du / var), rel=1e-9)
    torch.testing.assert_close(rgb[0, 12, 16], torch.tensor([1.0, 0.5, 0.25], dtype=F64) * o)
    assert (depth[0][alpha[0] > 0] - z).abs().max() < 1e-12  # a single Gaussian: expected depth is its z
    # far from the centre alpha falls below 1/255 and nothing is drawn
    assert a[0, 0].item() == 0 and depth[0, 0, 0, 0].item() == 0


def test_alpha_clamp_and_background():
    w2c, K, W, H = _one_cam()
    bg = torch.tensor([[0.2, 0.4, 0.6]], dtype=F64)
    rgb, _, alpha = _render(*_one(o=1.0, s=0.2), w2c, K, W, H, bg=bg)
    assert alpha.max().item() == pytest.approx(0.999, abs=1e-12)
    col = torch.tensor([1.0, 0.5, 0.25], dtype=F64)
    torch.testing.assert_close(rgb[0], alpha[0] * col + (1 - alpha[0]) * bg[0])
    # many opaque layers: accumulated alpha stays below 1 - 1e-4
    n = 12
    means = torch.tensor([[0.0, 0.0, 2.0 + 0.1 * i] for i in range(n)], dtype=F64)
    quats = torch.tensor([[1.0, 0, 0, 0]], dtype=F64).repeat(n, 1)
    scales = torch.full((n, 3), 0.2, dtype=F64)
    _, _, alpha = _render(means, quats, scales, torch.full((n,), 0.9, dtype=F64), torch.rand(1, n, 3, dtype=F64),
                          w2c, K, W, H)
    assert alpha.max().item() <= 1 - 1e-4


@pytest.mark.parametrize("z", [0.005, -1.0, 3.0])
def test_culling_near_far(z):
    w2c, K, W, H = _one_cam()
    _, depth, alpha = _render(*_one(z=z, s=0.001 if z < 1 else 0.05), w2c, K, W, H, near=0.01, far=2.5)
    assert alpha.abs().max().item() == 0 and depth.abs().max().item() == 0
    _, _, alpha = _render(*_one(z=2.0), w2c, K, W, H, near=0.01, far=2.5)
    assert alpha.max().item() > 0.5


@pytest.mark.parametrize("chunk", [1, 2, 64])
@pytest.mark.parametrize("mode", ["classic", "eval3d"])
def test_transmittance_cutoff(chunk, mode):
    """Two opaque layers then a faint one: the second reaches T <= 1e-4, so neither it nor the faint
    third Gaussian (which alone would keep T above 1e-4) is composited."""
    w2c, K, W, H = _one_cam()
    means = torch.tensor([[0.0, 0, 1.0], [0, 0, 1.5], [0, 0, 2.0]], dtype=F64)
    quats = torch.tensor([[1.0, 0, 0, 0]], dtype=F64).repeat(3, 1)
    scales = torch.tensor([[0.2] * 3, [0.3] * 3, [0.4] * 3], dtype=F64)
    opac = torch.tensor([1.0, 1.0, 0.05], dtype=F64)
    colors = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]], dtype=F64)
    bg = torch.tensor([[0.5, 0.5, 0.5]], dtype=F64)
    rgb, depth, alpha = _render(means, quats, scales, opac, colors, w2c, K, W, H, bg=bg, mode=mode, chunk=chunk)
    # centre pixel: first layer alpha 0.999 (clamped), T = 1e-3; the second would give 1e-6
    assert alpha[0, 12, 16, 0].item() == pytest.approx(0.999, abs=1e-9)
    torch.testing.assert_close(rgb[0, 12, 16], torch.tensor([0.999 + 5e-4, 5e-4, 5e-4], dtype=F64))
    assert depth[0, 12, 16, 0].item() == pytest.approx(1.0, abs=1e-9)


def test_eval3d_matches_classic_for_small_far_gaussians_and_not_for_large_ones():
    H, W, C = 32, 48, 1
    w2c, K = _cams(C, H, W, f=40.0)
    small = _scene(60, C, seed=3, spread=1.0, size=0.0)
    small[0][:, 2] += 20.0  # far away: tiny footprints, still several pixels wide
    small = (small[0], small[1], torch.full_like(small[2], 0.15), small[3], small[4])
    # eps2d = 0: the 2D blur has no 3D counterpart
    a = _render(*small, w2c, K, W, H, mode="classic", eps2d=0.0)
    b = _render(*small, w2c, K, W, H, mode="eval3d", eps2d=0.0)
    assert a[2].max() > 0.5
    assert (a[0] - b[0]).abs().max() < 0.02 and (a[2] - b[2]).abs().max() < 0.02
    big = _scene(30, C, seed=4, spread=1.2, size=0.0)
    big = (big[0], big[1], torch.rand(30, 3, generator=torch.Generator().manual_seed(5), dtype=F64) * 0.8 + 0.2,
           big[3], big[4])
    big[0][:, 2] -= 1.2  # close to the camera, large and partly off-axis
    a = _render(*big, w2c, K, W, H, mode="classic")
    b = _render(*big, w2c, K, W, H, mode="eval3d")
    assert (a[0] - b[0]).abs().max() > 0.1


def test_nothing_visible_gives_background():
    w2c, K, W, H = _one_cam()
    bg = torch.tensor([[0.3, 0.2, 0.1]], dtype=F64)
    empty = (torch.zeros(0, 3, dtype=F64), torch.zeros(0, 4, dtype=F64), torch.zeros(0, 3, dtype=F64),
             torch.zeros(0, dtype=F64), torch.zeros(1, 0, 3, dtype=F64))
    for scene in (empty, _one(z=-2.0)):
        rgb, depth, alpha = _render(*scene, w2c, K, W, H, bg=bg)
        torch.testing.assert_close(rgb[0], bg[0].expand(H, W, 3))
        assert depth.abs().max() == 0 and alpha.abs().max() == 0


def test_float32_runs_in_float32():
    H, W, C = 16, 24, 1
    scene = _scene(30, C, seed=6, dtype=torch.float32)
    w2c, K = _cams(C, H, W, dtype=torch.float32)
    out = _render(*scene, w2c, K, W, H)
    assert all(x.dtype == torch.float32 for x in out)
    ref = _render(*(x.double() for x in scene), w2c.double(), K.double(), W, H)
    for a, b in zip(out, ref, strict=True):
        torch.testing.assert_close(a.double(), b, atol=2e-4, rtol=0)


# ---------------------------------------------------------------------------------------------
# gradients
@pytest.mark.parametrize("mode", ["classic", "eval3d"])
def test_gradcheck_all_parameters(mode):
    H, W, C = 10, 14, 2
    means, quats, scales, opac, colors = _scene(5, C, seed=11, spread=0.35, size=0.15)
    w2c, K = _cams(C, H, W, f=14.0)
    bg = torch.tensor([[0.2, 0.3, 0.4], [0.6, 0.5, 0.4]], dtype=F64)
    opts = RenderOptions(mode=mode, tile_size=8)
    g = torch.Generator().manual_seed(0)
    weights = [torch.rand(C, H, W, k, generator=g, dtype=F64) for k in (3, 1, 1)]

    def f(means, quats, scales, opac, colors):
        out = rasterize_reference(means, quats, scales, opac, colors, w2c, K, W, H, bg, opts, chunk=3)
        return sum((o * w).sum() for o, w in zip(out, weights, strict=True))

    inputs = tuple(x.clone().requires_grad_(True) for x in (means, quats, scales, opac, colors))
    torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)
    grads = torch.autograd.grad(f(*inputs), inputs)
    assert all(gr.abs().sum() > 0 for gr in grads)  # every parameter gets gradient


def test_eval3d_projection_carries_no_gradient_but_depth_does():
    """In eval3d, alpha and rgb depend on the 3D evaluation only; means still get depth gradients."""
    w2c, K, W, H = _one_cam()
    means, quats, scales, opac, colors = (x.clone().requires_grad_(True) for x in _one(z=2.0, s=0.1))
    rgb, depth, alpha = _render(means, quats, scales, opac, colors, w2c, K, W, H, mode="eval3d")
    (gz,) = torch.autograd.grad(depth.sum(), means, retain_graph=True)
    assert gz[0, 2].abs() > 0
    (ga,) = torch.autograd.grad(alpha[0, 12, 16, 0], scales)  # ray through the centre: sigma = 0
    assert ga.abs().max() < 1e-12
