"""Classical hole filling of warped frames: push-pull (pyramid) interpolation plus optional diffusion.

Two implementations of the same float64 computation (equal up to float64 rounding of the upsampling,
~1e-16): a numba kernel for CPU tensors (parallel over images; at full resolution it reads every
pixel once and computes only the holes) and the torch ops for other devices and autograd.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numba import njit, prange
from torch import Tensor

from lyra.render.cpu import threads

_NUMBA_DTYPES = (torch.float32, torch.float64)


def _push_pull(cw: Tensor, w: Tensor, fill: float) -> Tensor:
    """Fill ``c = cw / w`` where the weight w [B, 1, h, w] is < 1 from coarser levels (recursive)."""
    h, wd = w.shape[-2:]
    if h == 1 and wd == 1:
        c = cw / w.clamp(min=1e-12)
        return torch.where(w > 0, c, torch.full_like(c, fill))
    ph, pw = h % 2, wd % 2
    cw2 = F.avg_pool2d(F.pad(cw, (0, pw, 0, ph)), 2) * 4  # zero padding = zero weight
    w2 = F.avg_pool2d(F.pad(w, (0, pw, 0, ph)), 2) * 4
    coarse = _push_pull(cw2, w2, fill)
    # a pixel keeps its own mean colour with weight min(1, w) and takes the rest from the coarser level
    up = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)[..., :h, :wd]
    wf = w.clamp(max=1)
    c = cw / w.clamp(min=1e-12)
    return torch.where(w > 0, wf * c + (1 - wf) * up, up)


def inpaint(frames: Tensor, mask: Tensor, *, smooth_iters: int = 0, fill: float = 0.5) -> Tensor:
    """Fill holes of warped frames with colours interpolated from their valid neighbourhood.

    Push-pull: valid pixels are averaged down an image pyramid (2 x 2, weight = number of valid
    pixels), then each level's holes take the bilinearly upsampled colour of the level below, so a
    hole gets the mean colour of the nearest valid region at the scale of the hole. Optional Jacobi
    diffusion (``smooth_iters`` 3 x 3 averaging steps on hole pixels only) smooths the result.
    Computed in float64; float32/float64 CPU tensors take a numba kernel, others the torch ops.

    Args:
        frames: [..., C, H, W] images.
        mask: [..., 1, H, W] validity (> 0.5 = valid), e.g. ``WarpResult.mask``.
        smooth_iters: diffusion steps after push-pull (0 = none).
        fill: value of frames with no valid pixel at all.
    Returns:
        [..., C, H, W] filled frames; valid pixels are returned unchanged (bit-exact).
    """
    if frames.ndim < 3 or mask.shape[-2:] != frames.shape[-2:] or mask.shape[-3] != 1:
        raise ValueError(f"inpaint: frames [..., C, H, W] and mask [..., 1, H, W] expected, "
                         f"got {list(frames.shape)} and {list(mask.shape)}")
    C, H, W = frames.shape[-3:]
    x = frames.reshape(-1, C, H, W)
    valid = (mask.expand(*frames.shape[:-3], 1, H, W).reshape(-1, 1, H, W) > 0.5)
    if bool(valid.all()):
        return frames.clone()
    needs_grad = torch.is_grad_enabled() and frames.requires_grad
    if frames.device.type == "cpu" and valid.device.type == "cpu" and frames.dtype in _NUMBA_DTYPES \
            and not needs_grad:
        return _inpaint_cpu(x, valid, smooth_iters, fill).reshape(frames.shape)
    return _inpaint_torch(x, valid, smooth_iters, fill).reshape(frames.shape)


def _inpaint_torch(x: Tensor, valid: Tensor, smooth_iters: int, fill: float) -> Tensor:
    """The torch implementation: x [B, C, H, W], valid [B, 1, H, W] bool -> [B, C, H, W] of x's dtype."""
    xf = x.to(torch.float64)
    w = valid.to(torch.float64)
    out = _push_pull(xf * w, w, fill)
    hole = ~valid
    for _ in range(smooth_iters):
        avg = F.avg_pool2d(F.pad(out, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        out = torch.where(hole, avg, out)
    out = torch.where(valid, xf, out).to(x.dtype)
    return torch.where(valid, x, out)


def _pyramid(H: int, W: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sizes and flat offsets of the coarse levels 1..L (halving with ceil until 1 x 1): hs, ws, offs [L + 1]
    (offs[L] = total size; empty levels where H = W = 1)."""
    hs, ws = [], []
    h, w = H, W
    while h > 1 or w > 1:
        h, w = (h + 1) // 2, (w + 1) // 2
        hs.append(h)
        ws.append(w)
    offs = np.zeros(len(hs) + 1, np.int64)
    offs[1:] = np.cumsum(np.asarray(hs, np.int64) * np.asarray(ws, np.int64))
    return np.asarray(hs, np.int64), np.asarray(ws, np.int64), offs


@njit(cache=True, inline="always")
def _src(i: int, n_in: int):
    """torch's bilinear source index for output i of a 2x upsampling (align_corners=False): i0, i1, l0, l1."""
    real = 0.5 * (i + 0.5) - 0.5
    if real < 0.0:
        real = 0.0
    i0 = min(int(np.floor(real)), n_in - 1)
    i1 = i0 + 1 if i0 < n_in - 1 else i0
    l1 = min(max(real - i0, 0.0), 1.0)
    return i0, i1, 1.0 - l1, l1


@njit(cache=True, inline="always")
def _up(cp, ch: int, off: int, hin: int, win: int, i: int, j: int) -> float:
    """Bilinear 2x upsampling of the coarse level (cp[ch, off:], hin x win) at fine pixel (i, j) (torch's weights)."""
    y0, y1, ly0, ly1 = _src(i, hin)
    x0, x1, lx0, lx1 = _src(j, win)
    r0, r1 = off + y0 * win, off + y1 * win
    t0 = cp[ch, r0 + x0] * lx0 + cp[ch, r0 + x1] * lx1
    t1 = cp[ch, r1 + x0] * lx0 + cp[ch, r1 + x1] * lx1
    return t0 * ly0 + t1 * ly1


@njit(cache=True, error_model="numpy")
def _inpaint_image(b: int, x, valid, hs, ws, offs, iters: int, fill: float, out) -> None:
    """Push-pull + Jacobi of image b: x [B, C, H, W], valid [B, H, W] bool -> out [B, C, H, W] (x's dtype)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    L = hs.shape[0]
    wp = np.empty(offs[L])  # coarse weights (valid-pixel counts)
    cp = np.empty((C, offs[L]))  # coarse weighted colour sums, then (in place) the filled colours
    # push: 2x2 sums in avg_pool2d's order (row-major; the zero padding and the holes add 0)
    for lv in range(L):
        h, w, o = hs[lv], ws[lv], offs[lv]
        hp, wpv, op = (H, W, 0) if lv == 0 else (hs[lv - 1], ws[lv - 1], offs[lv - 1])
        for i in range(h):
            for j in range(w):
                k = o + i * w + j
                s = 0.0
                for di in range(2):
                    for dj in range(2):
                        fi, fj = 2 * i + di, 2 * j + dj
                        if fi < hp and fj < wpv:
                            if lv > 0:
                                s += wp[op + fi * wpv + fj]
                            elif valid[b, fi, fj]:
                                s += 1.0
                wp[k] = s
                for c in range(C):
                    s = 0.0
                    for di in range(2):
                        for dj in range(2):
                            fi, fj = 2 * i + di, 2 * j + dj
                            if fi < hp and fj < wpv:
                                if lv > 0:
                                    s += cp[c, op + fi * wpv + fj]
                                elif valid[b, fi, fj]:
                                    s += x[b, c, fi, fj]
                    cp[c, k] = s
    # pull, coarsest level first: weight w >= 1 keeps cw / w (torch: min(1, w) c + (1 - min(1, w)) up = c),
    # weight 0 takes the upsampled colour of the level below (the coarsest: fill)
    for lv in range(L - 1, -1, -1):
        h, w, o = hs[lv], ws[lv], offs[lv]
        for i in range(h):
            for j in range(w):
                k = o + i * w + j
                for c in range(C):
                    if wp[k] > 0:
                        cp[c, k] = cp[c, k] / max(wp[k], 1e-12)
                    elif lv == L - 1:
                        cp[c, k] = fill
                    else:
                        cp[c, k] = _up(cp, c, offs[lv + 1], hs[lv + 1], ws[lv + 1], i, j)
    if iters == 0:
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    if valid[b, i, j]:
                        out[b, c, i, j] = x[b, c, i, j]
                    else:
                        out[b, c, i, j] = fill if L == 0 else _up(cp, c, 0, hs[0], ws[0], i, j)
        return
    # Jacobi diffusion on the hole pixels only: 3x3 mean (replicated border) in avg_pool2d's order
    hid = np.empty((H, W), np.int32)  # hole number of each pixel (-1: valid)
    n_hole = 0
    for i in range(H):
        for j in range(W):
            hid[i, j] = -1 if valid[b, i, j] else n_hole
            n_hole += not valid[b, i, j]
    hi, hj = np.empty(n_hole, np.int64), np.empty(n_hole, np.int64)
    cur, nxt = np.empty((n_hole, C)), np.empty((n_hole, C))  # float64 colours of the holes
    for i in range(H):
        for j in range(W):
            k = hid[i, j]
            if k >= 0:
                hi[k], hj[k] = i, j
                for c in range(C):
                    cur[k, c] = fill if L == 0 else _up(cp, c, 0, hs[0], ws[0], i, j)
    for _ in range(iters):
        for k in range(n_hole):
            i, j = hi[k], hj[k]
            for c in range(C):
                s = 0.0
                for di in range(-1, 2):
                    ii = min(max(i + di, 0), H - 1)
                    for dj in range(-1, 2):
                        jj = min(max(j + dj, 0), W - 1)
                        h = hid[ii, jj]
                        s += cur[h, c] if h >= 0 else x[b, c, ii, jj]
                nxt[k, c] = s / 9.0
        cur, nxt = nxt, cur
    for c in range(C):
        for i in range(H):
            for j in range(W):
                out[b, c, i, j] = x[b, c, i, j] if hid[i, j] < 0 else cur[hid[i, j], c]


@njit(cache=True, parallel=True, error_model="numpy")
def _inpaint_parallel(x, valid, hs, ws, offs, iters: int, fill: float, out) -> None:
    """All images, one per prange iteration."""
    for b in prange(x.shape[0]):
        _inpaint_image(b, x, valid, hs, ws, offs, iters, fill, out)


@njit(cache=True, error_model="numpy")
def _inpaint_serial(x, valid, hs, ws, offs, iters: int, fill: float, out) -> None:
    """_inpaint_parallel on the calling thread."""
    for b in range(x.shape[0]):
        _inpaint_image(b, x, valid, hs, ws, offs, iters, fill, out)


def _inpaint_cpu(x: Tensor, valid: Tensor, smooth_iters: int, fill: float) -> Tensor:
    """The numba implementation: x [B, C, H, W] (float32/64, CPU), valid [B, 1, H, W] bool -> [B, C, H, W]."""
    B, C, H, W = x.shape
    a_x = x.detach().contiguous().numpy()
    a_valid = valid.reshape(B, H, W).contiguous().numpy()
    out = torch.empty(B, C, H, W, dtype=x.dtype)
    hs, ws, offs = _pyramid(H, W)
    args = (a_x, a_valid, hs, ws, offs, int(smooth_iters), float(fill), out.numpy())
    threads.follow_torch_threads()
    with threads.kernel_section():
        (_inpaint_parallel if min(B, threads.num_workers()) > 1 else _inpaint_serial)(*args)
    return out
