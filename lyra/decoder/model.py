"""LyraDecoder: tokenizer latents (+ Plücker and time conditioning) of V trajectories -> one fused Gaussian set.

Pipeline (method §3): per-trajectory patch embedding (+ zero-initialised Plücker / time embeddings) -> the tokens of
all trajectories concatenated into one sequence -> residual Mamba-2 / transformer blocks -> LayerNorm -> split back
-> ConvTranspose3d to 12 channels per video frame and latent pixel -> Gaussians placed on the latent-resolution
pixel rays -> all trajectories fused -> optional opacity-rank pruning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from lyra.cameras import Cameras, camera_rays
from lyra.decoder.activation import activate, prune_records, records_to_gaussians
from lyra.decoder.blocks import MambaBlock, TransformerBlock
from lyra.decoder.config import DecoderConfig
from lyra.decoder.embed import PatchEmbed3d
from lyra.gaussians import Gaussians


class DecoderInputError(ValueError):
    """Raised for decoder inputs whose shapes do not fit the configuration."""


@dataclass
class DecoderOutput:
    """Decoder result.

    Attributes:
        gaussians: one fused (and possibly pruned) Gaussian set per batch element; tensors are views of ``records``.
        records: [B, N, 14] float32 activated records x, y, z, opacity, sx, sy, sz, qw, qx, qy, qz, r, g, b
            (the official layout), N = V·T·h·w before pruning.
    """

    gaussians: list[Gaussians]
    records: Tensor


def latent_rays(cameras: Cameras, factor: int = 8) -> tuple[Tensor, Tensor]:
    """Decoder placement rays for one sample: origins and unit directions, each [1, N, 3, H/factor, W/factor].

    ``cameras`` holds the N = V·T video frames, trajectory-major, at image size H×W (multiples of ``factor``); the
    rays pass through full-resolution pixel positions factor·i + factor/2 (method §2.4).
    """
    if cameras.height % factor or cameras.width % factor:
        raise DecoderInputError(f"image size {cameras.height}x{cameras.width} is not a multiple of {factor}")
    o, d = camera_rays(cameras, cameras.height // factor, cameras.width // factor)
    return o[None], d[None]


class LyraDecoder(nn.Module):
    """The latent 3DGS decoder; module and parameter names equal the official checkpoint keys (method §11)."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.config = cfg = config.validate()
        D = cfg.width
        patch = (cfg.patch_size_temporal, cfg.patch_size, cfg.patch_size)
        blocks: list[nn.Module] = []
        for kind in cfg.blocks:
            if kind == "M":
                blocks.append(MambaBlock(D, cfg.mamba_d_state, cfg.mamba_expand, cfg.mamba_headdim,
                                         cfg.mamba_ngroups, cfg.mamba_d_conv, cfg.mamba_chunk_size))
            else:
                blocks.append(TransformerBlock(D, cfg.attn_heads, cfg.mlp_hidden))
        self.enc_blocks = nn.ModuleList(blocks)
        self.enc_norm = nn.LayerNorm(D, eps=1e-6)
        self.patch_embed = PatchEmbed3d(cfg.latent_channels, D, patch)
        self.patch_plucker_embed = PatchEmbed3d(cfg.plucker_channels, D, patch, zero_init=True)
        self.patch_time_embed = PatchEmbed3d(cfg.time_channels, D, patch, zero_init=True)
        self.patch_time_embed_tgt = PatchEmbed3d(cfg.time_channels, D, patch, zero_init=True)
        self.deconv = nn.ConvTranspose3d(D, cfg.gaussian_channels, kernel_size=cfg.deconv_kernel,
                                         stride=cfg.deconv_stride, padding=cfg.deconv_padding)
        self.apply(_init_linear_and_layernorm)

    # ------------------------------------------------------------------ properties
    @property
    def dtype(self) -> torch.dtype:
        return self.enc_norm.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.enc_norm.weight.device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        latents: Tensor,  # [B, V·T_l, C, h, w]
        plucker: Tensor,  # [B, V·T_l, plucker_channels, h, w]
        rays_o: Tensor,  # [B, V·T, 3, h, w]
        rays_d: Tensor,  # [B, V·T, 3, h, w]
        num_views: int = 1,
        time: Tensor | None = None,  # [B, T_l + 1, time_channels, h, w]
        prune_ratio: float | None = None,
    ) -> DecoderOutput:
        """Decode the latents of ``num_views`` trajectories (trajectory-major along axis 1) into Gaussians.

        Args:
            latents: raw tokenizer latents; h, w divisible by patch_size.
            plucker: tokenizer-encoded Plücker maps ([o×d half, d half] concatenated on channels).
            rays_o, rays_d: world ray origins / unit directions at latent resolution for each video frame
                (``lyra.cameras.camera_rays(cams, H // 8, W // 8)``), T = ``config.num_frames(T_l)``.
            num_views: V, the number of trajectories.
            time: tokenizer-encoded time maps, the T_l input frames then the target frame
                (``lyra.train.conditioning.encode_time``); used when ``config.use_time`` (required then), ignored
                otherwise. The same for every trajectory.
            prune_ratio: overrides ``config.prune_ratio``.

        Returns:
            DecoderOutput with B fused Gaussian sets of V·T·h·w Gaussians each (fewer after pruning).
        """
        cfg = self.config
        B, T_l, h, w, V = self._check_inputs(latents, plucker, rays_o, rays_d, num_views, time)
        dt = self.dtype
        tokens = self._embed(latents.to(dt), plucker.to(dt), None if time is None else time.to(dt), V)
        tokens = self._run_blocks(tokens.reshape(B, -1, cfg.width))
        tokens = tokens.reshape(B * V, -1, cfg.width)
        if self._checkpointing():
            records = checkpoint(self._head, tokens, rays_o, rays_d, T_l, h, w, use_reentrant=False)
        else:
            records = self._head(tokens, rays_o, rays_d, T_l, h, w)
        records = records.reshape(B, -1, records.shape[-1])
        ratio = cfg.prune_ratio if prune_ratio is None else prune_ratio
        if ratio > 0:
            records = prune_records(records, ratio)
        return DecoderOutput(gaussians=[records_to_gaussians(r) for r in records], records=records)

    def _check_inputs(self, latents: Tensor, plucker: Tensor, rays_o: Tensor, rays_d: Tensor, V: int,
                      time: Tensor | None) -> tuple[int, int, int, int, int]:
        cfg = self.config
        if latents.ndim != 5 or latents.shape[2] != cfg.latent_channels:
            raise DecoderInputError(
                f"latents must be [B, V·T_l, {cfg.latent_channels}, h, w], got {list(latents.shape)}")
        B, VT, _, h, w = latents.shape
        if V < 1 or VT % V:
            raise DecoderInputError(f"latents have {VT} frames on axis 1, not a multiple of num_views={V}")
        T_l = VT // V
        p, pt = cfg.patch_size, cfg.patch_size_temporal
        if h % p or w % p or T_l % pt:
            raise DecoderInputError(f"latent grid T_l={T_l}, {h}x{w} must be divisible by patch ({pt}, {p}, {p})")
        if tuple(plucker.shape) != (B, VT, cfg.plucker_channels, h, w):
            raise DecoderInputError(f"plucker must be {[B, VT, cfg.plucker_channels, h, w]}, got {list(plucker.shape)}")
        T = cfg.num_frames(T_l)
        for name, r in (("rays_o", rays_o), ("rays_d", rays_d)):
            if tuple(r.shape) != (B, V * T, 3, h, w):
                raise DecoderInputError(
                    f"{name} must be {[B, V * T, 3, h, w]} (T = {T} frames for T_l = {T_l}), got {list(r.shape)}")
        if cfg.use_time:
            if time is None:
                raise DecoderInputError("config.use_time is set: pass time [B, T_l + 1, C_t, h, w]")
            if tuple(time.shape) != (B, T_l + 1, cfg.time_channels, h, w):
                raise DecoderInputError(f"time must be {[B, T_l + 1, cfg.time_channels, h, w]}, got {list(time.shape)}")
        return B, T_l, h, w, V

    def _checkpointing(self) -> bool:
        return self.config.gradient_checkpointing and self.training and torch.is_grad_enabled()

    def _embed(self, latents: Tensor, plucker: Tensor, time: Tensor | None, V: int) -> Tensor:
        """-> [B·V, N, D] tokens of each trajectory (N = T_l·h·w / patch volume)."""
        B, VT, C, h, w = latents.shape
        T_l = VT // V
        tokens = self.patch_embed(latents.reshape(B * V, T_l, C, h, w))
        tokens = tokens + self.patch_plucker_embed(plucker.reshape(B * V, T_l, -1, h, w))
        if self.config.use_time and time is not None:
            target = time[:, T_l:].expand(-1, T_l, -1, -1, -1)
            t_emb = self.patch_time_embed(time[:, :T_l]) + self.patch_time_embed_tgt(target)  # [B, N, D]
            tokens = tokens + t_emb.repeat_interleave(V, dim=0)
        return tokens

    def _run_blocks(self, x: Tensor) -> Tensor:
        """[B, V·N, D] -> [B, V·N, D] through all blocks and the final norm."""
        ckpt = self._checkpointing()
        for block in self.enc_blocks:
            x = checkpoint(block, x, use_reentrant=False) if ckpt else block(x)
        return self.enc_norm(x)

    def _head(self, tokens: Tensor, rays_o: Tensor, rays_d: Tensor, T_l: int, h: int, w: int) -> Tensor:
        """[B·V, N, D] tokens -> [B·V, T·h·w, 14] float32 records (deconv + activation on the rays)."""
        cfg = self.config
        n = tokens.shape[0]
        p, pt = cfg.patch_size, cfg.patch_size_temporal
        grid = tokens.transpose(1, 2).reshape(n, cfg.width, T_l // pt, h // p, w // p)
        raw = self.deconv(grid)  # [B·V, 12, T, h, w]
        T = raw.shape[2]
        raw = raw.permute(0, 2, 3, 4, 1).reshape(n, T * h * w, -1)

        def flat(r: Tensor) -> Tensor:
            return r.reshape(n, T, 3, h, w).permute(0, 1, 3, 4, 2).reshape(n, T * h * w, 3)

        return activate(raw, flat(rays_o), flat(rays_d), cfg)

    # ------------------------------------------------------------------ static -> dynamic
    def with_time_conditioning(self) -> LyraDecoder:
        """A dynamic copy of this decoder (``config.use_time=True``), the start of dynamic training (method §7.1:
        stage 8 branches from the static multi-trajectory stage).

        Every weight is copied; ``patch_time_embed`` and ``patch_time_embed_tgt`` are re-initialised (zero
        convolutions, LayerNorm weight 1 and bias 0), so their tokens are exactly 0 and the copy gives this decoder's
        Gaussians bit for bit, whatever the times (§3.1). A static checkpoint's time modules are unused and normally
        zero already; re-initialising makes the guarantee independent of where the weights came from.
        """
        with torch.device("meta"):
            new = type(self)(self.config.replace(use_time=True))
        new = new.to_empty(device=self.device).to(self.dtype)
        new.load_state_dict(self.state_dict())
        with torch.no_grad():
            new.patch_time_embed.reset_parameters()
            new.patch_time_embed_tgt.reset_parameters()
        return new.train(self.training)

    # ------------------------------------------------------------------ loading / saving
    @classmethod
    def from_official(cls, path: str | os.PathLike, config: DecoderConfig | None = None,
                      device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> LyraDecoder:
        """Build the official architecture and load ``lyra_static.pt`` / ``lyra_dynamic.pt`` strictly.

        ``config`` defaults to ``DecoderConfig.official(use_time=...)`` with time conditioning on when the file
        name contains "dynamic".
        """
        from lyra.decoder.checkpoint import load_into, load_official_checkpoint

        state = load_official_checkpoint(path)
        if config is None:
            config = DecoderConfig.official(use_time="dynamic" in Path(path).name.lower())
        with torch.device("meta"):
            model = cls(config)
        model = model.to_empty(device=device).to(dtype)
        load_into(model, state, source=str(path))
        return model

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``."""
        from lyra.decoder.checkpoint import save_pretrained

        save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: torch.device | str = "cpu",
                        dtype: torch.dtype | None = None) -> LyraDecoder:
        """Rebuild from ``config.json`` + ``model.safetensors`` (weights' dtype unless ``dtype`` is given)."""
        from lyra.decoder.checkpoint import from_pretrained

        return from_pretrained(cls, directory, device=device, dtype=dtype)


@torch.no_grad()
def _init_linear_and_layernorm(m: nn.Module) -> None:
    """Method §3.2: Linear trunc-normal(0.02) with zero bias; LayerNorm weight 1, bias 0."""
    if isinstance(m, nn.Linear) and not m.weight.is_meta:
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm) and not m.weight.is_meta:
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
