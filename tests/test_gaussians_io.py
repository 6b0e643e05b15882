"""Gaussian file I/O: PLY (bit-exact, standard 3DGS layout, robust loading) and SPZ (through gsply)."""

from __future__ import annotations

import math

import gsply
import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

import lyra.gaussians.ply as ply_mod
from lyra.gaussians import (
    SH_C0,
    GaussianError,
    Gaussians,
    PlyFormatError,
    SpzFormatError,
    load_gaussians,
    load_ply,
    load_spz,
    save_gaussians,
    save_ply,
    save_spz,
)

F64 = torch.float64


def make(n: int = 50, degree: int | None = None, times: bool = False, dtype=F64, seed: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.rand(*s, generator=gen, dtype=dtype)  # noqa: E731
    kw = {}
    if degree is None:
        kw["colors"] = r(n, 3)
    else:
        kw["sh"] = (r(n, (degree + 1) ** 2, 3) - 0.5) * 1.6
    q = r(n, 4) - 0.5
    return Gaussians(
        means=r(n, 3) * 8 - 4,
        quats=q / q.norm(dim=-1, keepdim=True),
        scales=torch.exp(r(n, 3) * 6 - 7),
        opacities=r(n) * 0.98 + 0.01,
        times=r(n) if times else None,
        **kw,
    )


def ply_fields(path) -> tuple[list[str], np.ndarray]:
    data = PlyData.read(str(path))["vertex"].data
    return list(data.dtype.names), np.asarray(data)


def write_raw_ply(path, columns: dict[str, np.ndarray], text: bool = False, **extra_elements) -> None:
    arr = np.empty(len(next(iter(columns.values()))), dtype=[(k, v.dtype) for k, v in columns.items()])
    for k, v in columns.items():
        arr[k] = v
    elements = [PlyElement.describe(arr, "vertex")]
    PlyData(elements, text=text).write(str(path))


def standard_columns(n: int = 4, dtype=np.float64, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    cols = {name: rng.uniform(-1, 1, n).astype(dtype) for name in ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2")}
    cols["opacity"] = rng.uniform(-3, 3, n).astype(dtype)
    for i in range(3):
        cols[f"scale_{i}"] = rng.uniform(-6, -1, n).astype(dtype)
    for i in range(4):
        cols[f"rot_{i}"] = rng.uniform(0.1, 1, n).astype(dtype)
    return cols


# ---------------------------------------------------------------------------------------------- PLY: layout


def test_ply_layout_sh3_is_standard_3dgs(tmp_path):
    g = make(7, degree=3)
    path = tmp_path / "g.ply"
    save_ply(path, g)
    names, data = ply_fields(path)
    expect = (
        ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        + [f"f_rest_{i}" for i in range(45)]
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    )
    assert names == expect
    assert all(data.dtype[nm] == np.dtype("<f4") for nm in names)
    ply = PlyData.read(str(path))
    assert not ply.text and ply.byte_order == "<" and [e.name for e in ply.elements] == ["vertex"]
    assert np.all(data["nx"] == 0) and np.all(data["nz"] == 0)
    # f_rest is channel-major: all R rest coefficients, then G, then B
    for c in range(3):
        for k in range(1, 16):
            assert np.array_equal(data[f"f_rest_{c * 15 + k - 1}"], g.sh[:, k, c].numpy().astype(np.float32))
    assert np.array_equal(data["f_dc_1"], g.sh[:, 0, 1].numpy().astype(np.float32))
    assert np.array_equal(data["rot_0"], g.quats[:, 0].numpy().astype(np.float32))


def test_ply_pre_activation_hand_values(tmp_path):
    g = Gaussians(
        means=torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]),
        quats=torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0]]),
        scales=torch.tensor([[math.e, 1.0, math.exp(-3)], [1.0, 1.0, 1.0]]),
        opacities=torch.tensor([0.5, 0.25]),
        colors=torch.tensor([[0.5, 1.0, 0.0], [0.5, 0.5, 0.5]]),
    )
    path = tmp_path / "h.ply"
    save_ply(path, g, normals=False)
    names, d = ply_fields(path)
    assert names == ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity"] + [f"scale_{i}" for i in range(3)] + [
        f"rot_{i}" for i in range(4)
    ]  # degree 0, no normals: exactly the official Lyra layout
    assert d["opacity"].tolist() == pytest.approx([0.0, math.log(1 / 3)], abs=1e-7)
    assert [d["scale_0"][0], d["scale_1"][0], d["scale_2"][0]] == pytest.approx([1.0, 0.0, -3.0], abs=1e-6)
    assert [d["f_dc_0"][0], d["f_dc_1"][0], d["f_dc_2"][0]] == pytest.approx([0.0, 0.5 / SH_C0, -0.5 / SH_C0])
    assert [d[f"rot_{i}"][1] for i in range(4)] == [0.0, 0.0, 0.0, 2.0]  # stored as held


