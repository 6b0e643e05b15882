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
