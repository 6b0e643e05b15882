"""Tests for lyra.depth: depth files, stereo calibration and matching, the motorcycle example, model loading,
scene-scale normalisation and the depth-source resolution."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lyra.depth import (
    DEFAULT_TARGET_MEDIAN,
    NO_DEPTH_MESSAGE,
    DepthError,
    block_matching,
    calibrated_depth,
    disparity_to_depth,
    load_depth,
    load_depth_model,
    motorcycle_calibration,
    motorcycle_depth,
    normalize_scene_scale,
    parse_calib,
    read_exr,
    read_pfm,
    resize_depth,
    resolve_depth,
    save_depth,
    write_exr,
    write_pfm,
)
from lyra.utils.images import save_depth_png16

HAS_EXR = importlib.util.find_spec("OpenEXR") is not None
HAS_SKIMAGE = importlib.util.find_spec("skimage") is not None
HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None


def depth_map(h: int = 7, w: int = 9) -> torch.Tensor:
    d = torch.rand(1, h, w, generator=torch.Generator().manual_seed(0)) * 5 + 0.5
    d[0, 0, 0] = 0.0
    return d


# ---------------------------------------------------------------------------------------------- files
def test_pfm_round_trip_and_orientation(tmp_path: Path) -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    a[1, 2] = np.inf
    write_pfm(tmp_path / "a.pfm", a)
    raw = (tmp_path / "a.pfm").read_bytes()
    assert raw.startswith(b"Pf\n4 3\n-1.0\n")
    # bottom row first on disk
    assert np.frombuffer(raw[-16:], "<f4").tolist() == [0.0, 1.0, 2.0, 3.0]
    b = read_pfm(tmp_path / "a.pfm")
    assert b.dtype == np.float32 and np.array_equal(b, a)
    rgb = np.random.default_rng(0).random((5, 6, 3)).astype(np.float32)
    write_pfm(tmp_path / "c.pfm", rgb)
    assert np.array_equal(read_pfm(tmp_path / "c.pfm"), rgb)
    # big-endian (positive scale), as some tools write
    (tmp_path / "be.pfm").write_bytes(b"Pf\n2 1\n1.0\n" + np.array([1.5, 2.5], ">f4").tobytes())
    assert read_pfm(tmp_path / "be.pfm").tolist() == [[1.5, 2.5]]
    (tmp_path / "bad.pfm").write_bytes(b"P6\n2 1\n255\n")
    with pytest.raises(DepthError, match="not a PFM"):
        read_pfm(tmp_path / "bad.pfm")
    (tmp_path / "short.pfm").write_bytes(b"Pf\n2 2\n-1.0\n" + bytes(8))
    with pytest.raises(DepthError, match="truncated"):
        read_pfm(tmp_path / "short.pfm")


def test_load_depth_npy_npz_pfm(tmp_path: Path) -> None:
    d = depth_map()
    np.save(tmp_path / "d.npy", d[0].numpy())
    assert torch.equal(load_depth(tmp_path / "d.npy"), d)
    np.save(tmp_path / "d1.npy", d.numpy())  # [1, H, W]
    assert torch.equal(load_depth(tmp_path / "d1.npy"), d)
    np.savez(tmp_path / "d.npz", other=np.zeros(3), depth=d[0].numpy())
    assert torch.equal(load_depth(tmp_path / "d.npz"), d)
    with pytest.raises(DepthError, match="no array 'x'"):
        load_depth(tmp_path / "d.npz", key="x")
    write_pfm(tmp_path / "d.pfm", d[0].numpy())
    assert torch.equal(load_depth(tmp_path / "d.pfm"), d)
    assert torch.allclose(load_depth(tmp_path / "d.pfm", scale=1000.0), d / 1000)
    # invalid values become 0
    bad = d[0].numpy().copy()
    bad[1, 1], bad[2, 2], bad[3, 3] = np.nan, -2.0, np.inf
    np.save(tmp_path / "bad.npy", bad)
    out = load_depth(tmp_path / "bad.npy")
    assert out[0, 1, 1] == 0 and out[0, 2, 2] == 0 and out[0, 3, 3] == 0 and out[0, 4, 4] == d[0, 4, 4]
    for p in ("d.npy", "d.pfm"):
        save_depth(tmp_path / ("s_" + p), d)
        assert torch.equal(load_depth(tmp_path / ("s_" + p)), d)


def test_load_depth_png16(tmp_path: Path) -> None:
    d = depth_map()
    save_depth_png16(tmp_path / "d.png", d)  # millimetres
    out = load_depth(tmp_path / "d.png")
    assert out.shape == d.shape and out.dtype == torch.float32
    assert torch.allclose(out, d, atol=0.5e-3 + 1e-6)
    assert out[0, 0, 0] == 0
    save_depth_png16(tmp_path / "d256.png", d, scale=256.0)  # KITTI-style
    assert torch.allclose(load_depth(tmp_path / "d256.png", scale=256.0), d, atol=0.5 / 256 + 1e-6)
    save_depth(tmp_path / "s.png", d, scale=5000.0)
    assert torch.allclose(load_depth(tmp_path / "s.png", scale=5000.0), d, atol=1e-4)
    from PIL import Image

    Image.new("RGB", (4, 3)).save(tmp_path / "rgb.png")
    with pytest.raises(DepthError, match="greyscale"):
        load_depth(tmp_path / "rgb.png")


@pytest.mark.skipif(not HAS_EXR, reason="OpenEXR not installed")
@pytest.mark.parametrize("half", [False, True])
def test_exr_round_trip(tmp_path: Path, half: bool) -> None:
    d = depth_map()
    write_exr(tmp_path / "d.exr", d, half=half)
    out = load_depth(tmp_path / "d.exr")
    exp = d.half().float() if half else d
    assert torch.equal(out, exp)
    assert read_exr(tmp_path / "d.exr").dtype == np.float32


@pytest.mark.skipif(not HAS_EXR, reason="OpenEXR not installed")
def test_exr_channel_choice(tmp_path: Path) -> None:
    import OpenEXR

    h = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    a, b, c = (np.full((3, 4), v, np.float32) for v in (1.0, 2.0, 3.0))
    OpenEXR.File(h, {"R": a, "Y": b, "depth.Z": c}).write(str(tmp_path / "zyr.exr"))
    assert read_exr(tmp_path / "zyr.exr")[0, 0] == 3.0  # Z (as a layer suffix) first
    OpenEXR.File(h, {"R": a, "Y": b}).write(str(tmp_path / "yr.exr"))
    assert read_exr(tmp_path / "yr.exr")[0, 0] == 2.0
    OpenEXR.File(h, {"G": b, "R": a}).write(str(tmp_path / "gr.exr"))
    assert read_exr(tmp_path / "gr.exr")[0, 0] == 2.0  # first in file order (G < R)
    assert load_depth(tmp_path / "gr.exr", channel="R")[0, 0, 0] == 1.0
    with pytest.raises(DepthError, match="no channel 'Q'"):
        read_exr(tmp_path / "gr.exr", channel="Q")
    (tmp_path / "junk.exr").write_bytes(b"not an exr")
    with pytest.raises(DepthError, match="cannot read EXR"):
        load_depth(tmp_path / "junk.exr")


def test_load_depth_errors(tmp_path: Path) -> None:
    with pytest.raises(DepthError, match="not found"):
        load_depth(tmp_path / "missing.npy")
    (tmp_path / "d.txt").write_text("1 2 3")
    with pytest.raises(DepthError, match="unsupported depth format"):
        load_depth(tmp_path / "d.txt")
    np.save(tmp_path / "v.npy", np.zeros(5))
    with pytest.raises(DepthError, match="2D map"):
        load_depth(tmp_path / "v.npy")
    np.save(tmp_path / "ok.npy", np.ones((2, 2)))
    with pytest.raises(DepthError, match="positive"):
        load_depth(tmp_path / "ok.npy", scale=0.0)
    with pytest.raises(DepthError, match="cannot save"):
        save_depth(tmp_path / "d.jpg", torch.ones(1, 2, 2))


# ---------------------------------------------------------------------------------------------- stereo
CALIB_TXT = """cam0=[3979.911 0 1244.772; 0 3979.911 1019.507; 0 0 1]
cam1=[3979.911 0 1369.115; 0 3979.911 1019.507; 0 0 1]
doffs=124.343
baseline=193.001
width=2964
height=1988
ndisp=270
isint=0
vmin=23
vmax=245
dyavg=0
dymax=0
"""


def test_parse_middlebury_calib(tmp_path: Path) -> None:
    (tmp_path / "calib.txt").write_text(CALIB_TXT)
    for src in (tmp_path / "calib.txt", str(tmp_path / "calib.txt"), CALIB_TXT):
        c = parse_calib(src)
        assert (c.fx, c.fy, c.cx, c.cy) == (3979.911, 3979.911, 1244.772, 1019.507)
        assert (c.doffs, c.baseline, c.width, c.height, c.ndisp, c.vmin, c.vmax) == (
            124.343, 193.001, 2964, 1988, 270, 23.0, 245.0)
        assert c.baseline_m == pytest.approx(0.193001)
    # doffs derived from cam1 when absent; dict input with explicit intrinsics
    no_doffs = "\n".join(ln for ln in CALIB_TXT.splitlines() if not ln.startswith("doffs"))
    assert parse_calib(no_doffs).doffs == pytest.approx(1369.115 - 1244.772)
    d = parse_calib({"fx": 500, "cx": 320, "cy": 240, "baseline": 120})
    assert (d.fy, d.doffs, d.width) == (500.0, 0.0, None)
    # K in lyra's convention: pixel centres at +0.5, optionally rescaled to another image size
    K = parse_calib(CALIB_TXT).K()
    assert K[0, 2].item() == pytest.approx(1245.272) and K[1, 2].item() == pytest.approx(1020.007)
    K4 = parse_calib(CALIB_TXT).K(1988 // 4, 2964 // 4)
    assert K4[0, 0].item() == pytest.approx(3979.911 * 741 / 2964, rel=1e-6)
    with pytest.raises(DepthError, match="not found"):
        parse_calib(tmp_path / "nope.txt")
    with pytest.raises(DepthError, match="missing baseline"):
        parse_calib("cam0=[1 0 1; 0 1 1; 0 0 1]\n")
    with pytest.raises(DepthError, match="camera matrix"):
        parse_calib("cam0=1 2 3\nbaseline=1\n")
    with pytest.raises(DepthError, match="not a number"):
        parse_calib("cam0=[1 0 1; 0 1 1; 0 0 1]\nbaseline=abc\n")


def test_disparity_to_depth_by_hand() -> None:
    disp = torch.tensor([[10.0, 0.0, -3.0], [float("nan"), float("inf"), 40.0]])
    z = disparity_to_depth(disp, focal=1000.0, baseline=0.2, doffs=10.0)
    assert z[0, 0].item() == pytest.approx(1000 * 0.2 / 20)  # 10 m
    assert z[1, 2].item() == pytest.approx(1000 * 0.2 / 50)  # 4 m
    assert z[0, 1] == 0 and z[0, 2] == 0 and z[1, 0] == 0 and z[1, 1] == 0
    assert disparity_to_depth(np.array([[5.0]]), 100.0, 1.0)[0, 0].item() == pytest.approx(20.0)
    # d + doffs <= 0 is invalid even for d > 0
    assert disparity_to_depth(torch.tensor([1.0]), 100.0, 1.0, doffs=-2.0).item() == 0
    cal = parse_calib(CALIB_TXT)
    z = calibrated_depth(torch.full((2, 3), 100.0), cal)
    assert z.shape == (1, 2, 3)
    assert z[0, 0, 0].item() == pytest.approx(3979.911 * 0.193001 / (100 + 124.343))


def test_block_matching_recovers_a_known_shift() -> None:
    g = torch.Generator().manual_seed(0)
    H, W, shift = 24, 64, 6
    base = torch.nn.functional.avg_pool2d(torch.rand(1, 3, H, W + shift, generator=g), 3, 1, 1)[0]
    left, right = base[:, :, :W], base[:, :, shift:]  # left x matches right x - shift
    disp = block_matching(left, right, max_disp=12, window=5)
    inner = disp[4:-4, shift + 8:-4]
    assert (inner > 0).float().mean() > 0.9
    assert (inner[inner > 0] - shift).abs().max() < 0.5
    with pytest.raises(DepthError, match="differ in size"):
        block_matching(left, right[:, :, 1:], 12)
    with pytest.raises(DepthError, match="min_disp"):
        block_matching(left, right, 0)


def test_motorcycle_calibration_numbers() -> None:
    c = motorcycle_calibration()
    assert (c.fx, c.cx, c.cy, c.doffs, c.baseline) == (994.978, 311.193, 254.877, 31.086, 193.001)
    assert (c.width, c.height) == (741, 500)
    full = parse_calib(CALIB_TXT)  # the full-resolution Middlebury values are 4x these
    assert c.fx == pytest.approx(full.fx / 4, abs=1e-3) and c.doffs == pytest.approx(full.doffs / 4, abs=1e-3)


@pytest.mark.skipif(not HAS_SKIMAGE, reason="scikit-image not installed")
def test_motorcycle_depth_is_plausible() -> None:
    image, depth, K = motorcycle_depth()
    assert image.shape == (3, 500, 741) and depth.shape == (1, 500, 741) and K.shape == (3, 3)
    assert 0 <= image.min() and image.max() <= 1
    valid = depth > 0
    assert valid.float().mean() > 0.85
    v = depth[valid]
    assert torch.isfinite(v).all()
    # a motorcycle in a workshop, 2-5 m from a 19 cm-baseline rig
    assert 1.5 < v.min().item() and v.max().item() < 6.0
    assert 2.0 < v.median().item() < 3.5
    assert K[0, 0].item() == pytest.approx(994.978) and K[0, 2].item() == pytest.approx(311.693)


@pytest.mark.skipif(not HAS_SKIMAGE, reason="scikit-image not installed")
def test_stereo_matching_on_motorcycle_rows() -> None:
    from skimage.data import stereo_motorcycle

    left, right, gt = stereo_motorcycle()
    rows = slice(200, 260)
    L = torch.from_numpy(left[rows]).permute(2, 0, 1).float() / 255
    R = torch.from_numpy(right[rows]).permute(2, 0, 1).float() / 255
    disp = block_matching(L, R, max_disp=64)
    g = torch.from_numpy(np.nan_to_num(gt[rows], nan=0.0, posinf=0.0))
    both = (disp > 0) & (g > 0)
    assert both.float().mean() > 0.6
    assert ((disp - g).abs()[both] < 2).float().mean() > 0.85


@pytest.mark.skipif(not HAS_SKIMAGE, reason="scikit-image not installed")
def test_resolve_depth_from_stereo(tmp_path: Path) -> None:
    from skimage.data import stereo_motorcycle

    left, right, _ = stereo_motorcycle()
    L = torch.from_numpy(left[200:240]).permute(2, 0, 1).float() / 255
    R = torch.from_numpy(right[200:240]).permute(2, 0, 1).float() / 255
    c = motorcycle_calibration()
    calib = {"fx": c.fx, "cx": c.cx, "cy": c.cy, "baseline": c.baseline, "doffs": c.doffs, "vmin": 5, "vmax": 62}
    out = resolve_depth(L, stereo_right=R, calib=calib)
    assert out.source == "stereo" and out.metric and out.K is not None
    v = out.depth[out.depth > 0]
    assert out.depth.shape == (1, 40, 741) and v.numel() > 0.5 * 40 * 741
    assert 1.5 < v.median().item() < 5.0
    with pytest.raises(DepthError, match="--calib"):
        resolve_depth(L, stereo_right=R)


# ---------------------------------------------------------------------------------------------- model
# (a tiny model loaded from its folder and, by Hugging Face hub id, from the cache: tests/test_hub.py)
def test_depth_model_errors(tmp_path: Path) -> None:
    with pytest.raises(DepthError, match="not found"):
        load_depth_model(tmp_path / "missing")
    with pytest.raises(DepthError, match="no config.json"):
        load_depth_model(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    if not HAS_TRANSFORMERS:
        with pytest.raises(DepthError, match="pip install transformers"):
            load_depth_model(tmp_path)


# ---------------------------------------------------------------------------------------------- scale, sources
def test_normalize_scene_scale() -> None:
    d = torch.tensor([[[0.0, 1.0, 2.0], [3.0, float("nan"), 10.0]]])
    out, s = normalize_scene_scale(d, target_median=2.0)
    # valid values 1, 2, 3, 10: torch's (lower) median is 2 -> scale 1
    assert s == pytest.approx(1.0)
    assert out[0, 0, 0] == 0 and out[0, 1, 1] == 0
    out, s = normalize_scene_scale(torch.full((1, 4, 4), 8.0))
    assert s == pytest.approx(DEFAULT_TARGET_MEDIAN / 8.0) and torch.allclose(out, torch.full((1, 4, 4), 2.0))
    m = torch.zeros(1, 4, 4, dtype=torch.bool)
    m[0, 0] = True
    d = torch.full((1, 4, 4), 4.0)
    d[0, 0] = 1.0
    assert normalize_scene_scale(d, 2.0, mask=m)[1] == pytest.approx(2.0)
    with pytest.raises(DepthError, match="no valid pixel"):
        normalize_scene_scale(torch.zeros(1, 3, 3))
    with pytest.raises(DepthError, match="target_median"):
        normalize_scene_scale(d, 0.0)


def test_scale_fits_the_method_trajectories() -> None:
    """After normalisation the trajectory moves are a sensible fraction of the scene (metric or not)."""
    for unit in (1.0, 1000.0, 1e-3):  # metres, millimetres, kilometres
        d = torch.linspace(1.0, 5.0, 100).reshape(1, 10, 10) * unit
        out, s = normalize_scene_scale(d)
        med = out[out > 0].median().item()
        assert med == pytest.approx(DEFAULT_TARGET_MEDIAN, rel=1e-5)
        assert s * unit == pytest.approx(DEFAULT_TARGET_MEDIAN / d.median().item() * unit, rel=1e-5)
        # largest forward move (zoom_in 0.4) stays well in front of the median surface;
        # a 0.3 lateral move subtends a few degrees to ~10 degrees at that depth
        assert med - 0.4 > 1.0
        assert 3.0 < math.degrees(math.atan(0.3 / med)) < 12.0


def test_resize_depth() -> None:
    d = torch.arange(6.0).reshape(1, 2, 3)
    up = resize_depth(d, 4, 6)
    assert up.shape == (1, 4, 6) and set(up.unique().tolist()) == set(range(6))
    assert resize_depth(d, 2, 3) is d


def test_resolve_depth_sources(tmp_path: Path) -> None:
    img = torch.rand(3, 8, 12)
    with pytest.raises(DepthError) as e:
        resolve_depth(img)
    msg = str(e.value)
    assert msg == NO_DEPTH_MESSAGE
    for flag in ("--depth FILE", "--stereo RIGHT --calib FILE", "--depth-model DIR"):
        assert flag in msg
    np.save(tmp_path / "d.npy", np.full((4, 6), 3.0, np.float32))  # half size: resized to the image
    out = resolve_depth(img, depth_file=tmp_path / "d.npy")
    assert out.source == "file" and out.K is None and not out.metric
    assert out.depth.shape == (1, 8, 12) and torch.all(out.depth == 3.0)
    with pytest.raises(DepthError, match="only one depth source"):
        resolve_depth(img, depth_file=tmp_path / "d.npy", depth_model=tmp_path)
    if not HAS_TRANSFORMERS:
        (tmp_path / "m").mkdir()
        (tmp_path / "m" / "config.json").write_text("{}")
        with pytest.raises(DepthError, match="transformers"):
            resolve_depth(img, depth_model=tmp_path / "m")


@pytest.mark.skipif(not HAS_SKIMAGE, reason="scikit-image not installed")
def test_motorcycle_to_warped_trajectory() -> None:
    """Real photo -> metric depth -> scene scale -> 3D cache -> the method's trajectory frames."""
    from lyra.cache3d import forward_warp, lift_points
    from lyra.cameras import Cameras, method_trajectories

    image, depth, K = motorcycle_depth()
    cam = Cameras(torch.eye(4), K, 500, 741).resized(100, 148)
    img = torch.nn.functional.interpolate(image[None], size=(100, 148), mode="area")[0]
    d, scale = normalize_scene_scale(resize_depth(depth, 100, 148))
    assert scale == pytest.approx(DEFAULT_TARGET_MEDIAN / depth[depth > 0].median().item(), rel=0.05)
    cache = lift_points(img, d, cam)
    assert len(cache) > 0.7 * 100 * 148
    for traj in method_trajectories(cam.K[0], 100, 148, n_frames=3, seed=0)[:3]:
        r = forward_warp(cache, traj)
        assert r.mask[0].mean() > 0.7  # frame 0 is the input view
        assert r.mask[-1].mean() > 0.4
        assert torch.all(r.depth[r.mask > 0] > 0)
