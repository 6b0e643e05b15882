"""Training of the pocket diffusion teacher (``lyra teacher train CONFIG.yaml``): EDM denoising on cached latents.

Each step draws ``batch_size`` trajectories of a teacher data folder (:class:`lyra.data.teacher.TeacherDataset`) at a
random ``crop`` of their latent grid, a noise level σ ~ exp(N(p_mean, p_std²)) per clip, and trains the network's
EDM denoiser x̂₀ = c_skip·x + c_out·F(c_in·x, c_noise; cache) to the exact renders' latents x₀ with the EDM weight
(σ² + σ_d²)/(σ·σ_d)², on every latent frame but the first. The first frame is the condition, given to the network
exactly as the sampler gives it (:mod:`lyra.generator.diffusion.sampler`): the clean latent with noise at
``augment_sigma``, rescaled to the current level, and the first-frame mask. With probability ``cache_dropout`` a
clip's cache is zeroed, which trains the unconditional branch the guidance uses.

Checkpoints ``<output_dir>/checkpoint-<step>/`` are written atomically: ``config.json`` + ``model.safetensors`` (the
exponential moving average of the weights, what sampling loads: the folder is a ``--diffusion-model``), ``raw.pt``
(the trained weights), ``optimizer.pt``, ``rng-0.pt`` and ``state.json``. A run resumes from its latest checkpoint
bit for bit: the data and noise of step k are drawn from generators seeded with (seed, k).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lyra.data.teacher import TeacherDataset
from lyra.generator.diffusion import edm
from lyra.generator.diffusion.config import Gen3CNetConfig
from lyra.generator.diffusion.model import Gen3CNet, from_pretrained
from lyra.train.checkpoint import STATE_NAME, checkpoint_dirs, latest_checkpoint, load_rng, save_rng
from lyra.train.config import ConfigError, load_yaml_config
from lyra.train.logging import LossLog
from lyra.train.schedule import cooldown_factor
from lyra.utils.typed import from_plain
from lyra.utils.weights import save_weights_folder


def learning_rate(cfg: TeacherTrainConfig, step: int) -> float:
    """The rate of optimisation step ``step`` (0-based): linear warm-up, constant, then the linear cool-down."""
    warm = min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    return cfg.lr * warm * cooldown_factor(step, cfg.steps, cfg.cooldown_steps, cfg.final_lr_ratio)


@dataclass
class TeacherTrainConfig:
    """One teacher training run (YAML; ``--set key=value`` overrides).

    Attributes:
        name: run name (logs).
        data: teacher data folder (``lyra teacher data``).
        output_dir: checkpoints, ``losses.csv``/``losses.png``.
        net: overrides of :meth:`Gen3CNetConfig.pocket` (e.g. ``{num_layers: 8}``).
        init_from: a weights folder to start from (config.json + model.safetensors), or None.
        steps: total optimisation steps.
        batch_size: clips per step.
        crop: latent (h, w) crop of each clip (8× smaller than pixels); every latent frame is kept.
        lr, warmup_steps, weight_decay, max_grad_norm: AdamW with linear warm-up, then constant.
        cooldown_steps, final_lr_ratio: over the last ``cooldown_steps`` steps the rate falls linearly to
            ``final_lr_ratio * lr`` (0 steps: constant to the end).
        ema: decay of the weights' moving average (warmed up as min(ema, (1 + k)/(10 + k))).
        p_mean, p_std: log-normal training noise levels.
        sigma_data: σ_d of the EDM preconditioning (the sampler's).
        augment_sigma: noise level of the condition frame (the sampler's).
        cache_dropout: probability that a clip's cache is zeroed (the guidance's unconditional branch).
        val_clips: the first trajectories (of the first scene) held out for the validation loss (0: none).
        checkpoint_every, keep_checkpoints, log_every: bookkeeping.
        seed: seeds the network init, the data and the noise.
        threads: torch CPU threads (0: torch's default).
    """

    name: str = "pocket-teacher"
    data: str = "runs/teacher-data"
    output_dir: str = "runs/teacher"
    net: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None
    steps: int = 20000
    batch_size: int = 4
    crop: tuple[int, int] = (8, 16)
    lr: float = 3.0e-4
    warmup_steps: int = 200
    cooldown_steps: int = 0
    final_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    ema: float = 0.999
    p_mean: float = -0.4
    p_std: float = 1.4
    sigma_data: float = 0.5
    augment_sigma: float = 0.001
    cache_dropout: float = 0.1
    val_clips: int = 6
    checkpoint_every: int = 250
    keep_checkpoints: int = 3
    log_every: int = 25
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or min(self.crop) < 2 or self.lr <= 0 or not 0 <= self.ema < 1:
            raise ConfigError(f"teacher config: need steps >= 0, batch_size >= 1, crop >= 2, lr > 0 and ema in "
                              f"[0, 1); got steps={self.steps}, batch_size={self.batch_size}, crop={self.crop}, "
                              f"lr={self.lr}, ema={self.ema}")
        if self.cooldown_steps < 0 or not 0 <= self.final_lr_ratio <= 1:
            raise ConfigError(f"teacher config: need cooldown_steps >= 0 and final_lr_ratio in [0, 1]; got "
                              f"{self.cooldown_steps}, {self.final_lr_ratio}")
        if not 0 <= self.cache_dropout < 1 or self.checkpoint_every < 1 or self.log_every < 1:
            raise ConfigError("teacher config: need cache_dropout in [0, 1), checkpoint_every >= 1, log_every >= 1")
        self.network()  # the net overrides must make a valid network

    def network(self) -> Gen3CNetConfig:
        try:
            return Gen3CNetConfig.pocket(**self.net)
        except TypeError as exc:
            raise ConfigError(f"teacher config: net: {exc}") from exc

    @classmethod
    def load(cls, path: str | os.PathLike, overrides: list[str] | None = None) -> TeacherTrainConfig:
        """Read a YAML run config (``overrides``: ``dotted.key=yaml_value``); problems raise ConfigError."""
        d = load_yaml_config(path, overrides)
        try:
            return from_plain(cls, d, "", ConfigError)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc


def diffusion_loss(net: Gen3CNet, x0: Tensor, cache: Tensor, sigma: Tensor, noise: Tensor, aug_noise: Tensor,
                   drop: Tensor, cfg: TeacherTrainConfig) -> Tensor:
    """The EDM-weighted denoising loss of one batch.

    Args:
        x0: [B, C, T_l, h, w] clean diffusion-space latents (frame 0 is the condition).
        cache: [B, 2·buffers·C, T_l, h, w] cache latents.
        sigma: [B] noise levels; noise, aug_noise: standard normal like ``x0``; drop: [B] bool, cache zeroed.
    """
    sd, s_aug = cfg.sigma_data, cfg.augment_sigma
    s = sigma.view(-1, 1, 1, 1, 1)
    T = x0.shape[2]
    ind = (torch.arange(T, device=x0.device) < 1).float().view(1, 1, T, 1, 1)
    x = ind * (x0 + s_aug * aug_noise) * edm.c_in(s_aug, sd) / edm.c_in(s, sd) + (1 - ind) * (x0 + s * noise)
    cache = cache * (~drop).float().view(-1, 1, 1, 1, 1)
    B = x0.shape[0]
    text = x0.new_zeros(1, net.config.text_tokens, net.config.text_dim)
    out = net(x * edm.c_in(s, sd), edm.c_noise(sigma), text, ind.expand(B, 1, *x0.shape[2:]), cache)
    x0_hat = edm.denoised(x, out, s, sd)
    weight = (s**2 + sd**2) / (s * sd) ** 2
    return (weight * (x0_hat - x0) ** 2 * (1 - ind)).sum() / ((1 - ind).sum() * x0[:, :, :1].numel())


class TeacherTrainer:
    """Builds the network, optimiser and data of a :class:`TeacherTrainConfig`; resumes; :meth:`run` trains."""

    def __init__(self, cfg: TeacherTrainConfig, *, progress: bool = True) -> None:
        self.cfg = cfg
        self.progress = progress
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self.out = Path(cfg.output_dir)
        torch.manual_seed(cfg.seed)
        if cfg.init_from:
            self.net = from_pretrained(cfg.init_from, dtype=torch.float32).train()
        else:
            self.net = Gen3CNet(cfg.network()).train()
        self.ema = {k: v.detach().clone() for k, v in self.net.transformer.state_dict().items()}
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.data = TeacherDataset(cfg.data, crop=cfg.crop)
        fill = self.net.config.cache_fill
        if "cache_fill" in cfg.net and cfg.net["cache_fill"] != self.data.cache_fill:
            raise ConfigError(f"teacher config: net.cache_fill is {cfg.net['cache_fill']!r} but {cfg.data} holds "
                              f"cache renders with {self.data.cache_fill!r} holes")
        if fill != self.data.cache_fill:  # the data decides how the network reads its cache (also from init_from)
            self.net.config = self.net.config.replace(cache_fill=self.data.cache_fill)
        if self.data.target.shape[1] != self.net.config.latent_channels:
            raise ConfigError(f"{cfg.data}: latents have {self.data.target.shape[1]} channels; the network takes "
                              f"{self.net.config.latent_channels}")
        n_val = min(cfg.val_clips, len(self.data) // 2)
        # the first clips (the first scene) are held out, so that more scenes can join a resumed run
        self.val = (self.data.target[:n_val].float(), self.data.cache[:n_val].float()) if n_val else None
        self.n_val = n_val
        self.step = 0
        self._restore()

    # ------------------------------------------------------------------ checkpoints
    def _restore(self) -> None:
        ckpt = latest_checkpoint(self.out)
        if ckpt is None:
            return
        self.net.transformer.load_state_dict(torch.load(ckpt / "raw.pt", map_location="cpu", weights_only=True))
        ema = from_pretrained(ckpt, dtype=torch.float32).transformer.state_dict()
        self.ema = {k: v.detach().clone() for k, v in ema.items()}
        self.opt.load_state_dict(torch.load(ckpt / "optimizer.pt", map_location="cpu", weights_only=True))
        load_rng(ckpt, 0)
        self.step = int(json.loads((ckpt / STATE_NAME).read_text())["step"])
        print(f"lyra teacher train: resumed from {ckpt} (step {self.step})")

    def save(self) -> Path:
        final = self.out / f"checkpoint-{self.step}"
        tmp = self.out / f".tmp-checkpoint-{self.step}"
        shutil.rmtree(tmp, ignore_errors=True)
        save_weights_folder(tmp, self.ema, self.net.config.to_dict())  # the EMA: what sampling loads
        torch.save(self.net.transformer.state_dict(), tmp / "raw.pt")
        torch.save(self.opt.state_dict(), tmp / "optimizer.pt")
        save_rng(tmp, 0)
        (tmp / STATE_NAME).write_text(json.dumps({"step": self.step, "name": self.cfg.name,
                                                  "config": _plain(asdict(self.cfg))}, indent=1) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in checkpoint_dirs(self.out)[:-self.cfg.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    # ------------------------------------------------------------------ steps
    def _draw(self, step: int) -> tuple[Tensor, ...]:
        cfg = self.cfg
        x0, cache = self.data.batch(np.random.default_rng([cfg.seed, step]), cfg.batch_size, first=self.n_val)
        g = torch.Generator().manual_seed(int(cfg.seed) * 1_000_003 + step)
        sigma = torch.exp(cfg.p_mean + cfg.p_std * torch.randn(cfg.batch_size, generator=g))
        noise, aug = torch.randn(x0.shape, generator=g), torch.randn(x0.shape, generator=g)
        drop = torch.rand(cfg.batch_size, generator=g) < cfg.cache_dropout
        return x0, cache, sigma, noise, aug, drop

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        lr = learning_rate(cfg, self.step)
        for grp in self.opt.param_groups:
            grp["lr"] = lr
        loss = diffusion_loss(self.net, *self._draw(self.step), cfg)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.max_grad_norm)
        self.opt.step()
        decay = min(cfg.ema, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for k, v in self.net.transformer.state_dict().items():
                self.ema[k].lerp_(v.float(), 1 - decay)
        self.step += 1
        return {"loss": float(loss.detach()), "lr": lr, "grad_norm": float(gn)}

    @torch.no_grad()
    def validate(self) -> float:
        """The loss on the held-out clips at fixed noise levels (0.05, 0.3, 1, 5) and fixed noise, raw weights."""
        if self.val is None:
            return float("nan")
        x0, cache = self.val
        g = torch.Generator().manual_seed(12345)
        self.net.eval()
        total = []
        for s in (0.05, 0.3, 1.0, 5.0):
            sigma = torch.full((x0.shape[0],), s)
            noise, aug = torch.randn(x0.shape, generator=g), torch.randn(x0.shape, generator=g)
            total.append(float(diffusion_loss(self.net, x0, cache, sigma, noise, aug,
                                              torch.zeros(x0.shape[0], dtype=torch.bool), self.cfg)))
        self.net.train()
        return float(np.mean(total))

    def run(self) -> dict[str, Any]:
        from tqdm import tqdm

        cfg = self.cfg
        log = LossLog(self.out, resume_step=self.step)
        start, t_start = self.step, time.perf_counter()
        bar = tqdm(total=cfg.steps, initial=self.step, desc=cfg.name, unit="step", disable=not self.progress)
        acc: list[float] = []
        t_log = time.perf_counter()
        while self.step < cfg.steps:
            row = self.train_step()
            acc.append(row["loss"])
            bar.update(1)
            if self.step % cfg.log_every == 0:
                now = time.perf_counter()
                out = {"step": self.step, "loss": float(np.mean(acc)), "lr": row["lr"], "grad_norm": row["grad_norm"],
                       "s_per_step": (now - t_log) / len(acc)}
                if self.step % cfg.checkpoint_every == 0:
                    out["val_loss"] = self.validate()
                log.append(out)
                bar.set_postfix(loss=f"{out['loss']:.4f}")
                acc, t_log = [], now
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                self.save()
                log.plot()
        bar.close()
        done = self.step - start
        wall = time.perf_counter() - t_start
        return {"steps": self.step, "steps_this_run": done, "wall_s": wall,
                "steps_per_s": done / wall if done and wall > 0 else 0.0,
                "checkpoint": str(latest_checkpoint(self.out)) if latest_checkpoint(self.out) else None}


def _plain(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _plain(v) for k, v in d.items()}
    if isinstance(d, tuple | list):
        return [_plain(v) for v in d]
    return d
