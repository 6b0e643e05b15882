"""Trainer: deferred vs plain back-prop gradients, strict config, resume to the identical result, init_from,
two CPU processes with synchronised gradients, loss logging, an SDG dataset end to end."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import yaml
from safetensors.torch import load_file

from lyra.cameras import Cameras, default_intrinsics, method_trajectories
from lyra.decoder import LyraDecoder, records_to_gaussians
from lyra.render import RenderOptions, rasterize
from lyra.tokenizer import CausalVAEConfig, CausalVideoVAE
from lyra.train.config import ConfigError, TrainConfig
from lyra.train.render_loss import render_views
from lyra.train.trainer import Trainer, TrainSample

H, W, T = 32, 48, 9
TINY_TOK = CausalVAEConfig(channels=(8, 16), enc_blocks=(1, 1, 1), dec_blocks=(1, 1, 1), stats_frames=4)
TINY_DEC = {"width": 16, "depth": 2, "block_pattern": "1M1T", "mamba_d_state": 8, "mamba_headdim": 8,
            "mamba_chunk_size": 8, "attn_heads": 2, "distance_shift": -5.0}


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_tokenizer(seed: int = 0) -> CausalVideoVAE:
    torch.manual_seed(seed)
    return CausalVideoVAE(TINY_TOK).eval()


class SyntheticSource:
    """Random latents and smooth random targets at the method's trajectory cameras (no files)."""

    def __init__(self, n: int = 3, num_views: int = 2, num_targets: int = 2) -> None:
        K = default_intrinsics(H, W, 60.0)
        self.trajs = [method_trajectories(K, H, W, T, seed=i) for i in range(n)]
        self.num_views, self.num_targets = num_views, num_targets

    def __len__(self) -> int:
        return len(self.trajs)

    def get(self, index: int, rng: np.random.Generator) -> TrainSample:
        g = torch.Generator().manual_seed(int(rng.integers(1 << 30)))
        views = [int(v) for v in rng.choice(6, size=self.num_views, replace=False)]
        cams_in = [self.trajs[index][v] for v in views]
        frames = [int(f) for f in rng.choice(T, size=self.num_targets, replace=False)]
        tcams = Cameras.cat([c[f] for c in cams_in for f in frames])
        n = len(tcams)
        low = torch.rand(n, 3, 4, 6, generator=g)
        images = torch.nn.functional.interpolate(low, size=(H, W), mode="bilinear", align_corners=False)
        depth = 1.0 + torch.rand(n, 1, H, W, generator=g)
        depth[:, :, :3] = 0.0  # an invalid band
        latents = torch.randn(self.num_views * 2, 16, H // 8, W // 8, generator=g)
        return TrainSample(f"s{index}", latents, None, cams_in, images, depth, tcams)


def tiny_config(tmp: Path, steps: int = 2, **over) -> TrainConfig:
    d = {"name": "tiny", "output_dir": str(tmp), "steps": steps, "checkpoint_every": 2, "log_every": 1,
         "device": "cpu", "model": {"preset": "pocket", "overrides": TINY_DEC},
         "optim": {"lr": 1e-3, "warmup_steps": 1}, "render": {"backend": "cpu", "near": 0.01},
         "loss": {"depth": 0.05}}
    for k, v in over.items():
        if isinstance(v, dict):
            d.setdefault(k, {}).update(v)
        else:
            d[k] = v
    return TrainConfig.from_dict(d)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


# ---------------------------------------------------------------------------------------------- deferred
def test_deferred_and_plain_backprop_give_the_same_gradients() -> None:
    g = torch.Generator().manual_seed(0)
    N = 60
    rec = torch.zeros(N, 14)
    rec[:, :2] = (torch.rand(N, 2, generator=g) - 0.5) * 1.5
    rec[:, 2] = 2.0 + torch.rand(N, generator=g)
    rec[:, 3] = 0.3 + 0.6 * torch.rand(N, generator=g)
    rec[:, 4:7] = 0.05 + 0.1 * torch.rand(N, 3, generator=g)
    rec[:, 7:11] = torch.randn(N, 4, generator=g)
    rec[:, 11:] = torch.rand(N, 3, generator=g)
    K = default_intrinsics(H, W, 60.0)
    cams = Cameras.cat([method_trajectories(K, H, W, T, seed=0)[v][[0, 4, 8]] for v in (0, 3)])
    target = torch.rand(len(cams), 3, H, W, generator=g)
    tdepth = 2.0 + torch.rand(len(cams), 1, H, W, generator=g)
    opts = RenderOptions(near=0.01, backend="cpu")
    grads = []
    for deferred in (True, False):
        r = rec.clone().requires_grad_(True)
        out = render_views(r, cams, 1.0, opts, deferred=deferred)
        loss = ((out.rgb - target) ** 2).mean() + 0.1 * ((out.depth - tdepth).abs() * out.alpha).mean()
        loss.backward()
        grads.append(r.grad)
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-7)
    # and the images equal those of one direct rasterize call
    ref = rasterize(records_to_gaussians(rec), cams, torch.ones(3), options=opts)
    with torch.no_grad():
        out = render_views(rec, cams, 1.0, opts, deferred=True)
    torch.testing.assert_close(out.rgb, ref.rgb)


