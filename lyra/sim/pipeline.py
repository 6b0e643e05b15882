"""``lyra sim``: a robot simulated in a generated scene and rendered into it.

:func:`run_sim` (every stage timed, one progress line each):

1. **collision**: collision geometry of the splats (:func:`lyra.sim.mesh.build_collision_cached`; the cache is
   shared with ``lyra mesh``), written to ``collision/`` as ``lyra mesh`` does.
2. **camera path**: the path cameras (scene frame) interpolated to one camera per video frame (slerp of the
   rotations, linear centres and intrinsics), resized to at most ``width`` pixels.
3. **render splats**: RGB, expected z-depth and alpha of the splats at every frame.
4. **place robot**: a spot on the detected ground in front of the first camera: clear of every hull, on ground
   the first frame shows (the splat depth there agrees with the ground plane), the robot inside that frame and
   as many other frames as possible, about half the image tall (:func:`choose_spot`); it faces the camera,
   turned 30 degrees.
5. **build scene**: ``mujoco.MjSpec``: ground plane, hulls, the humanoid (:mod:`lyra.sim.robot`), ``balls``
   free spheres dropped around it, the render camera; ``scene.xml``.
6. **simulate**: ``seconds`` of physics, every body recorded at every step (:func:`lyra.sim.mjscene.simulate`).
7. **render robot + composite**: MuJoCo (EGL) renders the dynamic bodies at each frame's camera and time, depth
   tested against the splats (:mod:`lyra.sim.render`); ``flythrough_sim.mp4`` and ``preview.png``.

Frames: F = round(seconds x fps) + 1, frame k at t = k / fps (the nearest recorded step).
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from lyra.sim.errors import SimError
from lyra.sim.mesh import CollisionConfig, CollisionGeometry
from lyra.sim.robot import MOTIONS, ROBOTS, HumanoidConfig

OUTPUTS = ("collision", "scene.xml", "trajectory.npz", "flythrough_sim.mp4", "preview.png", "report.json")
HUMANOID_SIZE = (1.6, 0.45)  # (height, radius) metres kept clear for the humanoid when placing it


@dataclass
class SimConfig:
    """Options of :func:`run_sim`.

    Attributes:
        robot: "humanoid" or "none" (only the balls).
        motion: "scripted" or "passive" (:mod:`lyra.sim.robot`).
        seconds: simulated time.
        timestep: physics step (seconds).
        fps: video frames per second.
        balls: free spheres dropped around the robot.
        ball_radius: metres.
        robot_xy: (x, y) in the sim frame (metres), or None (:func:`choose_spot`).
        yaw_deg: the robot's heading, or None (facing the first camera, turned 30 degrees).
        width: render width at most (pixels; the path cameras are resized down to it).
        supersample: robot render samples per output pixel along each axis (soft edges).
        depth_tolerance: relative depth margin of the occlusion test (:func:`lyra.sim.render.composite`).
        video: render and write the video (needs offscreen OpenGL).
        up_fallback: when no ground plane is found along ``collision.up``, fit the up axis (``up="auto"``).
        background: splat render background RGB.
        collision: options of the collision geometry.
    """

    robot: str = "humanoid"
    motion: str = "scripted"
    seconds: float = 5.0
    timestep: float = 0.005
    fps: float = 24.0
    balls: int = 2
    ball_radius: float = 0.12
    robot_xy: tuple[float, float] | None = None
    yaw_deg: float | None = None
    width: int = 320
    supersample: int = 2
    depth_tolerance: float = 0.03
    video: bool = True
    up_fallback: bool = False
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    collision: CollisionConfig = field(default_factory=lambda: CollisionConfig(up="-y", scale="auto"))

    def validate(self) -> None:
        if self.robot not in ROBOTS:
            raise SimError(f"robot must be one of {', '.join(ROBOTS)}, got {self.robot!r}")
        if self.motion not in MOTIONS:
            raise SimError(f"motion must be one of {', '.join(MOTIONS)}, got {self.motion!r}")
        if not (self.seconds > 0 and self.timestep > 0 and self.fps > 0):
            raise SimError("seconds, timestep and fps must be > 0")
        if self.timestep > 0.02:
            raise SimError(f"timestep {self.timestep} s is too coarse for contacts (at most 0.02)")
        if self.balls < 0 or self.ball_radius <= 0 or self.width < 16 or self.supersample < 1:
            raise SimError("balls must be >= 0, ball_radius > 0, width >= 16 and supersample >= 1")
        if self.depth_tolerance < 0:
            raise SimError("depth_tolerance must be >= 0")
        self.collision.validate()


# ---------------------------------------------------------------------------------------------- cameras
def interpolate_path(w2c: np.ndarray, K: np.ndarray, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """``frames`` cameras evenly along a path of N cameras (w2c [N, 4, 4], K [N, 3, 3]): slerp of the rotations,
    linear centres and intrinsics. Returns (w2c [frames, 4, 4], K [frames, 3, 3])."""
    from scipy.spatial.transform import Rotation, Slerp

    w2c, K = np.asarray(w2c, np.float64), np.asarray(K, np.float64)
    n = len(w2c)
    if n == 1 or frames == 1:
        return np.repeat(w2c[:1], frames, 0), np.repeat(K[:1], frames, 0)
    s = np.linspace(0.0, n - 1, frames)
    i0 = np.minimum(np.floor(s).astype(int), n - 2)
    f = s - i0
    c2w_R = np.transpose(w2c[:, :3, :3], (0, 2, 1))
    centres = -np.einsum("nij,nj->ni", c2w_R, w2c[:, :3, 3])
    R = Slerp(np.arange(n), Rotation.from_matrix(c2w_R))(s).as_matrix()
    c = centres[i0] * (1 - f)[:, None] + centres[i0 + 1] * f[:, None]
    out = np.tile(np.eye(4), (frames, 1, 1))
    out[:, :3, :3] = np.transpose(R, (0, 2, 1))
    out[:, :3, 3] = -np.einsum("nij,nj->ni", out[:, :3, :3], c)
    Ki = K[i0] * (1 - f)[:, None, None] + K[i0 + 1] * f[:, None, None]
    return out, Ki


def _project(w2c: np.ndarray, K: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pixels [..., 2], camera z [...]) of world points p [P, 3] for cameras [F, 4, 4] -> [F, P]."""
    pc = np.einsum("fij,pj->fpi", w2c[:, :3, :3], p) + w2c[:, None, :3, 3]
    z = pc[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = np.einsum("fij,fpj->fpi", K[:, :2, :], pc / z[..., None])
    return uv, z


# ---------------------------------------------------------------------------------------------- placement
def choose_spot(geom: CollisionGeometry, w2c: np.ndarray, K: np.ndarray, height: int, width: int,
                depth0: np.ndarray, alpha0: np.ndarray, size: tuple[float, float] = HUMANOID_SIZE
                ) -> tuple[np.ndarray, dict[str, Any]]:
    """(xy [2] metres, info) where a robot of ``size`` = (height, radius) can stand in view.

    Candidates are the ground-plane points of a grid of pixels in the lower part of the first camera (w2c [F, 4, 4]
    in the sim frame, K [F, 3, 3]); a candidate must be clear of every hull (no hull's xy box within the radius
    unless the hull lies above the robot) and the robot (its bounding box) inside the first frame. Among those:
    the ground is seen there (``depth0`` [H, W], metres, agrees with the plane within 10 %, ``alpha0`` >= 0.5),
    then the fraction of frames showing the whole robot, a projected height near half the image and a spot near
    the image's vertical centre line win.
    """
    rob_h, rad = size
    R0, t0 = w2c[0, :3, :3], w2c[0, :3, 3]
    c0 = -R0.T @ t0
    boxes = [(h.vertices.min(0), h.vertices.max(0)) for h in geom.hulls]
    corners = np.array([[sx * rad, sy * rad, z] for sx in (-1, 1) for sy in (-1, 1) for z in (0.0, rob_h)])
    best: tuple[float, np.ndarray, dict[str, Any]] | None = None
    fallback: tuple[float, np.ndarray] | None = None
    for v in np.linspace(0.45, 0.97, 14) * height:
        for u in np.linspace(0.1, 0.9, 17) * width:
            ray = R0.T @ np.array([(u - K[0, 0, 2]) / K[0, 0, 0], (v - K[0, 1, 2]) / K[0, 1, 1], 1.0])
            if ray[2] > -1e-6:
                continue
            s = -c0[2] / ray[2]  # camera z-depth of the ground point (the ray has camera z = 1)
            if s <= 0:
                continue
            p = c0 + s * ray
            clear = all(b_lo[2] > rob_h or np.hypot(max(b_lo[0] - p[0], 0.0, p[0] - b_hi[0]),
                                                    max(b_lo[1] - p[1], 0.0, p[1] - b_hi[1])) > rad
                        for b_lo, b_hi in boxes)
            if not clear:
                continue
            if fallback is None or s < fallback[0]:
                fallback = (s, p)
            uv, z = _project(w2c, K, p + corners)
            inside = (z > 0.05).all(1) & (uv[..., 0] >= 0).all(1) & (uv[..., 0] <= width).all(1) & \
                     (uv[..., 1] >= 0).all(1) & (uv[..., 1] <= height).all(1)
            if not inside[0]:
                continue
            iu, iv = min(int(u), width - 1), min(int(v), height - 1)
            seen = bool(alpha0[iv, iu] >= 0.5 and abs(float(depth0[iv, iu]) - s) < 0.1 * s)
            proj_h = float(uv[0, :, 1].max() - uv[0, :, 1].min()) / height
            score = 2.0 * seen + float(inside.mean()) - abs(proj_h - 0.5) - 0.5 * abs(u / width - 0.5)
            if best is None or score > best[0]:
                best = (score, p, {"pixel": [float(u), float(v)], "ground_seen": seen,
                                   "frames_in_view": float(inside.mean()), "image_height_fraction": proj_h,
                                   "distance_m": float(s)})
    if best is not None:
        return best[1][:2].copy(), {"method": "auto", **best[2]}
    if fallback is not None:
        return fallback[1][:2].copy(), {"method": "fallback: no clear ground spot fully in view"}
    return c0[:2].copy(), {"method": "fallback: the first camera sees no ground; below the camera"}


# ---------------------------------------------------------------------------------------------- the run
def _sim_cameras(geom: CollisionGeometry, w2c: np.ndarray) -> np.ndarray:
    from lyra.sim.mjscene import sim_camera

    return np.stack([sim_camera(w, geom.sim_from_scene) for w in w2c])


def _ball_bodies(cfg: SimConfig, xy: np.ndarray, yaw: float) -> list[Any]:
    from lyra.sim.mjscene import FreeBody

    colours = [(0.9, 0.25, 0.2, 1.0), (0.2, 0.5, 0.95, 1.0), (0.95, 0.8, 0.15, 1.0), (0.3, 0.8, 0.35, 1.0)]
    out = []
    for i in range(cfg.balls):
        a = yaw + (i - (cfg.balls - 1) / 2) * 0.8
        r = 0.7 if cfg.robot != "none" else 0.3 * (i > 0)
        out.append(FreeBody(f"ball_{i}", "sphere", (cfg.ball_radius,),
                            (float(xy[0] + r * math.cos(a)), float(xy[1] + r * math.sin(a)), 1.2 + 0.5 * i),
                            density=300.0, rgba=colours[i % len(colours)]))
    return out


def run_sim(gaussians: Any, cameras: Any, path: Any, cfg: SimConfig, out: str | Path, *, timer: Any = None,
            cache_dir: str | Path | None = None, use_cache: bool = True, info: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    """Simulate ``cfg.robot`` in the scene and write the outputs into the folder ``out`` (module doc).

    Args:
        gaussians: the scene (``lyra.gaussians.Gaussians``).
        cameras: the scene's cameras (``lyra.cameras.Cameras``), fused for the collision geometry.
        path: the cameras the video flies through (interpolated to the frame count).
        info: extra entries for report.json (the inputs).
    Returns:
        the report (also written to ``report.json``).
    """
    import torch

    from lyra.pipelines import StageTimer
    from lyra.sim.mesh import build_collision, build_collision_cached, write_collision_dir
    from lyra.sim.mjscene import _mujoco, build_spec, simulate

    cfg.validate()
    timer = timer or StageTimer(quiet=True)
    out = Path(out)
    mujoco = _mujoco()
    report: dict[str, Any] = {"inputs": dict(info or {})}
    t_all = time.perf_counter()

    def collision(c: CollisionConfig) -> tuple[CollisionGeometry, bool]:
        if use_cache:
            return build_collision_cached(gaussians, cameras, c, cache_dir)
        return build_collision(gaussians, cameras, c), False

    with timer.stage("collision", f"up {cfg.collision.up}, {'cache' if use_cache else 'no cache'}"):
        try:
            geom, cached = collision(cfg.collision)
            found = geom.ground is not None and geom.ground.detected
        except SimError:
            if not (cfg.up_fallback and cfg.collision.up != "auto"):
                raise
            found = False
        if not found and cfg.up_fallback and cfg.collision.up != "auto":
            timer.warn(f"no ground plane along {cfg.collision.up}: fitting the up axis (--up auto)")
            cfg.collision = replace(cfg.collision, up="auto")
            geom, cached = collision(cfg.collision)
        write_collision_dir(out / "collision", geom, extra={"from_cache": cached})
    report["collision"] = {"from_cache": cached, "scale_m_per_unit": geom.scale, "voxel_m": geom.voxel,
                           "mesh_faces": geom.stats.get("mesh_faces"), "objects": len(geom.parts),
                           "hulls": len(geom.hulls), "ground": geom.stats.get("ground"),
                           "build_timings_s": geom.timings}
    if geom.ground is None:
        raise SimError("lyra sim needs a ground plane (collision ground=True)")

    frames = int(round(cfg.seconds * cfg.fps)) + 1
    with timer.stage("camera path", f"{len(path)} cameras -> {frames} frames"):
        cams = path.to("cpu", torch.float64)
        if cams.width > cfg.width:
            cams = cams.resized(max(2, round(cams.height * cfg.width / cams.width)), cfg.width)
        H, W = cams.height, cams.width
        w2c_scene, K = interpolate_path(cams.w2c.numpy(), cams.K.numpy(), frames)
        w2c_sim = _sim_cameras(geom, w2c_scene)

    splat = None
    if cfg.video:
        from lyra.cameras import Cameras
        from lyra.pipelines.image_to_3d import render_views

        with timer.stage("render splats", f"{frames} frames at {W}x{H}"):
            fc = Cameras(torch.from_numpy(w2c_scene).float(), torch.from_numpy(K).float(), H, W)
            rgb, dep, alp = render_views(gaussians.detach().to("cpu", torch.float32), fc,
                                         background=cfg.background)
            splat = (rgb.numpy(), dep[:, 0].numpy() * geom.scale, alp[:, 0].numpy())
    else:
        from lyra.cameras import Cameras
        from lyra.render import rasterize

        fc = Cameras(torch.from_numpy(w2c_scene[:1]).float(), torch.from_numpy(K[:1]).float(), H, W)
        with torch.no_grad():
            o = rasterize(gaussians.detach().to("cpu", torch.float32), fc, None, near=0.01)
        splat = (None, o.depth[:, 0].numpy() * geom.scale, o.alpha[:, 0].numpy())

    with timer.stage("place robot"):
        if cfg.robot_xy is not None:
            xy, place = np.asarray(cfg.robot_xy, np.float64), {"method": "given"}
        else:
            size = HUMANOID_SIZE if cfg.robot == "humanoid" else (2 * cfg.ball_radius + 1.2, 0.6)
            xy, place = choose_spot(geom, w2c_sim, K, H, W, splat[1][0], splat[2][0], size)
        c0 = -w2c_sim[0, :3, :3].T @ w2c_sim[0, :3, 3]
        yaw = (math.degrees(math.atan2(c0[1] - xy[1], c0[0] - xy[0])) + 30.0) if cfg.yaw_deg is None \
            else float(cfg.yaw_deg)
        place.update(xy=xy.tolist(), yaw_deg=yaw)

    with timer.stage("build scene"):
        from lyra.sim.render import add_view_camera

        spec = build_spec(geom, _ball_bodies(cfg, xy, math.radians(yaw)), timestep=cfg.timestep)
        hcfg = HumanoidConfig(xy=(float(xy[0]), float(xy[1])), yaw_deg=yaw, motion=cfg.motion)
        robot_info: dict[str, Any] = {}
        if cfg.robot == "humanoid":
            from lyra.sim.robot import add_humanoid

            robot_info = add_humanoid(spec, hcfg)
        add_view_camera(spec, w2c_sim[0], K[0], W, H)
        model = spec.compile()
        (out / "scene.xml").write_text(spec.to_xml())
    place.update(robot_info)
    report["placement"] = place
    report["model"] = {"bodies": int(model.nbody), "joints": int(model.njnt), "dofs": int(model.nv),
                       "geoms": int(model.ngeom), "actuators": int(model.nu), "timestep": float(model.opt.timestep)}

    controller = None
    if cfg.robot == "humanoid" and cfg.motion == "scripted":
        from lyra.sim.robot import SquatWave

        controller = SquatWave(model, hcfg)
    with timer.stage("simulate", f"{cfg.seconds:g} s, dt {cfg.timestep:g} s"):
        traj, _ = simulate(model, cfg.seconds, controller)
    sim_rep: dict[str, Any] = {"seconds": cfg.seconds, "steps": traj.steps,
                               "steps_per_second": traj.steps_per_second,
                               "loop_steps_per_second": traj.steps / traj.loop_seconds if traj.loop_seconds else None,
                               "realtime_factor": cfg.seconds / traj.step_seconds if traj.step_seconds else None,
                               "motion": cfg.motion if cfg.robot == "humanoid" else None}
    if cfg.robot == "humanoid":
        z = traj.body("humanoid/torso")[:, 2]
        sim_rep["torso_z_m"] = {"start": float(z[0]), "min": float(z.min()), "max": float(z.max()),
                                "end": float(z[-1])}
        sim_rep["head_z_end_m"] = float(traj.body("humanoid/head")[-1, 2])
    for b in range(cfg.balls):
        sim_rep.setdefault("balls_end_xyz_m", []).append(traj.body(f"ball_{b}")[-1].tolist())
    report["simulation"] = sim_rep

    frame_step = np.minimum(np.round(np.arange(frames) / cfg.fps / model.opt.timestep).astype(int), traj.steps)
    if cfg.video:
        report["video"] = _render_video(model, traj, frame_step, w2c_sim, K, H, W, splat, cfg, out, timer)

    with timer.stage("write outputs"):
        from lyra.utils.files import atomic_path

        arrays = {**traj.arrays(), "frame_step": frame_step, "frame_time": traj.time[frame_step],
                  "frame_w2c": w2c_sim, "frame_K": K, "sim_from_scene": geom.sim_from_scene,
                  "scale": np.float64(geom.scale), "timestep": np.float64(model.opt.timestep)}
        with atomic_path(out / "trajectory.npz") as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    report.update({
        "frames": frames, "fps": cfg.fps, "size": [H, W], "bodies": traj.body_names,
        "config": _jsonable(asdict(cfg)), "timings_s": dict(timer.timings),
        "total_s": time.perf_counter() - t_all,
        "versions": {"mujoco": mujoco.__version__, "python": platform.python_version()},
        "outputs": [o for o in OUTPUTS if (out / o).exists()] + ["report.json"],
    })
    (out / "report.json").write_text(json.dumps(_jsonable(report), indent=2) + "\n")
    return report


def _render_video(model: Any, traj: Any, frame_step: np.ndarray, w2c_sim: np.ndarray, K: np.ndarray, H: int, W: int,
                  splat: tuple[Any, np.ndarray, np.ndarray], cfg: SimConfig, out: Path, timer: Any) -> dict[str, Any]:
    """Render the bodies at every frame, composite, write flythrough_sim.mp4 and preview.png."""
    import os

    import torch

    from lyra.render.video import write_video
    from lyra.sim.mjscene import _mujoco
    from lyra.sim.render import BodyRenderer, composite
    from lyra.utils.images import save_png

    mujoco = _mujoco()
    data = mujoco.MjData(model)
    comp = np.zeros((len(frame_step), 3, H, W), np.float32)
    stats = []
    t_robot = 0.0
    with timer.stage("render robot + composite", f"MuJoCo {os.environ.get('MUJOCO_GL', 'default GL')}, "
                                                 f"x{cfg.supersample} supersampling"):
        with BodyRenderer(model, H, W, cfg.supersample) as r:
            for k, s in enumerate(frame_step):
                data.qpos[:] = traj.qpos[s]
                data.qvel[:] = traj.qvel[s]
                mujoco.mj_forward(model, data)
                t0 = time.perf_counter()
                rgb, depth = r.render(data, w2c_sim[k], K[k])
                t_robot += time.perf_counter() - t0
                comp[k], st = composite(splat[0][k], splat[1][k], splat[2][k], rgb, depth, cfg.depth_tolerance)
                stats.append(st)
    with timer.stage("encode video"):
        write_video(out / "flythrough_sim.mp4", torch.from_numpy(comp), fps=cfg.fps)
        picks = sorted({0, len(comp) // 2, len(comp) - 1})
        save_png(out / "preview.png", torch.from_numpy(np.concatenate([comp[i] for i in picks], axis=2)))
    body = np.array([s["body_pixels"] for s in stats])
    vis = np.array([s["visible_pixels"] for s in stats])
    return {"frames": len(comp), "fps": cfg.fps, "size": [H, W], "supersample": cfg.supersample,
            "gl": os.environ.get("MUJOCO_GL", ""), "robot_render_s_per_frame": t_robot / max(1, len(comp)),
            "frames_with_bodies": int((body > 0).sum()), "frames_with_visible_bodies": int((vis > 0.5).sum()),
            "hidden_fraction_mean": float(1 - vis.sum() / body.sum()) if body.sum() > 0 else 0.0,
            "preview_frames": picks, "depth_tolerance": cfg.depth_tolerance}


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
