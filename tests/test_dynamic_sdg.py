"""Dynamic SDG (``lyra sdg --dynamic``): frame t of every trajectory shows time t, flipped folders 6-11 are exact
reversals of a generation on the time-reversed source with matching poses, and the reader reads it all back."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("OpenEXR")

from lyra.cameras import METHOD_TRAJECTORIES, Cameras, default_intrinsics, method_trajectories  # noqa: E402
from lyra.cameras.trajectories import trajectory_w2c  # noqa: E402
from lyra.cli import sdg_cmd  # noqa: E402
from lyra.data import DataError, Layout, ReaderConfig, SamplePlan, SamplingConfig, SceneDataset, check_dataset  # noqa: E402
from lyra.data.reader import read_source_video, read_video_frames  # noqa: E402
from lyra.data.sampling import normalized_times  # noqa: E402
from lyra.generator import teacher_roundtrip  # noqa: E402
from lyra.pipelines.sdg import SDGConfig, run_sdg, scene_key, scene_seed  # noqa: E402
from lyra.pipelines.sdg_dynamic import (  # noqa: E402
    DynamicSDGConfig,
    frame_times,
    generate_dynamic_scene,
    run_dynamic_sdg,
    source_cameras,
)
from lyra.tokenizer import CausalVAEConfig, CausalVideoVAE  # noqa: E402

TINY = CausalVAEConfig(channels=(8, 16), enc_blocks=(1, 1, 1), dec_blocks=(1, 1, 1), stats_frames=4)
H, W, T = 32, 48, 9


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    m = CausalVideoVAE(TINY).eval()
    m.set_latent_stats(torch.randn(16, 4) * 0.1, torch.rand(16, 4) + 0.5)
    return m.save_pretrained(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def tok(tok_dir) -> CausalVideoVAE:
    return CausalVideoVAE.from_pretrained(tok_dir)


def _cfg(**kw) -> DynamicSDGConfig:
    base = dict(scenes=1, seed=5, frames=T, height=H, width=W, kind="room")
    base.update(kw)
    return DynamicSDGConfig(**base)


@pytest.fixture(scope="module")
def room(tok):
    cfg = _cfg()
    return cfg, generate_dynamic_scene(cfg, tok, 0, keep_raw=True)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tok, room) -> Path:
    out = tmp_path_factory.mktemp("dyn") / "data"
    summary = run_dynamic_sdg(room[0], out, tok, progress=False)
    assert summary["written"] == [scene_key(5, 0)]
    return out


def _codec(frames: torch.Tensor, tmp: Path) -> torch.Tensor:
    """``frames`` after the rgb mp4's lossy codec (same writer and settings as the SDG)."""
    from lyra.render.video import write_video

    return read_video_frames(write_video(tmp / "codec.mp4", frames))


def _relative(cams: Cameras, anchors: Cameras) -> torch.Tensor:
    """[T, 4, 4] w2c_i @ c2w_anchor,i: the trajectory matrix M_i of camera i relative to its anchor."""
    return cams.w2c.double() @ anchors.c2w.double()


def _assert_shows_time(world, cams: Cameras, times: torch.Tensor, raw: torch.Tensor, depth: torch.Tensor) -> None:
    """Frame i equals the world rendered at time times[i] from camera i (RGB and depth, exactly)."""
    r = world.render(cams, times)
    torch.testing.assert_close(raw, r.rgb, atol=0, rtol=0)
    torch.testing.assert_close(depth, r.depth, atol=0, rtol=0)


