"""PLY I/O of Gaussian sets in the standard 3DGS binary layout (through plyfile).

Layout written (one ``vertex`` element, little-endian float32 properties, in this order)::

    x y z [nx ny nz] f_dc_0..2 [f_rest_0..f_rest_{3(K-1)-1}] opacity scale_0..2 rot_0..3 [time]

Stored values are the standard pre-activation fields:

- ``opacity`` = logit(o) after clamping o to [1e-6, 1 - 1e-6], so stored logits lie in
  [-13.8155, 13.8155] (a file with larger logits is clamped when re-saved);
- ``scale_i`` = ln(s_i);
- ``f_dc_c`` = SH DC coefficient; for RGB sets (rgb - 0.5) / C0;
- ``f_rest`` is channel-major as in 3DGS: index c*(K-1) + (k-1) holds ``sh[:, k, c]`` (all of R's
  rest coefficients, then G's, then B's);
- ``rot_0..3`` = the quaternion (w, x, y, z) as held (not re-normalised);
- ``nx ny nz`` are zeros (3DGS tools expect them); ``time`` only for 4D sets.

Logits and logs are computed in float64 and rounded once to float32; the other fields are cast
directly. Loading computes the activations in float64 too; with ``dtype=torch.float64`` a
load -> save cycle reproduces the stored float32 fields bit for bit (float32 in memory costs a few
ulps in ``opacity`` and ``scale_*``; the other fields stay exact).

Loaded sets always carry ``sh`` (degree 0 -> [N, 1, 3]), never ``colors``: a DC coefficient need not
map into [0, 1], and keeping SH keeps the file's values exact.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData, PlyElement, PlyListProperty

from lyra.errors import reading
from lyra.gaussians.gaussians import SH_C0, GaussianError, Gaussians, sh_degree_of
from lyra.utils.files import atomic_write
from lyra.utils.inputs import require_file

PLY_TYPE_BYTES = {"char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
                  "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8}
MAX_PLY_HEADER = 1 << 16  # bytes searched for end_header
OPACITY_EPS = 1e-6  # opacities are clamped to [eps, 1 - eps] before the logit
WRITABLE_SH_DEGREES = (0, 3)


class PlyFormatError(GaussianError):
    """A PLY file that is not a readable 3DGS Gaussian PLY."""


# ---------------------------------------------------------------------------------------------- helpers


def _np64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _np(t: torch.Tensor) -> np.ndarray:
    """CPU numpy view/copy of a float tensor (float32/float64 kept, other floats widened)."""
    t = t.detach().cpu()
    return t.numpy() if t.dtype in (torch.float32, torch.float64) else t.to(torch.float64).numpy()


def pre_activation_fields(g: Gaussians, sh_degree: int) -> dict[str, np.ndarray]:
    """The stored (pre-activation) arrays: means [N,3], sh [N,K,3] (K for ``sh_degree``), logit opacity
    [N], log scales [N,3], quats [N,4], times [N] or None. Higher bands are zero-padded or truncated to
    ``sh_degree``. Logits, logs and RGB->DC are float64; the rest keep the set's float dtype."""
    K = (sh_degree + 1) ** 2
    n = len(g)
    if g.sh is not None:
        src = _np(g.sh)
    else:
        src = ((_np64(g.colors) - 0.5) / SH_C0)[:, None, :]
    sh = np.zeros((n, K, 3), dtype=src.dtype)
    k = min(K, src.shape[1])
    sh[:, :k] = src[:, :k]
    o = np.clip(_np64(g.opacities), OPACITY_EPS, 1.0 - OPACITY_EPS)
    with np.errstate(divide="ignore"):
        log_scales = np.log(_np64(g.scales))
    return {
        "means": _np(g.means),
        "sh": sh,
        "opacity": np.log(o) - np.log1p(-o),
        "log_scales": log_scales,
        "quats": _np(g.quats),
        "times": None if g.times is None else _np(g.times),
    }


def _target_degree(g: Gaussians, sh_degree: int | None, pad_sh3: bool) -> int:
    native = g.sh_degree or 0
    if sh_degree is None:
        sh_degree = 3 if (pad_sh3 or native in (1, 2)) else native
    if sh_degree not in WRITABLE_SH_DEGREES:
        raise GaussianError(f"save_ply writes SH degree 0 or 3, not {sh_degree}")
    if pad_sh3 and sh_degree != 3:
        raise GaussianError("save_ply: pad_sh3=True conflicts with sh_degree=0")
    return sh_degree


