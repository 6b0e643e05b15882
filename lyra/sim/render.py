"""Headless MuJoCo rendering of the simulated bodies through OpenCV cameras, composited over the splat render.

MuJoCo renders offscreen through EGL (``MUJOCO_GL=egl``, Mesa llvmpipe on CPU; set by :mod:`lyra.sim.mjscene`
when no display is present) or OSMesa (``MUJOCO_GL=osmesa``). Only the dynamic bodies are drawn: every geom of
the world body (the ground plane and the collision hulls) is hidden, so a pixel belongs to the robot where
MuJoCo's depth is finite. The camera is one model camera moved to each frame's pose and intrinsics (the exact
conversion of :func:`lyra.sim.mjscene.mujoco_camera_params`).

Compositing (:func:`composite`) is a depth test: a robot sample is shown where its z-depth is less than the
splats' expected z-depth (metres: scene depth x scale) times ``1 + tolerance`` (splat depth stands a little in
front of the surface, most on ground seen at grazing angles, so feet on the ground stay visible); pixels where
the splats are transparent (alpha < ``alpha_min``) never hide it. The robot is rendered at ``supersample`` x the
output size with hard edges; averaging each block gives its coverage (soft edges), so
out = mean(visible x robot_rgb) + (1 - coverage) x splat_rgb.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from lyra.sim.errors import SimError
from lyra.sim.mjscene import _mujoco, mujoco_camera_params

VIEW_CAMERA = "lyra_view"
HIDDEN_GROUP = 5  # render-time geom group of the world body's geoms (hidden)


@functools.lru_cache(maxsize=1)
def gl_error() -> str | None:
    """None when MuJoCo can render offscreen here, else why not (one line)."""
    try:
        mujoco = _mujoco()
        model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='.1'/></worldbody></mujoco>")
        r = mujoco.Renderer(model, 8, 8)
        r.close()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means no offscreen GL
        import os

        return (f"no offscreen OpenGL for MuJoCo (MUJOCO_GL={os.environ.get('MUJOCO_GL', '')!r}): "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def add_view_camera(spec: Any, w2c_sim: np.ndarray, K: np.ndarray, width: int, height: int,
                    name: str = VIEW_CAMERA) -> Any:
    """Add the (movable) render camera to ``spec`` at an OpenCV pose in the sim frame."""
    return spec.worldbody.add_camera(name=name, **mujoco_camera_params(w2c_sim, K, width, height))


class BodyRenderer:
    """RGB and z-depth (metres) of a model's dynamic bodies through OpenCV cameras (w2c in the sim frame).

    Args:
        model: a compiled model with the camera ``camera`` (see :func:`add_view_camera`); its world body's geoms
            are moved to a hidden group and its multisampling is switched off (render-time changes).
        height, width: output size in pixels; the renderer works at ``supersample`` x that.
    """

    def __init__(self, model: Any, height: int, width: int, supersample: int = 2, camera: str = VIEW_CAMERA) -> None:
        mujoco = _mujoco()
        err = gl_error()
        if err:
            raise SimError(f"{err}; install EGL (libegl1 libgl1-mesa-dri) or OSMesa (MUJOCO_GL=osmesa), "
                           "or skip the video")
        self.model, self.height, self.width, self.ss = model, int(height), int(width), max(1, int(supersample))
        self.cam = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if self.cam < 0:
            raise SimError(f"the model has no camera {camera!r}")
        model.geom_group[model.geom_bodyid == 0] = HIDDEN_GROUP
        model.vis.quality.offsamples = 0  # hard edges: coverage comes from supersampling
        H, W = self.height * self.ss, self.width * self.ss
        model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), W)
        model.vis.global_.offheight = max(int(model.vis.global_.offheight), H)
        self.option = mujoco.MjvOption()
        self.option.geomgroup[HIDDEN_GROUP] = 0
        self.renderer = mujoco.Renderer(model, H, W)
        self.far = 0.99 * model.vis.map.zfar * model.stat.extent

    def set_camera(self, w2c_sim: np.ndarray, K: np.ndarray) -> None:
        """Move the render camera to an OpenCV camera (w2c [4, 4] in the sim frame, K [3, 3] at the output size)."""
        p = mujoco_camera_params(w2c_sim, K, self.width, self.height)
        m, c = self.model, self.cam
        m.cam_pos[c], m.cam_quat[c] = p["pos"], p["quat"]
        m.cam_resolution[c] = p["resolution"]
        m.cam_sensorsize[c] = p["sensor_size"]
        s = np.asarray(p["sensor_size"]) / np.asarray(p["resolution"], np.float64)  # metres per pixel
        m.cam_intrinsic[c] = [p["focal_pixel"][0] * s[0], p["focal_pixel"][1] * s[1],
                              p["principal_pixel"][0] * s[0], p["principal_pixel"][1] * s[1]]

    def render(self, data: Any, w2c_sim: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rgb [sH, sW, 3] float32 in [0, 1], depth [sH, sW] float32 metres, inf where no body) of ``data``
        (after ``mj_forward``) through the camera (w2c_sim, K at the output size)."""
        mujoco = _mujoco()
        self.set_camera(w2c_sim, K)
        mujoco.mj_camlight(self.model, data)
        r = self.renderer
        r.update_scene(data, camera=self.cam, scene_option=self.option)
        r.disable_depth_rendering()
        rgb = r.render().astype(np.float32) / 255.0
        r.enable_depth_rendering()
        depth = r.render().astype(np.float32)
        r.disable_depth_rendering()
        depth[~(depth < self.far)] = np.inf
        return rgb, depth

    def close(self) -> None:
        self.renderer.close()

    def __enter__(self) -> BodyRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def composite(splat_rgb: np.ndarray, splat_depth: np.ndarray, splat_alpha: np.ndarray, body_rgb: np.ndarray,
              body_depth: np.ndarray, tolerance: float = 0.03, alpha_min: float = 0.5
              ) -> tuple[np.ndarray, dict[str, float]]:
    """Depth-tested composite of rendered bodies over a splat render.

    Args:
        splat_rgb: [3, H, W] float in [0, 1]; splat_depth: [H, W] expected z-depth in metres; splat_alpha: [H, W].
        body_rgb: [sH, sW, 3] float in [0, 1]; body_depth: [sH, sW] z-depth in metres (inf: no body).
        tolerance: a body sample is hidden only where it lies beyond splat_depth x (1 + tolerance).
        alpha_min: splat pixels less opaque than this never hide a body.
    Returns:
        (rgb [3, H, W] float32, {"body_pixels": output pixels a body covers (coverage sum),
        "visible_pixels": of those shown, "hidden_fraction"}).
    """
    _, H, W = splat_rgb.shape
    sH, sW = body_depth.shape
    s = sH // H
    if s < 1 or sH != s * H or sW != s * W or body_rgb.shape[:2] != (sH, sW):
        raise SimError(f"composite: body render {sH}x{sW} is not an integer multiple of the splat render {H}x{W}")
    occ = np.where(splat_alpha >= alpha_min, splat_depth * (1.0 + tolerance), np.inf).astype(np.float32)
    occ_up = np.repeat(np.repeat(occ, s, 0), s, 1)
    body = np.isfinite(body_depth)
    shown = body & (body_depth < occ_up)

    def pool(x: np.ndarray) -> np.ndarray:
        return x.reshape(H, s, W, s, *x.shape[2:]).mean((1, 3))

    cov = pool(shown.astype(np.float32))
    col = pool(body_rgb * shown[..., None])
    out = col.transpose(2, 0, 1) + (1.0 - cov)[None] * splat_rgb
    total = float(pool(body.astype(np.float32)).sum())
    vis = float(cov.sum())
    return np.clip(out, 0.0, 1.0).astype(np.float32), {
        "body_pixels": total, "visible_pixels": vis, "hidden_fraction": 1.0 - vis / total if total > 0 else 0.0}
