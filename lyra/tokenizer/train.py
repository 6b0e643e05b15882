"""Training of the native pocket tokenizer: L1 + SSIM + small KL on procedural and photo clips.

Checkpoints (``checkpoint.pt`` in the output folder, written atomically) hold model, optimizer,
step, wall time spent and every RNG state, so a stopped run resumes where it was (``--resume``).
At the end the model's latent statistics are measured and the model is exported with
``save_pretrained`` (``config.json`` + ``model.safetensors``) into the same folder.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lyra.tokenizer.base import TokenizerError
from lyra.tokenizer.data import TRAIN_PHOTOS, ClipMix, TrainClips, photo_clip, procedural_clip
from lyra.tokenizer.metrics import psnr, ssim_map, video_to_frames
from lyra.tokenizer.native import CausalVAEConfig, CausalVideoVAE
from lyra.utils.typed import from_plain

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class TrainConfig:
    """Every knob of a tokenizer training run (saved in the checkpoint and in ``train_config.json``)."""

    out: str = "runs/tokenizer"
    frames: int = 17
    height: int = 32  # training crops (cut from 64x112 clips); the model is fully convolutional
    width: int = 32
    batch_size: int = 4
    lr: float = 1.5e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 100
    weight_decay: float = 0.0
    max_steps: int = 20000
    max_minutes: float = 40.0  # wall budget of the whole run (resumes included); stops early, never shapes the lr
    l1_weight: float = 1.0
    ssim_weight: float = 0.2
    kl_weight: float = 1e-4
    grad_clip: float = 1.0
    checkpoint_every_s: float = 120.0
    seed: int = 0
    threads: int = 0  # 0: keep torch's default
    mix: ClipMix = field(default_factory=ClipMix)
    model: CausalVAEConfig = field(default_factory=CausalVAEConfig)
    stats_clips: int = 24  # clips of 1 + 8 (stats_frames - 1) frames used for latent statistics
    pool_size: int = 64  # rendered clips kept in memory; crops are cut from them
    refresh_every: int = 2  # steps between replacing one pool clip by a newly rendered one
    source_size: tuple[int, int] = (64, 112)  # size at which pool clips are rendered
    ema_decay: float = 0.0  # exponential moving average of the weights (exported when > 0)
    pca_clips: int = 48  # training clips the PCA shortcut is fitted on (model.pca_shortcut)
    # start from a trained tokenizer folder (its config replaces `model`; the PCA codec is not refitted)
    init_from: str | None = None
    # train the decoder only: the encoder, the PCA codec and the latent statistics keep init_from's values, so the
    # latent space (and every model trained in it) is unchanged
    freeze_encoder: bool = False
    # robustness to latents that no encoder made (a generator's samples): a `latent_noise_prob` share of the clips
    # decode z + u·latent_noise·σ_c·n (u ~ U(0, 1) per clip, σ_c the channel's latent std, n ~ N(0, 1))
    latent_noise: float = 0.0
    latent_noise_prob: float = 0.5

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "tokenizer TrainConfig") -> TrainConfig:
        """Strict and typed: unknown fields or wrong types raise TokenizerError naming the field."""
        return from_plain(cls, d, where, TokenizerError)


def noisy_latents(model: CausalVideoVAE, z: Tensor, cfg: TrainConfig) -> Tensor:
    """``z`` [B, C, T_l, h, w] with the training latent noise of ``cfg`` (drawn from torch's global RNG): each clip,
    with probability ``latent_noise_prob``, gets u·``latent_noise``·σ[c, t]·N(0, 1) with u ~ U(0, 1)."""
    if cfg.latent_noise <= 0:
        return z
    B, _, T_l = z.shape[:3]
    on = (torch.rand(B, device=z.device) < cfg.latent_noise_prob).float()
    amp = (on * torch.rand(B, device=z.device) * cfg.latent_noise).view(B, 1, 1, 1, 1)
    std = model.latents_std[:, :T_l] if T_l <= model.latents_std.shape[1] else model.latents_std[:, -1:]
    return z + amp * std.view(1, -1, std.shape[1], 1, 1).to(z) * torch.randn_like(z)


def vae_loss(model: CausalVideoVAE, video: Tensor, cfg: TrainConfig) -> tuple[Tensor, dict[str, float]]:
    """Loss of one batch ``[B, 3, T, H, W]`` in [-1, 1] and its parts (L1, SSIM, KL, PSNR)."""
    recon, mean, logvar = model(video, perturb=lambda z: noisy_latents(model, z, cfg))
    l1 = (recon - video).abs().mean()
    rec01 = (recon.permute(0, 2, 1, 3, 4).flatten(0, 1) + 1) / 2  # [B*T, 3, H, W], unclamped for gradients
    b = video_to_frames(video)
    s = ssim_map(rec01, b).mean() if cfg.ssim_weight else torch.zeros(())
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
    loss = cfg.l1_weight * l1 + cfg.ssim_weight * (1 - s) + cfg.kl_weight * kl
    with torch.no_grad():
        p = psnr(rec01.clamp(0, 1), b)
    parts = {"loss": loss, "l1": l1, "ssim": s, "kl": kl, "psnr": p}
    return loss, {k: float(v.detach()) for k, v in parts.items()}


def _lr(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up, then a cosine over ``max_steps`` down to ``min_lr_ratio``: a function of the step alone,
    so a resumed run follows the same schedule as an uninterrupted one."""
    warm = min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(1, cfg.max_steps))))
    return cfg.lr * warm * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cos)


