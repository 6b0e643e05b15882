"""Decoder weights: official DeepSpeed-style checkpoints (bf16, strict), errors, and save/from_pretrained."""

import pytest
import torch

from lyra.decoder import CheckpointError, DecoderConfig, LyraDecoder, load_official_checkpoint


def tiny(**kw) -> DecoderConfig:
    base = dict(width=32, depth=2, block_pattern="1M1T", mamba_d_state=8, mamba_headdim=8, mamba_chunk_size=8,
                attn_heads=2)
    base.update(kw)
    return DecoderConfig(**base)


def _inputs(cfg, V=1, T_l=2, h=4, w=4):
    g = torch.Generator().manual_seed(0)
    T = cfg.num_frames(T_l)
    return dict(
        latents=torch.randn(1, V * T_l, 16, h, w, generator=g),
        plucker=torch.randn(1, V * T_l, 32, h, w, generator=g),
        rays_o=torch.randn(1, V * T, 3, h, w, generator=g),
        rays_d=torch.nn.functional.normalize(torch.randn(1, V * T, 3, h, w, generator=g), dim=2),
        num_views=V,
    )


def _trained_like(cfg) -> LyraDecoder:
    torch.manual_seed(1)
    m = LyraDecoder(cfg).eval()
    with torch.no_grad():  # make the zero-initialised conditioning branches matter
        for p in m.patch_plucker_embed.parameters():
            p.normal_(0, 0.05)
    return m


def test_deepspeed_layout_bf16_strict_load(tmp_path):
    cfg = tiny()
    src = _trained_like(cfg)
    bf16_state = {k: v.to(torch.bfloat16) for k, v in src.state_dict().items()}
    path = tmp_path / "lyra_static.pt"
    torch.save({"module": bf16_state, "other": {"step": 7}, "ds_version": "0.17.5"}, path)

    state = load_official_checkpoint(path)
    assert set(state) == set(src.state_dict()) and all(v.dtype == torch.bfloat16 for v in state.values())
    m = LyraDecoder.from_official(path, config=cfg)
    assert m.dtype == torch.float32
    for k, v in m.state_dict().items():
        assert torch.equal(v, bf16_state[k].float()), k

    ref = LyraDecoder(cfg).eval()
    ref.load_state_dict({k: v.float() for k, v in bf16_state.items()})
    x = _inputs(cfg)
    with torch.no_grad():
        torch.testing.assert_close(m.eval()(**x).records, ref(**x).records, atol=0, rtol=0)
        # in bf16 the model runs and stays close to the float32 model with the same weights
        m16 = LyraDecoder.from_official(path, config=cfg, dtype=torch.bfloat16)
        assert m16.dtype == torch.bfloat16
        diff = (m16.eval()(**x).records[..., 3] - ref(**x).records[..., 3]).abs().max()
    assert diff < 0.05


def test_module_prefix_and_plain_state_dict(tmp_path):
    cfg = tiny()
    src = _trained_like(cfg)
    path = tmp_path / "plain.pt"
    torch.save({f"module.{k}": v for k, v in src.state_dict().items()}, path)
    state = load_official_checkpoint(path)
    assert set(state) == set(src.state_dict())
    m = LyraDecoder.from_official(path, config=cfg)
    for k, v in src.state_dict().items():
        assert torch.equal(m.state_dict()[k], v)


def test_strict_errors_list_keys(tmp_path):
    cfg = tiny()
    state = _trained_like(cfg).state_dict()
    state.pop("enc_norm.weight")
    state["extra.weight"] = torch.zeros(3)
    state["deconv.bias"] = torch.zeros(5)
    path = tmp_path / "bad.pt"
    torch.save({"module": state}, path)
    with pytest.raises(CheckpointError) as e:
        LyraDecoder.from_official(path, config=cfg)
    msg = str(e.value)
    assert "enc_norm.weight" in msg and "extra.weight" in msg and "deconv.bias" in msg
    assert "missing keys (1)" in msg and "unexpected keys (1)" in msg and "shape mismatches (1)" in msg


def test_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(CheckpointError) as e:
        load_official_checkpoint(tmp_path / "lyra_static.pt")
    msg = str(e.value)
    assert "nvidia/Lyra" in msg and "lyra_static.pt" in msg and "lyra_dynamic.pt" in msg and str(tmp_path) in msg


def test_rejects_non_state_dict_and_pickled_code(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="state dict"):
        load_official_checkpoint(path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path2 = tmp_path / "evil.pt"
    torch.save({"module": {"a": torch.zeros(1)}, "obj": Evil()}, path2)
    with pytest.raises(CheckpointError, match="weights-only"):
        load_official_checkpoint(path2)


def test_dynamic_file_name_enables_time(tmp_path):
    cfg = tiny()
    path = tmp_path / "my_lyra_dynamic.pt"
    torch.save({"module": _trained_like(cfg).state_dict()}, path)
    # the official architecture does not fit the tiny weights: the error lists the mismatch
    with pytest.raises(CheckpointError, match="shape mismatches"):
        LyraDecoder.from_official(path)
    assert LyraDecoder.from_official(path, config=tiny(use_time=True)).config.use_time


def test_save_and_from_pretrained(tmp_path):
    cfg = tiny(use_time=True, prune_ratio=0.5)
    src = _trained_like(cfg)
    src.save_pretrained(tmp_path / "dec")
    assert sorted(p.name for p in (tmp_path / "dec").iterdir()) == ["config.json", "model.safetensors"]
    m = LyraDecoder.from_pretrained(tmp_path / "dec")
    assert m.config == cfg
    x = _inputs(cfg, V=2)
    x["time"] = torch.randn(1, 3, 16, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(m.eval()(**x).records, src(**x).records, atol=0, rtol=0)
    src.to(torch.bfloat16).save_pretrained(tmp_path / "dec16")
    assert LyraDecoder.from_pretrained(tmp_path / "dec16").dtype == torch.bfloat16
    assert LyraDecoder.from_pretrained(tmp_path / "dec16", dtype=torch.float32).dtype == torch.float32
    with pytest.raises(CheckpointError, match="config.json"):
        LyraDecoder.from_pretrained(tmp_path)
