"""Residual backbone blocks: pre-norm bidirectional Mamba-2 block and pre-norm transformer (ViT) block."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from lyra.decoder.mamba2 import BiMamba2, RMSNorm


class MambaBlock(nn.Module):
    """x + BiMamba2(RMSNorm(x)); parameters ``norm.weight``, ``mamba.*``."""

    def __init__(self, dim: int, d_state: int, expand: int, headdim: int, ngroups: int, d_conv: int,
                 chunk_size: int) -> None:
        super().__init__()
        self.norm = RMSNorm(dim, eps=1e-5)
        self.mamba = BiMamba2(dim, d_state, expand, headdim, ngroups, d_conv, chunk_size)

    def forward(self, x: Tensor) -> Tensor:
        """[b, l, dim] -> [b, l, dim]."""
        return x + self.mamba(self.norm(x))


class Attention(nn.Module):
    """Full bidirectional multi-head self-attention: fused ``qkv`` and ``proj`` (with biases), scale 1/sqrt(hd)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        """[b, l, dim] -> [b, l, dim]."""
        b, l, d = x.shape
        q, k, v = self.qkv(x).reshape(b, l, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # [b, heads, l, hd]
        return self.proj(out.transpose(1, 2).reshape(b, l, d))


class Mlp(nn.Module):
    """``fc1`` -> exact GELU -> ``fc2`` (with biases)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class TransformerBlock(nn.Module):
    """x + attn(norm1(x)), then x + mlp(norm2(x)); LayerNorms with eps 1e-6, no dropout."""

    def __init__(self, dim: int, heads: int, mlp_hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp_hidden)

    def forward(self, x: Tensor) -> Tensor:
        """[b, l, dim] -> [b, l, dim]."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))
