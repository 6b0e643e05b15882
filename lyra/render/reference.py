"""The slow, readable torch reference rasterizer (plain autograd), exactly docs/rasterizer.md.

It is the ground truth the fast ``cpu`` backend is tested and benchmarked against, so it is an
honest vectorised implementation:

1. project every Gaussian for every camera (``lyra.render.projection``);
2. bin (camera, Gaussian) pairs into small *compositing tiles* of ``tile_size`` pixels (default 4,
   a divisor of the spec's binning tile ``opts.tile_size``), keeping a pair only where the spec's
   tiles would and where alpha can reach 1/255 (sub-tile culling that provably changes nothing):
   in ``classic`` mode the binning box itself bounds that support (the opacity-aware extent never
   reaches the 3.33 cap for opacities <= 1); in ``eval3d`` mode the 2D box does not bound the 3D
   evaluation, so the exact image of the Gaussian's alpha = 1/255 ellipsoid (a pixel box from
   ``projection.eval3d_pixel_boxes``, slightly inflated) is used where it is bounded;
3. sort each small tile's list by (depth, Gaussian index) with one global sort;
4. composite all small tiles together, ``chunk`` Gaussians at a time: alphas [tiles, pixels, chunk],
   transmittance by ``cumprod`` (the same sequential products as a per-pixel loop), the
   ``T <= 1e-4`` cutoff carried across chunks; tiles whose pixels are all done drop out.

Results do not depend on ``tile_size`` or ``chunk`` (up to float rounding). Runs in float32 or float64 (the dtype of
``means``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lyra.render.options import ALPHA_MAX, ALPHA_THRESHOLD, T_MIN, RenderOptions
from lyra.render.projection import Projection, eval3d_frames, eval3d_pixel_boxes, project, tile_ranges

DEFAULT_TILE = 4
DEFAULT_CHUNK = 64


def rasterize_reference(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    colors: Tensor,  # [C, N, 3]
    w2c: Tensor,  # [C, 4, 4]
    K: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    background: Tensor,  # [C, 3]
    opts: RenderOptions,
    *,
    tile_size: int | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> tuple[Tensor, Tensor, Tensor]:
    """Render C views; returns rgb [C, H, W, 3], depth [C, H, W, 1], alpha [C, H, W, 1].

    Differentiable (plain autograd) w.r.t. means, quats, scales, opacities and colors.

    Args:
        tile_size: compositing tile edge in pixels (default 4); replaced by its gcd with
            ``opts.tile_size``. Performance only.
        chunk: Gaussians composited per step per tile. Performance only.
    """
    dtype = means.dtype
    w2c, K, background = w2c.to(dtype), K.to(dtype), background.to(dtype)
    C = colors.shape[0]
    S = math.gcd(opts.tile_size, tile_size or DEFAULT_TILE)
    sw, sh = math.ceil(width / S), math.ceil(height / S)
    nbins, P = C * sh * sw, S * S

    proj = project(means, quats, scales, opacities, w2c, K, width, height, opts.near, opts.far, opts.eps2d)
    boxes = None
    if opts.mode == "eval3d" and S < opts.tile_size:
        boxes = eval3d_pixel_boxes(quats, scales, opacities, proj.p_cam, w2c, K)[0]
    cn, bins = _intersections(proj, opts, S, width, height, boxes)
    attrs = _attributes(proj, quats, scales, opacities, colors, w2c, opts.mode)
    counts = torch.bincount(bins, minlength=nbins)
    starts = torch.cumsum(counts, 0) - counts

    origin, local = _pixel_grid(C, sh, sw, S, dtype, means.device)
    inside = ((origin[:, None, 0] + local[None, :, 0]) < width) & ((origin[:, None, 1] + local[None, :, 1]) < height)
    done = ~inside  # [nbins, P]: pixels past the image edge are done from the start
    T = torch.ones(nbins, P, dtype=dtype, device=means.device)
    rgb_parts: list[Tensor] = []
    depth_parts: list[Tensor] = []
    bin_parts: list[Tensor] = []
    alive = counts > 0
    ar = torch.arange(chunk, device=means.device)
    step = 0
    while True:
        act = torch.nonzero(alive & (counts > step * chunk))[:, 0]
        if act.numel() == 0:
            break
        pos = starts[act, None] + step * chunk + ar  # [A, B]
        valid = pos < (starts + counts)[act, None]
        gid = cn[pos.clamp(max=max(cn.numel() - 1, 0))]
        head, o, z, col = attrs[gid].split([attrs.shape[1] - 5, 1, 1, 3], dim=-1)  # rows [A, B, k]
        o = o[..., 0] * valid  # padding gets opacity 0, hence alpha 0 < 1/255: skipped
        pix = origin[act, None, :] + local[None] + 0.5  # [A, P, 2] pixel centres
        if opts.mode == "classic":
            a = _alpha_classic(head, o, pix)
        else:
            a = _alpha_eval3d(head, o, pix, K[act // (sh * sw)])
        T_new, done_new, w = _composite_chunk(a, T[act], done[act])
        rgb_parts.append(torch.bmm(w, col))
        depth_parts.append(torch.bmm(w, z))
        bin_parts.append(act)
        T = T.index_copy(0, act, T_new)
        done[act] = done_new
        alive[act] = ~done_new.all(dim=1)
        step += 1

    rgb = torch.zeros(nbins, P, 3, dtype=dtype, device=means.device)
    D = torch.zeros(nbins, P, 1, dtype=dtype, device=means.device)
    if bin_parts:
        idx = torch.cat(bin_parts)
        rgb = rgb.index_add(0, idx, torch.cat(rgb_parts))
        D = D.index_add(0, idx, torch.cat(depth_parts))
    alpha_out = 1.0 - T[..., None]
    bg = background.repeat_interleave(sh * sw, dim=0)[:, None, :]  # [nbins, 1, 3]
    rgb = rgb + T[..., None] * bg
    depth = D / alpha_out.clamp(min=1e-10)
    return tuple(_to_image(x, C, sh, sw, S, height, width) for x in (rgb, depth, alpha_out))


def _intersections(
    proj: Projection, opts: RenderOptions, S: int, width: int, height: int, boxes: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Sorted (camera, Gaussian) x small-tile pairs (``boxes``: eval3d pixel bounds [C, N, 4] or None).

    Returns:
        cn: [I] flat index c * N + n of each pair, sorted by (small tile, depth, n).
        bins: [I] flat small-tile index (c * sh + ty) * sw + tx, non-decreasing.
    """
    C, N = proj.visible.shape
    sw, sh = math.ceil(width / S), math.ceil(height / S)
    if opts.mode == "classic":
        r = tile_ranges(proj.mean2d, proj.radii, S, width, height)
    else:  # small tiles of the spec tiles the box touches, minus those the 3D bound rules out
        f = opts.tile_size // S
        r = tile_ranges(proj.mean2d, proj.radii, opts.tile_size, width, height) * f
        r = torch.minimum(r, torch.tensor([sw, sw, sh, sh], device=r.device))
        if f > 1 and boxes is not None:
            box = boxes.to(r.device)
            lim = torch.tensor([sw, sw, sh, sh], dtype=box.dtype, device=r.device)
            lo = torch.floor(box[..., 0::2] / S).clamp(min=0)
            hi = torch.ceil(box[..., 1::2] / S)
            sub = torch.stack([lo[..., 0], hi[..., 0], lo[..., 1], hi[..., 1]], dim=-1)
            sub = torch.minimum(sub.clamp(min=0), lim).long()
            r = torch.stack([torch.maximum(r[..., 0], sub[..., 0]), torch.minimum(r[..., 1], sub[..., 1]),
                             torch.maximum(r[..., 2], sub[..., 2]), torch.minimum(r[..., 3], sub[..., 3])], -1)
    x0, x1, y0, y1 = r.unbind(-1)
    nx, ny = (x1 - x0).clamp(min=0), (y1 - y0).clamp(min=0)
    cnt = (nx * ny * proj.visible).flatten()  # [C*N]
    dev = cnt.device
    cn = torch.repeat_interleave(torch.arange(C * N, device=dev), cnt)
    k = torch.arange(cn.numel(), device=dev) - (torch.cumsum(cnt, 0) - cnt)[cn]
    w = nx.flatten()[cn]
    tx = x0.flatten()[cn] + k % w.clamp(min=1)
    ty = y0.flatten()[cn] + torch.div(k, w.clamp(min=1), rounding_mode="floor")
    bins = (torch.div(cn, N, rounding_mode="floor") * sh + ty) * sw + tx
    # depth rank per camera, ties broken by Gaussian index (stable sort of index-ordered depths)
    z = torch.where(proj.visible, proj.p_cam[..., 2].detach(), torch.full_like(proj.p_cam[..., 2], math.inf))
    order = torch.sort(z, dim=1, stable=True).indices
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(N, device=dev).expand(C, N).contiguous())
    perm = torch.argsort(bins * N + rank.flatten()[cn])
    return cn[perm], bins[perm]


