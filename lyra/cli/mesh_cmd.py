"""``lyra mesh SCENE --out DIR``: collision geometry of a Gaussian scene (fused mesh, objects, convex hulls).

SCENE is a Gaussian file (.ply/.spz, with ``--cameras NPZ`` or a ``cameras.npz`` beside it) or a folder written by
``lyra generate`` / ``lyra demo`` (``scene.ply`` + ``cameras.npz``). Writes into DIR: ``mesh.<fmt>`` (the fused
surface, closed), ``objects.<fmt>`` (the objects above the ground, decimated), ``hulls/hull_NNN.obj`` (convex
pieces), ``collision.npz`` (all of it, for ``lyra.sim.load_collision``), ``collision.json`` (frame, ground, counts,
timings), with ``--mjcf`` ``scene.xml`` (MuJoCo: ground plane + hulls) and, with ``--usd``,
``scene.<usdz|usda|usdc>`` (splats + colliders + physics scene). All geometry is in
the sim frame: metres, +z up, ground plane z = 0. Results are cached per scene, cameras and options.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

MESH_FORMATS = ("ply", "obj", "glb")


def resolve_scene(scene: str, cameras: str | None) -> tuple[Path, Path]:
    """(Gaussian file, cameras npz) of a SCENE argument (a file or a generate/demo folder)."""
    from lyra.sim.errors import SimError

    p = Path(scene)
    if not p.exists():
        raise FileNotFoundError(2, "No such file or directory", str(p))
    if p.is_dir():
        for name in ("scene.ply", "scene.spz"):
            if (p / name).is_file():
                ply = p / name
                break
        else:
            raise SimError(f"{p}: a scene folder needs scene.ply (from lyra generate / lyra demo)")
    else:
        ply = p
    cam = Path(cameras) if cameras else ply.parent / "cameras.npz"
    if not cam.is_file():
        raise SimError(f"{cam}: no cameras (give --cameras NPZ; lyra generate / demo write cameras.npz)")
    return ply, cam


def run(args: argparse.Namespace) -> int:
    from lyra.cameras import load_cameras_npz
    from lyra.cli.main import CLIError
    from lyra.gaussians import load_gaussians
    from lyra.sim.mesh import CollisionConfig, build_collision, build_collision_cached, write_collision_dir

    scale: float | str
    if args.scale == "auto":
        scale = "auto"
    else:
        try:
            scale = float(args.scale)
        except ValueError:
            raise CLIError(f"--scale must be a number (metres per scene unit) or 'auto', got {args.scale!r}") from None
    cfg = CollisionConfig(grid=args.grid, voxel=args.voxel, up=args.up, scale=scale, camera_height=args.camera_height,
                          ground=not args.no_ground, decompose=args.decompose, coacd_threshold=args.coacd_threshold,
                          max_faces=args.max_faces, max_views=args.max_views, max_width=args.max_width,
                          depth=args.depth, seed=args.seed)
    cfg.validate()
    ply, cam_path = resolve_scene(args.scene, args.cameras)
    t0 = time.perf_counter()
    g = load_gaussians(ply, allow_empty=False)
    cams = load_cameras_npz(cam_path)
    if args.no_cache:
        geom, cached = build_collision(g, cams, cfg), False
    else:
        geom, cached = build_collision_cached(g, cams, cfg, args.cache)
    paths = write_collision_dir(args.out, geom, args.format, extra={
        "scene": str(ply), "cameras": str(cam_path), "from_cache": cached})
    usd = ""
    if args.mjcf:
        from lyra.sim.mjscene import build_spec

        (Path(args.out) / "scene.xml").write_text(build_spec(geom).to_xml())
        usd += ", scene.xml"
    if args.usd:
        from lyra.export.usd import save_usd

        target = Path(args.out) / f"scene.{args.usd}"
        save_usd(target, g, cams, up_axis="Z", collision=geom, collision_hulls=args.usd_hulls)
        usd += f", {target.name}"
    s = geom.stats
    ground = s.get("ground") or {}
    gtxt = ("ground detected" if ground.get("detected") else "no ground plane found") if ground else "no ground"
    print(f"{s['mesh_faces']} mesh faces, {s['parts']} objects, {s['hulls']} hulls, voxel {s['voxel_m']:.3g} m, "
          f"{gtxt}; {'from cache' if cached else 'built'} in {time.perf_counter() - t0:.1f} s; wrote "
          f"{paths['mesh'].parent}/ ({paths['mesh'].name}, hulls/, collision.npz, collision.json{usd})")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from lyra.sim.ground import UP_AXES
    from lyra.sim.mesh import DECOMPOSITIONS, DEPTHS

    p = sub.add_parser("mesh", help="collision mesh + convex hulls of a Gaussian scene (TSDF of rendered depth)")
    p.add_argument("scene", help="Gaussian scene (.ply/.spz) or a lyra generate/demo output folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--cameras", metavar="NPZ", help="cameras to fuse depth from (default: cameras.npz beside SCENE)")
    p.add_argument("--grid", type=int, default=128, help="voxels along the longest side of the bounds (default 128)")
    p.add_argument("--voxel", type=float, default=None, help="voxel edge in scene units (overrides --grid)")
    p.add_argument("--up", choices=UP_AXES, default="auto",
                   help="up axis of the scene: auto (fitted ground normal near the cameras' image-up) or an axis "
                        "(OpenCV scenes: -y)")
    p.add_argument("--scale", default="1.0",
                   help="metres per scene unit, or auto (median camera height above the ground = --camera-height)")
    p.add_argument("--camera-height", type=float, default=1.6, help="metres, for --scale auto (default 1.6)")
    p.add_argument("--no-ground", action="store_true", help="no ground plane: decompose everything")
    p.add_argument("--decompose", choices=DECOMPOSITIONS, default="coacd",
                   help="convex decomposition: coacd (default), hull (one hull per object) or none")
    p.add_argument("--coacd-threshold", type=float, default=0.1,
                   help="CoACD concavity threshold (smaller: more, tighter hulls, slower; default 0.1)")
    p.add_argument("--max-faces", type=int, default=2000, help="faces per object after decimation (default 2000)")
    p.add_argument("--max-views", type=int, default=64, help="cameras used for fusion (default 64)")
    p.add_argument("--max-width", type=int, default=320, help="render width for fusion (default 320)")
    p.add_argument("--depth", choices=DEPTHS, default="expected",
                   help="rendered depth to fuse: expected (default) or median (where a pixel becomes half opaque)")
    p.add_argument("--format", choices=MESH_FORMATS, default="ply", help="mesh file format (default ply)")
    p.add_argument("--usd", choices=("usdz", "usda", "usdc"), default=None,
                   help="also write scene.<ext>: the splats, the colliders and a physics scene (Z-up) for Isaac Sim")
    p.add_argument("--usd-hulls", action="store_true",
                   help="USD colliders are our convex hulls (convexHull) instead of one mesh per object "
                        "(convexDecomposition)")
    p.add_argument("--mjcf", action="store_true",
                   help="also write scene.xml: a MuJoCo model of the ground plane and the hulls (needs mujoco)")
    p.add_argument("--cache", metavar="DIR", default=None,
                   help="cache folder (default $LYRA_SIM_CACHE or ~/.cache/lyra/sim)")
    p.add_argument("--no-cache", action="store_true", help="always rebuild, store nothing")
    p.add_argument("--seed", type=int, default=0, help="RANSAC / CoACD seed (default 0)")
    p.set_defaults(func=run)


if __name__ == "__main__":
    import sys

    from lyra.cli.main import standalone

    sys.exit(standalone(add_parser, "mesh"))
