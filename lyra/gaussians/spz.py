"""SPZ (Niantic's compressed splat format) I/O of Gaussian sets, through gsply.

gsply conventions (checked against gsply 0.4.6, ``gsply/spz.py``): ``write_spz`` / ``read_spz`` take and
return a ``GSData`` in *PLY format*, i.e. pre-activation values exactly like our PLY fields: means
linear, scales as ln(s), opacities as logits, quaternions unit (w, x, y, z) (gsply converts to/from
SPZ's xyzw on disk), ``sh0`` = SH DC [N, 3], ``shN`` = higher bands [N, K-1, 3] (coefficient-major,
channel innermost: the same layout as our ``sh[:, 1:]``). ``write_spz`` does not look at the GSData's
format tag, so the arrays must already be pre-activation. We write the legacy gzip container,
version 3 (smallest-three quaternions), which every SPZ reader accepts.

Quantisation (hence the round-trip tolerances; values outside the ranges are clipped by gsply):

- positions: 24-bit signed fixed point with ``fractional_bits`` (12 by default: step 1/4096, range
  ±2048 units; ``save_spz`` lowers the bits automatically when the set extends further);
- opacity: round(o * 255) -> error <= 0.5/255 (a stored 0 reads back as 1e-6: gsply clamps the logit);
- colour: SH DC byte = dc * 0.15 * 255 + 127.5 -> DC step 1/38.25, RGB error <= C0/76.5 ≈ 0.0037,
  DC range ±3.33 (RGB -0.44..1.44);
- scales: byte = (ln s + 10) * 16 -> ln s error <= 1/32 (relative ≈ 3.2 %), s in [4.5e-5, 379];
- rotations: smallest-three with 9-bit magnitudes -> per-component error <= ~1e-3 (sign of q free);
- higher SH bands: byte = sh * 128 + 128 -> error <= 1/256, range [-1, 127/128].

Coordinates are stored as given (no axis conversion), like Niantic's own ``ply_to_spz`` tool and gsply:
our scenes are OpenCV (RDF). The SPZ specification's internal frame is RUB; for a viewer that
converts from RUB, first apply ``transform(g, diag(1, -1, -1), 0)``. SPZ has no time field: 4D sets
are refused.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from lyra.errors import reading
from lyra.gaussians.gaussians import GaussianError, Gaussians
from lyra.gaussians.ply import gaussians_from_pre_activation, pre_activation_fields
from lyra.utils.files import atomic_write
from lyra.utils.inputs import require_file

DEFAULT_FRACTIONAL_BITS = 12
SPZ_MAX_POINT_BYTES = 9 + 1 + 3 + 3 + 4 + 45  # position, alpha, colour, scale, rotation, SH 3 rest
SPZ_VERSION = 3


class SpzFormatError(GaussianError):
    """An SPZ file that cannot be read (corrupt, truncated, not SPZ)."""


def _fractional_bits(max_abs: float) -> int:
    """The most fractional bits (<= 12) for which ±max_abs fits 24-bit signed fixed point."""
    if max_abs <= 0:
        return DEFAULT_FRACTIONAL_BITS
    bits = min(DEFAULT_FRACTIONAL_BITS, math.floor(math.log2((2**23 - 1) / max_abs)))
    if bits < 1:
        raise GaussianError(f"save_spz: positions up to {max_abs:g} units do not fit SPZ's 24-bit fixed point")
    return bits


def save_spz(path: str | os.PathLike, g: Gaussians) -> None:
    """Write ``g`` as an SPZ file (gzip container, version 3; lossy, see module docstring).

    SH degree is kept (0..3); RGB sets are written as degree 0. Written atomically.
    """
    import gsply

    g.validate(check_values=True)
    if g.times is not None:
        raise GaussianError("save_spz: SPZ has no time field; save 4D sets as PLY (or drop times)")
    f = pre_activation_fields(g, g.sh_degree or 0)
    means = f["means"].astype(np.float32)
    bits = _fractional_bits(float(np.abs(f["means"]).max(initial=0.0)))
    sh = f["sh"].astype(np.float32)
    data = gsply.GSData.from_arrays(
        means=means,
        scales=f["log_scales"].astype(np.float32),
        quats=f["quats"].astype(np.float32),
        opacities=f["opacity"].astype(np.float32),
        sh0=np.ascontiguousarray(sh[:, 0]),
        shN=np.ascontiguousarray(sh[:, 1:]) if sh.shape[1] > 1 else None,
        format="ply",
    )
    atomic_write(path, lambda tmp: gsply.write_spz(tmp, data, version=SPZ_VERSION, fractional_bits=bits))


def _inflated(fh: BinaryIO) -> Iterator[bytes]:
    """The inflated bytes of a gzip stream, in pieces of at most 1 MiB (never all at once)."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    while not inflate.eof and (chunk := inflate.unconsumed_tail or fh.read(1 << 16)):
        yield inflate.decompress(chunk, 1 << 20)


def check_spz_size(path: Path) -> None:
    """Refuse a gzip SPZ that inflates beyond what its header's point count allows (a decompression bomb).

    Streams the inflated bytes (nothing kept) up to 16 + N * SPZ_MAX_POINT_BYTES; other containers pass.
    """
    with open(path, "rb") as fh, reading(path, "not a readable SPZ file", SpzFormatError):
        if fh.read(2) != b"\x1f\x8b":
            return
        fh.seek(0)
        head, total, limit = b"", 0, None
        for out in _inflated(fh):
            total += len(out)
            if limit is None:
                head += out[:16]
                if len(head) < 16:
                    continue
                if head[:4] != b"NGSP":
                    raise SpzFormatError(path, f"not an SPZ file (inflated header {head[:4]!r}, expected b'NGSP')")
                limit = 16 + int.from_bytes(head[8:12], "little") * SPZ_MAX_POINT_BYTES
            if total > limit:
                raise SpzFormatError(path, f"inflates to more than the {limit} bytes its header's point count "
                                           "allows (corrupt, or a decompression bomb)")


def load_spz(path: str | os.PathLike, dtype: torch.dtype = torch.float32) -> Gaussians:
    """Read an SPZ file (any container gsply reads: gzip v1-v3, NGSP v4 with ``zstandard``).

    Returns activated values on the CPU as ``dtype``, colour as ``sh`` [N, K, 3] (degree 0 -> K = 1).
    Raises FileNotFoundError or SpzFormatError naming the file.
    """
    import gsply

    path = require_file(path, "SPZ file", SpzFormatError)
    check_spz_size(path)
    with reading(path, "not a readable SPZ file", SpzFormatError):
        data = gsply.read_spz(path)
    n = data.means.shape[0]
    sh0 = np.asarray(data.sh0, dtype=np.float64).reshape(n, 1, 3)
    shN = data.shN  # noqa: N806
    if shN is not None and np.asarray(shN).size > 0:
        sh = np.concatenate([sh0, np.asarray(shN, dtype=np.float64).reshape(n, -1, 3)], axis=1)
    else:
        sh = sh0
    return gaussians_from_pre_activation(
        means=np.asarray(data.means, dtype=np.float64),
        sh=sh,
        opacity_logits=np.asarray(data.opacities, dtype=np.float64).reshape(n),
        log_scales=np.asarray(data.scales, dtype=np.float64),
        quats=np.asarray(data.quats, dtype=np.float64),
        times=None,
        dtype=dtype,
        source=str(path),
        error=SpzFormatError,
    )
