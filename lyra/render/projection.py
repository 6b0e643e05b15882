"""Per-camera projection of 3D Gaussians: EWA 2D footprints, binning radii and eval3d frames.

Plain differentiable PyTorch, shared by the torch reference rasterizer (see docs/rasterizer.md,
"Projection"). Every function works in the dtype of its inputs (float32 or float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from lyra.render.options import ALPHA_THRESHOLD, EXTEND_MAX


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """Rotation matrices of (w, x, y, z) quaternions, normalised here.

    Args:
        quats: [..., 4] (need not be unit length).
    Returns:
        [..., 3, 3] rotation matrices.
    """
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    rows = (
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    )
    return torch.stack(rows, dim=-1).reshape(*quats.shape[:-1], 3, 3)


@dataclass
class Projection:
    """Projected Gaussians for C cameras (entries of culled Gaussians hold harmless finite values).

    Attributes:
        p_cam: [C, N, 3] camera-space means (z = depth along the optical axis).
        mean2d: [C, N, 2] projected centres in pixels.
        cov2d: [C, N, 2, 2] projected covariance incl. eps2d (pixels^2).
        conic: [C, N, 3] (a, b, c) = inverse of cov2d, entries (0,0), (0,1), (1,1).
        radii: [C, N, 2] int64 binning half-extent (rx, ry) in pixels; 0 where culled.
        visible: [C, N] bool, False where culled (depth, det, opacity, radius or off-image).
    """

    p_cam: Tensor
    mean2d: Tensor
    cov2d: Tensor
    conic: Tensor
    radii: Tensor
    visible: Tensor


def world_to_camera(means: Tensor, w2c: Tensor) -> Tensor:
    """[N, 3] world points -> [C, N, 3] camera-space points for w2c [C, 4, 4]."""
    R, t = w2c[:, :3, :3], w2c[:, :3, 3]
    return torch.einsum("cij,nj->cni", R, means) + t[:, None, :]


def camera_frame_factor(quats: Tensor, scales: Tensor, w2c: Tensor) -> Tensor:
    """[C, N, 3, 3] factor L = R R_q diag(s) with camera-space covariance L Lᵀ (R: camera rotation)."""
    RS = quat_to_rotmat(quats) * scales[:, None, :]  # [N, 3, 3] = R_q diag(s)
    return torch.einsum("cij,njk->cnik", w2c[:, :3, :3], RS)


def project(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    w2c: Tensor,  # [C, 4, 4]
    K: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    near: float,
    far: float,
    eps2d: float,
) -> Projection:
    """Classic EWA projection with gsplat's ``persp_proj`` clamping, eps2d and opacity-aware radii."""
    p = world_to_camera(means, w2c)  # [C, N, 3]
    z = p[..., 2]
    in_depth = (z > near) & (z < far)
    zs = torch.where(in_depth, z, torch.ones_like(z))  # safe z: culled entries never reach a pixel
    fx, fy = K[:, 0, 0, None], K[:, 1, 1, None]  # [C, 1]
    cx, cy = K[:, 0, 2, None], K[:, 1, 2, None]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_xp, lim_xn = (width - cx) / fx + 0.3 * tan_fovx, cx / fx + 0.3 * tan_fovx
    lim_yp, lim_yn = (height - cy) / fy + 0.3 * tan_fovy, cy / fy + 0.3 * tan_fovy
    tx = zs * torch.minimum(torch.maximum(p[..., 0] / zs, -lim_xn), lim_xp)
    ty = zs * torch.minimum(torch.maximum(p[..., 1] / zs, -lim_yn), lim_yp)
    zero = torch.zeros_like(zs)
    J = torch.stack(
        [fx / zs, zero, -fx * tx / (zs * zs), zero, fy / zs, -fy * ty / (zs * zs)], dim=-1
    ).reshape(*zs.shape, 2, 3)
    JL = J @ camera_frame_factor(quats, scales, w2c)  # [C, N, 2, 3]
    eye = torch.eye(2, dtype=p.dtype, device=p.device)
    cov2d = JL @ JL.transpose(-1, -2) + eps2d * eye
    s00, s01, s11 = cov2d[..., 0, 0], cov2d[..., 0, 1], cov2d[..., 1, 1]
    det = s00 * s11 - s01 * s01
    ok = in_depth & (det > 0)
    dets = torch.where(ok, det, torch.ones_like(det))
    conic = torch.stack([s11 / dets, -s01 / dets, s00 / dets], dim=-1)
    mean2d = torch.stack([fx * p[..., 0] / zs + cx, fy * p[..., 1] / zs + cy], dim=-1)
    with torch.no_grad():
        radii, ok = _radii(mean2d, s00, s11, opacities, ok, width, height)
    return Projection(p, mean2d, cov2d, conic, radii, ok)


def _radii(
    mean2d: Tensor, s00: Tensor, s11: Tensor, opacities: Tensor, ok: Tensor, width: int, height: int
) -> tuple[Tensor, Tensor]:
    """Opacity-aware binning half-extents [C, N, 2] (int64) and the final visibility mask [C, N]."""
    o = opacities.detach().to(torch.float64)
    ok = ok & (o >= ALPHA_THRESHOLD)[None]
    extend = torch.sqrt(2.0 * torch.log(o.clamp(min=ALPHA_THRESHOLD) * 255.0)).clamp(max=EXTEND_MAX)
    rx = torch.ceil(extend * torch.sqrt(s00.detach().double().clamp(min=0)))
    ry = torch.ceil(extend * torch.sqrt(s11.detach().double().clamp(min=0)))
    ok = ok & ((rx > 0) | (ry > 0))
    mx, my = mean2d[..., 0].detach().double(), mean2d[..., 1].detach().double()
    ok = ok & (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)
    radii = torch.stack([rx, ry], dim=-1).long() * ok[..., None]
    return radii, ok


