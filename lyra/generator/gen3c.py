"""The ``gen3c`` adapter: GEN3C outputs, produced by the user on a GPU, read back as trajectory samples.

GEN3C (Cosmos-7B, external) runs where its GPUs are; its single-image SDG script with ``--multi_trajectory``
writes the official layout (sdg.md §6.1)::

    <root>/<view>/rgb/<clip>.mp4           decoded GEN3C video (121 frames, 704x1280)
    <root>/<view>/pose/<clip>.npz          c2w [N, 4, 4] + inds
    <root>/<view>/intrinsics/<clip>.npz    [N, 4] fx, fy, cx, cy (pixels) + inds
    <root>/<view>/latent/<clip>.pkl        diffusion-normalised latent (1, C, T_l, h, w), optional
    <root>/<view>/depth/<clip>.zip         NNNNN.exr z-depth, optional

This adapter reads that folder with :mod:`lyra.data`'s readers (numpy-only unpickler, exact frame indices)
and returns one :class:`TrajectorySample` per view folder. The cameras come from the files (GEN3C chose them);
the trajectories passed to :meth:`Gen3CGenerator.generate` are only checked for their count.

Latents: when the stored frames are used unchanged (same size and frame count) and a latent file exists, the
stored latent is de-normalised with the given statistics (``stats=`` file, else the tokenizer's); otherwise
(resized or sub-sampled for the pocket scale, or no latent on disk) the mp4 frames are re-encoded with the
tokenizer (:func:`teacher_roundtrip`, sdg.md §9.3).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from lyra.cameras import Cameras
from lyra.generator.base import (
    Generator,
    GeneratorError,
    SourceView,
    TrajectorySample,
    register_generator,
    teacher_roundtrip,
)
from lyra.tokenizer import VideoTokenizer, denormalize_latents

Reencode = Literal["auto", "always", "never"]


def frame_selection(available: int, frames: int | None) -> np.ndarray:
    """Positions of ``frames`` frames spread evenly over ``available`` (all of them when None or equal)."""
    if frames is None or frames == available:
        return np.arange(available)
    if not 1 <= frames <= available:
        raise GeneratorError(f"gen3c: asked for {frames} frames but the videos have {available}")
    return np.round(np.linspace(0, available - 1, frames)).astype(np.int64)


@register_generator("gen3c")
class Gen3CGenerator(Generator):
    """Trajectory samples from GEN3C outputs in the official SDG layout.

    Args:
        tokenizer: the tokenizer of the target latent space (needed to re-encode; its statistics de-normalise
            stored latents when ``stats`` is None).
        world: ignored (registry signature).
        root: the GEN3C ``--video_save_folder`` (view folders 0..5 beneath it).
        key: the clip name (file stem); None picks the only one present.
        views: view folders to read, in order (None: every integer folder holding the clip, sorted).
        size: (H, W) to centre-crop and resize to (intrinsics adjusted); None keeps the stored size.
        frames: frames per trajectory, spread evenly over the stored ones (1 + 8k); None keeps all.
        stats: latent statistics file for de-normalising stored latents (``lyra.data.load_latent_stats``).
        reencode: "auto" (re-encode only when needed), "always", or "never" (stored latents required).
    """

    name = "gen3c"
    needs_source = False

    def __init__(self, tokenizer: VideoTokenizer | None = None, world: object | None = None, *,
                 root: str | os.PathLike | None = None, key: str | None = None, views: Sequence[int] | None = None,
                 size: tuple[int, int] | None = None, frames: int | None = None,
                 stats: str | os.PathLike | None = None, reencode: Reencode = "auto") -> None:
        from lyra.data import Layout

        if root is None:
            raise GeneratorError("the gen3c adapter needs root= (the GEN3C output folder with view folders 0..5)")
        if reencode not in ("auto", "always", "never"):
            raise GeneratorError(f"gen3c: reencode must be auto, always or never, got {reencode!r}")
        self.layout = Layout(root)
        if not self.layout.root.is_dir():
            raise GeneratorError(f"{self.layout.root}: GEN3C output folder not found")
        self.tokenizer = tokenizer  # type: ignore[assignment]
        keys = self.layout.scene_keys()
        if key is None:
            if len(keys) != 1:
                raise GeneratorError(f"{self.layout.root}: {len(keys)} clips ({', '.join(keys[:8]) or 'none'}); "
                                     "choose one with key=")
            key = keys[0]
        elif key not in keys:
            raise GeneratorError(f"{self.layout.root}: no clip {key!r} (found: {', '.join(keys[:8]) or 'none'})")
        self.key = key
        have = [v for v in self.layout.views() if self.layout.path(v, "rgb", key).is_file()]
        self.views = list(have if views is None else views)
        missing = [v for v in self.views if v not in have]
        if missing or not self.views:
            raise GeneratorError(f"{self.layout.root}: clip {key!r} has no rgb video in view folders "
                                 f"{missing or '(any)'}")
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.frames = frames
        self.stats = stats
        self.reencode = reencode

    # ------------------------------------------------------------------ reading
    def _read_view(self, view: int) -> tuple[Tensor, Cameras, Tensor | None, np.ndarray | None]:
        """(frames [T, 3, H, W], cameras, depth [T, 1, H, W] or None, stored latent or None) after selection."""
        from lyra.data import DataError, read_depth_zip
        from lyra.data.reader import (
            cameras_from_arrays,
            crop_resize,
            frame_indices,
            read_indexed_npz,
            read_latent,
            read_video_frames,
            video_info,
        )

        L, key = self.layout, self.key
        rgb_path, pose_path = L.path(view, "rgb", key), L.path(view, "pose", key)
        n_video, H0, W0 = video_info(rgb_path)
        inds = frame_indices(pose_path)
        n = min(n_video, len(inds))
        sel = frame_selection(n, self.frames)
        c2w = read_indexed_npz(pose_path, inds[sel].tolist(), (4, 4))
        intr = read_indexed_npz(L.path(view, "intrinsics", key), inds[sel].tolist(), (4,))
        cams = cameras_from_arrays(c2w, intr, H0, W0, where=str(pose_path))
        frames = read_video_frames(rgb_path, sel.tolist())
        depth = None
        dpath = L.path(view, "depth", key)
        if dpath.is_file():
            try:
                depth = read_depth_zip(dpath, inds[sel].tolist())
            except (DataError, ValueError) as exc:
                raise GeneratorError(f"gen3c: {exc}") from exc
        if depth is not None and tuple(depth.shape[-2:]) != (H0, W0):
            raise GeneratorError(f"{dpath}: depth is {list(depth.shape[-2:])} but the video is {H0}x{W0}")
        changed = len(sel) != n_video or (self.size is not None and self.size != (H0, W0))
        if self.size is not None and self.size != (H0, W0):
            K0 = cams.K
            frames, K = crop_resize(frames, K0, self.size)
            if depth is not None:
                depth, _ = crop_resize(depth, K0, self.size, mode="nearest")
            cams = Cameras(cams.w2c, K, *self.size)
        latent = None
        lpath = L.path(view, "latent", key)
        if not changed and lpath.is_file():
            latent = read_latent(lpath)
        return frames.clamp(0, 1), cams, depth, latent

    def _denormalize(self, latent: np.ndarray) -> Tensor:
        z = torch.from_numpy(latent)
        if self.stats is not None:
            from lyra.data import load_latent_stats

            mean, std = load_latent_stats(self.stats)
            return denormalize_latents(z, mean, std)
        if self.tokenizer is None:
            raise GeneratorError("gen3c: stored latents need stats= (latent statistics file) or a tokenizer")
        return self.tokenizer.denormalize_latents(z).float()

    def trajectories(self) -> list[Cameras]:
        """The cameras of every view (after frame selection and resizing), without decoding the videos."""
        return [self._read_view(v)[1] for v in self.views]

    # ------------------------------------------------------------------ protocol
    def generate(self, trajectories: Sequence[Cameras] = (), source: SourceView | None = None, *,
                 seed: int = 0) -> list[TrajectorySample]:
        """One sample per view folder; ``trajectories`` (if given) must have one entry per view."""
        if len(trajectories) and len(trajectories) != len(self.views):
            raise GeneratorError(f"gen3c: {len(trajectories)} trajectories asked for, but {self.layout.root} holds "
                                 f"{len(self.views)} views of {self.key!r} (their cameras are used)")
        out = []
        for v in self.views:
            frames, cams, depth, latent = self._read_view(v)
            use_stored = latent is not None and self.reencode != "always"
            if use_stored:
                z = self._denormalize(latent)  # type: ignore[arg-type]
                if self.tokenizer is not None and self.reencode == "auto":
                    want = self.tokenizer.latent_shape((1, 3, *frames.shape[:1], *frames.shape[-2:]))[1:]
                    use_stored = tuple(z.shape) == tuple(want)
            if use_stored:
                out.append(TrajectorySample(frames, z, cams, depth))
                continue
            if self.reencode == "never":
                raise GeneratorError(f"gen3c: view {v} has no usable stored latent (reencode='never')")
            if self.tokenizer is None:
                raise GeneratorError("gen3c: re-encoding the videos needs a tokenizer")
            from lyra.generator.cache import tokenizer_device

            latents, dec = teacher_roundtrip(self.tokenizer, frames.to(tokenizer_device(self.tokenizer)))
            out.append(TrajectorySample(dec, latents, cams, depth))
        return out


def read_gen3c(root: str | os.PathLike | Path, tokenizer: VideoTokenizer | None = None,
               **options: object) -> list[TrajectorySample]:
    """Shortcut: every view of the GEN3C clip under ``root`` as trajectory samples (options of Gen3CGenerator)."""
    return Gen3CGenerator(tokenizer, root=root, **options).generate()  # type: ignore[arg-type]
