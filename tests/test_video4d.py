"""``lyra video4d``: video (+ depth) or a moving procedural world -> one Gaussian scene per requested time.

Tiny random tokenizer / decoder saved to folders (as in test_generator_diffusion_pipeline), 32x48, 9 frames, 4 orbit
frames.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lyra.cli.main import build_parser, main
from lyra.decoder import DecoderConfig, LyraDecoder
from lyra.gaussians.sequence import load_sequence
from lyra.pipelines.video4d import (
    OUTPUT_FILES,
    Video4DConfig,
    Video4DError,
    decode_at_time,
    dynamic_trajectories,
    generate_trajectories,
    parse_times,
    time_decoder,
    time_ignored,
    world_source,
)
from lyra.tokenizer import CausalVAEConfig, CausalVideoVAE

H, W, T, ORBIT = 32, 48, 9, 4
TINY_TOK = CausalVAEConfig(channels=(8, 16), enc_blocks=(1, 1, 1), dec_blocks=(1, 1, 1), stats_frames=4)
TINY_DEC = {"width": 16, "depth": 2, "block_pattern": "1M1T", "mamba_d_state": 8, "mamba_headdim": 8,
            "mamba_chunk_size": 8, "attn_heads": 2, "distance_shift": -5.0}
VIDEOS = ("camera_through_time", "fixed_camera", "frozen_time")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(tokenizer, static decoder, time-conditioned decoder with non-zero time embeddings) folders."""
    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    CausalVideoVAE(TINY_TOK).save_pretrained(d / "tok")
    static = LyraDecoder(DecoderConfig(**TINY_DEC))
    static.save_pretrained(d / "dec")
    dyn = static.with_time_conditioning()
    with torch.no_grad():
        for m in (dyn.patch_time_embed, dyn.patch_time_embed_tgt):
            m.proj.weight.normal_(0.0, 0.5)
    dyn.save_pretrained(d / "dec_time")
    return d / "tok", d / "dec", d / "dec_time"


def tiny_args(models: tuple[Path, Path, Path], out: Path, frames: int = T) -> list[str]:
    return ["--out", str(out), "--tokenizer", str(models[0]), "--decoder", str(models[1]), "--height", str(H),
            "--width", str(W), "--frames", str(frames), "--orbit-frames", str(ORBIT), "--quiet"]


def params(g) -> torch.Tensor:
    """[N, k] every parameter of a Gaussian set (colours or SH)."""
    col = g.colors if g.colors is not None else g.sh.flatten(1)
    return torch.cat([g.means, g.quats, g.scales, g.opacities[:, None], col], 1)


def check_outputs(out: Path, times: list[float]) -> dict:
    """The sequence holds ``times``, the videos and preview exist; returns report.json."""
    m, scenes = load_sequence(out)
    assert m.times == pytest.approx(times) and len(scenes) == len(times)
    assert m.video_frames == T and m.cameras == OUTPUT_FILES["cameras"] and (out / m.cameras).is_file()
    assert all(len(g) > 0 for g in scenes)
    for name in (*VIDEOS, "preview", "report"):
        assert (out / OUTPUT_FILES[name]).stat().st_size > 0, name
    assert not list(out.parent.glob(f".{out.name}.*"))  # the atomic temporary folder is gone
    r = json.loads((out / OUTPUT_FILES["report"]).read_text())
    assert r["times"] == pytest.approx(times) and [g["time"] for g in r["gaussians"]] == pytest.approx(times)
    for stage in ("load models", "source", "generate", "decode", "render", "write outputs"):
        assert r["timings_s"][stage] >= 0, stage
    assert len(r["decode_s_per_time"]) == len(times) and r["memory"]["peak_rss_mb"] > 0
    return r


def test_parse_times() -> None:
    assert parse_times("0,0.5,1", 9) == (0.0, 0.5, 1.0)
    assert parse_times("1, 0,0.5,0.5", 9) == (0.0, 0.5, 1.0)  # sorted, duplicates dropped
    assert parse_times("0:1:5", 9) == pytest.approx((0, 0.25, 0.5, 0.75, 1))
    assert parse_times("0.5:0.5:1", 9) == (0.5,)
    assert parse_times("all", 9) == pytest.approx(tuple(i / 8 for i in range(9)))
    for bad in ("", "a,b", "0:1", "0:1:x", "0:1:0", "1.5", "-0.1", "0,nan", "0:2:3"):
        with pytest.raises(Video4DError):
            parse_times(bad, 9)


