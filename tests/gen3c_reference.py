"""A plain-PyTorch reading of the official GEN3C network, for parity tests (no diffusers, no official code).

Written from the official module tree (nv-tlabs/GEN3C ``cosmos_predict1/diffusion``: ``GeneralDIT``,
``VideoExtendGeneralDIT``, ``module/blocks.py``, ``module/attention.py``, ``module/position_embedding.py``): the
official parameter names with their shapes (:func:`official_shapes`) and the forward pass computed from a state dict
under those names (:func:`reference_forward`). The tests check that :class:`lyra.generator.diffusion.Gen3CNet`
loaded from such a state dict computes the same function.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.generator.diffusion import Gen3CNetConfig


def official_shapes(cfg: Gen3CNetConfig, *, training_keys: bool = True) -> dict[str, tuple[int, ...]]:
    """Every key of the official checkpoint (``ModuleDict(net, conditioner, logvar)``) with its shape.

    ``training_keys`` adds what inference does not read: the RoPE ``seq`` buffer, the logvar head and Transformer
    Engine's attention extra state (shape () here: a placeholder for its value).
    """
    D, hd, L = cfg.num_heads * cfg.head_dim, cfg.head_dim, cfg.adaln_lora_dim
    C = cfg.latent_channels
    in_channels = C + 2 * cfg.cache_buffers * C + 1  # GEN3C: 16 + 16·4 + 1 = 81
    pt, ph, pw = cfg.patch_size
    t_max, h_max, w_max = cfg.max_latent_size  # max_frames, max_img_h, max_img_w of the official config
    s = {
        "net.x_embedder.proj.1.weight": (D, (in_channels + 1) * pt * ph * pw),  # + the padding-mask channel
        "net.extra_pos_embedder.pos_emb_h": (h_max // ph, D),
        "net.extra_pos_embedder.pos_emb_w": (w_max // pw, D),
        "net.extra_pos_embedder.pos_emb_t": (t_max // pt, D),
        "net.t_embedder.1.linear_1.weight": (D, D),
        "net.t_embedder.1.linear_2.weight": (3 * D, D),
        "net.affline_norm.weight": (D,),
        "net.final_layer.linear.weight": (ph * pw * pt * C, D),
        "net.final_layer.adaLN_modulation.1.weight": (L, D),
        "net.final_layer.adaLN_modulation.2.weight": (2 * D, L),
    }
    for i in range(cfg.num_layers):
        b = f"net.blocks.block{i}.blocks"
        for j in range(3):
            s[f"{b}.{j}.adaLN_modulation.1.weight"] = (L, D)
            s[f"{b}.{j}.adaLN_modulation.2.weight"] = (3 * D, L)
        for j, ctx in ((0, D), (1, cfg.text_dim)):
            a = f"{b}.{j}.block.attn"
            s.update({f"{a}.to_q.0.weight": (D, D), f"{a}.to_q.1.weight": (hd,), f"{a}.to_k.0.weight": (D, ctx),
                      f"{a}.to_k.1.weight": (hd,), f"{a}.to_v.0.weight": (D, ctx), f"{a}.to_out.0.weight": (D, D)})
            if training_keys:
                s[f"{a}.attn_op._extra_state"] = ()
        hidden = int(D * cfg.mlp_ratio)
        s[f"{b}.2.block.layer1.weight"] = (hidden, D)
        s[f"{b}.2.block.layer2.weight"] = (D, hidden)
    if training_keys:
        s["net.pos_embedder.seq"] = (max(h_max // ph, w_max // pw, t_max // pt),)
        s.update({"logvar.0.freqs": (128,), "logvar.0.phases": (128,), "logvar.1.weight": (1, 128)})
    return s


def random_official_state(cfg: Gen3CNetConfig, seed: int = 0) -> dict[str, Tensor]:
    """Random float32 weights under the official names (norm weights near 1), training keys included."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, Tensor] = {}
    for k, shape in official_shapes(cfg).items():
        if k.endswith("_extra_state"):
            continue
        v = torch.randn(shape, generator=g)
        out[k] = 1 + 0.1 * v if (k.endswith(".1.weight") and len(shape) == 1) or "affline" in k else 0.2 * v
    return out