def test_ply_opacity_clamped_before_logit(tmp_path):
    g = make(2)
    g.opacities = torch.tensor([0.0, 1.0], dtype=F64)
    save_ply(tmp_path / "c.ply", g)
    _, d = ply_fields(tmp_path / "c.ply")
    lim = math.log((1 - 1e-6) / 1e-6)
    assert d["opacity"].tolist() == pytest.approx([-lim, lim], rel=1e-6)


def test_ply_pad_sh3_gives_45_zero_f_rest(tmp_path):
    g = make(5)
    save_ply(tmp_path / "p.ply", g, pad_sh3=True)
    names, d = ply_fields(tmp_path / "p.ply")
    rest = [nm for nm in names if nm.startswith("f_rest_")]
    assert rest == [f"f_rest_{i}" for i in range(45)]
    assert all(np.all(d[nm] == 0) for nm in rest)
    back = load_ply(tmp_path / "p.ply", dtype=F64)
    assert back.sh_degree == 3 and torch.allclose(back.rgb(), g.colors, atol=1e-6)


def test_ply_sh_degree_choices(tmp_path):
    # degree 1 / 2 are zero-padded to 3 (only 0 and 3 are written)
    g1 = make(4, degree=1)
    save_ply(tmp_path / "d1.ply", g1)
    back = load_ply(tmp_path / "d1.ply", dtype=F64)
    assert back.sh_degree == 3
    assert torch.allclose(back.sh[:, :4], g1.sh, atol=1e-6) and torch.all(back.sh[:, 4:] == 0)
    # explicit truncation to degree 0
    g3 = make(4, degree=3)
    save_ply(tmp_path / "d0.ply", g3, sh_degree=0)
    names, _ = ply_fields(tmp_path / "d0.ply")
    assert not any(nm.startswith("f_rest") for nm in names)
    with pytest.raises(GaussianError, match="degree 0 or 3"):
        save_ply(tmp_path / "x.ply", g3, sh_degree=2)
    with pytest.raises(GaussianError, match="pad_sh3"):
        save_ply(tmp_path / "x.ply", g1, sh_degree=0, pad_sh3=True)


def test_ply_refuses_invalid_values(tmp_path):
    g = make(3)
    g.means[1, 2] = float("nan")
    with pytest.raises(GaussianError, match="means"):
        save_ply(tmp_path / "n.ply", g)
    assert not (tmp_path / "n.ply").exists()


# ---------------------------------------------------------------------------------------------- PLY: round trips


@pytest.mark.parametrize("degree", [None, 0, 3])
def test_ply_round_trip_values(tmp_path, degree):
    g = make(40, degree=degree, times=True)
    save_ply(tmp_path / "r.ply", g)
    back = load_ply(tmp_path / "r.ply")
    assert back.means.dtype == torch.float32 and back.sh is not None and back.colors is None
    assert back.sh_degree == (degree or 0)
    f32 = dict(rtol=1e-6, atol=1e-6)
    assert torch.allclose(back.means.double(), g.means, **f32)
    assert torch.allclose(back.scales.double(), g.scales, rtol=1e-5)
    assert torch.allclose(back.opacities.double(), g.opacities, **f32)
    assert torch.allclose(back.quats.double(), g.quats, **f32)
    assert torch.allclose(back.times.double(), g.times, **f32)
    assert torch.allclose(back.rgb().double(), g.rgb(), **f32)
    if degree:
        assert torch.allclose(back.sh.double(), g.sh, **f32)


