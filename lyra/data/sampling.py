"""Which trajectories and frames one training sample uses (method.md §8.5), as pure functions of an RNG.

Three modes, each generalised from the method's 121-frame videos to any length N:

* ``window`` (static stages 1-4: frames from the mp4, one trajectory): a window length g uniform in
  [min_gap, max_gap] clamped to [min(T, N-1), N-1]; a start s uniform in [0, N-g); inputs are s, s+g
  and T-2 distinct sorted frames in between; targets are drawn without replacement from [s, s+g].
  (The method clamps to [T, 120]; the lower bound T-1 when T = N lets short pocket videos use all frames.)
* ``latent`` (static stages 5-7: stored latents, so all N frames of every selected trajectory):
  V distinct trajectories; the same target frame indices, drawn without replacement uniformly or with
  probability proportional to exp(rate * i / (N-1)) (favouring frames far from the input image),
  are read from every selected trajectory.
* ``dynamic`` (stages 8-9): V input trajectories among ``input_views``, all frames; one target time t*
  uniform; targets are frame t* of every folder in ``target_views`` in random order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

SamplingMode = Literal["window", "latent", "dynamic"]
TargetSelection = Literal["uniform", "exponential"]


@dataclass
class SamplingConfig:
    """Every knob of sample selection.

    Attributes:
        mode: "window", "latent" or "dynamic" (see the module docstring).
        num_views: V, trajectories per sample; None draws V uniformly in 1..max_views
            (``window`` always uses 1).
        max_views: upper bound of the random V (the method: 6).
        input_views: eligible input trajectory folders (None: all folders found, dynamic: 0..5).
        target_views: dynamic mode target folders (None: all folders found).
        input_frames: T for ``window`` mode (None: all N frames); latent/dynamic modes use all frames.
        num_targets: target frames per trajectory (latent/window), the method uses 9.
        target_selection: "uniform" or "exponential" (latent mode).
        exp_rate: the rate of the exponential selection (the method: 3).
        min_gap, max_gap: window length range (the method: 45, 121), clamped as described.
    """

    mode: SamplingMode = "latent"
    num_views: int | None = None
    max_views: int = 6
    input_views: tuple[int, ...] | None = None
    target_views: tuple[int, ...] | None = None
    input_frames: int | None = None
    num_targets: int = 9
    target_selection: TargetSelection = "exponential"
    exp_rate: float = 3.0
    min_gap: int = 45
    max_gap: int = 121

    def __post_init__(self) -> None:
        if self.mode not in ("window", "latent", "dynamic"):
            raise ValueError(f"sampling mode must be window, latent or dynamic, got {self.mode!r}")
        if self.target_selection not in ("uniform", "exponential"):
            raise ValueError(f"target_selection must be uniform or exponential, got {self.target_selection!r}")
        if self.num_views is not None and self.num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {self.num_views}")
        if self.max_views < 1 or self.num_targets < 0:
            raise ValueError("max_views must be >= 1 and num_targets >= 0")


@dataclass
class SamplePlan:
    """What to read for one sample.

    Attributes:
        input_views: V trajectory folders, in input order (trajectory-major stacking).
        input_frames: the frame indices read from every input trajectory (sorted).
        targets: (view, frame) pairs of the target images, in order.
    """

    input_views: list[int]
    input_frames: list[int]
    targets: list[tuple[int, int]] = field(default_factory=list)


def exponential_weights(n: int, rate: float = 3.0) -> np.ndarray:
    """Selection probabilities proportional to exp(rate * i / (n - 1)) for i in 0..n-1."""
    x = np.arange(n, dtype=np.float64) / max(n - 1, 1)
    w = np.exp(rate * x)
    return w / w.sum()


def pick_frames(rng: np.random.Generator, n: int, k: int, selection: TargetSelection = "uniform",
                rate: float = 3.0) -> list[int]:
    """``k`` distinct frame indices from 0..n-1 (uniform or exponential); raises if k > n."""
    if k > n:
        raise ValueError(f"cannot draw {k} distinct frames from {n}")
    p = exponential_weights(n, rate) if selection == "exponential" else None
    return [int(i) for i in rng.choice(n, size=k, replace=False, p=p)]


def _num_views(cfg: SamplingConfig, rng: np.random.Generator, available: int) -> int:
    v = cfg.num_views if cfg.num_views is not None else int(rng.integers(1, min(cfg.max_views, available) + 1))
    if v > available:
        raise ValueError(f"asked for {v} trajectories but only {available} are eligible")
    return v


def window_plan(rng: np.random.Generator, n: int, t: int, num_targets: int, min_gap: int = 45,
                max_gap: int = 121) -> tuple[list[int], list[int]]:
    """Inputs (t sorted frames spanning a random window) and targets (drawn in it) for an n-frame video."""
    if t > n or t < 1:
        raise ValueError(f"cannot take {t} input frames from a {n}-frame video")
    if n == 1:
        return [0] * t, [0] * num_targets
    lo, hi = min(t, n - 1), n - 1
    g = int(np.clip(rng.integers(min_gap, max_gap + 1), lo, hi))
    s = int(rng.integers(0, n - g))
    if t == 1:
        inputs = [s]
    else:
        between = rng.choice(np.arange(s + 1, s + g), size=t - 2, replace=False) if t > 2 else np.array([], int)
        inputs = sorted([s, s + g, *(int(i) for i in between)])
    span = g + 1
    targets = [s + int(i) for i in rng.choice(span, size=min(num_targets, span), replace=False)]
    return inputs, targets


def normalized_times(input_frames: Sequence[int], target_frames: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Times of the input and target frames, normalised jointly to [0, 1] (method.md §2.5, ``timesteps_eps 0``).

    t = (i - min) / (max - min) over all given frame indices (0 when they are all equal); with all N frames of a
    trajectory as inputs this is i / (N - 1). Returns float64 arrays [T] and [N_t].
    """
    a = np.asarray(list(input_frames), dtype=np.float64)
    b = np.asarray(list(target_frames), dtype=np.float64)
    both = np.concatenate([a, b])
    if both.size == 0:
        return a, b
    lo, span = both.min(), both.max() - both.min()
    if span == 0:
        return np.zeros_like(a), np.zeros_like(b)
    return (a - lo) / span, (b - lo) / span


