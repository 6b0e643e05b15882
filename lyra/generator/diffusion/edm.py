"""EDM (Karras et al. 2022) noise schedule and preconditioning, as diffusers' ``EDMEulerScheduler`` computes them.

With σ_d = ``sigma_data``: c_skip = σ_d² / (σ² + σ_d²), c_out = σ·σ_d / √(σ² + σ_d²), c_in = 1 / √(σ² + σ_d²),
c_noise = ¼ ln σ; the denoised estimate is x̂₀ = c_skip·x + c_out·F(c_in·x, c_noise). Pure functions of σ, shared by
the sampler and by training.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> Tensor:
    """``steps`` Karras noise levels from ``sigma_max`` down to ``sigma_min``, then a final 0: float32 [steps + 1].

    The ramp is computed in float64 and cast once, as diffusers does.
    """
    if steps < 1 or not 0 < sigma_min < sigma_max:
        raise ValueError(f"need steps >= 1 and 0 < sigma_min < sigma_max, got {steps}, {sigma_min}, {sigma_max}")
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = ((hi + ramp * (lo - hi)) ** rho).to(torch.float32)
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def c_skip(sigma: Tensor | float, sigma_data: float) -> Tensor | float:
    return sigma_data**2 / (sigma**2 + sigma_data**2)


def c_out(sigma: Tensor | float, sigma_data: float) -> Tensor | float:
    return sigma * sigma_data / (sigma**2 + sigma_data**2) ** 0.5


def c_in(sigma: Tensor | float, sigma_data: float) -> Tensor | float:
    return 1 / (sigma**2 + sigma_data**2) ** 0.5


def c_noise(sigma: Tensor | float) -> Tensor:
    """The network's timestep input, ¼ ln σ."""
    return 0.25 * torch.log(torch.as_tensor(sigma, dtype=torch.float32))


def denoised(x: Tensor, output: Tensor, sigma: Tensor | float, sigma_data: float) -> Tensor:
    """x̂₀ = c_skip(σ)·x + c_out(σ)·F."""
    return c_skip(sigma, sigma_data) * x + c_out(sigma, sigma_data) * output


def output_for(target: Tensor, x: Tensor, sigma: Tensor | float, sigma_data: float) -> Tensor:
    """The network output F that makes x̂₀ equal ``target`` at (x, σ): (target − c_skip·x) / c_out."""
    return (target - c_skip(sigma, sigma_data) * x) / c_out(sigma, sigma_data)


def initial_noise_sigma(sigma_max: float) -> float:
    """The scale of the initial noise: √(σ_max² + 1) (diffusers' ``init_noise_sigma``)."""
    return math.sqrt(sigma_max**2 + 1)
