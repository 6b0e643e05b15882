"""Cosmos tokenizer loaders with tiny stand-ins: TorchScript folder and diffusers AutoencoderKLCosmos."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from lyra.tokenizer import TokenizerError, load_tokenizer
from lyra.tokenizer.cosmos import JIT_REPO, CosmosJITTokenizer, read_mean_std


class TinyEncoder(nn.Module):
    """[B, 3, T, H, W] -> ([B, 16, 1 + (T-1)/8, H/8, W/8],): frame 0 alone, then means of groups of 8."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv3d(3, 16, 1)

    def forward(self, x: Tensor) -> tuple[Tensor]:
        x = torch.cat([x[:, :, :1].repeat(1, 1, 7, 1, 1), x], 2)
        B, C, T, H, W = x.shape
        x = x.reshape(B, C, T // 8, 8, H // 8, 8, W // 8, 8).mean((3, 5, 7))
        return (self.proj(x),)


class TinyDecoder(nn.Module):
    """[B, 16, T_l, h, w] -> [B, 3, 1 + 8 (T_l - 1), 8h, 8w]."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv3d(16, 3, 1)

    def forward(self, z: Tensor) -> Tensor:
        x = self.proj(z)
        x = x.repeat_interleave(8, dim=2)[:, :, 7:]
        return x.repeat_interleave(8, dim=3).repeat_interleave(8, dim=4)


def write_jit_folder(d, stats: bool = True, script: bool = True) -> None:
    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    enc, dec = TinyEncoder(), TinyDecoder()
    if script:
        torch.jit.save(torch.jit.script(enc), str(d / "encoder.jit"))
    else:
        torch.jit.save(torch.jit.trace(enc, torch.zeros(1, 3, 9, 16, 16)), str(d / "encoder.jit"))
    torch.jit.save(torch.jit.script(dec), str(d / "decoder.jit"))
    if stats:
        torch.save((torch.randn(256), torch.rand(256) + 0.5), d / "mean_std.pt")


@pytest.mark.parametrize("script", [True, False])
def test_jit_folder_round_trip(tmp_path, script: bool) -> None:
    write_jit_folder(tmp_path, script=script)
    tok = load_tokenizer(tmp_path)
    assert isinstance(tok, CosmosJITTokenizer)
    assert tok.dtype == torch.float32  # CPU default
    x = torch.rand(2, 3, 17, 16, 24) * 2 - 1
    z = tok.encode(x)
    assert z.shape == (2, 16, 3, 2, 3) and z.dtype == torch.float32
    y = tok.decode(z)
    assert y.shape == x.shape
    assert tok.latents_mean.shape == (16, 16)
    assert torch.allclose(tok.denormalize_latents(tok.normalize_latents(z)), z, atol=1e-5)
    with pytest.raises(TokenizerError, match="1 \\+ 8k"):
        tok.encode(x[:, :, :16])


def test_jit_bfloat16(tmp_path) -> None:
    write_jit_folder(tmp_path)
    tok = CosmosJITTokenizer.from_folder(tmp_path, dtype=torch.bfloat16)
    z = tok.encode(torch.zeros(1, 3, 9, 16, 16))
    assert z.dtype == torch.float32 and z.shape == (1, 16, 2, 2, 2)


def test_jit_missing_files_say_what_to_download(tmp_path) -> None:
    with pytest.raises(TokenizerError, match=JIT_REPO):
        CosmosJITTokenizer.from_folder(tmp_path / "absent")
    write_jit_folder(tmp_path, stats=False)
    (tmp_path / "decoder.jit").unlink()
    with pytest.raises(TokenizerError, match=f"decoder.jit.*{JIT_REPO}.*{tmp_path}"):
        load_tokenizer(tmp_path)
    write_jit_folder(tmp_path, stats=False)
    tok = load_tokenizer(tmp_path)  # encode/decode work without statistics ...
    assert tok.encode(torch.zeros(1, 3, 1, 8, 8)).shape == (1, 16, 1, 1, 1)
    with pytest.raises(TokenizerError, match="mean_std.pt"):  # ... normalisation needs them
        tok.normalize_latents(torch.zeros(1, 16, 1, 1, 1))
    with pytest.raises(TokenizerError, match="mean_std.pt"):
        CosmosJITTokenizer.from_folder(tmp_path, require_stats=True)


@pytest.mark.parametrize("form", ["tuple", "dict", "stacked"])
def test_read_mean_std_forms(tmp_path, form: str) -> None:
    m, s = torch.randn(16, 16), torch.rand(16, 16)
    obj = {"tuple": (m.flatten(), s.flatten()), "dict": {"mean": m, "std": s}, "stacked": torch.stack([m, s])}[form]
    torch.save(obj, tmp_path / "mean_std.pt")
    m2, s2 = read_mean_std(tmp_path / "mean_std.pt")
    assert torch.equal(m2, m) and torch.equal(s2, s)


def test_diffusers_cosmos_tiny(tmp_path) -> None:
    diffusers = pytest.importorskip("diffusers", reason="diffusers not installed: pip install diffusers")
    from lyra.tokenizer.cosmos import DiffusersCosmosTokenizer

    torch.manual_seed(0)
    vae = diffusers.AutoencoderKLCosmos(
        encoder_block_out_channels=(8, 8, 8, 8), decode_block_out_channels=(8, 8, 8, 8),
        attention_resolutions=(), resolution=64, num_layers=1,
        latents_mean=torch.randn(256).tolist(), latents_std=(torch.rand(256) + 0.5).tolist(),
    )
    vae.save_pretrained(tmp_path / "vae")
    tok = load_tokenizer(tmp_path)  # a pipeline-style folder with vae/
    assert isinstance(tok, DiffusersCosmosTokenizer)
    x = torch.rand(1, 3, 9, 16, 16) * 2 - 1
    z = tok.encode(x)
    assert z.shape == (1, 16, 2, 2, 2)
    assert tok.decode(z).shape == x.shape
    assert tok.latents_mean.shape == (16, 16)
    ref = vae.eval().encode(x).latent_dist.mode()
    assert torch.allclose(z, ref, atol=1e-5)
    with pytest.raises(TokenizerError, match="config.json"):
        DiffusersCosmosTokenizer.from_folder(tmp_path / "empty")