# ---------------------------------------------------------------------------------------------- in memory
def test_forward_trajectories_show_time_t_from_their_camera(room, tok) -> None:
    cfg, sc = room
    times = frame_times(T)
    torch.testing.assert_close(times, torch.arange(T, dtype=torch.float64) / (T - 1))
    assert len(sc.trajectories) == 12 and [t.flipped for t in sc.trajectories] == [False] * 6 + [True] * 6
    _assert_shows_time(sc.world, sc.source.cameras, times, sc.source.frames, sc.source.depth)
    static = method_trajectories(default_intrinsics(H, W, cfg.fov_x_deg), H, W, T, seed=scene_seed(cfg.seed, 0))
    moved = 0
    for v in range(6):
        tr = sc.trajectories[v]
        # the static SDG's trajectory v, re-anchored on every source frame (sdg.md §5.3)
        torch.testing.assert_close(_relative(tr.cameras, sc.source.cameras), static[v].w2c.double(), atol=1e-5,
                                   rtol=0)
        _assert_shows_time(sc.world, tr.cameras, times, tr.raw, tr.depth)
        latents, decoded = teacher_roundtrip(tok, tr.raw)
        torch.testing.assert_close(tr.frames, decoded, atol=1e-6, rtol=0)
        torch.testing.assert_close(tr.latents, latents, atol=1e-6, rtol=0)
        # the check discriminates: the last frame rendered at time 0 differs where objects move
        moved += int((sc.world.render(tr.cameras[T - 1], 0.0).depth - tr.depth[T - 1]).abs().gt(1e-3).sum())
    assert moved > 0


def test_flipped_folders_reverse_a_generation_on_the_reversed_source(room, tok) -> None:
    cfg, sc = room
    times, src = frame_times(T), sc.source.cameras
    for v in range(6, 12):
        tr, kind = sc.trajectories[v], METHOD_TRAJECTORIES[v - 6].kind
        # the generation: trajectory v-6 with its own distance, anchored on the reversed source video
        gen = trajectory_w2c(kind, T, tr.distance, cfg.center_depth).double() @ src.w2c.flip(0).double()
        torch.testing.assert_close(tr.cameras.w2c.double(), gen.flip(0), atol=1e-5, rtol=0)  # pose i = frame i's
        torch.testing.assert_close(tr.cameras.w2c[T - 1], src.w2c[T - 1], atol=1e-6, rtol=0)  # anchored at the end
        # frame i shows time i from pose i, and the teacher ran in generation (reversed) order
        _assert_shows_time(sc.world, tr.cameras, times, tr.raw, tr.depth)
        latents, decoded = teacher_roundtrip(tok, tr.raw.flip(0))
        torch.testing.assert_close(tr.frames, decoded.flip(0), atol=1e-6, rtol=0)
        torch.testing.assert_close(tr.latents, latents, atol=1e-6, rtol=0)
    # fresh distances for the flipped runs
    assert [t.distance for t in sc.trajectories[6:]] != [t.distance for t in sc.trajectories[:6]]


@pytest.mark.parametrize("kind,motion", [("yard", "static"), ("photo", "slow")])
def test_every_world_kind_and_a_slowly_moving_source(tok, kind, motion) -> None:
    cfg = _cfg(kind=kind, source_motion=motion, flip=False, seed=2)
    sc = generate_dynamic_scene(cfg, tok, 0, keep_raw=True)
    assert len(sc.trajectories) == 6 and sc.world.kind == kind and sc.world.moving_ids
    src = sc.source.cameras
    if motion == "static":
        torch.testing.assert_close(src.w2c, torch.eye(4).expand(T, 4, 4))
    else:
        centres = src.c2w[:, :3, 3]
        step = (centres[1:] - centres[:-1]).norm(dim=-1)
        assert 0.05 <= float(centres[-1].norm()) <= 0.15 and torch.allclose(step, step[0].expand_as(step), atol=1e-5)
    _assert_shows_time(sc.world, src, frame_times(T), sc.source.frames, sc.source.depth)
    tr = sc.trajectories[5]
    _assert_shows_time(sc.world, tr.cameras, frame_times(T), tr.raw, tr.depth)


def test_cache_teacher_warps_frame_t_from_source_frame_t(tok) -> None:
    cfg = _cfg(generator="cache", seed=2)
    sc = generate_dynamic_scene(cfg, tok, 0, keep_raw=True)
    s = sc.source
    for tr, i in ((sc.trajectories[0], 0), (sc.trajectories[6], T - 1)):  # the frames at the source camera
        torch.testing.assert_close(tr.cameras.w2c[i], s.cameras.w2c[i], atol=1e-6, rtol=0)
        here = (tr.raw[i] - s.frames[i]).abs().amax(0)
        other = (tr.raw[i] - s.frames[T - 1 - i]).abs().amax(0)
        seen = tr.depth[i, 0] > 0
        assert float(here[seen].median()) < 1e-4 and float(other.max()) > 0.05


