"""A viser web viewer for a Gaussian scene and its trajectory cameras.

The scene is shown in our OpenCV world frame with viser's up direction set to -y (image-up of an
OpenCV camera), so the default orbit controls keep the scene upright. Splats are drawn by viser's
Gaussian-splat renderer from centres, world covariances R diag(s)^2 R^T, view-independent RGB (the SH
DC term: viser has no view-dependent colour) and opacities.

Cameras: the view opens at the first camera (the input camera: every trajectory starts there) with its
vertical FoV, looking into the scene. Each trajectory is drawn as a thin path and one small frustum (its
camera farthest from the start); the input camera is a grey frustum; the "show all cameras" checkbox adds a
frustum per camera. The GUI jumps to any camera (a button each up to ``MAX_CAMERA_BUTTONS`` cameras,
otherwise a slider and one button), and clicking a frustum jumps there too.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import torch

from lyra.cameras import Cameras
from lyra.gaussians import Gaussians, covariances, rotmat_to_quat
from lyra.viewer.trajectories import marker_cameras, trajectory_ranges

MAX_CAMERA_BUTTONS = 24
DEFAULT_MAX_GAUSSIANS = 2_000_000
FRUSTUM_SCALE = 0.02  # frustum depth as a fraction of the scene size ...
FRUSTUM_NEAR = 0.15  # ... and of the nearest marked camera's distance from the input camera (none fills the 1st view)
PATH_COLOUR = (255, 160, 0)
FRUSTUM_COLOUR = (255, 120, 0)
INPUT_COLOUR = (90, 90, 90)


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
    (centre), ``fov`` (vertical, radians), ``aspect`` (width / height), ``look_at`` (1 unit ahead),
    ``up`` (image-up in the world: the camera's -y axis)."""
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
            "up": -c2w[i, :3, 1].numpy(),
        })
    return out


