"""Gen3CNet: the GEN3C video DiT (diffusers' ``CosmosTransformer3DModel``) with the 3D-cache inputs in official order.

diffusers holds the Cosmos-1 network layer for layer (gen3c-official-inference.md §3); what it lacks is done here:

* the channel layout: diffusers concatenates its ``condition_mask`` argument after the noisy latents, so the
  first-frame mask, the cache latents and the padding mask go in through it, in that order (the padding-mask
  channel is appended here, all zero as GEN3C feeds it, because diffusers resizes its own padding mask with
  torchvision, which does not install beside this torch);
* the q/k RMSNorm epsilon (1e-6 as Transformer Engine's, where diffusers builds 1e-5);
* shape checks and the EDM interface the sampler speaks (``c_in``-scaled input, ``c_noise`` timestep, raw output F).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lyra.generator.diffusion.config import DiffusionError, Gen3CNetConfig
from lyra.utils.weights import CONFIG_NAME, load_strict, read_weights_folder, save_weights_folder


def import_cosmos_transformer() -> Any:
    """diffusers' ``CosmosTransformer3DModel`` class; a missing diffusers is one line saying how to install it."""
    try:
        from diffusers import CosmosTransformer3DModel
    except ImportError as exc:
        raise DiffusionError("the diffusion teacher needs diffusers (CosmosTransformer3DModel): "
                             "pip install -e '.[hf]'") from exc
    return CosmosTransformer3DModel


class Gen3CNet(nn.Module):
    """The GEN3C DiT. ``self.transformer`` is a diffusers ``CosmosTransformer3DModel`` whose parameter names are the
    weights' keys (``model.safetensors`` of :func:`save_pretrained`, the converted official ``model.pt``)."""

    def __init__(self, config: Gen3CNetConfig) -> None:
        super().__init__()
        self.config = cfg = config.validate()
        self.transformer = import_cosmos_transformer()(
            in_channels=cfg.in_channels + 1, out_channels=cfg.latent_channels, num_attention_heads=cfg.num_heads,
            attention_head_dim=cfg.head_dim, num_layers=cfg.num_layers, mlp_ratio=cfg.mlp_ratio,
            text_embed_dim=cfg.text_dim, adaln_lora_dim=cfg.adaln_lora_dim, max_size=cfg.max_latent_size,
            patch_size=cfg.patch_size, rope_scale=cfg.rope_scale, concat_padding_mask=False,
            extra_pos_embed_type="learnable" if cfg.learnable_pos_embed else None)
        for block in self.transformer.transformer_blocks:
            for attn in (block.attn1, block.attn2):
                attn.norm_q.eps = attn.norm_k.eps = cfg.qk_norm_eps

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.proj_out.weight.dtype

    @property
    def device(self) -> torch.device:
        """Where the forward runs (the offload device after :meth:`offload`, else the weights' device)."""
        return getattr(self, "execution_device", None) or self.transformer.proj_out.weight.device

    def offload(self, device: torch.device | str, blocks_per_group: int = 1) -> Gen3CNet:
        """Keep the weights in CPU memory and bring ``blocks_per_group`` transformer blocks at a time onto ``device``
        during the forward (diffusers' block-level group offloading; CUDA copies overlap compute on a side stream).

        Device memory then holds one group's weights and the activations instead of the whole network (7B: ≈ 0.5 GB
        per block in bf16 instead of 14.5 GB), at the cost of a host-to-device copy of every weight per forward.
        """
        device = torch.device(device)
        self.to("cpu")
        self.transformer.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"),
                                              offload_type="block_level", num_blocks_per_group=blocks_per_group,
                                              use_stream=device.type == "cuda")
        self.execution_device = device
        return self

    def check_latent_shape(self, shape: tuple[int, ...] | torch.Size) -> tuple[int, int, int, int, int]:
        """Validate latents ``[B, C, T_l, h, w]`` against the configuration (channels, patch, positional tables)."""
        cfg = self.config
        shape = tuple(int(v) for v in shape)
        if len(shape) != 5 or shape[1] != cfg.latent_channels:
            raise DiffusionError(f"latents must be [B, {cfg.latent_channels}, T_l, h, w], got {list(shape)}")
        B, _, T, h, w = shape
        if any(n % p for n, p in zip((T, h, w), cfg.patch_size)):
            raise DiffusionError(f"latent size (T_l, h, w) = {(T, h, w)} must be a multiple of the patch size "
                                 f"{cfg.patch_size}")
        if any(n > m for n, m in zip((T, h, w), cfg.max_latent_size)):
            raise DiffusionError(f"latent size (T_l, h, w) = {(T, h, w)} exceeds the network's largest "
                                 f"{cfg.max_latent_size}")
        return shape  # type: ignore[return-value]

    def forward(self, x: Tensor, timestep: Tensor, text: Tensor, input_mask: Tensor,
                cache: Tensor | None = None) -> Tensor:
        """The raw network output F of the EDM parameterisation (x̂₀ = c_skip·x + c_out·F).

        Args:
            x: [B, C, T_l, h, w] preconditioned noisy latents c_in(σ)·x_σ.
            timestep: [B] or [] noise conditioning c_noise(σ) = ¼ ln σ.
            text: [B, L, text_dim] text embeddings (cross-attention; no mask, as officially).
            input_mask: [B, 1, T_l, h, w] 1 on the conditioned (first) latent frames, 0 elsewhere.
            cache: [B, 2·buffers·C, T_l, h, w] the cache latents in official order, or None for zeros (no cache:
                the unconditional branch).

        Returns:
            [B, C, T_l, h, w] in ``x``'s dtype.
        """
        cfg = self.config
        B, _, T, h, w = self.check_latent_shape(x.shape)
        if text.ndim != 3 or text.shape[0] not in (1, B) or text.shape[2] != cfg.text_dim:
            raise DiffusionError(f"text embeddings must be [B, L, {cfg.text_dim}], got {list(text.shape)}")
        if tuple(input_mask.shape) != (B, 1, T, h, w):
            raise DiffusionError(f"input_mask must be {[B, 1, T, h, w]}, got {list(input_mask.shape)}")
        if cache is not None and tuple(cache.shape) != (B, cfg.cache_channels, T, h, w):
            raise DiffusionError(f"cache must be {[B, cfg.cache_channels, T, h, w]}, got {list(cache.shape)}")
        dtype, device = self.dtype, self.device
        zeros = x.new_zeros((B, cfg.cache_channels, T, h, w), dtype=dtype, device=device)
        extra = torch.cat([input_mask.to(device, dtype), zeros if cache is None else cache.to(device, dtype),
                           x.new_zeros((B, 1, T, h, w), dtype=dtype, device=device)], dim=1)
        t = torch.as_tensor(timestep, device=device).to(dtype).reshape(-1).expand(B)
        out = self.transformer(x.to(device, dtype), t, text.to(device, dtype).expand(B, -1, -1), fps=cfg.fps,
                               condition_mask=extra, return_dict=False)[0]
        return out.to(x.dtype)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def save_pretrained(net: Gen3CNet, directory: str | os.PathLike) -> Path:
    """Write ``config.json`` (:class:`Gen3CNetConfig`) and ``model.safetensors`` (the transformer's tensors as stored,
    diffusers names) into ``directory``."""
    return save_weights_folder(directory, net.transformer.state_dict(), net.config.to_dict())


