"""The video tokenizer protocol: causal video autoencoders with 8x space / 8x time compression.

Every tokenizer in lyra (the native pocket VAE, the Cosmos TorchScript files, diffusers'
``AutoencoderKLCosmos``) exposes the same contract:

* ``encode(video)``: video ``[B, 3, T, H, W]`` in [-1, 1] -> raw latents ``[B, C, T_l, H/s, W/s]``
  with ``T_l = 1 + (T - 1) / k_t`` (causal: the first frame alone, then groups of ``k_t`` frames).
* ``decode(latents)``: the inverse, video in [-1, 1] (not clamped).
* ``latents_mean`` / ``latents_std``: ``[C, T_stats]`` per-(channel, latent frame) statistics; the
  diffusion-normalised form is ``(raw - mean) / std * sigma_data`` with ``sigma_data = 0.5``.

Latents in memory are always raw; the normalised form exists only on disk (design README §5).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lyra.errors import InputError

SIGMA_DATA = 0.5


class TokenizerError(InputError):
    """Bad input for a tokenizer (frame count, size, range, layout) or a missing/invalid checkpoint."""


def latent_frames(num_frames: int, temporal_compression: int = 8) -> int:
    """Latent frames of a causal tokenizer: ``1 + (T - 1) / k_t``; raises if ``T != 1 + k_t * n``."""
    k = int(temporal_compression)
    if num_frames < 1 or (num_frames - 1) % k != 0:
        lo = (max(num_frames - 1, 0) // k) * k + 1
        raise TokenizerError(
            f"a causal {k}x tokenizer takes 1 + {k}k frames (1, {1 + k}, {1 + 2 * k}, {1 + 3 * k}, ..., "
            f"{1 + 15 * k}); got {num_frames}; nearest accepted: {lo} or {lo + k}"
        )
    return 1 + (num_frames - 1) // k


def pixel_frames(num_latent_frames: int, temporal_compression: int = 8) -> int:
    """Pixel frames decoded from ``T_l`` latent frames: ``1 + k_t (T_l - 1)``."""
    if num_latent_frames < 1:
        raise TokenizerError(f"need at least one latent frame, got {num_latent_frames}")
    return 1 + int(temporal_compression) * (num_latent_frames - 1)


def stats_columns(stats: Tensor, channels: int, num_latent_frames: int) -> Tensor:
    """Per-(channel, latent frame) statistics for ``T_l`` latent frames, as ``[C, T_l]``.

    Robust reader (method.md §2.2): the stored values are viewed as ``(C, -1)`` whatever their
    shape (Cosmos ships 256 values = 16 channels x 16 latent frames) and the first ``T_l`` columns
    are kept. A 1-column (per-channel) table is broadcast to any ``T_l``.
    """
    s = torch.as_tensor(stats).reshape(channels, -1)
    if s.shape[1] == 1:
        return s.expand(channels, num_latent_frames)
    if num_latent_frames > s.shape[1]:
        raise TokenizerError(
            f"latent statistics cover {s.shape[1]} latent frames "
            f"({pixel_frames(s.shape[1])} pixel frames); got {num_latent_frames} latent frames. "
            "Normalise longer videos chunk by chunk."
        )
    return s[:, :num_latent_frames]


def _broadcast_stats(stats: Tensor, latents: Tensor) -> Tensor:
    """``[C, T_stats]`` -> broadcastable to latents ``[..., C, T_l, h, w]``."""
    if latents.ndim not in (4, 5):
        raise TokenizerError(f"latents must be [B, C, T_l, h, w] or [C, T_l, h, w], got {list(latents.shape)}")
    C, T_l = latents.shape[-4], latents.shape[-3]
    s = stats_columns(stats, C, T_l).to(device=latents.device, dtype=latents.dtype)
    return s[:, :, None, None]


def normalize_latents(raw: Tensor, mean: Tensor, std: Tensor, sigma_data: float = SIGMA_DATA) -> Tensor:
    """Raw latents ``[B, C, T_l, h, w]`` -> diffusion space ``(raw - mean[c, t]) / std[c, t] * sigma_data``."""
    return (raw - _broadcast_stats(mean, raw)) / _broadcast_stats(std, raw) * sigma_data


def denormalize_latents(norm: Tensor, mean: Tensor, std: Tensor, sigma_data: float = SIGMA_DATA) -> Tensor:
    """Inverse of :func:`normalize_latents`: ``norm / sigma_data * std[c, t] + mean[c, t]``."""
    return norm / sigma_data * _broadcast_stats(std, norm) + _broadcast_stats(mean, norm)


class VideoTokenizer:
    """Base class of every tokenizer; subclasses implement ``_encode`` and ``_decode``.

    Attributes:
        spatial_compression: pixels per latent pixel along H and W (8).
        temporal_compression: pixel frames per latent frame after the first (8).
        latent_channels: C (16).
        size_multiple: H and W must be multiples of this (>= spatial_compression).
    """

    spatial_compression: int = 8
    temporal_compression: int = 8
    latent_channels: int = 16
    size_multiple: int = 8

    # ------------------------------------------------------------------ to implement
    def _encode(self, video: Tensor) -> Tensor:  # [B, 3, T, H, W] -> [B, C, T_l, h, w]
        raise NotImplementedError

    def _decode(self, latents: Tensor) -> Tensor:  # [B, C, T_l, h, w] -> [B, 3, T, H, W]
        raise NotImplementedError

    @property
    def latents_mean(self) -> Tensor:
        """[C, T_stats] per-(channel, latent frame) mean of raw latents."""
        raise NotImplementedError

    @property
    def latents_std(self) -> Tensor:
        """[C, T_stats] per-(channel, latent frame) std of raw latents."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared
    def latent_frames(self, num_frames: int) -> int:
        return latent_frames(num_frames, self.temporal_compression)

    def pixel_frames(self, num_latent_frames: int) -> int:
        return pixel_frames(num_latent_frames, self.temporal_compression)

    def latent_shape(self, video_shape: tuple[int, ...] | torch.Size) -> tuple[int, int, int, int, int]:
        """``(B, C, T_l, h, w)`` for a video shape ``(B, 3, T, H, W)`` (validated)."""
        B, _, T, H, W = self.check_video_shape(video_shape)
        s = self.spatial_compression
        return (B, self.latent_channels, self.latent_frames(T), H // s, W // s)

    def check_video_shape(self, shape: tuple[int, ...] | torch.Size) -> tuple[int, int, int, int, int]:
        """Validate ``[B, 3, T, H, W]`` with T = 1 + k_t n and H, W multiples of ``size_multiple``."""
        shape = tuple(int(v) for v in shape)
        if len(shape) != 5 or shape[1] != 3:
            raise TokenizerError(f"video must be [B, 3, T, H, W] (channels first, RGB), got {list(shape)}")
        B, _, T, H, W = shape
        self.latent_frames(T)
        m = self.size_multiple
        if H < m or W < m or H % m or W % m:
            raise TokenizerError(
                f"video height and width must be positive multiples of {m}; got {H}x{W} "
                f"(e.g. {max(m, H // m * m)}x{max(m, W // m * m)} by cropping)"
            )
        return shape  # type: ignore[return-value]

    def encode(self, video: Tensor) -> Tensor:
        """Video ``[B, 3, T, H, W]`` in [-1, 1] -> raw latents ``[B, C, 1 + (T-1)/k_t, H/s, W/s]``."""
        if not isinstance(video, Tensor) or not video.is_floating_point():
            raise TokenizerError("video must be a floating point torch tensor in [-1, 1]")
        self.check_video_shape(video.shape)
        if video.numel() and (video.min() < -1.5 or video.max() > 1.5):
            raise TokenizerError(
                f"video values must be in [-1, 1] (got [{float(video.min()):.3g}, {float(video.max()):.3g}]); "
                "map images in [0, 1] with x * 2 - 1"
            )
        return self._encode(video)

    def decode(self, latents: Tensor) -> Tensor:
        """Raw latents ``[B, C, T_l, h, w]`` -> video ``[B, 3, 1 + k_t (T_l - 1), h s, w s]`` in ~[-1, 1]."""
        if not isinstance(latents, Tensor) or latents.ndim != 5 or latents.shape[1] != self.latent_channels:
            shape = list(latents.shape) if isinstance(latents, Tensor) else type(latents).__name__
            raise TokenizerError(f"latents must be [B, {self.latent_channels}, T_l, h, w], got {shape}")
        m = self.size_multiple // self.spatial_compression
        if latents.shape[-2] % m or latents.shape[-1] % m:
            raise TokenizerError(f"latent height and width must be multiples of {m}, got {list(latents.shape)}")
        return self._decode(latents)

    def normalize_latents(self, raw: Tensor) -> Tensor:
        """Raw latents -> diffusion space ``(raw - mean) / std * 0.5`` (first ``T_l`` stats columns)."""
        return normalize_latents(raw, self.latents_mean, self.latents_std)

    def denormalize_latents(self, norm: Tensor) -> Tensor:
        """Diffusion-space latents -> raw latents."""
        return denormalize_latents(norm, self.latents_mean, self.latents_std)

    def reconstruct(self, video: Tensor) -> Tensor:
        """``decode(encode(video))``, no gradients."""
        with torch.no_grad():
            return self.decode(self.encode(video))
