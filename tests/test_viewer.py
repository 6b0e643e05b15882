"""lyra.viewer and ``lyra view``: the viser server in-process, checked in headless Chromium (SwiftShader WebGL).

One Chromium serves every browser test of the module (the ``browser`` fixture); scenes are tiny so that software
WebGL renders them in seconds on a busy machine.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import numpy as np
import pytest
import torch

from lyra.cameras import Cameras, default_intrinsics, look_at, method_trajectories, save_cameras_npz
from lyra.gaussians import Gaussians, covariances, quat_to_rotmat, save_ply
from lyra.gaussians.sequence import load_sequence, write_sequence

pytest.importorskip("viser", reason="viser is not installed (pip install 'viser>=1.1')")
from lyra.viewer import (  # noqa: E402
    SceneViewer,
    SequenceViewer,
    camera_poses,
    frame_intervals,
    infer_frames_per_trajectory,
    marker_cameras,
    nearest_frame,
    report_frames_per_trajectory,
    splat_arrays,
    trajectory_ranges,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
COLOURS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _assert_not_listening(port: int) -> None:
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


def _blobs(opacity: float = 0.99) -> Gaussians:
    """Three big splats 3 units in front of the origin camera: red left, green right, blue above (OpenCV)."""
    means = torch.tensor([[-0.7, 0.2, 3.0], [0.7, 0.2, 3.0], [0.0, -0.6, 3.0]])
    return Gaussians(means, torch.tensor([[1.0, 0, 0, 0]]).repeat(3, 1), torch.full((3, 3), 0.3),
                     torch.full((3,), opacity), colors=torch.tensor(list(COLOURS.values())))


class _Chromium:
    """Headless Chromium (SwiftShader WebGL) driven over the DevTools protocol: load a page, wait, screenshot."""

    def __init__(self, profile) -> None:
        from websockets.sync.client import connect

        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
               "--enable-unsafe-swiftshader", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", "--window-size=800,600",
               "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            page = next(t for t in json.load(resp) if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None)
        self._id = 0
        self.call("Emulation.setDeviceMetricsOverride", width=800, height=600, deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params):
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def screenshot(self, url: str, ready, out, timeout: float = 90.0) -> np.ndarray:
        """Open ``url`` (None: stay on the page); poll screenshots until ``ready(img)`` (or the timeout);
        save the last one to ``out``."""
        import base64
        import io

        from PIL import Image

        if url is not None:
            self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while True:
            time.sleep(0.25)
            try:
                png = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
            except RuntimeError as exc:  # the page is being swapped for the new one: try again
                if "Not attached to an active page" not in str(exc) or time.monotonic() > deadline:
                    raise
                continue
            img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int32)
            if ready(img) or time.monotonic() > deadline:
                out.write_bytes(png)
                return img

    def page_text(self) -> str:
        """The page's visible text ("" while a page is being swapped in)."""
        try:
            return self.call("Runtime.evaluate", expression="document.body.innerText")["result"].get("value", "")
        except RuntimeError:
            return ""

    def close(self) -> None:
        """Close the DevTools socket and end the browser's process group (its own session, started above)."""
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=10)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium for the module's browser tests."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    b = _Chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def _colour_masks(img: np.ndarray) -> dict[str, np.ndarray]:
    """Saturated red / green / blue pixels, outside viser's RGB axes gizmo (bottom left) and the green
    "Connected" icon of its control panel (top right)."""
    img = img.copy()
    img[-120:, :120] = 255
    img[:100, 460:] = 255
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return {"red": (r > 180) & (g < 90) & (b < 90), "green": (g > 180) & (r < 90) & (b < 90),
            "blue": (b > 180) & (r < 90) & (g < 90)}


