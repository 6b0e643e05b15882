"""What one sampling chunk is conditioned on: the first-frame latent, the 3D-cache latents, the two text embeddings.

All latents here are in diffusion space, ``0.5 · (z − μ[c, t]) / σ[c, t]`` (``tokenizer.normalize_latents``), as the
official model reads them (gen3c-official-inference.md §4, sdg.md §2.1):

* first frame: the condition image followed by mid-grey frames (0 in [-1, 1]) to the chunk's length, encoded as one
  clip; only its first ``num_condition`` latent frames are used (the causal encoder makes latent 0 depend on
  pixel frame 0 alone);
* cache: per buffer, the render video (holes black, −1 in [-1, 1]; or, for a network with ``cache_fill =
  "inpaint"``, holes filled by push-pull) and its coverage mask (as a 3-channel video, 1 → +1, 0 → −1), each encoded
  by the same tokenizer; order [render₀, mask₀, render₁, mask₁]; missing buffers are zero latents.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lyra.generator.diffusion.config import CACHE_FILLS, DiffusionError
from lyra.generator.diffusion.text import PromptEmbeddings
from lyra.tokenizer import VideoTokenizer


@dataclass
class Conditioning:
    """The inputs of one chunk's sampling besides the noise.

    Attributes:
        condition_latent: [B, C, T_l, h, w] diffusion-space latents of the condition clip.
        cache: [B, 2·buffers·C, T_l, h, w] diffusion-space cache latents (official order).
        text: [1 or B, L, D] embeddings of the prompt (the conditional branch).
        negative_text: [1 or B, L, D] embeddings of the negative prompt (the unconditional branch).
        num_condition: latent frames taken from ``condition_latent`` (1: the first frame).
    """

    condition_latent: Tensor  # [B, C, T_l, h, w]
    cache: Tensor  # [B, 2·buffers·C, T_l, h, w]
    text: Tensor  # [1 or B, L, D]
    negative_text: Tensor  # [1 or B, L, D]
    num_condition: int = 1

    def __post_init__(self) -> None:
        z = self.condition_latent
        if z.ndim != 5:
            raise DiffusionError(f"condition_latent must be [B, C, T_l, h, w], got {list(z.shape)}")
        B, _, T, h, w = z.shape
        if self.cache.ndim != 5 or (self.cache.shape[0], *self.cache.shape[2:]) != (B, T, h, w):
            raise DiffusionError(f"cache must be [{B}, channels, {T}, {h}, {w}], got {list(self.cache.shape)}")
        for name in ("text", "negative_text"):
            e = getattr(self, name)
            if e.ndim != 3 or e.shape[0] not in (1, B):
                raise DiffusionError(f"{name} must be [1 or {B}, L, D], got {list(e.shape)}")
        if not 0 <= self.num_condition <= T:
            raise DiffusionError(f"num_condition must lie in [0, {T}], got {self.num_condition}")

    def to(self, device: torch.device | str) -> Conditioning:
        """The same conditioning with every tensor on ``device`` (float32)."""
        return Conditioning(*(getattr(self, n).to(device, torch.float32)
                              for n in ("condition_latent", "cache", "text", "negative_text")), self.num_condition)

    @property
    def indicator(self) -> Tensor:
        """[1, 1, T_l, 1, 1]: 1 on the conditioned latent frames."""
        T = self.condition_latent.shape[2]
        return (torch.arange(T, device=self.condition_latent.device) < self.num_condition).float().view(1, 1, T, 1, 1)

    @property
    def input_mask(self) -> Tensor:
        """[B, 1, T_l, h, w]: the network's first-frame mask channel (the same in both guidance branches)."""
        B, _, T, h, w = self.condition_latent.shape
        return self.indicator.expand(B, 1, T, h, w)


