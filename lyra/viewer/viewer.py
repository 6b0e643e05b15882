"""A viser web viewer for a Gaussian scene and its trajectory cameras.

The scene is shown in our OpenCV world frame with viser's up direction set to -y (image-up of an
OpenCV camera), so the default orbit controls keep the scene upright. Splats are drawn by viser's
Gaussian-splat renderer from centres, world covariances R diag(s)^2 R^T, view-independent RGB (the SH
DC term: viser has no view-dependent colour) and opacities. Each trajectory camera is a frustum;
the GUI has a button per camera (up to ``MAX_CAMERA_BUTTONS``, otherwise a slider and one button),
and clicking a frustum jumps there too.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import torch

from lyra.cameras import Cameras
from lyra.gaussians import Gaussians, covariances, rotmat_to_quat

MAX_CAMERA_BUTTONS = 24
DEFAULT_MAX_GAUSSIANS = 2_000_000


def _import_viser():
    try:
        import viser
    except ImportError as exc:
        raise ImportError("the viewer needs viser >= 1.1: pip install 'viser>=1.1'") from exc
    return viser


def splat_arrays(g: Gaussians, max_gaussians: int | None = None) -> dict[str, np.ndarray]:
    """viser's splat inputs: ``centers`` [M, 3], ``covariances`` [M, 3, 3], ``rgbs`` [M, 3] in [0, 1],
    ``opacities`` [M, 1] (float32), keeping the ``max_gaussians`` most opaque (M <= N)."""
    g = g.detach().to("cpu", torch.float32)
    if max_gaussians is not None and len(g) > max_gaussians:
        keep = torch.topk(g.opacities, max_gaussians).indices.sort().values
        g = g.index(keep)
    return {
        "centers": g.means.numpy(),
        "covariances": covariances(g).numpy(),
        "rgbs": g.rgb().clamp(0, 1).numpy(),
        "opacities": g.opacities.clamp(0, 1)[:, None].numpy(),
    }


def camera_poses(cameras: Cameras) -> list[dict]:
    """Per camera: ``wxyz`` (camera-to-world rotation, OpenCV axes as viser expects), ``position``
    (centre), ``fov`` (vertical, radians), ``aspect`` (width / height), ``look_at`` (1 unit ahead)."""
    c2w = cameras.c2w.detach().to("cpu", torch.float64)
    q = rotmat_to_quat(c2w[:, :3, :3]).numpy()
    fy = cameras.fy.detach().to("cpu", torch.float64).numpy()
    out = []
    for i in range(len(cameras)):
        pos = c2w[i, :3, 3].numpy()
        out.append({
            "wxyz": q[i],
            "position": pos,
            "fov": 2.0 * math.atan(cameras.height / (2.0 * float(fy[i]))),
            "aspect": cameras.width / cameras.height,
            "look_at": pos + c2w[i, :3, 2].numpy(),
        })
    return out


class SceneViewer:
    """Serves ``g`` (and optional ``cameras``) in a browser at ``http://host:port``.

    Usage: ``v = SceneViewer(g, cams, port=8080); url = v.start(); ...; v.stop()``.
    The host defaults to 127.0.0.1 (this machine only); pass "0.0.0.0" to serve the network.
    """

    def __init__(
        self,
        g: Gaussians,
        cameras: Cameras | None = None,
        host: str = "127.0.0.1",
        port: int = 8080,
        max_gaussians: int | None = DEFAULT_MAX_GAUSSIANS,
    ) -> None:
        g.validate(check_values=True)
        self.gaussians = g
        self.cameras = cameras
        self.host = host
        self.port = port
        self.max_gaussians = max_gaussians
        self.server = None
        self._lock = threading.Lock()
        self._poses = camera_poses(cameras) if cameras is not None and len(cameras) else []

    # ------------------------------------------------------------------ life cycle
    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError("SceneViewer is not running; call start()")
        host = self.server.get_host()
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{host}:{self.server.get_port()}"

    def start(self) -> str:
        """Start the server (in background threads), add the scene and GUI; returns the URL."""
        viser = _import_viser()
        with self._lock:
            if self.server is not None:
                return self.url
            server = viser.ViserServer(host=self.host, port=self.port, verbose=False)
            self.server = server
            try:
                self._populate(server)
            except BaseException:
                self.server = None
                server.stop()
                raise
        return self.url

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        with self._lock:
            server, self.server = self.server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> SceneViewer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ scene
    def _scene_scale(self) -> tuple[np.ndarray, float]:
        """Median centre of the Gaussians and a robust scene size (scene units)."""
        m = self.gaussians.means.detach().to("cpu", torch.float64)
        if len(m) == 0:
            return np.zeros(3), 1.0
        med = m.median(dim=0).values
        size = float(torch.quantile((m - med).norm(dim=-1), 0.9)) if len(m) > 1 else 1.0
        return med.numpy(), max(size, 1e-3)

    def _populate(self, server) -> None:
        server.scene.set_up_direction("-y")
        target, size = self._scene_scale()
        if self._poses:
            first = self._poses[0]
            server.initial_camera.position = tuple(first["position"])
            server.initial_camera.look_at = tuple(first["position"] + (first["look_at"] - first["position"])
                                                  * max(np.linalg.norm(target - first["position"]), 1e-3))
            server.initial_camera.fov = first["fov"]
        else:  # the first input camera is the world origin (OpenCV): look from there at the scene
            server.initial_camera.position = (0.0, 0.0, 0.0)
            server.initial_camera.look_at = tuple(target) if np.linalg.norm(target) > 1e-6 else (0.0, 0.0, 1.0)
        server.initial_camera.up = (0.0, -1.0, 0.0)

        arrays = splat_arrays(self.gaussians, self.max_gaussians)
        server.scene.add_gaussian_splats("/gaussians", **arrays)
        n_shown = arrays["centers"].shape[0]
        info = f"{len(self.gaussians):,} Gaussians" + (f" ({n_shown:,} shown)" if n_shown < len(self.gaussians) else "")
        server.gui.add_markdown(info)
        if not self._poses:
            return
        frustum_scale = 0.05 * size
        centres = np.stack([p["position"] for p in self._poses])
        if len(centres) > 1:
            segs = np.stack([centres[:-1], centres[1:]], axis=1)
            server.scene.add_line_segments("/trajectory", points=segs, colors=(255, 160, 0),
                                          thickness=2.0, thickness_units="screen")
        for i, p in enumerate(self._poses):
            fr = server.scene.add_camera_frustum(
                f"/cameras/cam_{i:05d}", fov=p["fov"], aspect=p["aspect"], scale=frustum_scale,
                color=(255, 120, 0), thickness=1.5, thickness_units="screen", wxyz=p["wxyz"], position=p["position"],
            )
            fr.on_click(lambda _event, i=i: self.jump_to(i))
        with server.gui.add_folder("Cameras"):
            if len(self._poses) <= MAX_CAMERA_BUTTONS:
                for i in range(len(self._poses)):
                    server.gui.add_button(f"Camera {i}").on_click(lambda _event, i=i: self.jump_to(i))
            else:
                slider = server.gui.add_slider("Camera", min=0, max=len(self._poses) - 1, step=1, initial_value=0)
                server.gui.add_button("Go to camera").on_click(lambda _event: self.jump_to(int(slider.value)))
            server.gui.add_button("First camera").on_click(lambda _event: self.jump_to(0))

    def jump_to(self, i: int) -> None:
        """Move every connected browser's view to trajectory camera ``i`` (its pose and vertical FoV)."""
        if self.server is None or not 0 <= i < len(self._poses):
            return
        p = self._poses[i]
        for client in self.server.get_clients().values():
            try:
                with client.atomic():
                    client.camera.fov = p["fov"]
                    client.camera.position = p["position"]
                    client.camera.wxyz = p["wxyz"]
            except AssertionError:  # this client has not reported its camera yet
                continue
