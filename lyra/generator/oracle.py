"""The ``oracle`` generator: a procedural world rendered exactly along each trajectory.

The pocket scale's teacher: frames are exact ray-cast renders of a :class:`lyra.world.World`
(z-depth too), then round-tripped through the tokenizer, so the teacher frames are the decoded latents.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

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
from lyra.world import World


@register_generator("oracle")
class OracleGenerator(Generator):
    """Render ``world`` along each trajectory and round-trip the frames through ``tokenizer``.

    Args:
        world: the scene (its origin camera is the source view).
        tokenizer: the video tokenizer defining the latent space.
        time: normalised time for moving worlds: a fixed value, or None for 0..1 along each trajectory.
        supersample: s x s anti-aliasing rays per pixel for RGB (depth is the exact centre ray).
    """

    name = "oracle"
    needs_source = False

    def __init__(self, world: World | None = None, tokenizer: VideoTokenizer | None = None, *,
                 time: float | None = 0.0, supersample: int = 1) -> None:
        if world is None or tokenizer is None:
            raise GeneratorError("the oracle generator needs a world and a tokenizer")
        self.world = world
        self.tokenizer = tokenizer
        self.time = time
        self.supersample = supersample

    def render_source(self, camera: Cameras) -> SourceView:
        """The world seen from one camera, as a source view (exact image and depth)."""
        r = self.world.render(camera, 0.0 if self.time is None else self.time, supersample=self.supersample)
        return SourceView(r.rgb[0], camera.K[0], r.depth[0], camera.w2c[0])

    def generate(self, trajectories: Sequence[Cameras], source: SourceView | None = None, *,
                 seed: int = 0) -> list[TrajectorySample]:
        out = []
        for cams in trajectories:
            n = len(cams)
            t = torch.linspace(0, 1, n) if self.time is None else self.time
            r = self.world.render(cams, t, supersample=self.supersample)
            latents, frames = teacher_roundtrip(self.tokenizer, r.rgb, self.decode_frames)
            out.append(TrajectorySample(frames, latents, cams, r.depth))
        return out
