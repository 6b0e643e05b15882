"""Pick a tokenizer from a name or a local folder, and round-trip arbitrary videos through it."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.tokenizer.base import TokenizerError, VideoTokenizer
from lyra.utils.inputs import read_json


def load_tokenizer(spec: str | Path = "shipped", device: torch.device | str = "cpu",
                   dtype: torch.dtype | None = None) -> VideoTokenizer:
    """A tokenizer from ``spec``: a shipped name (``"shipped"`` = ``"pocket-v1"``, ``"pocket-v2"``; see
    :mod:`lyra.utils.shipped`) or a local folder.

    Folder detection: ``encoder.jit`` + ``decoder.jit`` -> Cosmos TorchScript; ``config.json`` whose
    ``_class_name`` is ``AutoencoderKLCosmos`` (or a ``vae/`` subfolder with one) -> diffusers;
    ``config.json`` + ``model.safetensors`` of ``CausalVideoVAE`` -> native.
    """
    from lyra.tokenizer.native import CONFIG_NAME, CausalVideoVAE, load_shipped
    from lyra.utils.shipped import SHIPPED_NAMES

    if str(spec) in SHIPPED_NAMES:
        return load_shipped(device=device, name=str(spec))
    d = Path(spec)
    if not d.is_dir():
        raise TokenizerError(f"tokenizer folder not found: {d} (shipped: 'shipped', 'pocket-v2', 'pocket-v1')")
    if (d / "encoder.jit").exists() or (d / "decoder.jit").exists() or (d / "mean_std.pt").exists():
        from lyra.tokenizer.cosmos import CosmosJITTokenizer

        return CosmosJITTokenizer.from_folder(d, device=device, dtype=dtype)
    for cfg_dir in (d, d / "vae"):
        cfg = cfg_dir / CONFIG_NAME
        if cfg.is_file():
            name = read_json(cfg, "tokenizer config.json", TokenizerError).get("_class_name")
            if name == "AutoencoderKLCosmos":
                from lyra.tokenizer.cosmos import DiffusersCosmosTokenizer

                return DiffusersCosmosTokenizer.from_folder(cfg_dir, device=device, dtype=dtype or torch.float32)
            if name == "CausalVideoVAE":
                return CausalVideoVAE.from_pretrained(cfg_dir, device=device, dtype=dtype or torch.float32)
    raise TokenizerError(
        f"{d} is not a tokenizer folder: expected encoder.jit/decoder.jit/mean_std.pt (Cosmos TorchScript), "
        "config.json of AutoencoderKLCosmos (diffusers) or config.json + model.safetensors (native)"
    )


@torch.no_grad()
def roundtrip_frames(tok: VideoTokenizer, frames: Tensor, size: tuple[int, int] | None = None, chunk: int = 121,
                     device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Encode + decode ``[T, 3, H, W]`` in [0, 1]; returns ``(source, reconstruction)`` of equal shape.

    Frames are resized to ``size`` (or centre-cropped to the tokenizer's size multiple), split into
    independent chunks of ``chunk = 1 + 8k`` frames; a short last chunk is padded by repeating its
    last frame up to the next accepted count and trimmed after decoding.
    """
    tok.latent_frames(chunk)
    m = tok.size_multiple
    if size is not None:
        H, W = size
        if H % m or W % m:
            raise TokenizerError(f"--size must be multiples of {m}, got {H}x{W}")
        frames = F.interpolate(frames, size=(H, W), mode="bilinear", antialias=True, align_corners=False)
    else:
        H, W = frames.shape[-2] // m * m, frames.shape[-1] // m * m
        if H == 0 or W == 0:
            raise TokenizerError(f"video is smaller than {m}x{m} pixels")
        y0, x0 = (frames.shape[-2] - H) // 2, (frames.shape[-1] - W) // 2
        frames = frames[..., y0 : y0 + H, x0 : x0 + W]
    frames = frames.clamp(0, 1).contiguous()
    k = tok.temporal_compression
    outs = []
    for s in range(0, frames.shape[0], chunk):
        c = frames[s : s + chunk]
        n = c.shape[0]
        n_pad = (-(n - 1)) % k
        if n_pad:
            c = torch.cat([c, c[-1:].expand(n_pad, -1, -1, -1)])
        x = (c.permute(1, 0, 2, 3)[None] * 2 - 1).to(device)
        y = tok.decode(tok.encode(x)).float().cpu()
        outs.append(((y[0].permute(1, 0, 2, 3)[:n] + 1) / 2).clamp(0, 1))
    return frames, torch.cat(outs)
