"""The self-distillation trainer: decoder -> Gaussians -> renders at the sample cameras vs the teacher frames.

One process, several processes or several machines through Accelerate (``accelerate launch``). Every step,
each process draws its own samples from an RNG seeded by (seed, step, rank, i), so a resumed run draws
exactly the samples the uninterrupted run would have drawn; gradients are averaged across processes by DDP.

Fixes of the method's orchestration quirks (method §13): stages are "initialise from X, train N steps" with
relative step counts; the warmup counts optimiser steps (the scheduler is stepped once per step, not once per
process); losses are float32; the config is strict (unknown keys are errors).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from lyra.cameras import Cameras
from lyra.decoder import DecoderConfig, LyraDecoder
from lyra.render import RenderOptions
from lyra.train import checkpoint as ckpt
from lyra.train.conditioning import ConditioningCache
from lyra.train.config import DataConfig, TrainConfig
from lyra.train.logging import LossLog
from lyra.train.losses import LPIPSVGG, total_loss
from lyra.train.render_loss import render_views
from lyra.train.schedule import cooldown_factor


# ---------------------------------------------------------------------------------------------- samples
@dataclass
class TrainSample:
    """What one training sample must provide (``lyra.data.Sample`` has these attributes).

    Attributes:
        key: scene key.
        latents: [V·T_l, C, h, w] raw tokenizer latents, trajectory-major (None: encode ``images_input``).
        images_input: [V·T, 3, H, W] input frames in [0, 1] (used when ``latents`` is None).
        cameras_input: V camera batches of T cameras each (the decoder's input trajectories).
        images_target: [N, 3, H', W'] teacher frames in [0, 1].
        depths_target: [N, 1, H', W'] z-depth (0 = invalid), or None.
        cameras_target: N cameras of the targets (H'×W').
        images_exact: [N, 3, H', W'] exact renders of the targets, also compared with (data.targets "both").
        times_input: [T] normalised times of the input frames; times_target: [N] of the targets (one value in
            dynamic sampling). Needed by a time-conditioned decoder.
    """

    key: str
    latents: Tensor | None
    images_input: Tensor | None
    cameras_input: list[Cameras]
    images_target: Tensor
    depths_target: Tensor | None
    cameras_target: Cameras
    images_exact: Tensor | None = None
    times_input: Tensor | None = None
    times_target: Tensor | None = None


class SampleSource(Protocol):
    """Anything that yields samples by index: ``len(source)`` scenes and ``source.get(index, rng)``."""

    def __len__(self) -> int: ...

    def get(self, index: int, rng: np.random.Generator) -> Any: ...


class SceneSource:
    """A :class:`SampleSource` over one or more SDG dataset folders (``lyra.data.SceneDataset``), scenes pooled."""

    def __init__(self, cfg: DataConfig, split: str = "train", seed: int = 0) -> None:
        from lyra.data import ReaderConfig, SamplingConfig

        sampling = SamplingConfig(
            mode=cfg.mode, num_views=cfg.num_views, max_views=cfg.max_views,
            input_views=tuple(cfg.input_views) if cfg.input_views is not None else None,
            target_views=tuple(cfg.target_views) if cfg.target_views is not None else None,
            input_frames=cfg.input_frames, num_targets=cfg.num_targets, target_selection=cfg.target_selection)
        rc = ReaderConfig(sampling=sampling, split_method=cfg.split_method, num_test_scenes=cfg.num_test_scenes,
                          test_fraction=cfg.test_fraction, load_depth=cfg.load_depth,
                          target_size=tuple(cfg.target_size) if cfg.target_size else None, stats=cfg.stats,
                          seed=seed, targets=cfg.targets)
        self._args = (cfg.roots, rc, split)
        self.refresh()

    def refresh(self) -> int:
        """Re-list the scenes (an SDG run still writing adds complete scenes); returns the new count."""
        from lyra.data import SceneDataset

        roots, rc, split = self._args
        self.datasets = [SceneDataset(root, rc, split=split) for root in roots]  # type: ignore[arg-type]
        self._index = [(d, key) for d in self.datasets for key in d.keys]
        return len(self._index)

    @property
    def dataset(self) -> Any:
        """The first folder's dataset (its reader settings are every folder's)."""
        return self.datasets[0]

    def __len__(self) -> int:
        return len(self._index)

    def get(self, index: int, rng: np.random.Generator) -> Any:
        dataset, key = self._index[index]
        return dataset.load(key, rng)


# ---------------------------------------------------------------------------------------------- pieces
def build_decoder(cfg: TrainConfig) -> LyraDecoder:
    """The decoder of a stage (preset + overrides; prune ratio and checkpointing from the stage)."""
    base = DecoderConfig.pocket if cfg.model.preset == "pocket" else DecoderConfig.official
    dc = base(**{**cfg.model.overrides, "prune_ratio": cfg.model.prune_ratio,
                 "gradient_checkpointing": cfg.model.gradient_checkpointing})
    return LyraDecoder(dc)


def lr_schedule(cfg: TrainConfig):
    """The run's lr factor per optimiser step: linear from 1/(warmup+1) up to 1 over ``optim.warmup_steps``, then 1,
    times the linear cool-down to ``optim.final_lr_ratio`` over the last ``optim.cooldown_steps`` of ``steps``."""
    o = cfg.optim

    def f(step: int) -> float:
        warm = 1.0 if o.warmup_steps <= 0 else min(1.0, (step + 1) / (o.warmup_steps + 1))
        return warm * cooldown_factor(step, cfg.steps, o.cooldown_steps, o.final_lr_ratio)

    return f


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    return torch.device(name)


def _init_source(path: str) -> Path:
    """``init_from``: a checkpoint, a pretrained folder, or a stage folder (its newest checkpoint, else final/)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"init_from: {p} not found")
    if p.is_dir() and not (p / "model.safetensors").is_file():
        latest = ckpt.latest_checkpoint(p)
        if latest is not None:
            return latest
        if (p / "final" / "model.safetensors").is_file():
            return p / "final"
        raise FileNotFoundError(f"init_from: {p} holds no model.safetensors, checkpoint-* or final/")
    return p