def _attributes(
    proj: Projection, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor, w2c: Tensor, mode: str
) -> Tensor:
    """Per (camera, Gaussian) row [C*N, k]: what the pixel stage needs, ending with (o, z, r, g, b).

    classic: (mean2d 2, conic 3, o, z, rgb 3); eval3d: (M 9, go 3, o, z, rgb 3). In eval3d the
    2D projection only selects candidates and carries no gradient.
    """
    C, N = proj.visible.shape
    o = opacities[None, :, None].expand(C, N, 1)
    z = proj.p_cam[..., 2:3]
    if mode == "classic":
        head = [proj.mean2d, proj.conic]
    else:
        M, go = eval3d_frames(quats, scales, proj.p_cam, w2c)
        head = [M.reshape(C, N, 9), go]
    rows = torch.cat([*head, o, z, colors], dim=-1)
    return rows.reshape(C * N, rows.shape[-1])


def _pixel_grid(C: int, sh: int, sw: int, S: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """Pixel corner of every small tile [C*sh*sw, 2] (x, y) and in-tile offsets [S*S, 2]."""
    ty, tx = torch.meshgrid(torch.arange(sh, device=device), torch.arange(sw, device=device), indexing="ij")
    origin = (torch.stack([tx, ty], dim=-1).reshape(-1, 2) * S).repeat(C, 1).to(dtype)
    py, px = torch.meshgrid(torch.arange(S, device=device), torch.arange(S, device=device), indexing="ij")
    local = torch.stack([px, py], dim=-1).reshape(-1, 2).to(dtype)
    return origin, local


def _alpha_classic(head: Tensor, o: Tensor, pix: Tensor) -> Tensor:
    """EWA alphas [A, P, B], 0 where skipped (sigma < 0 or alpha < 1/255).

    Args:
        head: [A, B, 5] rows (mean2d x, y, conic a, b, c); o: [A, B] opacities; pix: [A, P, 2] pixel centres.
    """
    mx, my, ca, cb, cc = (x[:, None, :] for x in head.unbind(-1))
    dx = mx - pix[..., 0, None]  # [A, P, B]
    dy = my - pix[..., 1, None]
    sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
    alpha = (o[:, None, :] * torch.exp(-sigma.clamp(min=0))).clamp(max=ALPHA_MAX)
    keep = (sigma >= 0) & (alpha >= ALPHA_THRESHOLD)
    return torch.where(keep, alpha, torch.zeros_like(alpha))


def _alpha_eval3d(head: Tensor, o: Tensor, pix: Tensor, K: Tensor) -> Tensor:
    """3D-evaluated alphas [A, P, B] along pixel rays, 0 where alpha < 1/255.

    Args:
        head: [A, B, 12] rows (M row-major 9, go 3); o: [A, B]; pix: [A, P, 2]; K: [A, 3, 3] the
            camera of each small tile.
    """
    A, B = head.shape[:2]
    P = pix.shape[1]
    M, go = head.split([9, 3], dim=-1)
    rx = (pix[..., 0] - K[:, None, 0, 2]) / K[:, None, 0, 0]
    ry = (pix[..., 1] - K[:, None, 1, 2]) / K[:, None, 1, 1]
    r = torch.stack([rx, ry, torch.ones_like(rx)], dim=-1)  # [A, P, 3]
    Mt = M.reshape(A, B, 3, 3).transpose(1, 2).reshape(A, 3 * B, 3)  # rows ordered (i, b)
    Mr = torch.bmm(r, Mt.transpose(1, 2)).reshape(A, P, 3, B)  # (M_b r_p)_i
    gx, gy, gz = (Mr * torch.rsqrt((Mr * Mr).sum(2, keepdim=True))).unbind(2)  # [A, P, B], unit gd
    ox, oy, oz = (x[:, None, :] for x in go.unbind(-1))  # [A, 1, B]
    cx, cy, cz = gy * oz - gz * oy, gz * ox - gx * oz, gx * oy - gy * ox
    sigma = 0.5 * (cx * cx + cy * cy + cz * cz)
    alpha = (o[:, None, :] * torch.exp(-sigma)).clamp(max=ALPHA_MAX)
    return torch.where(alpha >= ALPHA_THRESHOLD, alpha, torch.zeros_like(alpha))


def _composite_chunk(a: Tensor, T_in: Tensor, done_in: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Front-to-back compositing of one chunk with the gsplat cutoff rule.

    Args:
        a: [A, P, B] alphas in order (0 where skipped).
        T_in: [A, P] transmittance before the chunk; done_in: [A, P] bool, pixels already done.
    Returns:
        T_out [A, P], done_out [A, P], weights [A, P, B] = alpha * T of each composited Gaussian.

    ``seq`` holds the sequential products T_in (1-a_1) ... (1-a_j); a Gaussian is composited iff its
    product stays above T_MIN (and the pixel was not done), which is a prefix of the chunk since
    the products never grow: the first Gaussian reaching T_MIN and every later one are dropped.
    """
    seq = torch.cumprod(torch.cat([T_in[..., None], 1.0 - a], dim=-1), dim=-1)  # [A, P, B+1]
    with torch.no_grad():
        mask = (seq[..., 1:] > T_MIN) & ~done_in[..., None]
        k = mask.sum(-1, keepdim=True)
        done_out = done_in | (seq[..., -1] <= T_MIN)
    w = torch.where(mask, a * seq[..., :-1], torch.zeros_like(a))
    T_out = seq.gather(-1, k)[..., 0]
    return T_out, done_out, w


def _to_image(x: Tensor, C: int, sh: int, sw: int, S: int, height: int, width: int) -> Tensor:
    """[C*sh*sw, S*S, k] small-tile layout -> [C, H, W, k] image."""
    k = x.shape[-1]
    img = x.reshape(C, sh, sw, S, S, k).permute(0, 1, 3, 2, 4, 5).reshape(C, sh * S, sw * S, k)
    return img[:, :height, :width]
