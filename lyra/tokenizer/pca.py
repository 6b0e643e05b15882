"""A linear block codec with the tokenizer's contract: the PCA shortcut of the native VAE (v2).

Frame 0 alone and every later group of ``kt`` frames are cut into ``p x p`` pixel blocks; each block of
frame 0 (``3 p²`` numbers) and each block of a group (``3 kt p²`` numbers) is projected on its own
whitened principal components, ``C`` of them: exactly the latent shape of the VAE, with the same
causality (latent ``j`` reads frames ``<= kt j``). The VAE adds a learned residual to this codec on
both sides (``z = PCA(x) + f(x)``, ``x̂ = PCAᵀ(z) + g(z)``, with ``f`` and ``g`` zero at the start), so
training starts from the best linear codec at the same rate instead of from noise (design note
``small-video-vae.md`` §5.1: +1 to +3.5 dB for the same network and a quarter of the training time).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def frame0_blocks(video: Tensor, p: int) -> Tensor:
    """``[B, 3, T, H, W]`` -> frame-0 blocks ``[B, 3 p², H/p, W/p]``."""
    return F.pixel_unshuffle(video[:, :, 0], p)


def group_blocks(video: Tensor, p: int, kt: int) -> Tensor:
    """``[B, 3, 1 + kt n, H, W]`` -> group blocks ``[B, n, 3 kt p², H/p, W/p]`` (frames kt(g-1)+1..kt g)."""
    B, C, T, H, W = video.shape
    n = (T - 1) // kt
    g = video[:, :, 1:].reshape(B, C, n, kt, H, W).permute(0, 2, 3, 1, 4, 5)  # [B, n, kt, C, H, W]
    g = F.pixel_unshuffle(g.reshape(B * n, kt * C, H, W), p)  # channel order: (t, c, dy, dx)
    return g.reshape(B, n, kt * C * p * p, H // p, W // p)


def blocks_to_video(f0: Tensor, groups: Tensor, p: int, kt: int, channels: int = 3) -> Tensor:
    """Inverse of :func:`frame0_blocks` + :func:`group_blocks`: ``[B, 3, 1 + kt n, H, W]``."""
    B, n, _, h, w = groups.shape
    x0 = F.pixel_shuffle(f0, p)[:, :, None]  # [B, 3, 1, H, W]
    g = F.pixel_shuffle(groups.reshape(B * n, -1, h, w), p)  # [B n, kt 3, H, W]
    g = g.reshape(B, n, kt, channels, h * p, w * p).permute(0, 3, 1, 2, 4, 5).reshape(B, channels, n * kt, h * p, w * p)
    return torch.cat([x0, g], 2)


class BlockPCA(nn.Module):
    """Whitened PCA of frame-0 blocks and of group blocks (buffers, saved with the model).

    ``encode``: video ``[B, 3, 1 + kt n, H, W]`` -> ``[B, C, 1 + n, H/p, W/p]``; ``decode``: the inverse map
    (the projection onto the kept components). Until :meth:`fit` runs, the codec is all zeros.
    """

    def __init__(self, channels: int, latent: int, p: int, kt: int) -> None:
        super().__init__()
        self.p, self.kt, self.latent = p, kt, latent
        d0, dg = channels * p * p, channels * kt * p * p
        for name, d in (("f0", d0), ("grp", dg)):
            self.register_buffer(f"{name}_mean", torch.zeros(d))
            self.register_buffer(f"{name}_enc", torch.zeros(latent, d))  # whitened components as rows
            self.register_buffer(f"{name}_dec", torch.zeros(d, latent))

    @staticmethod
    def _project(x: Tensor, mean: Tensor, mat: Tensor) -> Tensor:
        """``mat @ (x - mean)`` over the channel axis of ``[N, D, h, w]``."""
        return torch.einsum("kd,ndhw->nkhw", mat, x - mean[:, None, None])

    def encode(self, video: Tensor) -> Tensor:
        B = video.shape[0]
        z0 = self._project(frame0_blocks(video, self.p), self.f0_mean, self.f0_enc)[:, :, None]
        g = group_blocks(video, self.p, self.kt)
        n = g.shape[1]
        if n == 0:
            return z0
        zg = self._project(g.flatten(0, 1), self.grp_mean, self.grp_enc)
        zg = zg.reshape(B, n, self.latent, *zg.shape[-2:]).permute(0, 2, 1, 3, 4)
        return torch.cat([z0, zg], 2)

    def decode(self, z: Tensor) -> Tensor:
        B, C, T_l, h, w = z.shape
        f0 = torch.einsum("dk,nkhw->ndhw", self.f0_dec, z[:, :, 0]) + self.f0_mean[:, None, None]
        if T_l == 1:  # a still image
            return F.pixel_shuffle(f0, self.p)[:, :, None]
        zg = z[:, :, 1:].permute(0, 2, 1, 3, 4).reshape(B * (T_l - 1), C, h, w)
        g = torch.einsum("dk,nkhw->ndhw", self.grp_dec, zg) + self.grp_mean[:, None, None]
        return blocks_to_video(f0, g.reshape(B, T_l - 1, -1, h, w), self.p, self.kt, f0.shape[1] // self.p**2)

    @torch.no_grad()
    def fit(self, videos: Iterable[Tensor]) -> dict[str, float]:
        """Fit both bases on videos ``[B, 3, 1 + kt n, H, W]`` (n >= 1) in the model's input range.

        Returns the fraction of variance the kept components explain, per basis.
        """
        acc: dict[str, list[Tensor]] = {"f0": [], "grp": []}
        for v in videos:
            v = v.double()
            acc["f0"].append(frame0_blocks(v, self.p).permute(0, 2, 3, 1).reshape(-1, self.f0_mean.numel()))
            g = group_blocks(v, self.p, self.kt)
            acc["grp"].append(g.permute(0, 1, 3, 4, 2).reshape(-1, self.grp_mean.numel()))
        explained = {}
        for name, rows in acc.items():
            x = torch.cat(rows)
            mean = x.mean(0)
            cov = torch.cov((x - mean).T)
            evals, evecs = torch.linalg.eigh(cov)  # ascending
            evals, evecs = evals.flip(0)[: self.latent].clamp_min(1e-10), evecs.flip(1)[:, : self.latent]
            explained[name] = float(evals.sum() / torch.diagonal(cov).sum())
            getattr(self, f"{name}_mean").copy_(mean)
            getattr(self, f"{name}_enc").copy_((evecs / evals.sqrt()).T)
            getattr(self, f"{name}_dec").copy_(evecs * evals.sqrt())
        return explained