class SceneViewer:
    """Serves ``g`` (and optional ``cameras``) in a browser at ``http://host:port``.

    Usage: ``v = SceneViewer(g, cams, port=8080); url = v.start(); ...; v.stop()``.
    The host defaults to 127.0.0.1 (this machine only); pass "0.0.0.0" to serve the network.
    ``frames_per_trajectory`` splits ``cameras`` into trajectories (None: inferred, see
    :mod:`lyra.viewer.trajectories`).
    """

    def __init__(
        self,
        g: Gaussians,
        cameras: Cameras | None = None,
        host: str = "127.0.0.1",
        port: int = 8080,
        max_gaussians: int | None = DEFAULT_MAX_GAUSSIANS,
        frames_per_trajectory: int | None = None,
    ) -> None:
        g.validate(check_values=True)
        self.gaussians = g
        self.cameras = cameras
        self.host = host
        self.port = port
        self.max_gaussians = max_gaussians
        self.server = None
        self._lock = threading.Lock()
        has_cams = cameras is not None and len(cameras) > 0
        self._poses = camera_poses(cameras) if has_cams else []
        self.trajectories = trajectory_ranges(cameras, frames_per_trajectory) if has_cams else []
        self.markers = marker_cameras(cameras, self.trajectories) if has_cams else []
        self._all_frustums: list = []
        self._paths: list = []
        self.show_all_box = None  # the "show all cameras" checkbox, once started with cameras

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
        self._set_initial_camera(server, target)
        server.gui.add_markdown(self._add_splats(server))
        self._add_gui(server)
        if self._poses:
            self._add_cameras(server, self._frustum_scale(size))

    def _set_initial_camera(self, server, target: np.ndarray) -> None:
        """Open every new browser at the input camera (pose and vertical FoV), orbiting a point as far ahead as
        the scene's centre; without cameras, at the origin (the input camera of our scenes) facing the scene."""
        cam = server.initial_camera
        if self._poses:
            first = self._poses[0]
            ahead = first["look_at"] - first["position"]
            depth = float(np.dot(target - first["position"], ahead))  # the scene centre's depth
            depth = depth if depth > 1e-3 else max(float(np.linalg.norm(target - first["position"])), 1e-3)
            cam.position = tuple(first["position"])
            cam.look_at = tuple(first["position"] + ahead * depth)
            cam.up = tuple(first["up"])
            cam.fov = first["fov"]
        else:
            cam.position = (0.0, 0.0, 0.0)
            cam.look_at = tuple(target) if np.linalg.norm(target) > 1e-6 else (0.0, 0.0, 1.0)
            cam.up = (0.0, -1.0, 0.0)

    def _add_splats(self, server) -> str:
        """Send the splats; returns the info line shown at the top of the GUI."""
        arrays = splat_arrays(self.gaussians, self.max_gaussians)
        server.scene.add_gaussian_splats("/gaussians", **arrays)
        n_shown = arrays["centers"].shape[0]
        return f"{len(self.gaussians):,} Gaussians" + (f" ({n_shown:,} shown)" if n_shown < len(self.gaussians)
                                                      else "")

    def _add_gui(self, server) -> None:
        """Extra GUI before the cameras' (the 4D viewer's time controls)."""

    def _frustum_scale(self, size: float) -> float:
        """Frustum depth (scene units): ``FRUSTUM_SCALE`` of the scene size, at most ``FRUSTUM_NEAR`` of the
        distance from the input camera to the nearest trajectory marker that moved away from it."""
        origin = self._poses[0]["position"]
        dists = [float(np.linalg.norm(self._poses[i]["position"] - origin)) for i in self.markers]
        dists = [d for d in dists if d > 1e-6]
        return min(FRUSTUM_SCALE * size, FRUSTUM_NEAR * min(dists)) if dists else FRUSTUM_SCALE * size

    def _add_cameras(self, server, scale: float) -> None:
        """Trajectory paths, the input camera, one frustum per trajectory, hidden frustums for the rest, GUI."""
        self._paths = []
        for k, r in enumerate(self.trajectories):
            if len(r) > 1:
                c = np.stack([self._poses[i]["position"] for i in r])
                self._paths.append(server.scene.add_line_segments(
                    f"/trajectories/path_{k:03d}", points=np.stack([c[:-1], c[1:]], 1), colors=PATH_COLOUR,
                    thickness=1.5, thickness_units="screen"))
        markers = set(self.markers)
        self._all_frustums = []
        for i, p in enumerate(self._poses):
            group = "input" if i == 0 else "ends" if i in markers else "all"
            colour, visible = INPUT_COLOUR if i == 0 else FRUSTUM_COLOUR, group != "all"
            fr = server.scene.add_camera_frustum(
                f"/cameras/{group}/cam_{i:05d}", fov=p["fov"], aspect=p["aspect"], scale=scale, color=colour,
                thickness=1.5, thickness_units="screen", wxyz=p["wxyz"], position=p["position"], visible=visible)
            fr.on_click(lambda _event, i=i: self.jump_to(i))
            if not visible:
                self._all_frustums.append(fr)
        self._add_camera_gui(server)

    def _add_camera_gui(self, server) -> None:
        n, k = len(self._poses), len(self.trajectories)
        with server.gui.add_folder("Cameras"):
            server.gui.add_markdown(f"{n} camera{'s' * (n != 1)} in {k} trajector{'ies' if k != 1 else 'y'}")
            box = server.gui.add_checkbox("show all cameras", False, hint="a frustum at every camera")
            self.show_all_box = box
            box.on_update(lambda _event: self.show_all_cameras(bool(box.value)))
            paths = server.gui.add_checkbox("show paths", True, hint="the trajectories' paths")
            paths.on_update(lambda _event: self.show_paths(bool(paths.value)))
            if n <= MAX_CAMERA_BUTTONS:
                for i in range(n):
                    server.gui.add_button(f"Camera {i}").on_click(lambda _event, i=i: self.jump_to(i))
            else:
                slider = server.gui.add_slider("Camera", min=0, max=n - 1, step=1, initial_value=0)
                server.gui.add_button("Go to camera").on_click(lambda _event: self.jump_to(int(slider.value)))
            server.gui.add_button("Input camera").on_click(lambda _event: self.jump_to(0))

    def show_all_cameras(self, show: bool) -> None:
        """Show (or hide) a frustum at every camera; the input camera and one per trajectory stay shown."""
        for fr in self._all_frustums:
            fr.visible = show

    def show_paths(self, show: bool) -> None:
        """Show (or hide) the trajectories' paths."""
        for path in self._paths:
            path.visible = show

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