def tile_ranges(mean2d: Tensor, radii: Tensor, tile: int, width: int, height: int) -> Tensor:
    """Touched tile ranges [C, N, 4] int64 as (x0, x1, y0, y1), end exclusive, clamped to the grid.

    ``x0 = floor((mx - rx) / tile)``, ``x1 = ceil((mx + rx) / tile)`` (same for y), computed in float64.
    """
    tw, th = math.ceil(width / tile), math.ceil(height / tile)
    m = mean2d.detach().double()
    r = radii.double()
    x0 = torch.floor((m[..., 0] - r[..., 0]) / tile).clamp(0, tw)
    x1 = torch.ceil((m[..., 0] + r[..., 0]) / tile).clamp(0, tw)
    y0 = torch.floor((m[..., 1] - r[..., 1]) / tile).clamp(0, th)
    y1 = torch.ceil((m[..., 1] + r[..., 1]) / tile).clamp(0, th)
    return torch.stack([x0, x1, y0, y1], dim=-1).long()


def eval3d_frames(quats: Tensor, scales: Tensor, p_cam: Tensor, w2c: Tensor) -> tuple[Tensor, Tensor]:
    """Per camera and Gaussian, the map into the Gaussian's unit frame and the ray origin there.

    Returns:
        M: [C, N, 3, 3] = diag(1/s) R_qᵀ R, acting on camera-space vectors.
        go: [C, N, 3] = M (0 - p_cam), the camera centre in the Gaussian frame.
    """
    Rq = quat_to_rotmat(quats)  # [N, 3, 3]
    M = torch.einsum("nji,cjk->cnik", Rq, w2c[:, :3, :3]) / scales[None, :, :, None]
    go = -(M @ p_cam[..., None])[..., 0]
    return M, go


def eval3d_pixel_boxes(
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    p_cam: Tensor,  # [C, N, 3]
    w2c: Tensor,  # [C, 4, 4]
    K: Tensor,  # [C, 3, 3]
    inflate: float = 1.01,
) -> tuple[Tensor, Tensor]:
    """Pixel boxes outside which an eval3d Gaussian provably has alpha < 1/255 (float64, no gradient).

    A pixel ray (line through the camera centre with direction d) gets eval3d
    ``sigma = 0.5 * min_t |M (t d - p)|^2`` and ``alpha >= 1/255`` needs ``sigma <= ln(255 o) = k^2 / 2``,
    i.e. ``dᵀ B d <= 0`` with ``B = (pᵀSp - k^2) S - (Sp)(Sp)ᵀ``, ``S = MᵀM``. On the plane d_z = 1 this is
    an ellipse when B's upper-left 2x2 block is positive definite; its bounding box (k^2 inflated by 1%
    plus 0.01 against rounding) is returned. Elsewhere (camera inside or beside the Gaussian) the box is
    unbounded.

    Returns:
        box: [C, N, 4] (u_lo, u_hi, v_lo, v_hi) in pixels, +-inf where unbounded; empty boxes have lo > hi.
        bounded: [C, N] bool.
    """
    with torch.no_grad():
        M, go = eval3d_frames(quats.double(), scales.double(), p_cam.double(), w2c.double())
        o = opacities.double().clamp(min=1.0 / 255.0)
        k2 = (2.0 * torch.log(o * 255.0) * inflate + 0.01)[None]  # [1, N]
        Sp = -(M.transpose(-1, -2) @ go[..., None])[..., 0]  # S p = Mᵀ M p
        S = M.transpose(-1, -2) @ M
        B = ((go * go).sum(-1) - k2)[..., None, None] * S - Sp[..., :, None] * Sp[..., None, :]
        b00, b01, b11 = B[..., 0, 0], B[..., 0, 1], B[..., 1, 1]
        det = b00 * b11 - b01 * b01
        bounded = (b00 > 0) & (det > 0)
        dets = torch.where(bounded, det, torch.ones_like(det))
        i00, i01, i11 = b11 / dets, -b01 / dets, b00 / dets  # inverse of the 2x2 block
        bx, by = B[..., 0, 2], B[..., 1, 2]
        x0, y0 = -(i00 * bx + i01 * by), -(i01 * bx + i11 * by)
        gamma = bx * (i00 * bx + i01 * by) + by * (i01 * bx + i11 * by) - B[..., 2, 2]
        empty = bounded & (gamma < 0)
        hx = torch.sqrt(gamma.clamp(min=0) * i00)
        hy = torch.sqrt(gamma.clamp(min=0) * i11)
        Kd = K.double()
        fx, fy, cx, cy = (Kd[:, i, j, None] for i, j in ((0, 0), (1, 1), (0, 2), (1, 2)))
        box = torch.stack([fx * (x0 - hx) + cx, fx * (x0 + hx) + cx, fy * (y0 - hy) + cy, fy * (y0 + hy) + cy], -1)
        box = torch.where(empty[..., None], torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=box.dtype), box)
        inf = torch.tensor([-math.inf, math.inf, -math.inf, math.inf], dtype=box.dtype)
        box = torch.where(bounded[..., None], box, inf)
    return box, bounded
