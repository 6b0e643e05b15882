"""The generator protocol: multi-trajectory teacher videos and their latents for one scene.

A generator ("teacher") takes a source view (image [3, H, W] in [0, 1], optional z-depth [1, H, W],
pixel K [3, 3]) and a list of trajectories (camera batches, the first camera of each usually being
the source camera) and returns one :class:`TrajectorySample` per trajectory. Backends are looked up by
name in :data:`GENERATORS` (``register_generator``); every factory is called as
``factory(tokenizer=..., world=..., **options)`` and may ignore the world.

Generators whose model works in RGB (the procedural oracle, the 3D-cache warp + inpaint, any
external video model) produce their latents with :func:`teacher_roundtrip`: encode the frames with the
tokenizer, decode them back, and use the decoded frames as the teacher's frames, so that the decoder is
trained on exactly what the latents can express (sdg.md §9.3).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from lyra.cameras import Cameras
from lyra.errors import InputError

if TYPE_CHECKING:
    from lyra.tokenizer import VideoTokenizer


class GeneratorError(InputError):
    """Bad input for a generator, or an unknown backend name."""


@dataclass(frozen=True)
class SourceView:
    """The conditioning view of a scene.

    Attributes:
        image: [3, H, W] float in [0, 1].
        K: [3, 3] pixel intrinsics.
        depth: [1, H, W] z-depth in scene units (0 = invalid), or None.
        w2c: [4, 4] source camera (None: identity, the world origin).
    """

    image: Tensor  # [3, H, W]
    K: Tensor  # [3, 3]
    depth: Tensor | None = None  # [1, H, W]
    w2c: Tensor | None = None  # [4, 4]

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[0] != 3:
            raise GeneratorError(f"SourceView: image must be [3, H, W], got {list(self.image.shape)}")
        if tuple(self.K.shape) != (3, 3):
            raise GeneratorError(f"SourceView: K must be [3, 3], got {list(self.K.shape)}")
        if self.depth is not None and tuple(self.depth.shape) != (1, *self.image.shape[1:]):
            raise GeneratorError(f"SourceView: depth must be [1, H, W] = {[1, *self.image.shape[1:]]}, "
                                 f"got {list(self.depth.shape)}")

    @property
    def camera(self) -> Cameras:
        """The source camera as a one-camera batch."""
        w2c = torch.eye(4) if self.w2c is None else self.w2c
        return Cameras(w2c.float(), self.K.float(), int(self.image.shape[1]), int(self.image.shape[2]))


@dataclass
class TrajectorySample:
    """One generated trajectory.

    Attributes:
        frames: [T, 3, H, W] float32 in [0, 1], the teacher's frames (decoded from ``latents``), or None when the
            generator was told not to decode them (``Generator.decode_frames = False``: consumers of latents only).
        latents: [C, T_l, h, w] raw tokenizer latents (T_l = 1 + (T-1)/8, h = H/8, w = W/8).
        cameras: T cameras (w2c + K, H x W).
        depth: [T, 1, H, W] float32 z-depth (0 = invalid), or None.
    """

    frames: Tensor | None  # [T, 3, H, W]
    latents: Tensor  # [C, T_l, h, w]
    cameras: Cameras
    depth: Tensor | None = None  # [T, 1, H, W]

    def __post_init__(self) -> None:
        T, size = len(self.cameras), (self.cameras.height, self.cameras.width)
        if self.frames is not None:
            if self.frames.ndim != 4 or self.frames.shape[1] != 3:
                raise GeneratorError(f"TrajectorySample: frames must be [T, 3, H, W], got {list(self.frames.shape)}")
            if self.frames.shape[0] != T:
                raise GeneratorError(f"TrajectorySample: {self.frames.shape[0]} frames but {T} cameras")
            if size != tuple(self.frames.shape[-2:]):
                raise GeneratorError("TrajectorySample: camera image size differs from the frame size")
        if self.latents.ndim != 4:
            raise GeneratorError(f"TrajectorySample: latents must be [C, T_l, h, w], got {list(self.latents.shape)}")
        if self.depth is not None and tuple(self.depth.shape) != (T, 1, *size):
            raise GeneratorError(f"TrajectorySample: depth must be [T, 1, H, W], got {list(self.depth.shape)}")


class Generator(ABC):
    """A multi-trajectory teacher. Subclasses set ``name`` and implement :meth:`generate`.

    Attributes:
        name: registry name.
        needs_source: whether :meth:`generate` uses the source view (False for world-based oracles).
        tokenizer: the tokenizer whose latent space the samples live in.
        decode_frames: whether samples carry the teacher's decoded frames (False skips the tokenizer decode, the
            largest cost of a round trip, for consumers that read only latents, such as the image -> 3D pipeline).
    """

    name: str = ""
    needs_source: bool = True
    decode_frames: bool = True
    tokenizer: VideoTokenizer

    @abstractmethod
    def generate(self, trajectories: Sequence[Cameras], source: SourceView | None = None, *,
                 seed: int = 0) -> list[TrajectorySample]:
        """One :class:`TrajectorySample` per trajectory (same order); ``seed`` drives any sampling."""


GeneratorFactory = Callable[..., Generator]
GENERATORS: dict[str, GeneratorFactory] = {}
LAZY_GENERATORS = {"diffusion": "lyra.generator.diffusion"}  # name -> module that registers it (imports diffusers)


def register_generator(name: str) -> Callable[[GeneratorFactory], GeneratorFactory]:
    """Decorator: register a generator class or factory under ``name``."""

    def deco(factory: GeneratorFactory) -> GeneratorFactory:
        if name in GENERATORS and GENERATORS[name] is not factory:
            raise GeneratorError(f"generator {name!r} is already registered")
        GENERATORS[name] = factory
        return factory

    return deco


def make_generator(name: str, **kwargs: Any) -> Generator:
    """Build the generator registered as ``name`` (``tokenizer=``, ``world=`` and backend options)."""
    import importlib

    import lyra.generator  # noqa: F401 - registers the built-in backends

    if name not in GENERATORS and name in LAZY_GENERATORS:  # heavy optional backends register on first use
        importlib.import_module(LAZY_GENERATORS[name])
    if name not in GENERATORS:
        names = sorted(set(GENERATORS) | set(LAZY_GENERATORS))
        raise GeneratorError(f"unknown generator {name!r}; available: {', '.join(names)}")
    return GENERATORS[name](**kwargs)


@torch.no_grad()
def teacher_roundtrip(tokenizer: VideoTokenizer, frames: Tensor, decode: bool = True) -> tuple[Tensor, Tensor | None]:
    """Encode frames [T, 3, H, W] in [0, 1] and decode them back.

    Returns:
        latents [C, T_l, h, w] raw (float32, CPU) and decoded frames [T, 3, H, W] in [0, 1] (float32, CPU), or None
        without ``decode``.
    """
    from lyra.tokenizer.metrics import video_to_frames

    if frames.ndim != 4 or frames.shape[1] != 3:
        raise GeneratorError(f"frames must be [T, 3, H, W], got {list(frames.shape)}")
    x = frames.clamp(0, 1).permute(1, 0, 2, 3)[None] * 2 - 1
    z = tokenizer.encode(x)
    if not decode:
        return z[0].float().cpu(), None
    y = tokenizer.decode(z)
    return z[0].float().cpu(), video_to_frames(y.float()).cpu()
