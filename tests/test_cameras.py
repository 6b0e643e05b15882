"""Cameras: validation, trajectories against hand-computed geometry, Plücker rays, npz round trip."""

import math

import numpy as np
import pytest
import torch

from lyra.cameras import (
    CameraError,
    Cameras,
    camera_rays,
    default_intrinsics,
    intrinsics_matrix,
    load_cameras_npz,
    look_at,
    method_trajectories,
    nominal_positions,
    orbit,
    plucker_rays,
    save_cameras_npz,
    trajectory_w2c,
)


def _identity_cams(h=4, w=6, f=10.0):
    return Cameras(torch.eye(4), intrinsics_matrix(f, f, w / 2, h / 2), h, w)


def test_validation_errors():
    K = intrinsics_matrix(10, 10, 3, 2)
    with pytest.raises(CameraError, match=r"\[N, 4, 4\]"):
        Cameras(torch.eye(3), K, 4, 6)
    bad = torch.eye(4)
    bad[0, 0] = 2.0
    with pytest.raises(CameraError, match="orthonormal"):
        Cameras(bad, K, 4, 6)
    refl = torch.diag(torch.tensor([-1.0, 1, 1, 1]))
    with pytest.raises(CameraError, match="reflection"):
        Cameras(refl, K, 4, 6)
    nan = torch.eye(4)
    nan[0, 3] = float("nan")
    with pytest.raises(CameraError, match="NaN"):
        Cameras(nan, K, 4, 6)
    with pytest.raises(CameraError, match="positive"):
        Cameras(torch.eye(4), K, 0, 6)
    with pytest.raises(CameraError, match="intrinsics"):
        Cameras(torch.eye(4).repeat(3, 1, 1), K.repeat(2, 1, 1), 4, 6)
    with pytest.raises(CameraError, match="focal"):
        Cameras(torch.eye(4), intrinsics_matrix(-1, 10, 3, 2), 4, 6)


def test_c2w_centers_and_indexing():
    w2c = look_at(torch.tensor([[1.0, -2.0, -3.0], [0.5, 0.0, -1.0]]), torch.zeros(3))
    cams = Cameras(w2c, intrinsics_matrix(50, 50, 32, 24), 48, 64)
    assert torch.allclose(cams.centers, torch.tensor([[1.0, -2.0, -3.0], [0.5, 0.0, -1.0]]), atol=1e-6)
    assert torch.allclose(cams.c2w @ cams.w2c, torch.eye(4).expand(2, 4, 4), atol=1e-5)
    assert len(cams[1]) == 1 and torch.equal(cams[1].w2c[0], w2c[1])
    assert cams.K.shape == (2, 3, 3)  # a single K is broadcast


def test_look_at_opencv_axes():
    # Looking from the origin at +z: identity rotation (x right, y down, z forward).
    w2c = look_at(torch.zeros(3), torch.tensor([0.0, 0.0, 5.0]))
    assert torch.allclose(w2c[0], torch.eye(4), atol=1e-6)
    # Looking at -x from the origin: camera z is world -x; the target lands at positive camera z.
    w2c = look_at(torch.zeros(3), torch.tensor([-3.0, 0.0, 0.0]))
    p = w2c[0] @ torch.tensor([-3.0, 0.0, 0.0, 1.0])
    assert torch.allclose(p[:3], torch.tensor([0.0, 0.0, 3.0]), atol=1e-6)


def test_resized_intrinsics():
    cams = _identity_cams(8, 16, 10.0).resized(4, 4)
    assert torch.allclose(cams.K[0], intrinsics_matrix(2.5, 5.0, 2.0, 2.0))


