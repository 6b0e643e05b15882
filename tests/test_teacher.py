"""The pocket diffusion teacher: its data (``lyra teacher data``), EDM training (``lyra teacher train``) and the
hole / visible comparison (``lyra teacher sample``), with a tiny random tokenizer and DiT at 32x48, 9 frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from lyra.cli.main import main  # noqa: E402
from lyra.data.layout import DataError  # noqa: E402
from lyra.data.teacher import TeacherDataset  # noqa: E402
from lyra.eval.teacher import holes_table, masked_scores  # noqa: E402
from lyra.generator.diffusion import Gen3CNetConfig  # noqa: E402
from lyra.generator.diffusion.conditioning import encode_condition  # noqa: E402
from lyra.generator.diffusion.model import Gen3CNet, from_pretrained, save_pretrained  # noqa: E402
from lyra.pipelines.teacher_data import TeacherDataConfig, build_teacher_data  # noqa: E402
from lyra.tokenizer import CausalVAEConfig, CausalVideoVAE  # noqa: E402
from lyra.train.teacher import TeacherTrainConfig, TeacherTrainer, diffusion_loss, learning_rate  # noqa: E402

H, W, T = 32, 48, 9
TINY_TOK = CausalVAEConfig(channels=(8, 16), enc_blocks=(1, 1, 1), dec_blocks=(1, 1, 1), stats_frames=4)
C = TINY_TOK.latent_channels
TINY_NET = {"latent_channels": C, "num_layers": 1, "num_heads": 2, "head_dim": 24, "adaln_lora_dim": 8}


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tok")
    torch.manual_seed(0)
    CausalVideoVAE(TINY_TOK).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def data_dir(tok_dir, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("teacher_data")
    cfg = TeacherDataConfig(scenes=2, seed=7, frames=T, height=H, width=W, kind="room", tokenizer=str(tok_dir))
    s = build_teacher_data(cfg, d, CausalVideoVAE.from_pretrained(tok_dir).eval(), progress=False)
    assert len(s["written"]) == 2
    return d


def test_teacher_data_shapes_resume_and_condition_frame(tok_dir, data_dir) -> None:
    tok = CausalVideoVAE.from_pretrained(tok_dir).eval()
    z = np.load(data_dir / "scene_7_00000.npz")
    assert z["target"].shape == (6, C, 2, H // 8, W // 8) and z["target"].dtype == np.float16
    assert z["cache"].shape == (6, 2 * C, 2, H // 8, W // 8)
    assert ((z["holes"] >= 0) & (z["holes"] < 1)).all() and z["holes"].max() > 0  # moving cameras open holes
    assert np.isfinite(z["target"]).all() and not np.allclose(z["cache"][:, :C], z["cache"][:, C:])
    # the target's first latent frame is the first-frame condition (causal encoder, trajectories start at the source)
    from lyra.cameras import default_intrinsics, method_trajectories
    from lyra.pipelines.sdg import scene_seed
    from lyra.world import generate_world

    s = scene_seed(7, 0)
    cam0 = method_trajectories(default_intrinsics(H, W), H, W, T, seed=s)[0][0]
    img = generate_world(s, "room").render(cam0, 0.0).rgb[0]
    cond = encode_condition(tok, img, T)[0, :, 0].half().float()
    assert torch.allclose(torch.from_numpy(z["target"][0][:, 0]).float(), cond, atol=2e-2)
    # resume: complete scenes are skipped; other settings are refused
    again = build_teacher_data(TeacherDataConfig(scenes=2, seed=7, frames=T, height=H, width=W, kind="room",
                                                 tokenizer=str(tok_dir)), data_dir, tok, progress=False)
    assert again["written"] == [] and len(again["skipped"]) == 2
    with pytest.raises(DataError, match="other settings.*frames"):
        build_teacher_data(TeacherDataConfig(scenes=1, seed=7, frames=17, height=H, width=W, kind="room",
                                             tokenizer=str(tok_dir)), data_dir, tok, progress=False)
    ds = TeacherDataset(data_dir, crop=(2, 4))
    assert len(ds) == 12 and ds.scenes == 2
    t, c = ds.batch(np.random.default_rng(0), 3)
    assert t.shape == (3, C, 2, 2, 4) and c.shape == (3, 2 * C, 2, 2, 4) and t.dtype == torch.float32
    with pytest.raises(DataError, match="not a teacher data folder"):
        TeacherDataset(tok_dir)


class _Probe(torch.nn.Module):
    """A stand-in network: records its inputs, outputs a learnable tensor."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.config = Gen3CNetConfig.tiny(latent_channels=shape[1], cache_buffers=1)
        self.out = torch.nn.Parameter(torch.randn(shape))
        self.seen: dict = {}

    def forward(self, x, t, text, mask, cache):
        self.seen = {"x": x.detach(), "t": t, "mask": mask, "cache": cache}
        return self.out