def from_pretrained(directory: str | os.PathLike, device: torch.device | str = "cpu",
                    dtype: torch.dtype | None = None) -> Gen3CNet:
    """Rebuild a network saved by :func:`save_pretrained` (built on the meta device, weights assigned strictly);
    ``dtype`` None keeps the stored one. Any problem raises DiffusionError naming the file."""
    config, state, source = read_weights_folder(directory, "diffusion network", DiffusionError)
    try:
        cfg = Gen3CNetConfig.from_dict(config, where="")
    except DiffusionError as exc:
        raise DiffusionError(Path(directory) / CONFIG_NAME, str(exc)) from exc
    dtype = dtype or next(iter(state.values())).dtype
    return with_weights(cfg, state, device, dtype, source, "its config.json")


def with_weights(config: Gen3CNetConfig, state: Mapping[str, Tensor], device: torch.device | str,
                 dtype: torch.dtype, source: str, what: str) -> Gen3CNet:
    """A network built on the meta device whose transformer takes ``state`` (diffusers names) strictly, each tensor
    moved to ``device`` in ``dtype`` one at a time (as the official bf16 inference: every tensor in one dtype, where
    diffusers would keep the positional tables in float32)."""
    with torch.device("meta"):
        net = Gen3CNet(config)
    net.to(dtype)  # nn.Module.to, not diffusers' (which warns about its float32 modules)
    state = {k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype) for k, v in state.items()}
    load_strict(net.transformer, state, source, error=DiffusionError, what=what, assign=True)
    return net.eval()
