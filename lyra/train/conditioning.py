"""Decoder conditioning: Plücker maps (method §2.4) and time maps (§2.5) encoded by the tokenizer; placement rays.

Cameras: the moment half (o × d) and the direction half (d) of the full-resolution Plücker map of each trajectory are
each treated as a 3-channel video (values not rescaled; the moment may leave [-1, 1]) and encoded by the frozen
tokenizer; the two latents are concatenated on channels (2·C channels).

Time (dynamic model): each frame time t in [0, 1] (frame indices normalised jointly, ``lyra.data.normalized_times``)
becomes [t, cos t, sin t], broadcast to a constant H×W image, mapped to [-1, 1] (x·2 - 1) and encoded by the frozen
tokenizer: the T input frames as one video (T_l latent frames), the target time as a 1-frame video (1 latent frame);
the decoder takes both stacked, [T_l + 1, C, h, w].

Everything here depends only on the cameras or the times, so results are cached (keyed by the values) in small
LRU caches; the Plücker latents can also be kept on disk (``disk``), so that a restarted or a later training stage
does not encode them again.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from lyra.cameras import Cameras, plucker_rays
from lyra.decoder import latent_rays
from lyra.tokenizer import VideoTokenizer


def time_features(times: Tensor) -> Tensor:
    """[N] normalised times -> [N, 3] features [t, cos t, sin t] (one frequency of 1 with the time itself prepended:
    the official ``timestep_embedding(t, 3, use_orig=True)``)."""
    t = torch.as_tensor(times, dtype=torch.float32).reshape(-1)
    return torch.stack([t, t.cos(), t.sin()], dim=-1)


@torch.no_grad()
def encode_time_video(tokenizer: VideoTokenizer, times: Tensor, height: int, width: int,
                      device: torch.device | str = "cpu") -> Tensor:
    """[T_l, C, h, w] tokenizer latents of the time maps of T frames (constant H×W images 2·[t, cos t, sin t] - 1)."""
    f = time_features(times).to(device)  # [T, 3]
    video = (f * 2 - 1).T[None, :, :, None, None].expand(1, 3, f.shape[0], height, width).contiguous()
    return tokenizer.encode(video)[0].float().permute(1, 0, 2, 3).contiguous()


def encode_time(tokenizer: VideoTokenizer, times_input: Tensor, time_target: float | Tensor, height: int, width: int,
                device: torch.device | str = "cpu") -> Tensor:
    """[T_l + 1, C, h, w] time conditioning of one sample: the T input frames' latents, then the target time's.

    Args:
        times_input: [T] normalised times of the input frames (T = 1 + 8k).
        time_target: the target time t* (one value).
        height, width: the image size of the input frames (the maps are encoded at full resolution).
    """
    t_tgt = torch.as_tensor(time_target, dtype=torch.float32).reshape(-1)
    if t_tgt.numel() != 1:
        raise ValueError(f"encode_time: one target time expected, got {t_tgt.numel()}")
    z_in = encode_time_video(tokenizer, torch.as_tensor(times_input), height, width, device)
    z_tg = encode_time_video(tokenizer, t_tgt, height, width, device)
    return torch.cat([z_in, z_tg])


def _values_key(*parts: object) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes() if isinstance(p, Tensor) else repr(p).encode())
        h.update(b"|")
    return h.hexdigest()


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


def tokenizer_key(tokenizer: VideoTokenizer) -> str | None:
    """A hash of a tokenizer's class, parameters and buffers (what its encodings depend on); None for a tokenizer that
    is not a torch module (its weights cannot be read here)."""
    if not hasattr(tokenizer, "state_dict"):
        return None
    h = hashlib.sha1(type(tokenizer).__name__.encode())
    state = tokenizer.state_dict()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class ConditioningCache:
    """Plücker latents and placement rays per trajectory, computed once per distinct camera set, and time latents per
    distinct set of times (LRU).

    Args:
        tokenizer: the frozen tokenizer that encodes the Plücker halves and the time maps.
        max_items: trajectories kept (each holds [T_l, 2C, h, w] + 2·[T, 3, h, w] floats); as many time entries.
        device: where encoding runs; cached tensors live on CPU.
        disk: a folder that also keeps the Plücker latents (one ``.pt`` file per camera set, under a sub-folder named
            by the tokenizer's weights, so another tokenizer never reads them); None: memory only (also for a
            tokenizer that is not a torch module).
    """

    def __init__(self, tokenizer: VideoTokenizer, max_items: int = 4096, device: torch.device | str = "cpu",
                 disk: str | os.PathLike | None = None):
        self.tokenizer = tokenizer
        self.max_items = max_items
        self.device = device
        tok_key = tokenizer_key(tokenizer) if disk is not None else None
        self.disk = Path(disk) / tok_key if disk is not None and tok_key is not None else None
        self._cache: OrderedDict[str, tuple[Tensor, Tensor, Tensor]] = OrderedDict()
        self._times: OrderedDict[str, Tensor] = OrderedDict()
        self.hits = self.misses = self.disk_hits = 0

    def _plucker(self, key: str, cams: Cameras) -> Tensor:
        """Encoded Plücker map of ``cams``: from the disk cache when it holds it, else encoded (and stored there)."""
        path = self.disk / f"{key}.pt" if self.disk is not None else None
        if path is not None and path.is_file():
            try:
                pl = torch.load(path, map_location="cpu", weights_only=True)
                if isinstance(pl, Tensor):
                    self.disk_hits += 1
                    return pl
            except Exception:  # a torn or foreign file (any unpickling error): encode again and overwrite it
                pass
        pl = encode_plucker(self.tokenizer, cams, self.device).cpu()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save(pl, tmp)
            os.replace(tmp, path)  # atomic: a reader never sees half a file
        return pl

    def trajectory(self, cams: Cameras) -> tuple[Tensor, Tensor, Tensor]:
        """(plucker [T_l, 2C, h, w], rays_o [T, 3, h, w], rays_d [T, 3, h, w]) of one trajectory."""
        key = camera_key(cams)
        if key in self._cache:
            self.hits += 1
            self._cache.move_to_end(key)
            return self._cache[key]
        self.misses += 1
        pl = self._plucker(key, cams)
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

    def _time_video(self, times: Tensor, height: int, width: int) -> Tensor:
        key = _values_key(times, height, width)
        if key in self._times:
            self.hits += 1
            self._times.move_to_end(key)
            return self._times[key]
        self.misses += 1
        z = encode_time_video(self.tokenizer, times, height, width, self.device).cpu()
        self._times[key] = z
        while len(self._times) > self.max_items:
            self._times.popitem(last=False)
        return z

    def time(self, times_input: Tensor, time_target: float | Tensor, height: int, width: int) -> Tensor:
        """[1, T_l + 1, C, h, w] time conditioning of one sample (:func:`encode_time`, the input and target parts
        cached separately)."""
        t_tgt = torch.as_tensor(time_target, dtype=torch.float32).reshape(-1)
        if t_tgt.numel() != 1:
            raise ValueError(f"time: one target time expected, got {t_tgt.numel()}")
        z_in = self._time_video(torch.as_tensor(times_input, dtype=torch.float32).reshape(-1), height, width)
        return torch.cat([z_in, self._time_video(t_tgt, height, width)])[None]