@pytest.mark.parametrize("degree", [None, 3])
def test_ply_round_trip_is_bit_exact_on_stored_fields(tmp_path, degree):
    g = make(200, degree=degree, times=True, seed=3)
    a, b, c = tmp_path / "a.ply", tmp_path / "b.ply", tmp_path / "c.ply"
    save_ply(a, g)
    save_ply(b, load_ply(a, dtype=F64))
    assert a.read_bytes() == b.read_bytes()
    # fields without an activation survive even float32 memory bit for bit
    save_ply(c, load_ply(a))
    (_, da), (_, dc) = ply_fields(a), ply_fields(c)
    exact = ["x", "y", "z", "f_dc_0", "f_dc_2", "rot_0", "rot_3", "time"] + (["f_rest_44"] if degree else [])
    for nm in exact:
        assert np.array_equal(da[nm], dc[nm]), nm
    for nm in ("opacity", "scale_0"):
        np.testing.assert_allclose(dc[nm], da[nm], rtol=1e-5, atol=1e-6)


def test_ply_round_trip_of_independent_file_is_bit_exact(tmp_path):
    cols = standard_columns(30, dtype=np.float32)
    for i in range(45):
        cols[f"f_rest_{i}"] = np.random.default_rng(i).normal(0, 0.3, 30).astype(np.float32)
    write_raw_ply(tmp_path / "src.ply", cols)
    save_ply(tmp_path / "out.ply", load_ply(tmp_path / "src.ply", dtype=F64), normals=False)
    _, d = ply_fields(tmp_path / "out.ply")
    for nm, v in cols.items():
        assert np.array_equal(d[nm], v), nm


def test_ply_empty_set(tmp_path):
    g = make(0, degree=3)
    save_ply(tmp_path / "e.ply", g)
    back = load_ply(tmp_path / "e.ply")
    assert len(back) == 0 and back.sh_degree == 3


def test_ply_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "keep.ply"
    save_ply(path, make(3))
    before = path.read_bytes()

    def boom(self, stream):
        with open(stream, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ply_mod.PlyData, "write", boom)
    with pytest.raises(OSError, match="disk full"):
        save_ply(path, make(5, seed=9))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.ply"]  # no temp file left


# ---------------------------------------------------------------------------------------------- PLY: foreign files


def test_ply_loads_independent_layout_float64_shuffled(tmp_path):
    cols = standard_columns(6, dtype=np.float64)
    order = ["rot_2", "opacity", "z", "f_dc_1", "scale_2", "x", "rot_0", "f_dc_0", "scale_0"]
    order += ["y", "rot_3", "f_dc_2", "scale_1", "rot_1"]
    shuffled = {k: cols[k] for k in order}
    shuffled["red"] = np.arange(6, dtype=np.uint8)  # unrelated extra property, ignored
    write_raw_ply(tmp_path / "f.ply", shuffled)
    g = load_ply(tmp_path / "f.ply", dtype=F64)
    assert g.sh.shape == (6, 1, 3)
    assert torch.allclose(g.means, torch.tensor(np.stack([cols["x"], cols["y"], cols["z"]], -1)))
    assert torch.allclose(g.opacities, torch.sigmoid(torch.tensor(cols["opacity"])))
    assert torch.allclose(g.scales[:, 2], torch.exp(torch.tensor(cols["scale_2"])))
    assert torch.allclose(g.sh[:, 0, 1], torch.tensor(cols["f_dc_1"]))
    assert torch.allclose(g.quats[:, 3], torch.tensor(cols["rot_3"]))