def test_diffusion_loss_conditions_the_first_frame_like_the_sampler_and_ignores_its_output() -> None:
    from lyra.generator.diffusion import edm

    cfg = TeacherTrainConfig(net=TINY_NET)
    B, shape = 2, (2, 3, 3, 2, 4)
    g = torch.Generator().manual_seed(0)
    x0, noise, aug = (torch.randn(shape, generator=g) for _ in range(3))
    cache = torch.randn(B, 6, 3, 2, 4, generator=g)
    sigma = torch.tensor([0.3, 20.0])
    net = _Probe(shape)
    loss = diffusion_loss(net, x0, cache, sigma, noise, aug, torch.tensor([False, True]), cfg)
    seen = net.seen
    # frame 0 reaches the network as the sampler's forced frame: (c + σ_aug·n)·c_in(σ_aug), whatever σ
    assert torch.allclose(seen["x"][:, :, 0], (x0[:, :, 0] + cfg.augment_sigma * aug[:, :, 0])
                          * edm.c_in(cfg.augment_sigma, 0.5), atol=1e-5)
    s = sigma.view(-1, 1, 1, 1)
    assert torch.allclose(seen["x"][:, :, 1:], (x0[:, :, 1:] + s[..., None] * noise[:, :, 1:])
                          * edm.c_in(s[..., None], 0.5), atol=1e-5)
    assert seen["mask"][:, 0, 0].eq(1).all() and seen["mask"][:, 0, 1:].eq(0).all()
    assert torch.equal(seen["cache"][0], cache[0]) and seen["cache"][1].eq(0).all()  # clip 1's cache dropped
    assert torch.allclose(seen["t"], edm.c_noise(sigma))
    loss.backward()
    assert net.out.grad[:, :, 0].eq(0).all() and net.out.grad[:, :, 1:].abs().sum() > 0
    # the EDM target: an output making x̂₀ = x₀ gives zero loss
    x_in = seen["x"] / edm.c_in(sigma.view(-1, 1, 1, 1, 1), 0.5)
    net.out.data = edm.output_for(x0, x_in, sigma.view(-1, 1, 1, 1, 1), 0.5)
    with torch.no_grad():
        assert float(diffusion_loss(net, x0, cache, sigma, noise, aug, torch.tensor([False, True]), cfg)) < 1e-8


def _train_cfg(data_dir: Path, out: Path, steps: int, **kw) -> TeacherTrainConfig:
    return TeacherTrainConfig(data=str(data_dir), output_dir=str(out), net=TINY_NET, steps=steps, batch_size=2,
                              crop=(2, 4), checkpoint_every=3, log_every=1, val_clips=2, warmup_steps=2, **kw)