def encode_video(tokenizer: VideoTokenizer, frames: Tensor) -> Tensor:
    """Frames [T, 3, H, W] in [0, 1] -> diffusion-space latents [1, C, T_l, h, w] (float32)."""
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise DiffusionError(f"frames must be [T, 3, H, W], got {list(frames.shape)}")
    x = frames.permute(1, 0, 2, 3)[None].float() * 2 - 1
    with torch.no_grad():
        return tokenizer.normalize_latents(tokenizer.encode(x).float())


def condition_clip(image: Tensor, frames: int) -> Tensor:
    """The condition clip [frames, 3, H, W] in [0, 1]: ``image`` [3, H, W], then mid-grey frames (0.5)."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise DiffusionError(f"condition image must be [3, H, W], got {list(image.shape)}")
    clip = image.new_full((frames, *image.shape), 0.5)
    clip[0] = image.clamp(0, 1)
    return clip


def encode_condition(tokenizer: VideoTokenizer, image: Tensor, frames: int) -> Tensor:
    """[1, C, T_l, h, w]: the diffusion-space latents of :func:`condition_clip` (``image`` [3, H, W] in [0, 1])."""
    return encode_video(tokenizer, condition_clip(image, frames))


def encode_cache(tokenizer: VideoTokenizer, renders: Tensor, masks: Tensor, buffers: int = 2,
                 fill: str = "black") -> Tensor:
    """The cache condition [1, 2·buffers·C, T_l, h, w] of N ≤ ``buffers`` rendered buffers.

    Args:
        renders: [N, T, 3, H, W] cache renders in [0, 1].
        masks: [N, T, 1, H, W] coverage, 1 where a cache point landed.
        buffers: the network's buffer count; buffers N..buffers-1 are zero latents.
        fill: ``"black"``: values in holes are ignored (holes become black); ``"inpaint"``: ``renders`` are encoded
            as given (their holes already inpainted), the network's ``cache_fill``.
    """
    if renders.ndim != 5 or renders.shape[2] != 3:
        raise DiffusionError(f"cache renders must be [N, T, 3, H, W], got {list(renders.shape)}")
    if tuple(masks.shape) != (*renders.shape[:2], 1, *renders.shape[3:]):
        raise DiffusionError(f"cache masks must be [N, T, 1, H, W] = {[*renders.shape[:2], 1, *renders.shape[3:]]}, "
                             f"got {list(masks.shape)}")
    if not 1 <= renders.shape[0] <= buffers:
        raise DiffusionError(f"{renders.shape[0]} cache buffers given; the network takes 1 to {buffers}")
    if fill not in CACHE_FILLS:
        raise DiffusionError(f"cache fill must be one of {', '.join(CACHE_FILLS)}, got {fill!r}")
    parts = []
    for render, mask in zip(renders, masks):
        covered = (mask > 0.5).to(render.dtype)
        parts.append(encode_video(tokenizer, render.clamp(0, 1) * (covered if fill == "black" else 1)))
        parts.append(encode_video(tokenizer, covered.expand_as(render)))
    zeros = torch.zeros_like(parts[0])
    parts += [zeros] * (2 * buffers - len(parts))
    return torch.cat(parts, dim=1)


def chunk_conditioning(tokenizer: VideoTokenizer, text: PromptEmbeddings, image: Tensor, renders: Tensor,
                       masks: Tensor, buffers: int = 2, fill: str = "black") -> Conditioning:
    """The conditioning of one chunk: condition ``image`` [3, H, W], cache ``renders`` [N, T, 3, H, W] in [0, 1] and
    coverage ``masks`` [N, T, 1, H, W] (T frames, the chunk's length; ``fill`` as :func:`encode_cache`), and the two
    text embeddings."""
    if tuple(image.shape) != (3, *renders.shape[-2:]):
        raise DiffusionError(f"condition image {list(image.shape)} and cache renders {list(renders.shape)} differ "
                             "in size")
    prompt, negative = text.batched()
    return Conditioning(encode_condition(tokenizer, image, renders.shape[1]),
                        encode_cache(tokenizer, renders, masks, buffers, fill), prompt, negative)
