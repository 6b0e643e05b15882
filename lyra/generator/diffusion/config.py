"""Gen3CNetConfig: every size of the GEN3C camera-conditioned video DiT, with the official 7B and a tiny preset."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

from lyra.generator.base import GeneratorError
from lyra.utils.inputs import read_json
from lyra.utils.typed import coerce_instance, from_plain


class DiffusionError(GeneratorError):
    """Bad input for the diffusion teacher: a configuration, a tensor shape, a weights file."""


CACHE_FILLS = ("black", "inpaint")  # what a rendered-cache buffer holds in its holes (Gen3CNetConfig.cache_fill)


@dataclass
class Gen3CNetConfig:
    """The Cosmos-1 Video2World DiT as GEN3C uses it (gen3c-official-inference.md §2).

    The network input per latent position is, along channels (the official order):
    noisy latents (``latent_channels``) ‖ first-frame condition mask (1) ‖ ``cache_buffers`` × (rendered-cache
    latents, encoded cache masks) (``2 · cache_buffers · latent_channels``) ‖ padding mask (1, all zero) — 82 channels
    officially (``in_channels`` 81 + the padding mask).

    Attributes:
        latent_channels: tokenizer latent channels C (16).
        cache_buffers: 3D-cache buffers the network takes (2); a missing buffer is zero latents.
        num_layers, num_heads, head_dim: transformer depth, attention heads and head width (28 / 32 / 128).
        mlp_ratio: feed-forward hidden width / model width.
        text_dim: width of the text embeddings the cross-attention reads (T5-11B: 1024).
        text_tokens: length of the precomputed text embeddings (512).
        adaln_lora_dim: hidden width of the AdaLN-LoRA modulation.
        max_latent_size: largest (T_l, h, w) in latent units (the learnable positional tables, 128 / 240 / 240).
        patch_size: (t, h, w) patch of the patch embedding.
        rope_scale: NTK extrapolation ratios of the 3D RoPE (t, h, w).
        qk_norm_eps: epsilon of the per-head q/k RMSNorm (Transformer Engine's 1e-6 officially; diffusers builds 1e-5).
        fps: frame rate the RoPE time axis is conditioned on (24: positions scale by 24/fps).
        learnable_pos_embed: add the learnable per-axis positional tables at each block (official); False keeps
            the 3D RoPE alone, so a network trained on crops samples whole frames (pocket).
        tokenizer: the tokenizer whose latents the network samples (e.g. ``pocket-v2``; None: not recorded, as
            the official weights, which sample Cosmos-Tokenize1-CV8x8x8-720p latents).
        cache_fill: what the rendered-cache buffer holds in its holes: ``"black"`` (official: uncovered pixels
            are black, the mask latents say where) or ``"inpaint"`` (the holes filled by push-pull inpainting,
            :func:`lyra.cache3d.inpaint`, the mask latents unchanged): a pocket-scale choice, made by the data the
            network was trained on (``lyra teacher data --cache-fill``).
    """

    latent_channels: int = 16
    cache_buffers: int = 2
    num_layers: int = 28
    num_heads: int = 32
    head_dim: int = 128
    mlp_ratio: float = 4.0
    text_dim: int = 1024
    text_tokens: int = 512
    adaln_lora_dim: int = 256
    max_latent_size: tuple[int, int, int] = (128, 240, 240)
    patch_size: tuple[int, int, int] = (1, 2, 2)
    rope_scale: tuple[float, float, float] = (2.0, 1.0, 1.0)
    qk_norm_eps: float = 1e-6
    fps: float = 24.0
    learnable_pos_embed: bool = True
    tokenizer: str | None = None
    cache_fill: str = "black"

    def __post_init__(self) -> None:
        coerce_instance(self, DiffusionError)
        self.validate()

    # ------------------------------------------------------------------ derived sizes
    @property
    def width(self) -> int:
        """Model width D = heads · head_dim (4096)."""
        return self.num_heads * self.head_dim

    @property
    def cache_channels(self) -> int:
        """Channels of the cache condition: 2 · buffers · C (64)."""
        return 2 * self.cache_buffers * self.latent_channels

    @property
    def in_channels(self) -> int:
        """Channels before the padding mask: C + 1 + cache channels (81)."""
        return self.latent_channels + 1 + self.cache_channels

    @property
    def rope_dims(self) -> tuple[int, int, int]:
        """Per-head RoPE widths (t, h, w): h = w = head_dim // 6 · 2, t the rest (44 / 42 / 42)."""
        hw = self.head_dim // 6 * 2
        return self.head_dim - 2 * hw, hw, hw

    def validate(self) -> Gen3CNetConfig:
        """Check sizes; raise DiffusionError naming the field."""
        sizes = ("latent_channels", "num_layers", "num_heads", "head_dim", "mlp_ratio", "text_dim", "text_tokens",
                 "adaln_lora_dim", "qk_norm_eps", "fps")
        bad = [f"{n}={getattr(self, n)}" for n in sizes if not getattr(self, n) > 0]
        bad += [f"{n}={getattr(self, n)}" for n in ("max_latent_size", "patch_size", "rope_scale")
                if not all(v > 0 for v in getattr(self, n))]
        if self.cache_buffers < 0:
            bad.append(f"cache_buffers={self.cache_buffers}")
        if self.cache_fill not in CACHE_FILLS:
            raise DiffusionError(f"Gen3CNetConfig: cache_fill must be one of {', '.join(CACHE_FILLS)}, got "
                                 f"{self.cache_fill!r}")
        if bad:
            raise DiffusionError(f"Gen3CNetConfig: sizes must be > 0, got {', '.join(bad)}")
        if min(self.rope_dims) <= 2 or any(d % 2 for d in self.rope_dims):
            raise DiffusionError(f"Gen3CNetConfig: head_dim {self.head_dim} gives RoPE widths (t, h, w) "
                                 f"{self.rope_dims}; each must be even and > 2 (e.g. head_dim 24, 48, 128)")
        if any(m % p for m, p in zip(self.max_latent_size, self.patch_size)):
            raise DiffusionError(f"Gen3CNetConfig: max_latent_size {self.max_latent_size} must be a multiple of "
                                 f"patch_size {self.patch_size}")
        return self

    # ------------------------------------------------------------------ presets
    @classmethod
    def official(cls, **overrides: Any) -> Gen3CNetConfig:
        """GEN3C-Cosmos-7B: Cosmos-1 7B Video2World with 81 (+1) input channels, 28 blocks of width 4096."""
        return cls(**overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> Gen3CNetConfig:
        """A random-weight test size (2 blocks of width 48, 4 latent channels, 8 text tokens of width 16)."""
        base: dict[str, Any] = dict(latent_channels=4, num_layers=2, num_heads=2, head_dim=24, text_dim=16,
                                    text_tokens=8, adaln_lora_dim=8, max_latent_size=(8, 16, 16))
        base.update(overrides)
        return cls(**base)

    @classmethod
    def pocket(cls, **overrides: Any) -> Gen3CNetConfig:
        """CPU scale, trained here on the pocket-v2 tokenizer's latents: 6 blocks of width 192 (4 heads of 48), one
        cache buffer, one zero text token of width 16, RoPE only (trained on crops, samples whole frames);
        ≈ 3.8 M parameters."""
        base: dict[str, Any] = dict(latent_channels=16, cache_buffers=1, num_layers=6, num_heads=4, head_dim=48,
                                    text_dim=16, text_tokens=1, adaln_lora_dim=32, max_latent_size=(32, 64, 64),
                                    learnable_pos_embed=False, tokenizer="pocket-v2")
        base.update(overrides)
        return cls(**base)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "Gen3CNetConfig") -> Gen3CNetConfig:
        """Strict: unknown keys, wrong types and inconsistent values raise DiffusionError naming ``where``."""
        return from_plain(cls, d, where, DiffusionError)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Gen3CNetConfig:
        """Read a ``config.json``; any problem raises DiffusionError naming the file."""
        data = read_json(path, "diffusion network config.json", DiffusionError)
        try:
            return cls.from_dict(data, where="")
        except DiffusionError as exc:
            raise DiffusionError(path, str(exc)) from exc

    def replace(self, **changes: Any) -> Gen3CNetConfig:
        """A copy with some fields changed (validated)."""
        return replace(self, **changes)