def test_teacher_training_resumes_bit_for_bit_and_checkpoints_are_diffusion_models(data_dir, tmp_path) -> None:
    a = TeacherTrainer(_train_cfg(data_dir, tmp_path / "a", 6), progress=False)
    a.run()
    TeacherTrainer(_train_cfg(data_dir, tmp_path / "b", 3), progress=False).run()
    b = TeacherTrainer(_train_cfg(data_dir, tmp_path / "b", 6), progress=False)
    assert b.step == 3
    b.run()
    sa, sb = a.net.transformer.state_dict(), b.net.transformer.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert all(torch.equal(a.ema[k], b.ema[k]) for k in a.ema)
    assert any(not torch.equal(a.ema[k], sa[k]) for k in sa)  # the moving average is not the raw weights
    ck = tmp_path / "a" / "checkpoint-6"
    net = from_pretrained(ck)  # a checkpoint is a --diffusion-model folder holding the EMA weights
    assert net.config.tokenizer == "pocket-v2" and not net.config.learnable_pos_embed
    assert all(torch.equal(net.transformer.state_dict()[k], a.ema[k]) for k in a.ema)
    rows = (tmp_path / "a" / "losses.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss") and len(rows) == 7 and "val_loss" in rows[0]


def test_teacher_training_lowers_the_denoising_loss(data_dir, tmp_path) -> None:
    tr = TeacherTrainer(_train_cfg(data_dir, tmp_path / "t", 60, lr=3e-3, cache_dropout=0.0), progress=False)
    before = tr.validate()
    tr.run()
    assert tr.validate() < 0.8 * before


def test_learning_rate_warms_up_holds_then_cools_down() -> None:
    cfg = TeacherTrainConfig(steps=100, lr=1e-3, warmup_steps=10, cooldown_steps=20, final_lr_ratio=0.1)
    lrs = [learning_rate(cfg, k) for k in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert lrs[10:81] == [pytest.approx(1e-3)] * 71  # constant up to the start of the cool-down (step 80)
    assert all(a > b for a, b in zip(lrs[80:], lrs[81:]))  # then strictly falling
    assert lrs[99] == pytest.approx(1e-3 * (1 - 0.9 * 19 / 20))
    assert learning_rate(cfg, 500) == pytest.approx(1e-4)  # resumed past the end: the final rate
    assert learning_rate(TeacherTrainConfig(steps=100, lr=1e-3, warmup_steps=1), 99) == pytest.approx(1e-3)
    with pytest.raises(Exception, match="cooldown"):
        TeacherTrainConfig(cooldown_steps=-1)


def test_masked_scores_split_holes_from_visible_pixels() -> None:
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 3, 40, 40, generator=g)
    holes = torch.zeros(2, 1, 40, 40, dtype=torch.bool)
    holes[..., 10:30, 5:25] = True
    pred = gt.clone()
    pred[holes.expand_as(pred)] = 0.5  # wrong only inside the holes
    vis, hol = masked_scores(pred, gt, ~holes), masked_scores(pred, gt, holes)
    assert vis["psnr"] > 100 and vis["ssim"] > hol["ssim"] and hol["psnr"] < 15
    assert vis["pixels"] + hol["pixels"] == 2 * 40 * 40
    assert np.isnan(masked_scores(pred, gt, torch.zeros_like(holes))["psnr"])


def test_gen3c_config_pocket_round_trip_and_old_files(tmp_path) -> None:
    cfg = Gen3CNetConfig.pocket()
    assert Gen3CNetConfig.from_dict(cfg.to_dict()) == cfg
    old = Gen3CNetConfig.tiny().to_dict()
    del old["learnable_pos_embed"], old["tokenizer"]  # a config.json written before these fields
    assert Gen3CNetConfig.from_dict(old).learnable_pos_embed
    net = Gen3CNet(Gen3CNetConfig.tiny(learnable_pos_embed=False))
    assert not any("learnable_pos_embed" in k for k in net.transformer.state_dict())
    save_pretrained(net, tmp_path / "n")
    assert from_pretrained(tmp_path / "n").config == net.config


