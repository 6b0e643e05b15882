"""MuJoCo scenes from collision geometry (``mujoco.MjSpec``): ground plane + static convex hulls + free bodies,
and OpenCV cameras converted to MuJoCo cameras.

MuJoCo collides a mesh geom as its convex hull, so the scene's objects enter as the CoACD hulls of
:mod:`lyra.sim.mesh` (each a static mesh geom of the world body), and the ground as a plane at z = 0. Everything is
in the sim frame (metres, +z up; gravity -z). Needs ``pip install mujoco`` (the ``sim`` extra).

Camera conversion (OpenCV w2c = [R | t], K; MuJoCo cameras look along -z with +y up): the camera's world axes are
the rows of R, so MuJoCo's camera frame has columns (R[0], -R[1], -R[2]) and position -R^T t; intrinsics use
``focal_pixel`` (fx, fy), ``principal_pixel`` (W/2 - cx, H/2 - cy) and ``sensor_size`` (any non-zero size enables
them). Scene cameras are first moved to the sim frame with ``sim_from_scene`` (a similarity: the rotation turns
the axes, the scale moves the centre; pixels are unchanged).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lyra.sim.errors import SimError
from lyra.sim.mesh import CollisionGeometry

COLLISION_GROUP = 3  # geom group of the static colliders (hide with MjvOption.geomgroup[3] = 0)


def _mujoco():
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("MUJOCO_GL", "egl")  # headless: EGL offscreen rendering (read at import)
    try:
        import mujoco
    except ImportError as exc:
        raise ImportError("MuJoCo scenes need mujoco: pip install 'lyra3d[sim]' (or mujoco)") from exc
    return mujoco


@dataclass
class FreeBody:
    """A dynamic body dropped into the scene.

    Attributes:
        name: body name.
        kind: "sphere" (size = (radius,)) or "box" (size = half extents (x, y, z)); metres.
        pos: (x, y, z) start position in the sim frame (metres).
        density: kg/m^3.
        rgba: colour.
    """

    name: str
    kind: str
    size: tuple[float, ...]
    pos: tuple[float, float, float]
    density: float = 1000.0
    rgba: tuple[float, float, float, float] = (0.9, 0.3, 0.2, 1.0)


def sim_camera(w2c: np.ndarray, sim_from_scene: np.ndarray) -> np.ndarray:
    """[4, 4] w2c of a scene camera in the sim frame (rigid; the scale only moves the centre)."""
    w2c = np.asarray(w2c, np.float64)
    S = np.asarray(sim_from_scene, np.float64)
    s = np.cbrt(np.linalg.det(S[:3, :3]))
    Ra = S[:3, :3] / s
    R = w2c[:3, :3] @ Ra.T
    c_scene = -w2c[:3, :3].T @ w2c[:3, 3]
    c = S[:3, :3] @ c_scene + S[:3, 3]
    out = np.eye(4)
    out[:3, :3] = R
    out[:3, 3] = -R @ c
    return out


def mujoco_camera_params(w2c: np.ndarray, K: np.ndarray, width: int, height: int) -> dict[str, Any]:
    """MjSpec camera attributes (pos, quat, resolution, sensor_size, focal_pixel, principal_pixel) reproducing an
    OpenCV camera (w2c [4, 4] and K [3, 3] in the model's frame)."""
    mujoco = _mujoco()
    w2c = np.asarray(w2c, np.float64)
    R, t = w2c[:3, :3], w2c[:3, 3]
    frame = R.T @ np.diag([1.0, -1.0, -1.0])  # columns: camera x, y (image up), z (backwards) in world
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(frame).ravel())
    K = np.asarray(K, np.float64)
    return {"pos": (-R.T @ t).tolist(), "quat": quat.tolist(), "resolution": [int(width), int(height)],
            "sensor_size": [width * 1e-3, height * 1e-3], "focal_pixel": [float(K[0, 0]), float(K[1, 1])],
            "principal_pixel": [width / 2 - float(K[0, 2]), height / 2 - float(K[1, 2])]}


