"""The shipped pocket tokenizer weights load strictly and reconstruct held-out procedural clips."""

from __future__ import annotations

import json

import torch

from lyra.tokenizer import CausalVideoVAE, load_tokenizer, shipped_tokenizer_dir
from lyra.tokenizer.data import EVAL_SEED_BASE, texture_clip, world_available, world_clip
from lyra.tokenizer.metrics import psnr


def test_shipped_weights_load_and_card() -> None:
    d = shipped_tokenizer_dir()
    assert (d / "model.safetensors").is_file() and (d / "config.json").is_file() and (d / "README.md").is_file()
    tok = load_tokenizer("pocket")
    assert isinstance(tok, CausalVideoVAE)
    assert tok.latent_channels == 16 and tok.spatial_compression == 8 and tok.temporal_compression == 8
    assert tok.latents_mean.shape == (16, 16) and bool((tok.latents_std > 0).all())
    assert 0.5e6 < sum(p.numel() for p in tok.parameters()) < 2.5e6
    assert json.loads((d / "config.json").read_text())["_class_name"] == "CausalVideoVAE"
    assert "lyra tokenizer train" in (d / "README.md").read_text()


def test_shipped_weights_reconstruct_a_procedural_clip() -> None:
    tok = load_tokenizer("pocket")
    seed = EVAL_SEED_BASE + 1
    clip = world_clip(seed, 17, 64, 112) if world_available() else texture_clip(seed, 17, 64, 112)
    x = clip.permute(1, 0, 2, 3)[None] * 2 - 1
    with torch.no_grad():
        z = tok.encode(x)
        y = tok.decode(z)
    assert z.shape == (1, 16, 3, 8, 14)
    rec = ((y[0].permute(1, 0, 2, 3) + 1) / 2).clamp(0, 1)
    assert float(psnr(rec, clip)) > 20.0
    # normalised latents are roughly unit-scale / sigma_data
    n = tok.normalize_latents(z)
    assert 0.05 < float(n.std()) < 5.0