@needs_chromium
def test_viewer_draws_splats_in_headless_chromium(browser, tmp_path):
    shots = {}
    for label, opacity in (("scene", 0.99), ("empty", 0.0)):
        with SceneViewer(_blobs(opacity), port=_free_port()) as viewer:
            assert viewer.url.startswith("http://127.0.0.1:")

            seen = []

            def ready(img, opacity=opacity, seen=seen):  # the GUI has settled (and the scene's splats drawn)
                seen.append("3 Gaussians" in browser.page_text())
                if not seen[-3:] == [True] * 3:
                    return False
                return opacity == 0 or all(m.sum() > 1500 for m in _colour_masks(img).values())

            shots[label] = browser.screenshot(viewer.url, ready, tmp_path / f"{label}.png")
            assert "3 Gaussians" in browser.page_text()
    # trajectory cameras: a GUI button each; jump_to(i) moves the browser's view to camera i
    eyes = torch.tensor([[0.0, 0, 0], [2.5, -0.5, 3.0]])  # the origin, then right of the splats
    cams = Cameras.from_fov(look_at(eyes, torch.tensor([0.0, 0, 3])), 48, 64)
    with SceneViewer(_blobs(), cams, port=_free_port()) as viewer:
        def front(img):
            m = _colour_masks(img)
            return "Camera 1" in browser.page_text() and all(v.sum() > 1500 for v in m.values())

        before = _colour_masks(browser.screenshot(viewer.url, front, tmp_path / "camera0.png"))
        assert "Camera 0" in browser.page_text() and "Camera 1" in browser.page_text()
        viewer.jump_to(1)

        def side(img):  # seen from the right, green (x = +0.7) is in front and hides red
            m = _colour_masks(img)
            return m["green"].sum() > 5 * max(m["red"].sum(), 1)

        after = _colour_masks(browser.screenshot(None, side, tmp_path / "camera1.png"))
    assert before["red"].sum() > 1500 and after["green"].sum() > 5 * max(after["red"].sum(), 1)
    masks = _colour_masks(shots["scene"])
    for name, m in masks.items():
        assert m.sum() > 1500, f"too few {name} pixels: {m.sum()}"
        assert _colour_masks(shots["empty"])[name].sum() < 50
    # placement seen from the origin camera (OpenCV: x right, y down): red left of green, blue above both
    cx = {k: np.nonzero(m)[1].mean() for k, m in masks.items()}
    cy = {k: np.nonzero(m)[0].mean() for k, m in masks.items()}
    assert cx["red"] < cx["blue"] < cx["green"]
    assert cy["blue"] < cy["red"] and cy["blue"] < cy["green"]
    assert shots["scene"][150:450, 200:600].std() > 3 * shots["empty"][150:450, 200:600].std() + 10


def test_viewer_start_stop_and_page(tmp_path):
    port = _free_port()
    cams = Cameras.from_fov(look_at(torch.tensor([[0.0, 0, 0], [0.5, 0, 0]]), torch.tensor([0.0, 0, 3])), 48, 64)
    viewer = SceneViewer(_blobs(), cams, port=port)
    url = viewer.start()
    try:
        assert url == f"http://127.0.0.1:{port}" and viewer.start() == url  # idempotent
        assert viewer.server.get_host() == "127.0.0.1"
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200 and b"<html" in resp.read().lower()
        viewer.jump_to(1)  # no browser connected: a no-op, not an error
    finally:
        viewer.stop()
    viewer.stop()
    _assert_not_listening(port)