# ---------------------------------------------------------------------------------------------- config
def test_config_is_strict_and_round_trips(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path)
    p = tmp_path / "c.yaml"
    p.write_text(cfg.to_yaml())
    assert TrainConfig.load(p) == cfg
    assert TrainConfig.load(p, ["optim.lr=0.5", "data.target_size=[16, 24]"]).optim.lr == 0.5
    p.write_text(cfg.to_yaml() + "bogus: 1\n")
    with pytest.raises(ConfigError, match="bogus"):
        TrainConfig.load(p)
    with pytest.raises(ConfigError, match="optim.lr"):
        TrainConfig.from_dict({"optim": {"lr": "fast"}})
    with pytest.raises(ConfigError, match="render.mode"):
        TrainConfig.from_dict({"render": {"mode": "ewa"}})
    with pytest.raises(ConfigError, match="steps"):
        TrainConfig.from_dict({"steps": 1.5})


def test_lr_cooldown_falls_linearly_to_its_floor_over_the_last_steps() -> None:
    from lyra.train.trainer import lr_schedule

    cfg = TrainConfig.from_dict({"steps": 100, "optim": {"warmup_steps": 9, "cooldown_steps": 40,
                                                         "final_lr_ratio": 0.1}})
    f = lr_schedule(cfg)
    assert f(0) == pytest.approx(0.1) and f(9) == f(30) == f(60) == 1.0  # warm-up, then constant
    assert f(80) == pytest.approx(0.55) and f(100) == pytest.approx(0.1) and f(150) == pytest.approx(0.1)
    constant = TrainConfig.from_dict({"steps": 100, "optim": {"warmup_steps": 0}})
    assert lr_schedule(constant)(99) == 1.0  # no cool-down by default (the method's constant rate)
    with pytest.raises(ConfigError, match="final_lr_ratio"):
        TrainConfig.from_dict({"optim": {"cooldown_steps": 10, "final_lr_ratio": 2.0}}).validate()


def test_shipped_stage_configs_load() -> None:
    root = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(f for f in root.glob("*/*.yaml") if f.parent.name not in ("tokenizer", "teacher"))  # decoder stages
    assert len(files) >= 6
    for f in files:
        TrainConfig.load(f)


def test_shipped_tokenizer_configs_load() -> None:
    from lyra.tokenizer.train import TrainConfig as TokenizerTrainConfig
    from lyra.utils.inputs import parse_yaml, read_text

    files = sorted((Path(__file__).resolve().parents[1] / "configs" / "tokenizer").glob("*.yaml"))
    assert files
    for f in files:
        cfg = TokenizerTrainConfig.from_dict(parse_yaml(read_text(f), f), str(f))
        assert cfg.ema_decay > 0
        assert cfg.model.pca_shortcut or (cfg.init_from and cfg.freeze_encoder)  # a fine-tune takes its model


