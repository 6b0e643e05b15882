"""lyra.viewer and ``lyra view``: the viser server in-process, checked in headless Chromium (SwiftShader WebGL)."""

import argparse
import shutil
import socket
import subprocess
import urllib.request

import numpy as np
import pytest
import torch

from lyra.cameras import Cameras, look_at
from lyra.gaussians import Gaussians, covariances, quat_to_rotmat, save_ply

pytest.importorskip("viser", reason="viser is not installed (pip install 'viser>=1.1')")
from lyra.viewer import SceneViewer, camera_poses, splat_arrays  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
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
        import json
        import time

        from websockets.sync.client import connect

        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
               "--enable-unsafe-swiftshader", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", "--window-size=800,600",
               "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
        import json

        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def screenshot(self, url: str, ready, out, timeout: float = 40.0) -> np.ndarray:
        """Open ``url`` (None: stay on the page); poll screenshots until ``ready(img)`` (or the timeout);
        save the last one to ``out``."""
        import base64
        import io
        import time

        from PIL import Image

        if url is not None:
            self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while True:
            time.sleep(0.25)
            png = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
            img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int32)
            if ready(img) or time.monotonic() > deadline:
                out.write_bytes(png)
                return img

    def page_text(self) -> str:
        return self.call("Runtime.evaluate", expression="document.body.innerText")["result"].get("value", "")

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _colour_masks(img: np.ndarray) -> dict[str, np.ndarray]:
    """Saturated red / green / blue pixels, outside viser's RGB axes gizmo (bottom left) and the green
    "Connected" icon of its control panel (top right)."""
    img = img.copy()
    img[-120:, :120] = 255
    img[:100, 460:] = 255
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return {"red": (r > 180) & (g < 90) & (b < 90), "green": (g > 180) & (r < 90) & (b < 90),
            "blue": (b > 180) & (r < 90) & (g < 90)}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_viewer_draws_splats_in_headless_chromium(tmp_path):
    browser = _Chromium(tmp_path / "chromium-profile")
    shots = {}
    try:
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
    finally:
        browser.close()
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
