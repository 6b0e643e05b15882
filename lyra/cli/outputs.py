"""Writing rendered frames: one mp4, or a folder of PNGs (+ depth as 16-bit PNG or npy)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from torch import Tensor

from lyra.render.video import write_video
from lyra.utils.files import atomic_dir
from lyra.utils.images import save_depth_png16, save_png

FRAME_PATTERNS = ("rgb_*.png", "depth_*.png", "depth_*.npy")


def add_output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="an .mp4 file, or a folder for one PNG (+ depth) per camera")
    p.add_argument("--fps", type=float, default=24.0, help="video frame rate (default 24)")
    p.add_argument("--depth-format", choices=("png16", "npy", "none"), default="png16",
                   help="depth files in folder output: 16-bit PNG in millimetres (default), float32 npy, or none")


def write_frames(out: str, rgb: Tensor, depth: Tensor, fps: float = 24.0, depth_format: str = "png16") -> str:
    """Write rgb [N,3,H,W] (and depth [N,1,H,W] for folders); returns a one-line description.

    Both appear only when complete: the mp4 through a temporary file, the folder through a temporary folder.
    """
    path = Path(out)
    if path.suffix.lower() in (".mp4", ".mov", ".mkv"):
        write_video(path, rgb, fps=fps)
        return f"{path} ({rgb.shape[0]} frames, {rgb.shape[3]}x{rgb.shape[2]})"
    with atomic_dir(path, stale=FRAME_PATTERNS) as tmp:  # an earlier run's extra frames do not stay behind
        for i in range(rgb.shape[0]):
            save_png(tmp / f"rgb_{i:05d}.png", rgb[i])
            if depth_format == "png16":
                save_depth_png16(tmp / f"depth_{i:05d}.png", depth[i])
            elif depth_format == "npy":
                np.save(tmp / f"depth_{i:05d}.npy", depth[i, 0].detach().cpu().float().numpy())
    extra = "" if depth_format == "none" else f" + depth ({depth_format})"
    return f"{path}/ ({rgb.shape[0]} PNG frames{extra})"
