"""Tokenizer: the video VAE protocol (encode/decode, compression, latent statistics), the native
pocket causal VAE and the Cosmos CV8x8x8 tokenizer loaded from a local folder."""

from lyra.tokenizer.base import (
    SIGMA_DATA,
    TokenizerError,
    VideoTokenizer,
    denormalize_latents,
    latent_frames,
    normalize_latents,
    pixel_frames,
    stats_columns,
)
from lyra.tokenizer.loading import load_tokenizer, roundtrip_frames
from lyra.tokenizer.native import CausalVAEConfig, CausalVideoVAE, load_shipped, shipped_tokenizer_dir

__all__ = [
    "SIGMA_DATA",
    "CausalVAEConfig",
    "CausalVideoVAE",
    "TokenizerError",
    "VideoTokenizer",
    "denormalize_latents",
    "latent_frames",
    "load_shipped",
    "load_tokenizer",
    "normalize_latents",
    "pixel_frames",
    "roundtrip_frames",
    "shipped_tokenizer_dir",
    "stats_columns",
]
