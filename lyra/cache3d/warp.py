"""Forward warping of a point cache into target cameras with a z-buffer (frames, depth and hole masks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from lyra.cache3d import warp_cpu
from lyra.cache3d.lift import PointCache, lift_points
from lyra.cameras.camera import Cameras

Footprint = Literal["nearest", "bilinear"]


@dataclass(frozen=True)
class WarpResult:
    """Forward-warped frames of a point cache.

    Attributes:
        rgb: [N, C, H, W] colours of the winning points (``background`` in holes).
        depth: [N, 1, H, W] camera-space z of the winning points (0 in holes).
        mask: [N, 1, H, W] float32, 1 where some point landed, 0 in holes.
        index: [N, 1, H, W] int64 index into the cache of the nearest point at each pixel (-1 in holes).
    """

    rgb: Tensor
    depth: Tensor
    mask: Tensor
    index: Tensor


def project_points(points: Tensor, cameras: Cameras) -> tuple[Tensor, Tensor, Tensor]:
    """Continuous pixel coordinates of world points in every camera.

    Args:
        points: [P, 3] world points.
        cameras: N cameras.
    Returns:
        u [N, P], v [N, P] (pixel (i, j) covers [i, i+1) x [j, j+1), its centre is at +0.5) and camera-space
        z [N, P].
    """
    p = points.to(cameras.dtype)
    R, t = cameras.R, cameras.t

    def row(i: int) -> Tensor:  # elementwise (not matmul) so each value is independent of the batch size
        return (R[:, i, 0:1] * p[None, :, 0] + R[:, i, 1:2] * p[None, :, 1] + R[:, i, 2:3] * p[None, :, 2]
                + t[:, i:i + 1])

    x, y, z = row(0), row(1), row(2)
    zs = torch.where(z.abs() > 1e-12, z, torch.full_like(z, 1e-12))
    u = cameras.fx[:, None] * x / zs + cameras.cx[:, None]
    v = cameras.fy[:, None] * y / zs + cameras.cy[:, None]
    return u, v, z


def _winners(flat: Tensor, z: Tensor, pid: Tensor, size: int, n_points: int) -> tuple[Tensor, Tensor]:
    """Per-pixel z-buffer: (min z [size], index of the winning point [size], ``n_points`` = none).

    Nearer points win; among equal z the lowest point index wins (deterministic).
    """
    zbuf = torch.full((size,), float("inf"), dtype=z.dtype, device=z.device)
    zbuf.scatter_reduce_(0, flat, z, reduce="amin", include_self=True)
    front = z <= zbuf[flat]
    win = torch.full((size,), n_points, dtype=torch.int64, device=z.device)
    win.scatter_reduce_(0, flat[front], pid[front], reduce="amin", include_self=True)
    return zbuf, win


def forward_warp(
    cache: PointCache,
    cameras: Cameras,
    *,
    footprint: Footprint = "nearest",
    near: float = 1e-3,
    depth_tolerance: float = 0.02,
    background: float = 0.0,
    max_elements: int = 1 << 24,
) -> WarpResult:
    """Render a point cache into a camera batch by z-buffered forward splatting.

    ``footprint="nearest"`` puts each point on the pixel that contains its projection (exact: the
    depth at a visible pixel is the camera-space z of one cache point). ``"bilinear"`` spreads each
    point over the 4 pixels whose centres surround its projection; per pixel the nearest z wins the
    depth test and the colour/depth are the bilinear-weighted mean of the points within
    ``depth_tolerance`` (relative) of that nearest z (fewer holes, slightly blurred edges).

    CPU tensors (float32/float64 cameras, no autograd) take the numba kernel of
    :mod:`lyra.cache3d.warp_cpu`, parallel over cameras; other devices the torch implementation.
    Both give the same results (computed in the cameras' dtype).

    Args:
        cache: P world points with C-channel colours.
        cameras: N target cameras (H x W).
        footprint: "nearest" or "bilinear".
        near: points with camera z <= near are dropped (behind or at the camera).
        depth_tolerance: relative z band that blends in bilinear mode (unused for nearest).
        background: colour written into holes.
        max_elements: bound on N_chunk * P projected points held at once (cameras are chunked; torch path).
    Returns:
        WarpResult with rgb [N, C, H, W], depth [N, 1, H, W], mask [N, 1, H, W], index [N, 1, H, W].
    """
    if footprint not in ("nearest", "bilinear"):
        raise ValueError(f"forward_warp: footprint must be 'nearest' or 'bilinear', got {footprint!r}")
    if len(cameras) > 0 and len(cache) > 0 and warp_cpu.supports(cache.points, cache.colors, cameras):
        rgb, depth, index = warp_cpu.forward_warp_cpu(
            cache.points, cache.colors, cameras, bilinear=footprint == "bilinear", near=near,
            depth_tolerance=depth_tolerance, background=background)
        return WarpResult(rgb, depth, (index >= 0).float(), index)
    return _forward_warp_torch(cache, cameras, footprint=footprint, near=near, depth_tolerance=depth_tolerance,
                               background=background, max_elements=max_elements)


def _forward_warp_torch(
    cache: PointCache,
    cameras: Cameras,
    *,
    footprint: Footprint = "nearest",
    near: float = 1e-3,
    depth_tolerance: float = 0.02,
    background: float = 0.0,
    max_elements: int = 1 << 24,
) -> WarpResult:
    """The torch implementation of :func:`forward_warp` (any device; the CUDA path and the numba kernel's reference)."""
    N, H, W = len(cameras), cameras.height, cameras.width
    P, C = cache.points.shape[0], cache.colors.shape[1]
    dev, dt = cameras.device, cameras.dtype
    rgb = torch.full((N, C, H, W), float(background), dtype=torch.float32, device=dev)
    depth = torch.zeros(N, 1, H, W, dtype=torch.float32, device=dev)
    index = torch.full((N, 1, H, W), -1, dtype=torch.int64, device=dev)
    if P == 0 or N == 0:
        return WarpResult(rgb, depth, torch.zeros_like(depth), index)
    colors = cache.colors.to(device=dev, dtype=dt)
    points = cache.points.to(device=dev)
    step = max(1, max_elements // (P * (4 if footprint == "bilinear" else 1)))
    for s in range(0, N, step):
        cams = cameras[s:s + step]
        n = len(cams)
        u, v, z = project_points(points, cams)
        cam_id = torch.arange(n, device=dev)[:, None].expand(n, P)
        pid = torch.arange(P, device=dev)[None].expand(n, P)
        ok = (z > near) & torch.isfinite(u) & torch.isfinite(v)
        if footprint == "nearest":
            col, row = torch.floor(u), torch.floor(v)
            ok &= (col >= 0) & (col < W) & (row >= 0) & (row < H)
            flat = (cam_id * H + row.long().clamp(0, H - 1)) * W + col.long().clamp(0, W - 1)
            flat, zz, pp = flat[ok], z[ok], pid[ok]
            zbuf, win = _winners(flat, zz, pp, n * H * W, P)
            hit = win < P
            out_rgb = torch.full((n * H * W, C), float(background), dtype=dt, device=dev)
            out_rgb[hit] = colors[win[hit]]
            out_z = torch.where(hit, zbuf, torch.zeros_like(zbuf))
        else:
            x, y = u - 0.5, v - 0.5
            x0, y0 = torch.floor(x), torch.floor(y)
            fx, fy = x - x0, y - y0
            flats, ws, zs, ps = [], [], [], []
            for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
                cx, cy = x0 + dx, y0 + dy
                w = (fx if dx else 1 - fx) * (fy if dy else 1 - fy)
                m = ok & (w > 0) & (cx >= 0) & (cx < W) & (cy >= 0) & (cy < H)
                f = (cam_id * H + cy.long().clamp(0, H - 1)) * W + cx.long().clamp(0, W - 1)
                flats.append(f[m])
                ws.append(w[m])
                zs.append(z[m])
                ps.append(pid[m])
            flat, wt, zz, pp = torch.cat(flats), torch.cat(ws), torch.cat(zs), torch.cat(ps)
            zbuf, win = _winners(flat, zz, pp, n * H * W, P)
            hit = win < P
            band = zz <= zbuf[flat] * (1 + depth_tolerance)
            flat, wt, zz, pp = flat[band], wt[band], zz[band], pp[band]
            wsum = torch.zeros(n * H * W, dtype=dt, device=dev).index_add_(0, flat, wt)
            csum = torch.zeros(n * H * W, C, dtype=dt, device=dev).index_add_(0, flat, wt[:, None] * colors[pp])
            zsum = torch.zeros(n * H * W, dtype=dt, device=dev).index_add_(0, flat, wt * zz)
            safe = wsum.clamp(min=1e-12)
            out_rgb = torch.where(hit[:, None], csum / safe[:, None], torch.full_like(csum, float(background)))
            out_z = torch.where(hit, zsum / safe, torch.zeros_like(zsum))
        rgb[s:s + n] = out_rgb.reshape(n, H, W, C).permute(0, 3, 1, 2).float()
        depth[s:s + n] = out_z.reshape(n, 1, H, W).float()
        index[s:s + n] = torch.where(hit, win, torch.full_like(win, -1)).reshape(n, 1, H, W)
    return WarpResult(rgb, depth, (index >= 0).float(), index)


def warp_image(
    rgb: Tensor, depth: Tensor, source: Cameras, targets: Cameras, *, edge_threshold: float | None = 0.05,
    footprint: Footprint = "nearest", background: float = 0.0,
) -> WarpResult:
    """Lift one image (``rgb`` [C, H, W], ``depth`` [1, H, W] z-depth) seen by ``source`` and warp it into ``targets``.

    Discontinuity pixels are dropped first (see :func:`lyra.cache3d.lift.depth_edges`); the target
    cameras may have another image size than the source.
    """
    cache = lift_points(rgb, depth, source, edge_threshold=edge_threshold)
    return forward_warp(cache, targets, footprint=footprint, background=background)
