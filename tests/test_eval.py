"""lyra eval: metrics, off-trajectory cameras, the evaluation run and its reports on a tiny SDG dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from lyra.cameras import default_intrinsics, method_trajectories
from lyra.decoder import DecoderConfig, LyraDecoder
from lyra.eval.evaluate import EvalConfig, decode_scene, evaluate, image_metrics, off_trajectory_cameras
from lyra.train.conditioning import ConditioningCache

H, W, T = 32, 48, 9


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from lyra.pipelines.sdg import SDGConfig, run_sdg
    from lyra.tokenizer import CausalVAEConfig, CausalVideoVAE

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("eval")
    torch.manual_seed(0)
    tok = CausalVideoVAE(CausalVAEConfig(channels=(8, 16), enc_blocks=(1, 1, 1), dec_blocks=(1, 1, 1),
                                         stats_frames=4)).eval()
    tok.save_pretrained(base / "tok")
    run_sdg(SDGConfig(scenes=3, frames=T, height=H, width=W, tokenizer=str(base / "tok")), base / "data", tok,
            progress=False)
    torch.manual_seed(0)
    dec = LyraDecoder(DecoderConfig.pocket(width=16, depth=2, block_pattern="1M1T", mamba_d_state=8,
                                           mamba_headdim=8, mamba_chunk_size=8, attn_heads=2,
                                           distance_shift=-5.0)).eval()
    with torch.no_grad():  # make the Plücker embedding matter, so fusion on and off differ
        dec.patch_plucker_embed.proj.weight.normal_(0, 0.2)
    dec.save_pretrained(base / "dec")
    return base, tok, dec


def test_image_metrics_hand_values() -> None:
    a = torch.zeros(2, 3, 16, 16)
    b = a.clone()
    b[1] += 0.1
    m = image_metrics(b, a)
    assert m["psnr"][1] == pytest.approx(20.0, abs=1e-3) and m["psnr"][0] > 100
    assert m["ssim"][0] == pytest.approx(1.0, abs=1e-6)


def test_off_trajectory_cameras_lie_off_every_trajectory() -> None:
    K = default_intrinsics(H, W, 60.0)
    trajs = method_trajectories(K, H, W, 17, seed=3)
    off = off_trajectory_cameras(trajs, stride=4)
    assert len(off) == 5 * 4  # 5 pairs x frames 4, 8, 12, 16
    on = torch.cat([t.centers for t in trajs])
    dist = torch.cdist(off.centers, on).min(dim=1).values
    assert (dist > 1e-3).all()
    # every off camera looks at the look-at point (0, 0, 1): it projects to the principal point
    p = (off.w2c[:, :3, :3] @ torch.tensor([0.0, 0.0, 1.0]) + off.w2c[:, :3, 3])
    uv = (off.K @ p[..., None])[..., 0]
    torch.testing.assert_close(uv[:, :2] / uv[:, 2:], off.K[:, :2, 2], atol=1e-3, rtol=0)


def test_fusion_off_decodes_each_trajectory_alone(setup) -> None:
    _, tok, dec = setup
    K = default_intrinsics(H, W, 60.0)
    trajs = method_trajectories(K, H, W, T, seed=0)[:2]
    cond = ConditioningCache(tok)
    lat = torch.randn(2 * 2, 16, H // 8, W // 8)
    fused = decode_scene(dec, cond, lat, trajs, fused=True)
    split = decode_scene(dec, cond, lat, trajs, fused=False)
    alone = decode_scene(dec, cond, lat[2:], trajs[1:], fused=True)
    assert fused.shape == split.shape == (2 * T * (H // 8) * (W // 8), 14)
    n = split.shape[0] // 2
    torch.testing.assert_close(split[n:], alone)
    assert not torch.allclose(fused[n:], alone)


def test_eval_cli_writes_reports(setup, tmp_path: Path) -> None:
    from lyra.cli import eval_cmd

    base, _, _ = setup
    parser = argparse.ArgumentParser()
    eval_cmd.add_parser(parser.add_subparsers())
    args = parser.parse_args(["eval", "--data", str(base / "data"), "--decoder", str(base / "dec"), "--tokenizer",
                              str(base / "tok"), "--out", str(tmp_path / "rep"), "--num-test-scenes", "1",
                              "--stride", "4", "--quiet"])
    assert args.func(args) == 0
    rep = json.loads((tmp_path / "rep" / "eval.json").read_text())
    assert rep["num_scenes"] == 1 and rep["scenes"][0]["key"] == "scene_0_00002"  # the held-out (last) key
    s = rep["summary"]
    for tag in ("fusion_on", "fusion_off"):
        for part in ("vs_teacher", "vs_gt_on_trajectory", "vs_gt_off_trajectory"):
            assert 0 < s[tag][part]["psnr"] < 100 and -1 <= s[tag][part]["ssim"] <= 1
    assert s["teacher_vs_gt"]["psnr"] > 5
    sc = rep["scenes"][0]
    assert sc["targets"] == 6 * 3 and sc["off_cameras"] == 5 * 2
    md = (tmp_path / "rep" / "eval.md").read_text()
    assert "off every trajectory" in md and "scene_0_00002" in md


def test_evaluate_matches_direct_metrics(setup) -> None:
    base, tok, dec = setup
    cfg = EvalConfig(data=str(base / "data"), decoder=str(base / "dec"), num_test_scenes=1, fusion="on",
                     off_trajectory=False, stride=8)
    rep = evaluate(cfg, model=dec, tokenizer=tok, progress=False)
    assert "vs_gt_off_trajectory" not in rep["summary"]["fusion_on"]
    assert "fusion_off" not in rep["summary"]
    assert rep["scenes"][0]["targets"] == 6 * 2


# version, size, frames, trajectories, kept share, PSNR floor (the measured value at release is in the comment)
SHIPPED_CASES = [("pocket-v1", 64, 112, 17, (0, 1, 2, 3, 4, 5), 0.2, 21.0),  # 22.6 dB at release
                 ("pocket-v2", 176, 320, 49, (0, 3), 0.22, 18.0)]  # 19.7 dB (in-training snapshot, step 2700)


@pytest.mark.parametrize("version,Hs,Ws,Ts,views,kept,floor", SHIPPED_CASES, ids=[c[0] for c in SHIPPED_CASES])
def test_shipped_decoder_reconstructs_an_unseen_scene(version, Hs, Ws, Ts, views, kept, floor) -> None:
    """A shipped decoder + its tokenizer on a fresh procedural world (not in any training set), against the
    teacher frames at trajectory cameras."""
    from lyra.cameras import Cameras
    from lyra.eval.evaluate import load_decoder
    from lyra.generator import OracleGenerator
    from lyra.pipelines import shipped_decoder_dir
    from lyra.render import RenderOptions
    from lyra.tokenizer import load_tokenizer, shipped_tokenizer_dir
    from lyra.train.render_loss import render_views
    from lyra.world import generate_world

    weights = shipped_decoder_dir(version) / "model.safetensors"
    if not weights.is_file() or not shipped_tokenizer_dir(version).is_dir():
        pytest.skip("shipped weights not present")
    dec, tok = load_decoder(version), load_tokenizer(version)
    assert dec.config.prune_ratio == pytest.approx(1 - kept) and 1_000_000 < dec.num_parameters() < 1_500_000
    trajs = method_trajectories(default_intrinsics(Hs, Ws, 60.0), Hs, Ws, Ts, seed=987654)
    trajs = [trajs[v] for v in views]
    samples = OracleGenerator(generate_world(987654, "room"), tok).generate(trajs)
    latents = torch.cat([s.latents.permute(1, 0, 2, 3) for s in samples])
    rec = decode_scene(dec, ConditioningCache(tok), latents, trajs, fused=True)
    assert abs(rec.shape[0] - len(views) * Ts * (Hs // 8) * (Ws // 8) * kept) <= 1 and rec.shape[1] == 14
    frames = [4, 12, 16]
    cams = Cameras.cat([t[f] for t in trajs for f in frames])
    target = torch.cat([s.frames[frames] for s in samples])
    out = render_views(rec, cams, 1.0, RenderOptions(near=0.1))
    m = image_metrics(out.rgb, target)
    assert sum(m["psnr"]) / len(m["psnr"]) > floor, m["psnr"]
