"""A procedural test scene shared by the simulation tests (imported by tests/test_sim_*.py)."""

from __future__ import annotations

import math

import torch

from lyra.cameras import Cameras, intrinsics_matrix, look_at
from lyra.world import Box, Plane, World


def arch_scene(height: int = 72, width: int = 96) -> tuple[World, Cameras]:
    """Floor (OpenCV up = -y), a 0.5 cube and an arch (opening 0.58 wide, 0.54 high), seen by 14 cameras
    (``height`` x ``width``, 60 degrees vertical FoV) looking at the origin."""
    world = World((
        Plane((0, 0, 0), (0, -1, 0), (1, 0, 0), (2.0, 2.0), name="floor"),
        Box((-1.0, -0.25, -0.6), (0.25, 0.25, 0.25), name="cube"),
        Box((0.65, -0.3, 0.1), (0.06, 0.3, 0.1), name="pillar_l"),
        Box((1.35, -0.3, 0.1), (0.06, 0.3, 0.1), name="pillar_r"),
        Box((1.0, -0.66, 0.1), (0.41, 0.06, 0.1), name="lintel"),
    ))
    eyes = [(3.0 * math.cos(2 * math.pi * k / 12), -1.8 + 0.2 * (k % 2), 3.0 * math.sin(2 * math.pi * k / 12))
            for k in range(12)] + [(0.3, -4.0, 0.2), (-0.3, -4.0, -0.2)]
    f = 0.5 * height / math.tan(math.radians(30))
    w2c = look_at(torch.tensor(eyes, dtype=torch.float32), torch.zeros(len(eyes), 3))
    K = intrinsics_matrix(f, f, width / 2, height / 2).expand(len(eyes), 3, 3).clone()
    return world, Cameras(w2c, K, height, width)