def test_lyra_teacher_cli_data_train_sample(tok_dir, tmp_path, capsys) -> None:
    data = tmp_path / "data"
    assert main(["teacher", "data", "--scenes", "1", "--out", str(data), "--seed", "9", "--frames", str(T),
                 "--height", str(H), "--width", str(W), "--kind", "room", "--tokenizer", str(tok_dir),
                 "--quiet"]) == 0
    cfg = tmp_path / "teacher.yaml"
    cfg.write_text(f"data: {data}\noutput_dir: {tmp_path / 'run'}\nnet: {json.dumps(TINY_NET)}\nsteps: 2\n"
                   "batch_size: 1\ncrop: [2, 2]\ncheckpoint_every: 2\nval_clips: 1\n")
    assert main(["teacher", "train", str(cfg), "--quiet"]) == 0
    assert "step 2" in capsys.readouterr().out
    assert main(["teacher", "train", str(cfg), "--set", "net.num_heads=-1"]) == 2
    assert "num_heads=-1" in capsys.readouterr().err
    ckpt = str(tmp_path / "run" / "checkpoint-2")
    # the checkpoint records its tokenizer (pocket-v2): another shipped version is refused in one line
    assert main(["demo", "--world", "--generator", "diffusion", "--diffusion-model", ckpt, "--tokenizer", "pocket-v1",
                 "--out", str(tmp_path / "demo")]) == 2
    assert "samples the latents of tokenizer pocket-v2" in capsys.readouterr().err
    out = tmp_path / "sample"
    assert main(["teacher", "sample", "--diffusion-model", ckpt, "--world-seed", "1",
                 "--trajectories", "2", "--frames", str(T), "--height", str(H), "--width", str(W),
                 "--tokenizer", str(tok_dir), "--diffusion-steps", "2", "--out", str(out)]) == 0
    rep = json.loads((out / "metrics.json").read_text())
    for gen in ("cache", "diffusion"):
        m = rep["metrics"][gen]
        assert set(m) == {"all", "visible", "holes", "seconds"}
        assert m["visible"]["pixels"] + m["holes"]["pixels"] == 2 * T * H * W
        assert m["holes"]["pixels"] > 0 and np.isfinite(m["visible"]["psnr"])
    import imageio.v3 as iio

    assert iio.imread(out / "comparison.png").shape == (3 * H, 2 * W, 3)  # rows exact | cache | diffusion
    assert (out / "comparison.mp4").stat().st_size > 0
    assert rep["guidance"] == 1.0 and rep["noise_scale"] == 1.0  # no generation_config.json: the official values

    many = tmp_path / "many"
    args = ["teacher", "sample", "--diffusion-model", ckpt, "--trajectories", "1", "--frames", str(T), "--height",
            str(H), "--width", str(W), "--tokenizer", str(tok_dir), "--diffusion-steps", "1", "--guidance", "0"]
    assert main([*args, "--worlds", "room:1,yard:2", "--mean-of", "2", "--noise-scale", "0.5", "--out", str(many)]) == 0
    summary = json.loads((many / "summary.json").read_text())
    assert set(summary["worlds"]["room 1"]) == {"cache", "diffusion", "mean of 2"}
    assert iio.imread(many / "room-1" / "comparison.png").shape == (4 * H, W, 3)  # + the mean's row
    assert list(summary["worlds"]) == ["room 1", "yard 2"] and summary["guidance"] == 0.0
    assert summary["noise_scale"] == 0.5
    assert summary["worlds"]["room 1"] == json.loads((many / "room-1" / "metrics.json").read_text())["metrics"]
    assert (many / "yard-2" / "comparison.png").is_file()
    assert "| yard 2 | diffusion |" in (many / "summary.md").read_text()
    assert main([*args, "--worlds", "room:x", "--out", str(tmp_path / "bad")]) == 2
    assert "not KIND:SEED" in capsys.readouterr().err
    assert main([*args, "--noise-scale", "2", "--out", str(tmp_path / "bad")]) == 2
    assert "--noise-scale must be in [0, 1]" in capsys.readouterr().err


