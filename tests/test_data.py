"""SDG writer (layout, resume, atomicity), reader (round trip, split, sampling), safe latents, EXR depth, check."""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("OpenEXR")

from lyra.cameras import default_intrinsics, method_trajectories  # noqa: E402
from lyra.cli import data_cmd, sdg_cmd  # noqa: E402
from lyra.data import (  # noqa: E402
    MODALITIES,
    DataError,
    Layout,
    ReaderConfig,
    SamplePlan,
    SamplingConfig,
    SceneDataset,
    UnsafePickleError,
    check_dataset,
    load_numpy_pickle,
    read_depth_zip,
    split_keys,
    write_depth_zip,
)
from lyra.data.reader import crop_resize  # noqa: E402
from lyra.data.sampling import exponential_weights, plan_sample, window_plan  # noqa: E402
from lyra.data.writer import scene_complete  # noqa: E402
from lyra.generator import OracleGenerator  # noqa: E402
from lyra.pipelines.sdg import SDGConfig, run_sdg, scene_key, scene_seed  # noqa: E402
from lyra.tokenizer import CausalVAEConfig, CausalVideoVAE  # noqa: E402
from lyra.world import generate_world  # noqa: E402

TINY = CausalVAEConfig(channels=(8, 16), enc_blocks=(1, 1, 1), dec_blocks=(1, 1, 1), stats_frames=4)
H, W, T = 32, 48, 9


def _cli(module, argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="lyra")
    module.add_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(argv)
    return int(args.func(args) or 0)


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    m = CausalVideoVAE(TINY).eval()
    m.set_latent_stats(torch.randn(16, 4) * 0.1, torch.rand(16, 4) + 0.5)  # non-trivial normalisation
    return m.save_pretrained(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def tok(tok_dir) -> CausalVideoVAE:
    return CausalVideoVAE.from_pretrained(tok_dir)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tok_dir) -> Path:
    """Two scenes x six trajectories, 9 frames of 32x48, written through ``lyra sdg``."""
    out = tmp_path_factory.mktemp("sdg") / "data"
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rc = _cli(sdg_cmd, ["sdg", "--scenes", "2", "--out", str(out), "--frames", str(T), "--height", str(H),
                            "--width", str(W), "--tokenizer", str(tok_dir), "--seed", "7", "--quiet"])
    finally:
        torch.set_num_threads(n)
    assert rc == 0
    return out


