"""MuJoCo bodies rendered into a scene render with a depth test (hidden behind a wall, shown in front of it), the
movable render camera, and ``lyra sim`` end to end on a tiny procedural scene."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering (before mujoco is imported)
mujoco = pytest.importorskip("mujoco")
pytest.importorskip("skimage")

from sim_scenes import arch_scene  # noqa: E402

from lyra.cameras import Cameras, intrinsics_matrix, look_at  # noqa: E402
from lyra.sim.mesh import CollisionGeometry, TriMesh  # noqa: E402
from lyra.sim.mjscene import FreeBody, build_spec, sim_camera  # noqa: E402
from lyra.sim.render import BodyRenderer, add_view_camera, composite, gl_error  # noqa: E402
from lyra.world import Box, Plane, World  # noqa: E402

# OpenCV scene (up = -y) -> sim frame (x, z, -y): a rotation, scale 1
S = np.eye(4)
S[:3, :3] = [[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]]


def _need_gl() -> None:
    err = gl_error()
    if err:
        pytest.skip(err)


def _empty_geom() -> CollisionGeometry:
    return CollisionGeometry(TriMesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64)), [], [], np.zeros(0, np.int64),
                             None, S, 1.0, 0.1, stats={"bounds_m": [[-5, -5, -1], [5, 5, 3]]})


def _camera(H=60, W=80) -> Cameras:
    """fx != fy and an off-centre principal point: the exact conversion is exercised, not just a fovy."""
    w2c = look_at(torch.tensor([[0.3, -0.9, -3.0]], dtype=torch.float64),
                  torch.tensor([[0.0, -0.5, 0.3]], dtype=torch.float64))
    K = intrinsics_matrix(72.0, 66.0, W / 2 + 3.3, H / 2 - 2.1).to(torch.float64)[None]
    return Cameras(w2c, K, H, W)


def test_moved_render_camera_equals_a_compiled_one():
    """The render camera compiled at pose A and moved at run time to pose B renders what a camera compiled at B does."""
    _need_gl()
    cam = _camera()
    other = look_at(torch.tensor([[2.0, -2.0, -1.0]], dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64))
    wb = sim_camera(cam.w2c[0].numpy(), S)
    K = cam.K[0].numpy()
    images = []
    K_start = np.array([[50.0, 0, 30], [0, 40, 20], [0, 0, 1]])  # other intrinsics too
    for start in (wb, sim_camera(other[0].numpy(), S)):
        spec = build_spec(_empty_geom(), [FreeBody("box", "box", (0.6, 0.3, 0.5), (0.1, 0.2, 0.6))])
        add_view_camera(spec, start, K_start if start is not wb else K, 80, 60)
        model = spec.compile()
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        with BodyRenderer(model, cam.height, cam.width, supersample=1) as r:
            images.append(r.render(data, wb, K))
    (rgb_a, dep_a), (rgb_b, dep_b) = images
    assert np.isfinite(dep_a).mean() > 0.1  # the box is in view
    np.testing.assert_array_equal(np.isfinite(dep_a), np.isfinite(dep_b))
    m = np.isfinite(dep_a)
    np.testing.assert_allclose(dep_a[m], dep_b[m], atol=1e-4)
    np.testing.assert_allclose(rgb_a, rgb_b, atol=1 / 255)


def test_depth_test_hides_a_body_behind_a_wall():
    """A wall (x in [-1, 0], 1.2 high, at scene z = 0) in front of a box body (x in [-0.6, 0.6], z in [0.5, 0.7])
    and a sphere body in front of the wall. The scene render (exact depth) is left untouched wherever the wall is
    nearer than the box; the box shows where the floor behind it is farther; the sphere shows over the wall."""
    _need_gl()
    cam = _camera()
    H, W = cam.height, cam.width
    world = World((Plane((0, 0, 0), (0, -1, 0), (1, 0, 0), None, name="floor"),
                   Box((-0.5, -0.6, 0.0), (0.5, 0.6, 0.05), name="wall")))
    scene = world.render(cam)
    rgb, depth = scene.rgb[0].numpy(), scene.depth[0, 0].numpy()
    box_pos = S[:3, :3] @ np.array([0.0, -0.45, 0.6])    # sim frame: centre 0.45 above the floor
    ball_pos = S[:3, :3] @ np.array([-0.5, -0.5, -0.5])  # in front of the wall
    spec = build_spec(_empty_geom(), [FreeBody("box", "box", (0.6, 0.1, 0.45), tuple(box_pos), rgba=(0, 1, 0, 1)),
                                      FreeBody("ball", "sphere", (0.12,), tuple(ball_pos), rgba=(1, 0, 0, 1))])
    w2c = sim_camera(cam.w2c[0].numpy(), S)
    add_view_camera(spec, w2c, cam.K[0].numpy(), W, H)
    model = spec.compile()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    with BodyRenderer(model, H, W, supersample=2) as r:
        b_rgb, b_dep = r.render(data, w2c, cam.K[0].numpy())
    assert b_dep.shape == (2 * H, 2 * W) and b_rgb.shape == (2 * H, 2 * W, 3)
    out, st = composite(rgb, depth, np.ones((H, W), np.float32), b_rgb, b_dep, tolerance=0.03)

    blocks = b_dep.reshape(H, 2, W, 2)
    full = np.isfinite(blocks).all((1, 3))           # pixels the bodies cover entirely
    near = np.where(np.isfinite(blocks), blocks, np.inf).min((1, 3))
    far = np.where(np.isfinite(blocks), blocks, -np.inf).max((1, 3))
    behind = full & (depth * 1.03 < near)            # the scene (the wall) is nearer than every body sample
    front = full & (far < depth)                     # the bodies are nearer than the scene
    assert behind.sum() > 80 and front.sum() > 80, (behind.sum(), front.sum())
    np.testing.assert_allclose(out[:, behind], rgb[:, behind], atol=1e-6)  # hidden: the scene unchanged
    body_rgb = b_rgb.reshape(H, 2, W, 2, 3).mean((1, 3)).transpose(2, 0, 1)
    np.testing.assert_allclose(out[:, front], body_rgb[:, front], atol=1e-6)  # shown: the body's colour
    # the hidden pixels are the wall's (its depth ~3.0, the box's ~3.6), the shown box is green, the ball red
    assert np.abs(depth[behind] - 3.0).max() < 0.2
    green = front & (out[1] > 0.3) & (out[0] < 0.2)
    red = front & (out[0] > 0.3) & (out[1] < 0.2)
    assert green.sum() > 40 and red.sum() > 10
    ys, xs = np.nonzero(red)
    assert depth[ys, xs].mean() < 3.2  # the ball is drawn over the wall, whose depth is less than the box's
    assert 0.1 < st["hidden_fraction"] < 0.9
    soft = (out != rgb).any(0) & ~front & ~behind
    assert soft.any()  # edge pixels blend (supersampled coverage)
    # no occluder (splat alpha 0): every body pixel shows
    out2, st2 = composite(rgb, depth, np.zeros((H, W), np.float32), b_rgb, b_dep)
    assert st2["hidden_fraction"] == 0.0
    np.testing.assert_allclose(out2[:, full], body_rgb[:, full], atol=1e-6)


def _tiny_scene(tmp_path):
    """The arch world of test_sim_mujoco lifted to Gaussians from 7 views at 36x48, with its 14 cameras."""
    from lyra.cache3d import depth_to_gaussians
    from lyra.cameras import save_cameras_npz
    from lyra.gaussians import merge, save_gaussians

    world, cams = arch_scene(36, 48)
    r = world.render(cams)
    save_gaussians(tmp_path / "scene.ply", merge([depth_to_gaussians(r.rgb[i], r.depth[i], cams[i])
                                                  for i in range(0, len(cams), 2)]))
    save_cameras_npz(tmp_path / "cameras.npz", cams)
    return tmp_path


def test_lyra_sim_end_to_end(tmp_path, capsys):
    pytest.importorskip("trimesh")  # collision/ files
    from lyra.cli.main import main

    scene = _tiny_scene(tmp_path / "scene")
    video = gl_error() is None
    out = tmp_path / "sim"
    args = ["sim", str(scene), "--out", str(out), "--seconds", "0.5", "--fps", "12", "--grid", "40",
            "--decompose", "hull", "--no-cache", "--views", "0:4", "--balls", "2", "--max-views", "14"]
    assert main(args + ([] if video else ["--no-video"])) == 0
    printed = capsys.readouterr().out
    for stage in ("collision", "camera path", "place robot", "build scene", "simulate", "write outputs"):
        assert f"[lyra] {stage}" in printed
    rep = json.loads((out / "report.json").read_text())
    frames, steps = 7, 100                           # round(0.5 s x 12 fps) + 1; 0.5 s / 5 ms
    hulls = sorted((out / "collision" / "hulls").glob("hull_*.obj"))
    assert (out / "collision" / "mesh.ply").is_file() and (out / "collision" / "collision.npz").is_file()
    assert len(hulls) == rep["collision"]["hulls"] >= 1
    model = mujoco.MjModel.from_xml_path(str(out / "scene.xml"))
    assert model.nmesh == len(hulls) and model.nu == 21
    with np.load(out / "trajectory.npz") as z:
        B = model.nbody - 1
        assert list(z["body_names"]) == rep["bodies"] and len(rep["bodies"]) == B == 16 + 2  # humanoid + 2 balls
        assert z["time"].shape == (steps + 1,) and z["body_pos"].shape == (steps + 1, B, 3)
        assert z["body_quat"].shape == (steps + 1, B, 4) and z["qpos"].shape == (steps + 1, model.nq)
        assert z["frame_step"].shape == (frames,) and z["frame_w2c"].shape == (frames, 4, 4)
        np.testing.assert_allclose(z["frame_time"], np.arange(frames) / 12, atol=0.003)
        torso = z["body_pos"][:, rep["bodies"].index("humanoid/torso")]
        assert torso[:, 2].min() > 1.0  # the scripted humanoid stays standing on the ground plane
        np.testing.assert_allclose(torso[0, :2], rep["placement"]["xy"], atol=1e-9)
    assert rep["simulation"]["steps"] == steps and rep["simulation"]["steps_per_second"] > 0
    assert rep["frames"] == frames and set(rep["timings_s"]) >= {"collision", "simulate", "write outputs"}
    if video:
        from lyra.render.video import read_video

        v = read_video(out / "flythrough_sim.mp4")
        assert v.shape[0] == frames == rep["video"]["frames"] and tuple(v.shape[2:]) == (36, 48)
        assert rep["video"]["frames_with_visible_bodies"] >= 1
        assert (out / "preview.png").is_file()
    else:
        assert not (out / "flythrough_sim.mp4").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left
