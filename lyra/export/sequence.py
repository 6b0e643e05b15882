"""Export of 4D sequences (``lyra.gaussians.sequence`` folders: numbered frame PLYs + ``sequence.json``).

- ``usda`` / ``usdc`` / ``usdz`` (**experimental**: not yet shown to play in Omniverse / Isaac Sim): ONE stage, the
  static layout of :mod:`lyra.export.usd` with every per-Gaussian attribute of /Scene/Gaussians time-sampled, one
  time code per sequence frame (splat counts may differ between time samples);
- ``ply-bundle``: a .zip of the frame PLYs and ``sequence.json`` (and the cameras npz the manifest names), flat at
  the zip's root: unzipped into a folder, it is the sequence folder again;
- ``spz``: a folder of ``frame_<k>.spz`` (lossy SPZ, one per frame) with a ``sequence.json`` pointing at them (lyra
  reads it as a sequence; tools that expect PLY frames do not).

Time codes: sequence time t (normalised, video frame f is t = f / (video_frames − 1)) is written at time code
``t · (video_frames − 1)`` with ``timeCodesPerSecond = framesPerSecond = fps``, so time code f is video frame f and
the stage plays at the source video's rate. Codes within 1e-6 of a whole number are snapped to it. A manifest
without ``video_frames`` is taken to span as many video frames as it has frames.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from lyra.cameras import Cameras
from lyra.errors import InputError
from lyra.gaussians.sequence import MANIFEST, SequenceError, SequenceManifest, read_manifest

SEQUENCE_FORMATS = ("usdz", "usda", "usdc", "ply-bundle", "spz")
USD_SEQUENCE_FORMATS = ("usdz", "usda", "usdc")
EXPERIMENTAL_NOTE = ("experimental: time-sampled USD Gaussian splats have not been shown to play in Omniverse / "
                     "Isaac Sim yet")
SNAP = 1e-6  # time codes this close to a whole number become that number


def is_sequence_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a 4D sequence (a folder, or a .json manifest) rather than one scene file."""
    p = Path(path)
    return p.is_dir() or p.suffix.lower() == ".json"


def sequence_time_codes(m: SequenceManifest) -> list[float]:
    """USD time code of each frame: t · (video_frames − 1) (see the module docstring); strictly increasing."""
    n = len(m.times) if m.video_frames is None else m.video_frames
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SequenceError(f"{m.root / MANIFEST}: video_frames must be a whole number >= 1, got {n!r}")
    codes = [float(t) * (n - 1) for t in m.times]
    codes = [float(round(c)) if abs(c - round(c)) < SNAP else c for c in codes]
    if any(b <= a for a, b in zip(codes, codes[1:])):
        raise SequenceError(f"{m.root / MANIFEST}: times {m.times} collide as time codes of a {n}-frame video")
    return codes


def _manifest_text(m: SequenceManifest) -> str:
    return json.dumps(m.to_dict(), indent=1) + "\n"


def _renamed(m: SequenceManifest, suffix: str) -> SequenceManifest:
    """``m`` with frames named frame_<k><suffix> (the cameras file keeps its name)."""
    frames = [f"frame_{i:04d}{suffix}" for i in range(len(m.frames))]
    return SequenceManifest(list(m.times), frames, m.fps, m.video_frames, m.units, m.cameras, m.root)


def _cameras_file(m: SequenceManifest) -> Path | None:
    """The cameras npz the manifest names (checked to exist), or None."""
    if m.cameras is None:
        return None
    p = m.root / str(m.cameras)
    if not p.is_file() or Path(str(m.cameras)).name != m.cameras:
        raise SequenceError(f"{m.root / MANIFEST}: cameras file {m.cameras!r} missing or not a plain name")
    return p