# ---------------------------------------------------------------------------------------------- layout
def test_sdg_writes_the_official_layout(dataset: Path) -> None:
    L = Layout(dataset)
    assert L.views() == [0, 1, 2, 3, 4, 5]
    assert sorted(p.name for p in dataset.iterdir()) == ["0", "1", "2", "3", "4", "5", "flag"]
    keys = L.scene_keys()
    assert keys == [scene_key(7, 0), scene_key(7, 1)]
    for k in keys:
        assert scene_complete(L, k)
        for v in range(6):
            for m in MODALITIES:
                assert L.path(v, m, k).is_file(), L.path(v, m, k)
    p = L.path(2, "pose", keys[0])
    with np.load(p) as f:
        assert f["data"].shape == (T, 4, 4) and f["data"].dtype == np.float32
        assert f["inds"].dtype == np.int64 and f["inds"].tolist() == list(range(T))
    with np.load(L.path(2, "intrinsics", keys[0])) as f:
        assert f["data"].shape == (T, 4) and f["data"].dtype == np.float32
    lat = L.path(2, "latent", keys[0])
    assert zipfile.is_zipfile(lat)  # torch.save's archive, as NVIDIA writes it
    z = torch.load(lat, weights_only=False)  # what the official loader does (trusted: we wrote it)
    assert isinstance(z, np.ndarray) and z.shape == (1, 16, 2, H // 8, W // 8) and z.dtype == np.float32
    with zipfile.ZipFile(L.path(2, "depth", keys[0])) as zf:
        assert sorted(zf.namelist()) == [f"{i:05d}.exr" for i in range(T)]
    import OpenEXR

    with zipfile.ZipFile(L.path(2, "depth", keys[0])) as zf, OpenEXR.File(io.BytesIO(zf.read("00000.exr")),
                                                                            separate_channels=True) as f:
        assert f.channels()["Z"].pixels.dtype == np.float16
    assert (L.extra / "latent_stats.npz").is_file()
    assert json.loads((L.extra / "lyra_sdg.json").read_text())["config"]["frames"] == T
    assert not list(dataset.rglob("*.tmp"))


# ---------------------------------------------------------------------------------------------- reader
def test_reader_round_trip(dataset: Path, tok) -> None:
    key = scene_key(7, 1)
    s = scene_seed(7, 1)
    K = default_intrinsics(H, W)
    trajs = method_trajectories(K, H, W, T, seed=s)
    world = generate_world(s, "random")
    views = [4, 0]
    ref = OracleGenerator(world, tok).generate([trajs[v] for v in views])
    ds = SceneDataset(dataset, ReaderConfig(relative_poses=False), split="all")
    plan = SamplePlan(views, list(range(T)), [(4, 8), (4, 0), (4, 3), (0, 8), (0, 1), (0, 5)])
    sample = ds.load(key, plan=plan)
    # latents: denormalised == the tokenizer's raw latents, trajectory-major [V*T_l, C, h, w]
    raw = torch.cat([r.latents.permute(1, 0, 2, 3) for r in ref])
    assert sample.latents.shape == (2 * 2, 16, H // 8, W // 8)
    torch.testing.assert_close(sample.latents, raw, atol=1e-5, rtol=1e-5)
    # cameras equal the trajectories
    for v, c in zip(views, sample.cameras_input):
        torch.testing.assert_close(c.w2c, trajs[v].w2c, atol=1e-6, rtol=0)
        torch.testing.assert_close(c.K, trajs[v].K)
        assert (c.height, c.width) == (H, W)
    # targets: decoded teacher frames (through H.264) and exact depth (half float)
    assert sample.images_target.shape == (6, 3, H, W) and sample.depths_target.shape == (6, 1, H, W)
    for j, (v, f) in enumerate(plan.targets):
        r = ref[views.index(v)]
        # H.264 yuv420p halves chroma resolution: compare 4x4 block means (the tiny random tokenizer's noise)
        err = torch.nn.functional.avg_pool2d(sample.images_target[j] - r.frames[f], 4).abs().mean()
        assert err < 0.03
        torch.testing.assert_close(sample.depths_target[j], r.depth[f], rtol=2e-3, atol=1e-3)
        torch.testing.assert_close(sample.cameras_target.w2c[j], trajs[v].w2c[f], atol=1e-6, rtol=0)
    assert sample.target_views.tolist() == [v for v, _ in plan.targets]


def test_reader_exact_targets(dataset: Path) -> None:
    """targets 'exact' / 'both': the scene's world rendered at the target cameras, resized like the teacher's."""
    from lyra.data.layout import Layout
    from lyra.world import World

    key = scene_key(7, 0)
    plan = SamplePlan([2], list(range(T)), [(2, 8), (2, 1), (5, 4)])
    cfg = {"relative_poses": False, "target_size": (16, 24)}
    both = SceneDataset(dataset, ReaderConfig(targets="both", **cfg), split="all").load(key, plan=plan)
    exact = SceneDataset(dataset, ReaderConfig(targets="exact", **cfg), split="all").load(key, plan=plan)
    teacher = SceneDataset(dataset, ReaderConfig(**cfg), split="all").load(key, plan=plan)
    assert teacher.images_exact is None and exact.images_exact is None
    assert torch.equal(both.images_target, teacher.images_target)
    assert torch.equal(exact.images_target, both.images_exact)
    world = World.load_json(Layout(dataset).world_path(key))
    stored = SceneDataset(dataset, ReaderConfig(relative_poses=False), split="all").load(key, plan=plan)
    full = world.render(stored.cameras_target, 0.0).rgb.float().clamp(0, 1)
    want, _ = crop_resize(full, stored.cameras_target.K, (16, 24))
    torch.testing.assert_close(exact.images_target, want)
    assert (exact.images_target - teacher.images_target).abs().mean() > 1e-3  # the round trip is not exact


def test_reader_random_samples_and_relative_poses(dataset: Path) -> None:
    cfg = ReaderConfig(sampling=SamplingConfig(mode="latent", max_views=6, num_targets=4), num_test_scenes=1)
    ds = SceneDataset(dataset, cfg, split="train")
    assert len(ds) == 1
    s1, s2 = ds[0], ds[0]
    assert s1.plan == s2.plan  # deterministic per (seed, epoch, index)
    assert s1.latents.shape[0] == 2 * s1.num_views and s1.images_input is None
    assert len(s1.cameras_input) == s1.num_views
    torch.testing.assert_close(s1.cameras_input[0].w2c[0], torch.eye(4), atol=1e-6, rtol=0)
    win = SceneDataset(dataset, ReaderConfig(sampling=SamplingConfig(mode="window", input_frames=5, num_targets=3),
                                             target_size=(16, 16), load_depth=False), split="all")
    w = win[1]
    assert w.latents is None and w.images_input.shape == (5, 3, H, W) and w.num_views == 1
    assert w.images_target.shape == (3, 3, 16, 16) and w.depths_target is None
    assert w.cameras_target.height == 16


def test_split_by_key_without_leakage(dataset: Path) -> None:
    keys = [f"img_{i:04d}" for i in range(200)]
    for method in ("last", "hash"):
        train, test = split_keys(keys + keys, method, num_test=16, test_fraction=0.1)
        assert not set(train) & set(test) and sorted(train + test) == sorted(keys)
        assert test and train
    train, test = split_keys(keys, "last", num_test=16)
    assert test == keys[-16:]
    grown = split_keys(keys + [f"new_{i}" for i in range(50)], "hash", test_fraction=0.1)[1]
    assert set(grown) & set(keys) == set(split_keys(keys, "hash", test_fraction=0.1)[1])  # stable as data grows
    tr = SceneDataset(dataset, ReaderConfig(num_test_scenes=1), split="train").keys
    te = SceneDataset(dataset, ReaderConfig(num_test_scenes=1), split="test").keys
    assert tr == [scene_key(7, 0)] and te == [scene_key(7, 1)]
    with pytest.raises(DataError, match="split is empty"):
        SceneDataset(dataset, ReaderConfig(num_test_scenes=16), split="train")


def test_reader_errors_name_the_file(dataset: Path, tmp_path: Path) -> None:
    d = tmp_path / "copy"
    shutil.copytree(dataset, d)
    (d / "flag" / "latent_stats.npz").unlink()
    ds = SceneDataset(d, ReaderConfig(), split="all")
    with pytest.raises(DataError, match="latent_stats.npz.*mean_std.pt"):
        ds[0]
    ds = SceneDataset(d, ReaderConfig(stats=str(dataset / "flag" / "latent_stats.npz")), split="all")
    ds[0]  # an explicit stats path works (NVIDIA's data)
    missing = d / "3" / "pose" / f"{scene_key(7, 0)}.npz"
    missing.unlink()
    plan = plan_sample(SamplingConfig(num_views=1), np.random.default_rng(0), [3], T)
    with pytest.raises(DataError, match=str(missing)):
        ds.load(scene_key(7, 0), plan=plan)


# ---------------------------------------------------------------------------------------------- sampling
def test_sampling_rules() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        inputs, targets = window_plan(rng, 121, 17, 9)
        s, e = inputs[0], inputs[-1]
        assert len(set(inputs)) == 17 and inputs == sorted(inputs) and 17 <= e - s <= 120
        assert len(set(targets)) == 9 and all(s <= t <= e for t in targets)
    assert window_plan(rng, 17, 17, 4)[0] == list(range(17))  # short pocket videos: all frames
    w = exponential_weights(121, 3.0)
    assert w[-1] / w[0] == pytest.approx(np.exp(3.0)) and w.sum() == pytest.approx(1.0)
    counts = np.zeros(121)
    for _ in range(300):
        p = plan_sample(SamplingConfig(num_targets=9), rng, range(6), 121)
        fr = [f for v, f in p.targets if v == p.input_views[0]]
        assert all(sorted(f for v2, f in p.targets if v2 == v) == sorted(fr) for v in p.input_views)
        assert len(p.targets) == 9 * len(p.input_views) and len(set(p.input_views)) == len(p.input_views)
        counts[fr] += 1
    assert counts[81:].sum() > 2 * counts[:40].sum()  # favours frames far from the input
    Vs = {len(plan_sample(SamplingConfig(), rng, range(6), 17).input_views) for _ in range(100)}
    assert Vs == {1, 2, 3, 4, 5, 6}
    d = plan_sample(SamplingConfig(mode="dynamic"), rng, range(12), 121)
    assert all(v < 6 for v in d.input_views) and sorted(v for v, _ in d.targets) == list(range(12))
    assert len({f for _, f in d.targets}) == 1


def test_crop_resize_intrinsics() -> None:
    img = torch.rand(2, 3, 40, 80)
    K = torch.tensor([[50.0, 0, 40], [0, 50, 20], [0, 0, 1]]).expand(2, 3, 3)
    out, K2 = crop_resize(img, K, (20, 20))
    assert out.shape == (2, 3, 20, 20)
    torch.testing.assert_close(K2[0], torch.tensor([[25.0, 0, 10], [0, 25, 10], [0, 0, 1]]))


# ---------------------------------------------------------------------------------------------- safe latents
class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_malicious_pickles(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    plain, zipped = tmp_path / "evil.pkl", tmp_path / "evil_torch.pkl"
    plain.write_bytes(pickle.dumps(_Evil(str(marker)), protocol=2))
    torch.save(_Evil(str(marker)), zipped)
    for p in (plain, zipped):
        with pytest.raises(UnsafePickleError, match=rf"{p.name}.*refused.*(posix|os)\.system"):
            load_numpy_pickle(p)
    assert not marker.exists()
    t = tmp_path / "tensor.pkl"
    torch.save(torch.zeros(3), t)
    with pytest.raises(UnsafePickleError, match="refused"):
        load_numpy_pickle(t)
    bad = tmp_path / "junk.pkl"
    bad.write_bytes(b"not a pickle at all")
    with pytest.raises(UnsafePickleError, match="junk.pkl"):
        load_numpy_pickle(bad)
    obj = tmp_path / "list.pkl"
    obj.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(UnsafePickleError, match="expected a numpy array"):
        load_numpy_pickle(obj)


def test_unpickler_reads_numpy_arrays_in_every_container(tmp_path: Path) -> None:
    a = np.random.default_rng(0).standard_normal((1, 4, 2, 3, 5)).astype(np.float32)
    paths = {"zip": tmp_path / "a.pkl", "legacy": tmp_path / "b.pkl", "pickle": tmp_path / "c.pkl",
             "numpy1": tmp_path / "d.pkl", "fortran": tmp_path / "e.pkl"}
    torch.save(a, paths["zip"])
    torch.save(a, paths["legacy"], _use_new_zipfile_serialization=False)
    paths["pickle"].write_bytes(pickle.dumps(a, protocol=4))
    # a pickle written by numpy 1.x names numpy.core.multiarray
    numpy1 = pickle.dumps(a, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    paths["numpy1"].write_bytes(numpy1)
    torch.save(np.asfortranarray(a[0, 0]), paths["fortran"])
    for name, p in paths.items():
        got = load_numpy_pickle(p)
        ref = a[0, 0] if name == "fortran" else a
        assert got.dtype == np.float32 and np.array_equal(got, ref), name


# ---------------------------------------------------------------------------------------------- EXR depth
@pytest.mark.parametrize("half", [True, False])
def test_depth_zip_float16_and_float32(tmp_path: Path, half: bool) -> None:
    d = torch.rand(3, 1, 8, 12) * 20 + 0.1
    d[0, 0, 0, 0] = 0.0
    d[1, 0, 0, 0] = float("inf")
    d[2, 0, 0, 0] = -1.0
    p = write_depth_zip(tmp_path / "d.zip", d, half=half)
    got = read_depth_zip(p)
    ref = d.half().float() if half else d.clone()
    ref[torch.isinf(ref) | (ref < 0)] = 0
    assert got.dtype == torch.float32 and got.shape == (3, 1, 8, 12)
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(read_depth_zip(p, [2, 0]), ref[[2, 0]])
    with pytest.raises(ValueError, match=r"d\.zip: frames \[5\] missing"):
        read_depth_zip(p, [5])


# ---------------------------------------------------------------------------------------------- resume
def test_resume_after_interruption(tmp_path: Path, tok, monkeypatch) -> None:
    out = tmp_path / "data"
    cfg = SDGConfig(scenes=2, seed=3, frames=1, height=H, width=W, tokenizer="tiny")
    import lyra.data.exr as exr_mod

    real_encode, calls = exr_mod.encode_exr, {"n": 0}

    def dying_encode(*a, **k):  # the process dies inside scene 1's third depth zip
        calls["n"] += 1
        if calls["n"] == 6 + 3:
            raise KeyboardInterrupt
        return real_encode(*a, **k)

    monkeypatch.setattr(exr_mod, "encode_exr", dying_encode)
    with pytest.raises(KeyboardInterrupt):
        run_sdg(cfg, out, tok, progress=False)
    L = Layout(out)
    k0, k1 = scene_key(3, 0), scene_key(3, 1)
    assert scene_complete(L, k0) and not scene_complete(L, k1) and not L.done_path(k1).exists()
    assert not L.path(2, "depth", k1).exists() and L.path(1, "depth", k1).is_file()
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*"))  # no half-written file anywhere
    assert L.scene_keys() == [k0]  # the reader never sees the partial scene
    assert any("incomplete" in str(p) for p in check_dataset(out))
    monkeypatch.setattr(exr_mod, "encode_exr", real_encode)

    before = {p: p.stat().st_mtime_ns for p in out.rglob(f"{k0}*")}
    generated = []
    real_generate = OracleGenerator.generate

    def counting(self, trajectories, source=None, *, seed=0):
        generated.append(seed)
        return real_generate(self, trajectories, source, seed=seed)

    monkeypatch.setattr(OracleGenerator, "generate", counting)
    summary = run_sdg(cfg, out, tok, progress=False)
    assert summary["skipped"] == [k0] and summary["written"] == [k1] and generated == [scene_seed(3, 1)]
    assert {p: p.stat().st_mtime_ns for p in out.rglob(f"{k0}*")} == before
    assert scene_complete(L, k1) and check_dataset(out) == []
    # a finished scene that lost a file is redone; other settings in the same folder are refused
    L.path(4, "rgb", k0).unlink()
    assert not scene_complete(L, k0)
    assert run_sdg(cfg, out, tok, progress=False)["written"] == [k0]
    with pytest.raises(DataError, match="other settings"):
        run_sdg(SDGConfig(scenes=2, seed=3, frames=9, height=H, width=W, tokenizer="tiny"), out, tok, progress=False)


def test_sdg_photo_worlds_from_heldout_photos(tmp_path: Path, tok_dir) -> None:
    from lyra.world import World, photo_names

    out = tmp_path / "photo"
    rc = _cli(sdg_cmd, ["sdg", "--kind", "photo", "--photos", "heldout", "--scenes", "1", "--out", str(out),
                        "--frames", str(T), "--height", str(H), "--width", str(W), "--tokenizer", str(tok_dir),
                        "--supersample", "2", "--quiet"])
    assert rc == 0
    assert _cli(data_cmd, ["data", "check", str(out), "--quiet"]) == 0 and check_dataset(out) == []
    L, key = Layout(out), scene_key(0, 0)
    done = json.loads(L.done_path(key).read_text())
    assert done["world_kind"] == "photo" and done["photos"] == "heldout"
    world = World.load_json(L.world_path(key))
    assert world == generate_world(scene_seed(0, 0), "photo", photos="heldout")
    assert {p.texture.photo for p in world.primitives if p.texture.kind == "image"} <= set(photo_names("heldout"))
    assert SDGConfig().kind == "mix"  # the training default mixes photo worlds in
    # anti-aliased RGB; the depth stays the exact pixel-centre ray (stored as half floats)
    assert json.loads(L.run_path.read_text())["config"]["supersample"] == 2
    trajs = method_trajectories(default_intrinsics(H, W, 60.0), H, W, T, seed=scene_seed(0, 0))
    exact = world.render(trajs[3]).depth
    assert torch.equal(read_depth_zip(L.path(3, "depth", key)), exact.half().float())


def test_sdg_resumes_a_run_made_before_the_photos_setting(tmp_path: Path, tok) -> None:
    out = tmp_path / "data"
    cfg = SDGConfig(scenes=1, seed=3, frames=1, height=H, width=W, kind="room", tokenizer="tiny")
    run_sdg(cfg, out, tok, progress=False)
    run = Layout(out).run_path
    old = json.loads(run.read_text())
    del old["config"]["photos"]
    run.write_text(json.dumps(old))
    assert run_sdg(replace(cfg, scenes=2), out, tok, progress=False)["written"] == [scene_key(3, 1)]
    with pytest.raises(DataError, match="photos"):
        run_sdg(replace(cfg, scenes=3, photos="heldout"), out, tok, progress=False)


# ---------------------------------------------------------------------------------------------- check
def test_data_check_passes_on_good_data(dataset: Path, capsys) -> None:
    assert _cli(data_cmd, ["data", "check", str(dataset), "--quiet"]) == 0
    assert "ok" in capsys.readouterr().out


def test_data_check_lists_problems_with_files(dataset: Path, tmp_path: Path, capsys) -> None:
    d = tmp_path / "bad"
    shutil.copytree(dataset, d)
    k0, k1 = scene_key(7, 0), scene_key(7, 1)
    L = Layout(d)
    L.path(2, "latent", k0).unlink()  # missing file
    rgb = L.path(1, "rgb", k0)
    rgb.write_bytes(rgb.read_bytes()[:200])  # truncated video
    with np.load(L.path(0, "pose", k1)) as f:  # frame-count mismatch
        np.savez(L.path(0, "pose", k1), data=f["data"][:5], inds=f["inds"][:5])
    with np.load(L.path(3, "intrinsics", k1)) as f:  # non-finite values
        data = f["data"].copy()
        data[2, 0] = np.nan
        np.savez(L.path(3, "intrinsics", k1), data=data, inds=f["inds"])
    L.path(5, "depth", k1).write_bytes(b"garbage")  # unreadable zip
    lat = L.path(4, "latent", k1)  # wrong latent shape
    torch.save(np.zeros((1, 16, 3, H // 8, W // 8), np.float32), lat)
    evil = L.path(1, "latent", k1)  # malicious latent
    torch.save(_Evil(str(tmp_path / "pwned")), evil)
    rc = _cli(data_cmd, ["data", "check", str(d), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 1
    expect = {
        L.path(2, "latent", k0): "missing",
        rgb: "video",
        L.path(0, "rgb", k1): "9 frames but pose has 5",
        L.path(3, "intrinsics", k1): "non-finite",
        L.path(5, "depth", k1): "zip",
        lat: "latent frames",
        evil: "refused",
    }
    lines = out.splitlines()
    for path, word in expect.items():
        assert any(line.startswith(str(path)) and word in line for line in lines), (path, word, out)
    assert not (tmp_path / "pwned").exists()
    assert sum(1 for line in lines if line.startswith(str(d))) >= len(expect)
