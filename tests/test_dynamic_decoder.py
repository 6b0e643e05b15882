"""Time conditioning of the dynamic decoder (method §2.5): [t, cos t, sin t] maps encoded by the tokenizer, zero-init
input/target time embeddings, a static checkpoint extended to the dynamic model with identical Gaussians, and the
official ``lyra_dynamic.pt`` key layout loading strictly."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lyra.decoder import CheckpointError, DecoderConfig, DecoderInputError, LyraDecoder
from lyra.tokenizer import CausalVAEConfig, CausalVideoVAE, VideoTokenizer
from lyra.train.conditioning import ConditioningCache, encode_time, time_features


def tiny(**kw) -> DecoderConfig:
    base = dict(width=32, depth=2, block_pattern="1M1T", mamba_d_state=8, mamba_headdim=8, mamba_chunk_size=8,
                attn_heads=2)
    base.update(kw)
    return DecoderConfig(**base)


def _inputs(cfg: DecoderConfig, V: int = 2, T_l: int = 2, h: int = 4, w: int = 4, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    T = cfg.num_frames(T_l)
    return dict(
        latents=torch.randn(1, V * T_l, cfg.latent_channels, h, w, generator=g),
        plucker=torch.randn(1, V * T_l, cfg.plucker_channels, h, w, generator=g),
        rays_o=torch.randn(1, V * T, 3, h, w, generator=g),
        rays_d=F.normalize(torch.randn(1, V * T, 3, h, w, generator=g), dim=2),
        num_views=V,
    )


def _time(cfg: DecoderConfig, T_l: int = 2, h: int = 4, w: int = 4, seed: int = 1) -> torch.Tensor:
    return torch.randn(1, T_l + 1, cfg.time_channels, h, w, generator=torch.Generator().manual_seed(seed))


def _static_trained_like(cfg: DecoderConfig) -> LyraDecoder:
    """A static decoder after training: every trained weight moved off its init, time modules untouched (zero)."""
    torch.manual_seed(3)
    m = LyraDecoder(cfg).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "time" not in name:
                p.add_(torch.randn_like(p) * 0.05)
    return m


# ---------------------------------------------------------------------------------------------- static -> dynamic
def test_static_weights_give_the_same_gaussians_in_the_dynamic_model(tmp_path) -> None:
    cfg = tiny()
    static = _static_trained_like(cfg)
    x = _inputs(cfg)
    with torch.no_grad():
        want = static(**x).records
        dyn = static.with_time_conditioning()
        assert dyn.config.use_time and not static.config.use_time and dyn.config.replace(use_time=False) == cfg
        for seed in (1, 2):
            torch.testing.assert_close(dyn(**x, time=_time(cfg, seed=seed)).records, want, atol=0, rtol=0)
        # the static checkpoint (official DeepSpeed layout) loads strictly into the dynamic architecture, same output
        path = tmp_path / "lyra_static.pt"
        torch.save({"module": static.state_dict(), "ds_version": "0.17.5"}, path)
        loaded = LyraDecoder.from_official(path, config=cfg.replace(use_time=True)).eval()
        assert loaded.config.use_time
        torch.testing.assert_close(loaded(**x, time=_time(cfg)).records, want, atol=0, rtol=0)
        # the time branch is live: once trained (here: random weights) the target time changes the Gaussians
        for emb in (dyn.patch_time_embed, dyn.patch_time_embed_tgt):
            emb.proj.weight.normal_(0, 0.5)
        t = _time(cfg)
        t2 = t.clone()
        t2[:, -1] += 1.0  # another target time
        a, b = dyn(**x, time=t).records, dyn(**x, time=t2).records
        assert (a - want).abs().max() > 1e-3 and (a - b).abs().max() > 1e-3
        with pytest.raises(DecoderInputError, match="use_time"):
            dyn(**x)


def test_extension_resets_time_modules_of_any_static_checkpoint() -> None:
    cfg = tiny()
    static = _static_trained_like(cfg)
    with torch.no_grad():  # a checkpoint whose unused time modules hold values (e.g. written by another tool)
        for emb in (static.patch_time_embed, static.patch_time_embed_tgt):
            for p in emb.parameters():
                p.normal_()
        x = _inputs(cfg, V=3)
        want = static(**x).records  # static: time modules unused
        dyn = static.with_time_conditioning()
        torch.testing.assert_close(dyn(**x, time=_time(cfg)).records, want, atol=0, rtol=0)
    for emb in (dyn.patch_time_embed, dyn.patch_time_embed_tgt):
        assert not emb.proj.weight.any() and not emb.proj.bias.any() and not emb.norm.bias.any()
        assert torch.equal(emb.norm.weight, torch.ones_like(emb.norm.weight))
    assert dyn.training == static.training


def test_extension_keeps_dtype_and_training_mode() -> None:
    m = _static_trained_like(tiny()).to(torch.bfloat16).train()
    d = m.with_time_conditioning()
    assert d.dtype == torch.bfloat16 and d.training
    for k, v in m.state_dict().items():
        if "time" not in k:
            assert torch.equal(d.state_dict()[k], v), k


# ---------------------------------------------------------------------------------------------- official key layout
def official_keys(width: int, blocks: str, d_state: int, expand: int, headdim: int, ngroups: int, d_conv: int,
                  mlp_hidden: int, latent_c: int, deconv_t: int) -> dict[str, tuple[int, ...]]:
    """The state-dict keys and shapes of the released checkpoints (method §11), for any sizes."""
    d_inner = expand * width
    heads = d_inner // headdim
    conv_dim = d_inner + 2 * ngroups * d_state
    t: dict[str, tuple[int, ...]] = {}
    for i, kind in enumerate(blocks):
        p = f"enc_blocks.{i}."
        if kind == "M":
            t[p + "norm.weight"] = (width,)
            t[p + "mamba.in_proj.weight"] = (2 * d_inner + 2 * ngroups * d_state + heads, width)
            for s in (0, 1):
                q = f"{p}mamba.mamba_scans.{s}."
                t.update({q + "conv1d.weight": (conv_dim, 1, d_conv), q + "conv1d.bias": (conv_dim,),
                          q + "dt_bias": (heads,), q + "A_log": (heads,), q + "D": (heads,),
                          q + "norm.weight": (d_inner,)})
            t[p + "mamba.out_proj.weight"] = (width, d_inner)
        else:
            for n in ("norm1", "norm2"):
                t[f"{p}{n}.weight"] = t[f"{p}{n}.bias"] = (width,)
            t.update({p + "attn.qkv.weight": (3 * width, width), p + "attn.qkv.bias": (3 * width,),
                      p + "attn.proj.weight": (width, width), p + "attn.proj.bias": (width,),
                      p + "mlp.fc1.weight": (mlp_hidden, width), p + "mlp.fc1.bias": (mlp_hidden,),
                      p + "mlp.fc2.weight": (width, mlp_hidden), p + "mlp.fc2.bias": (width,)})
    t["enc_norm.weight"] = t["enc_norm.bias"] = (width,)
    for name, cin in (("patch_embed", latent_c), ("patch_plucker_embed", 2 * latent_c),
                      ("patch_time_embed", latent_c), ("patch_time_embed_tgt", latent_c)):
        t[f"{name}.proj.weight"] = (width, cin, 1, 2, 2)
        t[f"{name}.proj.bias"] = t[f"{name}.norm.weight"] = t[f"{name}.norm.bias"] = (width,)
    t["deconv.weight"] = (width, 12, deconv_t, 2, 2)
    t["deconv.bias"] = (12,)
    return t


def _keys_of(cfg: DecoderConfig) -> dict[str, tuple[int, ...]]:
    return official_keys(cfg.width, cfg.blocks, cfg.mamba_d_state, cfg.mamba_expand, cfg.mamba_headdim,
                         cfg.mamba_ngroups, cfg.mamba_d_conv, cfg.mlp_hidden, cfg.latent_channels,
                         cfg.deconv_kernel[0])


def _synthetic_checkpoint(keys: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """bf16 tensors for every key (positive where a log or a norm scale is expected), as DeepSpeed stores them."""
    g = torch.Generator().manual_seed(seed)
    return {k: (torch.randn(s, generator=g) * 0.05 + (1.0 if k.endswith(("A_log", "D")) else 0.0)).to(torch.bfloat16)
            for k, s in keys.items()}


def test_official_key_pattern_matches_section_11() -> None:
    keys = _keys_of(DecoderConfig.official(use_time=True))
    assert len(keys) == 14 * 15 + 2 * 12 + 2 + 4 * 4 + 2  # Mamba, transformer, enc_norm, embeddings, deconv
    assert keys["enc_blocks.0.mamba.in_proj.weight"] == (2576, 512)
    assert keys["enc_blocks.3.mamba.mamba_scans.1.conv1d.weight"] == (1536, 1, 4)
    assert keys["enc_blocks.15.mlp.fc1.weight"] == (2048, 512) and keys["deconv.weight"] == (512, 12, 9, 2, 2)
    assert keys["patch_time_embed_tgt.proj.weight"] == (512, 16, 1, 2, 2)
    assert sum(math.prod(s) for s in keys.values()) == 32_753_996
    with torch.device("meta"):
        model = LyraDecoder(DecoderConfig.official(use_time=True))
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == keys


def test_tiny_dynamic_checkpoint_loads_strictly(tmp_path) -> None:
    cfg = tiny(use_time=True)
    state = _synthetic_checkpoint(_keys_of(cfg))
    path = tmp_path / "lyra_dynamic.pt"
    torch.save({"module": state, "global_steps": 91000, "ds_version": "0.17.5"}, path)
    m = LyraDecoder.from_official(path, config=cfg).eval()
    for k, v in m.state_dict().items():
        assert torch.equal(v, state[k].float()), k
    x = _inputs(cfg)
    t = _time(cfg)
    t2 = t.clone()
    t2[:, -1] -= 1.0
    with torch.no_grad():
        a, b = m(**x, time=t).records, m(**x, time=t2).records
    assert torch.isfinite(a).all() and (a - b).abs().max() > 1e-4  # the loaded time embeddings act
    # strict: a dynamic checkpoint without the target-time embedding is refused, naming the keys
    broken = {k: v for k, v in state.items() if not k.startswith("patch_time_embed_tgt.")}
    torch.save({"module": broken}, tmp_path / "broken_lyra_dynamic.pt")
    with pytest.raises(CheckpointError, match="patch_time_embed_tgt.proj.weight"):
        LyraDecoder.from_official(tmp_path / "broken_lyra_dynamic.pt", config=cfg)


def test_official_size_dynamic_checkpoint_loads_strictly(tmp_path) -> None:
    """A file with the official key set and shapes (bf16, DeepSpeed dict) named lyra_dynamic.pt: the default config
    turns the time conditioning on and every tensor loads."""
    keys = _keys_of(DecoderConfig.official(use_time=True))
    state = _synthetic_checkpoint(keys, seed=1)
    path = tmp_path / "lyra_dynamic.pt"
    torch.save({"module": state}, path)
    del state
    m = LyraDecoder.from_official(path).eval()
    assert m.config.use_time and m.config == DecoderConfig.official(use_time=True)
    ref = _synthetic_checkpoint(keys, seed=1)
    for k in ("patch_time_embed.proj.weight", "patch_time_embed_tgt.norm.bias", "enc_blocks.15.mlp.fc2.weight"):
        assert torch.equal(m.state_dict()[k], ref[k].float()), k


# ---------------------------------------------------------------------------------------------- time maps
class _Recorder(VideoTokenizer):
    """A tokenizer that records its inputs; latent frame j is input frame 8j, 8x8 average-pooled, 3 channels + zeros."""

    latent_channels = 16

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def _encode(self, video: torch.Tensor) -> torch.Tensor:
        self.seen.append(video.clone())
        x = video[:, :, ::8]  # [B, 3, T_l, H, W]
        B, _, T_l, H, W = x.shape
        pooled = F.avg_pool2d(x.permute(0, 2, 1, 3, 4).reshape(B * T_l, 3, H, W), 8)
        pooled = pooled.reshape(B, T_l, 3, H // 8, W // 8).permute(0, 2, 1, 3, 4)
        return torch.cat([pooled, torch.zeros(B, 13, T_l, H // 8, W // 8)], 1)

    @property
    def latents_mean(self) -> torch.Tensor:
        return torch.zeros(16, 1)

    @property
    def latents_std(self) -> torch.Tensor:
        return torch.ones(16, 1)


def test_time_features_are_t_cos_sin() -> None:
    t = torch.tensor([0.0, 0.25, 1.0])
    f = time_features(t)
    want = torch.tensor([[0.0, 1.0, 0.0], [0.25, math.cos(0.25), math.sin(0.25)], [1.0, math.cos(1.0), math.sin(1.0)]])
    torch.testing.assert_close(f, want)


def test_time_maps_are_broadcast_mapped_and_encoded_like_videos() -> None:
    tok = _Recorder()
    T, H, W = 17, 16, 24
    times = torch.arange(T) / (T - 1)
    z = encode_time(tok, times, 0.75, H, W)
    assert z.shape == (3 + 1, 16, H // 8, W // 8)  # T_l = 3 input latent frames, then the target's
    v_in, v_tg = tok.seen
    assert v_in.shape == (1, 3, T, H, W) and v_tg.shape == (1, 3, 1, H, W)
    # constant images of 2·[t, cos t, sin t] - 1, one per frame, inside the tokenizer's [-1, 1]
    torch.testing.assert_close(v_in[0, :, :, 3, 5].T, time_features(times) * 2 - 1)
    assert torch.equal(v_in, v_in[..., :1, :1].expand_as(v_in)) and v_in.abs().max() <= 1
    torch.testing.assert_close(v_tg[0, :, 0, 0, 0], time_features(torch.tensor([0.75]))[0] * 2 - 1)
    torch.testing.assert_close(z[-1, :3, 0, 0], time_features(torch.tensor([0.75]))[0] * 2 - 1)
    torch.testing.assert_close(z[1, :3, 1, 2], time_features(times[8:9])[0] * 2 - 1)
    with pytest.raises(ValueError, match="one target time"):
        encode_time(tok, times, torch.tensor([0.1, 0.2]), H, W)


def test_conditioning_cache_time_and_the_dynamic_forward() -> None:
    torch.manual_seed(0)
    tok = CausalVideoVAE(CausalVAEConfig(channels=(8, 16), enc_blocks=(1, 1, 1), dec_blocks=(1, 1, 1),
                                         stats_frames=4)).eval()
    T, H, W = 9, 32, 48
    times = torch.arange(T) / (T - 1)
    cond = ConditioningCache(tok)
    a = cond.time(times, 0.5, H, W)
    assert a.shape == (1, 2 + 1, 16, H // 8, W // 8) and cond.misses == 2
    torch.testing.assert_close(a[0], encode_time(tok, times, 0.5, H, W), atol=0, rtol=0)
    b = cond.time(times, 1.0, H, W)  # the input part is reused, only the new target time is encoded
    assert cond.misses == 3 and cond.hits == 1
    torch.testing.assert_close(a[:, :2], b[:, :2], atol=0, rtol=0)
    assert (a[:, 2] - b[:, 2]).abs().max() > 0
    # a dynamic decoder takes it: [B, T_l + 1, C, h, w]
    cfg = tiny(use_time=True)
    m = LyraDecoder(cfg).eval()
    x = _inputs(cfg, V=1, h=H // 8, w=W // 8)
    with torch.no_grad():
        out = m(**x, time=a)
    assert out.records.shape == (1, T * (H // 8) * (W // 8), 14)
