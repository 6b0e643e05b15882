"""The shipped pocket tokenizer weights load strictly and reconstruct held-out procedural clips."""

from __future__ import annotations

import json

import torch

from lyra.tokenizer import CausalVideoVAE, load_tokenizer, shipped_tokenizer_dir
from lyra.tokenizer.data import EVAL_SEED_BASE, texture_clip, world_available, world_clip
from lyra.tokenizer.metrics import psnr


def test_shipped_weights_load_and_card() -> None:
    d = shipped_tokenizer_dir("pocket-v1")
    assert shipped_tokenizer_dir() == shipped_tokenizer_dir("pocket-v2") != d  # the default version is pocket-v2
    assert (d / "model.safetensors").is_file() and (d / "config.json").is_file() and (d / "README.md").is_file()
    tok = load_tokenizer("pocket")
    assert isinstance(tok, CausalVideoVAE)
    assert tok.latent_channels == 16 and tok.spatial_compression == 8 and tok.temporal_compression == 8
    assert tok.latents_mean.shape == (16, 16) and bool((tok.latents_std > 0).all())
    assert 0.5e6 < sum(p.numel() for p in tok.parameters()) < 2.5e6
    assert json.loads((d / "config.json").read_text())["_class_name"] == "CausalVideoVAE"
    assert "lyra tokenizer train" in (d / "README.md").read_text()


def _psnr_of(tok, clip: torch.Tensor) -> tuple[float, torch.Tensor]:
    x = clip.permute(1, 0, 2, 3)[None] * 2 - 1
    with torch.no_grad():
        z = tok.encode(x)
        y = tok.decode(z)
    rec = ((y[0].permute(1, 0, 2, 3) + 1) / 2).clamp(0, 1)
    return float(psnr(rec, clip)), z


def test_shipped_weights_reconstruct_a_procedural_clip() -> None:
    tok = load_tokenizer("pocket")
    p, z = _psnr_of(tok, texture_clip(EVAL_SEED_BASE, 17, 64, 112))  # held-out seed (28.7 dB when shipped)
    assert z.shape == (1, 16, 3, 8, 14)
    assert p > 20.0
    n = tok.normalize_latents(z)  # normalised latents are roughly unit-scale * sigma_data
    assert 0.05 < float(n.std()) < 5.0
    if world_available():  # mean over 4 held-out worlds (23.5 dB when shipped; the generator may evolve)
        ps = [_psnr_of(tok, world_clip(EVAL_SEED_BASE + i, 17, 64, 112))[0] for i in range(4)]
        assert sum(ps) / len(ps) > 20.0


def test_shipped_v2_loads_by_name_and_beats_v1_on_a_held_out_photo_pan() -> None:
    from lyra.tokenizer.data import HELDOUT_PHOTOS, photo_clip

    d = shipped_tokenizer_dir("pocket-v2")
    assert (d / "model.safetensors").is_file() and "lyra tokenizer train --config" in (d / "README.md").read_text()
    v2 = load_tokenizer("pocket-v2")
    assert isinstance(v2, CausalVideoVAE) and v2.config.pca_shortcut and v2.pca is not None
    assert v2.latents_mean.shape == (16, 16) and bool((v2.latents_std > 0).all())
    clip = photo_clip(HELDOUT_PHOTOS[0], EVAL_SEED_BASE, 17, 64, 112)
    p2, z = _psnr_of(v2, clip)
    p1, _ = _psnr_of(load_tokenizer("pocket"), clip)
    assert z.shape == (1, 16, 3, 8, 14) and p2 > p1 + 0.5