def build_spec(geom: CollisionGeometry, bodies: Sequence[FreeBody] = (), cameras: Any = None,
               timestep: float = 0.002, ground_half_size: float | None = None) -> Any:
    """A ``mujoco.MjSpec``: the ground plane (when the geometry has one), every hull as a static mesh geom
    (group 3), ``bodies`` with free joints, and ``cameras`` (``lyra.cameras.Cameras`` in scene coordinates) as
    ``cam_NNN`` in the sim frame."""
    mujoco = _mujoco()
    spec = mujoco.MjSpec()
    spec.modelname = "lyra_scene"
    spec.option.timestep = float(timestep)
    spec.option.gravity = [0.0, 0.0, -9.81]
    spec.visual.map.znear = 0.001  # fraction of the model extent: keeps rendered depth accurate up close
    wb = spec.worldbody
    lo, hi = (np.asarray(b, np.float64) for b in geom.stats.get("bounds_m", [[-5.0] * 3, [5.0] * 3]))
    if geom.ground is not None:
        half = ground_half_size or float(max(np.abs(lo[:2]).max(), np.abs(hi[:2]).max(), 1.0))
        wb.add_geom(name="ground", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[half, half, 0.1],
                    rgba=[0.5, 0.5, 0.5, 1.0])
    for i, h in enumerate(geom.hulls):
        spec.add_mesh(name=f"hull_{i:03d}", uservert=np.asarray(h.vertices, np.float32).ravel().tolist(),
                      userface=np.asarray(h.faces, np.int32).ravel().tolist())
        wb.add_geom(name=f"hull_{i:03d}", type=mujoco.mjtGeom.mjGEOM_MESH, meshname=f"hull_{i:03d}",
                    group=COLLISION_GROUP, rgba=[0.6, 0.7, 0.9, 0.5])
    for b in bodies:
        if b.kind == "sphere" and len(b.size) == 1:
            gtype, size = mujoco.mjtGeom.mjGEOM_SPHERE, [b.size[0], 0.0, 0.0]
        elif b.kind == "box" and len(b.size) == 3:
            gtype, size = mujoco.mjtGeom.mjGEOM_BOX, list(b.size)
        else:
            raise SimError(f"free body {b.name!r}: kind must be sphere (size (r,)) or box (size (hx, hy, hz))")
        body = wb.add_body(name=b.name, pos=list(b.pos))
        body.add_freejoint()
        body.add_geom(type=gtype, size=size, density=float(b.density), rgba=list(b.rgba))
    if cameras is not None:
        w2c, K = cameras.w2c.detach().cpu().double().numpy(), cameras.K.detach().cpu().double().numpy()
        for i in range(len(w2c)):
            p = mujoco_camera_params(sim_camera(w2c[i], geom.sim_from_scene), K[i], cameras.width, cameras.height)
            wb.add_camera(name=f"cam_{i:03d}", **p)
    return spec


def drop(spec: Any, seconds: float = 2.0, sample_every: float = 0.05) -> dict[str, Any]:
    """Compile ``spec`` and simulate ``seconds``.

    Returns:
        {"model", "data", "positions" {body: [3] at the end}, "speeds" {body: linear speed m/s at the end},
        "times" [T], "trajectory" {body: [T, 3] positions every ``sample_every`` s}, "steps",
        "steps_per_second" (wall clock of the stepping loop)}.
    """
    import time

    mujoco = _mujoco()
    model = spec.compile()
    data = mujoco.MjData(model)
    n = int(round(seconds / model.opt.timestep))
    every = max(1, int(round(sample_every / model.opt.timestep)))
    names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in range(1, model.nbody)]
    times, traj = [], []
    elapsed = 0.0
    for i in range(n):
        t0 = time.perf_counter()
        mujoco.mj_step(model, data)
        elapsed += time.perf_counter() - t0
        if (i + 1) % every == 0:
            times.append(float(data.time))
            traj.append(data.xpos[1:].copy())
    tr = np.stack(traj) if traj else np.zeros((0, len(names), 3))
    return {"model": model, "data": data,
            "positions": {nm: data.xpos[b + 1].copy() for b, nm in enumerate(names)},
            "speeds": {nm: float(np.linalg.norm(data.cvel[b + 1][3:])) for b, nm in enumerate(names)},
            "times": np.asarray(times), "trajectory": {nm: tr[:, b] for b, nm in enumerate(names)},
            "steps": n, "steps_per_second": n / elapsed if elapsed > 0 else float("inf")}