def _rms(x: Tensor, w: Tensor, eps: float = 1e-6) -> Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def _rope_angles(cfg: Gen3CNetConfig, T: int, H: int, W: int, fps: float) -> Tensor:
    """[(T H W), head_dim] RoPE angles: (t, h, w) blocks, repeated twice (VideoRopePosition3DEmb)."""
    d = cfg.head_dim
    dh = d // 6 * 2
    dt = d - 2 * dh
    seq = torch.arange(max(cfg.max_latent_size), dtype=torch.float32)
    ntk = [r ** (n / (n - 2)) for r, n in zip(cfg.rope_scale, (dt, dh, dh))]
    freqs = [1.0 / (10000.0 * k) ** (torch.arange(0, n, 2)[: n // 2].float() / n) for k, n in zip(ntk, (dt, dh, dh))]
    et = torch.outer(seq[:T] / fps * 24, freqs[0])[:, None, None].expand(T, H, W, -1)
    eh = torch.outer(seq[:H], freqs[1])[None, :, None].expand(T, H, W, -1)
    ew = torch.outer(seq[:W], freqs[2])[None, None, :].expand(T, H, W, -1)
    return torch.cat([et, eh, ew] * 2, -1).reshape(T * H * W, d)


def _rotate(x: Tensor, ang: Tensor) -> Tensor:
    """Non-interleaved RoPE: x·cos + rotate_half(x)·sin, x [B, S, heads, d], ang [S, d]."""
    x1, x2 = x.chunk(2, -1)
    return x * ang.cos()[:, None] + torch.cat([-x2, x1], -1) * ang.sin()[:, None]


def _modulation(sd: dict[str, Tensor], prefix: str, emb: Tensor, lora: Tensor) -> list[Tensor]:
    h = F.linear(F.linear(F.silu(emb), sd[f"{prefix}.1.weight"]), sd[f"{prefix}.2.weight"])
    n = h.shape[-1] // emb.shape[-1]
    return list((h + lora[:, : h.shape[-1]]).chunk(n, -1))


def reference_forward(sd: dict[str, Tensor], cfg: Gen3CNetConfig, x: Tensor, timesteps: Tensor, text: Tensor,
                      input_mask: Tensor, pose: Tensor | None, fps: float = 24.0) -> Tensor:
    """The official network: x [B, C, T, H, W] (preconditioned), timesteps [B], text [B, L, Dt],
    input_mask [B, 1, T, H, W], pose (the cache) [B, 2·buffers·C, T, H, W] or None (zeros) -> [B, C, T, H, W]."""
    B, C, T, H, W = x.shape
    D, nh, hd = cfg.num_heads * cfg.head_dim, cfg.num_heads, cfg.head_dim
    pt, ph, pw = cfg.patch_size
    pose = x.new_zeros(B, 2 * cfg.cache_buffers * C, T, H, W) if pose is None else pose
    inp = torch.cat([x, input_mask, pose, x.new_zeros(B, 1, T, H, W)], 1)  # padding mask last
    Tp, Hp, Wp = T // pt, H // ph, W // pw
    # PatchEmbed: "b c (t r) (h m) (w n) -> b t h w (c r m n)", then a bias-free linear
    p = inp.reshape(B, -1, Tp, pt, Hp, ph, Wp, pw).permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(B, Tp, Hp, Wp, -1)
    h = F.linear(p, sd["net.x_embedder.proj.1.weight"])
    # LearnablePosEmbAxis ("crop"), normalised over D
    pos = "net.extra_pos_embedder.pos_emb_"
    pe = sd[pos + "t"][:Tp, None, None] + sd[pos + "h"][None, :Hp, None] + sd[pos + "w"][None, None, :Wp]
    pe = pe / (1e-6 + pe.norm(dim=-1, keepdim=True) * math.sqrt(1 / D))
    # Timesteps: cos ‖ sin, exponent −ln(10000)·i/half; TimestepEmbedding with AdaLN-LoRA; RMSNorm of the sinusoid
    half = D // 2
    ang = timesteps.float()[:, None] * torch.exp(-math.log(10000) * torch.arange(half) / half)[None]
    sinus = torch.cat([ang.cos(), ang.sin()], -1)
    lora = F.linear(F.silu(F.linear(sinus, sd["net.t_embedder.1.linear_1.weight"])),
                    sd["net.t_embedder.1.linear_2.weight"])
    emb = _rms(sinus, sd["net.affline_norm.weight"])
    rope = _rope_angles(cfg, Tp, Hp, Wp, fps)
    h = h.reshape(B, Tp * Hp * Wp, D)
    pe = pe.reshape(1, Tp * Hp * Wp, D)

    def attention(prefix: str, q_in: Tensor, kv_in: Tensor, use_rope: bool) -> Tensor:
        def heads(t: Tensor) -> Tensor:
            return t.reshape(B, t.shape[1], nh, hd)

        q = _rms(heads(F.linear(q_in, sd[f"{prefix}.to_q.0.weight"])), sd[f"{prefix}.to_q.1.weight"])
        k = _rms(heads(F.linear(kv_in, sd[f"{prefix}.to_k.0.weight"])), sd[f"{prefix}.to_k.1.weight"])
        v = heads(F.linear(kv_in, sd[f"{prefix}.to_v.0.weight"]))
        if use_rope:
            q, k = _rotate(q, rope), _rotate(k, rope)
        a = torch.softmax(torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd), -1)
        o = torch.einsum("bhqk,bkhd->bqhd", a, v).reshape(B, -1, D)
        return F.linear(o, sd[f"{prefix}.to_out.0.weight"])

    for i in range(cfg.num_layers):
        b = f"net.blocks.block{i}.blocks"
        h = h + pe
        for j in range(3):
            shift, scale, gate = (m[:, None] for m in _modulation(sd, f"{b}.{j}.adaLN_modulation", emb, lora))
            n = F.layer_norm(h, (D,), eps=1e-6) * (1 + scale) + shift
            if j == 0:
                out = attention(f"{b}.0.block.attn", n, n, True)
            elif j == 1:
                out = attention(f"{b}.1.block.attn", n, text, False)
            else:
                out = F.linear(F.gelu(F.linear(n, sd[f"{b}.2.block.layer1.weight"])), sd[f"{b}.2.block.layer2.weight"])
            h = h + gate * out
    shift, scale = (m[:, None] for m in _modulation(sd, "net.final_layer.adaLN_modulation", emb, lora))
    h = F.linear(F.layer_norm(h, (D,), eps=1e-6) * (1 + scale) + shift, sd["net.final_layer.linear.weight"])
    # "(B T) (H W) (p1 p2 t C) -> B C (T t) (H p1) (W p2)"
    h = h.reshape(B, Tp, Hp, Wp, ph, pw, pt, C).permute(0, 7, 1, 6, 2, 4, 3, 5)
    return h.reshape(B, C, T, H, W)
