"""Video file I/O for the tokenizer round trip (PyAV)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lyra.errors import reading
from lyra.tokenizer.base import TokenizerError
from lyra.utils.files import atomic_path
from lyra.utils.inputs import require_file


def read_video(path: str | Path, max_frames: int | None = None) -> tuple[Tensor, float]:
    """Decode a video file to ``[T, 3, H, W]`` float32 in [0, 1] and its frame rate (fps)."""
    import av

    p = require_file(path, "video file", TokenizerError, missing=TokenizerError)
    with reading(p, "not a readable video", TokenizerError), av.open(str(p)) as container:
        if not container.streams.video:
            raise TokenizerError(p, "has no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 24)
        frames = []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            if max_frames and len(frames) >= max_frames:
                break
    if not frames:
        raise TokenizerError(p, "has no video frames")
    arr = np.stack(frames).astype(np.float32) / 255.0
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous(), fps


def write_video(path: str | Path, frames: Tensor, fps: float = 24.0, crf: int = 18) -> Path:
    """Encode ``[T, 3, H, W]`` in [0, 1] as H.264 mp4 (yuv420p; odd sizes are padded), atomically."""
    import av

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    x = (frames.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    T, H, W, _ = x.shape
    H2, W2 = H + H % 2, W + W % 2
    if (H2, W2) != (H, W):
        x = np.pad(x, ((0, 0), (0, H2 - H), (0, W2 - W), (0, 0)), mode="edge")
    with atomic_path(p) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = W2, H2, "yuv420p"
        stream.options = {"crf": str(crf)}
        for img in x:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return p
