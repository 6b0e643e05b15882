"""``lyra sim SCENE --robot humanoid --seconds 5 --out DIR``: a robot simulated (MuJoCo) in a Gaussian scene.

SCENE is a Gaussian file (.ply/.spz, with ``--cameras NPZ`` or a ``cameras.npz`` beside it) or a folder written by
``lyra generate`` / ``lyra demo``. Writes into DIR (atomically: a failed run leaves no partial folder):
``collision/`` (as ``lyra mesh``: mesh, objects, hulls, collision.npz/json), ``scene.xml`` (the MuJoCo model:
ground plane, hulls, the humanoid, balls, the render camera), ``trajectory.npz`` (every body's pose at every step,
the frame cameras), ``flythrough_sim.mp4`` (the robot rendered over the splats with a depth test),
``preview.png`` (first, middle and last frame) and ``report.json`` (timings per stage, steps per second).
The sim frame: metres, +z up, ground plane z = 0 (``sim_from_scene`` in trajectory.npz).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def parse_views(text: str | None, n: int, default_len: int | None) -> list[int]:
    """Camera indices of ``--views``: "A:B[:S]" (a slice), "I" (one fixed camera) or None (the first
    ``default_len`` cameras when known, else all)."""
    from lyra.cli.main import CLIError

    if text is None:
        return list(range(min(n, default_len or n)))
    try:
        if ":" in text:
            parts = [int(p) if p.strip() else None for p in text.split(":")]
            if len(parts) > 3:
                raise ValueError
            idx = list(range(n))[slice(*parts)]
        else:
            i = int(text)
            idx = [list(range(n))[i]]
    except (ValueError, IndexError):
        raise CLIError(f"--views must be a camera index or a slice A:B[:S] of the {n} cameras, got {text!r}") from None
    if not idx:
        raise CLIError(f"--views {text!r} selects no camera (the scene has {n})")
    return idx


def _trajectory_length(ply: Path) -> int | None:
    """Frames per trajectory from a lyra generate / demo report.json beside the scene, if any."""
    rep = ply.parent / "report.json"
    try:
        v = json.loads(rep.read_text()).get("frames_per_trajectory")
        return int(v) if v else None
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def run(args: argparse.Namespace) -> int:
    from lyra.cameras import load_cameras_npz
    from lyra.cli.main import CLIError
    from lyra.cli.mesh_cmd import resolve_scene
    from lyra.gaussians import load_gaussians
    from lyra.pipelines import StageTimer
    from lyra.sim.mesh import CollisionConfig
    from lyra.sim.pipeline import SimConfig, run_sim
    from lyra.utils.files import atomic_dir

    scale: float | str = "auto"
    if args.scale != "auto":
        try:
            scale = float(args.scale)
        except ValueError:
            raise CLIError(f"--scale must be a number (metres per scene unit) or 'auto', got {args.scale!r}") from None
    col = CollisionConfig(grid=args.grid, up=args.up or "-y", scale=scale, camera_height=args.camera_height,
                          decompose=args.decompose, coacd_threshold=args.coacd_threshold, max_faces=args.max_faces,
                          max_views=args.max_views, seed=args.seed)
    cfg = SimConfig(robot=args.robot, motion=args.motion, seconds=args.seconds, timestep=args.timestep, fps=args.fps,
                    balls=args.balls, robot_xy=tuple(args.robot_xy) if args.robot_xy else None, yaw_deg=args.yaw,
                    width=args.width, supersample=args.supersample, depth_tolerance=args.depth_tolerance,
                    video=not args.no_video, up_fallback=args.up is None, collision=col)
    cfg.validate()
    if cfg.video:
        from lyra.sim.render import gl_error

        err = gl_error()
        if err:
            raise CLIError(f"{err}; install EGL (libegl1 libgl1-mesa-dri) or OSMesa (MUJOCO_GL=osmesa), "
                           "or pass --no-video")
    ply, cam_path = resolve_scene(args.scene, args.cameras)
    timer = StageTimer(quiet=args.quiet)
    with timer.stage("load scene", ply.name):
        g = load_gaussians(ply, allow_empty=False)
        cams = load_cameras_npz(cam_path)
    views = parse_views(args.views, len(cams), _trajectory_length(ply))
    info = {"scene": str(ply), "cameras": str(cam_path), "views": [views[0], views[-1], len(views)]}
    with atomic_dir(args.out, stale=("collision", "scene.xml", "trajectory.npz", "flythrough_sim.mp4",
                                     "preview.png", "report.json")) as tmp:
        rep = run_sim(g, cams, cams[views], cfg, tmp, timer=timer, cache_dir=args.cache,
                      use_cache=not args.no_cache, info=info)
    s, c = rep["simulation"], rep["collision"]
    video = f", {rep['frames']} frames -> flythrough_sim.mp4" if cfg.video else ""
    print(f"{cfg.robot} ({cfg.motion if cfg.robot == 'humanoid' else 'balls only'}) in {c['hulls']} hulls: "
          f"{s['steps']} steps in {cfg.seconds:g} s at {s['steps_per_second']:.0f} steps/s{video}; "
          f"done in {rep['total_s']:.1f} s; wrote {Path(args.out)}/ (collision/, scene.xml, trajectory.npz"
          f"{', flythrough_sim.mp4, preview.png' if cfg.video else ''}, report.json)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from lyra.sim.ground import UP_AXES
    from lyra.sim.mesh import DECOMPOSITIONS
    from lyra.sim.robot import MOTIONS, ROBOTS

    p = sub.add_parser("sim", help="simulate a robot (MuJoCo) in a Gaussian scene and render it into the splats")
    p.add_argument("scene", help="Gaussian scene (.ply/.spz) or a lyra generate/demo output folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--cameras", metavar="NPZ", help="scene cameras (default: cameras.npz beside SCENE)")
    p.add_argument("--robot", choices=ROBOTS, default="humanoid",
                   help="humanoid (dm_control's, vendored) or none (only the balls)")
    p.add_argument("--motion", choices=MOTIONS, default="scripted",
                   help="scripted (position servos: squats and waves) or passive (zero controls: falls)")
    p.add_argument("--seconds", type=float, default=5.0, help="simulated seconds (default 5)")
    p.add_argument("--timestep", type=float, default=0.005, help="physics step in seconds (default 0.005)")
    p.add_argument("--fps", type=float, default=24.0, help="video frames per second (default 24)")
    p.add_argument("--balls", type=int, default=2, help="balls dropped around the robot (default 2)")
    p.add_argument("--robot-xy", type=float, nargs=2, metavar=("X", "Y"), default=None,
                   help="robot position in the sim frame, metres (default: chosen on the ground in view)")
    p.add_argument("--yaw", type=float, default=None,
                   help="robot heading in degrees from +x (default: facing the first camera, turned 30)")
    p.add_argument("--views", default=None, metavar="A:B",
                   help="cameras the video flies through: a slice A:B[:S] or one index (default: the first "
                        "trajectory of a lyra generate/demo folder, else all)")
    p.add_argument("--width", type=int, default=320, help="video width at most, pixels (default 320)")
    p.add_argument("--supersample", type=int, default=2, help="robot render supersampling per axis (default 2)")
    p.add_argument("--depth-tolerance", type=float, default=0.03,
                   help="relative depth margin before the splats hide the robot (default 0.03)")
    p.add_argument("--no-video", action="store_true", help="simulate only (no rendering, no OpenGL needed)")
    p.add_argument("--up", choices=UP_AXES, default=None,
                   help="up axis of the scene: an axis or auto (fitted ground normal); default -y (OpenCV scenes "
                        "from lyra generate/demo), auto when no ground plane is found along -y")
    p.add_argument("--scale", default="auto",
                   help="metres per scene unit, or auto (default: median camera height = --camera-height)")
    p.add_argument("--camera-height", type=float, default=1.6, help="metres, for --scale auto (default 1.6)")
    p.add_argument("--grid", type=int, default=128, help="collision voxels along the longest side (default 128)")
    p.add_argument("--max-views", type=int, default=64, help="cameras fused for the collision mesh (default 64)")
    p.add_argument("--decompose", choices=DECOMPOSITIONS, default="coacd",
                   help="convex decomposition of the objects: coacd (default), hull or none")
    p.add_argument("--coacd-threshold", type=float, default=0.1, help="CoACD concavity threshold (default 0.1)")
    p.add_argument("--max-faces", type=int, default=2000, help="faces per object after decimation (default 2000)")
    p.add_argument("--cache", metavar="DIR", default=None,
                   help="collision cache folder (default $LYRA_SIM_CACHE or ~/.cache/lyra/sim; shared with lyra mesh)")
    p.add_argument("--no-cache", action="store_true", help="always rebuild the collision geometry, store nothing")
    p.add_argument("--seed", type=int, default=0, help="RANSAC / CoACD seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no per-stage lines")
    p.set_defaults(func=run)


if __name__ == "__main__":
    import sys

    from lyra.cli.main import standalone

    sys.exit(standalone(add_parser, "sim"))
