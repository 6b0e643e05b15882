"""Camera conditioning of the decoder: Plücker maps encoded by the tokenizer (method §2.4) and placement rays.

The moment half (o × d) and the direction half (d) of the full-resolution Plücker map of each trajectory are
each treated as a 3-channel video (values not rescaled; the moment may leave [-1, 1]) and encoded by the
frozen tokenizer; the two latents are concatenated on channels (2·C channels). Everything here depends only
on the cameras, so results are cached per trajectory (keyed by the camera values) in a small LRU cache.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor

from lyra.cameras import Cameras, plucker_rays
from lyra.decoder import latent_rays
from lyra.tokenizer import VideoTokenizer


def camera_key(cams: Cameras) -> str:
    """A hash of the camera values and image size (float32 bytes)."""
    h = hashlib.sha1()
    h.update(cams.w2c.detach().float().cpu().contiguous().numpy().tobytes())
    h.update(cams.K.detach().float().cpu().contiguous().numpy().tobytes())
    h.update(f"{cams.height}x{cams.width}".encode())
    return h.hexdigest()


@torch.no_grad()
def encode_plucker(tokenizer: VideoTokenizer, cams: Cameras, device: torch.device | str = "cpu") -> Tensor:
    """[T_l, 2·C, h, w] tokenizer-encoded Plücker map of one trajectory of T cameras (H×W).

    The tokenizer's [-1, 1] input range check is bypassed on purpose (the moment half is not rescaled).
    """
    p = plucker_rays(cams.to(device))  # [T, 6, H, W]
    halves = []
    for sl in (slice(0, 3), slice(3, 6)):
        video = p[:, sl].permute(1, 0, 2, 3)[None].contiguous()  # [1, 3, T, H, W]
        tokenizer.check_video_shape(video.shape)
        halves.append(tokenizer._encode(video)[0].float())  # [C, T_l, h, w]
    return torch.cat(halves, 0).permute(1, 0, 2, 3).contiguous()


class ConditioningCache:
    """Plücker latents and placement rays per trajectory, computed once per distinct camera set (LRU).

    Args:
        tokenizer: the frozen tokenizer that encodes the Plücker halves.
        max_items: trajectories kept (each holds [T_l, 2C, h, w] + 2·[T, 3, h, w] floats).
        device: where encoding runs; cached tensors live on CPU.
    """

    def __init__(self, tokenizer: VideoTokenizer, max_items: int = 4096, device: torch.device | str = "cpu"):
        self.tokenizer = tokenizer
        self.max_items = max_items
        self.device = device
        self._cache: OrderedDict[str, tuple[Tensor, Tensor, Tensor]] = OrderedDict()
        self.hits = self.misses = 0

    def trajectory(self, cams: Cameras) -> tuple[Tensor, Tensor, Tensor]:
        """(plucker [T_l, 2C, h, w], rays_o [T, 3, h, w], rays_d [T, 3, h, w]) of one trajectory."""
        key = camera_key(cams)
        if key in self._cache:
            self.hits += 1
            self._cache.move_to_end(key)
            return self._cache[key]
        self.misses += 1
        pl = encode_plucker(self.tokenizer, cams, self.device).cpu()
        o, d = latent_rays(cams.to("cpu"), self.tokenizer.spatial_compression)
        item = (pl, o[0], d[0])
        self._cache[key] = item
        while len(self._cache) > self.max_items:
            self._cache.popitem(last=False)
        return item

    def sample(self, trajectories: Sequence[Cameras]) -> tuple[Tensor, Tensor, Tensor]:
        """Trajectory-major stacks for V trajectories: plucker [1, V·T_l, 2C, h, w], rays [1, V·T, 3, h, w] ×2."""
        items = [self.trajectory(c) for c in trajectories]
        return tuple(torch.cat([it[k] for it in items])[None] for k in range(3))  # type: ignore[return-value]
