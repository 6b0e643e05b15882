"""LyraDecoder forward on tiny configs: shapes, ray placement and ordering, conditioning, fusion, pruning, config."""

import math

import pytest
import torch

from lyra.cameras import Cameras, camera_rays, intrinsics_matrix
from lyra.decoder import (
    DecoderConfig,
    DecoderConfigError,
    DecoderInputError,
    LyraDecoder,
    activate,
    expand_pattern,
    latent_rays,
)
from lyra.gaussians import prune_by_opacity_ratio


def tiny(**kw) -> DecoderConfig:
    base = dict(width=32, depth=2, block_pattern="1M1T", mamba_d_state=8, mamba_headdim=8, mamba_chunk_size=8,
                attn_heads=2)
    base.update(kw)
    return DecoderConfig(**base)


def inputs(cfg, B=1, V=2, T_l=2, h=4, w=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    T = cfg.num_frames(T_l)
    lat = torch.randn(B, V * T_l, cfg.latent_channels, h, w, generator=g)
    pl = torch.randn(B, V * T_l, cfg.plucker_channels, h, w, generator=g)
    ro = torch.randn(B, V * T, 3, h, w, generator=g)
    rd = torch.nn.functional.normalize(torch.randn(B, V * T, 3, h, w, generator=g), dim=2)
    tm = torch.randn(B, T_l + 1, cfg.time_channels, h, w, generator=g)
    return dict(latents=lat, plucker=pl, rays_o=ro, rays_d=rd, num_views=V, time=tm)


def model(cfg, seed=0) -> LyraDecoder:
    torch.manual_seed(seed)
    return LyraDecoder(cfg).eval()


def test_forward_shapes_and_valid_gaussians():
    cfg = tiny()
    m = model(cfg)
    x = inputs(cfg, B=2, V=2, T_l=2)
    with torch.no_grad():
        out = m(**x)
    T = cfg.num_frames(2)
    assert T == 9
    n = 2 * T * 4 * 6
    assert out.records.shape == (2, n, 14) and out.records.dtype == torch.float32
    assert len(out.gaussians) == 2 and all(len(g) == n for g in out.gaussians)
    for g in out.gaussians:
        g.validate(check_values=True)
        assert g.colors is not None and g.sh is None and g.times is None
        torch.testing.assert_close(g.quats.norm(dim=-1), torch.ones(n))
        assert (g.scales <= 0.3 + 1e-7).all()


def test_ray_placement_and_trajectory_major_order():
    cfg = tiny()
    m = model(cfg)
    x = inputs(cfg, B=1, V=2, T_l=2)
    captured = {}
    m.deconv.register_forward_hook(lambda mod, i, o: captured.setdefault("raw", o))
    with torch.no_grad():
        out = m(**x)
    raw = captured["raw"]  # [B·V, 12, T, h, w]
    T, h, w = raw.shape[2:]
    rec = out.records[0].reshape(2, T, h, w, 14)
    for v, t, i, j in [(0, 0, 0, 0), (1, 8, 3, 5), (1, 3, 2, 1), (0, 5, 1, 4)]:
        o = x["rays_o"][0, v * T + t, :, i, j]
        d = x["rays_d"][0, v * T + t, :, i, j]
        want = activate(raw[v, :, t, i, j][None], o[None], d[None], cfg)[0]
        torch.testing.assert_close(rec[v, t, i, j], want)
        # the centre lies on the ray at the predicted (Euclidean) distance
        dist = (rec[v, t, i, j, :3] - o).norm()
        assert 0.1 <= dist <= 500


def test_rays_from_cameras_at_latent_resolution():
    cfg = tiny()
    m = model(cfg)
    H, W, T_l = 32, 48, 2
    T = cfg.num_frames(T_l)
    w2c = torch.eye(4).repeat(T, 1, 1)
    w2c[:, 0, 3] = -torch.arange(T, dtype=torch.float32)  # camera centre x = t
    cams = Cameras(w2c, intrinsics_matrix(40.0, 40.0, W / 2, H / 2), H, W)
    ro, rd = camera_rays(cams, H // 8, W // 8)  # [T, 3, 4, 6]
    lo, ld = latent_rays(cams)
    assert torch.equal(lo[0], ro) and torch.equal(ld[0], rd)
    x = inputs(cfg, V=1, T_l=T_l, h=H // 8, w=W // 8)
    x.update(rays_o=lo, rays_d=torch.zeros_like(ld))  # zero directions: centres are the origins
    with torch.no_grad():
        out = m(**x)
    means = out.records[0, :, :3].reshape(T, H // 8, W // 8, 3)
    torch.testing.assert_close(means[:, 0, 0, 0], torch.arange(T, dtype=torch.float32))
    torch.testing.assert_close(means.permute(0, 3, 1, 2), ro)


def test_zero_init_conditioning_and_time():
    cfg = tiny(use_time=True)
    m = model(cfg)
    x = inputs(cfg)
    with torch.no_grad():
        ref = m(**x).records
        x2 = dict(x, plucker=torch.randn_like(x["plucker"]), time=torch.randn_like(x["time"]))
        torch.testing.assert_close(m(**x2).records, ref)  # conditioning branches are exactly zero at init
        for emb in (m.patch_plucker_embed, m.patch_time_embed, m.patch_time_embed_tgt):
            assert not emb.proj.weight.any() and not emb.proj.bias.any()
        torch.nn.init.normal_(m.patch_time_embed_tgt.proj.weight)
        x3 = dict(x)
        x3["time"] = x["time"].clone()
        x3["time"][:, -1] += 1.0  # only the target frame changes
        assert not torch.allclose(m(**x3).records, m(**x).records)
        # time tokens are the same for every trajectory
        torch.nn.init.normal_(m.patch_time_embed.proj.weight)
        lat = x["latents"][:, :2].repeat(1, 2, 1, 1, 1)
        pl = x["plucker"][:, :2].repeat(1, 2, 1, 1, 1)
        tok = m._embed(lat, pl, x["time"], 2)
        torch.testing.assert_close(tok[0], tok[1])


def test_static_config_ignores_time():
    cfg = tiny()
    m = model(cfg)
    x = inputs(cfg)
    with torch.no_grad():
        torch.nn.init.normal_(m.patch_time_embed.proj.weight)
        a = m(**x).records
        b = m(**dict(x, time=None)).records
    torch.testing.assert_close(a, b)


def test_trajectories_share_one_sequence():
    cfg = tiny()
    m = model(cfg)
    x = inputs(cfg, V=2, T_l=2)
    with torch.no_grad():
        a = m(**x).records
        x2 = dict(x, latents=x["latents"].clone())
        x2["latents"][:, 2:] += 1.0  # change trajectory 1 only
        b = m(**x2).records
    n = a.shape[1] // 2
    assert not torch.allclose(a[:, :n], b[:, :n])  # trajectory 0's Gaussians see trajectory 1


def test_pruning_matches_gaussians_ops():
    cfg = tiny()
    m = model(cfg)
    x = inputs(cfg, B=2)
    with torch.no_grad():
        full = m(**x)
        pruned = m(**x, prune_ratio=0.8)
    for g_full, g_p in zip(full.gaussians, pruned.gaussians):
        want = prune_by_opacity_ratio(g_full, 0.8)
        assert len(g_p) == math.floor(len(g_full) * 0.2) == len(want)
        torch.testing.assert_close(g_p.means, want.means)
        torch.testing.assert_close(g_p.opacities, want.opacities)
    m.config.prune_ratio = 0.5
    with torch.no_grad():
        assert m(**x).records.shape[1] == full.records.shape[1] // 2


def test_gradient_checkpointing_same_gradients():
    cfg = tiny()
    x = inputs(cfg)
    grads = []
    for ckpt in (False, True):
        m = model(cfg.replace(gradient_checkpointing=ckpt)).train()
        torch.nn.init.normal_(m.patch_plucker_embed.proj.weight, std=0.02)
        out = m(**x, prune_ratio=0.5)
        (out.records[..., :3].mean() + out.gaussians[0].colors.mean()).backward()
        grads.append({k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and "patch_plucker_embed.proj.weight" in grads[0]
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], atol=1e-6, rtol=1e-5)


def test_bf16_model_gives_float32_records():
    cfg = tiny()
    m = model(cfg)
    x = inputs(cfg)
    with torch.no_grad():
        ref = m(**x).records
        out = m.to(torch.bfloat16)(**x).records
    assert out.dtype == torch.float32
    assert (out[..., 3] - ref[..., 3]).abs().max() < 0.05  # opacities


def test_input_errors():
    cfg = tiny(use_time=True)
    m = model(cfg)
    x = inputs(cfg, V=2, T_l=2)
    with pytest.raises(DecoderInputError, match="num_views"):
        m(**dict(x, num_views=3))
    with pytest.raises(DecoderInputError, match="rays_o"):
        m(**dict(x, rays_o=x["rays_o"][:, :-1]))
    with pytest.raises(DecoderInputError, match="plucker"):
        m(**dict(x, plucker=x["plucker"][:, :, :16]))
    with pytest.raises(DecoderInputError, match="use_time"):
        m(**dict(x, time=None))
    with pytest.raises(DecoderInputError, match="divisible"):
        m(**inputs(cfg, h=5))


def test_weight_init():
    torch.manual_seed(0)
    cfg = DecoderConfig(width=128, depth=2, block_pattern="MT", mamba_d_state=16, mamba_headdim=32, attn_heads=4)
    m = LyraDecoder(cfg)
    w = m.enc_blocks[0].mamba.in_proj.weight.detach()
    assert abs(w.std().item() - 0.02) < 0.002 and w.abs().max() < 0.2
    assert abs(m.enc_blocks[1].mlp.fc1.weight.std().item() - 0.02) < 0.002
    assert not m.enc_blocks[1].attn.qkv.bias.any() and not m.enc_blocks[1].mlp.fc2.bias.any()
    assert torch.equal(m.enc_blocks[1].norm1.weight, torch.ones(128)) and not m.enc_blocks[1].norm1.bias.any()
    assert torch.equal(m.enc_blocks[0].norm.weight, torch.ones(128))
    pe = m.patch_embed.proj.weight.detach()
    assert abs(pe.std().item() - math.sqrt(2 / (4 * 128))) < 0.1 * math.sqrt(2 / (4 * 128))
    assert not m.patch_embed.proj.bias.any()
    # deconv keeps PyTorch's default (kaiming-uniform bound 1/sqrt(fan_in), fan_in = out·k for transposed conv)
    dw = m.deconv.weight.detach()
    bound = 1 / math.sqrt(12 * 9 * 2 * 2)
    assert dw.abs().max() <= bound and dw.abs().max() > 0.9 * bound


def test_config_roundtrip_and_presets(tmp_path):
    for cfg in (DecoderConfig.official(), DecoderConfig.pocket(use_time=True), tiny(prune_ratio=0.8)):
        assert DecoderConfig.from_json(cfg.to_json()) == cfg
        cfg.save(tmp_path / "c.json")
        assert DecoderConfig.load(tmp_path / "c.json") == cfg
    pocket = DecoderConfig.pocket()
    assert pocket.blocks == "MMMTMMMT" and 128 <= pocket.width <= 192
    assert 32 <= pocket.mamba_d_state <= 64
    assert 0.5e6 < LyraDecoder(pocket).num_parameters() < 3e6
    with pytest.raises(DecoderConfigError, match="unknown field"):
        DecoderConfig.from_dict({"width": 64, "bogus": 1})


def test_block_patterns():
    assert expand_pattern("7M1T", 16) == "MMMMMMMT" * 2
    assert expand_pattern("3M1T", 8) == "MMMTMMMT"
    assert expand_pattern("MMMTMMMT", 8) == "MMMTMMMT"
    assert expand_pattern("M", 3) == "MMM"
    for bad, depth in (("7M1T", 12), ("3X", 3), ("", 1)):
        with pytest.raises(DecoderConfigError):
            expand_pattern(bad, depth)
    with pytest.raises(DecoderConfigError, match="attn_heads"):
        tiny(attn_heads=5)
    with pytest.raises(DecoderConfigError, match="headdim"):
        tiny(mamba_headdim=7)


def test_tiny_decoder_learns():
    """A few Adam steps move the Gaussians towards a target depth and opacity (gradients reach every block)."""
    cfg = tiny()
    m = model(cfg).train()
    x = inputs(cfg, V=2)
    x["rays_o"] = torch.zeros_like(x["rays_o"])
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        rec = m(**x).records
        loss = ((rec[..., :3].norm(dim=-1) - 2.0) ** 2).mean() / 100 + ((rec[..., 3] - 0.8) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None for n, p in m.named_parameters() if "time" not in n), "a parameter got no grad"
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