def test_world_end_to_end(models, tmp_path: Path, capsys) -> None:
    out = tmp_path / "w"
    rc = main(["video4d", "--world", "3", "--times", "0,0.5,1", *tiny_args(models, out)])
    assert rc == 0, capsys.readouterr().err
    assert "time embeddings are zero" in capsys.readouterr().err  # the untrained time conditioning is said
    r = check_outputs(out, [0.0, 0.5, 1.0])
    assert r["decoder_time_conditioned"] is False and "note" in r and r["generator"] == "oracle"
    assert r["input"]["world_seed"] == 3 and r["trajectories"] == 6
    m = r["metrics"]
    assert m["cameras"] == ORBIT and len(m["per_time"]) == 3
    for row in m["per_time"]:
        assert np.isfinite(row["pipeline"]["psnr"]) and np.isfinite(row["baseline_per_frame_static"]["psnr"])
    assert [row["baseline_frame"] for row in m["per_time"]] == [0, 4, 8]
    # zero time embeddings: the same Gaussians at every time
    _, scenes = load_sequence(out)
    assert torch.equal(params(scenes[0]), params(scenes[2]))


@pytest.mark.parametrize("spec,times", [("0.25:0.75:3", [0.25, 0.5, 0.75]), ("all", [i / 8 for i in range(9)])])
def test_world_times_range_and_all(models, tmp_path: Path, capsys, spec: str, times: list[float]) -> None:
    out = tmp_path / "w"
    rc = main(["video4d", "--world", "1", "--world-kind", "yard", "--generator", "cache", "--times", spec,
               "--metric-cameras", "1", *tiny_args(models, out)])
    assert rc == 0, capsys.readouterr().err
    r = check_outputs(out, times)
    assert r["generator"] == "cache" and r["videos"]["frozen_time"]["time"] == pytest.approx(times[len(times) // 2])
    assert r["metrics"]["cameras"] == 1 and len(r["metrics"]["per_time"]) == len(times)


def test_time_reaches_the_decoder(models) -> None:
    """Non-zero time embeddings give different Gaussians at different times; zero-initialised ones give the static
    decoder's Gaussians at every time (bit for bit)."""
    from lyra.pipelines import decode_samples, load_models
    from lyra.world import generate_world

    cfg = Video4DConfig(height=H, width=W, frames=T, generator="oracle", tokenizer=str(models[0]),
                        decoder=str(models[1]), target_median=None).validate()
    tok, static = load_models(cfg)
    world = generate_world(2, "room", moving=True, photos="heldout")
    source = world_source(world, cfg)
    samples = generate_trajectories(source, dynamic_trajectories(source, cfg), tok, cfg, world=world, progress=False)
    from lyra.train.conditioning import ConditioningCache, encode_time

    cond = ConditioningCache(tok)  # what decode_at_time uses: encode_time with the input part cached
    assert torch.allclose(cond.time(source.times, 0.25, H, W)[0], encode_time(tok, source.times, 0.25, H, W))
    zero = time_decoder(static)
    assert zero.config.use_time and time_ignored(zero)
    ref, _ = decode_samples(static, tok, samples, 0.5)
    for t in (0.0, 1.0):
        g, n_all = decode_at_time(zero, tok, samples, source.times, t, 0.5)
        assert n_all == 6 * T * (H // 8) * (W // 8) and torch.equal(params(g), params(ref))
    cfg_t = Video4DConfig(**{**cfg.__dict__, "decoder": str(models[2])})
    dyn = load_models(cfg_t)[1]
    assert time_decoder(dyn) is dyn and not time_ignored(dyn)
    g0, _ = decode_at_time(dyn, tok, samples, source.times, 0.0, 0.5)
    g1, _ = decode_at_time(dyn, tok, samples, source.times, 1.0, 0.5)
    g0b, _ = decode_at_time(dyn, tok, samples, source.times, 0.0, 0.5)
    assert torch.equal(params(g0), params(g0b))  # deterministic
    assert not torch.allclose(params(g0), params(g1))


def write_clip(folder: Path, n: int, zip_depth: bool = False) -> tuple[Path, Path]:
    """A moving world's n-frame video (64x96 mp4, 10 fps) and its depth in millimetres (a folder of .npy files, or
    an EXR zip)."""
    from lyra.data.exr import write_depth_zip
    from lyra.render.video import write_video
    from lyra.world import generate_world

    src = world_source(generate_world(5, "room", moving=True), Video4DConfig(height=64, width=96, frames=n))
    folder.mkdir(parents=True, exist_ok=True)
    video = write_video(folder / "clip.mp4", src.frames, fps=10.0)
    if zip_depth:
        return video, write_depth_zip(folder / "depth.zip", src.depth * 1000, half=False)
    (folder / "depth").mkdir()
    for i, d in enumerate(src.depth):
        np.save(folder / "depth" / f"{i:03d}.npy", (d[0] * 1000).numpy())
    return video, folder / "depth"


@pytest.mark.parametrize("zip_depth", [False, True])
def test_video_with_depth(models, tmp_path: Path, capsys, zip_depth: bool) -> None:
    video, depth = write_clip(tmp_path / "in", 12, zip_depth)
    out = tmp_path / "v"
    rc = main(["video4d", str(video), "--depth", str(depth), "--times", "0,1", *tiny_args(models, out)])
    assert rc == 0, capsys.readouterr().err
    r = check_outputs(out, [0.0, 1.0])
    assert r["generator"] == "cache" and "metrics" not in r
    assert r["input"]["video_frames"] == 12 and r["input"]["picked_frames"][0] == 0
    assert r["input"]["picked_frames"][-1] == 11 and len(r["input"]["picked_frames"]) == T
    assert 0 < r["depth_scale"] < 0.01  # millimetres -> scene units with median depth 2
    assert json.loads((out / "sequence.json").read_text())["fps"] == pytest.approx(10.0 * 8 / 11)


def test_bad_inputs_one_line_exit_2(models, tmp_path: Path, capsys) -> None:
    video, depth = write_clip(tmp_path / "in", 9)
    np.save(depth / "extra.npy", np.ones((64, 96), np.float32))  # 10 depth maps for 9 frames
    (tmp_path / "empty").mkdir()
    cases = {
        "expected a list": ["--world", "0", "--times", "a,b"],
        "a:b:n": ["--world", "0", "--times", "0:1"],
        "normalised to [0, 1]": ["--world", "0", "--times", "0,1.5"],
        "10 depth maps": [str(video), "--depth", str(depth), "--times", "0"],
        "not found": [str(tmp_path / "missing.mp4"), "--depth", str(depth), "--times", "0"],
        "depth folder or zip not found": [str(video), "--depth", str(tmp_path / "nope"), "--times", "0"],
        "no depth files": [str(video), "--depth", str(tmp_path / "empty"), "--times", "0"],
        "not both": [str(video), "--depth", str(depth), "--world", "0", "--times", "0"],
        "needs --depth": [str(video), "--times", "0"],
        "use --world": [str(video), "--depth", str(depth), "--generator", "oracle", "--times", "0"],
    }
    for want, argv in cases.items():
        out = tmp_path / "o"
        rc = main(["video4d", *argv, *tiny_args(models, out)])
        err = capsys.readouterr().err.strip()
        assert rc == 2, (want, err)
        assert len(err.splitlines()) == 1 and "lyra video4d: error:" in err and want in err, (want, err)
        assert not out.exists()
    rc = main(["video4d", "--world", "0", "--times", "0", *tiny_args(models, tmp_path / "o", frames=10)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "1 + 8k" in err, err


def test_shipped_dynamic_decoder_is_trained_and_time_conditioned() -> None:
    from lyra.pipelines.video4d import shipped_dynamic_decoder, time_ignored
    from lyra.utils.shipped import DYNAMIC_VERSION

    d = shipped_dynamic_decoder(DYNAMIC_VERSION)  # lyra/assets/decoder-dynamic: what `lyra video4d` uses by default
    assert d is not None and d.config.use_time and not time_ignored(d)
    assert d.config.prune_ratio == 0.0  # trained unpruned: `lyra video4d` keeps its Gaussians by default
    from lyra.cli.video4d_cmd import default_prune

    assert default_prune(DYNAMIC_VERSION) == 0.0 and default_prune("some/folder") == pytest.approx(0.8)
    args = build_parser().parse_args(["video4d", "--world", "0", "--times", "0", "--out", "x"])
    assert (args.decoder, args.tokenizer, args.height, args.width, args.frames) == (DYNAMIC_VERSION,) * 2 + \
        (64, 112, 17)
    assert shipped_dynamic_decoder("pocket-v2") is None  # no dynamic decoder of that version ships
    assert shipped_dynamic_decoder("some/folder") is None