def test_source_cameras_and_config_errors() -> None:
    K = default_intrinsics(H, W)
    a, b = source_cameras(K, H, W, T, "slow", 1), source_cameras(K, H, W, T, "slow", 2)
    assert not torch.allclose(a.w2c, b.w2c) and torch.allclose(a.w2c[0], torch.eye(4))
    with pytest.raises(DataError, match="source motion"):
        source_cameras(K, H, W, T, "fast", 1)
    for bad in (dict(generator="gen3c"), dict(source_motion="fast"), dict(kind="moon"), dict(frames=1)):
        with pytest.raises(DataError):
            generate_dynamic_scene(_cfg(**bad), None, 0)


def test_normalized_times_follow_the_method() -> None:
    t_in, t_tg = normalized_times(range(T), [4])
    np.testing.assert_allclose(t_in, np.arange(T) / (T - 1))
    np.testing.assert_allclose(t_tg, [0.5])
    t_in, t_tg = normalized_times([2, 4, 6], [3, 7])  # jointly over inputs and targets
    np.testing.assert_allclose(t_in, [0.0, 0.4, 0.8])
    np.testing.assert_allclose(t_tg, [0.2, 1.0])
    assert normalized_times([3], [3])[0].tolist() == [0.0]


# ---------------------------------------------------------------------------------------------- on disk
def test_written_layout_and_check(dataset: Path, room, tmp_path: Path) -> None:
    L = Layout(dataset)
    key = scene_key(5, 0)
    assert L.views() == list(range(12)) and L.scene_keys() == [key]
    for m in ("rgb", "pose", "intrinsics", "depth"):
        assert L.source_path(m, key).is_file()
    meta = json.loads(L.done_path(key).read_text())
    assert meta["flipped_views"] == meta["latents_reversed"] == list(range(6, 12))
    np.testing.assert_allclose(meta["times"], np.arange(T) / (T - 1))
    assert meta["trajectories"][6] == "left (flipped)" and meta["moving_objects"]
    assert any(f.startswith("flag/source/") for f in meta["files"])
    run = json.loads(L.run_path.read_text())["config"]
    assert run["dynamic"] is True and run["flip"] is True and run["source_motion"] == "static"
    assert check_dataset(dataset) == []
    # the mp4s (flipped ones too) hold the teacher frames in the original time order
    for v in (0, 7, 11):
        got = read_video_frames(L.path(v, "rgb", key))
        torch.testing.assert_close(got, _codec(room[1].trajectories[v].frames, tmp_path), atol=1.5 / 255, rtol=0)
        assert (got - _codec(room[1].trajectories[v].frames.flip(0), tmp_path)).abs().max() > 0.1


def test_reader_reads_dynamic_samples_with_times(dataset: Path, room, tmp_path: Path) -> None:
    cfg, sc = room
    rc = ReaderConfig(sampling=SamplingConfig(mode="dynamic", num_views=2), targets="both", relative_poses=False,
                      num_test_scenes=0)
    ds = SceneDataset(dataset, rc, split="all")
    s = ds[0]
    assert all(v < 6 for v in s.plan.input_views) and len(s.plan.targets) == 12
    assert sorted(v for v, _ in s.plan.targets) == list(range(12))
    t_star = s.plan.targets[0][1]
    assert {f for _, f in s.plan.targets} == {t_star}
    torch.testing.assert_close(s.times_input, torch.arange(T, dtype=torch.float32) / (T - 1))
    torch.testing.assert_close(s.times_target, torch.full((12,), t_star / (T - 1)))
    # latents of the input folders, denormalised, are the teacher's raw latents
    want = torch.cat([sc.trajectories[v].latents.permute(1, 0, 2, 3) for v in s.plan.input_views])
    torch.testing.assert_close(s.latents, want, atol=1e-4, rtol=1e-4)
    for j, (v, f) in enumerate(s.plan.targets):
        tr = sc.trajectories[v]
        torch.testing.assert_close(s.cameras_target.w2c[j], tr.cameras.w2c[f], atol=1e-5, rtol=0)
        # exact targets: the world at the frame's time, from the stored pose
        assert (s.images_exact[j] - tr.raw[f]).abs().mean() < 1e-3
        torch.testing.assert_close(s.images_target[j], _codec(tr.frames, tmp_path)[f], atol=1.5 / 255, rtol=0)
        torch.testing.assert_close(s.depths_target[j], tr.depth[f], atol=5e-3, rtol=2e-3)  # half-float EXR


