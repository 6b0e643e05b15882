"""The GEN3C sampler: EDM Euler over Karras noise levels, first-frame forcing and cache-dropping guidance.

One chunk, as the official inference runs it (gen3c-official-inference.md §4, sdg.md §2.2):

* x starts as N(0, 1)·√(σ_max² + 1) (times ``noise_scale``, officially 1); 35 Karras levels (ρ = 7) from
  σ_max = 80 to σ_min = 0.0002, then 0;
* each step, while σ > ``augment_sigma`` (0.001; the last two steps are not forced), the conditioned latent frames
  of x are replaced by the condition latent c with noise at σ_aug, rescaled to the current level:
  (c + σ_aug·n)·c_in(σ_aug)/c_in(σ), where n is the same every step (numpy ``RandomState(seed)``, as officially);
* the network runs twice on c_in(σ)·x at c_noise(σ): **cond** (prompt, cache) and **uncond** (negative prompt,
  cache zeroed; the first-frame mask stays on); F = F_c + g·(F_c − F_u) with g = 1 by default (g = 0 skips the
  unconditional pass: F = F_c exactly);
* on forced steps the output of the conditioned frames is replaced so that x̂₀ = c there;
* one Euler step: x ← x + (x − x̂₀)/σ · (σ_next − σ).

The initial noise comes from a CPU ``torch.Generator`` seeded with ``seed`` (the same on every device); the state is
kept in float32 whatever the network's dtype (officially it is rounded to bf16 between steps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lyra.generator.diffusion import edm
from lyra.generator.diffusion.conditioning import Conditioning
from lyra.generator.diffusion.config import DiffusionError
from lyra.generator.diffusion.model import Gen3CNet
from lyra.utils.typed import coerce_instance


@dataclass
class SamplerConfig:
    """The sampler's settings; the defaults are the official ones.

    Attributes:
        steps: Euler steps (network evaluations per branch).
        sigma_min, sigma_max: the Karras noise range.
        sigma_data: the data standard deviation of the EDM preconditioning.
        rho: the Karras schedule exponent.
        guidance: g in F_c + g·(F_c − F_u) (1: two forwards per step, officially always on; 0: the conditional pass).
        augment_sigma: noise level of the condition frames; steps with σ ≤ it are not forced.
        noise_scale: τ, the seeded initial noise is τ·N(0, 1)·√(σ_max² + 1) (officially 1). τ < 1 starts the
            deterministic Euler path nearer the conditional mean: less invented detail where the condition says
            little (a pocket-scale setting, see ``generation_config.json``); 0 starts from the all-zero latent.
    """

    steps: int = 35
    sigma_min: float = 0.0002
    sigma_max: float = 80.0
    sigma_data: float = 0.5
    rho: float = 7.0
    guidance: float = 1.0
    augment_sigma: float = 0.001
    noise_scale: float = 1.0

    def __post_init__(self) -> None:
        coerce_instance(self, DiffusionError)
        if self.steps < 1 or not 0 < self.sigma_min < self.sigma_max or self.sigma_data <= 0 or self.rho <= 0:
            raise DiffusionError(f"SamplerConfig: need steps >= 1, 0 < sigma_min < sigma_max, sigma_data > 0 and "
                                 f"rho > 0; got {self}")
        if self.augment_sigma < 0:
            raise DiffusionError(f"SamplerConfig: augment_sigma must be >= 0, got {self.augment_sigma}")
        if not 0 <= self.noise_scale <= 1:
            raise DiffusionError(f"SamplerConfig: noise_scale must be in [0, 1], got {self.noise_scale}")

    def sigmas(self) -> Tensor:
        """float32 [steps + 1]: the noise levels, ending in 0."""
        return edm.karras_sigmas(self.steps, self.sigma_min, self.sigma_max, self.rho)


def initial_noise(shape: tuple[int, ...], seed: int, sigma_max: float) -> Tensor:
    """float32 N(0, 1)·√(σ_max² + 1) of ``shape`` from a CPU generator seeded with ``seed``."""
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(shape, generator=g, dtype=torch.float32) * edm.initial_noise_sigma(sigma_max)


def augment_noise(shape: tuple[int, ...], seed: int) -> Tensor:
    """float32 standard normal noise from numpy ``RandomState(seed)`` (the official condition-frame noise)."""
    return torch.from_numpy(np.random.RandomState(int(seed)).standard_normal(shape).astype(np.float32))


def guided_output(net: Gen3CNet, x: Tensor, sigma: Tensor, cond: Conditioning, guidance: float,
                  sigma_data: float = 0.5) -> Tensor:
    """F = F_c + g·(F_c − F_u) at noisy latents ``x`` [B, C, T_l, h, w] and level σ (0-dim).

    F_c reads the prompt and the cache, F_u the negative prompt and a zeroed cache; both the same first-frame mask.
    g = 0 runs the conditional pass only.
    """
    xs = x * edm.c_in(sigma, sigma_data)
    t = edm.c_noise(sigma).to(x.device)
    mask = cond.input_mask
    out = net(xs, t, cond.text, mask, cond.cache)
    if guidance != 0:
        out = out + guidance * (out - net(xs, t, cond.negative_text, mask, None))
    return out


@torch.no_grad()
def sample(net: Gen3CNet, cond: Conditioning, config: SamplerConfig | None = None, *, seed: int = 1,
           noise: Tensor | None = None, callback: Callable[[int, Tensor], None] | None = None) -> Tensor:
    """Sample one chunk: diffusion-space latents [B, C, T_l, h, w] (float32, on the network's device).

    Args:
        net: the network (any dtype and device).
        cond: the chunk's conditioning (its ``condition_latent`` fixes the shape).
        config: sampler settings (default: the official ones).
        seed: seeds the initial noise and the condition-frame noise.
        noise: [B, C, T_l, h, w] initial state instead of the seeded one (already scaled; ``noise_scale`` is not
            applied to it).
        callback: called after every step with (step index, current x).
    """
    cfg = config or SamplerConfig()
    device = net.device
    shape = net.check_latent_shape(cond.condition_latent.shape)
    if cond.cache.shape[1] != net.config.cache_channels:
        raise DiffusionError(f"cache has {cond.cache.shape[1]} channels; the network takes {net.config.cache_channels}")
    sd = cfg.sigma_data
    cond = cond.to(device)
    x = (initial_noise(shape, seed, cfg.sigma_max) * cfg.noise_scale if noise is None else noise.float()).to(device)
    if tuple(x.shape) != shape:
        raise DiffusionError(f"noise must be {list(shape)}, got {list(x.shape)}")
    c0, ind = cond.condition_latent, cond.indicator
    s_aug = cfg.augment_sigma
    augmented = (c0 + s_aug * augment_noise(shape, seed).to(device)) * edm.c_in(s_aug, sd)
    sigmas = cfg.sigmas().to(device)
    for i in range(cfg.steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        forced = cond.num_condition > 0 and s_aug < float(sigma)
        if forced:
            x = ind * augmented / edm.c_in(sigma, sd) + (1 - ind) * x
        out = guided_output(net, x, sigma, cond, cfg.guidance, sd)
        if forced:
            out = ind * edm.output_for(c0, x, sigma, sd) + (1 - ind) * out
        x0 = edm.denoised(x, out, sigma, sd)
        x = x + (x - x0) / sigma * (sigma_next - sigma)
        if callback is not None:
            callback(i, x)
    return x