# ---------------------------------------------------------------------------------------------- resume
def test_resume_gives_identical_weights_and_logs(tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    src = SyntheticSource()
    straight = Trainer(tiny_config(tmp_path / "a", steps=4), source=src, tokenizer=tok, progress=False)
    summary = straight.run()
    assert summary["steps_this_run"] == 4
    Trainer(tiny_config(tmp_path / "b", steps=2), source=src, tokenizer=tok, progress=False).run()
    resumed = Trainer(tiny_config(tmp_path / "b", steps=4), source=src, tokenizer=tok, progress=False)
    assert resumed.step == 2
    resumed.run()
    wa, wb = weights(tmp_path / "a" / "final"), weights(tmp_path / "b" / "final")
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0, msg=k)
    w0 = Trainer(tiny_config(tmp_path / "c", steps=0), source=src, tokenizer=tok, progress=False).unwrapped
    assert any(not torch.equal(w0.state_dict()[k], wa[k]) for k in wa), "training changed nothing"
    rows = (tmp_path / "b" / "losses.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]
    assert (tmp_path / "b" / "losses.png").is_file()
    assert sorted(p.name for p in (tmp_path / "a").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    ck = tmp_path / "a" / "checkpoint-4"
    assert {"model.safetensors", "config.json", "optimizer.pt", "scheduler.pt", "state.json", "rng-0.pt"} <= {
        p.name for p in ck.iterdir()}
    assert json.loads((ck / "state.json").read_text())["step"] == 4


def test_init_from_previous_stage_trains_relative_steps(tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    src = SyntheticSource(num_views=1)
    Trainer(tiny_config(tmp_path / "s1", steps=2), source=src, tokenizer=tok, progress=False).run()
    cfg2 = tiny_config(tmp_path / "s2", steps=1, init_from=str(tmp_path / "s1"),
                       model={"prune_ratio": 0.5}, loss={"opacity": 0.1})
    tr = Trainer(cfg2, source=src, tokenizer=tok, progress=False)
    assert tr.step == 0
    w1 = weights(tmp_path / "s1" / "final")
    for k, v in tr.unwrapped.state_dict().items():
        torch.testing.assert_close(v, w1[k], rtol=0, atol=0)
    assert tr.optimizer.state, "optimiser moments carried over"
    row = tr.train_step()
    assert "opacity" in row and 0 < row["opacity"] < 1


# ---------------------------------------------------------------------------------------------- two processes
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    try:
        tr = Trainer(tiny_config(Path(out), steps=2), source=SyntheticSource(), tokenizer=tiny_tokenizer(),
                     progress=False)
        first = {}
        # gradients after the DDP all-reduce are equal on both ranks although the samples differ
        loss, _ = tr.sample_loss(tr.draw(0)[0])
        tr.acc.backward(loss)
        first = {n: p.grad.clone() for n, p in tr.unwrapped.named_parameters() if p.grad is not None}
        tr.optimizer.zero_grad(set_to_none=True)
        tr.run()
        res = {"n": tr.acc.num_processes, "loss": float(loss), "grads": first,
               "weights": {k: v.clone() for k, v in tr.unwrapped.state_dict().items()}}
    except Exception as exc:  # pragma: no cover - reported to the parent
        res = {"error": repr(exc)}
    torch.save(res, f"{out}-rank{rank}.pt")


def test_two_cpu_processes_synchronise_gradients(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, str(tmp_path / "run"))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    res = [torch.load(tmp_path / f"run-rank{r}.pt", weights_only=True) for r in range(2)]
    assert all(r.get("n") == 2 for r in res), res
    assert res[0]["loss"] != res[1]["loss"]  # each rank draws its own samples ...
    g0, g1 = res[0]["grads"], res[1]["grads"]
    assert g0.keys() == g1.keys() and g0
    for k in g0:  # ... yet the all-reduced gradients agree
        torch.testing.assert_close(g0[k], g1[k], msg=k)
    for k in res[0]["weights"]:
        torch.testing.assert_close(res[0]["weights"][k], res[1]["weights"][k], rtol=0, atol=0, msg=k)
    assert (tmp_path / "run" / "checkpoint-2" / "rng-1.pt").is_file()
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()


# ---------------------------------------------------------------------------------------------- SDG end to end
@pytest.fixture(scope="module")
def sdg_root(tmp_path_factory) -> tuple[Path, Path]:
    """A 3-scene SDG dataset (9 frames, 32×48) written by ``lyra.pipelines.sdg.run_sdg`` with a tiny tokenizer."""
    from lyra.pipelines.sdg import SDGConfig, run_sdg

    base = tmp_path_factory.mktemp("sdg")
    torch.set_num_threads(1)
    tok = tiny_tokenizer()
    tok.save_pretrained(base / "tok")
    run_sdg(SDGConfig(scenes=3, frames=T, height=H, width=W, tokenizer=str(base / "tok")), base / "data", tok,
            progress=False)
    return base / "data", base / "tok"


def test_training_against_teacher_and_exact_targets(sdg_root: tuple[Path, Path], tmp_path: Path) -> None:
    from lyra.tokenizer import load_tokenizer

    data, tok = sdg_root
    cfg = tiny_config(tmp_path, steps=1, tokenizer=str(tok),
                      data={"root": str(data), "num_test_scenes": 1, "num_views": 1, "num_targets": 2,
                            "target_size": [16, 24], "targets": "both"})
    tr = Trainer(cfg, tokenizer=load_tokenizer(tok), progress=False)
    s = tr.draw(0)[0]
    assert s.images_exact is not None and s.images_exact.shape == s.images_target.shape
    row = tr.train_step()
    assert np.isfinite(row["loss"]) and row["psnr"] != row["psnr_exact"]


def test_cli_trains_on_an_sdg_dataset(sdg_root: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    import argparse

    from lyra.cli import train_cmd

    data, tok = sdg_root
    cfg = tiny_config(tmp_path / "run", steps=2, tokenizer=str(tok),
                      data={"root": str(data), "num_test_scenes": 1, "num_views": 2, "num_targets": 2,
                            "target_size": [16, 24]})
    p = tmp_path / "stage.yaml"
    p.write_text(cfg.to_yaml())
    parser = argparse.ArgumentParser()
    train_cmd.add_parser(parser.add_subparsers())
    args = parser.parse_args(["train", str(p), "--quiet", "--set", "log_every=2"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "2 training scenes" in out and "steps/s" in out
    assert "config:" not in out  # --quiet: no config dump
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["final"]["views"] == 2.0
    assert {"mse", "ssim", "depth", "psnr"} <= set(summary["final"])


def test_several_dataset_folders_pool_their_scenes(sdg_root: tuple[Path, Path], tmp_path: Path) -> None:
    from lyra.pipelines.sdg import SDGConfig, run_sdg
    from lyra.tokenizer import load_tokenizer
    from lyra.train.trainer import SceneSource

    data, tok = sdg_root
    other = tmp_path / "other"  # a second run (another seed) made beside the first
    run_sdg(SDGConfig(scenes=2, seed=7, frames=T, height=H, width=W, tokenizer=str(tok)), other,
            load_tokenizer(tok), progress=False)
    cfg = tiny_config(tmp_path / "run", steps=1, tokenizer=str(tok),
                      data={"root": [str(data), str(other)], "split_method": "last", "num_test_scenes": 1,
                            "num_views": 1, "num_targets": 1, "target_size": [16, 24]})
    cfg = TrainConfig.from_dict(yaml.safe_load(cfg.to_yaml()))  # a list survives the YAML round trip
    src = SceneSource(cfg.data, "train")
    assert len(src) == 2 + 1  # each folder keeps its own last scene for testing
    keys = [key for _, key in src._index]
    assert keys == ["scene_0_00000", "scene_0_00001", "scene_7_00000"]
    assert src.get(2, np.random.default_rng(0)).key == "scene_7_00000"
    tr = Trainer(cfg, tokenizer=load_tokenizer(tok), progress=False)
    assert np.isfinite(tr.train_step()["loss"])
    missing = TrainConfig.from_dict(yaml.safe_load(cfg.to_yaml().replace(str(other), str(tmp_path / "nope"))))
    with pytest.raises(FileNotFoundError, match="nope: dataset folder"):
        missing.check_paths()


def test_window_mode_encodes_input_frames_online(sdg_root: tuple[Path, Path], tmp_path: Path) -> None:
    from lyra.tokenizer import load_tokenizer

    data, tok_dir = sdg_root
    cfg = tiny_config(tmp_path / "w", steps=1, tokenizer=str(tok_dir),
                      data={"root": str(data), "num_test_scenes": 1, "mode": "window", "input_frames": T,
                            "num_targets": 3, "input_size": [32, 32], "target_size": [16, 24]})
    tr = Trainer(cfg, tokenizer=load_tokenizer(tok_dir), progress=False)
    s = tr.draw(0)[0]
    assert s.latents is None and s.images_input.shape == (T, 3, H, W)
    latents, cams = tr._inputs(s)
    assert latents.shape == (2, 16, 4, 4) and (cams[0].height, cams[0].width) == (32, 32)
    # centre crop 32x48 -> 32x32 shifts the principal point by 8 pixels
    torch.testing.assert_close(cams[0].cx, s.cameras_input[0].cx - 8.0)
    row = tr.train_step()
    assert row["views"] == 1.0 and np.isfinite(row["loss"])


def test_incomplete_checkpoints_are_ignored_and_old_ones_pruned(tmp_path: Path) -> None:
    from lyra.train import checkpoint as ckpt

    tok = tiny_tokenizer()
    tr = Trainer(tiny_config(tmp_path, steps=0, keep_checkpoints=2), source=SyntheticSource(), tokenizer=tok,
                 progress=False)
    for step in (1, 2, 3):
        tr.step = step
        tr.save()
    assert [p.name for p in ckpt.checkpoint_dirs(tmp_path)] == ["checkpoint-2", "checkpoint-3"]
    (tmp_path / "checkpoint-9").mkdir()  # a crash before state.json: not a checkpoint
    (tmp_path / ".checkpoint-10.tmp").mkdir()
    assert ckpt.latest_checkpoint(tmp_path) == tmp_path / "checkpoint-3"
    assert Trainer(tiny_config(tmp_path, steps=5), source=SyntheticSource(), tokenizer=tok,
                   progress=False).step == 3


def test_loss_log_drops_rows_past_the_resume_step_and_a_torn_last_line(tmp_path: Path) -> None:
    from lyra.train.logging import LossLog

    log = LossLog(tmp_path)
    for step in (1, 2, 3):
        log.append({"step": step, "loss": 0.5 / step, "lr": 1.25e-05})
    with open(tmp_path / "losses.csv", "a") as fh:  # a process killed in the middle of an append
        fh.write("4,0.12,1.2e")
    resumed = LossLog(tmp_path, resume_step=2)
    assert [r["step"] for r in resumed.rows] == [1, 2]
    resumed.append({"step": 3, "loss": 0.1, "lr": 1.0e-05})
    again = LossLog(tmp_path, resume_step=3)
    assert [r["step"] for r in again.rows] == [1, 2, 3] and again.rows[-1]["loss"] == 0.1
    with open(tmp_path / "losses.csv", "a") as fh:  # torn inside the step field of a later row
        fh.write("1")
    assert [r["step"] for r in LossLog(tmp_path, resume_step=3).rows] == [1, 2, 3]


# ---------------------------------------------------------------------------------------------- dynamic stage
@pytest.fixture(scope="module")
def dynamic_root(tmp_path_factory) -> tuple[Path, Path]:
    """A 1-scene dynamic SDG dataset (12 folders, 9 frames, 32×48) and its tiny tokenizer."""
    from lyra.pipelines.sdg_dynamic import DynamicSDGConfig, run_dynamic_sdg

    base = tmp_path_factory.mktemp("dyn")
    torch.set_num_threads(1)
    tok = tiny_tokenizer()
    tok.save_pretrained(base / "tok")
    run_dynamic_sdg(DynamicSDGConfig(scenes=1, frames=T, height=H, width=W, kind="room",
                                     tokenizer=str(base / "tok")), base / "data", tok, progress=False)
    return base / "data", base / "tok"


def test_dynamic_stage_branches_from_static_weights_and_trains_the_time_embeddings(dynamic_root, tmp_path) -> None:
    from lyra.tokenizer import load_tokenizer

    data, tokp = dynamic_root
    tok = load_tokenizer(tokp)
    Trainer(tiny_config(tmp_path / "static", steps=1), source=SyntheticSource(num_views=1), tokenizer=tok,
            progress=False).run()
    dyn = {"root": str(data), "mode": "dynamic", "num_test_scenes": 0, "num_views": 1, "target_size": [16, 24]}
    cfg = tiny_config(tmp_path / "dyn", steps=2, tokenizer=str(tokp), init_from=str(tmp_path / "static"),
                      init_optimizer=False, data=dyn, model={"overrides": {**TINY_DEC, "use_time": True}})
    tr = Trainer(cfg, tokenizer=tok, progress=False)
    assert tr.unwrapped.config.use_time
    assert all(p.requires_grad for p in tr.unwrapped.patch_time_embed.parameters())
    # at the branch point the time embeddings are zero: the static Gaussians at any time
    s = tr.draw(0)[0]
    assert s.times_target is not None and len(torch.unique(s.times_target)) == 1
    static = LyraDecoder.from_pretrained(tmp_path / "static" / "final")
    lat, cams = tr._inputs(s)
    pl, ro, rd = tr.cond.sample(cams)
    with torch.no_grad():
        a = static(lat[None], pl, ro, rd, num_views=1).records[0]
        for t in (0.0, 1.0):
            time = tr.cond.time(s.times_input, t, cams[0].height, cams[0].width)
            b = tr.unwrapped(lat[None], pl, ro, rd, num_views=1, time=time).records[0]
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    w0 = tr.unwrapped.patch_time_embed_tgt.proj.weight.detach().clone()
    tr.run()
    assert not torch.equal(w0, tr.unwrapped.patch_time_embed_tgt.proj.weight)  # the time embeddings learn
    # a static sample (no target time) is refused by a time-conditioned decoder, in one line
    with pytest.raises(ValueError, match="needs times_input and one target time"):
        tr.sample_loss(SyntheticSource(num_views=1).get(0, np.random.default_rng(0)))
    # the flip ablation: targets from folders 0-5 only
    abl = tiny_config(tmp_path / "abl", steps=1, tokenizer=str(tokp), data={**dyn, "target_views": [0, 1, 2, 3, 4, 5]},
                      model={"overrides": {**TINY_DEC, "use_time": True}})
    assert Trainer(abl, tokenizer=tok, progress=False).source.dataset.config.sampling.target_views == tuple(range(6))


def test_loss_series_joins_a_sparse_validation_loss(tmp_path: Path) -> None:
    from lyra.train.logging import LossLog, loss_series

    log = LossLog(tmp_path)
    for step in range(1, 7):  # the validation loss every third row, as the teacher trainer logs it
        val = {"val_loss": 2.0 / step} if step % 3 == 0 else {}
        log.append({"step": step, "loss": 1.0 / step, "lr": 1e-4, **val})
    rows = LossLog(tmp_path, resume_step=6).rows  # read back from the CSV (empty cells)
    series = loss_series(rows)
    assert list(series) == ["loss", "val_loss"]
    assert series["val_loss"] == ([3, 6], [2.0 / 3, 2.0 / 6]) and series["loss"][0] == [1, 2, 3, 4, 5, 6]
    assert log.plot().endswith("losses.png")


def test_plucker_latents_are_kept_on_disk_per_tokenizer(tmp_path: Path, monkeypatch) -> None:
    """A second cache (a restarted trainer) reads the encoded Plücker maps from disk instead of encoding them again;
    a tokenizer with other weights does not see them, and a torn file is encoded again."""
    import lyra.train.conditioning as cond_mod
    from lyra.train.conditioning import ConditioningCache

    cams = method_trajectories(default_intrinsics(H, W, 60.0), H, W, T, seed=3)[1]
    first = ConditioningCache(tiny_tokenizer(), disk=tmp_path)
    pl, o, d = first.trajectory(cams)
    files = list(tmp_path.rglob("*.pt"))
    assert len(files) == 1 and first.disk_hits == 0

    calls = []
    real = cond_mod.encode_plucker
    monkeypatch.setattr(cond_mod, "encode_plucker", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = ConditioningCache(tiny_tokenizer(), disk=tmp_path)
    pl2, o2, d2 = again.trajectory(cams)
    assert calls == [] and again.disk_hits == 1
    for a, b in ((pl, pl2), (o, o2), (d, d2)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    other = ConditioningCache(tiny_tokenizer(seed=1), disk=tmp_path)  # other weights: its own sub-folder
    pl3 = other.trajectory(cams)[0]
    assert calls == [1] and other.disk_hits == 0 and not torch.equal(pl3, pl)
    assert len(list(tmp_path.rglob("*.pt"))) == 2

    files[0].write_bytes(b"torn")
    torn = ConditioningCache(tiny_tokenizer(), disk=tmp_path)
    torch.testing.assert_close(torn.trajectory(cams)[0], pl, rtol=0, atol=0)
    assert calls == [1, 1] and torn.disk_hits == 0
    assert TrainConfig(output_dir=str(tmp_path / "run")).conditioning_cache_dir() == str(
        tmp_path / "run" / "conditioning-cache")
    assert TrainConfig(conditioning_cache="off").conditioning_cache_dir() is None
