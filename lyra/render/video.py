"""Video files of rendered frames (PyAV with its bundled FFmpeg; H.264 in mp4)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lyra.utils.files import atomic_path


def to_uint8_frames(frames: Tensor | np.ndarray) -> np.ndarray:
    """[T, 3, H, W] float in [0, 1] (or [T, H, W, 3] uint8) -> [T, H, W, 3] uint8."""
    if isinstance(frames, Tensor):
        frames = frames.detach().cpu()
        if frames.dtype == torch.uint8:
            return frames.numpy()
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"frames must be [T, 3, H, W] floats in [0, 1], got {list(frames.shape)}")
        return (frames.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"numpy frames must be [T, H, W, 3] uint8, got {frames.dtype} {frames.shape}")
    return frames


def write_video(path: str | os.PathLike, frames: Tensor | np.ndarray, fps: float = 24.0, crf: int = 18) -> Path:
    """Write frames to an H.264 mp4 (yuv420p; odd sizes are padded by one pixel), atomically.

    Args:
        frames: [T, 3, H, W] float in [0, 1] or [T, H, W, 3] uint8.
        fps: frames per second.
        crf: x264 constant rate factor (lower is better quality; 0 is lossless).
    """
    import av

    arr = to_uint8_frames(frames)
    if arr.shape[0] == 0:
        raise ValueError("write_video: no frames")
    h, w = arr.shape[1:3]
    ph, pw = h + h % 2, w + w % 2
    if (ph, pw) != (h, w):
        arr = np.pad(arr, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    path = Path(path)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=round(fps))
            stream.width, stream.height = pw, ph
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf)}
            for frame in arr:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path


def read_video(path: str | os.PathLike) -> Tensor:
    """Read all frames of a video file as [T, 3, H, W] float32 in [0, 1]."""
    import av

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: video file not found")
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if not frames:
        raise ValueError(f"{path}: no video frames")
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0
