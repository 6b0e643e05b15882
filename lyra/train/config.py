"""TrainConfig: every knob of one training stage, loaded strictly from YAML (unknown keys are errors).

One YAML file describes one stage: "initialise from checkpoint X (``init_from``), train ``steps`` steps"
with relative step counts (the method chains stages by copying checkpoints and cumulative step counts,
method §13.18). A stage resumes from the newest checkpoint in its own ``output_dir`` when restarted.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from lyra.errors import InputError
from lyra.train.losses import LossWeights
from lyra.utils.inputs import parse_yaml, read_text, require_dir
from lyra.utils.shipped import SHIPPED_NAMES
from lyra.utils.typed import coerce_fields, from_plain


class ConfigError(InputError):
    """Unknown or invalid training configuration keys/values."""


@dataclass
class DataConfig:
    """Where samples come from and how they are drawn (``lyra.data``; method §8.5).

    Attributes:
        root: SDG dataset folder, or a list of folders written with the same settings and tokenizer (for
            example two `lyra sdg` runs with different seeds, made in parallel); their scenes are pooled, each
            folder split on its own.
        stats: latent statistics file (None: ``<root>/flag/latent_stats.npz``).
        mode: sampling mode: "latent" (stored latents, all frames), "window" (mp4 frames re-encoded online) or
            "dynamic" (dynamic SDG: inputs from folders 0-5, one target time t*, frame t* of the target folders;
            the decoder needs ``model.overrides.use_time``).
        num_views: V per sample, or None for uniform in 1..max_views.
        max_views: upper bound of a random V.
        input_views: eligible trajectory folders (None: all).
        target_views: dynamic mode: the target folders (None: all, 0-11 with flipped supervision; [0, 1, 2, 3, 4,
            5]: without the flipped folders, the ablation).
        num_targets: target frames per selected trajectory.
        target_selection: "uniform" or "exponential" (later frames favoured).
        input_frames: window mode: input frames T (1 + 8k).
        target_size: [H, W] of the rendered/compared targets (None: stored size).
        input_size: window mode: [H, W] the input frames are centre-cropped/resized to before encoding
            (the method's low-resolution stages); None keeps the stored size.
        load_depth: read target depth (needed by the depth term).
        split_method, num_test_scenes, test_fraction: scene-key split (train/test disjoint by key).
        targets: what renders are compared with: "teacher" (the teacher's decoded frames: the method),
            "exact" (exact renders of the scene's procedural world, the oracle's frames before the tokenizer
            round trip) or "both" (the image loss averaged over the two). See ``lyra.data.ReaderConfig``.
    """

    root: str | list[str] = ""
    stats: str | None = None
    mode: Literal["latent", "window", "dynamic"] = "latent"
    num_views: int | None = None
    max_views: int = 6
    input_views: list[int] | None = None
    target_views: list[int] | None = None
    num_targets: int = 9
    target_selection: Literal["uniform", "exponential"] = "exponential"
    input_frames: int | None = None
    target_size: list[int] | None = None
    input_size: list[int] | None = None
    load_depth: bool = True
    split_method: Literal["last", "hash"] = "last"
    num_test_scenes: int = 16
    test_fraction: float = 0.05
    targets: Literal["teacher", "exact", "both"] = "teacher"

    @property
    def roots(self) -> list[str]:
        """The dataset folders: ``root`` as a list (empty entries dropped)."""
        return [r for r in ([self.root] if isinstance(self.root, str) else self.root) if r]


@dataclass
class ModelConfig:
    """Decoder architecture: a preset plus field overrides (``lyra.decoder.DecoderConfig``).

    Attributes:
        preset: "pocket" or "official".
        overrides: DecoderConfig fields to change (e.g. ``distance_shift``).
        prune_ratio: fraction of fused Gaussians dropped by opacity rank in this stage (0.8 in pruning stages).
        gradient_checkpointing: recompute decoder blocks in backward.
    """

    preset: Literal["pocket", "official"] = "pocket"
    overrides: dict[str, Any] = field(default_factory=dict)
    prune_ratio: float = 0.0
    gradient_checkpointing: bool = False


@dataclass
class OptimConfig:
    """AdamW with linear warmup then a constant rate (method §7.2), gradient clipping by global norm.

    ``warmup_steps`` counts optimiser steps (not multiplied by the process count, unlike the method).
    ``batch_size`` is samples per process per step. ``cooldown_steps`` (default 0: none, the method's constant rate)
    lowers the rate linearly to ``final_lr_ratio`` x ``lr`` over the run's last ``cooldown_steps`` steps (of
    ``TrainConfig.steps``); a resumed run keeps the schedule of its step count.
    """

    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.01
    warmup_steps: int = 100
    max_grad_norm: float = 1.0
    batch_size: int = 1
    cooldown_steps: int = 0
    final_lr_ratio: float = 0.1


@dataclass
class LossConfig:
    """Loss weights (``lyra.train.losses.LossWeights``) and the optional local LPIPS weights.

    Attributes:
        lpips_weights: file(s)/folder with VGG-16 + LPIPS head weights; None uses SSIM instead.
    """

    mse: float = 1.0
    lpips: float = 0.5
    ssim: float = 0.0
    ssim_fallback: bool = True
    depth: float = 0.05
    opacity: float = 0.0
    lpips_weights: str | None = None
    lpips_chunk: int = 8

    def weights(self) -> LossWeights:
        return LossWeights(self.mse, self.lpips, self.ssim, self.ssim_fallback, self.depth, self.opacity)


@dataclass
class RenderConfig:
    """Rasterization of the target views (method §5: white background, near 0.1, far 500, 3DGUT officially).

    Attributes:
        deferred: deferred back-propagation (memory of one view, every view rasterized twice).
        chunk: views per rasterizer call.
    """

    mode: Literal["classic", "eval3d"] = "classic"
    backend: Literal["auto", "cpu", "torch", "gsplat"] = "auto"
    near: float = 0.1
    far: float = 500.0
    background: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    deferred: bool = True
    chunk: int = 1


@dataclass
class TrainConfig:
    """One training stage.

    Attributes:
        name: stage name (logs, model card).
        output_dir: checkpoints, logs and the final weights of this stage.
        steps: optimiser steps of this stage (relative).
        init_from: checkpoint / pretrained folder whose weights start this stage (None: random init).
        init_optimizer: also take the optimiser moments from ``init_from`` when it holds them.
        resume: continue from the newest checkpoint in ``output_dir`` when one exists.
        seed: base seed (model init; per-step sample draws use (seed, step, rank)).
        tokenizer: "shipped" or a tokenizer folder (encodes the Plücker maps; window mode inputs).
        mixed_precision: "auto" (bf16 on CUDA, fp32 on CPU), "no" or "bf16".
        checkpoint_every, keep_checkpoints: checkpoint period (steps) and how many to keep.
        log_every: CSV/progress period (steps).
        threads: torch CPU threads per process (0: leave torch's default).
        device: "auto", "cpu" or "cuda".
        conditioning_cache: folder that keeps the tokenizer-encoded Plücker maps on disk across restarts and stages
            (keyed by the tokenizer's weights and the camera values; one file per trajectory, 0.8 MB at 176×320 and
            49 frames; delete the folder to reclaim it); None: ``<output_dir>/conditioning-cache``; "off": memory only.
    """

    name: str = "stage"
    output_dir: str = "runs/stage"
    steps: int = 100
    init_from: str | None = None
    init_optimizer: bool = True
    resume: bool = True
    seed: int = 42
    tokenizer: str = "shipped"
    mixed_precision: Literal["auto", "no", "bf16"] = "auto"
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    log_every: int = 10
    threads: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    conditioning_cache: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    render: RenderConfig = field(default_factory=RenderConfig)

    def conditioning_cache_dir(self) -> str | None:
        """The on-disk Plücker cache folder (``conditioning_cache``), or None when it is "off"."""
        if self.conditioning_cache is None:
            return str(Path(self.output_dir) / "conditioning-cache")
        return None if self.conditioning_cache == "off" else self.conditioning_cache

    def validate(self) -> TrainConfig:
        checks = [
            (self.steps >= 0, "steps must be >= 0"),
            (self.checkpoint_every > 0 and self.log_every > 0, "checkpoint_every and log_every must be > 0"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be >= 1"),
            (self.optim.batch_size >= 1, "optim.batch_size must be >= 1"),
            (self.optim.lr > 0 and self.optim.warmup_steps >= 0, "optim.lr must be > 0, warmup_steps >= 0"),
            (self.optim.cooldown_steps >= 0 and 0 <= self.optim.final_lr_ratio <= 1,
             "optim.cooldown_steps must be >= 0 and optim.final_lr_ratio in [0, 1]"),
            (len(self.optim.betas) == 2, "optim.betas must have two values"),
            (0.0 <= self.model.prune_ratio < 1.0, "model.prune_ratio must lie in [0, 1)"),
            (self.data.target_size is None or len(self.data.target_size) == 2, "data.target_size is [H, W]"),
            (self.data.input_size is None or len(self.data.input_size) == 2, "data.input_size is [H, W]"),
            (len(self.render.background) == 3, "render.background is [R, G, B]"),
            (self.data.num_targets >= 1, "data.num_targets must be >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"TrainConfig: {msg}")
        from lyra.decoder.config import DecoderConfig

        coerce_fields(DecoderConfig, self.model.overrides, "model.overrides", ConfigError)
        return self

    def check_paths(self, where: str | os.PathLike = "config") -> TrainConfig:
        """Check, before any work, that the paths the stage reads exist (dataset, statistics, init weights,
        LPIPS weights, tokenizer folder); raises FileNotFoundError or ConfigError naming the key."""
        if not self.data.roots:
            raise ConfigError(f"{where}: data.root is empty; name the SDG dataset folder (lyra sdg --out DIR)")
        for root in self.data.roots:
            require_dir(root, "dataset folder (data.root)", ConfigError)
        optional = {"data.stats": self.data.stats, "init_from": self.init_from, "loss.lpips_weights":
                    self.loss.lpips_weights, "tokenizer": None if self.tokenizer in SHIPPED_NAMES else self.tokenizer}
        for key, value in optional.items():
            if value and not os.path.exists(value):
                raise FileNotFoundError(f"{value}: {key} not found ({where})")
        return self

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return _build(cls, d, "").validate()

    @classmethod
    def load(cls, path: str | os.PathLike, overrides: list[str] | None = None) -> TrainConfig:
        """Read a YAML stage config; ``overrides`` are ``dotted.key=yaml_value`` strings applied on top.

        Any problem (missing or binary file, YAML syntax, unknown keys, wrong types, bad values) raises
        ConfigError naming the file (or the override) and the key.
        """
        d = load_yaml_config(path, overrides)
        try:
            return cls.from_dict(d)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc


def load_yaml_config(path: str | os.PathLike, overrides: list[str] | None = None) -> dict[str, Any]:
    """A YAML config file as a mapping, with ``overrides`` (``dotted.key=yaml_value`` strings) applied on top;
    a missing or binary file, bad YAML, a non-mapping top level or a bad override raise ConfigError."""
    d = parse_yaml(read_text(path, "YAML config file", ConfigError), path, ConfigError)
    d = {} if d is None else d
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(d).__name__}")
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: use dotted.key=value")
        node = d
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p} is not a mapping")
        node[parts[-1]] = parse_yaml(value, f"override {item!r}", ConfigError)
    return d


def _build(cls: type, d: Any, where: str) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, recursively; unknown keys and wrong types raise ConfigError."""
    return from_plain(cls, d, where, ConfigError)
