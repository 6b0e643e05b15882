"""lyra.render.rasterize: inputs, SH colours, backend selection and errors."""

from __future__ import annotations

import sys

import pytest
import torch

import lyra.render.api as api
from lyra.cameras.camera import Cameras, look_at
from lyra.gaussians.gaussians import SH_C0, Gaussians
from lyra.render import RenderError, RenderOptions, available_backends, eval_sh, rasterize, register_backend
from lyra.render.gsplat_backend import GsplatUnavailableError
from lyra.render.reference import rasterize_reference
from lyra.render.sh import SH_C1

H, W = 24, 32


def _gaussians(n: int = 60, seed: int = 0, sh_degree: int | None = None, dtype=torch.float32) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g, dtype=dtype) - 0.5) * 1.2
    kw = {}
    if sh_degree is None:
        kw["colors"] = torch.rand(n, 3, generator=g, dtype=dtype)
    else:
        kw["sh"] = torch.randn(n, (sh_degree + 1) ** 2, 3, generator=g, dtype=dtype) * 0.5
    return Gaussians(
        means=means,
        quats=torch.randn(n, 4, generator=g, dtype=dtype),
        scales=torch.rand(n, 3, generator=g, dtype=dtype) * 0.08 + 0.02,
        opacities=torch.rand(n, generator=g, dtype=dtype) * 0.8 + 0.1,
        **kw,
    )


def _cameras(C: int = 2, dtype=torch.float32) -> Cameras:
    eyes = torch.tensor([[0.0, 0.0, -2.5], [1.5, -0.3, -2.0], [-1.5, 0.2, -2.0]], dtype=dtype)[:C]
    return Cameras.from_fov(look_at(eyes, torch.zeros(3, dtype=dtype)), H, W, fov_x_deg=60.0, dtype=dtype)


def test_shapes_and_default_black_background():
    out = rasterize(_gaussians(), _cameras(2), backend="torch")
    assert out.rgb.shape == (2, 3, H, W) and out.depth.shape == (2, 1, H, W) and out.alpha.shape == (2, 1, H, W)
    assert out.alpha.max() > 0.5
    torch.testing.assert_close(out.rgb, out.rgb.clamp(max=1.0))
    empty = out.alpha[:, 0] == 0
    assert empty.any() and out.rgb.permute(0, 2, 3, 1)[empty].abs().max() == 0


def test_api_equals_reference_and_background_broadcast():
    gs, cams = _gaussians(seed=1), _cameras(2)
    bg = torch.tensor([[0.1, 0.2, 0.3], [1.0, 1.0, 1.0]])
    out = rasterize(gs, cams, bg, near=0.1, far=50.0, mode="eval3d", backend="torch")
    opts = RenderOptions(near=0.1, far=50.0, mode="eval3d")
    rgb, depth, alpha = rasterize_reference(gs.means, gs.quats, gs.scales, gs.opacities,
                                            gs.colors[None].expand(2, -1, 3), cams.w2c, cams.K, W, H, bg, opts)
    torch.testing.assert_close(out.rgb, rgb.permute(0, 3, 1, 2))
    torch.testing.assert_close(out.depth, depth.permute(0, 3, 1, 2))
    # [3], list and scalar backgrounds broadcast to every camera
    a = rasterize(gs, cams, torch.tensor([0.5, 0.5, 0.5]), backend="torch").rgb
    b = rasterize(gs, cams, [0.5, 0.5, 0.5], backend="torch").rgb
    c = rasterize(gs, cams, 0.5, backend="torch").rgb
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


def test_sh_degree0_equals_plain_colours():
    gs = _gaussians(seed=2)
    sh = ((gs.colors - 0.5) / SH_C0)[:, None, :]
    gs_sh = Gaussians(means=gs.means, quats=gs.quats, scales=gs.scales, opacities=gs.opacities, sh=sh)
    a = rasterize(gs, _cameras(2), backend="torch")
    b = rasterize(gs_sh, _cameras(2), backend="torch")
    torch.testing.assert_close(a.rgb, b.rgb, atol=1e-6, rtol=0)


def test_eval_sh_known_values_and_clamp():
    sh = torch.zeros(1, 4, 3)
    sh[0, 0] = 0.2
    sh[0, 2] = torch.tensor([1.0, -1.0, -5.0])  # the z-band-1 coefficient (basis +C1 z)
    out = eval_sh(sh, torch.tensor([[0.0, 0.0, 2.0]]))  # normalised to +z
    want = (0.5 + SH_C0 * 0.2 + SH_C1 * torch.tensor([1.0, -1.0, -5.0])).clamp(min=0)
    torch.testing.assert_close(out[0], want)
    assert out[0, 2] == 0  # clamped at 0 from below


