"""USD for Isaac Sim: splats + collision meshes (UsdPhysics APIs) + physics scene, read back with usd-core."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lyra.cameras import Cameras, intrinsics_matrix, look_at
from lyra.export.usd import COLLISION_PRIM, GAUSSIANS_PRIM, PHYSICS_SCENE_PRIM, STAGE_FROM_ZUP, save_usd
from lyra.world import Box, Plane, World

pxr = pytest.importorskip("pxr")
pytest.importorskip("skimage")
from pxr import Usd, UsdGeom, UsdPhysics, UsdValidation, UsdVol  # noqa: E402

PHYSICS_VALIDATORS = ("usdPhysicsValidators:ColliderChecker", "usdPhysicsValidators:RigidBodyChecker",
                      "usdPhysicsValidators:ArticulationChecker", "usdPhysicsValidators:PhysicsJointChecker")


@pytest.fixture(scope="module")
def scene():
    """(Gaussians, cameras, collision geometry) of a floor, a cube and a box, in OpenCV axes (up = -y)."""
    from lyra.cache3d import depth_to_gaussians
    from lyra.gaussians import merge
    from lyra.sim import CollisionConfig, build_collision

    torch.set_num_threads(1)
    world = World((Plane((0, 0, 0), (0, -1, 0), (1, 0, 0), (2.0, 2.0), name="floor"),
                   Box((-1.0, -0.25, -0.6), (0.25, 0.25, 0.25), name="cube"),
                   Box((0.8, -0.3, 0.4), (0.2, 0.3, 0.3), name="box")))
    eyes = [(3.0 * math.cos(2 * math.pi * k / 10), -1.8, 3.0 * math.sin(2 * math.pi * k / 10)) for k in range(10)]
    w2c = look_at(torch.tensor(eyes, dtype=torch.float32), torch.zeros(len(eyes), 3))
    H, W = 36, 48
    f = 0.5 * H / math.tan(math.radians(30))
    cams = Cameras(w2c, intrinsics_matrix(f, f, W / 2, H / 2).expand(len(eyes), 3, 3).clone(), H, W)
    r = world.render(cams)
    g = merge([depth_to_gaussians(r.rgb[i], r.depth[i], cams[i]) for i in range(len(cams))])
    geom = build_collision(g, cams, CollisionConfig(grid=40, up="-y", decompose="hull", scale=2.0))
    return g, cams, geom


def _physics_errors(stage) -> list[str]:
    reg = UsdValidation.ValidationRegistry()
    out = []
    for name in PHYSICS_VALIDATORS:
        v = reg.GetOrLoadValidatorByName(name)
        for prim in stage.Traverse():
            out += [str(e.GetMessage()) for e in v.Validate(prim)]
    return out


def _world_points(prim, points) -> np.ndarray:
    M = np.array(UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(Usd.TimeCode.Default()), dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    return p @ M[:3, :3] + M[3, :3]  # USD: row vectors


@pytest.mark.parametrize("up", ["Z", "Y"])
def test_usd_collision_prims_apis_and_frame(tmp_path, scene, up):
    g, cams, geom = scene
    assert geom.stats["parts"] == 2 and geom.scale == 2.0
    path = save_usd(tmp_path / "scene.usda", g, cams, up_axis=up, collision=geom)
    stage = Usd.Stage.Open(str(path))
    assert UsdGeom.GetStageMetersPerUnit(stage) == pytest.approx(2.0)
    assert UsdGeom.GetStageUpAxis(stage) == up

    ground = stage.GetPrimAtPath(f"{COLLISION_PRIM}/Ground")
    assert ground.IsA(UsdGeom.Plane) and ground.HasAPI(UsdPhysics.CollisionAPI)
    assert UsdGeom.Plane(ground).GetAxisAttr().Get() == "Z"
    objects = stage.GetPrimAtPath(f"{COLLISION_PRIM}/Objects").GetChildren()
    assert len(objects) == len(geom.parts)
    R_stage = STAGE_FROM_ZUP[up]
    for prim, part in zip(objects, geom.parts):
        assert prim.IsA(UsdGeom.Mesh)
        assert prim.HasAPI(UsdPhysics.CollisionAPI) and prim.HasAPI(UsdPhysics.MeshCollisionAPI)
        assert UsdPhysics.MeshCollisionAPI(prim).GetApproximationAttr().Get() == "convexDecomposition"
        assert UsdGeom.Imageable(prim).GetPurposeAttr().Get() == "guide"
        mesh = UsdGeom.Mesh(prim)
        pts = np.array(mesh.GetPointsAttr().Get())
        assert len(pts) == len(part.vertices)
        assert list(mesh.GetFaceVertexCountsAttr().Get()) == [3] * len(part.faces)
        np.testing.assert_array_equal(np.array(mesh.GetFaceVertexIndicesAttr().Get()), part.faces.ravel())
        # stage position = the stage's axes of the gravity-aligned frame, in scene units (sim metres / scale)
        np.testing.assert_allclose(_world_points(prim, pts), part.vertices / geom.scale @ R_stage.T, atol=1e-5)

    # the splats land in the same frame: floor Gaussians at stage height 0
    splats = stage.GetPrimAtPath(GAUSSIANS_PRIM)
    assert splats.IsA(UsdVol.ParticleField3DGaussianSplat)
    means = g.means.double().numpy()
    world = _world_points(splats, np.array(UsdVol.ParticleField3DGaussianSplat(splats).GetPositionsAttr().Get()))
    S = geom.sim_from_scene
    np.testing.assert_allclose(world, ((means @ S[:3, :3].T + S[:3, 3]) / geom.scale) @ R_stage.T, atol=1e-4)
    up_i = 2 if up == "Z" else 1
    floor = np.abs(means[:, 1]) < 1e-6
    assert np.abs(world[floor, up_i]).max() < 0.02

    ps = UsdPhysics.Scene(stage.GetPrimAtPath(PHYSICS_SCENE_PRIM))
    assert ps.GetPrim().IsValid()
    expect = (0.0, 0.0, -1.0) if up == "Z" else (0.0, -1.0, 0.0)
    assert tuple(ps.GetGravityDirectionAttr().Get()) == pytest.approx(expect)
    assert ps.GetGravityMagnitudeAttr().Get() == pytest.approx(9.81 / 2.0)
    assert _physics_errors(stage) == []


def test_usd_collision_hulls_and_usdz(tmp_path, scene):
    g, cams, geom = scene
    path = save_usd(tmp_path / "scene.usdz", g, None, up_axis="Z", collision=geom, collision_hulls=True)
    stage = Usd.Stage.Open(str(path))
    hulls = stage.GetPrimAtPath(f"{COLLISION_PRIM}/Hulls").GetChildren()
    assert len(hulls) == len(geom.hulls) >= 2
    assert all(UsdPhysics.MeshCollisionAPI(h).GetApproximationAttr().Get() == "convexHull" for h in hulls)
    assert not stage.GetPrimAtPath(f"{COLLISION_PRIM}/Objects").IsValid()
    n_collide = sum(p.HasAPI(UsdPhysics.CollisionAPI) for p in stage.Traverse())
    assert n_collide == len(geom.hulls) + 1  # hulls + ground
    assert _physics_errors(stage) == []


def test_usd_without_collision_is_unchanged(tmp_path, scene):
    g, cams, geom = scene
    stage = Usd.Stage.Open(str(save_usd(tmp_path / "plain.usda", g, cams)))
    assert not stage.GetPrimAtPath(COLLISION_PRIM).IsValid()
    assert not stage.GetPrimAtPath(PHYSICS_SCENE_PRIM).IsValid()
    with pytest.raises(Exception, match="meters_per_unit"):
        save_usd(tmp_path / "bad.usda", g, cams, meters_per_unit=3.0, collision=geom)
