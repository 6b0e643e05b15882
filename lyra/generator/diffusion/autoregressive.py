"""Autoregressive chunks: a trajectory longer than one chunk, each chunk conditioned on the last frame before it.

Officially (gen3c-official-inference.md §4.6) a trajectory of ``chunk + k·(chunk − 1)`` frames (121, 241, 361...) is
made of chunks covering frames [k·(chunk − 1), k·(chunk − 1) + chunk): one frame of overlap. Chunk k > 0 takes the
last decoded frame of chunk k − 1 as its condition image (and the caller pushes it into the 3D cache, newest buffer
first); the video is chunk 0 followed by every later chunk without its first frame.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from lyra.generator.diffusion.config import DiffusionError

Span = tuple[int, int]


def chunk_spans(num_frames: int, chunk_frames: int) -> list[Span]:
    """Pixel-frame spans [start, end) of the chunks; one chunk of ``num_frames`` when it fits in one.

    Raises DiffusionError unless ``num_frames`` is at most ``chunk_frames`` or ``chunk_frames + k·(chunk_frames − 1)``.
    """
    if num_frames < 1 or chunk_frames < 2:
        raise DiffusionError(f"need num_frames >= 1 and chunk_frames >= 2, got {num_frames}, {chunk_frames}")
    if num_frames <= chunk_frames:
        return [(0, num_frames)]
    step = chunk_frames - 1
    if (num_frames - 1) % step:
        lo = 1 + (num_frames - 1) // step * step
        raise DiffusionError(f"{num_frames} frames do not split into {chunk_frames}-frame chunks overlapping by one "
                             f"frame; use {chunk_frames} + k·{step} frames (nearest: {lo} or {lo + step})")
    return [(k * step, k * step + chunk_frames) for k in range((num_frames - 1) // step)]


def generate_autoregressive(num_frames: int, chunk_frames: int,
                            generate_chunk: Callable[[int, Span, Tensor | None], Tensor]) -> Tensor:
    """Frames [num_frames, 3, H, W] made chunk by chunk.

    Args:
        generate_chunk: ``(k, span, last)`` -> the chunk's frames [end − start, 3, H, W]; ``last`` [3, H, W] is the
            previous chunk's last frame (None for chunk 0), which the chunk's first frame re-creates.
    """
    out: list[Tensor] = []
    last: Tensor | None = None
    for k, (start, end) in enumerate(chunk_spans(num_frames, chunk_frames)):
        frames = generate_chunk(k, (start, end), last)
        if frames.ndim != 4 or frames.shape[0] != end - start:
            raise DiffusionError(f"chunk {k} gave {list(frames.shape)}; expected {end - start} frames [T, 3, H, W]")
        out.append(frames if k == 0 else frames[1:])
        last = frames[-1]
    return torch.cat(out)
