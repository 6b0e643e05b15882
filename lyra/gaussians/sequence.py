"""4D Gaussian scenes as a sequence of standard 3DGS PLYs plus a JSON manifest (the de-facto 4D interchange).

A sequence folder holds ``frame_<k>.ply`` (k = 0000, 0001, …; each an ordinary 3DGS PLY that any splat viewer
opens; SuperSplat imports numbered PLY sequences) and ``sequence.json``::

    {"format": "lyra-4d-sequence", "version": 1,
     "times": [0.0, 0.5, 1.0],            # normalised time of each frame, in [0, 1] (0: first video frame)
     "frames": ["frame_0000.ply", ...],   # one file per time, same order
     "fps": 24.0,                          # playback rate of the source video (frames per second of video time)
     "video_frames": 17,                   # length of the source clip: video frame f is time f / (video_frames - 1)
     "units": "...",                       # what one scene unit is (e.g. "input depth unit x depth_scale")
     "cameras": "cameras.npz"}             # optional: the trajectory cameras (w2c, K, height, width)

Times are strictly increasing. Frames and manifest are written atomically (the manifest last), so a folder with a
manifest is complete.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lyra.errors import InputError
from lyra.gaussians.gaussians import Gaussians
from lyra.utils.files import atomic_write

MANIFEST = "sequence.json"
FORMAT = "lyra-4d-sequence"


class SequenceError(InputError):
    """A bad 4D sequence: missing or malformed manifest, missing frame files, unordered times."""


@dataclass
class SequenceManifest:
    """The contents of ``sequence.json`` (see the module docstring); ``root`` is the folder it was read from."""

    times: list[float]
    frames: list[str]
    fps: float = 24.0
    video_frames: int | None = None
    units: str = "scene units"
    cameras: str | None = None
    root: Path = field(default=Path("."), compare=False)

    def __post_init__(self) -> None:
        if not self.times or len(self.times) != len(self.frames):
            raise SequenceError(f"a sequence needs one frame file per time, got {len(self.times)} times and "
                                f"{len(self.frames)} frames")
        if any(not isinstance(t, int | float) or not math.isfinite(t) for t in self.times):
            raise SequenceError(f"sequence times must be finite numbers, got {self.times}")
        if any(b <= a for a, b in zip(self.times, self.times[1:])):
            raise SequenceError(f"sequence times must increase strictly, got {self.times}")
        if not self.fps > 0:
            raise SequenceError(f"sequence fps must be > 0, got {self.fps}")

    def frame_path(self, i: int) -> Path:
        return self.root / self.frames[i]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"format": FORMAT, "version": 1, "times": [float(t) for t in self.times],
                             "frames": list(self.frames), "fps": float(self.fps), "units": self.units}
        if self.video_frames is not None:
            d["video_frames"] = int(self.video_frames)
        if self.cameras is not None:
            d["cameras"] = self.cameras
        return d


def frame_name(i: int) -> str:
    return f"frame_{i:04d}.ply"


def write_sequence(folder: str | os.PathLike, scenes: Sequence[Gaussians], times: Sequence[float], *,
                   fps: float = 24.0, video_frames: int | None = None, units: str = "scene units",
                   cameras: str | None = None) -> SequenceManifest:
    """Write one PLY per time and then ``sequence.json`` into ``folder`` (created); returns the manifest.

    ``cameras``: the name of a cameras npz already in ``folder`` (or None).
    """
    from lyra.gaussians.ply import save_ply

    folder = Path(folder)
    if len(scenes) != len(times):
        raise SequenceError(f"{len(scenes)} scenes but {len(times)} times")
    m = SequenceManifest([float(t) for t in times], [frame_name(i) for i in range(len(times))], fps,
                         video_frames, units, cameras, folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, g in enumerate(scenes):
        save_ply(folder / m.frames[i], g)
    atomic_write(folder / MANIFEST, lambda p: Path(p).write_text(json.dumps(m.to_dict(), indent=1) + "\n"))
    return m


def read_manifest(path: str | os.PathLike) -> SequenceManifest:
    """The manifest of a sequence (``path``: the folder or its ``sequence.json``); checks that every frame exists."""
    p = Path(path)
    f = p / MANIFEST if p.is_dir() else p
    if not f.is_file():
        raise SequenceError(f"{p}: no {MANIFEST} (not a 4D sequence folder)")
    try:
        d = json.loads(f.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SequenceError(f"{f}: unreadable manifest ({exc})") from exc
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise SequenceError(f"{f}: not a {FORMAT} manifest")
    if d.get("version") != 1:
        raise SequenceError(f"{f}: unsupported version {d.get('version')!r} (this lyra reads version 1)")
    try:
        m = SequenceManifest(list(d["times"]), [str(x) for x in d["frames"]], float(d.get("fps", 24.0)),
                             d.get("video_frames"), str(d.get("units", "scene units")), d.get("cameras"), f.parent)
    except (KeyError, TypeError, ValueError) as exc:
        raise SequenceError(f"{f}: malformed manifest ({exc!r})") from exc
    except SequenceError as exc:
        raise SequenceError(f"{f}: {exc}") from exc
    missing = [n for n in m.frames if not (f.parent / n).is_file() or Path(n).name != n]
    if missing:
        raise SequenceError(f"{f}: frame files missing or not plain names in the folder: {', '.join(missing[:5])}")
    return m


def load_sequence(path: str | os.PathLike) -> tuple[SequenceManifest, list[Gaussians]]:
    """(manifest, one Gaussians per time) of a sequence folder or manifest."""
    from lyra.gaussians import load_gaussians

    m = read_manifest(path)
    return m, [load_gaussians(m.frame_path(i)) for i in range(len(m.frames))]
