"""DecoderConfig.official() vs the released checkpoints (method §3.5, §11, Appendix A), built on the meta device."""

import math

import pytest
import torch

from lyra.decoder import DecoderConfig, LyraDecoder, activate


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: one thread is faster, and steadier on a shared box."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

MAMBA = [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14]
ATTN = [7, 15]


def _expected_table() -> dict[str, tuple[int, ...]]:
    """The state-dict table of method §11 (keys -> shapes)."""
    t: dict[str, tuple[int, ...]] = {}
    for i in MAMBA:
        p = f"enc_blocks.{i}."
        t[p + "norm.weight"] = (512,)
        t[p + "mamba.in_proj.weight"] = (2576, 512)
        for s in (0, 1):
            q = f"{p}mamba.mamba_scans.{s}."
            t[q + "conv1d.weight"] = (1536, 1, 4)
            t[q + "conv1d.bias"] = (1536,)
            t[q + "dt_bias"] = (16,)
            t[q + "A_log"] = (16,)
            t[q + "D"] = (16,)
            t[q + "norm.weight"] = (1024,)
        t[p + "mamba.out_proj.weight"] = (512, 1024)
    for i in ATTN:
        p = f"enc_blocks.{i}."
        for n in ("norm1", "norm2"):
            t[f"{p}{n}.weight"] = (512,)
            t[f"{p}{n}.bias"] = (512,)
        t[p + "attn.qkv.weight"] = (1536, 512)
        t[p + "attn.qkv.bias"] = (1536,)
        t[p + "attn.proj.weight"] = (512, 512)
        t[p + "attn.proj.bias"] = (512,)
        t[p + "mlp.fc1.weight"] = (2048, 512)
        t[p + "mlp.fc1.bias"] = (2048,)
        t[p + "mlp.fc2.weight"] = (512, 2048)
        t[p + "mlp.fc2.bias"] = (512,)
    t["enc_norm.weight"] = (512,)
    t["enc_norm.bias"] = (512,)
    for name, cin in (("patch_embed", 16), ("patch_plucker_embed", 32), ("patch_time_embed", 16),
                      ("patch_time_embed_tgt", 16)):
        t[f"{name}.proj.weight"] = (512, cin, 1, 2, 2)
        t[f"{name}.proj.bias"] = (512,)
        t[f"{name}.norm.weight"] = (512,)
        t[f"{name}.norm.bias"] = (512,)
    t["deconv.weight"] = (512, 12, 9, 2, 2)
    t["deconv.bias"] = (12,)
    return t


@pytest.fixture(scope="module")
def meta_model() -> LyraDecoder:
    with torch.device("meta"):
        return LyraDecoder(DecoderConfig.official())


def test_state_dict_keys_and_shapes(meta_model):
    got = {k: tuple(v.shape) for k, v in meta_model.state_dict().items()}
    want = _expected_table()
    assert set(got) - set(want) == set(), "unexpected keys"
    assert set(want) - set(got) == set(), "missing keys"
    assert got == want
    # module order of the table: blocks, final norm, embeddings, deconv
    prefixes = [k.split(".")[0] for k in got]
    assert prefixes.index("enc_norm") > max(i for i, p in enumerate(prefixes) if p == "enc_blocks")
    assert list(got)[-1].startswith("deconv")


def test_parameter_counts(meta_model):
    m = meta_model

    def count(mod):
        return sum(p.numel() for p in mod.parameters())

    assert m.num_parameters() == 32_753_996
    blocks = m.enc_blocks
    assert [count(blocks[i]) for i in MAMBA] == [1_861_216] * 14
    assert [count(blocks[i]) for i in ATTN] == [3_152_384] * 2
    b0 = blocks[0]
    assert count(b0.norm) == 512 and count(b0.mamba.in_proj) == 1_318_912 and count(b0.mamba.out_proj) == 524_288
    assert [count(s) for s in b0.mamba.mamba_scans] == [8_752, 8_752]
    assert sum(count(blocks[i]) for i in MAMBA) == 26_057_024
    assert sum(count(blocks[i]) for i in ATTN) == 6_304_768
    assert count(m.enc_norm) == 1_024
    assert count(m.patch_embed) == 34_304 and count(m.patch_plucker_embed) == 67_072
    assert count(m.patch_time_embed) + count(m.patch_time_embed_tgt) == 68_608
    assert count(m.patch_embed) + count(m.patch_plucker_embed) + 68_608 == 169_984
    assert count(m.deconv) == 221_196


def test_block_order_and_config_constants():
    cfg = DecoderConfig.official()
    assert cfg.blocks == "MMMMMMMTMMMMMMMT"
    assert (cfg.d_inner, cfg.mamba_heads, cfg.mamba_d_state, cfg.mamba_d_conv, cfg.mamba_chunk_size) == (
        1024, 16, 256, 4, 256)
    assert (cfg.attn_heads, cfg.mlp_hidden) == (8, 2048)
    with torch.device("meta"):
        m = LyraDecoder(cfg)
    kinds = "".join("T" if hasattr(b, "attn") else "M" for b in m.enc_blocks)
    assert kinds == cfg.blocks
    assert m.enc_norm.eps == 1e-6 and m.enc_blocks[7].norm1.eps == 1e-6 and m.patch_embed.norm.eps == 1e-5
    assert m.enc_blocks[0].norm.eps == 1e-5 and m.enc_blocks[0].mamba.mamba_scans[0].norm.eps == 1e-5
    assert DecoderConfig.official(use_time=True).use_time