# ---------------------------------------------------------------------------------------------- save


def save_ply(
    path: str | os.PathLike,
    g: Gaussians,
    sh_degree: int | None = None,
    pad_sh3: bool = False,
    normals: bool = True,
) -> None:
    """Write ``g`` as a binary little-endian 3DGS PLY (atomically: temp file + rename).

    Args:
        sh_degree: 0 or 3. None = native: the set's degree, with degree 1/2 zero-padded to 3 (only
            0 and 3 are written). A lower degree than the set's drops the higher bands.
        pad_sh3: write degree-3 ``f_rest`` (45 zeros for an RGB / degree-0 set); Isaac Sim tooling
            rejects PLYs without ``f_rest``.
        normals: write zero ``nx ny nz`` (as 3DGS does).
    """
    g.validate(check_values=True)
    deg = _target_degree(g, sh_degree, pad_sh3)
    f = pre_activation_fields(g, deg)
    K = (deg + 1) ** 2
    n = len(g)
    cols: list[tuple[str, np.ndarray]] = [(a, f["means"][:, i]) for i, a in enumerate("xyz")]
    if normals:
        cols += [(a, np.zeros(n)) for a in ("nx", "ny", "nz")]
    cols += [(f"f_dc_{c}", f["sh"][:, 0, c]) for c in range(3)]
    rest = f["sh"][:, 1:, :].transpose(0, 2, 1).reshape(n, 3 * (K - 1))  # channel-major
    cols += [(f"f_rest_{i}", rest[:, i]) for i in range(3 * (K - 1))]
    cols.append(("opacity", f["opacity"]))
    cols += [(f"scale_{i}", f["log_scales"][:, i]) for i in range(3)]
    cols += [(f"rot_{i}", f["quats"][:, i]) for i in range(4)]
    if f["times"] is not None:
        cols.append(("time", f["times"]))
    arr = np.empty(n, dtype=[(name, "<f4") for name, _ in cols])
    for name, v in cols:
        arr[name] = v
    ply = PlyData([PlyElement.describe(arr, "vertex")], text=False, byte_order="<")
    atomic_write(path, ply.write)


# ---------------------------------------------------------------------------------------------- load


def check_ply_header(path: Path, error: type[GaussianError] = PlyFormatError) -> None:
    """Check that the elements a PLY header declares can fit in the file, before any reader allocates them.

    Binary rows need the sum of their property sizes (a list at least its length prefix); ASCII rows at least
    one character per property. A header promising more (10^8 vertices in a 1 KB file) is refused.
    """
    with open(path, "rb") as fh:
        head = fh.read(MAX_PLY_HEADER)
    if not head.startswith(b"ply"):
        raise error(path, "not a PLY file (it does not start with 'ply')")
    end = head.find(b"end_header")
    nl = head.find(b"\n", end)
    if end < 0 or nl < 0:
        raise error(path, f"no end_header line in the first {MAX_PLY_HEADER} bytes (truncated or not a PLY file)")
    binary, elements = True, []
    for line in head[:end].decode("ascii", errors="replace").splitlines():
        words = line.split()
        if words[:1] == ["format"]:
            binary = len(words) > 1 and words[1] != "ascii"
        elif words[:1] == ["element"]:
            if len(words) != 3 or not words[2].isdigit():
                raise error(path, f"malformed PLY element line {line.strip()[:60]!r}")
            elements.append([words[1], int(words[2]), 0])
        elif words[:1] == ["property"] and elements and len(words) >= 3:
            t = words[2] if words[1] == "list" else words[1]
            elements[-1][2] += PLY_TYPE_BYTES.get(t, 1) if binary else 1
    have = path.stat().st_size - (nl + 1)
    need = 0
    for name, count, row in elements:
        need += count * row
        if need > have:
            raise error(path, f"header promises {count} '{name}' elements (at least {need} bytes) but {have} bytes "
                              "follow (truncated or corrupt)")


def read_vertex_fields(path: str | os.PathLike, error: type[GaussianError] = PlyFormatError) -> dict:
    """Read a PLY's ``vertex`` element as {property name: array [N] (file dtype) or PlyListProperty}."""
    path = require_file(path, "PLY file", error)
    check_ply_header(path, error)
    with reading(path, "not a readable PLY file", error), open(path, "rb") as fh:
        # memory-mapped (fast); fields are copied out before closing
        ply = PlyData.read(fh)
        fields = _copy_vertex_fields(ply)
    if fields is None:
        raise error(f"{path}: no 'vertex' element (elements: {[e.name for e in ply.elements]})")
    return fields


