"""Export: Gaussian scenes to the formats other tools read (USD/USDZ, SPZ, COLMAP text, PLY with SH 3).

- ``usdz``: an ``UsdVol.ParticleField3DGaussianSplat`` stage packaged as .usdz (Isaac Sim / Omniverse,
  any OpenUSD >= 26.03 reader); ``usda`` / ``usdc``: the same stage as a text / binary layer;
- ``spz``: Niantic SPZ (gzip container, version 3), lossy (SPZ viewers, gsply);
- ``colmap``: a folder with cameras.txt, images.txt, points3D.txt (needs cameras; COLMAP, 3DGS trainers);
- ``ply-sh3``: 3DGS binary PLY with degree-3 ``f_rest`` (45 zeros for degree 0; Isaac Sim 3DGS tools).

4D sequences (a ``sequence.json`` folder) go through :func:`export_sequence` (``lyra.export.sequence``): one
time-sampled USD stage (experimental), a PLY bundle (.zip) or a folder of SPZ frames.

Axis conventions are stated in each module (USD: data in our OpenCV frame under a Y-up or Z-up
rotation Xform; SPZ, PLY and COLMAP: OpenCV frame as is).
"""

from __future__ import annotations

import os
from pathlib import Path

from lyra.cameras import Cameras
from lyra.errors import InputError
from lyra.export.sequence import SEQUENCE_FORMATS, export_sequence, is_sequence_path
from lyra.gaussians import Gaussians

EXPORT_FORMATS = ("usdz", "usda", "usdc", "spz", "colmap", "ply-sh3")
_SUFFIXES = {".usdz": "usdz", ".usda": "usda", ".usdc": "usdc", ".spz": "spz", ".ply": "ply-sh3"}


def format_from_path(path: str | os.PathLike) -> str:
    """The export format implied by a file name (a path without a known suffix means a COLMAP folder)."""
    return _SUFFIXES.get(Path(path).suffix.lower(), "colmap")


def export_scene(
    g: Gaussians,
    path: str | os.PathLike,
    to: str | None = None,
    cameras: Cameras | None = None,
    **options,
) -> Path:
    """Export ``g`` to ``path`` in format ``to`` (one of ``EXPORT_FORMATS``; None: from the suffix).

    ``cameras`` are required for "colmap" and added as USD cameras to usd* exports; SPZ and PLY
    ignore them. ``options`` go to the writer: usd* take ``sh_degree``, ``up_axis``,
    ``meters_per_unit`` (see ``lyra.export.usd.save_usd``); colmap takes ``image_names``.
    Returns the written file (or folder).
    """
    fmt = to or format_from_path(path)
    path = Path(path)
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "colmap":
        if cameras is None:
            raise InputError("COLMAP export needs cameras (--cameras cams.npz)")
        from lyra.export.colmap import save_colmap

        return save_colmap(path, g, cameras, **options)
    if options and fmt in ("spz", "ply-sh3"):
        raise InputError(f"{fmt} export takes no options (got {sorted(options)})")
    want = {"usdz": ".usdz", "usda": ".usda", "usdc": ".usdc", "spz": ".spz", "ply-sh3": ".ply"}[fmt]
    if path.suffix.lower() != want:
        raise InputError(f"{path}: a {fmt} export needs a file name ending in {want}")
    if fmt.startswith("usd"):
        from lyra.export.usd import save_usd

        return save_usd(path, g, cameras, **options)
    if fmt == "spz":
        from lyra.gaussians import save_spz

        save_spz(path, g)
    else:
        from lyra.gaussians import save_ply

        save_ply(path, g, pad_sh3=True)
    return path


__all__ = ["EXPORT_FORMATS", "SEQUENCE_FORMATS", "export_scene", "export_sequence", "format_from_path",
           "is_sequence_path"]
