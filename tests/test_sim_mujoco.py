"""MuJoCo scenes from collision geometry: balls and a box come to rest at the true heights; OpenCV -> MuJoCo cameras."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering (before mujoco is imported)
mujoco = pytest.importorskip("mujoco")
pytest.importorskip("skimage")

from sim_scenes import arch_scene  # noqa: E402

from lyra.cameras import Cameras, look_at  # noqa: E402
from lyra.sim import CollisionConfig, collision_from_depth  # noqa: E402
from lyra.sim.mesh import CollisionGeometry, TriMesh  # noqa: E402
from lyra.sim.mjscene import FreeBody, build_spec, drop, mujoco_camera_params, sim_camera  # noqa: E402
from lyra.world import Box, Plane, World  # noqa: E402


def _arch_scene():
    return arch_scene(72, 96)


@pytest.fixture(scope="module")
def arch_geometry():
    pytest.importorskip("coacd")
    torch.set_num_threads(1)
    world, cams = _arch_scene()
    depth = world.render(cams).depth[:, 0].numpy()
    cfg = CollisionConfig(grid=64, up="-y", bounds=((-2.2, -2.2, -0.3), (2.2, 2.2, 1.2)))
    return collision_from_depth(depth, None, cams.w2c.numpy(), cams.K.numpy(), cfg)


def test_drops_come_to_rest_at_the_true_heights(arch_geometry):
    """Sim frame = OpenCV (x, z, -y): cube top at z = 0.5, the arch opening spans x 0.71..1.29, z 0..0.6.
    Tolerances: on the ground plane 5 mm; on the cube (a hull of the fused mesh, voxel 6.9 cm) 2.5 cm. A ball on
    the cube's hull (whose top is flat only to a few mm) settles at its height, then slowly rolls off: its height
    is read 0.6 s after landing; a box on the cube stays."""
    r = 0.08
    bodies = [FreeBody("ball_floor", "sphere", (r,), (0.0, 1.0, 0.5)),
              FreeBody("ball_arch", "sphere", (r,), (1.0, 0.1, 0.3)),   # under the lintel: must fall through
              FreeBody("ball_cube", "sphere", (r,), (-1.0, -0.6, 1.0)),
              FreeBody("box_cube", "box", (0.05, 0.05, 0.05), (-1.12, -0.75, 0.8)),
              FreeBody("box_floor", "box", (0.05, 0.05, 0.05), (0.0, -1.2, 0.4))]
    out = drop(build_spec(arch_geometry, bodies), seconds=3.0)
    p, v = out["positions"], out["speeds"]
    print({k: np.round(x, 4).tolist() for k, x in p.items()}, f"{out['steps_per_second']:.0f} steps/s")
    assert p["ball_floor"][2] == pytest.approx(r, abs=0.005)
    assert p["ball_arch"][2] == pytest.approx(r, abs=0.005)
    assert p["box_floor"][2] == pytest.approx(0.05, abs=0.005)
    assert p["box_cube"][2] == pytest.approx(0.5 + 0.05, abs=0.025)
    assert np.hypot(*(p["box_cube"][:2] - [-1.12, -0.75])) < 0.1  # stayed on the cube
    z_ball = out["trajectory"]["ball_cube"][:, 2]
    landed = int(np.argmax(z_ball < 0.5 + r + 0.05))
    settled = landed + int(round(0.6 / 0.05))
    assert z_ball[settled] == pytest.approx(0.5 + r, abs=0.025)
    assert abs(z_ball[settled] - z_ball[settled - 4]) < 0.003  # resting on the top, not bouncing
    for name in ("ball_floor", "ball_arch", "box_cube", "box_floor"):
        assert v[name] < 0.05, name  # at rest


def _cv_camera():
    """An OpenCV camera with fx != fy and an off-centre principal point, looking at the origin from above."""
    w2c = look_at(torch.tensor([[1.5, -2.0, -2.5]]), torch.tensor([[0.2, 0.0, 0.1]]))[0].double()
    K = torch.tensor([[70.0, 0.0, 41.3], [0.0, 64.0, 27.9], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return Cameras(w2c[None], K[None], 60, 80)


def test_camera_pose_and_intrinsics_in_the_model():
    cam = _cv_camera()
    S = np.eye(4)
    S[:3, :3] = 2.0 * np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # scale 2, OpenCV -> z-up
    S[:3, 3] = [0.3, -0.2, 0.1]
    geom = CollisionGeometry(TriMesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64)), [], [], np.zeros(0, np.int64),
                             None, S, 2.0, 0.1, stats={"bounds_m": [[-3, -3, -1], [3, 3, 3]]})
    model = build_spec(geom, cameras=cam).compile()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    w2c = cam.w2c[0].numpy()
    ws = sim_camera(w2c, S)
    centre = S[:3, :3] @ (-w2c[:3, :3].T @ w2c[:3, 3]) + S[:3, 3]
    np.testing.assert_allclose(data.cam_xpos[0], centre, atol=1e-5)
    M = data.cam_xmat[0].reshape(3, 3)
    np.testing.assert_allclose(M, np.stack([ws[0, :3], -ws[1, :3], -ws[2, :3]], 1), atol=1e-6)
    # a scene point projects to the same pixel through either camera
    p_scene = np.array([0.3, -0.4, 0.5])
    p_sim = S[:3, :3] @ p_scene + S[:3, 3]
    pc = w2c[:3, :3] @ p_scene + w2c[:3, 3]
    K = cam.K[0].numpy()
    uv_cv = (K @ (pc / pc[2]))[:2]
    q = M.T @ (p_sim - data.cam_xpos[0])  # MuJoCo camera frame: x right, y up, looking down -z
    prm = mujoco_camera_params(ws, K, cam.width, cam.height)
    fx, fy = prm["focal_pixel"]
    u = cam.width / 2 - prm["principal_pixel"][0] + fx * q[0] / -q[2]
    v = cam.height / 2 - prm["principal_pixel"][1] - fy * q[1] / -q[2]
    np.testing.assert_allclose([u, v], uv_cv, atol=1e-4)


def test_mujoco_depth_matches_the_world_render():
    """MuJoCo renders the converted camera's depth equal to the exact OpenCV render (x2: scale 2) within 1 mm."""
    cam = _cv_camera()
    world = World((Plane((0, 0, 0), (0, -1, 0), (1, 0, 0), None, name="floor"),
                   Box((0.2, -0.3, 0.1), (0.3, 0.3, 0.2), name="box")))
    S = np.eye(4)
    S[:3, :3] = 2.0 * np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
    S[:3, 3] = [0.3, -0.2, 0.0]
    geom = CollisionGeometry(TriMesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64)), [], [], np.zeros(0, np.int64),
                             None, S, 2.0, 0.1, stats={"bounds_m": [[-30, -30, -1], [30, 30, 3]]})
    spec = build_spec(geom, cameras=cam)
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 1])
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, pos=(S[:3, :3] @ [0.2, -0.3, 0.1] + S[:3, 3]).tolist(),
                            size=[0.6, 0.4, 0.6])
    model = spec.compile()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    try:
        renderer = mujoco.Renderer(model, height=cam.height, width=cam.width)
    except Exception as exc:  # noqa: BLE001 - no GL here (no EGL / OSMesa): nothing to compare
        pytest.skip(f"no offscreen OpenGL for MuJoCo: {exc}")
    try:
        renderer.enable_depth_rendering()
        renderer.update_scene(data, camera="cam_000")
        depth = renderer.render()
    finally:
        renderer.close()
    exact = 2.0 * world.render(cam).depth[0, 0].numpy()
    ok = np.abs(depth - exact) < 1e-3
    assert ok.mean() > 0.98, ok.mean()  # silhouette pixels may fall either side


def test_cli_writes_a_loadable_mjcf(tmp_path):
    from lyra.cache3d import depth_to_gaussians
    from lyra.cameras import save_cameras_npz
    from lyra.cli.main import main
    from lyra.gaussians import merge, save_gaussians

    world, cams = _arch_scene()
    cams = cams.resized(36, 48)
    r = world.render(cams)
    save_gaussians(tmp_path / "scene.ply", merge([depth_to_gaussians(r.rgb[i], r.depth[i], cams[i])
                                                  for i in range(0, len(cams), 2)]))
    save_cameras_npz(tmp_path / "cameras.npz", cams)
    assert main(["mesh", str(tmp_path / "scene.ply"), "--out", str(tmp_path / "out"), "--grid", "40", "--up=-y",
                 "--decompose", "hull", "--no-cache", "--mjcf"]) == 0
    model = mujoco.MjModel.from_xml_path(str(tmp_path / "out" / "scene.xml"))
    hulls = len(list((tmp_path / "out" / "hulls").glob("hull_*.obj")))
    assert model.nmesh == hulls >= 2 and model.ngeom == hulls + 1  # the hulls and the ground plane