def test_activations_at_raw_zero():
    cfg = DecoderConfig.official()
    origins = torch.tensor([[1.0, 2.0, 3.0]])
    dirs = torch.tensor([[0.0, 0.6, 0.8]])
    rec = activate(torch.zeros(1, 12), origins, dirs, cfg)[0]
    dist = 0.1 + (500 - 0.1) / (1 + math.exp(1.65))
    assert abs(dist - 80.638) < 1e-3
    torch.testing.assert_close(rec[:3], origins[0] + dirs[0] * dist, atol=1e-4, rtol=1e-6)
    assert abs(rec[3].item() - 0.11920) < 1e-5  # opacity
    torch.testing.assert_close(rec[4:7], torch.full((3,), 0.110364), atol=1e-6, rtol=0)  # scale
    assert torch.isfinite(rec[7:11]).all()  # zero quaternion normalises to zero; never NaN
    torch.testing.assert_close(rec[11:14], torch.full((3,), 0.5))  # colour


def test_activation_ranges_and_channel_order():
    cfg = DecoderConfig.official()
    raw = torch.zeros(4, 12)
    raw[0, 0] = 50.0  # distance saturates at dfar
    raw[1, 0] = -50.0  # and at dnear
    raw[2, 4:7] = 10.0  # scale capped at 0.3
    raw[2, 7:11] = torch.tensor([2.0, 0.0, 0.0, 0.0])  # rotation channels 7..10 (w, x, y, z)
    raw[3, 11] = 50.0  # opacity is the last raw channel
    raw[3, 1:4] = torch.tensor([-50.0, 0.0, 50.0])  # colour channels 1..3
    o, d = torch.zeros(4, 3), torch.tensor([[0.0, 0.0, 1.0]]).expand(4, 3)
    rec = activate(raw, o, d, cfg)
    assert abs(rec[0, 2].item() - 500.0) < 1e-3 and abs(rec[1, 2].item() - 0.1) < 1e-6
    torch.testing.assert_close(rec[2, 4:7], torch.full((3,), 0.3))
    torch.testing.assert_close(rec[2, 7:11], torch.tensor([1.0, 0.0, 0.0, 0.0]))
    assert abs(rec[3, 3].item() - 1.0) < 1e-6
    torch.testing.assert_close(rec[3, 11:14], torch.tensor([0.0, 0.5, 1.0]))
    # scale below the cap follows 0.3 * e^(raw - 1)
    raw = torch.zeros(1, 12)
    raw[0, 4] = -2.0
    assert abs(activate(raw, o[:1], d[:1], cfg)[0, 4].item() - 0.3 * math.exp(-3.0)) < 1e-7


@pytest.mark.parametrize("t_l,t", [(3, 17), (7, 49), (16, 121)])
def test_deconv_output_length(t_l, t):
    cfg = DecoderConfig.official()
    assert cfg.num_frames(t_l) == t
    with torch.device("meta"):
        deconv = LyraDecoder(cfg).deconv
        out = deconv(torch.empty(1, 512, t_l, 3, 4))
    assert tuple(out.shape) == (1, 12, t, 6, 8)


def test_gaussians_per_trajectory_176x320x17(meta_model):
    cfg = meta_model.config
    with torch.device("meta"):
        h, w, t_l = 176 // 8, 320 // 8, 3
        t = cfg.num_frames(t_l)
        args = (torch.empty(1, t_l, 16, h, w), torch.empty(1, t_l, 32, h, w), torch.empty(1, t, 3, h, w),
                torch.empty(1, t, 3, h, w))
        out = meta_model(*args, num_views=1)
        assert out.records.shape == (1, 14_960, 14) and len(out.gaussians[0]) == 14_960
        two = meta_model(*(a.repeat(1, 2, 1, 1, 1) for a in args), num_views=2, prune_ratio=0.8)
        assert two.records.shape == (1, math.floor(2 * 14_960 * 0.2), 14)


def test_official_forward_runs_on_cpu():
    torch.manual_seed(0)
    m = LyraDecoder(DecoderConfig.official()).eval()
    t_l, h, w = 2, 4, 4
    t = m.config.num_frames(t_l)
    rays_d = torch.nn.functional.normalize(torch.randn(1, t, 3, h, w), dim=2)
    with torch.no_grad():
        out = m(torch.randn(1, t_l, 16, h, w), torch.randn(1, t_l, 32, h, w), torch.zeros(1, t, 3, h, w), rays_d)
    assert out.records.shape == (1, 9 * 16, 14) and torch.isfinite(out.records).all()
    out.gaussians[0].validate(check_values=True)
