"""Gaussian set operations: quaternion maths, covariances, pruning, merging, transforms."""

from __future__ import annotations

import math

import pytest
import torch

from lyra.gaussians import (
    SH_C0,
    GaussianError,
    Gaussians,
    covariances,
    merge,
    num_kept,
    prune_by_opacity,
    prune_by_opacity_ratio,
    quat_multiply,
    quat_to_rotmat,
    rotate_sh,
    rotmat_to_quat,
    sh_basis,
    transform,
)

F64 = torch.float64
S = math.sqrt(0.5)
RZ90 = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=F64)
QZ90 = torch.tensor([S, 0.0, 0.0, S], dtype=F64)


def make(n: int = 5, degree: int | None = None, times: bool = False, dtype=F64, seed: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.rand(*s, generator=gen, dtype=dtype)  # noqa: E731
    kw = {}
    if degree is None:
        kw["colors"] = r(n, 3)
    else:
        kw["sh"] = r(n, (degree + 1) ** 2, 3) - 0.5
    return Gaussians(
        means=r(n, 3) * 4 - 2,
        quats=r(n, 4) - 0.5,
        scales=r(n, 3) * 0.1 + 0.01,
        opacities=r(n),
        times=r(n) if times else None,
        **kw,
    )


# ---------------------------------------------------------------------------------------------- quaternions


def test_quat_to_rotmat_hand_cases():
    assert torch.allclose(quat_to_rotmat(QZ90), RZ90, atol=1e-15)
    # unnormalised identity
    assert torch.equal(quat_to_rotmat(torch.tensor([2.0, 0, 0, 0], dtype=F64)), torch.eye(3, dtype=F64))
    # 180 degrees about x
    assert torch.allclose(
        quat_to_rotmat(torch.tensor([0.0, 1, 0, 0], dtype=F64)), torch.diag(torch.tensor([1.0, -1, -1], dtype=F64))
    )
    # batched shape
    assert quat_to_rotmat(torch.randn(2, 7, 4)).shape == (2, 7, 3, 3)


def test_quat_multiply_hand_cases_and_composition():
    i, j, k = torch.eye(4, dtype=F64)[1:]
    assert torch.equal(quat_multiply(i, j), k)
    assert torch.equal(quat_multiply(j, i), -k)
    assert torch.equal(quat_multiply(i, i), torch.tensor([-1.0, 0, 0, 0], dtype=F64))
    a, b = torch.randn(2, 20, 4, dtype=F64)
    assert torch.allclose(quat_to_rotmat(quat_multiply(a, b)), quat_to_rotmat(a) @ quat_to_rotmat(b), atol=1e-12)


@pytest.mark.parametrize(
    "R, q",
    [
        (torch.eye(3), [1.0, 0, 0, 0]),
        (RZ90, [S, 0, 0, S]),
        (torch.diag(torch.tensor([1.0, -1, -1])), [0.0, 1, 0, 0]),
        (torch.diag(torch.tensor([-1.0, 1, -1])), [0.0, 0, 1, 0]),
        (torch.diag(torch.tensor([-1.0, -1, 1])), [0.0, 0, 0, 1]),
    ],
)
def test_rotmat_to_quat_hand_cases(R, q):
    assert torch.allclose(rotmat_to_quat(R.to(F64)), torch.tensor(q, dtype=F64), atol=1e-12)


def test_rotmat_to_quat_inverts_quat_to_rotmat():
    q = torch.randn(500, 4, dtype=F64)
    q = q / q.norm(dim=-1, keepdim=True)
    q = torch.where(q[:, :1] < 0, -q, q)
    assert torch.allclose(rotmat_to_quat(quat_to_rotmat(q)), q, atol=1e-12)
    assert rotmat_to_quat(quat_to_rotmat(q).reshape(5, 100, 3, 3)).shape == (5, 100, 4)


def test_covariances_hand_cases():
    g = Gaussians(
        means=torch.zeros(2, 3, dtype=F64),
        quats=torch.stack([torch.tensor([1.0, 0, 0, 0], dtype=F64), QZ90]),
        scales=torch.tensor([[1.0, 2.0, 3.0]] * 2, dtype=F64),
        opacities=torch.ones(2, dtype=F64),
        colors=torch.zeros(2, 3, dtype=F64),
    )
    cov = covariances(g)
    assert torch.allclose(cov[0], torch.diag(torch.tensor([1.0, 4.0, 9.0], dtype=F64)))
    assert torch.allclose(cov[1], torch.diag(torch.tensor([4.0, 1.0, 9.0], dtype=F64)), atol=1e-12)


# ---------------------------------------------------------------------------------------------- pruning


def _with_opacities(op: list[float]) -> Gaussians:
    n = len(op)
    g = make(n)
    g.opacities = torch.tensor(op, dtype=F64)
    g.means = torch.arange(n, dtype=F64)[:, None].repeat(1, 3)  # mean x = original index
    return g


def test_num_kept():
    assert num_kept(10_222_080, 0.8) == 2_044_416  # method Appendix A
    assert num_kept(10, 0.9) == 1  # 10 * (1 - 0.9) = 0.99999... in floating point
    assert num_kept(5, 0.5) == 2
    assert num_kept(7, 0.0) == 7 and num_kept(7, 1.0) == 0 and num_kept(0, 0.8) == 0
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(GaussianError):
            num_kept(5, bad)


def test_prune_by_opacity_ratio_keeps_most_opaque_in_original_order():
    g = _with_opacities([0.1, 0.9, 0.5, 0.95, 0.3])
    out = prune_by_opacity_ratio(g, 0.6)  # keep floor(5 * 0.4) = 2
    assert out.means[:, 0].tolist() == [1.0, 3.0]
    assert prune_by_opacity_ratio(g, 0.5).means[:, 0].tolist() == [1.0, 3.0]  # floor(2.5) = 2
    assert prune_by_opacity_ratio(g, 0.4).means[:, 0].tolist() == [1.0, 2.0, 3.0]
    assert len(prune_by_opacity_ratio(g, 1.0)) == 0
    assert prune_by_opacity_ratio(g, 0.0) is g


def test_prune_by_opacity_ratio_ties_are_deterministic():
    g = _with_opacities([0.5, 0.2, 0.5, 0.5, 0.5, 0.2])
    out = prune_by_opacity_ratio(g, 0.5)  # keep 3 of the four 0.5s: lowest indices win
    assert out.means[:, 0].tolist() == [0.0, 2.0, 3.0]


def test_prune_by_opacity():
    g = _with_opacities([0.001, 0.005, 0.5, 0.004])
    assert prune_by_opacity(g, 0.005).means[:, 0].tolist() == [1.0, 2.0]


# ---------------------------------------------------------------------------------------------- merge


def test_merge_colors_and_times():
    a, b = make(3, times=True, seed=1), make(4, times=True, seed=2)
    m = merge([a, b])
    assert len(m) == 7 and m.sh is None
    assert torch.equal(m.colors, torch.cat([a.colors, b.colors]))
    assert torch.equal(m.times, torch.cat([a.times, b.times]))
    assert torch.equal(m.quats[3:], b.quats)


def test_merge_converts_rgb_to_sh_of_the_common_degree():
    a, b = make(3, seed=1), make(4, degree=3, seed=2)
    m = merge([a, b])
    assert m.sh_degree == 3 and m.colors is None
    assert torch.allclose(m.sh[:3, 0], (a.colors - 0.5) / SH_C0)
    assert torch.equal(m.sh[:3, 1:], torch.zeros(3, 15, 3, dtype=F64))
    assert torch.allclose(m.rgb()[:3], a.colors)
    assert torch.equal(m.sh[3:], b.sh)


def test_merge_errors():
    with pytest.raises(GaussianError, match="SH degrees differ"):
        merge([make(2, degree=0), make(2, degree=3)])
    with pytest.raises(GaussianError, match="times"):
        merge([make(2, times=True), make(2)])
    with pytest.raises(GaussianError, match="at least one"):
        merge([])
    single = make(2)
    assert merge([single]) is single


# ---------------------------------------------------------------------------------------------- transform


def test_transform_hand_case():
    g = Gaussians(
        means=torch.tensor([[1.0, 0.0, 0.0]], dtype=F64),
        quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=F64),
        scales=torch.tensor([[0.1, 0.2, 0.3]], dtype=F64),
        opacities=torch.tensor([0.7], dtype=F64),
        colors=torch.tensor([[0.2, 0.4, 0.6]], dtype=F64),
        times=torch.tensor([0.5], dtype=F64),
    )
    out = transform(g, RZ90, torch.tensor([1.0, 2.0, 3.0], dtype=F64), scale=2.0)
    assert torch.allclose(out.means, torch.tensor([[1.0, 4.0, 3.0]], dtype=F64))
    assert torch.allclose(out.quats, QZ90[None])
    assert torch.allclose(out.scales, torch.tensor([[0.2, 0.4, 0.6]], dtype=F64))
    assert torch.equal(out.opacities, g.opacities) and torch.equal(out.colors, g.colors)
    assert torch.equal(out.times, g.times)