def test_holes_table_says_whether_the_teacher_beats_push_pull_everywhere() -> None:
    def m(holes_psnr: float, holes_ssim: float) -> dict:
        return {k: {"psnr": 20.0, "ssim": 0.5} for k in ("all", "visible")} | {
            "holes": {"psnr": holes_psnr, "ssim": holes_ssim}}

    win = {"room 1": {"cache": m(15, 0.6), "diffusion": m(16, 0.7)},
           "yard 2": {"cache": m(7, 0.6), "diffusion": m(17, 0.8)}}
    table, beats = holes_table(win)
    assert beats and table.count("\n") == 2 + 4
    assert "| yard 2 | diffusion | 20.00 / 0.500 | 20.00 / 0.500 | 17.00 / 0.800 |" in table
    win["room 1"]["mean of 4"] = m(1, 0.1)  # a diagnostic row is shown but does not decide
    table, beats = holes_table(win)
    assert beats and "| room 1 | mean of 4 |" in table
    win["room 1"]["diffusion"] = m(16, 0.55)  # higher PSNR but lower SSIM in the holes of one world: not a win
    assert not holes_table(win)[1]


def test_sample_mean_averages_seeded_samples() -> None:
    from dataclasses import dataclass

    from lyra.eval.teacher import SampleMean

    @dataclass
    class TrajectorySample:  # the fields SampleMean touches
        frames: torch.Tensor
        latents: torch.Tensor
        cameras: str

    class Fake:
        decode_frames = False

        def generate(self, trajectories, source=None, *, seed=0):
            assert self.decode_frames
            return [TrajectorySample(torch.full((2, 3, 4, 4), float(seed + i)), torch.full((1, 1, 1, 1), float(seed)),
                                     cams) for i, cams in enumerate(trajectories)]

    out = SampleMean(Fake(), 3).generate(["a", "b"], seed=2)  # seeds 15, 16, 17
    assert [float(o.frames.mean()) for o in out] == [16.0, 17.0] and float(out[0].latents) == 16.0
    assert float(SampleMean(Fake(), 2).generate(["a"], seed=0)[0].latents) == 1.5  # never the generator's own seed
    assert out[1].cameras == "b"
    with pytest.raises(ValueError, match="n >= 2"):
        SampleMean(Fake(), 1)


def test_shipped_teacher_configs_load() -> None:
    files = sorted((Path(__file__).resolve().parents[1] / "configs" / "teacher").glob("*.yaml"))
    assert files
    for f in files:
        cfg = TeacherTrainConfig.load(f)
        assert cfg.network().tokenizer == "pocket-v2"