def _save_checkpoint(path: Path, state: dict) -> None:
    """Write the checkpoint beside ``path``, flush it to disk, then rename it over ``path`` (complete or absent)."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (written after the checkpoint a resumed run starts from)."""
    if not path.is_file():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= step]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(ln + "\n" for ln in keep))
    os.replace(tmp, path)


@torch.no_grad()
def fit_pca_shortcut(model: CausalVideoVAE, cfg: TrainConfig) -> dict[str, float]:
    """Fit the model's block-PCA codec on ``cfg.pca_clips`` training crops (a stream seeded apart from the
    training batches); returns the variance fraction each basis keeps."""
    if model.pca is None:
        raise TokenizerError("fit_pca_shortcut: the model has no PCA shortcut (CausalVAEConfig.pca_shortcut)")
    clips = TrainClips(cfg.frames, cfg.height, cfg.width, cfg.mix, seed=cfg.seed + 7919, source_size=cfg.source_size,
                       pool_size=max(1, cfg.pca_clips // 2), refresh=0)
    return model.pca.fit(clips.batch(1) for _ in range(cfg.pca_clips))


@torch.no_grad()
def latent_statistics(model: CausalVideoVAE, n_clips: int, H: int, W: int, seed: int = 12345) -> tuple[Tensor, Tensor]:
    """Per-(channel, latent frame) mean and std ``[C, stats_frames]`` of posterior means on training clips."""
    Tl = model.config.stats_frames
    T = 1 + model.temporal_compression * (Tl - 1)
    rng = np.random.default_rng(seed)
    zs = []
    for i in range(n_clips):
        s = int(rng.integers(0, 10**8))
        clip = procedural_clip(s, T, H, W, use_world=False) if i % 2 == 0 else \
            photo_clip(TRAIN_PHOTOS[i % len(TRAIN_PHOTOS)], s, T, H, W)
        zs.append(model.encode(clip.permute(1, 0, 2, 3)[None] * 2 - 1).float())
    z = torch.cat(zs)  # [N, C, Tl, h, w]
    return z.mean(dim=(0, 3, 4)), z.std(dim=(0, 3, 4))


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train (or resume) a native tokenizer into ``cfg.out``; returns the export folder."""
    from tqdm import tqdm

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT_NAME
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    if cfg.freeze_encoder and not cfg.init_from:
        raise TokenizerError("freeze_encoder needs init_from (the tokenizer whose latent space is kept)")
    if cfg.init_from:
        from lyra.tokenizer.loading import load_tokenizer

        model = load_tokenizer(cfg.init_from)  # a folder or a shipped name
        if not isinstance(model, CausalVideoVAE):
            raise TokenizerError(f"init_from {cfg.init_from!r}: only a native tokenizer (CausalVideoVAE) trains")
        model.train()
        cfg.model = model.config
    else:
        model = CausalVideoVAE(cfg.model)
    if cfg.freeze_encoder:
        model.encoder.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    data = TrainClips(cfg.frames, cfg.height, cfg.width, cfg.mix, seed=cfg.seed, source_size=cfg.source_size,
                      pool_size=cfg.pool_size, refresh=0)
    step, spent = 0, 0.0
    ema: dict[str, float] = {}  # smoothed loss terms for the progress bar and log (checkpointed)
    averaged: dict[str, Tensor] | None = None  # EMA of the weights, by parameter name
    if resume and ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        saved = TrainConfig.from_dict(ck["config"])
        if saved.model != cfg.model:
            raise TokenizerError(f"{ckpt_path}: checkpoint model config differs from the requested one")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, spent = int(ck["step"]), float(ck["spent_s"])
        torch.set_rng_state(ck["torch_rng"])
        data.set_state(json.loads(ck["data_rng"]))
        ema.update(json.loads(ck.get("ema", "{}")))
        if "ema_weights" in ck:
            averaged = {n: t.detach() for n, t in ck["ema_weights"].items()}  # plain tensors, no autograd
        _truncate_log(out / "train_log.jsonl", step)
        data.use_world = bool(ck.get("use_world", data.use_world)) or data.use_world
    elif ckpt_path.is_file() and not resume:
        raise TokenizerError(f"{ckpt_path} exists; pass --resume to continue it or choose another --out")
    elif model.pca is not None and not cfg.init_from:
        explained = fit_pca_shortcut(model, cfg)
        print(f"tokenizer: PCA shortcut fitted on {cfg.pca_clips} clips, variance kept "
              + ", ".join(f"{k} {v:.3f}" for k, v in explained.items()), flush=True)
    if cfg.ema_decay > 0 and averaged is None:
        averaged = {n: p.detach().clone() for n, p in model.named_parameters()}
    (out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")

    budget = cfg.max_minutes * 60.0
    t0, last_ck = time.time() - spent, time.time()
    log = open(out / "train_log.jsonl", "a")  # noqa: SIM115
    bar = tqdm(total=cfg.max_steps, initial=step, disable=not progress, desc="tokenizer", dynamic_ncols=True,
               mininterval=5.0)

    def checkpoint() -> None:
        _save_checkpoint(ckpt_path, {
            "model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
            "spent_s": time.time() - t0, "torch_rng": torch.get_rng_state(),
            "data_rng": json.dumps(data.state()), "config": cfg.to_dict(), "use_world": data.use_world,
            "ema": json.dumps(ema), **({"ema_weights": averaged} if averaged is not None else {}),
        })

    model.train()
    names = [n for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    ema_params = [averaged[n] for n in names] if averaged is not None else None
    while step < cfg.max_steps and time.time() - t0 < budget:
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, step)
        video = data.batch(cfg.batch_size)
        if step % cfg.refresh_every == 0:
            data.refresh_one()
        loss, parts = vae_loss(model, video, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
        opt.step()
        if ema_params is not None:
            with torch.no_grad():
                torch._foreach_lerp_(ema_params, params, 1.0 - cfg.ema_decay)
        step += 1
        for k, v in parts.items():
            ema[k] = v if k not in ema else 0.98 * ema[k] + 0.02 * v
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(psnr=f"{ema['psnr']:.2f}", l1=f"{ema['l1']:.4f}", ssim=f"{ema['ssim']:.3f}")
            log.write(json.dumps({"step": step, "t": round(time.time() - t0, 1),
                                  "lr": opt.param_groups[0]["lr"], **{k: round(v, 5) for k, v in ema.items()}}) + "\n")
            log.flush()
        if time.time() - last_ck > cfg.checkpoint_every_s:
            checkpoint()
            last_ck = time.time()
    bar.close()
    checkpoint()
    log.close()
    model.eval()
    if averaged is not None:  # export the averaged weights
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(averaged[n])
    if not cfg.freeze_encoder:  # a frozen encoder keeps init_from's statistics (the latent space is unchanged)
        mean, std = latent_statistics(model, cfg.stats_clips, 32, 32)
        model.set_latent_stats(mean, std)
    model.save_pretrained(out)
    summary = {"steps": step, "wall_s": round(time.time() - t0, 1), "final_ema": ema}
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return out
