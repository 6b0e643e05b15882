"""Bidirectional Mamba-2 mixer in pure PyTorch: chunked state-space-duality scan and its sequential reference.

The selective state-space recurrence, per head h (state S of shape [headdim, d_state]):

    S_t = exp(dt_t · A_h) · S_{t-1} + dt_t · x_t B_tᵀ,        y_t = S_t C_t + D_h · x_t

``ssd_sequential`` runs it token by token (the readable reference); ``ssd_chunked`` computes the same values
with matrix products inside chunks of Q tokens and a short recurrence over chunk states (fast on CPU/GPU).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def ssd_sequential(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor) -> Tensor:
    """Token-by-token reference of the scan (without the D skip).

    Args:
        x: [b, l, h, p] inputs per head.
        dt: [b, l, h] positive step sizes (after softplus).
        A: [h] negative decay rates.
        B, C: [b, l, g, n] input/output projections shared by the h/g heads of each group.

    Returns:
        y: [b, l, h, p].
    """
    b, l, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    r = h // g
    Bh = B.repeat_interleave(r, dim=2)  # [b, l, h, n]
    Ch = C.repeat_interleave(r, dim=2)
    S = x.new_zeros(b, h, p, n)
    ys = []
    for t in range(l):
        decay = torch.exp(dt[:, t] * A)  # [b, h]
        S = decay[..., None, None] * S + (dt[:, t, :, None, None] * x[:, t, :, :, None]) * Bh[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", S, Ch[:, t]))
    return torch.stack(ys, dim=1)


def ssd_chunked(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk_size: int = 256) -> Tensor:
    """The same scan as ``ssd_sequential`` computed chunk-wise (state-space duality).

    Within a chunk, y_i = Σ_{j≤i} (C_i·B_j) exp(Σ_{j<k≤i} dt_k A) dt_j x_j (a masked matrix product); the state at
    each chunk end is carried to the next chunk by a recurrence over chunks. Any length works (the tail chunk is
    zero-padded with dt = 0, which neither decays nor feeds the state). Shapes as in ``ssd_sequential``.
    """
    b, l, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    r = h // g
    Q = max(1, min(chunk_size, l))
    pad = (-l) % Q
    if pad:
        x, dt = F.pad(x, (0, 0, 0, 0, 0, pad)), F.pad(dt, (0, 0, 0, pad))
        B, C = F.pad(B, (0, 0, 0, 0, 0, pad)), F.pad(C, (0, 0, 0, 0, 0, pad))
    c = (l + pad) // Q
    xr = x.reshape(b, c, Q, g, r, p)
    Br = B.reshape(b, c, Q, g, n)
    Cr = C.reshape(b, c, Q, g, n)
    dtr = dt.reshape(b, c, Q, g, r).permute(0, 1, 3, 4, 2)  # [b, c, g, r, Q]
    a_cum = torch.cumsum(dtr * A.reshape(g, r)[:, :, None], dim=-1)  # [b, c, g, r, Q]

    # 1. within chunks: masked decay matrix L[i, j] = exp(a_cum[i] - a_cum[j]) for j <= i
    causal = torch.ones(Q, Q, dtype=torch.bool, device=x.device).tril()
    seg = (a_cum[..., :, None] - a_cum[..., None, :]).masked_fill(~causal, -math.inf)
    W = torch.exp(seg)  # [b, c, g, r, Q, Q]
    CB = torch.einsum("bcign,bcjgn->bcgij", Cr, Br)[:, :, :, None]
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, dt, A, B, C)):
        W = W * dtr[..., None, :] * CB
    else:  # in place: the [.., Q, Q] tensor dominates memory
        W.mul_(dtr[..., None, :]).mul_(CB)
    y = torch.einsum("bcgrij,bcjgrp->bcigrp", W, xr)
    del W, seg

    # 2. state contributed by each chunk, at its end: Σ_j exp(a_end - a_cum[j]) dt_j x_j B_jᵀ
    w_in = torch.exp(a_cum[..., -1:] - a_cum) * dtr  # [b, c, g, r, Q]
    states = torch.einsum("bcgrj,bcjgn,bcjgrp->bcgrpn", w_in, Br, xr)

    # 3. recurrence over chunks: state entering chunk k
    chunk_decay = torch.exp(a_cum[..., -1])  # [b, c, g, r]
    S = x.new_zeros(b, g, r, p, n)
    entering = []
    for k in range(c):
        entering.append(S)
        S = chunk_decay[:, k, :, :, None, None] * S + states[:, k]
    S_in = torch.stack(entering, dim=1)  # [b, c, g, r, p, n]

    # 4. output of the entering state: exp(a_cum[i]) C_i · S_in
    y_off = torch.einsum("bcign,bcgrpn->bcigrp", Cr, S_in) * torch.exp(a_cum).permute(0, 1, 4, 2, 3)[..., None]
    y = (y + y_off).reshape(b, c * Q, h, p)
    return y[:, :l]


def causal_depthwise_conv(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """Causal depthwise conv along the sequence: y_t = bias + Σ_k weight[:, 0, k] · x_{t-K+1+k} (zeros before t=0).

    x: [b, l, C] (channels last, no transposes); weight: [C, 1, K] (nn.Conv1d layout); returns [b, l, C].
    """
    K, l = weight.shape[-1], x.shape[1]
    xp = F.pad(x, (0, 0, K - 1, 0))
    w = weight[:, 0, :].to(x.dtype)  # [C, K]
    y = xp[:, K - 1:] * w[:, K - 1]
    for k in range(K - 1):
        y = y + xp[:, k:k + l] * w[:, k]
    return y if bias is None else y + bias.to(x.dtype)


def rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """RMSNorm over the last dim in float32, returned in x's dtype: x / sqrt(mean(x²) + eps) · weight."""
    xf = x.float()
    out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (out * weight.float()).to(x.dtype)


