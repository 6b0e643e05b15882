"""DecoderConfig: every architectural and activation constant of the latent 3DGS decoder, with presets."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from lyra.errors import InputError
from lyra.utils.inputs import read_json
from lyra.utils.typed import coerce_instance, from_plain


class DecoderConfigError(InputError):
    """Raised for an inconsistent decoder configuration."""


def expand_pattern(pattern: str, depth: int) -> str:
    """Block types as a string of ``M`` (Mamba-2) / ``T`` (transformer), one letter per block.

    ``pattern`` is either run-length shorthand (``"7M1T"``) or explicit letters (``"MMMT"``); it is repeated
    to ``depth`` blocks (``depth`` must be a multiple of its length). ``"7M1T"`` at depth 16 gives the official
    order M×7 T M×7 T.
    """
    s = pattern.replace(" ", "").upper()
    if not re.fullmatch(r"(\d*[MT])+", s):
        raise DecoderConfigError(f"block pattern {pattern!r}: use letters M/T with optional counts, e.g. '7M1T'")
    unit = "".join(letter * int(count or 1) for count, letter in re.findall(r"(\d*)([MT])", s))
    if not unit or depth <= 0 or depth % len(unit):
        raise DecoderConfigError(f"depth {depth} is not a positive multiple of the block pattern {pattern!r} ({unit})")
    return unit * (depth // len(unit))


@dataclass
class DecoderConfig:
    """Latent 3DGS decoder configuration (method §3; names in brackets are the official config keys).

    Architecture:
        width: token width D [enc_embed_dim].
        depth: number of residual blocks [enc_depth].
        block_pattern: "7M1T"-style shorthand or explicit M/T letters, repeated to ``depth``.
        latent_channels: tokenizer latent channels C_l [num_latent_c].
        plucker_channels: channels of the tokenizer-encoded Plücker map (two encoded halves, 2·C_l).
        time_channels: channels of the tokenizer-encoded time map.
        patch_size / patch_size_temporal: spatial / temporal patch of the embeddings.
        mamba_*: Mamba-2 mixer sizes; d_inner = expand·width, heads = d_inner / headdim.
        mamba_chunk_size: chunk length of the state-space-duality scan (numerics only, not the result).
        attn_heads, mlp_ratio: transformer block sizes.
        deconv_kernel / deconv_stride / deconv_padding: the ConvTranspose3d output head (t, h, w).
        gaussian_channels: raw channels per Gaussian (distance 1, colour 3, scale 3, rotation 4, opacity 1).

    Gaussian activation (§3.4):
        distance_shift: added before the sigmoid of the ray distance [pre_sigmoid_distance_shift].
        dnear, dfar: distance range (scene units).
        opacity_shift: added before the opacity sigmoid.
        scale_cap: scales are min(exp(raw - (1 - ln cap)), cap) [gaussian_scale_cap].

    Behaviour:
        use_time: add the time conditioning (dynamic model); the time modules exist either way.
        gradient_checkpointing: recompute blocks in backward (torch.utils.checkpoint, non-reentrant).
        prune_ratio: fraction of the fused Gaussians dropped by opacity rank after the forward (§4.1).
    """

    width: int = 512
    depth: int = 16
    block_pattern: str = "7M1T"
    latent_channels: int = 16
    plucker_channels: int = 32
    time_channels: int = 16
    patch_size: int = 2
    patch_size_temporal: int = 1
    mamba_d_state: int = 256
    mamba_expand: int = 2
    mamba_headdim: int = 64
    mamba_ngroups: int = 1
    mamba_d_conv: int = 4
    mamba_chunk_size: int = 256
    attn_heads: int = 8
    mlp_ratio: float = 4.0
    deconv_kernel: tuple[int, int, int] = (9, 2, 2)
    deconv_stride: tuple[int, int, int] = (8, 2, 2)
    deconv_padding: tuple[int, int, int] = (4, 0, 0)
    gaussian_channels: int = 12
    distance_shift: float = -1.65
    dnear: float = 0.1
    dfar: float = 500.0
    opacity_shift: float = -2.0
    scale_cap: float = 0.3
    use_time: bool = False
    gradient_checkpointing: bool = False
    prune_ratio: float = 0.0

    def __post_init__(self) -> None:
        # types first (a string width would otherwise fail inside validate() as a TypeError); lists -> tuples
        coerce_instance(self, DecoderConfigError)
        self.validate()

    # ------------------------------------------------------------------ derived sizes
    @property
    def blocks(self) -> str:
        """One letter per block: ``M`` Mamba-2, ``T`` transformer."""
        return expand_pattern(self.block_pattern, self.depth)

    @property
    def d_inner(self) -> int:
        return self.mamba_expand * self.width

    @property
    def mamba_heads(self) -> int:
        return self.d_inner // self.mamba_headdim

    @property
    def mlp_hidden(self) -> int:
        return int(self.width * self.mlp_ratio)

    def num_frames(self, latent_frames: int) -> int:
        """Video frames T decoded from ``latent_frames`` latent frames (17 / 49 / 121 for 3 / 7 / 16 officially)."""
        tokens_t = latent_frames // self.patch_size_temporal
        k, s, p = self.deconv_kernel[0], self.deconv_stride[0], self.deconv_padding[0]
        return (tokens_t - 1) * s - 2 * p + k

    def validate(self) -> DecoderConfig:
        """Check divisibilities and ranges; raise DecoderConfigError with the offending field."""
        sizes = ("width", "depth", "latent_channels", "plucker_channels", "time_channels", "mamba_d_state",
                 "mamba_expand", "mamba_headdim", "mamba_ngroups", "attn_heads", "mlp_ratio")
        bad = [f"{n}={getattr(self, n)}" for n in sizes if not getattr(self, n) > 0]
        if bad:
            raise DecoderConfigError(f"DecoderConfig: sizes must be > 0, got {', '.join(bad)}")
        _ = self.blocks
        checks = [
            (self.d_inner % self.mamba_headdim == 0, "mamba_expand*width must be divisible by mamba_headdim"),
            (self.mamba_heads % self.mamba_ngroups == 0, "Mamba heads must be divisible by mamba_ngroups"),
            (self.width % self.attn_heads == 0, "width must be divisible by attn_heads"),
            (self.mamba_chunk_size > 0 and self.mamba_d_conv > 0, "mamba_chunk_size and mamba_d_conv must be > 0"),
            (self.patch_size > 0 and self.patch_size_temporal > 0, "patch sizes must be > 0"),
            (self.gaussian_channels == 12, "gaussian_channels must be 12 (distance, colour, scale, rotation, opacity)"),
            (0.0 <= self.prune_ratio < 1.0, "prune_ratio must lie in [0, 1)"),
            (0.0 < self.dnear < self.dfar, "need 0 < dnear < dfar"),
            (self.scale_cap > 0.0, "scale_cap must be > 0"),
            (self.deconv_stride[1:] == (self.patch_size,) * 2 == self.deconv_kernel[1:] and self.deconv_padding[1:]
             == (0, 0), "spatial deconv kernel and stride must equal patch_size (padding 0) to restore latent size"),
        ]
        for ok, msg in checks:
            if not ok:
                raise DecoderConfigError(f"DecoderConfig: {msg}")
        return self

    @property
    def scale_log_offset(self) -> float:
        """1 - ln(scale_cap): scales are exp(raw - offset) capped at scale_cap (0.3·e^(raw-1) officially)."""
        return 1.0 - math.log(self.scale_cap)

    # ------------------------------------------------------------------ presets
    @classmethod
    def official(cls, use_time: bool = False, **overrides: Any) -> DecoderConfig:
        """The released model (§3): 512 wide, 16 blocks 7M1T, d_state 256, 32,753,996 parameters.

        ``use_time=True`` for ``lyra_dynamic.pt`` (same keys; enables the time conditioning).
        """
        return cls(use_time=use_time, **overrides)

    @classmethod
    def pocket(cls, use_time: bool = False, **overrides: Any) -> DecoderConfig:
        """CPU scale: 128 wide, 8 blocks ("3M1T" twice), d_state 32, headdim 32, 4 attention heads (≈1.2 M params)."""
        base = dict(width=128, depth=8, block_pattern="3M1T", mamba_d_state=32, mamba_headdim=32,
                    mamba_chunk_size=64, attn_heads=4)
        base.update(overrides)
        return cls(use_time=use_time, **base)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for name in ("deconv_kernel", "deconv_stride", "deconv_padding"):
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "DecoderConfig") -> DecoderConfig:
        """Strict: unknown keys, wrong types and inconsistent values raise DecoderConfigError naming ``where``."""
        return from_plain(cls, d, where, DecoderConfigError)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DecoderConfig:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> DecoderConfig:
        """Read ``config.json``; any problem raises DecoderConfigError naming the file."""
        data = read_json(path, "decoder config.json", DecoderConfigError)
        try:
            return cls.from_dict(data, where="")
        except DecoderConfigError as exc:
            raise DecoderConfigError(path, str(exc).removeprefix("DecoderConfig: ")) from exc

    def replace(self, **changes: Any) -> DecoderConfig:
        """A copy with some fields changed (validated)."""
        return replace(self, **changes)