@dataclass
class Trajectory:
    """Every body's pose at every step of a simulation (sim frame, metres).

    Attributes:
        time: [T] seconds (T = steps + 1: the start, then after each step).
        body_names: the B bodies (the world body left out).
        body_pos: [T, B, 3] positions; body_quat: [T, B, 4] orientations (w, x, y, z).
        qpos: [T, nq], qvel: [T, nv], ctrl: [T, nu] (the controls applied in the step that follows).
        steps: mj_step calls; step_seconds: wall seconds inside mj_step; loop_seconds: wall seconds of the whole
            loop (controller and recording included).
    """

    time: np.ndarray
    body_names: list[str]
    body_pos: np.ndarray
    body_quat: np.ndarray
    qpos: np.ndarray
    qvel: np.ndarray
    ctrl: np.ndarray
    steps: int
    step_seconds: float
    loop_seconds: float

    @property
    def steps_per_second(self) -> float:
        """mj_step calls per wall second (physics only)."""
        return self.steps / self.step_seconds if self.step_seconds > 0 else float("inf")

    def body(self, name: str) -> np.ndarray:
        """[T, 3] positions of body ``name``."""
        return self.body_pos[:, self.body_names.index(name)]

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of an .npz (names as the attributes; body_names as a string array)."""
        return {"time": self.time, "body_names": np.asarray(self.body_names), "body_pos": self.body_pos,
                "body_quat": self.body_quat, "qpos": self.qpos, "qvel": self.qvel, "ctrl": self.ctrl}


def simulate(model: Any, seconds: float, controller: Callable[[Any, Any], None] | None = None,
             data: Any = None) -> tuple[Trajectory, Any]:
    """Step ``model`` for ``seconds`` (``controller(model, data)`` sets ``data.ctrl`` before each step) and record
    every body at every step; returns (trajectory, the final MjData)."""
    import time

    mujoco = _mujoco()
    if data is None:
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
    n = int(round(seconds / model.opt.timestep))
    T, B = n + 1, model.nbody - 1
    pos, quat = np.zeros((T, B, 3)), np.zeros((T, B, 4))
    qpos, qvel, ctrl = np.zeros((T, model.nq)), np.zeros((T, model.nv)), np.zeros((T, model.nu))
    times = np.zeros(T)

    def record(k: int) -> None:
        mujoco.mj_kinematics(model, data)  # after mj_step, xpos still holds the poses of the previous qpos
        times[k] = data.time
        pos[k], quat[k] = data.xpos[1:], data.xquat[1:]
        qpos[k], qvel[k] = data.qpos, data.qvel

    record(0)
    step_s = 0.0
    t_loop = time.perf_counter()
    for i in range(n):
        if controller is not None:
            controller(model, data)
        ctrl[i] = data.ctrl
        t0 = time.perf_counter()
        mujoco.mj_step(model, data)
        step_s += time.perf_counter() - t0
        if not np.isfinite(data.qpos).all():
            raise SimError(f"the simulation diverged at t = {data.time:.3f} s (NaN state)")
        record(i + 1)
    loop_s = time.perf_counter() - t_loop
    if n:
        ctrl[n] = ctrl[n - 1]
    names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) or f"body_{b}" for b in range(1, model.nbody)]
    return Trajectory(times, names, pos, quat, qpos, qvel, ctrl, n, step_s, loop_s), data