def test_flipped_poses_match_their_frames_on_disk(dataset: Path, room) -> None:
    """Frame i of a flipped folder, read from disk with pose i, is the world at time i seen from pose i."""
    _, sc = room
    key = scene_key(5, 0)
    ds = SceneDataset(dataset, ReaderConfig(relative_poses=False, num_test_scenes=0, targets="both"), split="all")
    for v in (6, 9, 11):
        plan = SamplePlan([0], list(range(T)), [(v, i) for i in range(T)])
        s = ds.load(key, plan=plan)
        r = sc.world.render(s.cameras_target, frame_times(T))
        torch.testing.assert_close(s.depths_target, r.depth, atol=5e-3, rtol=2e-3)
        # a pose list saved before flipping (the official script's bug) does not fit the frames
        wrong = Cameras(s.cameras_target.w2c.flip(0), s.cameras_target.K, H, W)
        assert (sc.world.render(wrong, frame_times(T)).depth - s.depths_target).abs().max() > 0.05
        # latents of flipped folders are in generation order: never inputs
        with pytest.raises(DataError, match="time-reversed"):
            ds.load(key, plan=SamplePlan([v], list(range(T)), [(v, 0)]))


def test_source_video_read_back(dataset: Path, room, tmp_path: Path) -> None:
    _, sc = room
    clip = read_source_video(dataset, scene_key(5, 0))
    torch.testing.assert_close(clip.frames, _codec(sc.source.frames, tmp_path), atol=1.5 / 255, rtol=0)
    torch.testing.assert_close(clip.cameras.w2c, sc.source.cameras.w2c, atol=1e-6, rtol=0)
    torch.testing.assert_close(clip.cameras.K, sc.source.cameras.K)
    torch.testing.assert_close(clip.depth, sc.source.depth, atol=5e-3, rtol=2e-3)
    torch.testing.assert_close(clip.times, frame_times(T).float())


def test_resume_and_static_dynamic_folders_do_not_mix(dataset: Path, tmp_path: Path, tok, room) -> None:
    cfg = room[0]
    assert run_dynamic_sdg(cfg, dataset, tok, progress=False)["skipped"] == [scene_key(5, 0)]
    with pytest.raises(DataError, match="other settings"):
        run_dynamic_sdg(replace(cfg, source_motion="slow"), dataset, tok, progress=False)
    with pytest.raises(DataError, match="dynamic SDG run"):
        run_sdg(SDGConfig(scenes=1, seed=5, frames=T, height=H, width=W, kind="room"), dataset, tok, progress=False)
    static = tmp_path / "static"
    run_sdg(SDGConfig(scenes=1, seed=5, frames=T, height=H, width=W, kind="room"), static, tok, progress=False)
    with pytest.raises(DataError, match="static SDG run"):
        run_dynamic_sdg(cfg, static, tok, progress=False)


def test_cli_sdg_dynamic_without_flip(tmp_path: Path, tok_dir) -> None:
    p = argparse.ArgumentParser(prog="lyra")
    sdg_cmd.add_parser(p.add_subparsers(dest="command"))
    out = tmp_path / "cli"
    args = p.parse_args(["sdg", "--dynamic", "--no-flip", "--source-motion", "slow", "--kind", "photo",
                         "--scenes", "1", "--out", str(out), "--frames", str(T), "--height", str(H), "--width",
                         str(W), "--tokenizer", str(tok_dir), "--quiet"])
    assert args.func(args) == 0
    L = Layout(out)
    assert L.views() == list(range(6))
    run = json.loads(L.run_path.read_text())["config"]
    assert run["dynamic"] and not run["flip"] and run["source_motion"] == "slow" and run["kind"] == "photo"
    meta = json.loads(L.done_path(scene_key(0, 0)).read_text())
    assert meta["world_kind"] == "photo" and meta["flipped_views"] == []
