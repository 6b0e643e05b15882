"""Collision-mesh accuracy against exact geometry: analytic distances to a procedural world's surfaces.

``surface_distance(points, world)`` is the unsigned distance from scene points to the union of the world's
primitive surfaces (plane rectangles, box, sphere and capped-cylinder surfaces), exact up to float64.
``mesh_accuracy`` reports it for a collision mesh (mean, median, p95, max in scene units), leaving out the
faces that close the TSDF grid at its border (they bound the fused volume, not the scene).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lyra.sim.mesh import CollisionGeometry, TriMesh


def _local(points: np.ndarray, prim: Any) -> np.ndarray:
    center, rows = prim.frame()
    R = np.asarray(rows, np.float64)  # columns = local axes in world coordinates
    return (points - np.asarray(center, np.float64)) @ R


def primitive_distance(points: np.ndarray, prim: Any) -> np.ndarray:
    """[P] unsigned distance from points [P, 3] (world) to the surface of one ``lyra.world`` primitive."""
    from lyra.world import Box, Cylinder, Plane, Sphere

    p = np.asarray(points, np.float64)
    if isinstance(prim, Sphere):
        return np.abs(np.linalg.norm(p - np.asarray(prim.center), axis=1) - prim.radius)
    q = _local(p, prim)
    if isinstance(prim, Plane):
        if prim.half_size is None:
            return np.abs(q[:, 2])
        dx = np.maximum(np.abs(q[:, 0]) - prim.half_size[0], 0.0)
        dy = np.maximum(np.abs(q[:, 1]) - prim.half_size[1], 0.0)
        return np.sqrt(dx * dx + dy * dy + q[:, 2] ** 2)
    if isinstance(prim, Box):
        d = np.abs(q) - np.asarray(prim.half_size, np.float64)
        return np.abs(np.linalg.norm(np.maximum(d, 0.0), axis=1) + np.minimum(d.max(1), 0.0))
    if isinstance(prim, Cylinder):  # local y is the axis
        d = np.stack([np.hypot(q[:, 0], q[:, 2]) - prim.radius, np.abs(q[:, 1]) - prim.half_height], 1)
        return np.abs(np.linalg.norm(np.maximum(d, 0.0), axis=1) + np.minimum(d.max(1), 0.0))
    raise TypeError(f"not a primitive: {type(prim).__name__}")


def surface_distance(points: np.ndarray, world: Any, chunk: int = 200_000) -> np.ndarray:
    """[P] distance from points [P, 3] (scene coordinates) to the nearest surface of ``world`` (static pose)."""
    p = np.asarray(points, np.float64).reshape(-1, 3)
    out = np.full(len(p), np.inf)
    for s in range(0, len(p), chunk):
        for prim in world.primitives:
            out[s:s + chunk] = np.minimum(out[s:s + chunk], primitive_distance(p[s:s + chunk], prim))
    return out


def border_mask(vertices: np.ndarray, lo: np.ndarray, hi: np.ndarray, tol: float) -> np.ndarray:
    """[V] True for vertices within ``tol`` of the faces of the box [lo, hi]."""
    v = np.asarray(vertices)
    return ((v - lo) < tol).any(1) | ((hi - v) < tol).any(1)


def sample_faces(mesh: TriMesh, per_area: float, seed: int = 0, max_points: int = 500_000) -> np.ndarray:
    """[P, 3] points spread uniformly over the mesh surface, about ``per_area`` per unit area."""
    tri = mesh.vertices[mesh.faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    n = int(min(max_points, max(1, area.sum() * per_area)))
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(tri), n, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    w = np.stack([1 - s, s * (1 - r2), s * r2], 1)
    return np.einsum("nk,nkd->nd", w, tri[idx])


def mesh_accuracy(geom: CollisionGeometry, world: Any, which: str = "mesh", samples_per_voxel_area: float = 4.0
                  ) -> dict[str, float]:
    """Distance (scene units) from the collision surface to the world's exact surfaces.

    Args:
        which: "mesh" (the fused surface) or "parts" (the decimated objects).
        samples_per_voxel_area: surface samples per voxel-face area (the surface is sampled, not its vertices).
    Returns:
        {"mean", "median", "p95", "max", "points", "voxel"} in scene units (voxel: the TSDF voxel edge);
        samples within one voxel of the grid border are left out.
    """
    meshes = [geom.mesh] if which == "mesh" else geom.parts
    if not meshes or not sum(len(m.faces) for m in meshes):
        return {"mean": float("nan"), "median": float("nan"), "p95": float("nan"), "max": float("nan"),
                "points": 0, "voxel": geom.voxel / geom.scale}
    vox = geom.voxel
    pts = np.concatenate([sample_faces(m, samples_per_voxel_area / vox ** 2) for m in meshes])
    lo, hi = (np.asarray(b) for b in geom.stats["bounds_m"])
    keep = ~border_mask(pts, lo, hi, 1.01 * vox)
    scene = (pts[keep] - geom.sim_from_scene[:3, 3]) @ np.linalg.inv(geom.sim_from_scene[:3, :3]).T
    d = surface_distance(scene, world)
    return {"mean": float(d.mean()), "median": float(np.median(d)), "p95": float(np.percentile(d, 95)),
            "max": float(d.max()), "points": int(len(d)), "voxel": vox / geom.scale}


# ---------------------------------------------------------------------------------------------- the benchmark
def room_cameras(H: int, W: int) -> Any:
    """48 views from three points inside a ``generate_world`` room: 8 headings, 24 degrees up and down (90 deg FoV)."""
    import math

    import torch

    from lyra.cameras import Cameras, intrinsics_matrix, look_at

    eyes, targets = [], []
    for pos in [(0, -0.3, 0.0), (0.8, -0.5, 3.0), (-0.8, -0.4, 5.0)]:
        for k in range(8):
            a = 2 * math.pi * k / 8
            for pitch in (0.45, -0.45):
                e = np.array(pos, float)
                eyes.append(e)
                targets.append(e + np.array([math.sin(a), pitch, math.cos(a)]))
    w2c = look_at(torch.tensor(np.array(eyes), dtype=torch.float32), torch.tensor(np.array(targets),
                                                                                  dtype=torch.float32))
    f = 0.5 * W
    return Cameras(w2c, intrinsics_matrix(f, f, W / 2, H / 2).expand(len(w2c), 3, 3).clone(), H, W)


def benchmark_room(seed: int, size: tuple[int, int] = (96, 128), grid: int = 96, lift_every: int = 3) -> dict:
    """Mesh accuracy on ``generate_world(seed, "room")``: from exact depth, and through Gaussians lifted from exact
    renders (every ``lift_every``-th view) and rendered back (expected depth). Distances in scene units."""
    import time

    from lyra.cache3d import depth_to_gaussians
    from lyra.gaussians import merge
    from lyra.sim.mesh import CollisionConfig, build_collision, collision_from_depth
    from lyra.world import generate_world

    world = generate_world(seed, "room")
    cams = room_cameras(*size)
    r = world.render(cams)
    cfg = CollisionConfig(grid=grid, decompose="none", max_width=size[1])
    t0 = time.perf_counter()
    exact = collision_from_depth(r.depth[:, 0].numpy(), None, cams.w2c.numpy(), cams.K.numpy(), cfg)
    t_exact = time.perf_counter() - t0
    lift = list(range(0, len(cams), lift_every))
    g = merge([depth_to_gaussians(r.rgb[i], r.depth[i], cams[i]) for i in lift])
    t0 = time.perf_counter()
    splat = build_collision(g, cams, cfg)
    t_splat = time.perf_counter() - t0
    floor = world.primitives[0].center[1]
    out = {"seed": seed, "views": len(cams), "size": list(size), "voxel": exact.voxel, "gaussians": len(g)}
    for name, geom, secs in (("exact_depth", exact, t_exact), ("gaussians", splat, t_splat)):
        out[name] = {**mesh_accuracy(geom, world), "ground_error": abs(geom.ground.offset - floor),
                     "seconds": secs, "timings": geom.timings}
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m lyra.sim.evaluate [--seeds 1 2 3]``: the room benchmark as JSON lines."""
    import argparse
    import json

    import torch

    p = argparse.ArgumentParser(prog="python -m lyra.sim.evaluate", description=main.__doc__)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--size", type=int, nargs=2, default=[96, 128], metavar=("H", "W"))
    p.add_argument("--grid", type=int, default=96)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    for s in args.seeds:
        print(json.dumps(benchmark_room(s, tuple(args.size), args.grid)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
