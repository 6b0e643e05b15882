"""Operations on Gaussian sets: opacity pruning, merging, rigid/similarity transforms, quaternion maths.

Quaternions are (w, x, y, z) (Hamilton convention, rotating column vectors: v' = q v q*).
Transforms rotate the view-dependent colour too: spherical-harmonics bands of any degree (0..3) are
rotated with per-band rotation matrices (the real Wigner-D matrices of the 3DGS SH basis), computed
numerically from the basis itself so the result matches the renderer's basis and sign convention.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import Tensor

from lyra.gaussians.gaussians import SH_C0, GaussianError, Gaussians

# ---------------------------------------------------------------------------------------------- quaternions


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product ``a ⊗ b`` of (w, x, y, z) quaternions [..., 4] (broadcasting); rotation b then a."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        dim=-1,
    )


def quat_to_rotmat(q: Tensor) -> Tensor:
    """Rotation matrices [..., 3, 3] of (w, x, y, z) quaternions [..., 4] (normalised first)."""
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    rows = (
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    )  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*q.shape[:-1], 3, 3)


def rotmat_to_quat(R: Tensor) -> Tensor:
    """Unit (w, x, y, z) quaternions [..., 4] with w >= 0 of rotation matrices [..., 3, 3].

    Shepperd's method: for each matrix the numerically best of the four candidate formulas is used.
    """
    if R.shape[-2:] != (3, 3):
        raise GaussianError(f"rotmat_to_quat expects [..., 3, 3] matrices, got {list(R.shape)}")
    m = R.reshape(-1, 3, 3)
    m00, m01, m02 = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    m10, m11, m12 = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    m20, m21, m22 = m[:, 2, 0], m[:, 2, 1], m[:, 2, 2]
    # 4*w^2, 4*x^2, 4*y^2, 4*z^2
    sq = torch.stack((1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22), dim=-1)
    best = sq.argmax(dim=-1)
    r = sq.clamp_min(1e-30).sqrt()  # 2*|component|
    cands = torch.stack(
        (
            torch.stack((r[:, 0] ** 2, m21 - m12, m02 - m20, m10 - m01), -1) / (2 * r[:, 0:1]),
            torch.stack((m21 - m12, r[:, 1] ** 2, m01 + m10, m02 + m20), -1) / (2 * r[:, 1:2]),
            torch.stack((m02 - m20, m01 + m10, r[:, 2] ** 2, m12 + m21), -1) / (2 * r[:, 2:3]),
            torch.stack((m10 - m01, m02 + m20, m12 + m21, r[:, 3] ** 2), -1) / (2 * r[:, 3:4]),
        ),
        dim=1,
    )  # [M, 4 candidates, 4]
    q = cands[torch.arange(m.shape[0], device=R.device), best]
    q = q / q.norm(dim=-1, keepdim=True)
    q = torch.where(q[:, :1] < 0, -q, q)
    return q.reshape(*R.shape[:-2], 4)


def covariances(g: Gaussians) -> Tensor:
    """[N, 3, 3] world-space covariances R diag(s)^2 R^T (scene units^2)."""
    M = quat_to_rotmat(g.quats) * g.scales[:, None, :]
    return M @ M.transpose(-1, -2)


# ---------------------------------------------------------------------------------------------- pruning


def num_kept(n: int, ratio: float) -> int:
    """floor(n * (1 - ratio)), robust to float noise (10,222,080 at 0.8 keeps 2,044,416)."""
    if not 0.0 <= ratio <= 1.0:
        raise GaussianError(f"prune ratio must lie in [0, 1], got {ratio}")
    return min(n, math.floor(n * (1.0 - ratio) + 1e-6))


def prune_by_opacity_ratio(g: Gaussians, ratio: float) -> Gaussians:
    """Keep the floor(N * (1 - ratio)) most opaque Gaussians (method §4.1).

    Ties are broken by index (stable sort), so the result is deterministic. The kept Gaussians are
    returned in their original relative order (the official code returns them sorted by opacity; the
    set is the same, and rendering does not depend on the order).
    """
    k = num_kept(len(g), ratio)
    if k == len(g):
        return g
    order = torch.sort(g.opacities, descending=True, stable=True).indices[:k]
    return g.index(order.sort().values)


def prune_by_opacity(g: Gaussians, min_opacity: float) -> Gaussians:
    """Keep the Gaussians whose opacity is >= ``min_opacity`` (original order)."""
    return g.index(g.opacities >= min_opacity)


# ---------------------------------------------------------------------------------------------- merge


def _colors_to_sh(colors: Tensor, degree: int) -> Tensor:
    """RGB [N, 3] as SH [N, (degree+1)^2, 3]: DC = (rgb - 0.5) / C0, higher bands zero (lossless)."""
    sh = colors.new_zeros(colors.shape[0], (degree + 1) ** 2, 3)
    sh[:, 0] = (colors - 0.5) / SH_C0
    return sh


def merge(sets: Sequence[Gaussians]) -> Gaussians:
    """Concatenate Gaussian sets (in order).

    Colour: all-RGB sets stay RGB. If any set carries SH, all SH sets must share one degree (else
    GaussianError) and RGB sets are converted to SH of that degree (DC from the colour, higher bands
    zero; this is exact). ``times`` must be present on all sets or on none. Tensors must share a device.
    """
    sets = list(sets)
    if not sets:
        raise GaussianError("merge needs at least one Gaussian set")
    if len(sets) == 1:
        return sets[0]
    device = sets[0].device
    for i, s in enumerate(sets):
        if s.device != device:
            raise GaussianError(f"merge: set {i} is on {s.device}, set 0 on {device}")
    degrees = {s.sh_degree for s in sets if s.sh is not None}
    if len(degrees) > 1:
        raise GaussianError(f"merge: SH degrees differ ({sorted(degrees)}); convert them to one degree first")
    with_times = [s.times is not None for s in sets]
    if any(with_times) and not all(with_times):
        raise GaussianError("merge: some sets have times and some do not (4D and 3D sets cannot be mixed)")

    def cat(name: str) -> Tensor:
        return torch.cat([getattr(s, name) for s in sets])

    colors = sh = None
    if degrees:
        (deg,) = degrees
        sh = torch.cat([s.sh if s.sh is not None else _colors_to_sh(s.colors, deg) for s in sets])
    else:
        colors = cat("colors")
    return Gaussians(
        means=cat("means"),
        quats=cat("quats"),
        scales=cat("scales"),
        opacities=cat("opacities"),
        colors=colors,
        sh=sh,
        times=cat("times") if all(with_times) else None,
    )


# ---------------------------------------------------------------------------------------------- SH rotation

SH_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def sh_basis(dirs: Tensor, degree: int) -> Tensor:
    """The 3DGS real SH basis (with its signs, as in its ``eval_sh``): unit dirs [..., 3] -> [..., (degree+1)^2]."""
    if not 0 <= degree <= 3:
        raise ValueError(f"SH degree must be 0..3, got {degree}")
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        out += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [
            _C2[0] * x * y,
            _C2[1] * y * z,
            _C2[2] * (2 * zz - xx - yy),
            _C2[3] * x * z,
            _C2[4] * (xx - yy),
        ]
    if degree >= 3:
        out += [
            _C3[0] * y * (3 * xx - yy),
            _C3[1] * x * y * z,
            _C3[2] * y * (4 * zz - xx - yy),
            _C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            _C3[4] * x * (4 * zz - xx - yy),
            _C3[5] * z * (xx - yy),
            _C3[6] * x * (xx - 3 * yy),
        ]
    return torch.stack(out, dim=-1)


def sh_rotation_matrix(R: Tensor, degree: int) -> Tensor:
    """Block-diagonal [K, K] matrix D (float64) with ``sh_rotated[:, k] = sum_j D[k, j] sh[:, j]``.

    The rotated set's colour in direction d equals the original's in direction R^T d. Each band l is an
    invariant (2l+1)-dim subspace, so D is found exactly by least squares on sample directions.
    """
    K = (degree + 1) ** 2
    gen = torch.Generator().manual_seed(0)
    dirs = torch.randn(4 * K + 8, 3, generator=gen, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    R64 = R.detach().to("cpu", torch.float64)
    A = sh_basis(dirs, degree)  # Y(d)
    B = sh_basis(dirs @ R64, degree)  # Y(R^T d)  (row d^T R = (R^T d)^T)
    # Want A c' = B c for all c  ->  c' = lstsq(A, B) c
    D = torch.linalg.lstsq(A, B).solution
    # zero the numerically-zero couplings between different bands
    band = torch.cat([torch.full((2 * l + 1,), l) for l in range(degree + 1)])
    return D * (band[:, None] == band[None, :])


def rotate_sh(sh: Tensor, R: Tensor) -> Tensor:
    """SH coefficients [N, K, 3] of a set rotated by R [3, 3] (band 0 unchanged)."""
    degree = round(sh.shape[1] ** 0.5) - 1
    if degree == 0:
        return sh
    D = sh_rotation_matrix(R, degree).to(sh.device, sh.dtype)
    return torch.einsum("kj,njc->nkc", D, sh)


# ---------------------------------------------------------------------------------------------- transform


def transform(g: Gaussians, R: Tensor, t: Tensor, scale: float = 1.0) -> Gaussians:
    """Apply x -> scale * R x + t to a Gaussian set.

    Args:
        R: [3, 3] proper rotation (orthonormal, det +1; reflections cannot be expressed by quaternions).
        t: [3] translation (scene units, after scaling).
        scale: uniform factor > 0 applied to means (about the origin) and to the scales.

    Quaternions are left-multiplied by R's quaternion; SH bands are rotated (see ``rotate_sh``);
    opacities, RGB colours and times are unchanged.
    """
    R = torch.as_tensor(R)
    t = torch.as_tensor(t)
    if R.shape != (3, 3) or t.shape != (3,):
        raise GaussianError(f"transform expects R [3, 3] and t [3], got {list(R.shape)} and {list(t.shape)}")
    if not scale > 0 or not math.isfinite(scale):
        raise GaussianError(f"transform scale must be a finite number > 0, got {scale}")
    R64 = R.detach().to("cpu", torch.float64)
    if not torch.allclose(R64 @ R64.T, torch.eye(3, dtype=torch.float64), atol=1e-5):
        raise GaussianError("transform: R is not orthonormal")
    if torch.linalg.det(R64) < 0:
        raise GaussianError("transform: R has det -1 (a reflection); only proper rotations are supported")
    dtype, device = g.means.dtype, g.device
    Rd = R.to(device, dtype)
    qR = rotmat_to_quat(R64).to(device, dtype)
    quats = quat_multiply(qR.expand_as(g.quats), g.quats)
    return replace(
        g,
        means=scale * (g.means @ Rd.T) + t.to(device, dtype),
        quats=quats,
        scales=g.scales * scale,
        sh=None if g.sh is None else rotate_sh(g.sh, R64),
    )
