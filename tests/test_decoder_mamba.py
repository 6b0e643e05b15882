"""Mamba-2 in pure PyTorch: chunked SSD scan vs the token-by-token recurrence, conv, gating, inits, bidirectionality."""

import math

import pytest
import torch
import torch.nn.functional as F

from lyra.decoder.mamba2 import BiMamba2, Mamba2Scan, causal_depthwise_conv, rms_norm, ssd_chunked, ssd_sequential


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: one thread is faster, and steadier on a shared box."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _inputs(b, l, h, p, g, n, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.randn(*s, generator=gen, dtype=dtype)

    x = r(b, l, h, p)
    dt = F.softplus(r(b, l, h) - 1.0)
    A = -torch.empty(h, dtype=dtype).uniform_(1.0, 16.0, generator=gen)
    return x, dt, A, r(b, l, g, n), r(b, l, g, n)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("l,chunk", [(1, 4), (37, 8), (64, 16), (100, 32), (50, 256), (129, 64)])
def test_chunked_matches_sequential(dtype, l, chunk):
    x, dt, A, B, C = _inputs(2, l, 4, 8, 1, 16, dtype)
    ref = ssd_sequential(x, dt, A, B, C)
    out = ssd_chunked(x, dt, A, B, C, chunk)
    assert out.shape == ref.shape == (2, l, 4, 8)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(out, ref, atol=tol, rtol=tol)


def test_chunked_matches_sequential_groups_and_slow_decay():
    # two groups of two heads; tiny dt (slow decay) makes long-range state passing matter
    x, dt, A, B, C = _inputs(1, 75, 4, 3, 2, 5, torch.float64, seed=1)
    dt = dt * 1e-3
    torch.testing.assert_close(ssd_chunked(x, dt, A, B, C, 16), ssd_sequential(x, dt, A, B, C), atol=1e-10, rtol=1e-10)


def test_sequential_recurrence_by_hand():
    # one head, p = n = 1: S_t = exp(dt A) S_{t-1} + dt x B, y = S C
    x = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64).view(1, 3, 1, 1)
    dt = torch.tensor([0.5, 0.1, 0.2], dtype=torch.float64).view(1, 3, 1)
    A = torch.tensor([-2.0], dtype=torch.float64)
    B = torch.tensor([1.0, 3.0, 2.0], dtype=torch.float64).view(1, 3, 1, 1)
    C = torch.tensor([2.0, 1.0, -1.0], dtype=torch.float64).view(1, 3, 1, 1)
    S, ys = 0.0, []
    for t in range(3):
        S = math.exp(dt[0, t, 0] * A[0]) * S + dt[0, t, 0] * x[0, t, 0, 0] * B[0, t, 0, 0]
        ys.append(S * C[0, t, 0, 0])
    want = torch.tensor(ys, dtype=torch.float64)
    torch.testing.assert_close(ssd_sequential(x, dt, A, B, C).flatten(), want)
    torch.testing.assert_close(ssd_chunked(x, dt, A, B, C, 2).flatten(), want)


def test_causal_depthwise_conv_matches_conv1d_and_is_causal():
    x = torch.randn(2, 23, 6)
    conv = torch.nn.Conv1d(6, 6, 4, groups=6, padding=3)
    ref = conv(x.transpose(1, 2))[..., :23].transpose(1, 2)
    torch.testing.assert_close(causal_depthwise_conv(x, conv.weight, conv.bias), ref, atol=1e-6, rtol=1e-6)
    x2 = x.clone()
    x2[:, 10:] += 1.0
    y1, y2 = causal_depthwise_conv(x, conv.weight, None), causal_depthwise_conv(x2, conv.weight, None)
    assert torch.equal(y1[:, :10], y2[:, :10])


def test_gated_rmsnorm_definition():
    scan = Mamba2Scan(d_inner=8, d_state=4, ngroups=1, headdim=4, d_conv=4, chunk_size=8)
    y, z = torch.randn(3, 8), torch.randn(3, 8)
    g = y * F.silu(z)
    want = g / torch.sqrt(g.pow(2).mean(-1, keepdim=True) + 1e-5)
    torch.testing.assert_close(scan.norm(y, z), want)
    want2 = 2 * y / torch.sqrt(y.pow(2).mean(-1, True) + 1e-5)
    torch.testing.assert_close(rms_norm(y, torch.full((8,), 2.0), 1e-5), want2)


def test_scan_inits():
    torch.manual_seed(0)
    scan = Mamba2Scan(d_inner=4096, d_state=4, ngroups=1, headdim=1, d_conv=4, chunk_size=8)
    A = torch.exp(scan.A_log.detach())
    assert A.min() >= 1.0 and A.max() <= 16.0 and A.max() > 15.0 and A.min() < 1.1
    dt = F.softplus(scan.dt_bias.detach())
    assert dt.min() >= 1e-3 * (1 - 1e-4) and dt.max() <= 0.1 * (1 + 1e-4)
    # log-uniform: the median of log dt sits halfway between log 0.001 and log 0.1
    assert abs(dt.log().median().item() - 0.5 * (math.log(1e-3) + math.log(0.1))) < 0.2
    assert torch.equal(scan.D.detach(), torch.ones(4096))
    assert scan.conv1d.weight.shape == (4096 + 8, 1, 4) and scan.conv1d.bias is not None


def test_module_chunked_vs_sequential_and_backward_direction():
    torch.manual_seed(0)
    m = BiMamba2(d_model=16, d_state=8, expand=2, headdim=8, d_conv=4, chunk_size=8).double()
    x = torch.randn(2, 29, 16, dtype=torch.float64)
    torch.testing.assert_close(m(x), m(x, sequential=True), atol=1e-10, rtol=1e-10)
    # the backward scan is the forward scan of the flipped sequence: swapping the two scans' parameters and
    # flipping the input flips the output
    swapped = BiMamba2(d_model=16, d_state=8, expand=2, headdim=8, d_conv=4, chunk_size=8).double()
    sd = m.state_dict()
    sd_sw = {}
    for k, v in sd.items():
        k2 = k.replace("mamba_scans.0", "@").replace("mamba_scans.1", "mamba_scans.0").replace("@", "mamba_scans.1")
        sd_sw[k2] = v
    swapped.load_state_dict(sd_sw)
    torch.testing.assert_close(swapped(x.flip(1)).flip(1), m(x), atol=1e-10, rtol=1e-10)


def test_module_bf16_runs_scan_in_float32():
    torch.manual_seed(0)
    m = BiMamba2(d_model=16, d_state=8, expand=2, headdim=8, chunk_size=8)
    x = torch.randn(1, 20, 16)
    ref = m(x)
    out = m.to(torch.bfloat16)(x.bfloat16())
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().max() < 0.05 * ref.abs().max() + 0.05


def test_chunked_gradients_match_sequential():
    x, dt, A, B, C = _inputs(1, 21, 2, 3, 1, 4, torch.float64, seed=2)
    grads = []
    for fn in (ssd_sequential, lambda *a: ssd_chunked(*a, chunk_size=8)):
        leaves = [t.clone().requires_grad_(True) for t in (x, dt, A, B, C)]
        (fn(*leaves) * torch.linspace(-1, 1, 3, dtype=torch.float64)).sum().backward()
        grads.append([t.grad for t in leaves])
    for g1, g2 in zip(*grads):
        torch.testing.assert_close(g1, g2, atol=1e-10, rtol=1e-8)
