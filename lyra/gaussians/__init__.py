"""Gaussians: the Gaussian set type, its operations and its file formats."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from lyra.gaussians.gaussians import SH_C0, GaussianError, Gaussians, sh_degree_of
from lyra.gaussians.ops import (
    covariances,
    merge,
    num_kept,
    prune_by_opacity,
    prune_by_opacity_ratio,
    quat_multiply,
    quat_to_rotmat,
    rotate_sh,
    rotmat_to_quat,
    sh_basis,
    sh_rotation_matrix,
    transform,
)
from lyra.gaussians.ply import PlyFormatError, load_ply, save_ply
from lyra.gaussians.spz import SpzFormatError, load_spz, save_spz

GAUSSIAN_EXTENSIONS = (".ply", ".spz")


def _extension(path: str | os.PathLike) -> str:
    ext = Path(path).suffix.lower()
    if ext not in GAUSSIAN_EXTENSIONS:
        raise GaussianError(
            f"{path}: unknown Gaussian file extension {ext or '(none)'!r}; expected one of {GAUSSIAN_EXTENSIONS}"
        )
    return ext


def load_gaussians(path: str | os.PathLike, dtype: torch.dtype = torch.float32, allow_empty: bool = True) -> Gaussians:
    """Load a Gaussian set from a .ply or .spz file (chosen by extension, case-insensitive).

    ``allow_empty=False`` refuses a file without Gaussians (a scene to render, view or export).
    """
    g = (load_ply if _extension(path) == ".ply" else load_spz)(path, dtype=dtype)
    if not allow_empty and len(g) == 0:
        raise GaussianError(path, "holds no Gaussians (0 vertices)")
    return g


def save_gaussians(path: str | os.PathLike, g: Gaussians) -> None:
    """Save a Gaussian set as .ply (native SH degree, normals) or .spz, chosen by extension."""
    (save_ply if _extension(path) == ".ply" else save_spz)(path, g)


__all__ = [
    "GAUSSIAN_EXTENSIONS",
    "SH_C0",
    "GaussianError",
    "Gaussians",
    "PlyFormatError",
    "SpzFormatError",
    "covariances",
    "load_gaussians",
    "load_ply",
    "load_spz",
    "merge",
    "num_kept",
    "prune_by_opacity",
    "prune_by_opacity_ratio",
    "quat_multiply",
    "quat_to_rotmat",
    "rotate_sh",
    "rotmat_to_quat",
    "save_gaussians",
    "save_ply",
    "save_spz",
    "sh_basis",
    "sh_degree_of",
    "sh_rotation_matrix",
    "transform",
]