def test_ply_loads_ascii_and_f_rest_channel_major(tmp_path):
    cols = standard_columns(3, dtype=np.float32)
    for i in range(9):  # degree 1: 3 rest coefficients per channel
        cols[f"f_rest_{i}"] = np.full(3, 10.0 * (i // 3) + (i % 3) + 1, dtype=np.float32)
    write_raw_ply(tmp_path / "a.ply", cols, text=True)
    g = load_ply(tmp_path / "a.ply")
    assert g.sh_degree == 1
    assert g.sh[0, 1:].tolist() == [[1.0, 11.0, 21.0], [2.0, 12.0, 22.0], [3.0, 13.0, 23.0]]


def test_ply_loads_big_endian_with_extra_list_element(tmp_path):
    cols = standard_columns(5, dtype=np.float32)
    arr = np.empty(5, dtype=[(k, ">f4") for k in cols])
    for k, v in cols.items():
        arr[k] = v
    faces = np.empty(2, dtype=[("vertex_indices", "O")])
    faces["vertex_indices"] = [np.array([0, 1, 2], dtype=np.int32), np.array([2, 3, 4], dtype=np.int32)]
    elements = [PlyElement.describe(arr, "vertex"), PlyElement.describe(faces, "face")]
    PlyData(elements, byte_order=">").write(str(tmp_path / "be.ply"))
    g = load_ply(tmp_path / "be.ply")
    assert np.array_equal(g.means[:, 1].numpy(), cols["y"]) and np.array_equal(g.sh[:, 0, 2].numpy(), cols["f_dc_2"])


def test_ply_time_property_round_trip(tmp_path):
    g = make(5, times=True)
    save_ply(tmp_path / "t.ply", g)
    names, _ = ply_fields(tmp_path / "t.ply")
    assert names[-1] == "time"
    assert torch.allclose(load_ply(tmp_path / "t.ply").times.double(), g.times, atol=1e-7)


# ---------------------------------------------------------------------------------------------- PLY: malformed


def _bad_file(tmp_path, mutate) -> str:
    cols = standard_columns(4)
    mutate(cols)
    path = tmp_path / "bad.ply"
    write_raw_ply(path, cols)
    return path


def test_ply_missing_field_is_named(tmp_path):
    path = _bad_file(tmp_path, lambda c: c.pop("scale_1"))
    with pytest.raises(PlyFormatError, match=r"bad\.ply.*'scale_1'"):
        load_ply(path)
    path = _bad_file(tmp_path, lambda c: c.pop("f_dc_0"))
    with pytest.raises(PlyFormatError, match="'f_dc_0'"):
        load_ply(path)


def test_ply_wrong_f_rest_count(tmp_path):
    path = _bad_file(tmp_path, lambda c: c.update({f"f_rest_{i}": np.zeros(4) for i in range(10)}))
    with pytest.raises(PlyFormatError, match="f_rest"):
        load_ply(path)
    path = _bad_file(tmp_path, lambda c: c.update({f"f_rest_{i}": np.zeros(4) for i in range(6)}))
    with pytest.raises(PlyFormatError, match="6 f_rest"):
        load_ply(path)


def test_ply_wrong_property_types(tmp_path):
    path = _bad_file(tmp_path, lambda c: c.update(opacity=np.arange(4, dtype=np.int32)))
    with pytest.raises(PlyFormatError, match="'opacity'.*int32"):
        load_ply(path)
    # a list property where a scalar is expected
    cols = standard_columns(2)
    cols.pop("rot_2")
    arr = np.empty(2, dtype=[(k, "f8") for k in cols] + [("rot_2", "O")])
    for k, v in cols.items():
        arr[k] = v
    arr["rot_2"] = [np.array([1.0, 2.0]), np.array([3.0])]
    PlyData([PlyElement.describe(arr, "vertex")]).write(str(tmp_path / "list.ply"))
    with pytest.raises(PlyFormatError, match="'rot_2' is a list property"):
        load_ply(tmp_path / "list.ply")


def test_ply_nan_is_named(tmp_path):
    path = _bad_file(tmp_path, lambda c: c["scale_1"].__setitem__(2, np.nan))
    with pytest.raises(PlyFormatError, match=r"'scale_1'.*NaN.*\[2\]"):
        load_ply(path)


def test_ply_invalid_activated_values_name_the_file(tmp_path):
    path = _bad_file(tmp_path, lambda c: [c[f"rot_{i}"].__setitem__(0, 0.0) for i in range(4)])
    with pytest.raises(PlyFormatError, match=r"bad\.ply.*zero-length"):
        load_ply(path)


def test_ply_truncated_garbage_empty_and_missing(tmp_path):
    good = tmp_path / "good.ply"
    save_ply(good, make(20, degree=3))
    raw = good.read_bytes()
    for name, content in [
        ("trunc.ply", raw[: len(raw) - 100]),
        ("header_only.ply", raw[: raw.index(b"end_header")]),
        ("garbage.ply", bytes(range(256)) * 4),
        ("empty.ply", b""),
    ]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(PlyFormatError, match=name.replace(".", r"\.")):
            load_ply(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="nope"):
        load_ply(tmp_path / "nope.ply")


def test_ply_without_vertex_element(tmp_path):
    arr = np.zeros(3, dtype=[("x", "f4")])
    PlyData([PlyElement.describe(arr, "face")]).write(str(tmp_path / "nv.ply"))
    with pytest.raises(PlyFormatError, match="no 'vertex' element"):
        load_ply(tmp_path / "nv.ply")


# ---------------------------------------------------------------------------------------------- SPZ

# quantisation steps of the format (see lyra/gaussians/spz.py)
POS_TOL = 0.5 / 4096 + 1e-6
ALPHA_TOL = 0.5 / 255 + 1e-6
RGB_TOL = SH_C0 * 0.5 / (0.15 * 255) + 1e-6
LOG_SCALE_TOL = 1 / 32 + 1e-6
SH_REST_TOL = 0.5 / 128 + 1e-6
QUAT_TOL = 2e-3


def quat_close(a: torch.Tensor, b: torch.Tensor) -> bool:
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    err = torch.minimum((a - b).abs().amax(-1), (a + b).abs().amax(-1))
    return bool((err <= QUAT_TOL).all())


@pytest.mark.parametrize("degree", [None, 1, 3])
def test_spz_round_trip_within_tolerances(tmp_path, degree):
    g = make(300, degree=degree, seed=5)
    if degree:
        g.sh[:, 1:] = g.sh[:, 1:].clamp(-0.99, 0.99)
    path = tmp_path / "g.spz"
    save_spz(path, g)
    back = load_spz(path, dtype=F64)
    assert back.sh_degree == (degree or 0)
    assert (back.means - g.means).abs().max() <= POS_TOL
    assert (back.opacities - g.opacities).abs().max() <= ALPHA_TOL
    assert (back.rgb() - g.rgb()).abs().max() <= RGB_TOL
    assert (back.scales.log() - g.scales.log()).abs().max() <= LOG_SCALE_TOL
    assert quat_close(back.quats, g.quats)
    if degree:
        assert (back.sh[:, 1:] - g.sh[:, 1:]).abs().max() <= SH_REST_TOL


def test_spz_large_extent_lowers_fractional_bits(tmp_path):
    g = make(20)
    g.means[0] = torch.tensor([5000.0, -3000.0, 10.0], dtype=F64)
    save_spz(tmp_path / "big.spz", g)
    back = load_spz(tmp_path / "big.spz", dtype=F64)
    assert (back.means - g.means).abs().max() <= 0.5 / 1024 + 1e-6  # 10 fractional bits fit ±8192


def test_spz_file_from_gsply_writer_loads(tmp_path):
    n = 16
    rng = np.random.default_rng(0)
    means = rng.uniform(-2, 2, (n, 3)).astype(np.float32)
    log_scales = rng.uniform(-6, -1, (n, 3)).astype(np.float32)
    q = rng.normal(size=(n, 4)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    logits = rng.uniform(-3, 3, n).astype(np.float32)
    sh0 = rng.uniform(-1.5, 1.5, (n, 3)).astype(np.float32)
    shN = rng.uniform(-0.9, 0.9, (n, 15, 3)).astype(np.float32)  # noqa: N806
    data = gsply.GSData.from_arrays(means, log_scales, q, logits, sh0, shN, format="ply")
    gsply.write_spz(tmp_path / "theirs.spz", data)
    g = load_spz(tmp_path / "theirs.spz", dtype=F64)
    t = lambda a: torch.tensor(a, dtype=F64)  # noqa: E731
    assert g.sh_degree == 3
    assert (g.means - t(means)).abs().max() <= POS_TOL
    assert (g.scales.log() - t(log_scales)).abs().max() <= LOG_SCALE_TOL
    assert (g.opacities - torch.sigmoid(t(logits))).abs().max() <= ALPHA_TOL
    assert (g.sh[:, 0] - t(sh0)).abs().max() <= 0.5 / (0.15 * 255) + 1e-6
    assert (g.sh[:, 1:] - t(shN)).abs().max() <= SH_REST_TOL
    assert quat_close(g.quats, t(q))  # wxyz in memory, as gsply's arrays


def test_spz_file_from_us_reads_in_gsply(tmp_path):
    g = make(30, degree=3, seed=7)
    g.sh[:, 1:] = g.sh[:, 1:].clamp(-0.99, 0.99)
    save_spz(tmp_path / "ours.spz", g)
    data = gsply.read_spz(tmp_path / "ours.spz")
    assert np.abs(data.means - g.means.numpy()).max() <= POS_TOL
    assert np.abs(data.scales - g.scales.log().numpy()).max() <= LOG_SCALE_TOL
    assert np.abs(1 / (1 + np.exp(-data.opacities)) - g.opacities.numpy()).max() <= ALPHA_TOL
    assert np.abs(data.sh0 - g.sh[:, 0].numpy()).max() <= 0.5 / (0.15 * 255) + 1e-6
    assert np.abs(data.shN - g.sh[:, 1:].numpy()).max() <= SH_REST_TOL
    assert quat_close(torch.tensor(data.quats, dtype=F64), g.quats)


def test_spz_refuses_times_and_reports_bad_files(tmp_path):
    with pytest.raises(GaussianError, match="time"):
        save_spz(tmp_path / "t.spz", make(3, times=True))
    with pytest.raises(FileNotFoundError, match="missing"):
        load_spz(tmp_path / "missing.spz")
    save_spz(tmp_path / "ok.spz", make(50, degree=3))
    raw = (tmp_path / "ok.spz").read_bytes()
    save_ply(tmp_path / "a.ply", make(3))
    for name, content in [
        ("trunc.spz", raw[: len(raw) // 2]),
        ("garbage.spz", b"\x00\x01hello" * 10),
        ("empty.spz", b""),
        ("ply.spz", (tmp_path / "a.ply").read_bytes()),
    ]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(SpzFormatError, match=name.replace(".", r"\.")):
            load_spz(tmp_path / name)


# ---------------------------------------------------------------------------------------------- dispatch


def test_load_save_gaussians_dispatch(tmp_path):
    g = make(10, degree=3)
    g.sh[:, 1:] = g.sh[:, 1:].clamp(-0.99, 0.99)
    save_gaussians(tmp_path / "a.PLY", g)
    assert PlyData.read(str(tmp_path / "a.PLY"))["vertex"].count == 10
    assert torch.allclose(load_gaussians(tmp_path / "a.PLY").sh.double(), g.sh, atol=1e-6)
    save_gaussians(tmp_path / "a.spz", g)
    assert (load_gaussians(tmp_path / "a.spz").means.double() - g.means).abs().max() <= POS_TOL
    for bad in ("a.xyz", "noext"):
        with pytest.raises(GaussianError, match="unknown Gaussian file extension"):
            save_gaussians(tmp_path / bad, g)
        with pytest.raises(GaussianError, match="unknown Gaussian file extension"):
            load_gaussians(tmp_path / bad)