def _copy_vertex_fields(ply: PlyData) -> dict | None:
    if "vertex" not in [e.name for e in ply.elements]:
        return None
    vert = ply["vertex"]
    out = {}
    for prop in vert.properties:
        if isinstance(prop, PlyListProperty):
            out[prop.name] = prop  # only an error if the loader needs it
        else:
            v = vert.data[prop.name]
            out[prop.name] = np.array(v, dtype=v.dtype.newbyteorder("="))  # native order (torch needs it)
    return out


def _field(fields: dict, name: str, path: Path) -> np.ndarray:
    if name not in fields:
        raise PlyFormatError(f"{path}: missing vertex property '{name}'")
    v = fields[name]
    if isinstance(v, PlyListProperty):
        raise PlyFormatError(f"{path}: vertex property '{name}' is a list property, expected a float scalar")
    if v.dtype.kind != "f":
        raise PlyFormatError(f"{path}: vertex property '{name}' has type {v.dtype}, expected float32/float64")
    if not np.isfinite(v).all():
        rows = np.nonzero(~np.isfinite(v))[0][:5].tolist()
        raise PlyFormatError(f"{path}: vertex property '{name}' has NaN/Inf values (first rows: {rows})")
    return v


def gaussians_from_pre_activation(
    means: np.ndarray,
    sh: np.ndarray,
    opacity_logits: np.ndarray,
    log_scales: np.ndarray,
    quats: np.ndarray,
    times: np.ndarray | None,
    dtype: torch.dtype,
    source: str,
    error: type[GaussianError],
) -> Gaussians:
    """Activate stored arrays (shapes as in ``pre_activation_fields``) into a checked set (float64 maths)."""
    with np.errstate(over="ignore", under="ignore"):
        scales = np.exp(log_scales.astype(np.float64))
        opac = 1.0 / (1.0 + np.exp(-opacity_logits.astype(np.float64)))

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(dtype)

    try:
        g = Gaussians(
            means=t(means),
            quats=t(quats),
            scales=t(scales),
            opacities=t(opac),
            sh=t(sh),
            times=None if times is None else t(times),
        )
        return g.validate(check_values=True)
    except GaussianError as exc:
        raise error(f"{source}: {exc}") from exc


def load_ply(path: str | os.PathLike, dtype: torch.dtype = torch.float32) -> Gaussians:
    """Read a 3DGS PLY (any property order, float32/float64, with or without normals / f_rest / time).

    Returns activated values (see module docstring) on the CPU as ``dtype``; SH degree from the
    number of ``f_rest_*`` properties (0, 9, 24 or 45 -> degree 0..3).
    Raises FileNotFoundError, or PlyFormatError naming the file and the offending property.
    """
    path = Path(path)
    fields = read_vertex_fields(path)

    def col(name: str) -> np.ndarray:
        return _field(fields, name, path)

    def stack(names: list[str]) -> np.ndarray:
        return np.stack([col(nm) for nm in names], axis=-1)

    n_rest = sum(1 for name in fields if name.startswith("f_rest_"))
    if n_rest % 3:
        raise PlyFormatError(f"{path}: {n_rest} f_rest properties is not a multiple of 3")
    try:
        deg = sh_degree_of(n_rest // 3 + 1)
    except GaussianError:
        raise PlyFormatError(
            f"{path}: {n_rest} f_rest properties does not match any SH degree (expect 0, 9, 24 or 45)"
        ) from None
    K = (deg + 1) ** 2
    means = stack(["x", "y", "z"])
    n = means.shape[0]
    color = stack([f"f_dc_{c}" for c in range(3)] + [f"f_rest_{i}" for i in range(3 * (K - 1))])
    rest = color[:, 3:].reshape(n, 3, K - 1).transpose(0, 2, 1)  # channel-major in the file
    sh = np.concatenate([color[:, None, :3], rest], axis=1)
    return gaussians_from_pre_activation(
        means=means,
        sh=sh,
        opacity_logits=col("opacity"),
        log_scales=stack([f"scale_{i}" for i in range(3)]),
        quats=stack([f"rot_{i}" for i in range(4)]),
        times=col("time") if "time" in fields else None,
        dtype=dtype,
        source=str(path),
        error=PlyFormatError,
    )
