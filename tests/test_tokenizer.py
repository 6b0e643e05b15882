"""Tokenizer protocol and native causal VAE: frame rule, causality, statistics, persistence, errors."""

from __future__ import annotations

import json

import pytest
import torch

from lyra.tokenizer import (
    CausalVAEConfig,
    CausalVideoVAE,
    TokenizerError,
    denormalize_latents,
    latent_frames,
    load_tokenizer,
    normalize_latents,
    pixel_frames,
    roundtrip_frames,
    stats_columns,
)
from lyra.tokenizer.metrics import psnr, ssim

TINY = CausalVAEConfig(channels=(8, 16), enc_blocks=(1, 1, 1), dec_blocks=(1, 1, 1), stats_frames=4)


def tiny_model(seed: int = 0) -> CausalVideoVAE:
    torch.manual_seed(seed)
    m = CausalVideoVAE(TINY).eval()
    with torch.no_grad():  # the temporal convs start at zero; make them mix frames for the tests
        for name, p in m.named_parameters():
            if "conv2.proj" in name:
                p.normal_(0, 0.1)
    return m


@pytest.mark.parametrize(("T", "T_l"), [(1, 1), (9, 2), (17, 3), (49, 7), (121, 16)])
def test_causal_frame_rule(T: int, T_l: int) -> None:
    assert latent_frames(T) == T_l
    assert pixel_frames(T_l) == T


@pytest.mark.parametrize("T", [0, 2, 8, 16, 18, 120])
def test_bad_frame_counts_say_what_is_accepted(T: int) -> None:
    with pytest.raises(TokenizerError, match=r"1 \+ 8k"):
        latent_frames(T)


def test_shapes_and_encode_decode() -> None:
    m = tiny_model()
    x = torch.rand(2, 3, 17, 32, 48) * 2 - 1
    z = m.encode(x)
    assert z.shape == (2, 16, 3, 4, 6)
    assert m.latent_shape(x.shape) == tuple(z.shape)
    y = m.decode(z)
    assert y.shape == x.shape
    z1 = m.encode(x[:, :, :1])
    assert z1.shape == (2, 16, 1, 4, 6)
    assert torch.allclose(z1, z[:, :, :1], atol=1e-5)  # the first frame is coded alone


def test_causality() -> None:
    """Changing frame k changes no latent of an earlier group, and no decoded frame before k's group."""
    m = tiny_model()
    x = torch.rand(1, 3, 25, 16, 16) * 2 - 1
    with torch.no_grad():
        z = m.encode(x)
        for k in (1, 8, 9, 16, 17, 24):
            x2 = x.clone()
            x2[:, :, k] = -x2[:, :, k]
            z2 = m.encode(x2)
            g = (k + 7) // 8  # latent group of frame k
            assert torch.equal(z2[:, :, :g], z[:, :, :g]), k
            assert not torch.allclose(z2[:, :, g], z[:, :, g]), k
        y = m.decode(z)
        z3 = z.clone()
        z3[:, :, 2] += 1.0
        y3 = m.decode(z3)
        assert torch.equal(y3[:, :, :9], y[:, :, :9])  # frames 0..8 depend on latents 0..1 only
        assert not torch.allclose(y3[:, :, 9], y[:, :, 9])


def test_bad_inputs() -> None:
    m = tiny_model()
    with pytest.raises(TokenizerError, match="1 \\+ 8k"):
        m.encode(torch.zeros(1, 3, 16, 16, 16))
    with pytest.raises(TokenizerError, match="multiples of 8"):
        m.encode(torch.zeros(1, 3, 9, 20, 16))
    with pytest.raises(TokenizerError, match=r"\[B, 3, T, H, W\]"):
        m.encode(torch.zeros(1, 9, 3, 16, 16))
    with pytest.raises(TokenizerError, match=r"\[-1, 1\]"):
        m.encode(torch.full((1, 3, 1, 16, 16), 200.0))
    with pytest.raises(TokenizerError, match="latents must be"):
        m.decode(torch.zeros(1, 4, 2, 2, 2))


def test_statistics_round_trip() -> None:
    C, T_stats = 16, 16
    mean = torch.randn(C * T_stats)  # flat, as Cosmos ships it: viewed as (16, -1)
    std = torch.rand(C * T_stats) + 0.5
    raw = torch.randn(2, C, 3, 4, 5) * 3 + 1
    norm = normalize_latents(raw, mean, std)
    cols_m, cols_s = stats_columns(mean, C, 3), stats_columns(std, C, 3)
    expect = (raw - cols_m[None, :, :, None, None]) / cols_s[None, :, :, None, None] * 0.5
    assert torch.allclose(norm, expect, atol=1e-6)
    assert torch.allclose(cols_m, mean.view(C, T_stats)[:, :3])
    assert torch.allclose(denormalize_latents(norm, mean, std), raw, atol=1e-5)
    with pytest.raises(TokenizerError, match="cover 16 latent frames"):
        normalize_latents(torch.zeros(1, C, 17, 1, 1), mean, std)
    per_channel = stats_columns(torch.arange(C, dtype=torch.float32), C, 5)
    assert per_channel.shape == (C, 5)


