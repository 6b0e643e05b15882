"""Tokenizer v2 pieces: the block-PCA codec (exact block layout, causality, fit), the PCA shortcut around the
network (step 0 is the linear codec), persistence, the strict training config and its CLI file, weight EMA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lyra.tokenizer import CausalVAEConfig, CausalVideoVAE, TokenizerError
from lyra.tokenizer.pca import BlockPCA, blocks_to_video, frame0_blocks, group_blocks

V2_TINY = CausalVAEConfig(channels=(8, 16), dec_channels=(8, 24), enc_blocks=(1, 1, 1), dec_blocks=(1, 1, 1),
                          stats_frames=4, pca_shortcut=True)


def test_blocks_round_trip_exactly() -> None:
    v = torch.randn(2, 3, 17, 16, 24)
    f0, g = frame0_blocks(v, 8), group_blocks(v, 8, 8)
    assert f0.shape == (2, 192, 2, 3) and g.shape == (2, 2, 1536, 2, 3)
    assert torch.equal(blocks_to_video(f0, g, 8, 8), v)
    # group 1 holds frames 1..8 of one 8x8 block: its first 3*64 numbers are frame 1's block
    assert torch.equal(g[0, 0, :192, 1, 2], frame0_blocks(v[:, :, 1:2], 8)[0, :, 1, 2])


def low_rank_videos(n: int, rank: int = 16, seed: int = 0) -> list[torch.Tensor]:
    """Videos whose frame-0 blocks and group blocks each lie in a rank-``rank`` affine subspace."""
    g = torch.Generator().manual_seed(seed)
    b0, bg = torch.randn(192, rank, generator=g), torch.randn(1536, rank, generator=g)
    m0, mg = torch.randn(192, generator=g), torch.randn(1536, generator=g)
    out = []
    for _ in range(n):
        f0 = (b0 @ torch.randn(rank, 4 * 6, generator=g) + m0[:, None]).reshape(1, 192, 4, 6)
        gr = (bg @ torch.randn(rank, 2 * 4 * 6, generator=g) + mg[:, None]).reshape(1536, 2, 4, 6).permute(1, 0, 2, 3)
        out.append(blocks_to_video(f0, gr[None], 8, 8))
    return out


def test_pca_fit_reconstructs_its_subspace_and_whitens() -> None:
    pca = BlockPCA(3, 16, 8, 8).double()
    vids = [v.double() for v in low_rank_videos(12)]
    explained = pca.fit(vids[:10])
    assert explained["f0"] == pytest.approx(1.0, abs=1e-9) and explained["grp"] == pytest.approx(1.0, abs=1e-9)
    z = pca.encode(vids[10])
    assert z.shape == (1, 16, 3, 4, 6)
    torch.testing.assert_close(pca.decode(z), vids[10], atol=1e-4, rtol=0)  # float32 data
    zs = torch.cat([pca.encode(v)[:, :, 0].flatten(2) for v in vids[:10]], 2)[0]  # frame-0 latents [16, N]
    torch.testing.assert_close(zs.std(1), torch.ones(16, dtype=torch.float64), atol=0.05, rtol=0)


def test_pca_codec_is_causal() -> None:
    pca = BlockPCA(3, 16, 8, 8)
    pca.fit(low_rank_videos(4))
    v = torch.randn(1, 3, 17, 32, 48)
    w = v.clone()
    w[:, :, 9:] += 1.0  # change frames of latent group 2 only
    a, b = pca.encode(v), pca.encode(w)
    assert torch.equal(a[:, :, :2], b[:, :, :2]) and not torch.equal(a[:, :, 2], b[:, :, 2])


def test_v2_starts_as_the_pca_codec_and_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    m = CausalVideoVAE(V2_TINY).eval()
    m.pca.fit(low_rank_videos(4))
    v = torch.rand(1, 3, 9, 32, 48) * 2 - 1
    z = m.encode(v)
    torch.testing.assert_close(z, m.pca.encode(v))
    torch.testing.assert_close(m.decode(z), m.pca.decode(z))
    with torch.no_grad():  # a trained residual
        m.decoder.conv_out.weight.normal_(0, 0.01)
    m.save_pretrained(tmp_path)
    back = CausalVideoVAE.from_pretrained(tmp_path)
    assert back.config == V2_TINY
    assert torch.equal(back.decode(z), m.decode(z)) and not torch.equal(back.decode(z), m.pca.decode(z))
    still = v[:, :, :1]  # one frame: frame-0 blocks only
    assert back.decode(back.encode(still)).shape == still.shape


def test_training_config_is_strict_and_typed() -> None:
    from lyra.tokenizer.train import TrainConfig

    cfg = TrainConfig.from_dict({"source_size": [24, 24], "mix": {"world_supersample": 2},
                                 "model": {"pca_shortcut": True, "dec_channels": [8, 24]}})
    assert cfg.source_size == (24, 24) and cfg.mix.world_supersample == 2 and cfg.model.dec_channels == (8, 24)
    with pytest.raises(TokenizerError, match="ema_decy"):
        TrainConfig.from_dict({"ema_decy": 0.9})
    with pytest.raises(TokenizerError, match="model.pca_shortcut"):
        TrainConfig.from_dict({"model": {"pca_shortcut": "yes"}})


def test_cli_trains_v2_from_a_config_file_with_ema(tmp_path: Path) -> None:
    from lyra.cli.main import main

    cfg = {"frames": 9, "height": 16, "width": 16, "batch_size": 1, "max_steps": 3, "warmup_steps": 1,
           "stats_clips": 1, "pool_size": 2, "source_size": [24, 24], "pca_clips": 2, "ema_decay": 0.5,
           "mix": {"world_share": 0.0},
           "model": {**{k: list(v) if isinstance(v, tuple) else v for k, v in V2_TINY.__dict__.items()}}}
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(cfg))
    out = tmp_path / "run"
    assert main(["tokenizer", "train", "--config", str(path), "--out", str(out), "--no-progress",
                 "--max-steps", "2"]) == 0
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 2 and json.loads((out / "train_config.json").read_text())["max_steps"] == 2
    exported = CausalVideoVAE.from_pretrained(out)
    assert exported.config.pca_shortcut
    for name, p in exported.named_parameters():  # the export is the averaged weights, not the last ones
        assert torch.equal(p, ck["ema_weights"][name])
    assert any(not torch.equal(ck["ema_weights"][n], ck["model"][n]) for n in ck["ema_weights"])
    assert float(exported.pca.f0_enc.abs().sum()) > 0  # the shortcut was fitted
    assert not any(t.requires_grad for t in ck["ema_weights"].values())  # no autograd history in the average
    assert main(["tokenizer", "train", "--config", str(path), "--out", str(out), "--no-progress", "--resume"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 3


def test_anti_aliased_world_clips_and_the_report_sets() -> None:
    import torch.nn.functional as F

    from lyra.tokenizer.data import world_clip
    from lyra.tokenizer.evaluate import evaluate

    aa = world_clip(1_000_000_007, 9, 16, 24, supersample=2)
    torch.testing.assert_close(aa, F.avg_pool2d(world_clip(1_000_000_007, 9, 32, 48), 2).clamp(0, 1))
    torch.manual_seed(0)
    kinds = [r.kind for r in evaluate(CausalVideoVAE(V2_TINY).eval(), n_clips=1, frames=9, height=16, width=24)]
    assert kinds == ["texture", "world", "world_aa", "photo", "photo_still"]


def test_decoder_fine_tune_keeps_the_latent_space_and_learns_noisy_latents(tmp_path: Path) -> None:
    from lyra.cli.main import main
    from lyra.tokenizer.train import TrainConfig, noisy_latents, train

    base = {"frames": 9, "height": 16, "width": 16, "batch_size": 2, "warmup_steps": 1, "stats_clips": 1,
            "pool_size": 2, "source_size": [24, 24], "pca_clips": 2, "mix": {"world_share": 0.0}}
    torch.manual_seed(0)
    start = CausalVideoVAE(V2_TINY)
    start.set_latent_stats(torch.rand(V2_TINY.latent_channels, 4) - 0.5, torch.rand(V2_TINY.latent_channels, 4) + 0.5)
    with torch.no_grad():
        start.pca.f0_enc.normal_()
    start.save_pretrained(tmp_path / "start")
    with pytest.raises(TokenizerError, match="freeze_encoder needs init_from"):
        train(TrainConfig.from_dict({**base, "freeze_encoder": True, "out": str(tmp_path / "x")}), progress=False)
    cfg = {**base, "init_from": str(tmp_path / "start"), "freeze_encoder": True, "latent_noise": 1.0,
           "latent_noise_prob": 1.0, "max_steps": 3, "lr": 1e-2}
    path = tmp_path / "ft.json"
    path.write_text(json.dumps(cfg))
    assert main(["tokenizer", "train", "--config", str(path), "--out", str(tmp_path / "ft"), "--no-progress"]) == 0
    done = CausalVideoVAE.from_pretrained(tmp_path / "ft")
    a, b = start.state_dict(), done.state_dict()
    # the encoder, the PCA codec and the latent statistics are init_from's: the same latents for every video
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("decoder."))
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("decoder."))
    assert done.config == start.config
    # the noise: per clip, scaled by the channel's latent std; none at latent_noise 0
    z = torch.zeros(64, V2_TINY.latent_channels, 2, 3, 3)
    n = noisy_latents(done, z, TrainConfig.from_dict({"latent_noise": 0.5, "latent_noise_prob": 1.0}))
    per_clip = n.flatten(1).std(1)
    assert per_clip.max() > 0.05 and per_clip.max() < 0.5 * 1.5 * 1.2  # u·0.5·σ_c, σ_c < 1.5
    assert per_clip.std() > 0.02  # amplitudes differ between clips
    ratio = n[:, :, 0].pow(2).mean((0, 2, 3)).sqrt() / done.latents_std[:, 0]
    assert ratio.std() / ratio.mean() < 0.3  # each channel's noise follows its own std
    half = noisy_latents(done, z, TrainConfig.from_dict({"latent_noise": 0.5, "latent_noise_prob": 0.5}))
    assert 10 < int((half.flatten(1).abs().sum(1) == 0).sum()) < 54  # about half the clips untouched
    assert torch.equal(noisy_latents(done, z, TrainConfig()), z)