class RMSNorm(nn.Module):
    """RMSNorm with a weight and no bias (parameter ``weight`` [dim])."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.weight, self.eps)


class GatedRMSNorm(RMSNorm):
    """norm(y · silu(z)) · weight over the whole last dim (one group; gate applied before the norm)."""

    def forward(self, y: Tensor, z: Tensor) -> Tensor:  # type: ignore[override]
        return rms_norm(y * F.silu(z), self.weight, self.eps)


class Mamba2Scan(nn.Module):
    """One scan direction: causal depthwise conv over [x, B, C], SiLU, selective scan, D skip, gated RMSNorm.

    Parameters (official names): ``conv1d`` (depthwise, with bias), ``dt_bias``, ``A_log``, ``D`` [heads],
    ``norm.weight`` [d_inner].
    """

    def __init__(self, d_inner: int, d_state: int, ngroups: int, headdim: int, d_conv: int, chunk_size: int,
                 dt_min: float = 1e-3, dt_max: float = 0.1, dt_floor: float = 1e-4,
                 a_range: tuple[float, float] = (1.0, 16.0)) -> None:
        super().__init__()
        self.d_inner, self.d_state, self.ngroups, self.headdim = d_inner, d_state, ngroups, headdim
        self.nheads = d_inner // headdim
        self.chunk_size = chunk_size
        conv_dim = d_inner + 2 * ngroups * d_state
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, d_conv, groups=conv_dim, bias=True)
        self.dt_bias = nn.Parameter(torch.empty(self.nheads))
        self.A_log = nn.Parameter(torch.empty(self.nheads))
        self.D = nn.Parameter(torch.empty(self.nheads))
        self.norm = GatedRMSNorm(d_inner, eps=1e-5)
        self._init = (dt_min, dt_max, dt_floor, a_range)
        self.reset_ssm_parameters()

    @torch.no_grad()
    def reset_ssm_parameters(self) -> None:
        """Method §3.2: A ~ U(1, 16) stored as log; dt log-uniform in [dt_min, dt_max] floored, stored as
        inverse softplus in ``dt_bias``; D = 1."""
        if self.A_log.is_meta:
            return
        dt_min, dt_max, dt_floor, (a_lo, a_hi) = self._init
        dt = torch.exp(torch.rand(self.nheads) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_floor)
        self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(dt)
        self.A_log.copy_(torch.log(torch.empty(self.nheads).uniform_(a_lo, a_hi)))
        self.D.fill_(1.0)

    def forward(self, zxbcdt: Tensor, sequential: bool = False) -> Tensor:
        """[b, l, 2·d_inner + 2·g·n + heads] in_proj output -> [b, l, d_inner] gated, normalised scan output."""
        b, l, _ = zxbcdt.shape
        di, gn = self.d_inner, self.ngroups * self.d_state
        z, xbc, dt = torch.split(zxbcdt, [di, di + 2 * gn, self.nheads], dim=-1)
        xbc = F.silu(causal_depthwise_conv(xbc, self.conv1d.weight, self.conv1d.bias))
        x, Bm, Cm = torch.split(xbc, [di, gn, gn], dim=-1)
        compute = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        xh = x.reshape(b, l, self.nheads, self.headdim).to(compute)
        dt = F.softplus(dt.to(compute) + self.dt_bias.to(compute))
        A = -torch.exp(self.A_log.to(compute))
        Bm = Bm.reshape(b, l, self.ngroups, self.d_state).to(compute)
        Cm = Cm.reshape(b, l, self.ngroups, self.d_state).to(compute)
        if sequential:
            y = ssd_sequential(xh, dt, A, Bm, Cm)
        else:
            y = ssd_chunked(xh, dt, A, Bm, Cm, self.chunk_size)
        y = y + xh * self.D.to(compute)[:, None]
        return self.norm(y.reshape(b, l, di).to(z.dtype), z)


class BiMamba2(nn.Module):
    """Bidirectional Mamba-2 mixer: shared ``in_proj`` (no bias) -> forward scan + backward scan on the flipped
    sequence (``mamba_scans.0`` / ``.1``, independent parameters) -> sum -> ``out_proj`` (no bias)."""

    def __init__(self, d_model: int, d_state: int = 256, expand: int = 2, headdim: int = 64, ngroups: int = 1,
                 d_conv: int = 4, chunk_size: int = 256) -> None:
        super().__init__()
        d_inner = expand * d_model
        nheads = d_inner // headdim
        self.in_proj = nn.Linear(d_model, 2 * d_inner + 2 * ngroups * d_state + nheads, bias=False)
        self.mamba_scans = nn.ModuleList(
            Mamba2Scan(d_inner, d_state, ngroups, headdim, d_conv, chunk_size) for _ in range(2)
        )
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def forward(self, x: Tensor, sequential: bool = False) -> Tensor:
        """[b, l, d_model] -> [b, l, d_model]. ``sequential`` uses the token-by-token reference scan."""
        zxbcdt = self.in_proj(x)
        fwd = self.mamba_scans[0](zxbcdt, sequential)
        bwd = self.mamba_scans[1](zxbcdt.flip(1), sequential).flip(1)
        return self.out_proj(fwd + bwd)
