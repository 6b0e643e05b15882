"""TSDF fusion of z-depth + alpha maps into a voxel grid (numpy, CPU), with the "carving + sky is free" policy.

Policy per voxel (measured best in docs/sim.md and the design note on simulation):

* seen in front of a surface (or on a ray that hit nothing, alpha < ``alpha_min``): free, +1;
* within ``trunc`` of a surface: the usual truncated signed distance (positive in front), averaged over views;
* behind a surface in some view and seen in front of one in none: solid, -1 ("unseen space behind surfaces");
* seen by no camera at all: free, +1.

The grid lives in a frame of its own (``grid_from_scene``: a rigid 4x4, e.g. gravity-aligned with the ground at
z = 0); voxel centres are ``lo + (index + 0.5) * voxel`` in that frame, in scene units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lyra.sim.errors import SimError

SKY_SDF = 1e3  # signed distance given to voxels on rays that hit nothing (clipped to +1 later)


@dataclass
class Volume:
    """A fused TSDF grid.

    Attributes:
        tsdf: [X, Y, Z] float32 in [-1, 1]; < 0 solid, > 0 free (truncated distance / trunc).
        weight: [X, Y, Z] float32 number of views that updated each voxel.
        lo: [3] grid-frame coordinates of the grid's lower corner (scene units).
        voxel: voxel edge length (scene units).
        grid_from_scene: [4, 4] rigid transform from scene (camera world) coordinates to the grid frame.
    """

    tsdf: np.ndarray
    weight: np.ndarray
    lo: np.ndarray
    voxel: float
    grid_from_scene: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.tsdf.shape)  # type: ignore[return-value]

    def centers(self, axis: int) -> np.ndarray:
        """[n] voxel-centre coordinates along ``axis`` (grid frame, scene units)."""
        return self.lo[axis] + (np.arange(self.tsdf.shape[axis]) + 0.5) * self.voxel


def grid_shape(lo: np.ndarray, hi: np.ndarray, voxel: float) -> tuple[int, int, int]:
    """Number of voxels per axis covering [lo, hi] (at least 2 each)."""
    n = np.maximum(np.ceil((np.asarray(hi) - np.asarray(lo)) / voxel - 1e-6).astype(int), 2)
    return int(n[0]), int(n[1]), int(n[2])


def fuse_tsdf(
    depths: np.ndarray,
    alphas: np.ndarray | None,
    w2c: np.ndarray,
    K: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    voxel: float,
    trunc_voxels: float = 3.0,
    alpha_min: float = 0.5,
    grid_from_scene: np.ndarray | None = None,
    near: float = 1e-3,
    max_elements: int = 1 << 20,
    pixel_weights: np.ndarray | None = None,
) -> Volume:
    """Fuse N depth maps into a TSDF over the box [lo, hi] of the grid frame.

    Args:
        depths: [N, H, W] camera-space z (scene units); 0 or non-finite = no hit.
        alphas: [N, H, W] accumulated opacity in [0, 1], or None (hit where depth > 0). A pixel with
            alpha < ``alpha_min`` is a ray that hit nothing: the space along it is observed free.
        w2c: [N, 4, 4] world-to-camera (OpenCV axes, scene coordinates).
        K: [N, 3, 3] pixel intrinsics.
        lo, hi: [3] grid box corners in the grid frame (scene units).
        voxel: voxel edge (scene units).
        trunc_voxels: truncation distance in voxels.
        grid_from_scene: [4, 4] rigid scene -> grid transform (identity when None).
        near: voxels closer than this to a camera (camera z) are not projected.
        max_elements: voxels processed at once (bounds memory, about 100 bytes each).
        pixel_weights: [N, H, W] weight of each pixel's depth in the running average (e.g. the cosine of
            the incidence angle, :func:`incidence_cos`); rays that hit nothing always weigh 1.
    Returns:
        the fused :class:`Volume`.
    """
    depths = np.asarray(depths, dtype=np.float32)
    if depths.ndim != 3:
        raise SimError(f"fuse_tsdf: depths must be [N, H, W], got {list(depths.shape)}")
    n, H, W = depths.shape
    if alphas is not None:
        alphas = np.asarray(alphas, dtype=np.float32).reshape(n, H, W)
    w2c = np.asarray(w2c, dtype=np.float64).reshape(n, 4, 4)
    K = np.asarray(K, dtype=np.float64).reshape(n, 3, 3)
    if not voxel > 0:
        raise SimError(f"fuse_tsdf: voxel must be > 0, got {voxel}")
    g2s = np.eye(4) if grid_from_scene is None else np.linalg.inv(np.asarray(grid_from_scene, dtype=np.float64))
    lo = np.asarray(lo, dtype=np.float64)
    shape = grid_shape(lo, np.asarray(hi, dtype=np.float64), voxel)
    X, Y, Z = shape
    trunc = float(trunc_voxels) * voxel
    tsdf = np.zeros(shape, np.float32)
    weight = np.zeros(shape, np.float32)
    behind = np.zeros(shape, bool)
    ys = (lo[1] + (np.arange(Y) + 0.5) * voxel).astype(np.float32)
    zs = (lo[2] + (np.arange(Z) + 0.5) * voxel).astype(np.float32)
    xs = (lo[0] + (np.arange(X) + 0.5) * voxel).astype(np.float32)
    slab = max(1, max_elements // (Y * Z))

    clean = np.where(np.isfinite(depths) & (depths > 0), depths, 0.0).astype(np.float32)
    if alphas is not None:
        hit = alphas >= alpha_min
        clean = np.where(hit, clean, 0.0)
    if pixel_weights is not None:
        pixel_weights = np.clip(np.asarray(pixel_weights, dtype=np.float32).reshape(n, H, W), 1e-4, None)
    for i in range(n):
        P = (w2c[i] @ g2s).astype(np.float32)  # grid -> camera
        R, t = P[:3, :3], P[:3, 3]
        Df = clean[i].ravel()
        Wf = None if pixel_weights is None else np.where(Df > 0, pixel_weights[i].ravel(), 1.0).astype(np.float32)
        fx, fy, cx, cy = (np.float32(K[i, 0, 0]), np.float32(K[i, 1, 1]), np.float32(K[i, 0, 2]),
                          np.float32(K[i, 1, 2]))
        # the y/z part of camera coordinates is shared by every x-slab
        base = [R[r, 1] * ys[:, None] + R[r, 2] * zs[None, :] + t[r] for r in range(3)]  # each [Y, Z]
        for x0 in range(0, X, slab):
            xv = xs[x0:x0 + slab, None, None]
            cxyz = [R[r, 0] * xv + base[r][None] for r in range(3)]  # each [s, Y, Z]
            cz = cxyz[2]
            front = cz > near
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                u = np.where(front, fx * cxyz[0] / cz + cx, -1.0)
                v = np.where(front, fy * cxyz[1] / cz + cy, -1.0)
            ok = front & (u >= 0) & (u < W) & (v >= 0) & (v < H)
            if not ok.any():
                continue
            pix = np.where(ok, v.astype(np.int64) * W + u.astype(np.int64), 0)
            d = np.where(ok, Df[pix], 0.0)
            sdf = np.where(d > 0, d - cz, SKY_SDF)  # no hit: observed free along the whole ray
            upd = ok & (sdf > -trunc)
            behind[x0:x0 + slab] |= ok & ~upd
            val = np.clip(sdf / trunc, -1.0, 1.0)
            ws = weight[x0:x0 + slab]
            ts = tsdf[x0:x0 + slab]
            wp = np.float32(1.0) if Wf is None else Wf[pix[upd]]
            ts[upd] = (ts[upd] * ws[upd] + val[upd] * wp) / (ws[upd] + wp)
            ws[upd] += wp
    out = np.where(weight > 0, tsdf, np.where(behind, -1.0, 1.0)).astype(np.float32)
    return Volume(out, weight, lo.astype(np.float64), float(voxel),
                  np.eye(4) if grid_from_scene is None else np.asarray(grid_from_scene, dtype=np.float64))


def incidence_cos(depths: np.ndarray, K: np.ndarray) -> np.ndarray:
    """[N, H, W] |cos| of the angle between each pixel's ray and the surface normal of depth maps [N, H, W]
    (normals from central differences of the unprojected points; 0 where a neighbour has no depth)."""
    depths = np.asarray(depths, dtype=np.float64)
    n, H, W = depths.shape
    K = np.asarray(K, dtype=np.float64).reshape(n, 3, 3)
    v, u = np.mgrid[0:H, 0:W] + 0.5
    out = np.zeros((n, H, W), np.float32)
    for i in range(n):
        z = depths[i]
        x = (u - K[i, 0, 2]) / K[i, 0, 0]
        y = (v - K[i, 1, 2]) / K[i, 1, 1]
        P = np.stack([x * z, y * z, z], -1)
        du = np.zeros_like(P)
        dv = np.zeros_like(P)
        du[:, 1:-1] = P[:, 2:] - P[:, :-2]
        dv[1:-1] = P[2:] - P[:-2]
        nrm = np.cross(du, dv)
        ln = np.linalg.norm(nrm, axis=-1)
        ray = np.stack([x, y, np.ones_like(x)], -1)
        ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.abs((nrm * ray).sum(-1)) / ln
        good = (ln > 0) & (z > 0)
        good[1:-1, 1:-1] &= (z[2:, 1:-1] > 0) & (z[:-2, 1:-1] > 0) & (z[1:-1, 2:] > 0) & (z[1:-1, :-2] > 0)
        good[[0, -1], :] = False
        good[:, [0, -1]] = False
        out[i] = np.where(good, np.nan_to_num(c), 0.0)
    return out