def test_inpainted_cache_data_training_and_sampling_agree_on_the_fill(tok_dir, data_dir, tmp_path, monkeypatch) -> None:
    import shutil

    from lyra.data.teacher import META_NAME
    from lyra.generator.diffusion import DiffusionError
    from lyra.train.config import ConfigError

    tok = CausalVideoVAE.from_pretrained(tok_dir).eval()
    kw = dict(seed=7, frames=T, height=H, width=W, kind="room", tokenizer=str(tok_dir))
    filled = tmp_path / "filled"
    build_teacher_data(TeacherDataConfig(scenes=1, cache_fill="inpaint", **kw), filled, tok, progress=False)
    a, b = np.load(data_dir / "scene_7_00000.npz"), np.load(filled / "scene_7_00000.npz")
    # the same targets and mask latents; only the render latents change (holes filled instead of black)
    assert np.allclose(a["target"], b["target"], atol=1e-3) and np.allclose(a["cache"][:, C:], b["cache"][:, C:],
                                                                             atol=1e-3)
    assert not np.allclose(a["cache"][:, :C], b["cache"][:, :C], atol=1e-2)
    assert TeacherDataset(filled).cache_fill == "inpaint" and TeacherDataset(data_dir).cache_fill == "black"
    with pytest.raises(DataError, match="other settings.*cache_fill"):
        build_teacher_data(TeacherDataConfig(scenes=1, **kw), filled, tok, progress=False)
    with pytest.raises(DataError, match="cache_fill must be one of"):
        TeacherDataConfig(scenes=1, cache_fill="grey", **kw)
    # a folder written before the option (no cache_fill in its run file) is black-hole data and still resumes
    old = tmp_path / "old"
    shutil.copytree(data_dir, old)
    meta = json.loads((old / META_NAME).read_text())
    del meta["config"]["cache_fill"]
    (old / META_NAME).write_text(json.dumps(meta))
    assert TeacherDataset(old).cache_fill == "black"
    assert len(build_teacher_data(TeacherDataConfig(scenes=2, **kw), old, tok, progress=False)["skipped"]) == 2

    # the data decides how the trained network reads its cache; a contradicting net override is refused
    tr = TeacherTrainer(_train_cfg(filled, tmp_path / "run", 3), progress=False)
    assert tr.net.config.cache_fill == "inpaint"
    tr.run()
    ckpt = tmp_path / "run" / "checkpoint-3"
    assert from_pretrained(ckpt).config.cache_fill == "inpaint"
    with pytest.raises(ConfigError, match="cache_fill"):
        TeacherTrainer(TeacherTrainConfig(**{**_train_cfg(filled, tmp_path / "x", 3).__dict__,
                                             "net": {**TINY_NET, "cache_fill": "black"}}), progress=False)
    with pytest.raises(DiffusionError, match="cache_fill must be one of"):
        Gen3CNetConfig.tiny(cache_fill="grey")
    old_cfg = Gen3CNetConfig.tiny().to_dict()
    del old_cfg["cache_fill"]  # config.json files written before the option: the official black holes
    assert Gen3CNetConfig.from_dict(old_cfg).cache_fill == "black"

    # sampling: the network reads the cache it was trained on; black holes are exactly the official raw-warp cache
    import lyra.generator.diffusion.generator as gen_mod
    from lyra.cameras import default_intrinsics, method_trajectories
    from lyra.generator import OracleGenerator
    from lyra.generator.diffusion.conditioning import encode_cache
    from lyra.world import generate_world

    seen = []
    real = gen_mod.chunk_conditioning

    def spy(*args, **kwargs):
        cond = real(*args, **kwargs)
        seen.append(cond.cache.clone())
        return cond

    monkeypatch.setattr(gen_mod, "chunk_conditioning", spy)
    world = generate_world(1, "room")
    trajs = method_trajectories(default_intrinsics(H, W), H, W, T, seed=1)[:1]
    source = OracleGenerator(world, tok).render_source(trajs[0][0])
    caches = {}
    for folder, fill in ((ckpt, "inpaint"), (tmp_path / "x_black", "black")):
        if fill == "black":
            save_pretrained(Gen3CNet(from_pretrained(ckpt).config.replace(cache_fill="black")), folder)
        g = gen_mod.DiffusionGenerator(tok, model=folder, steps=1, guidance=0.0)
        w = g.cache.warp(trajs, source)[0]
        g.generate(trajs, source)
        caches[fill] = seen[-1]
    assert not torch.equal(w.frames, w.warped)  # the trajectory has holes, so the two fills differ
    black = encode_cache(tok, w.warped[None], w.mask[None], buffers=1)  # holes black from the raw warp
    assert torch.allclose(caches["black"], black, atol=1e-6)
    filled = encode_cache(tok, w.frames[None], w.mask[None], buffers=1, fill="inpaint")
    assert torch.allclose(caches["inpaint"], filled, atol=1e-6)
    assert not torch.allclose(filled[:, :C], black[:, :C], atol=1e-3)
