"""Decoder: the latent 3DGS decoder (patch embeds, bidirectional Mamba-2, attention, deconv head, activation)."""

from lyra.decoder.activation import RECORD_FIELDS, activate, prune_records, records_to_gaussians
from lyra.decoder.checkpoint import OFFICIAL_FILES, OFFICIAL_REPO, CheckpointError, load_into, load_official_checkpoint
from lyra.decoder.config import DecoderConfig, DecoderConfigError, expand_pattern
from lyra.decoder.mamba2 import BiMamba2, Mamba2Scan, ssd_chunked, ssd_sequential
from lyra.decoder.model import DecoderInputError, DecoderOutput, LyraDecoder, latent_rays

__all__ = [
    "OFFICIAL_FILES", "OFFICIAL_REPO", "RECORD_FIELDS", "BiMamba2", "CheckpointError", "DecoderConfig",
    "DecoderConfigError", "DecoderInputError", "DecoderOutput", "LyraDecoder", "Mamba2Scan", "activate",
    "expand_pattern", "load_into", "load_official_checkpoint", "prune_records", "records_to_gaussians",
    "latent_rays", "ssd_chunked", "ssd_sequential",
]