# ---------------------------------------------------------------------------------------------- trainer
class Trainer:
    """Runs one stage.

    Args:
        cfg: the stage config.
        source: training samples (default: ``SceneSource(cfg.data)``).
        tokenizer: the frozen tokenizer (default: ``lyra.tokenizer.load_tokenizer(cfg.tokenizer)``).
        accelerator: an ``accelerate.Accelerator`` (default: one built from the config).
        progress: show a progress bar on the main process.
        quiet: no config dump (the one-line banner, the resume line and errors still print).
    """

    def __init__(self, cfg: TrainConfig, source: SampleSource | None = None, tokenizer: Any = None,
                 accelerator: Any = None, progress: bool = True, quiet: bool = False) -> None:
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        self.cfg = cfg.validate()
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        device = resolve_device(cfg.device)
        mp = cfg.mixed_precision
        if mp == "auto":
            mp = "bf16" if device.type == "cuda" else "no"
        self.acc = accelerator or Accelerator(cpu=device.type == "cpu", mixed_precision=mp)
        self.device = self.acc.device
        self.progress, self.quiet = progress, quiet
        if tokenizer is None:
            from lyra.tokenizer import load_tokenizer

            tokenizer = load_tokenizer(cfg.tokenizer, device=self.device)
        self.tokenizer = tokenizer
        if hasattr(tokenizer, "requires_grad_"):
            tokenizer.requires_grad_(False)
            tokenizer.eval()
        self.source = source if source is not None else SceneSource(cfg.data, "train", cfg.seed)
        self.cond = ConditioningCache(tokenizer, device=self.device, disk=cfg.conditioning_cache_dir())
        self.lpips = None
        if cfg.loss.lpips_weights:
            self.lpips = LPIPSVGG.from_files(cfg.loss.lpips_weights).to(self.device)
        set_seed(cfg.seed)  # python, numpy and torch: the checkpoint restores all three, so all three start known
        model = build_decoder(cfg)
        if not model.config.use_time:  # unused in static training: keep them out of the optimiser and of DDP
            for name in ("patch_time_embed", "patch_time_embed_tgt"):
                getattr(model, name).requires_grad_(False)
        self.model = model
        self.optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.optim.lr,
                                           betas=tuple(cfg.optim.betas), eps=cfg.optim.eps,  # type: ignore[arg-type]
                                           weight_decay=cfg.optim.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_schedule(cfg))
        self.step = 0
        self.elapsed = 0.0
        self.out = Path(cfg.output_dir)
        self._restore()
        # the scheduler is deliberately not prepared: Accelerate would step it once per process
        self.model, self.optimizer = self.acc.prepare(self.model, self.optimizer)
        r = cfg.render
        self.render_options = RenderOptions(near=r.near, far=r.far, mode=r.mode, backend=r.backend)
        self.background = torch.tensor(r.background, dtype=torch.float32, device=self.device)

    # ------------------------------------------------------------------ state
    @property
    def unwrapped(self) -> LyraDecoder:
        return self.acc.unwrap_model(self.model)

    def _restore(self) -> None:
        cfg = self.cfg
        latest = ckpt.latest_checkpoint(self.out) if cfg.resume else None
        if latest is not None:
            ckpt.load_model_weights(self.model, latest)
            ckpt.load_optimizer(self.optimizer, latest)
            ckpt.load_scheduler(self.scheduler, latest)
            ckpt.load_rng(latest, self.acc.process_index)
            st = json.loads((latest / ckpt.STATE_NAME).read_text())
            self.step, self.elapsed = int(st["step"]), float(st.get("elapsed_s", 0.0))
            self._print(f"resumed from {latest} (step {self.step})")
        elif cfg.init_from:
            src = _init_source(cfg.init_from)
            ckpt.load_model_weights(self.model, src)
            note = ""
            src_cfg = ckpt.read_decoder_config(src)
            if self.model.config.use_time and src_cfg is not None and not src_cfg.use_time:
                # static -> dynamic (method §7.1 stage 8): zero time embeddings, the static decoder's Gaussians
                with torch.no_grad():
                    self.model.patch_time_embed.reset_parameters()
                    self.model.patch_time_embed_tgt.reset_parameters()
                note = " (static weights, time embeddings zero-initialised)"
            if cfg.init_optimizer:
                try:
                    if ckpt.load_optimizer(self.optimizer, src):
                        note += " and optimiser state"
                        for g in self.optimizer.param_groups:  # the new stage's hyper-parameters win
                            g["lr"] = g["initial_lr"] = cfg.optim.lr
                            g["weight_decay"] = cfg.optim.weight_decay
                        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_schedule(cfg))
                except ValueError as exc:
                    note += f" (optimiser state not taken: {exc})"
            self._print(f"initialised from {src}: weights{note}")

    def _print(self, msg: str) -> None:
        if self.acc.is_main_process:
            print(msg, flush=True)

    def save(self) -> Path | None:
        """Write ``checkpoint-<step>``: every file (the model by the main process, each process's RNG) goes
        into a staging folder that is renamed into place last; returns the folder on the main process."""
        main = self.acc.is_main_process
        if main:
            ckpt.begin_checkpoint(self.out, self.step)
        self.acc.wait_for_everyone()
        tmp = ckpt.staging_dir(self.out, self.step)
        if main:
            ckpt.write_training_state(tmp, self.unwrapped, self.optimizer, self.scheduler)
        ckpt.save_rng(tmp, self.acc.process_index)
        self.acc.wait_for_everyone()
        path = None
        if main:
            path = ckpt.commit_checkpoint(self.out, self.step,
                                          {"stage": self.cfg.name, "elapsed_s": self.elapsed,
                                           "num_processes": self.acc.num_processes, "config": self.cfg.to_dict()},
                                          keep=self.cfg.keep_checkpoints)
        self.acc.wait_for_everyone()
        return path

    # ------------------------------------------------------------------ one step
    def draw(self, step: int) -> list[Any]:
        """The samples of this process for ``step`` (a pure function of seed, step, rank and the scene count)."""
        out = []
        for b in range(self.cfg.optim.batch_size):
            rng = np.random.default_rng([self.cfg.seed, step, self.acc.process_index, b])
            out.append(self.source.get(int(rng.integers(len(self.source))), rng))
        return out

    def _inputs(self, s: Any) -> tuple[Tensor, list[Cameras]]:
        """(latents [V·T_l, C, h, w], input cameras): stored latents, or input frames encoded online."""
        if s.latents is not None:
            return s.latents, list(s.cameras_input)
        if s.images_input is None:
            raise ValueError(f"sample {s.key}: neither latents nor input frames")
        V = len(s.cameras_input)
        images, cams = s.images_input, list(s.cameras_input)
        if self.cfg.data.input_size is not None:
            from lyra.data.reader import crop_resize

            h, w = self.cfg.data.input_size
            T_in = len(cams[0])
            images, K = crop_resize(images, torch.cat([c.K for c in cams]), (h, w))
            cams = [Cameras(c.w2c, K[i * T_in : (i + 1) * T_in], h, w) for i, c in enumerate(cams)]
        frames = images.reshape(V, -1, *images.shape[1:])
        with torch.no_grad():
            zs = [self.tokenizer.encode((f.permute(1, 0, 2, 3)[None] * 2 - 1).to(self.device))[0] for f in frames]
        return torch.cat([z.permute(1, 0, 2, 3) for z in zs]).float(), cams

    def sample_loss(self, s: Any) -> tuple[Tensor, dict[str, float]]:
        """Loss of one sample (float32), with a graph back to the decoder parameters."""
        cfg, dev = self.cfg, self.device
        V = len(s.cameras_input)
        latents, cams_in = self._inputs(s)
        pl, ro, rd = self.cond.sample(cams_in)
        time_cond = None
        if self.unwrapped.config.use_time:
            t_in, t_tgt = getattr(s, "times_input", None), getattr(s, "times_target", None)
            if t_in is None or t_tgt is None or len(torch.unique(torch.as_tensor(t_tgt))) != 1:
                raise ValueError(f"sample {s.key}: a time-conditioned decoder needs times_input and one target time "
                                 "(data.mode: dynamic)")
            time_cond = self.cond.time(t_in, t_tgt[0], cams_in[0].height, cams_in[0].width).to(dev)
        with self.acc.autocast():
            out = self.model(latents[None].to(dev), pl.to(dev), ro.to(dev), rd.to(dev), num_views=V,
                             time=time_cond, prune_ratio=cfg.model.prune_ratio)
        rec = out.records[0].float()
        r = render_views(rec, s.cameras_target.to(dev), self.background, self.render_options,
                         deferred=cfg.render.deferred, chunk=cfg.render.chunk)
        depth = s.depths_target.to(dev) if s.depths_target is not None else None

        def against(target: Tensor) -> tuple[Tensor, dict[str, float]]:
            loss, terms = total_loss(cfg.loss.weights(), r.rgb, target, r.depth, depth, rec[:, 3], self.lpips,
                                     cfg.loss.lpips_chunk)
            with torch.no_grad():
                mse = ((r.rgb.clamp(0, 1) - target) ** 2).mean()
                terms["psnr"] = float(-10 * torch.log10(mse.clamp_min(1e-12)))
            return loss, terms

        loss, terms = against(s.images_target.to(dev))
        exact = getattr(s, "images_exact", None)
        if exact is not None:  # data.targets "both": the teacher's frames and the exact renders, equally weighted
            loss_x, terms_x = against(exact.to(dev))
            loss = 0.5 * (loss + loss_x)
            terms = {**{k: 0.5 * (v + terms_x[k]) for k, v in terms.items() if k != "psnr"},
                     "psnr": terms["psnr"], "psnr_exact": terms_x["psnr"]}
        terms["views"] = float(V)
        return loss, terms

    def train_step(self) -> dict[str, float]:
        """One optimiser step; returns the logged terms (this process's samples)."""
        t0 = time.perf_counter()
        samples = self.draw(self.step)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        losses, logs = [], []
        for s in samples:
            loss, terms = self.sample_loss(s)
            losses.append(loss)
            logs.append(terms)
        loss = torch.stack(losses).mean()
        self.acc.backward(loss)
        params = [p for p in self.model.parameters() if p.requires_grad]
        gn = self.acc.clip_grad_norm_(params, self.cfg.optim.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        row = {k: float(np.mean([t[k] for t in logs if k in t])) for k in logs[0]}
        row["grad_norm"] = float(gn)
        row["lr"] = float(self.scheduler.get_last_lr()[0])
        row["s_per_step"] = time.perf_counter() - t0
        self.elapsed += row["s_per_step"]
        return row

    # ------------------------------------------------------------------ the stage
    def run(self) -> dict[str, Any]:
        """Train until ``cfg.steps``; writes checkpoints, ``losses.csv/png``, ``final/`` and ``summary.json``."""
        from tqdm import tqdm

        cfg = self.cfg
        self._print(f"lyra train: stage {cfg.name!r}, {self.acc.num_processes} process(es) on {self.device}, "
                    f"mixed precision {self.acc.mixed_precision}, {self.unwrapped.num_parameters():,} parameters, "
                    f"{len(self.source)} training scenes, lpips {'on' if self.lpips is not None else 'off (SSIM)'}")
        if not self.quiet:
            self._print("config:\n" + cfg.to_yaml())
        log = LossLog(self.out, resume_step=self.step) if self.acc.is_main_process else None
        start, t_start, e_start = self.step, time.perf_counter(), self.elapsed
        bar = tqdm(total=cfg.steps, initial=self.step, desc=cfg.name, unit="step",
                   disable=not (self.progress and self.acc.is_main_process))
        window: list[dict[str, float]] = []
        while self.step < cfg.steps:
            row = self.train_step()
            window.append(row)
            bar.update(1)
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                mean = {k: float(np.mean([r[k] for r in window if k in r])) for k in window[-1]}
                mean["step"] = self.step  # int in the CSV
                if log is not None:
                    log.append(mean)
                bar.set_postfix(loss=f"{mean['loss']:.4f}", psnr=f"{mean['psnr']:.2f}",
                                s_step=f"{mean['s_per_step']:.2f}")
                window = []
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                self.save()
                if hasattr(self.source, "refresh"):  # pick up scenes a concurrent `lyra sdg` has completed
                    self.source.refresh()
                if log is not None:
                    log.plot()
        bar.close()
        wall = time.perf_counter() - t_start
        # steps_per_s: wall clock of this run (start-up and checkpoints included); step_steps_per_s: steps only
        summary = {"stage": cfg.name, "steps": cfg.steps, "steps_this_run": self.step - start,
                   "wall_s_this_run": wall, "train_s_total": self.elapsed,
                   "steps_per_s": (self.step - start) / wall if wall > 0 and self.step > start else math.nan,
                   "step_steps_per_s": ((self.step - start) / (self.elapsed - e_start)
                                        if self.step > start else math.nan),
                   "num_processes": self.acc.num_processes}
        if log is not None and log.rows:
            summary["final"] = log.rows[-1]
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            self.unwrapped.save_pretrained(self.out / "final")
            plot_note = log.plot() if log is not None else ""
            summary["plot"] = plot_note
            tmp = self.out / "summary.json.tmp"
            tmp.write_text(json.dumps(summary, indent=1, default=float) + "\n")
            os.replace(tmp, self.out / "summary.json")
        return summary


def train(cfg: TrainConfig, **kwargs: Any) -> dict[str, Any]:
    """Build a :class:`Trainer` and run it."""
    return Trainer(cfg, **kwargs).run()