def test_transform_covariances_and_dtype():
    g = make(20, degree=3, dtype=torch.float32)
    R = quat_to_rotmat(torch.tensor([0.3, -0.2, 0.8, 0.1], dtype=F64))
    t = torch.tensor([0.5, -1.0, 2.0])
    out = transform(g, R, t, scale=1.5)
    assert out.means.dtype == torch.float32 and out.sh.dtype == torch.float32
    Rf = R.float()
    expect = 1.5**2 * Rf @ covariances(g) @ Rf.T
    assert torch.allclose(covariances(out), expect, atol=1e-6)
    assert torch.allclose(out.means, 1.5 * g.means @ Rf.T + t, atol=1e-6)
    assert torch.equal(out.sh[:, 0], g.sh[:, 0])  # DC is rotation invariant


def test_sh_rotation_degree1_hand_case():
    # basis band 1 is (-C1 y, C1 z, -C1 x). f(d) = -C1 y; rotated by 90 deg about z: f'(d) = f(R^T d) = C1 x,
    # i.e. coefficient -1 on the third band-1 function.
    sh = torch.zeros(1, 4, 3, dtype=F64)
    sh[0, 1] = 1.0
    out = rotate_sh(sh, RZ90)
    expect = torch.zeros(1, 4, 3, dtype=F64)
    expect[0, 3] = -1.0
    assert torch.allclose(out, expect, atol=1e-12)


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_sh_rotation_preserves_rendered_colour(degree):
    g = make(6, degree=degree)
    R = quat_to_rotmat(torch.tensor([0.9, 0.3, -0.5, 0.2], dtype=F64))
    out = transform(g, R, torch.zeros(3, dtype=F64))
    d = torch.randn(50, 3, dtype=F64)
    d = d / d.norm(dim=-1, keepdim=True)
    before = torch.einsum("mk,nkc->nmc", sh_basis(d, degree), g.sh)
    after = torch.einsum("mk,nkc->nmc", sh_basis(d @ R.T, degree), out.sh)  # colour seen along R d
    assert torch.allclose(before, after, atol=1e-12)
    # and rotating back recovers the coefficients
    back = transform(out, R.T, torch.zeros(3, dtype=F64))
    assert torch.allclose(back.sh, g.sh, atol=1e-12)


def test_transform_errors():
    g = make(2)
    with pytest.raises(GaussianError, match="reflection"):
        transform(g, torch.diag(torch.tensor([1.0, 1.0, -1.0])), torch.zeros(3))
    with pytest.raises(GaussianError, match="orthonormal"):
        transform(g, 2 * torch.eye(3), torch.zeros(3))
    with pytest.raises(GaussianError, match="scale"):
        transform(g, torch.eye(3), torch.zeros(3), scale=0.0)
    with pytest.raises(GaussianError, match=r"\[3, 3\]"):
        transform(g, torch.eye(4), torch.zeros(3))