def test_splat_arrays_and_camera_poses():
    g = _blobs()
    a = splat_arrays(g)
    assert a["centers"].shape == (3, 3) and a["opacities"].shape == (3, 1)
    np.testing.assert_allclose(a["covariances"], covariances(g).numpy(), atol=1e-7)
    np.testing.assert_allclose(a["covariances"][0], np.eye(3) * 0.09, atol=1e-7)
    g2 = Gaussians(g.means, g.quats, g.scales, torch.tensor([0.2, 0.9, 0.5]), colors=g.colors)
    kept = splat_arrays(g2, max_gaussians=2)
    np.testing.assert_allclose(kept["centers"], g.means[1:].numpy())  # the most opaque, order kept
    w2c = look_at(torch.tensor([[1.0, -1.0, 0.0]]), torch.tensor([0.0, 0, 3]))
    cams = Cameras(w2c, torch.tensor([[50.0, 0, 32], [0, 40.0, 24], [0, 0, 1]]), 48, 64)
    (p,) = camera_poses(cams)
    R = quat_to_rotmat(torch.tensor(p["wxyz"])).numpy()
    np.testing.assert_allclose(R, cams.c2w[0, :3, :3].numpy(), atol=1e-6)
    np.testing.assert_allclose(p["position"], [1.0, -1.0, 0.0], atol=1e-6)
    assert p["fov"] == pytest.approx(2 * np.arctan(24 / 40.0)) and p["aspect"] == pytest.approx(64 / 48)


def test_cli_view_serves_until_ctrl_c(tmp_path, monkeypatch, capsys):
    from lyra.cli import view_cmd

    save_ply(tmp_path / "s.ply", _blobs())
    port = _free_port()
    calls = []

    def fake_sleep(_s):  # the first wait: the page is served; then "Ctrl-C"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=10) as resp:
            calls.append(resp.status)
        raise KeyboardInterrupt

    monkeypatch.setattr(view_cmd.time, "sleep", fake_sleep)
    parser = argparse.ArgumentParser()
    view_cmd.add_parser(parser.add_subparsers())
    args = parser.parse_args(["view", str(tmp_path / "s.ply"), "--port", str(port)])
    assert args.host == "127.0.0.1"
    assert args.func(args) == 0 and calls == [200]
    out = capsys.readouterr().out
    assert f"http://127.0.0.1:{port}" in out and "viewer stopped" in out
    _assert_not_listening(port)
    with pytest.raises(FileNotFoundError):
        args.func(parser.parse_args(["view", str(tmp_path / "missing.ply")]))


# ---------------------------------------------------------------------------- first impression, trajectories
H, W = 176, 320  # the pocket pipeline's image size


def _method_cameras(frames: int = 17) -> Cameras:
    """The six method trajectories from the origin camera, concatenated as ``cameras.npz`` holds them."""
    return Cameras.cat(method_trajectories(default_intrinsics(H, W), H, W, frames))


def _wall(z: float = 2.0, step: float = 0.2) -> Gaussians:
    """A wall of opaque blue-green splats at depth ``z`` covering the origin camera's view (no orange, no red)."""
    xs, ys = torch.meshgrid(torch.arange(-1.6, 1.61, step), torch.arange(-1.1, 1.11, step), indexing="xy")
    n = xs.numel()
    means = torch.stack([xs.flatten(), ys.flatten(), torch.full((n,), z)], -1)
    gen = torch.Generator().manual_seed(0)
    colours = torch.stack([0.4 * torch.rand(n, generator=gen), 0.2 + 0.6 * torch.rand(n, generator=gen),
                           0.5 + 0.5 * torch.rand(n, generator=gen)], -1)
    return Gaussians(means, torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1), torch.full((n, 3), 0.5 * step),
                     torch.full((n,), 0.99), colors=colours)


def _view_mask(img: np.ndarray) -> np.ndarray:
    """Pixels of the 3D view: not viser's WebGL notice (top left), control panel (top right) or axes (bottom left)."""
    keep = np.ones(img.shape[:2], bool)
    keep[:160, :320] = False
    keep[:360, 460:] = False
    keep[-120:, :120] = False
    return keep