def save_usd_sequence_from(m: SequenceManifest, path: Path, cameras: Cameras | None = None, **options) -> Path:
    """The sequence ``m`` as one time-sampled USD stage (``options``: sh_degree, up_axis, meters_per_unit).

    ``cameras``: static camera prims (default: the manifest's cameras npz, if any)."""
    from lyra.cameras import load_cameras_npz
    from lyra.export.usd import save_usd_sequence
    from lyra.gaussians import load_gaussians

    codes = sequence_time_codes(m)
    cam_file = _cameras_file(m)
    if cameras is None and cam_file is not None:
        cameras = load_cameras_npz(cam_file)
    scenes = [load_gaussians(m.frame_path(i)) for i in range(len(m.frames))]
    video_frames = len(m.times) if m.video_frames is None else m.video_frames
    custom = {"status": EXPERIMENTAL_NOTE, "times": list(m.times), "timeCodes": codes, "fps": float(m.fps),
              "videoFrames": int(video_frames), "timeCode": "time * (videoFrames - 1)", "units": m.units}
    return save_usd_sequence(path, scenes, codes, cameras=cameras, time_codes_per_second=m.fps, custom=custom,
                             **options)


def save_ply_bundle(m: SequenceManifest, path: Path) -> Path:
    """A .zip of the frames as PLYs (PLY frames copied byte for byte, others converted), the cameras npz and the
    manifest, all at the zip's root (stored uncompressed: float data barely compresses)."""
    from lyra.gaussians import load_gaussians, save_ply
    from lyra.utils.files import atomic_path

    out = _renamed(m, ".ply")
    cam_file = _cameras_file(m)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
        for i, name in enumerate(out.frames):
            src = m.frame_path(i)
            if src.suffix.lower() == ".ply":
                z.write(src, name)
                continue
            with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as d:  # e.g. SPZ: converted
                save_ply(Path(d) / name, load_gaussians(src))
                z.write(Path(d) / name, name)
        if cam_file is not None:
            z.write(cam_file, cam_file.name)
        z.writestr(MANIFEST, _manifest_text(out))  # last, as in a sequence folder
    return path


def save_spz_frames(m: SequenceManifest, path: Path) -> Path:
    """A folder of frame_<k>.spz (one per frame, lossy SPZ) + the cameras npz + a manifest pointing at them."""
    from lyra.gaussians import load_gaussians, save_spz
    from lyra.utils.files import atomic_dir

    out = _renamed(m, ".spz")
    cam_file = _cameras_file(m)
    if Path(os.path.abspath(path)) == Path(os.path.abspath(m.root)):
        raise InputError(f"{path}: the spz frames need a folder other than the source sequence's")
    with atomic_dir(path, stale=("frame_*.spz",)) as tmp:
        for i, name in enumerate(out.frames):
            save_spz(tmp / name, load_gaussians(m.frame_path(i)))
        if cam_file is not None:
            shutil.copyfile(cam_file, tmp / cam_file.name)
        (tmp / MANIFEST).write_text(_manifest_text(out))
    return path


def export_sequence(src: str | os.PathLike, path: str | os.PathLike, to: str, cameras: Cameras | None = None,
                    **options) -> Path:
    """Export the 4D sequence ``src`` (its folder or sequence.json) to ``path`` in format ``to`` (one of
    ``SEQUENCE_FORMATS``). USD formats take ``cameras`` and ``options`` (sh_degree, up_axis, meters_per_unit);
    ``path`` ends in .usdz/.usda/.usdc, .zip (ply-bundle) or names a folder (spz). Returns ``path``."""
    if to not in SEQUENCE_FORMATS:
        raise InputError(f"a 4D sequence exports to {', '.join(SEQUENCE_FORMATS)}, not {to!r}")
    path = Path(path)
    want = {"usdz": ".usdz", "usda": ".usda", "usdc": ".usdc", "ply-bundle": ".zip"}.get(to)
    if want is not None and path.suffix.lower() != want:
        raise InputError(f"{path}: a {to} export of a sequence needs a file name ending in {want}")
    if to == "spz" and path.suffix.lower() == ".spz":
        raise InputError(f"{path}: spz export of a sequence writes a folder (one .spz per frame); give a folder name")
    if to not in USD_SEQUENCE_FORMATS and (options or cameras is not None):
        raise InputError(f"{to} export of a sequence takes no options or cameras (it carries the manifest's)")
    m = read_manifest(src)
    if to in USD_SEQUENCE_FORMATS:
        return save_usd_sequence_from(m, path, cameras, **options)
    if to == "ply-bundle":
        return save_ply_bundle(m, path)
    return save_spz_frames(m, path)


__all__ = ["EXPERIMENTAL_NOTE", "SEQUENCE_FORMATS", "export_sequence", "is_sequence_path", "save_ply_bundle",
           "save_spz_frames", "save_usd_sequence_from", "sequence_time_codes"]
