"""Gaussian activation (method §3.4): 12 raw channels per pixel block -> 14-float Gaussian records on the pixel ray."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.decoder.config import DecoderConfig
from lyra.gaussians import Gaussians, num_kept

# raw channel layout (12): distance, colour (3), scale (3), rotation (4), opacity
RAW_SPLIT = (1, 3, 3, 4, 1)
# record layout (14): xyz, opacity, scale (3), quaternion (w, x, y, z), rgb
RECORD_FIELDS = ("x", "y", "z", "opacity", "sx", "sy", "sz", "qw", "qx", "qy", "qz", "r", "g", "b")


def activate(raw: Tensor, origins: Tensor, dirs: Tensor, cfg: DecoderConfig) -> Tensor:
    """Activate raw predictions into Gaussian records (computed in float32).

    Args:
        raw: [..., 12] head output (distance, colour, scale, rotation, opacity).
        origins: [..., 3] ray origins (camera centres).
        dirs: [..., 3] unit ray directions (distance is Euclidean along the ray, not z-depth).
        cfg: activation constants.

    Returns:
        [..., 14] records: x, y, z, opacity, sx, sy, sz, qw, qx, qy, qz, r, g, b (scene units; opacity, rgb in [0, 1]).
    """
    raw = raw.float()
    d_raw, c_raw, s_raw, q_raw, o_raw = torch.split(raw, RAW_SPLIT, dim=-1)
    w = torch.sigmoid(d_raw + cfg.distance_shift)
    dist = cfg.dnear * (1.0 - w) + cfg.dfar * w
    means = origins.float() + dirs.float() * dist
    opacity = torch.sigmoid(o_raw + cfg.opacity_shift)
    scales = torch.exp(s_raw - cfg.scale_log_offset).clamp(max=cfg.scale_cap)
    quats = F.normalize(q_raw, dim=-1)
    rgb = 0.5 * torch.tanh(c_raw) + 0.5
    return torch.cat([means, opacity, scales, quats, rgb], dim=-1)


def records_to_gaussians(records: Tensor) -> Gaussians:
    """[N, 14] records -> Gaussians (views into ``records``; gradients flow)."""
    means, opacity, scales, quats, rgb = torch.split(records, (3, 1, 3, 4, 3), dim=-1)
    return Gaussians(means=means, quats=quats, scales=scales, opacities=opacity[:, 0], colors=rgb)


def prune_records(records: Tensor, ratio: float) -> Tensor:
    """Keep the floor(N·(1 - ratio)) most opaque records of each batch element (method §4.1).

    Same rule as ``lyra.gaussians.prune_by_opacity_ratio`` (stable descending sort, ties by index, kept records in
    their original order). [B, N, 14] -> [B, K, 14].
    """
    k = num_kept(records.shape[1], ratio)
    if k == records.shape[1]:
        return records
    order = torch.sort(records[..., 3], dim=1, descending=True, stable=True).indices[:, :k]
    idx = order.sort(dim=1).values
    return torch.gather(records, 1, idx[..., None].expand(-1, -1, records.shape[-1]))
