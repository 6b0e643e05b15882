"""Depth from a rectified stereo pair: Middlebury-style calibration, disparity to depth, census block matching."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.cameras.camera import intrinsics_matrix
from lyra.depth.files import DepthError
from lyra.errors import reading
from lyra.utils.inputs import read_text


@dataclass(frozen=True)
class StereoCalibration:
    """Calibration of a rectified stereo pair (Middlebury ``calib.txt`` fields).

    Attributes:
        fx, fy: left-camera focal lengths in pixels.
        cx, cy: left-camera principal point in pixels, Middlebury/OpenCV convention (pixel centres at
            integer coordinates; lyra's convention puts them at +0.5, see :meth:`K`).
        baseline: camera distance in ``baseline_unit`` (Middlebury: millimetres).
        doffs: x-difference of the principal points, cx1 - cx0, in pixels.
        width, height: image size the calibration belongs to (None if unknown).
        ndisp, vmin, vmax: disparity search bound and the tight disparity range, pixels (None if unknown).
        baseline_unit: metres per baseline unit (1e-3 for millimetres).
    """

    fx: float
    fy: float
    cx: float
    cy: float
    baseline: float
    doffs: float = 0.0
    width: int | None = None
    height: int | None = None
    ndisp: int | None = None
    vmin: float | None = None
    vmax: float | None = None
    baseline_unit: float = 1e-3

    def __post_init__(self) -> None:
        if not (self.fx > 0 and self.fy > 0):
            raise DepthError(f"stereo calibration: focal lengths must be positive, got fx={self.fx}, fy={self.fy}")
        if not self.baseline > 0:
            raise DepthError(f"stereo calibration: baseline must be positive, got {self.baseline}")

    @property
    def baseline_m(self) -> float:
        """Baseline in metres."""
        return self.baseline * self.baseline_unit

    def K(self, height: int | None = None, width: int | None = None) -> Tensor:
        """[3, 3] float32 left intrinsics in lyra's convention (pixel centres at +0.5), optionally resized."""
        fx, fy, cx, cy = self.fx, self.fy, self.cx + 0.5, self.cy + 0.5
        if height is not None and width is not None:
            if self.width is None or self.height is None:
                raise DepthError("stereo calibration: resizing K needs the calibration's width and height")
            sx, sy = width / self.width, height / self.height
            fx, cx, fy, cy = fx * sx, cx * sx, fy * sy, cy * sy
        return intrinsics_matrix(fx, fy, cx, cy)


_MATRIX = re.compile(r"^\[(.*)\]$")


def parse_calib(source: str | os.PathLike | dict) -> StereoCalibration:
    """Parse a Middlebury ``calib.txt`` (a path, its text, or an already parsed dict).

    Recognised keys: ``cam0`` / ``cam1`` as "[f 0 cx; 0 f cy; 0 0 1]" (or 3x3 nested lists), ``doffs``
    (default: cam1 cx - cam0 cx, else 0), ``baseline`` (mm), ``width``, ``height``, ``ndisp``, ``vmin``,
    ``vmax``; other keys (``isint``, ``dyavg``...) are ignored. A dict may instead give ``fx``, ``fy``,
    ``cx``, ``cy`` directly.
    """
    if isinstance(source, dict):
        raw: dict = dict(source)
        where = "calibration dict"
    else:
        text = str(source)
        if isinstance(source, os.PathLike) or ("\n" not in text and "=" not in text):
            text, where = read_text(text, "calibration file", DepthError, missing=DepthError), text
        else:
            where = "calibration text"
        raw = {}
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if "=" not in line:
                raise DepthError(f"{where}: malformed line {line!r} (expected key=value)")
            k, v = (s.strip() for s in line.split("=", 1))
            raw[k] = v

    def matrix(v: object) -> np.ndarray:
        if isinstance(v, str):
            m = _MATRIX.match(v.strip())
            if not m:
                raise DepthError(f"{where}: camera matrix {v!r} must look like [f 0 cx; 0 f cy; 0 0 1]")
            v = [r.split() for r in m.group(1).split(";")]
        with reading(where, f"camera matrix {v!r} is not numeric", DepthError):
            a = np.asarray(v, dtype=np.float64)
        if a.shape != (3, 3) or not np.isfinite(a).all():
            raise DepthError(f"{where}: camera matrix must be 3x3 and finite, got shape {list(a.shape)}")
        return a

    def num(key: str, cast: type = float) -> float | int | None:
        if key not in raw or raw[key] in (None, ""):
            return None
        try:
            value = float(raw[key])
        except (TypeError, ValueError) as e:
            raise DepthError(f"{where}: {key}={raw[key]!r} is not a number") from e
        if not math.isfinite(value):
            raise DepthError(f"{where}: {key}={raw[key]!r} is not a finite number")
        return cast(value)

    if "cam0" in raw:
        c0 = matrix(raw["cam0"])
        fx, fy, cx, cy = c0[0, 0], c0[1, 1], c0[0, 2], c0[1, 2]
    else:
        fx, fy, cx, cy = (num(k) for k in ("fx", "fy", "cx", "cy"))
        if fx is None or cx is None or cy is None:
            raise DepthError(f"{where}: needs cam0=[...] or fx, cx, cy")
        fy = fx if fy is None else fy
    doffs = num("doffs")
    if doffs is None:
        doffs = float(matrix(raw["cam1"])[0, 2] - cx) if "cam1" in raw else 0.0
    baseline = num("baseline")
    if baseline is None:
        raise DepthError(f"{where}: missing baseline")
    if not (fx > 0 and fy > 0 and baseline > 0):
        raise DepthError(f"{where}: focal lengths and baseline must be > 0, got fx={fx}, fy={fy}, baseline={baseline}")
    return StereoCalibration(
        float(fx), float(fy), float(cx), float(cy), float(baseline), float(doffs),
        num("width", int), num("height", int), num("ndisp", int), num("vmin"), num("vmax"),
    )


def disparity_to_depth(disparity: Tensor | np.ndarray, focal: float, baseline: float, doffs: float = 0.0) -> Tensor:
    """Depth ``focal * baseline / (disparity + doffs)`` of a left-image disparity map.

    Args:
        disparity: [..., H, W] disparities in pixels (left x - right x).
        focal: focal length in pixels; baseline: in the unit wanted for depth (e.g. metres).
        doffs: principal-point x offset cx1 - cx0 in pixels.
    Returns:
        float32 depth of the same shape; 0 where the disparity is <= 0, non-finite, or d + doffs <= 0.
    """
    d = torch.as_tensor(np.asarray(disparity) if isinstance(disparity, np.ndarray) else disparity).float()
    valid = torch.isfinite(d) & (d > 0) & (d + doffs > 0)
    safe = torch.where(valid, d + doffs, torch.ones_like(d))
    return torch.where(valid, focal * baseline / safe, torch.zeros_like(d))


def calibrated_depth(disparity: Tensor | np.ndarray, calib: StereoCalibration) -> Tensor:
    """[1, H, W] depth in metres from a left disparity map [H, W] and its calibration."""
    d = torch.as_tensor(np.asarray(disparity) if isinstance(disparity, np.ndarray) else disparity).float()
    return disparity_to_depth(d.reshape(1, *d.shape[-2:]), calib.fx, calib.baseline_m, calib.doffs)


# ---------------------------------------------------------------------------------------------- matching
def _gray(img: Tensor) -> Tensor:
    """[3 or 1, H, W] float in [0, 1] -> [1, 1, H, W] luminance."""
    if img.ndim != 3 or img.shape[0] not in (1, 3):
        raise DepthError(f"stereo: images must be [3, H, W] or [1, H, W], got {list(img.shape)}")
    x = img.float()
    if x.shape[0] == 3:
        x = 0.299 * x[0:1] + 0.587 * x[1:2] + 0.114 * x[2:3]
    return x[None]


def _census(g: Tensor, r: int) -> Tensor:
    """[H, W] int64 census code of a [1, 1, H, W] image over a (2r+1)^2 window (centre excluded), r <= 3."""
    H, W = g.shape[-2:]
    p = F.pad(g, (r, r, r, r), mode="replicate")[0, 0]
    c = g[0, 0]
    code = torch.zeros(H, W, dtype=torch.int64)
    bit = 0
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if (dy, dx) != (0, 0):
                code |= (p[r + dy:r + dy + H, r + dx:r + dx + W] < c).long() << bit
                bit += 1
    return code


def _hamming(a: Tensor, b: Tensor) -> Tensor:
    """Bit count of ``a ^ b`` (int64 codes below 2^48) as float32 (SWAR popcount)."""
    x = a ^ b
    x = x - ((x >> 1) & 0x5555555555555555)
    x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0F
    return ((x * 0x0101010101010101) >> 56).float()


def _box(x: Tensor, window: int) -> Tensor:
    """Mean over ``window`` x ``window`` (replicated border) of [D, H, W], separably."""
    r = window // 2
    x = F.avg_pool2d(F.pad(x[None], (r, r, 0, 0), mode="replicate"), (1, window), stride=1)
    return F.avg_pool2d(F.pad(x, (0, 0, r, r), mode="replicate"), (window, 1), stride=1)[0]


def block_matching(
    left: Tensor, right: Tensor, max_disp: int, min_disp: int = 0, *, window: int = 9, census_radius: int = 2,
    lr_tolerance: float = 1.0, uniqueness: float = 0.05,
) -> Tensor:
    """Left disparity of a rectified pair by census block matching (a plain, classical baseline).

    Cost: Hamming distance of census codes, averaged over ``window`` x ``window``; winner-takes-all
    with parabolic sub-pixel refinement; invalidated (set to 0) where the left-right check differs by
    more than ``lr_tolerance`` px, where the best cost is not ``uniqueness`` (relative) below the
    second best outside +-1 px, or at the search range's ends.

    Args:
        left, right: [3, H, W] (or [1, H, W]) images in [0, 1], rectified (same rows).
        max_disp, min_disp: integer disparity search range in pixels.
    Returns:
        [H, W] float32 disparity in pixels (0 = invalid).
    """
    if left.shape != right.shape:
        raise DepthError(f"stereo: left {list(left.shape)} and right {list(right.shape)} differ in size")
    if not 0 <= min_disp < max_disp:
        raise DepthError(f"stereo: need 0 <= min_disp < max_disp, got {min_disp}, {max_disp}")
    gl, gr = _gray(left), _gray(right)
    H, W = gl.shape[-2:]
    if not 1 <= census_radius <= 3:
        raise DepthError(f"stereo: census_radius must be 1, 2 or 3, got {census_radius}")
    cl, cr = _census(gl, census_radius), _census(gr, census_radius)
    nbits = (2 * census_radius + 1) ** 2 - 1
    nd = max_disp - min_disp + 1
    big = float(nbits)
    raw = torch.full((nd, H, W), big)
    for i in range(nd):
        d = min_disp + i
        if d >= W:
            break
        raw[i, :, d:] = _hamming(cl[:, d:], cr[:, :W - d])
    if window < 1 or window % 2 == 0:
        raise DepthError(f"stereo: window must be odd and >= 1, got {window}")
    agg = _box(raw, window)
    # right-view costs: C_R(x, d) = C_L(x + d, d)
    raw_r = torch.full_like(raw, big)
    for i in range(nd):
        d = min_disp + i
        if d < W:
            raw_r[i, :, :W - d] = raw[i, :, d:]
    agg_r = _box(raw_r, window)
    best = agg.argmin(0)
    best_r = agg_r.argmin(0)
    c0 = agg.gather(0, best[None])[0]
    cm = agg.gather(0, (best - 1).clamp(min=0)[None])[0]
    cp = agg.gather(0, (best + 1).clamp(max=nd - 1)[None])[0]
    denom = cm - 2 * c0 + cp
    sub = torch.where(denom > 1e-6, 0.5 * (cm - cp) / denom.clamp(min=1e-6), torch.zeros_like(c0)).clamp(-0.5, 0.5)
    disp = min_disp + best.float() + sub
    # uniqueness: second best at least 2 steps away
    idx = torch.arange(nd)[:, None, None]
    far = (idx - best[None]).abs() >= 2
    second = torch.where(far, agg, torch.full_like(agg, float("inf"))).amin(0)
    unique = c0 < (1 - uniqueness) * second
    # left-right consistency
    xs = torch.arange(W)[None].expand(H, W)
    xr = (xs - (min_disp + best)).clamp(0, W - 1)
    d_r = (min_disp + best_r).gather(1, xr).float()
    consistent = ((min_disp + best).float() - d_r).abs() <= lr_tolerance
    interior = (best > 0) & (best < nd - 1) & (xs - (min_disp + best) >= 0)
    ok = unique & consistent & interior & (disp > 0)
    return torch.where(ok, disp, torch.zeros_like(disp))


def stereo_depth(
    left: Tensor, right: Tensor, calib: StereoCalibration, *, max_disp: int | None = None, min_disp: int | None = None,
    window: int = 9,
) -> tuple[Tensor, Tensor]:
    """Depth in metres of the left image of a rectified pair by block matching.

    The search range defaults to the calibration's vmin..vmax (else 0..ndisp, else W/4), rescaled when
    the images are not the calibration's size.

    Returns:
        depth [1, H, W] metres (0 = no reliable match) and the left intrinsics K [3, 3] (lyra convention).
    """
    H, W = left.shape[-2:]
    s = W / calib.width if calib.width else 1.0
    if max_disp is None:
        top = calib.vmax if calib.vmax is not None else calib.ndisp
        max_disp = int(np.ceil(top * s)) + 1 if top is not None else W // 4
    if min_disp is None:
        min_disp = max(0, int(np.floor(calib.vmin * s)) - 1) if calib.vmin is not None else 0
    disp = block_matching(left, right, max_disp, min_disp, window=window)
    depth = disparity_to_depth(disp, calib.fx * s, calib.baseline_m, calib.doffs * s)[None]
    K = calib.K(H, W) if calib.width and calib.height else calib.K()
    return depth, K


# ---------------------------------------------------------------------------------------------- motorcycle
def motorcycle_calibration() -> StereoCalibration:
    """Calibration of ``skimage.data.stereo_motorcycle()`` (Middlebury 2014 "Motorcycle", downsampled 4x).

    From the skimage docstring (valid for the 741 x 500 images and their disparity): focal length
    994.978 px, principal point (311.193, 254.877) px, principal point dx (doffs) 31.086 px, baseline
    193.001 mm. These are the full-resolution calib.txt values (f 3979.911, cx 1244.772, cy 1019.507,
    doffs 124.343, 2964 x 1988) divided by 4.
    """
    return StereoCalibration(fx=994.978, fy=994.978, cx=311.193, cy=254.877, baseline=193.001, doffs=31.086,
                             width=741, height=500)


def motorcycle_depth() -> tuple[Tensor, Tensor, Tensor]:
    """A real photo with metric ground-truth depth: skimage's Middlebury "Motorcycle" left image.

    Returns:
        image [3, 500, 741] float32 in [0, 1], depth [1, 500, 741] metres (0 where the ground-truth
        disparity is missing), K [3, 3] pixel intrinsics (lyra convention).
    """
    try:
        from skimage.data import stereo_motorcycle
    except ImportError as e:
        raise DepthError("the motorcycle example needs scikit-image: pip install scikit-image") from e
    left, _, disp = stereo_motorcycle()
    calib = motorcycle_calibration()
    image = torch.from_numpy(np.ascontiguousarray(left)).permute(2, 0, 1).float() / 255.0
    return image, calibrated_depth(disp, calib), calib.K()


def motorcycle_right_view() -> tuple[Tensor, Tensor, float]:
    """The right image of the same pair, a real novel view of :func:`motorcycle_depth`'s scene.

    Returns:
        image [3, 500, 741] float32 in [0, 1]; K [3, 3] of the right camera (principal point shifted by doffs);
        the baseline in metres (the right camera sits at +x of the left one, same orientation: rectified pair).
    """
    try:
        from skimage.data import stereo_motorcycle
    except ImportError as e:
        raise DepthError("the motorcycle example needs scikit-image: pip install scikit-image") from e
    _, right, _ = stereo_motorcycle()
    calib = motorcycle_calibration()
    K = calib.K().clone()
    K[0, 2] += calib.doffs
    image = torch.from_numpy(np.ascontiguousarray(right)).permute(2, 0, 1).float() / 255.0
    return image, K, calib.baseline * calib.baseline_unit