def plan_sample(cfg: SamplingConfig, rng: np.random.Generator, views: Sequence[int], num_frames: int) -> SamplePlan:
    """Draw one sample's trajectories and frames.

    Args:
        views: the trajectory folders present for this scene.
        num_frames: N, frames per trajectory video.
    """
    views = sorted(int(v) for v in views)
    n = int(num_frames)
    if cfg.mode == "window":
        eligible = [v for v in views if cfg.input_views is None or v in cfg.input_views]
        if not eligible:
            raise ValueError(f"no eligible trajectory among {views} (input_views={cfg.input_views})")
        v = int(rng.choice(eligible))
        t = n if cfg.input_frames is None else cfg.input_frames
        inputs, targets = window_plan(rng, n, t, cfg.num_targets, cfg.min_gap, cfg.max_gap)
        return SamplePlan([v], inputs, [(v, f) for f in targets])
    if cfg.mode == "latent":
        eligible = [v for v in views if cfg.input_views is None or v in cfg.input_views]
        V = _num_views(cfg, rng, len(eligible))
        chosen = [int(v) for v in rng.choice(eligible, size=V, replace=False)]
        frames = pick_frames(rng, n, cfg.num_targets, cfg.target_selection, cfg.exp_rate)
        return SamplePlan(chosen, list(range(n)), [(v, f) for v in chosen for f in frames])
    input_pool = cfg.input_views if cfg.input_views is not None else tuple(range(6))
    eligible = [v for v in views if v in input_pool]
    V = _num_views(cfg, rng, len(eligible))
    chosen = [int(v) for v in rng.choice(eligible, size=V, replace=False)]
    t_star = int(rng.integers(0, n))
    tviews = [v for v in views if cfg.target_views is None or v in cfg.target_views]
    order = [int(v) for v in rng.permutation(tviews)]
    return SamplePlan(chosen, list(range(n)), [(v, t_star) for v in order])
