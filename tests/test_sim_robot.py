"""The vendored humanoid: placed on the ground, stands and squats under the scripted servos, falls when passive;
trajectories of every body; camera paths and robot placement of lyra sim."""

from __future__ import annotations

import hashlib
import math
import re

import numpy as np
import pytest
import torch

mujoco = pytest.importorskip("mujoco")

from lyra.sim import Ground  # noqa: E402
from lyra.sim.mesh import CollisionGeometry, TriMesh, convex_hull  # noqa: E402
from lyra.sim.mjscene import build_spec, simulate  # noqa: E402
from lyra.sim.pipeline import choose_spot, interpolate_path  # noqa: E402
from lyra.sim.robot import HUMANOID_XML, PREFIX, HumanoidConfig, SquatWave, add_humanoid, lowest_point  # noqa: E402


def _flat(hulls=()) -> CollisionGeometry:
    """The ground plane z = 0 (sim frame = scene frame) and optional hulls."""
    return CollisionGeometry(TriMesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64)), [], list(hulls),
                             np.zeros(len(hulls), np.int64), Ground(np.array([0.0, 0.0, 1.0]), 0.0, True, 1.0),
                             np.eye(4), 1.0, 0.1, stats={"bounds_m": [[-5, -5, -1], [5, 5, 3]]})


def _humanoid_model(motion: str, xy=(0.5, -0.3), yaw=40.0):
    spec = build_spec(_flat(), timestep=0.005)
    cfg = HumanoidConfig(xy=xy, yaw_deg=yaw, motion=motion)
    info = add_humanoid(spec, cfg)
    return spec.compile(), cfg, info


def test_vendored_files_are_unmodified_with_their_licence():
    root = HUMANOID_XML.parent
    readme = (root / "README.md").read_text()
    table = dict(re.findall(r"\| `([\w/.]+\.xml)` \| `[^`]+` \| `([0-9a-f]{64})` \|", readme))
    assert set(table) == {"humanoid.xml", "common/materials.xml", "common/skybox.xml", "common/visual.xml"}
    for name, digest in table.items():
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == digest, name
    assert "Apache License" in (root / "LICENSE").read_text() and "Version 2.0" in (root / "LICENSE").read_text()
    assert "DeepMind" in (root / "AUTHORS").read_text()


def test_humanoid_stands_on_the_ground_where_placed():
    model, cfg, info = _humanoid_model("passive")
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    robot = np.nonzero(model.geom_bodyid > 0)[0]
    assert model.nbody == 17 and model.nu == 21  # the dm_control humanoid: 16 bodies + world, 21 motors
    assert lowest_point(model, data, robot) == pytest.approx(cfg.clearance, abs=1e-6)
    torso = data.xpos[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, PREFIX + "torso")]
    np.testing.assert_allclose(torso, info["torso_start"], atol=1e-9)
    np.testing.assert_allclose(torso[:2], cfg.xy, atol=1e-9)
    fwd = data.xmat[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, PREFIX + "torso")].reshape(3, 3)[:, 0]
    assert math.degrees(math.atan2(fwd[1], fwd[0])) == pytest.approx(cfg.yaw_deg, abs=1.0)  # faces yaw_deg
    assert 1.5 < data.xpos[:, 2].max() + 0.09 < 1.65  # the head's top: a 1.56 m humanoid