def _scene_and_orange(img: np.ndarray) -> tuple[float, float]:
    """(fraction of view pixels that are scene: not the white background, not frustum orange; fraction orange)."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    orange = (r > 200) & (g > 70) & (g < 200) & (b < 90)
    scene = (np.abs(img - 255).max(-1) > 40) & ~orange
    keep = _view_mask(img)
    return float((scene & keep).sum() / keep.sum()), float((orange & keep).sum() / keep.sum())


def _steady(browser, text: str, cond, n: int = 2):
    """A ``ready`` for ``screenshot``: ``text`` is on the page and ``cond(img)`` held for ``n`` polls in a row."""
    hits = []

    def ready(img):
        hits.append(text in browser.page_text() and cond(img))
        return hits[-n:] == [True] * n
    return ready


@needs_chromium
def test_static_viewer_opens_at_input_camera_not_inside_frustums(browser, tmp_path):
    """With the 102 cameras of six 17-frame trajectories, the first view is the input camera's: the scene fills it
    and frustums are a few thin lines (the old viewer drew all 102 around the eye: 16% orange, 84% scene); the
    "show all cameras" checkbox brings every frustum back."""
    cams = _method_cameras(17)
    with SceneViewer(_wall(), cams, port=_free_port()) as viewer:
        ok = _steady(browser, "102 cameras in 6 trajectories", lambda im: _scene_and_orange(im)[0] > 0.9)
        scene, orange = _scene_and_orange(browser.screenshot(viewer.url, ok, tmp_path / "initial.png"))
        assert scene > 0.95 and orange < 0.01, (scene, orange)
        viewer.show_all_box.value = True  # the GUI checkbox (its callback runs here)
        # Frustums arrive one message at a time (slowly on a loaded machine): wait until the orange share stops
        # growing, then compare with the first view (here 0.002 -> 0.044 on idle cores).
        shares: list[float] = []

        def settled(im):
            shares.append(_scene_and_orange(im)[1])
            return "show all cameras" in browser.page_text() and len(shares) >= 3 and shares[-1] > 0.015 and (
                abs(shares[-1] - shares[-3]) < 1e-3)
        scene_all, orange_all = _scene_and_orange(browser.screenshot(None, settled, tmp_path / "all.png"))
    assert orange_all > 0.015 and orange_all > 5 * orange, (orange, orange_all, shares[-5:])


def test_trajectory_split_from_report_or_poses(tmp_path):
    cams = _method_cameras(9)
    assert infer_frames_per_trajectory(cams) == 9  # cameras 0, 9, ..., 45 are the input camera
    ranges = trajectory_ranges(cams)
    assert ranges == [range(k, k + 9) for k in range(0, 54, 9)]
    assert trajectory_ranges(cams, 27) == [range(0, 27), range(27, 54)]
    assert trajectory_ranges(cams[:5]) == [range(0, 5)]  # no repeat of the first pose: one trajectory
    # markers: the end of the straight moves, half-way round the clockwise circle (which ends where it began)
    markers = marker_cameras(cams, ranges)
    assert markers[:5] == [8, 17, 26, 35, 44] and 45 < markers[5] < 53
    centres = cams.c2w[:, :3, 3]
    assert (centres[53] - centres[45]).norm() < 0.05 * (centres[markers[5]] - centres[45]).norm()
    # report.json beside the npz (as lyra generate writes it) wins when it accounts for every camera
    npz = save_cameras_npz(tmp_path / "cameras.npz", cams)
    assert report_frames_per_trajectory(npz, len(cams)) is None
    (tmp_path / "report.json").write_text(json.dumps({"trajectories": 6, "frames_per_trajectory": 9}))
    assert report_frames_per_trajectory(npz, 54) == 9
    assert report_frames_per_trajectory(npz, 50) is None  # does not fit: ignored
    (tmp_path / "report.json").write_text("{not json")
    assert report_frames_per_trajectory(npz, 54) is None


def test_static_viewer_initial_camera_and_frustums():
    cams = _method_cameras(9)
    with SceneViewer(_wall(), cams, port=_free_port()) as viewer:
        init = viewer.server.initial_camera
        np.testing.assert_allclose(init.position, [0, 0, 0], atol=1e-6)
        fwd = np.asarray(init.look_at) - np.asarray(init.position)
        np.testing.assert_allclose(fwd / np.linalg.norm(fwd), [0, 0, 1], atol=1e-6)  # the input camera's axis
        assert np.linalg.norm(fwd) == pytest.approx(2.0, abs=1e-3)  # orbits the scene's centre
        np.testing.assert_allclose(init.up, [0, -1, 0], atol=1e-6)
        assert init.fov == pytest.approx(2 * np.arctan(H / 2 / default_intrinsics(H, W)[1, 1].item()))
        assert len(viewer.trajectories) == 6 and len(viewer._all_frustums) == 54 - 1 - 6  # hidden until asked
        # small frustums: 2% of the scene, at most 15% of the nearest marked camera's distance from the input one
        nearest = min((cams.c2w[m, :3, 3] - cams.c2w[0, :3, 3]).norm().item() for m in viewer.markers)
        assert viewer._frustum_scale(100.0) == pytest.approx(0.15 * nearest, rel=1e-5)
        assert viewer._frustum_scale(0.1) == pytest.approx(0.002)
        assert not any(fr.visible for fr in viewer._all_frustums)
        viewer.show_all_box.value = True
        assert all(fr.visible for fr in viewer._all_frustums)
        viewer.show_paths(False)
        assert len(viewer._paths) == 6 and not any(p.visible for p in viewer._paths)


# ---------------------------------------------------------------------------- 4D sequences
def _moving(x: float) -> Gaussians:
    """A sparse blue-green wall at z = 3 and a red splat at (x, 0.5, 2) in front of it (below the GUI panel)."""
    wall = _wall(3.0, 0.25)
    red = Gaussians(torch.tensor([[x, 0.5, 2.0]]), torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.12),
                    torch.tensor([0.99]), colors=torch.tensor([[1.0, 0.0, 0.0]]))
    return Gaussians(torch.cat([wall.means, red.means]), torch.cat([wall.quats, red.quats]),
                     torch.cat([wall.scales, red.scales]), torch.cat([wall.opacities, red.opacities]),
                     colors=torch.cat([wall.colors, red.colors]))


def _write_moving_sequence(folder, cameras: bool = False):
    """A 3-frame sequence (t = 0, 0.5, 1) of the red splat moving from x = -0.6 to 0.6 in front of the wall."""
    folder.mkdir(parents=True, exist_ok=True)
    if cameras:
        save_cameras_npz(folder / "cameras.npz", _method_cameras(9))
    return write_sequence(folder, [_moving(x) for x in (-0.6, 0.0, 0.6)], [0.0, 0.5, 1.0], fps=24.0,
                          video_frames=17, cameras="cameras.npz" if cameras else None)


def _red_xy(img: np.ndarray) -> tuple[float, float]:
    """Mean (column, row) of the saturated red pixels of the view (nan if too few)."""
    m = _colour_masks(img)["red"] & _view_mask(img)
    rows, cols = np.nonzero(m)
    return (float(cols.mean()), float(rows.mean())) if m.sum() > 200 else (float("nan"), float("nan"))


def _red_x(img: np.ndarray) -> float:
    return _red_xy(img)[0]


@needs_chromium
@pytest.mark.parametrize("preload", [True, False], ids=["visibility-swap", "node-replace"])
def test_sequence_viewer_time_slider_moves_the_object(browser, tmp_path, preload):
    m, scenes = load_sequence(_write_moving_sequence(tmp_path / "seq").root)
    viewer = SequenceViewer(scenes, m.times, port=_free_port(), fps=m.fps, video_frames=m.video_frames,
                            preload_limit=10**6 if preload else 0)
    assert viewer.preload is preload
    with viewer:
        viewer.time_slider.value = 0.5  # as a user moving the slider: the red splat at x = 0 (image centre)
        mid = browser.screenshot(viewer.url, _steady(browser, "frame 2 / 3", lambda im: 350 < _red_x(im) < 450),
                                 tmp_path / "t05.png")
        viewer.time_slider.value = 1.0  # a live swap in the open page: x = 0.6
        right = browser.screenshot(None, _steady(browser, "frame 3 / 3", lambda im: _red_x(im) > 470, n=1),
                                   tmp_path / "t1.png")
        assert viewer.frame == 2
    assert 350 < _red_x(mid) < 450 < 470 < _red_x(right), (_red_x(mid), _red_x(right))
    # the screenshots differ where the object moved and are near-identical elsewhere
    diff = np.abs(mid - right).max(-1)
    rows, cols = np.mgrid[:diff.shape[0], :diff.shape[1]]
    (x0, y0), (x1, y1) = _red_xy(mid), _red_xy(right)
    assert y0 > 360 and abs(y1 - y0) < 5  # below the GUI panel; the splat moves along x only
    near = np.minimum(np.hypot(cols - x0, rows - y0), np.hypot(cols - x1, rows - y1)) < 150
    far = _view_mask(mid) & ~near
    assert (diff[near & _view_mask(mid)] > 60).sum() > 2000
    assert (diff[far] > 40).mean() < 0.005 and diff[far].mean() < 2.0, (diff[far] > 40).mean()


def test_frame_intervals_and_nearest_frame():
    # 17 video frames at 24 fps: t in [0, 1] spans 16 / 24 s; 3 frames at t = 0, 0.5, 1 hold 1/3 s each
    assert frame_intervals([0.0, 0.5, 1.0], 24.0, 17) == pytest.approx([1 / 3] * 3)
    assert frame_intervals([0.0, 0.5, 1.0], 24.0) == pytest.approx([0.1] * 3)  # 2/24 s, at most 10 frames/s
    assert frame_intervals([0.0, 1.0], 0.1, 100) == pytest.approx([2.0, 2.0])  # held 2 s at most
    assert frame_intervals([0.5], 24.0) == pytest.approx([0.1])
    assert [nearest_frame([0.0, 0.5, 1.0], t) for t in (-1, 0.2, 0.3, 0.74, 0.76, 9)] == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("preload", [True, False], ids=["visibility-swap", "node-replace"])
def test_sequence_viewer_slider_play_pause(preload):
    scenes = [_moving(x) for x in (-0.6, 0.0, 0.6)] + [_moving(0.0).index(slice(0, 0))]  # the last frame empty
    viewer = SequenceViewer(scenes, [0.0, 0.25, 0.5, 1.0], port=_free_port(), fps=24.0, video_frames=9,
                            preload_limit=10**6 if preload else 0)
    assert viewer.preload is preload  # 8/24 s per unit of time, 0.1 s at least:
    assert viewer.intervals == pytest.approx([0.1, 0.1, 1 / 6, 0.1])
    with viewer:
        if preload:  # every frame sent once, all hidden but the first; the empty frame has no node
            assert [n is None for n in viewer._nodes] == [False, False, False, True]
            assert [n.visible for n in viewer._nodes[:3]] == [True, False, False]
        assert viewer.set_time(0.3) == 1 and viewer.time_slider.value == 0.25
        if preload:
            assert [n.visible for n in viewer._nodes[:3]] == [False, True, False]
        viewer.time_slider.value = 1.0  # the slider swaps frames (here: to the empty one)
        assert viewer.frame == 3 and "frame 4 / 4" in viewer._status.content
        assert preload or viewer._node is None  # the replaced node is removed for an empty frame
        viewer.time_slider.value = 0.0
        assert viewer.frame == 0 and (preload or viewer._node is not None)
        viewer.play()
        assert viewer.playing and viewer.play_button.label == "Pause"
        seen, deadline = set(), time.monotonic() + 10
        while len(seen) < 4 and time.monotonic() < deadline:
            seen.add(viewer.frame)
            time.sleep(0.02)
        viewer.pause()
        assert seen == {0, 1, 2, 3} and not viewer.playing and viewer.play_button.label == "Play"
        time.sleep(0.3)
        frame = viewer.frame
        time.sleep(0.3)
        assert viewer.frame == frame  # paused
    with pytest.raises(ValueError, match="increase strictly"):
        SequenceViewer(scenes[:2], [0.5, 0.5])
    with pytest.raises(ValueError, match="one scene per time"):
        SequenceViewer(scenes[:2], [0.0])


def _cli(argv, monkeypatch, port):
    """Run ``lyra view ARGV --port PORT`` through the real CLI; the first wait fetches the page, then "Ctrl-C"."""
    from lyra.cli import main as cli_main
    from lyra.cli import view_cmd

    calls = []

    def fake_sleep(_s):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=10) as resp:
            calls.append(resp.status)
        raise KeyboardInterrupt

    monkeypatch.setattr(view_cmd.time, "sleep", fake_sleep)
    return cli_main.main(["view", *map(str, argv), "--port", str(port)]), calls


def test_cli_view_sequence_with_its_cameras(tmp_path, monkeypatch, capsys):
    m = _write_moving_sequence(tmp_path / "seq", cameras=True)
    for target in (m.root, m.root / "sequence.json"):
        port = _free_port()
        rc, calls = _cli([target], monkeypatch, port)
        out = capsys.readouterr().out
        assert rc == 0 and calls == [200], capsys.readouterr().err
        assert "a 4D sequence of 3 frames" in out and "54 cameras (6 trajectories)" in out
        assert f"http://127.0.0.1:{port}" in out and "viewer stopped" in out
        _assert_not_listening(port)
    # --cameras overrides the manifest's; report.json beside a static scene's cameras splits its trajectories
    save_cameras_npz(tmp_path / "cams.npz", _method_cameras(9)[:18])
    (tmp_path / "report.json").write_text(json.dumps({"trajectories": 1, "frames_per_trajectory": 18}))
    rc, _ = _cli([m.root, "--cameras", tmp_path / "cams.npz"], monkeypatch, _free_port())
    assert rc == 0 and "18 cameras (1 trajectory)" in capsys.readouterr().out
    save_ply(tmp_path / "s.ply", _blobs())
    rc, _ = _cli([tmp_path / "s.ply", "--cameras", tmp_path / "cams.npz"], monkeypatch, _free_port())
    assert rc == 0 and "3 Gaussians and 18 cameras (1 trajectory)" in capsys.readouterr().out


def test_cli_view_bad_sequence_is_one_line_exit_2(tmp_path, capsys):
    from lyra.cli.main import main

    m = _write_moving_sequence(tmp_path / "seq")
    manifest = json.loads((m.root / "sequence.json").read_text())
    bad = {
        "no manifest": (tmp_path / "plain", None, "no sequence.json"),
        "times": (tmp_path / "times", {**manifest, "times": [0.0, 0.5, 0.5]}, "increase strictly"),
        "frame": (tmp_path / "frame", {**manifest, "frames": ["frame_0000.ply", "frame_0001.ply", "gone.ply"]},
                  "missing"),
        "format": (tmp_path / "format", {**manifest, "format": "something-else"}, "not a lyra-4d-sequence"),
        "cameras": (tmp_path / "cams", {**manifest, "cameras": "nowhere.npz"}, "nowhere.npz"),
    }
    for name, (folder, content, expect) in bad.items():
        if content is not None:
            shutil.copytree(m.root, folder)
            (folder / "sequence.json").write_text(json.dumps(content))
        else:
            folder.mkdir()
        assert main(["view", str(folder), "--port", str(_free_port())]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("lyra view: error: ") and err.count("\n") == 1 and expect in err, (name, err)
    (tmp_path / "garbled.json").write_text("{")
    assert main(["view", str(tmp_path / "garbled.json")]) == 2
    assert "unreadable manifest" in capsys.readouterr().err