def test_nominal_positions_hand_computed():
    n, d = 121, 0.3
    p = nominal_positions("left", n, d)
    assert torch.allclose(p[-1], torch.tensor([-0.3 * 120 / 121, 0, 0], dtype=torch.float64))
    assert torch.allclose(nominal_positions("right", n, d)[-1, 0], torch.tensor(0.3 * 120 / 121, dtype=torch.float64))
    assert nominal_positions("up", n, d)[-1, 1] < 0  # up is -y in OpenCV
    assert nominal_positions("zoom_in", n, d)[-1, 2] > 0 and nominal_positions("zoom_out", n, d)[-1, 2] < 0
    cw = nominal_positions("clockwise", n, 0.5)
    assert torch.allclose(cw[0], torch.zeros(3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(cw[-1], torch.zeros(3, dtype=torch.float64), atol=1e-12)  # 2 full loops
    rx, ry = 0.5 * 0.15, 0.5 * 0.10
    assert math.isclose(cw[:, 0].min().item(), -2 * rx, rel_tol=1e-3)  # ellipse centred at (-rx, 0)
    assert math.isclose(cw[:, 1].max().item(), ry, rel_tol=1e-3)


def test_trajectory_matrices_official_construction():
    # "left" at 0.3 (121 frames): nominal (-0.2975, 0, 0) sits at (-0.285, 0, +0.085) (translation -p quirk).
    w2c = trajectory_w2c("left", 121, 0.3)
    cams = Cameras(w2c, default_intrinsics(16, 16), 16, 16)
    c = cams.centers[-1]
    assert abs(c[0].item() + 0.285) < 2e-3 and abs(c[1].item()) < 1e-6 and abs(c[2].item() - 0.085) < 2e-3
    # Every camera's forward axis points from its nominal position p to the look-at point (0, 0, 1).
    p = nominal_positions("left", 121, 0.3).float()
    fwd = torch.nn.functional.normalize(torch.tensor([0.0, 0.0, 1.0]) - p, dim=-1)
    assert torch.allclose(w2c[:, 2, :3], fwd, atol=1e-6)
    assert torch.allclose(w2c[:, :3, 3], -p, atol=1e-6)  # translation is -p (official construction)
    # Zoom is exact: R = I and the centre moves along z.
    z = trajectory_w2c("zoom_in", 17, 0.4)
    assert torch.allclose(z[:, :3, :3], torch.eye(3).expand(17, 3, 3))
    assert torch.allclose(Cameras(z, default_intrinsics(8, 8), 8, 8).centers[-1], torch.tensor([0, 0, 0.4 * 16 / 17]))
    # Anchor: w2c_i = M_i @ anchor.
    anchor = look_at(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([1.0, 0.0, 2.0]))[0]
    assert torch.allclose(trajectory_w2c("zoom_in", 5, 0.4, anchor_w2c=anchor)[0], anchor, atol=1e-6)


def test_method_trajectories_seeded_and_ranges():
    K = default_intrinsics(32, 48)
    a = method_trajectories(K, 32, 48, 17, seed=3)
    b = method_trajectories(K, 32, 48, 17, seed=3)
    c = method_trajectories(K, 32, 48, 17, seed=4)
    assert len(a) == 6 and all(len(t) == 17 for t in a)
    assert all(torch.equal(x.w2c, y.w2c) for x, y in zip(a, b))
    assert not torch.equal(a[0].w2c, c[0].w2c)
    # the last "left" camera's translation is -p with |p_x| = d * 16/17, d ~ U(0.2, 0.3)
    lat = a[0].w2c[-1, 0, 3].item()
    assert 0.2 * 16 / 17 <= lat <= 0.3 * 16 / 17
    big = method_trajectories(K, 32, 48, 17, seed=3, movement_factor=2.0)
    assert big[1].centers[-1].norm() > 1.9 * a[1].centers[-1].norm()
    assert torch.allclose(a[0].w2c[0], torch.eye(4))  # every trajectory starts at the anchor


def test_orbit_looks_at_target():
    cams = orbit(8, 2.0, target=(0.0, 0.0, 3.0), height=32, width=32)
    assert torch.allclose((cams.centers - torch.tensor([0.0, 0.0, 3.0])).norm(dim=-1), torch.full((8,), 2.0), atol=1e-5)
    pt = cams.w2c @ torch.tensor([0.0, 0.0, 3.0, 1.0])
    assert torch.allclose(pt[:, :2], torch.zeros(8, 2), atol=1e-5) and (pt[:, 2] > 0).all()


def test_camera_rays_hand_computed():
    cams = _identity_cams(4, 6, 10.0)
    o, d = camera_rays(cams)
    assert o.shape == (1, 3, 4, 6) and torch.allclose(o, torch.zeros_like(o))
    # pixel (u=0, v=0) centre (0.5, 0.5): direction ((0.5-3)/10, (0.5-2)/10, 1) normalised
    ref = torch.tensor([-0.25, -0.15, 1.0])
    assert torch.allclose(d[0, :, 0, 0], ref / ref.norm(), atol=1e-6)
    assert torch.allclose(d.norm(dim=1), torch.ones(1, 4, 6))


def test_plucker_moment_and_latent_resolution():
    w2c = look_at(torch.tensor([1.0, 2.0, -3.0]), torch.tensor([0.0, 0.0, 1.0]))
    cams = Cameras(w2c, intrinsics_matrix(64, 64, 32, 16), 32, 64)
    pl = plucker_rays(cams)
    assert pl.shape == (1, 6, 32, 64)
    o, d = camera_rays(cams)
    # The moment is o x d, orthogonal to d, and equal for any point on the ray.
    assert torch.allclose((pl[:, :3] * pl[:, 3:]).sum(1), torch.zeros(1, 32, 64), atol=1e-5)
    assert torch.allclose(torch.cross(o + 2.5 * d, d, dim=1), pl[:, :3], atol=1e-5)
    # Latent resolution (/8): rays through full-resolution pixel positions 8i+4.
    low = plucker_rays(cams, 4, 8)
    full_o, full_d = camera_rays(cams)
    # full-res pixel centre 8i+4 lies between full pixels 8i+3 and 8i+4 (centres 8i+3.5 and 8i+4.5)
    mid = full_d[..., 3::8, 3::8] + full_d[..., 4::8, 4::8]
    assert torch.allclose(low[:, 3:], mid / mid.norm(dim=1, keepdim=True), atol=1e-4)


def test_npz_round_trip_and_errors(tmp_path):
    cams = method_trajectories(default_intrinsics(24, 40), 24, 40, 5)[5]
    p = save_cameras_npz(tmp_path / "cams.npz", cams)
    back = load_cameras_npz(p)
    assert torch.allclose(back.w2c, cams.w2c) and torch.allclose(back.K, cams.K)
    assert (back.height, back.width) == (24, 40)
    # c2w + [fx, fy, cx, cy] rows are accepted too
    np.savez(tmp_path / "c2w.npz", c2w=cams.c2w.numpy(), K=np.array([20.0, 20.0, 20.0, 12.0]), height=24, width=40)
    alt = load_cameras_npz(tmp_path / "c2w.npz")
    assert torch.allclose(alt.w2c, cams.w2c, atol=1e-5) and alt.K.shape == (5, 3, 3)
    np.savez(tmp_path / "bad.npz", w2c=cams.w2c.numpy())
    with pytest.raises(CameraError, match="missing K, height, width"):
        load_cameras_npz(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CameraError, match="junk.npz"):
        load_cameras_npz(tmp_path / "junk.npz")
    with pytest.raises(CameraError, match="not found"):
        load_cameras_npz(tmp_path / "nope.npz")