def test_model_statistics_helpers() -> None:
    m = tiny_model()
    m.set_latent_stats(torch.randn(16, 4), torch.rand(16, 4) + 0.1)
    raw = torch.randn(1, 16, 2, 2, 2)
    assert torch.allclose(m.denormalize_latents(m.normalize_latents(raw)), raw, atol=1e-5)
    with pytest.raises(TokenizerError):
        m.set_latent_stats(torch.zeros(16, 3), torch.ones(16, 3))


def test_save_and_from_pretrained_round_trip(tmp_path) -> None:
    m = tiny_model(3)
    m.set_latent_stats(torch.randn(16, 4), torch.rand(16, 4) + 0.1)
    m.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["_class_name"] == "CausalVideoVAE" and cfg["channels"] == [8, 16]
    m2 = CausalVideoVAE.from_pretrained(tmp_path)
    assert m2.config == m.config
    for (k, v), (k2, v2) in zip(m.state_dict().items(), m2.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    x = torch.rand(1, 3, 9, 16, 16) * 2 - 1
    assert torch.equal(m.encode(x), m2.encode(x))
    m3 = load_tokenizer(tmp_path)  # auto-detected as native
    assert isinstance(m3, CausalVideoVAE)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(TokenizerError, match="model.safetensors"):
        CausalVideoVAE.from_pretrained(tmp_path)


def test_load_tokenizer_errors(tmp_path) -> None:
    with pytest.raises(TokenizerError, match="not found"):
        load_tokenizer(tmp_path / "nope")
    with pytest.raises(TokenizerError, match="not a tokenizer folder"):
        load_tokenizer(tmp_path)


def test_roundtrip_frames_pads_and_crops() -> None:
    m = tiny_model()
    frames = torch.rand(12, 3, 21, 19)
    src, rec = roundtrip_frames(m, frames, chunk=9)
    assert src.shape == rec.shape == (12, 3, 16, 16)
    with pytest.raises(TokenizerError):
        roundtrip_frames(m, frames, chunk=10)


def test_training_step_and_resume(tmp_path) -> None:
    from lyra.tokenizer.train import CHECKPOINT_NAME, TrainConfig, train

    cfg = TrainConfig(out=str(tmp_path), frames=9, height=16, width=16, batch_size=1, max_steps=2,
                      model=TINY, stats_clips=1, warmup_steps=1,
                      pool_size=2, source_size=(16, 16))
    cfg.mix.world_share = 0.0
    train(cfg, progress=False)
    assert (tmp_path / CHECKPOINT_NAME).is_file() and (tmp_path / "model.safetensors").is_file()
    with pytest.raises(TokenizerError, match="--resume"):
        train(cfg, progress=False)
    cfg.max_steps = 3
    train(cfg, resume=True, progress=False)
    ck = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert ck["step"] == 3
    m = CausalVideoVAE.from_pretrained(tmp_path)
    assert torch.isfinite(m.latents_std).all() and (m.latents_std > 0).all()


def test_metrics() -> None:
    a = torch.rand(2, 3, 24, 24)
    assert float(ssim(a, a)) == pytest.approx(1.0, abs=1e-5)
    assert float(psnr(a, (a + 0.1).clamp(max=1.0))) < 25
    assert float(ssim(a, torch.rand_like(a))) < 0.2


def test_cli_roundtrip_and_eval(tmp_path, capsys) -> None:
    import argparse

    from lyra.tokenizer.cli import add_parser, main
    from lyra.tokenizer.data import texture_clip
    from lyra.tokenizer.video_io import read_video, write_video

    parser = argparse.ArgumentParser(prog="lyra")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["tokenizer", "eval", "--clips", "1"])
    assert args.func.__name__ == "_cmd_eval"

    tiny_model().save_pretrained(tmp_path / "tok")
    src = tmp_path / "in.mp4"
    write_video(src, texture_clip(5, 10, 20, 30), fps=12)
    frames, fps = read_video(src)
    assert frames.shape == (10, 3, 20, 30) and fps == pytest.approx(12)
    out = tmp_path / "out.mp4"
    assert main(["roundtrip", str(src), str(out), "--tokenizer", str(tmp_path / "tok"), "--chunk", "9"]) == 0
    rec, _ = read_video(out)
    assert rec.shape == (10, 3, 16, 24)
    assert "PSNR" in capsys.readouterr().out
    assert main(["eval", "--tokenizer", str(tmp_path / "tok"), "--clips", "1", "--frames", "9", "--size", "16", "16",
                 "--json", str(tmp_path / "r.json")]) == 0
    rows = json.loads((tmp_path / "r.json").read_text())
    assert {r["kind"] for r in rows} >= {"texture", "photo", "photo_still"}
    assert main(["roundtrip", str(tmp_path / "missing.mp4"), str(out), "--tokenizer", str(tmp_path / "tok")]) == 2
    assert "not found" in capsys.readouterr().err
