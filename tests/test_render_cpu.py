"""The numba ``cpu`` rasterizer against the torch reference, a tiny spec-literal renderer and finite differences.

float64 runs must agree with the reference to ~1e-9 (both follow docs/rasterizer.md exactly); float32
runs are compared at the reference's own float32 rounding level (the cpu kernels compute in float64).
"""

from __future__ import annotations

import math

import numba
import pytest
import torch

from lyra.cameras.camera import look_at
from lyra.render.cpu import autograd as cpu_autograd
from lyra.render.cpu import rasterize_cpu
from lyra.render.options import RenderOptions

try:
    from lyra.render.reference import rasterize_reference
except ImportError:  # pragma: no cover - the reference lands separately
    rasterize_reference = None

needs_reference = pytest.mark.skipif(rasterize_reference is None, reason="lyra.render.reference not available")
MODES = ["classic", "eval3d"]


# ---------------------------------------------------------------------------------------------- scenes
def random_scene(n: int, seed: int, dtype: torch.dtype = torch.float64, n_cam: int = 1,
                 scale_range: tuple[float, float] = (0.01, 0.05)) -> dict:
    """The benchmark distribution: x, y ~ U(-1.2, 1.2), z ~ U(2, 5), log-uniform scales, o ~ U(.1, .9)."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = math.log(scale_range[0]), math.log(scale_range[1])
    means = torch.cat([torch.rand(n, 2, generator=g) * 2.4 - 1.2, torch.rand(n, 1, generator=g) * 3 + 2], 1)
    return dict(
        means=means.to(dtype),
        quats=torch.randn(n, 4, generator=g).to(dtype),
        scales=torch.exp(torch.rand(n, 3, generator=g) * (hi - lo) + lo).to(dtype),
        opacities=(torch.rand(n, generator=g) * 0.8 + 0.1).to(dtype),
        colors=torch.rand(n_cam, n, 3, generator=g).to(dtype),
    )


def cameras(n_cam: int, width: int, height: int, dtype: torch.dtype = torch.float64) -> tuple:
    """Camera 0 at the identity (fx = fy = W, centred); camera 1 off to the side looking at (0, 0, 3.5)."""
    w2c = [torch.eye(4, dtype=torch.float32)]
    if n_cam > 1:
        w2c.append(look_at(torch.tensor([1.0, -0.4, -0.5]), torch.tensor([0.0, 0.0, 3.5]))[0])
    w2c = torch.stack(w2c[:n_cam]).to(dtype)
    K = torch.tensor([[width, 0.0, width / 2], [0.0, width * 1.1, height / 2], [0.0, 0.0, 1.0]], dtype=dtype)
    K = K.expand(n_cam, 3, 3).clone()
    if n_cam > 1:
        K[1, 0, 2] += 3.3  # an off-centre principal point
    bg = torch.tensor([[0.1, 0.5, 0.9], [0.3, 0.2, 0.0]], dtype=dtype)[:n_cam]
    return w2c, K, bg


def stack_scene(dtype: torch.dtype = torch.float64) -> dict:
    """Nearly opaque Gaussians stacked along the view axis (the T <= 1e-4 cutoff), with a depth tie."""
    g = torch.Generator().manual_seed(7)
    n = 24
    z = torch.linspace(2.0, 4.0, n)
    z[5] = z[4]  # exact tie: the lower index comes first
    means = torch.stack([0.05 * torch.randn(n, generator=g), 0.05 * torch.randn(n, generator=g), z], 1)
    return dict(
        means=means.to(dtype), quats=torch.randn(n, 4, generator=g).to(dtype),
        scales=(0.15 + 0.1 * torch.rand(n, 3, generator=g)).to(dtype),
        opacities=torch.cat([torch.tensor([1.0, 0.9995]), 0.9 + 0.09 * torch.rand(n - 2, generator=g)]).to(dtype),
        colors=torch.rand(1, n, 3, generator=g).to(dtype),
    )


def edge_scene(dtype: torch.dtype = torch.float64) -> dict:
    """Gaussians partly off-screen, far outside, behind the camera and inside the near plane."""
    g = torch.Generator().manual_seed(3)
    pts = [[0.62, 0.0, 2.0], [-0.66, 0.3, 2.5], [0.1, 0.55, 2.2], [0.0, -0.6, 2.1], [3.0, 0.0, 2.0],
           [0.0, 0.0, -1.0], [0.1, 0.1, 0.005], [0.3, -0.2, 0.4], [-0.2, 0.1, 3.0], [0.0, 0.0, 1e11],
           [0.25, 0.1, 0.05]]  # last: its 3-sigma ellipsoid straddles the camera plane z = 0
    n = len(pts)
    return dict(
        means=torch.tensor(pts, dtype=dtype), quats=torch.randn(n, 4, generator=g).to(dtype),
        scales=torch.cat([0.05 + 0.2 * torch.rand(n - 1, 3, generator=g), torch.tensor([[0.3, 0.05, 0.1]])]).to(dtype),
        opacities=(0.3 + 0.6 * torch.rand(n, generator=g)).to(dtype),
        colors=torch.rand(1, n, 3, generator=g).to(dtype),
    )


def needle_scene(dtype: torch.dtype = torch.float64) -> dict:
    """Long thin Gaussians at random angles: exp(-sigma) spans hundreds of orders of magnitude across a
    tile, so the classic kernels leave the block recurrences for row intervals (forward.py)."""
    g = torch.Generator().manual_seed(4)
    n = 30
    means = torch.cat([torch.rand(n, 2, generator=g) * 1.2 - 0.6, torch.rand(n, 1, generator=g) + 2.5], 1)
    return dict(
        means=means.to(dtype), quats=torch.randn(n, 4, generator=g).to(dtype),
        scales=torch.tensor([0.4, 0.002, 0.003]).expand(n, 3).to(dtype) * (0.5 + torch.rand(n, 1, generator=g)),
        opacities=(0.3 + 0.6 * torch.rand(n, generator=g)).to(dtype),
        colors=torch.rand(1, n, 3, generator=g).to(dtype),
    )


def _args(scene: dict, n_cam: int, width: int, height: int) -> tuple:
    w2c, K, bg = cameras(n_cam, width, height, scene["means"].dtype)
    colors = scene["colors"].expand(n_cam, -1, -1).contiguous() if scene["colors"].shape[0] == 1 else scene["colors"]
    params = [scene[k].clone() for k in ("means", "quats", "scales", "opacities")] + [colors.clone()]
    return params, (w2c, K, width, height, bg)


def run(fn, params: list, cam: tuple, opts: RenderOptions, weights: list | None = None):
    """Outputs of fn and the gradients of sum(weights * outputs) w.r.t. the 5 parameters."""
    params = [p.clone().requires_grad_(True) for p in params]
    outs = fn(*params, *cam, opts)
    if weights is None:
        g = torch.Generator().manual_seed(11)
        weights = [torch.randn(o.shape, generator=g, dtype=o.dtype) for o in outs]
    loss = sum((o * w).sum() for o, w in zip(outs, weights, strict=True))
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    return [o.detach() for o in outs], grads, weights


def assert_close(a: torch.Tensor, b: torch.Tensor, rel: float, abs_: float, what: str) -> None:
    """max |a - b| <= rel * max|b| + abs_."""
    err = (a - b).abs().max().item() if a.numel() else 0.0
    tol = rel * (b.abs().max().item() if b.numel() else 0.0) + abs_
    assert err <= tol, f"{what}: max abs diff {err:.3e} > tol {tol:.3e}"


def compare(params: list, cam: tuple, opts: RenderOptions, img_tol: float, grad_rel: float, fn_b=None) -> None:
    """cpu vs reference (or fn_b): images within img_tol (depth relative), gradients within grad_rel."""
    fn_b = fn_b or rasterize_reference
    outs_a, grads_a, w = run(rasterize_cpu, params, cam, opts)
    outs_b, grads_b, _ = run(fn_b, params, cam, opts, w)
    for name, a, b in zip(("rgb", "depth", "alpha"), outs_a, outs_b, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype, name
        assert_close(a, b, img_tol if name == "depth" else 0.0, img_tol, name)
    for name, a, b in zip(("means", "quats", "scales", "opacities", "colors"), grads_a, grads_b, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype, name
        assert_close(a, b, grad_rel, grad_rel, f"d/d{name}")


# ---------------------------------------------------------------------------------------------- vs reference
@needs_reference
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed,n,width,height,n_cam", [(0, 300, 64, 48, 1), (1, 150, 50, 37, 2)])
def test_random_scene_matches_reference_float64(mode: str, seed: int, n: int, width: int, height: int,
                                                n_cam: int) -> None:
    params, cam = _args(random_scene(n, seed, n_cam=n_cam), n_cam, width, height)
    compare(params, cam, RenderOptions(mode=mode), img_tol=1e-9, grad_rel=1e-9)


@needs_reference
@pytest.mark.parametrize("mode", MODES)
def test_random_scene_matches_reference_float32(mode: str) -> None:
    # the reference's own float32 rounding (cumprod, matmuls; eval3d's cross products of ~100-unit
    # vectors) bounds the agreement: images ~1e-5, gradients ~1e-4 relative.
    params, cam = _args(random_scene(200, 5, torch.float32, scale_range=(0.02, 0.08)), 1, 48, 40)
    compare(params, cam, RenderOptions(mode=mode), img_tol=2e-5, grad_rel=2e-4)


@needs_reference
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("which", ["stack", "edge", "needle"])
def test_special_scenes_match_reference(mode: str, which: str) -> None:
    scene = {"stack": stack_scene, "edge": edge_scene, "needle": needle_scene}[which]()
    params, cam = _args(scene, 2, 40, 33)
    compare(params, cam, RenderOptions(mode=mode, eps2d=0.3 if which != "needle" else 0.02), img_tol=1e-9,
            grad_rel=1e-9)


@needs_reference
def test_options_tile_size_eps_near_far() -> None:
    params, cam = _args(random_scene(120, 9), 1, 45, 30)
    opts = RenderOptions(tile_size=8, eps2d=0.1, near=2.5, far=4.5)
    compare(params, cam, opts, img_tol=1e-9, grad_rel=1e-9)


# ---------------------------------------------------------------------------------------------- spec-literal
def _literal(means, quats, scales, opacities, colors, w2c, K, width, height, bg, opts):
    """docs/rasterizer.md written out for a handful of Gaussians: one Python loop over them per camera."""
    eps, T_ = opts.eps2d, opts.tile_size
    v, u = torch.meshgrid(torch.arange(height, dtype=means.dtype), torch.arange(width, dtype=means.dtype),
                          indexing="ij")
    px, py = u + 0.5, v + 0.5
    q = quats / quats.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    Rq = torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                      2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                      2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1).reshape(-1, 3, 3)
    Sigma = Rq @ torch.diag_embed(scales**2) @ Rq.transpose(1, 2)
    rgbs, depths, alphas = [], [], []
    for c in range(w2c.shape[0]):
        R, t = w2c[c, :3, :3], w2c[c, :3, 3]
        fx, fy, cx, cy = K[c, 0, 0], K[c, 1, 1], K[c, 0, 2], K[c, 1, 2]
        T = torch.ones(height, width, dtype=means.dtype)
        rgb = torch.zeros(height, width, 3, dtype=means.dtype)
        D = torch.zeros(height, width, dtype=means.dtype)
        done = torch.zeros(height, width, dtype=torch.bool)
        p = means @ R.T + t
        for n in sorted(range(means.shape[0]), key=lambda i: (p[i, 2].item(), i)):
            pz = p[n, 2]
            if not (opts.near < pz.item() < opts.far) or opacities[n].item() < 1 / 255:
                continue
            lx = ((width - cx) / fx + 0.3 * 0.5 * width / fx, cx / fx + 0.3 * 0.5 * width / fx)
            ly = ((height - cy) / fy + 0.3 * 0.5 * height / fy, cy / fy + 0.3 * 0.5 * height / fy)
            tx = pz * torch.clamp(p[n, 0] / pz, -lx[1], lx[0])
            ty = pz * torch.clamp(p[n, 1] / pz, -ly[1], ly[0])
            J = torch.stack([torch.stack([fx / pz, 0 * pz, -fx * tx / pz**2]),
                             torch.stack([0 * pz, fy / pz, -fy * ty / pz**2])])
            S2 = J @ R @ Sigma[n] @ R.T @ J.T + eps * torch.eye(2, dtype=means.dtype)
            det = S2[0, 0] * S2[1, 1] - S2[0, 1] ** 2
            if det.item() <= 0:
                continue
            a, b, cc = S2[1, 1] / det, -S2[0, 1] / det, S2[0, 0] / det
            mx, my = fx * p[n, 0] / pz + cx, fy * p[n, 1] / pz + cy
            ext = min(3.33, math.sqrt(2 * math.log(opacities[n].item() * 255)))
            rx, ry = math.ceil(ext * math.sqrt(S2[0, 0].item())), math.ceil(ext * math.sqrt(S2[1, 1].item()))
            mxv, myv = mx.item(), my.item()
            if (rx <= 0 and ry <= 0) or mxv + rx <= 0 or mxv - rx >= width or myv + ry <= 0 or myv - ry >= height:
                continue
            x0, x1 = math.floor((mxv - rx) / T_) * T_, math.ceil((mxv + rx) / T_) * T_
            y0, y1 = math.floor((myv - ry) / T_) * T_, math.ceil((myv + ry) / T_) * T_
            in_tiles = (u >= x0) & (u < x1) & (v >= y0) & (v < y1)
            if opts.mode == "classic":
                dx, dy = mx - px, my - py
                sig = 0.5 * (a * dx * dx + cc * dy * dy) + b * dx * dy
                ok = sig >= 0
            else:
                M = torch.diag(1 / scales[n]) @ Rq[n].T @ R
                go = -(M @ p[n])
                r = torch.stack([(px - cx) / fx, (py - cy) / fy, torch.ones_like(px)], -1)
                gd = r @ M.T
                gd = gd / gd.norm(dim=-1, keepdim=True)
                sig = 0.5 * (torch.linalg.cross(gd, go.expand_as(gd)) ** 2).sum(-1)
                ok = torch.ones_like(in_tiles)
            alpha = torch.clamp(opacities[n] * torch.exp(-sig), max=0.999)
            ok = ok & in_tiles & (alpha >= 1 / 255) & ~done
            T_next = T * (1 - alpha)
            finish = ok & (T_next <= 1e-4)
            done = done | finish
            ok = ok & ~finish
            wgt = torch.where(ok, alpha * T, torch.zeros_like(T))
            rgb = rgb + wgt[..., None] * colors[c, n]
            D = D + wgt * pz
            T = torch.where(ok, T_next, T)
        A = 1 - T
        rgbs.append(rgb + T[..., None] * bg[c])
        depths.append((D / A.clamp(min=1e-10))[..., None])
        alphas.append(A[..., None])
    return torch.stack(rgbs), torch.stack(depths), torch.stack(alphas)


@pytest.mark.parametrize("mode", MODES)
def test_tiny_scenes_match_spec_literal(mode: str) -> None:
    g = torch.Generator().manual_seed(2)
    scene = dict(
        means=torch.tensor([[0.05, -0.02, 2.0], [-0.1, 0.04, 2.4], [0.12, 0.1, 2.4]], dtype=torch.float64),
        quats=torch.randn(3, 4, generator=g, dtype=torch.float64),
        scales=torch.tensor([[0.08, 0.05, 0.03], [0.1, 0.12, 0.06], [0.05, 0.09, 0.07]], dtype=torch.float64),
        opacities=torch.tensor([0.7, 0.999, 0.5], dtype=torch.float64),
        colors=torch.rand(1, 3, 3, generator=g, dtype=torch.float64),
    )
    for n in (1, 3):
        sub = {k: (v[:, :n] if k == "colors" else v[:n]) for k, v in scene.items()}
        params, cam = _args(sub, 2, 36, 29)
        compare(params, cam, RenderOptions(mode=mode), img_tol=1e-10, grad_rel=1e-9, fn_b=_literal)


def test_opaque_stack_cutoff_spec_literal() -> None:
    params, cam = _args(stack_scene(), 1, 24, 20)
    compare(params, cam, RenderOptions(), img_tol=1e-10, grad_rel=1e-9, fn_b=_literal)


# ---------------------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("mode", MODES)
def test_gradients_match_finite_differences(mode: str) -> None:
    scene = random_scene(12, 4, scale_range=(0.08, 0.2))
    params, cam = _args(scene, 1, 24, 20)
    opts = RenderOptions(mode=mode)
    _, grads, weights = run(rasterize_cpu, params, cam, opts)

    def loss(ps: list) -> float:
        outs = rasterize_cpu(*ps, *cam, opts)
        return sum((o * w).sum() for o, w in zip(outs, weights, strict=True)).item()

    g = torch.Generator().manual_seed(0)
    h = 1e-6
    for i, (p, gp) in enumerate(zip(params, grads, strict=True)):
        for j in torch.randperm(p.numel(), generator=g)[:8].tolist():
            plus = [q.clone() for q in params]
            minus = [q.clone() for q in params]
            plus[i].view(-1)[j] += h
            minus[i].view(-1)[j] -= h
            fd = (loss(plus) - loss(minus)) / (2 * h)
            an = gp.reshape(-1)[j].item()
            assert abs(fd - an) <= 1e-5 * max(1.0, abs(an)), f"param {i} entry {j}: fd {fd} vs analytic {an}"


def test_partial_output_gradients_and_no_grad_inputs() -> None:
    params, cam = _args(random_scene(50, 8), 1, 32, 32)
    params = [p.requires_grad_(k in (0, 4)) for k, p in enumerate(params)]
    rgb, depth, alpha = rasterize_cpu(*params, *cam, RenderOptions())
    rgb.sum().backward()  # depth and alpha unused: their gradients arrive as None
    assert params[0].grad is not None and params[4].grad is not None
    assert params[1].grad is None and params[3].grad is None


# ---------------------------------------------------------------------------------------------- properties
def test_empty_and_fully_culled_scenes_give_background() -> None:
    w2c, K, bg = cameras(2, 20, 12)
    opts = RenderOptions()
    for means in (torch.zeros(0, 3, dtype=torch.float64), torch.tensor([[0.0, 0.0, -2.0]], dtype=torch.float64)):
        n = means.shape[0]
        rgb, depth, alpha = rasterize_cpu(means, torch.ones(n, 4, dtype=torch.float64),
                                          torch.full((n, 3), 0.1, dtype=torch.float64),
                                          torch.full((n,), 0.5, dtype=torch.float64),
                                          torch.rand(2, n, 3, dtype=torch.float64), w2c, K, 20, 12, bg, opts)
        assert rgb.shape == (2, 12, 20, 3) and depth.shape == alpha.shape == (2, 12, 20, 1)
        torch.testing.assert_close(rgb, bg[:, None, None, :].expand_as(rgb))
        assert depth.abs().max() == 0 and alpha.abs().max() == 0


@pytest.mark.parametrize("mode", MODES)
def test_result_does_not_depend_on_threads_or_serial_path(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    params, cam = _args(random_scene(400, 6, n_cam=2), 2, 40, 40)
    opts = RenderOptions(mode=mode)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        outs1, grads1, w = run(rasterize_cpu, params, cam, opts)  # small scene: serial per-Gaussian kernels
    finally:
        numba.set_num_threads(before)
    monkeypatch.setattr(cpu_autograd, "PARALLEL_MIN_PAIRS", 0)  # force the parallel kernels
    outs2, grads2, _ = run(rasterize_cpu, params, cam, opts, w)
    for a, b in zip(outs1, outs2, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(grads1, grads2, strict=True):
        assert_close(a, b, 1e-12, 1e-12, "grads")


def test_dtypes_and_background_broadcast() -> None:
    params, (w2c, K, W, H, bg) = _args(random_scene(30, 1, torch.float32), 1, 16, 16)
    rgb, depth, alpha = rasterize_cpu(*params, w2c, K, W, H, bg[0], RenderOptions())
    assert rgb.dtype == depth.dtype == alpha.dtype == torch.float32
    half = [p.to(torch.bfloat16).requires_grad_(True) for p in params]
    rgb16, _, _ = rasterize_cpu(*half, w2c, K, W, H, bg, RenderOptions())
    assert rgb16.dtype == torch.bfloat16
    rgb16.float().sum().backward()
    assert half[0].grad is not None and half[0].grad.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="colors"):
        rasterize_cpu(*params[:4], params[4][:, :5], w2c, K, W, H, bg, RenderOptions())


def test_registered_as_cpu_backend() -> None:
    api = pytest.importorskip("lyra.render.api")
    from lyra.cameras.camera import Cameras
    from lyra.gaussians.gaussians import Gaussians

    scene = random_scene(80, 12)
    w2c, K, bg = cameras(2, 30, 20)
    gs = Gaussians(scene["means"], scene["quats"], scene["scales"], scene["opacities"], colors=scene["colors"][0])
    cams = Cameras(w2c, K, 20, 30)
    assert api.available_backends()["cpu"]
    a = api.rasterize(gs, cams, background=bg, backend="cpu")
    b = api.rasterize(gs, cams, background=bg, backend="torch")
    for x, y in ((a.rgb, b.rgb), (a.depth, b.depth), (a.alpha, b.alpha)):
        assert x.shape == y.shape
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-9)