def test_sh_degree3_is_view_dependent_and_differentiable():
    gs = _gaussians(seed=3, sh_degree=3)
    sh = gs.sh.clone().requires_grad_(True)
    means = gs.means.clone().requires_grad_(True)
    gs = Gaussians(means=means, quats=gs.quats, scales=gs.scales, opacities=gs.opacities, sh=sh)
    cams = _cameras(3)
    out = rasterize(gs, cams, backend="torch")
    # colour of the same Gaussian differs between views: compare against degree-0-only SH
    dc = Gaussians(means=gs.means, quats=gs.quats, scales=gs.scales, opacities=gs.opacities, sh=sh[:, :1])
    flat = rasterize(dc, cams, backend="torch")
    assert (out.rgb - flat.rgb).abs().max() > 0.05
    out.rgb.sum().backward()
    assert sh.grad[:, 9:].abs().sum() > 0 and means.grad.abs().sum() > 0


def test_input_errors():
    gs, cams = _gaussians(), _cameras(2)
    with pytest.raises(RenderError, match="background"):
        rasterize(gs, cams, torch.zeros(3, 3), backend="torch")
    with pytest.raises(RenderError, match="background"):
        rasterize(gs, cams, torch.zeros(3, device="meta"), backend="torch")
    with pytest.raises(RenderError, match="either options"):
        rasterize(gs, cams, near=0.5, options=RenderOptions(), backend="torch")
    with pytest.raises(RenderError, match="Gaussians"):
        rasterize(gs.means, cams)
    with pytest.raises(ValueError, match="mode"):
        rasterize(gs, cams, mode="splat", backend="torch")
    with pytest.raises(ValueError, match="backend"):
        rasterize(gs, cams, backend="vulkan")


def test_gsplat_on_cpu_is_a_clear_error():
    with pytest.raises(GsplatUnavailableError, match="CUDA|gsplat"):
        rasterize(_gaussians(), _cameras(1), backend="gsplat")


@pytest.fixture
def no_cpu_backend(monkeypatch):
    """Pretend lyra.render.cpu is not installed."""
    monkeypatch.setitem(sys.modules, "lyra.render.cpu", None)  # importing it raises ImportError
    monkeypatch.delitem(api._REGISTRY, "cpu", raising=False)
    monkeypatch.setattr(api, "_CPU_IMPORT_ERROR", [])


def test_missing_cpu_backend(no_cpu_backend):
    gs, cams = _gaussians(), _cameras(1)
    with pytest.raises(RenderError, match="backend 'cpu' is unavailable"):
        rasterize(gs, cams, backend="cpu")
    with pytest.warns(RuntimeWarning, match="torch reference"):
        out = rasterize(gs, cams)
    torch.testing.assert_close(out.rgb, rasterize(gs, cams, backend="torch").rgb)
    assert available_backends() == {"cpu": False, "torch": True, "gsplat": api.gsplat_available()}


def test_registered_backend_is_called_with_the_kernel_interface(monkeypatch):
    seen = {}

    def fake(means, quats, scales, opacities, colors, w2c, K, width, height, background, opts):
        seen.update(colors=colors.shape, w2c=w2c.shape, K=K.shape, bg=background.shape, size=(width, height), opts=opts)
        C = w2c.shape[0]
        return torch.zeros(C, height, width, 3), torch.zeros(C, height, width, 1), torch.zeros(C, height, width, 1)

    monkeypatch.setattr(api, "_REGISTRY", dict(api._REGISTRY))
    register_backend("cpu", fake, lambda: True)
    gs = _gaussians(n=7)
    out = rasterize(gs, _cameras(3), backend="cpu", mode="eval3d")
    assert seen["colors"] == (3, 7, 3) and seen["w2c"] == (3, 4, 4) and seen["bg"] == (3, 3)
    assert seen["size"] == (W, H) and seen["opts"].mode == "eval3d"
    assert out.rgb.shape == (3, 3, H, W)
    assert api.select_backend("auto", torch.device("cpu")) == "cpu"

    def broken(*args):
        return fake(*args)[0][:, :1], *fake(*args)[1:]

    register_backend("cpu", broken, lambda: True)
    with pytest.raises(RenderError, match="returned rgb"):
        rasterize(gs, _cameras(1), backend="cpu")