def test_scripted_motion_squats_and_stays_standing_passive_falls():
    model, cfg, _ = _humanoid_model("scripted")
    traj, _ = simulate(model, 4.0, SquatWave(model, cfg))
    z = traj.body(PREFIX + "torso")[:, 2]
    print(f"scripted torso z {z[0]:.3f} min {z.min():.3f} end {z[-1]:.3f}; {traj.steps_per_second:.0f} steps/s")
    assert z.min() > 1.0  # never falls
    assert z[0] - z.min() > 0.05  # squats (0.5 rad hips: the torso drops ~8 cm)
    per = int(cfg.period / 0.005)
    assert abs(z[per] - z[0]) < 0.03 and abs(z[per // 2] - z.min()) < 0.03  # periodic: up at t = T, down at T/2
    drift = np.linalg.norm(traj.body(PREFIX + "torso")[:, :2] - np.asarray(cfg.xy), axis=1).max()
    assert drift < 0.2
    model_p, _, _ = _humanoid_model("passive")
    traj_p, _ = simulate(model_p, 4.0)
    zp = traj_p.body(PREFIX + "torso")[:, 2]
    print(f"passive torso z end {zp[-1]:.3f}")
    assert zp[-1] < 0.45 and zp[0] > 1.2  # stood, then fell to the ground
    assert np.all(traj_p.ctrl == 0)


def test_trajectory_records_every_body_at_every_step():
    model, cfg, _ = _humanoid_model("scripted")
    traj, data = simulate(model, 0.25, SquatWave(model, cfg))
    assert traj.steps == 50 and traj.time.shape == (51,)
    np.testing.assert_allclose(np.diff(traj.time), 0.005, atol=1e-12)
    assert traj.body_pos.shape == (51, model.nbody - 1, 3) and traj.body_quat.shape == (51, model.nbody - 1, 4)
    assert traj.body_names[0] == PREFIX + "torso" and len(set(traj.body_names)) == model.nbody - 1
    np.testing.assert_allclose(traj.body_pos[-1], data.xpos[1:])
    np.testing.assert_allclose(np.linalg.norm(traj.body_quat, axis=2), 1.0, atol=1e-9)
    # the recorded qpos reproduces the recorded body poses
    d2 = mujoco.MjData(model)
    d2.qpos[:] = traj.qpos[20]
    mujoco.mj_kinematics(model, d2)
    np.testing.assert_allclose(d2.xpos[1:], traj.body_pos[20], atol=1e-9)
    targets = SquatWave(model, cfg).targets(cfg.period / 2)
    ids = SquatWave(model, cfg).ids
    assert targets[ids["right_hip_y"]] == pytest.approx(-cfg.squat)
    assert targets[ids["left_knee"]] == pytest.approx(-2 * cfg.squat)


def test_interpolated_path_passes_through_the_cameras():
    from lyra.cameras import look_at

    eyes = np.array([[0.0, -1.0, -3.0], [1.0, -1.2, -2.5], [2.0, -1.0, -1.0]])
    w2c = look_at(torch.tensor(eyes, dtype=torch.float64), torch.zeros(3, 3, dtype=torch.float64)).numpy()
    K = np.stack([np.array([[100.0 + 10 * i, 0, 40], [0, 100.0 + 10 * i, 30], [0, 0, 1]]) for i in range(3)])
    W, Kf = interpolate_path(w2c, K, 5)
    np.testing.assert_allclose(W[[0, 2, 4]], w2c, atol=1e-6)
    np.testing.assert_allclose(Kf[1], (K[0] + K[1]) / 2)
    for R in W[:, :3, :3]:
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
    c = -np.einsum("nji,nj->ni", W[:, :3, :3], W[:, :3, 3])
    np.testing.assert_allclose(c[1], (eyes[0] + eyes[1]) / 2, atol=1e-6)


def test_robot_is_placed_clear_of_hulls_and_in_view():
    """A camera 1.6 m high looking down the +y axis; a box hull straight ahead: the spot avoids it, stays in view."""
    H, W = 60, 80
    R = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # OpenCV axes: x right, y down (-z), z forward (+y)
    R = np.array([[1, 0, 0], [0, math.cos(0.3), -math.sin(0.3)], [0, math.sin(0.3), math.cos(0.3)]]) @ R  # tilt down
    c = np.array([0.0, 0.0, 1.6])
    w2c = np.eye(4)
    w2c[:3, :3], w2c[:3, 3] = R, -R @ c
    K = np.array([[60.0, 0, W / 2], [0, 60.0, H / 2], [0, 0, 1]])
    box = convex_hull(np.array([[x, y, z] for x in (-0.6, 0.6) for y in (3.0, 4.5) for z in (0.0, 1.0)]))
    free_xy, _ = choose_spot(_flat(), w2c[None], K[None], H, W, np.full((H, W), np.inf), np.zeros((H, W)))
    xy, info = choose_spot(_flat([box]), w2c[None], K[None], H, W, np.full((H, W), np.inf), np.zeros((H, W)))
    assert 3.0 < free_xy[1] < 4.5 and abs(free_xy[0]) < 0.3  # without the hull: ahead, where the hull will be
    assert info["method"] == "auto" and info["frames_in_view"] == 1.0
    gap = np.hypot(max(-0.6 - xy[0], 0, xy[0] - 0.6), max(3.0 - xy[1], 0, xy[1] - 4.5))
    assert gap > 0.45  # clear of the hull by the robot's radius
