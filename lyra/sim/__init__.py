"""Simulation from generated scenes: collision geometry (TSDF -> mesh -> convex hulls) in a gravity-aligned frame.

``build_collision(gaussians, cameras, CollisionConfig())`` renders depth + alpha, fuses a TSDF, finds the ground
and returns a :class:`CollisionGeometry` (metres, +z up, ground at z = 0): the fused mesh, the objects and their
convex hulls. ``build_collision_cached`` caches it per scene; ``write_collision_dir`` writes the files of
``lyra mesh``. ``lyra.sim.evaluate`` measures a mesh against a procedural world's exact surfaces.
MuJoCo (optional ``sim`` extra, imported on use): ``lyra.sim.mjscene`` (scenes, cameras, ``simulate``),
``lyra.sim.robot`` (the vendored dm_control humanoid and its motions), ``lyra.sim.render`` (headless rendering,
depth-tested compositing over the splats) and ``lyra.sim.pipeline.run_sim`` (``lyra sim``).
"""

from lyra.sim.errors import SimError
from lyra.sim.ground import UP_AXES, Ground, detect_ground, sim_frame
from lyra.sim.mesh import (
    DECOMPOSITIONS,
    CollisionConfig,
    CollisionGeometry,
    TriMesh,
    build_collision,
    build_collision_cached,
    collision_from_depth,
    load_collision,
    save_collision_npz,
    write_collision_dir,
)
from lyra.sim.tsdf import Volume, fuse_tsdf, incidence_cos

__all__ = [
    "DECOMPOSITIONS", "UP_AXES", "CollisionConfig", "CollisionGeometry", "Ground", "SimError", "TriMesh",
    "Volume", "build_collision", "build_collision_cached", "collision_from_depth", "detect_ground", "fuse_tsdf",
    "incidence_cos", "load_collision", "save_collision_npz", "sim_frame", "write_collision_dir",
]
