"""Patch embeddings: Conv3d with kernel = stride = patch, then LayerNorm, flattened to (t, row, col) tokens."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class PatchEmbed3d(nn.Module):
    """Per-frame latent maps -> tokens; parameters ``proj`` (Conv3d) and ``norm`` (LayerNorm, eps 1e-5).

    ``zero_init`` zeroes the convolution (conditioning branches: with a zero LayerNorm bias their output is exactly 0
    at initialisation); otherwise the weight is normal with std sqrt(2 / (k_t·k_h·k_w·out)) and the bias 0.
    """

    def __init__(self, in_channels: int, dim: int, patch: tuple[int, int, int], zero_init: bool = False) -> None:
        super().__init__()
        self.patch = tuple(patch)
        self.proj = nn.Conv3d(in_channels, dim, kernel_size=self.patch, stride=self.patch)
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.zero_init = zero_init
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        if self.proj.weight.is_meta:
            return
        if self.zero_init:
            nn.init.zeros_(self.proj.weight)
        else:
            std = math.sqrt(2.0 / (math.prod(self.patch) * self.proj.out_channels))
            nn.init.normal_(self.proj.weight, 0.0, std)
        nn.init.zeros_(self.proj.bias)
        nn.init.ones_(self.norm.weight)
        nn.init.zeros_(self.norm.bias)

    def forward(self, x: Tensor) -> Tensor:
        """[n, T_l, C, h, w] -> [n, (T_l/pt)·(h/p)·(w/p), dim] tokens in (t, row, col) order."""
        y = self.proj(x.transpose(1, 2))  # [n, dim, t, ht, wt]
        return self.norm(y.flatten(2).transpose(1, 2))
