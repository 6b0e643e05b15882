"""Training losses against hand-computed values and scikit-image's SSIM."""

from __future__ import annotations

import math

import pytest
import torch

from lyra.train.losses import (
    LPIPSVGG,
    LossWeights,
    depth_loss,
    normalize_depth,
    opacity_loss,
    psnr,
    ssim,
    ssim_loss,
    total_loss,
)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_depth_normalisation_uses_valid_pixels_only() -> None:
    # valid values 1, 2, 3, 10 (+ two invalid zeros): median (lower) 2, MAD = (1 + 0 + 1 + 8) / 4 = 2.5
    d = torch.tensor([[[[1.0, 2.0, 3.0], [10.0, 0.0, 0.0]]]])
    valid = d > 0
    n = normalize_depth(d, valid)
    want = torch.tensor([[[[-0.4, 0.0, 0.4], [3.2, 0.0, 0.0]]]])
    torch.testing.assert_close(n, want)
    # the method's quirk (median over the zero-filled map) would give median 1.0 and other values
    assert n[0, 0, 0, 1] == 0.0


def test_depth_loss_is_scale_shift_invariant_and_hand_checked() -> None:
    t = torch.tensor([[[[1.0, 2.0, 3.0], [10.0, 0.0, 5.0]]]])
    t[0, 0, 1, 1] = float("nan")  # non-finite target = invalid
    pred = 3.0 * torch.nan_to_num(t) + 7.0
    assert depth_loss(pred, t).item() == pytest.approx(0.0, abs=1e-6)
    # hand computation: target valid {1, 2, 3, 10, 5}: median 3, MAD (2+1+0+7+2)/5 = 2.4
    # pred valid {0, 0, 0, 0, 1} (same mask): median 0, MAD 0.2 -> normalised (0, 0, 0, 0, 5)
    pred = torch.tensor([[[[0.0, 0.0, 0.0], [0.0, 9.0, 1.0]]]])
    tn = [(1 - 3) / 2.4, (2 - 3) / 2.4, 0.0, (10 - 3) / 2.4, (5 - 3) / 2.4]
    pn = [0.0, 0.0, 0.0, 0.0, 5.0]

    def sl1(x: float) -> float:
        return 0.5 * x * x if abs(x) < 1 else abs(x) - 0.5

    want = sum(sl1(a - b) for a, b in zip(pn, tn)) / 5
    assert depth_loss(pred, t).item() == pytest.approx(want, rel=1e-6)


def test_depth_loss_clamps_mad_and_handles_empty_masks() -> None:
    t = torch.full((1, 1, 2, 2), 4.0)
    pred = torch.tensor([[[[1.0, 1.0], [1.0, 1.0 + 1e-6]]]], requires_grad=True)
    # constant maps: MAD clamps to 1e-3, so the target normalises to zeros and the prediction to tiny values
    assert depth_loss(pred, t).item() < 1e-6
    empty = depth_loss(pred, torch.zeros_like(t))
    assert empty.item() == 0.0
    empty.backward()
    assert pred.grad is not None and pred.grad.abs().sum() == 0


def test_opacity_term_is_mean_activated_opacity() -> None:
    o = torch.tensor([0.1, 0.5, 0.9, 0.2])
    assert opacity_loss(o).item() == pytest.approx(0.425)  # the method's double sigmoid would give ~0.605


def test_ssim_matches_scikit_image() -> None:
    skm = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 24, 31, generator=g)
    y = (x + 0.15 * torch.randn(2, 3, 24, 31, generator=g)).clamp(0, 1)
    ours = ssim(x, y, reduction="none")
    for i in range(2):
        ref = skm.structural_similarity(x[i].double().numpy(), y[i].double().numpy(), win_size=11,
                                        gaussian_weights=True, sigma=1.5, channel_axis=0, data_range=1.0)
        assert ours[i].item() == pytest.approx(ref, abs=2e-5)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-5)
    assert ssim_loss(x, x).item() == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="window"):
        ssim(x[..., :8, :8], y[..., :8, :8])


def test_psnr_and_mse_hand_values() -> None:
    a = torch.zeros(1, 3, 4, 4)
    b = torch.full((1, 3, 4, 4), 0.1)
    assert psnr(a, b).item() == pytest.approx(20.0, abs=1e-4)
    w = LossWeights(mse=1.0, lpips=0.0, ssim=0.0, depth=0.0, opacity=0.0)
    loss, terms = total_loss(w, b, a)
    assert loss.item() == pytest.approx(0.01) and terms == pytest.approx({"mse": 0.01, "loss": 0.01})


def test_total_loss_weights_and_ssim_fallback() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 16, 16, generator=g, requires_grad=True)
    y = torch.rand(2, 3, 16, 16, generator=g)
    dp, dt = 1 + torch.rand(2, 1, 16, 16, generator=g), 1 + torch.rand(2, 1, 16, 16, generator=g)
    op = torch.tensor([0.2, 0.4])
    w = LossWeights(mse=1.0, lpips=0.5, ssim=0.0, depth=0.05, opacity=0.1)
    loss, terms = total_loss(w, x, y, dp, dt, op)  # no LPIPS weights: 0.5 moves to (1 - SSIM)/2
    want = terms["mse"] + 0.5 * terms["ssim"] + 0.05 * terms["depth"] + 0.1 * 0.3
    assert loss.item() == pytest.approx(want, rel=1e-6) and terms["opacity"] == pytest.approx(0.3)
    assert "lpips" not in terms
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    _, t2 = total_loss(LossWeights(ssim_fallback=False, depth=0.0), x, y)
    assert "ssim" not in t2
    with torch.autocast("cpu", dtype=torch.bfloat16):  # losses stay float32 under autocast
        l3, _ = total_loss(LossWeights(lpips=0.0, depth=0.0), x.bfloat16(), y)
    assert l3.dtype == torch.float32


def test_lpips_vgg_from_local_files(tmp_path) -> None:
    torch.manual_seed(0)
    m = LPIPSVGG()
    feats = {k: v for k, v in m.state_dict().items() if k.startswith("features.")}
    heads = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate((64, 128, 256, 512, 512))}
    torch.save(feats, tmp_path / "vgg16.pth")
    torch.save(heads, tmp_path / "vgg.pth")
    lp = LPIPSVGG.from_files(tmp_path)
    torch.testing.assert_close(lp.lins[4].weight, heads["lin4.model.1.weight"])
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    d = lp(x, y)
    assert d.shape == (2,) and (d > 0).all() and lp(x, x).abs().max() < 1e-6
    w = LossWeights(lpips=0.5, depth=0.0)
    loss, terms = total_loss(w, x, y, lpips=lp, lpips_chunk=1)
    assert "ssim" not in terms and loss.item() == pytest.approx(terms["mse"] + 0.5 * d.mean().item(), rel=1e-5)
    (tmp_path / "vgg.pth").unlink()
    with pytest.raises(ValueError, match="missing"):
        LPIPSVGG.from_files(tmp_path)
    assert not math.isnan(d.sum().item())
