"""The diffusion teacher: GEN3C's camera-conditioned latent video DiT, its sampler and its conditioning.

One network class (:class:`Gen3CNet`, diffusers' Cosmos DiT with the 3D-cache inputs) at two scales
(:meth:`Gen3CNetConfig.official`: NVIDIA's GEN3C-Cosmos-7B weights, :func:`load_official`; small configurations
trained here), the official EDM Euler sampler with cache-dropping guidance (:func:`sample`), the chunk's
conditioning from a tokenizer (:func:`chunk_conditioning`) and precomputed text embeddings
(:class:`PromptEmbeddings`); :class:`DiffusionGenerator`, registered as the ``diffusion`` generator, wires them to
the 3D-cache warp. Importing this package does not import diffusers; building a network does.
"""

from lyra.generator.diffusion.autoregressive import chunk_spans, generate_autoregressive
from lyra.generator.diffusion.conditioning import (
    Conditioning,
    chunk_conditioning,
    condition_clip,
    encode_cache,
    encode_condition,
)
from lyra.generator.diffusion.config import DiffusionError, Gen3CNetConfig
from lyra.generator.diffusion.generator import DiffusionGenerator, load_diffusion_net
from lyra.generator.diffusion.model import Gen3CNet
from lyra.generator.diffusion.official import convert_official_state, load_official, read_official_state
from lyra.generator.diffusion.sampler import SamplerConfig, guided_output, sample
from lyra.generator.diffusion.text import PromptEmbeddings, compute_prompt_embeddings

__all__ = [
    "Conditioning", "DiffusionError", "DiffusionGenerator", "Gen3CNet", "Gen3CNetConfig", "PromptEmbeddings",
    "SamplerConfig", "chunk_conditioning", "chunk_spans", "compute_prompt_embeddings", "condition_clip",
    "convert_official_state", "encode_cache", "encode_condition", "generate_autoregressive", "guided_output",
    "load_diffusion_net", "load_official", "read_official_state", "sample",
]
