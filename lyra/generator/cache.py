"""The ``cache`` generator: the source view lifted to a 3D point cache, forward-warped along each trajectory.

The classical stand-in for a camera-conditioned video model (sdg.md §3.2-3.3 without the diffusion step):
lift the source image with its depth (depth discontinuities dropped), z-buffer-splat the points into every
trajectory camera, fill the disocclusion holes by push-pull inpainting, then round-trip the frames through the
tokenizer so the teacher frames are the decoded latents (:func:`lyra.generator.base.teacher_roundtrip`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lyra.cache3d import PointCache, forward_warp, inpaint, lift_points
from lyra.cache3d.warp import Footprint
from lyra.cameras import Cameras
from lyra.generator.base import (
    Generator,
    GeneratorError,
    SourceView,
    TrajectorySample,
    register_generator,
    teacher_roundtrip,
)
from lyra.tokenizer import VideoTokenizer


def tokenizer_device(tokenizer: VideoTokenizer) -> torch.device:
    """The device of a tokenizer's parameters (CPU for parameter-less or non-module tokenizers)."""
    params = getattr(tokenizer, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    return torch.device("cpu")


@dataclass
class WarpedTrajectory:
    """The pre-tokenizer frames of one trajectory.

    Attributes:
        frames: [T, 3, H, W] float32 in [0, 1], the warp where visible and inpainted colour in holes.
        mask: [T, 1, H, W] float32, 1 where a cache point landed (visible), 0 in holes.
        depth: [T, 1, H, W] float32 camera-space z of the visible points (0 in holes).
        warped: [T, 3, H, W] the raw warp (``background`` in holes), before inpainting.
    """

    frames: Tensor
    mask: Tensor
    depth: Tensor
    warped: Tensor


@register_generator("cache")
class CacheGenerator(Generator):
    """Forward-warp the lifted source view into each trajectory, inpaint holes, round-trip through the tokenizer.

    Args:
        tokenizer: the video tokenizer defining the latent space.
        world: ignored (registry signature).
        edge_threshold: relative depth jump that drops a source pixel from the cache (``lyra.cache3d.depth_edges``);
            None keeps every pixel.
        edge_dilate: grow the dropped edge band by this many pixels.
        footprint: "bilinear" (fewer pinholes when the camera moves forward) or "nearest" (exact point colours).
        smooth_iters: Jacobi smoothing steps of the inpainted holes.
    """

    name = "cache"
    needs_source = True

    def __init__(self, tokenizer: VideoTokenizer | None = None, world: object | None = None, *,
                 edge_threshold: float | None = 0.05, edge_dilate: int = 0, footprint: Footprint = "bilinear",
                 smooth_iters: int = 4) -> None:
        if tokenizer is None:
            raise GeneratorError("the cache generator needs a tokenizer")
        self.tokenizer = tokenizer
        self.edge_threshold = edge_threshold
        self.edge_dilate = edge_dilate
        self.footprint = footprint
        self.smooth_iters = smooth_iters

    def lift(self, source: SourceView | None) -> PointCache:
        """The point cache of the source view (world points, RGB colours)."""
        if source is None or source.depth is None:
            raise GeneratorError("the cache generator needs a source view with depth (SourceView.depth)")
        return lift_points(source.image.float(), source.depth.float(), source.camera,
                           edge_threshold=self.edge_threshold, edge_dilate=self.edge_dilate)

    @torch.no_grad()
    def warp(self, trajectories: Sequence[Cameras], source: SourceView | None) -> list[WarpedTrajectory]:
        """The frames of every trajectory before the tokenizer round trip (warp + inpainting)."""
        cache = self.lift(source)
        out = []
        for cams in trajectories:
            w = forward_warp(cache, cams.to("cpu", torch.float32), footprint=self.footprint)
            frames = inpaint(w.rgb, w.mask, smooth_iters=self.smooth_iters).clamp(0, 1)
            out.append(WarpedTrajectory(frames, w.mask, w.depth, w.rgb))
        return out

    def generate(self, trajectories: Sequence[Cameras], source: SourceView | None = None, *,
                 seed: int = 0) -> list[TrajectorySample]:
        out = []
        for cams, w in zip(trajectories, self.warp(trajectories, source), strict=True):
            x = w.frames.to(tokenizer_device(self.tokenizer))
            latents, frames = teacher_roundtrip(self.tokenizer, x, self.decode_frames)
            out.append(TrajectorySample(frames, latents, cams, w.depth))
        return out
