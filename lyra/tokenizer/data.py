"""Training and evaluation clips for the pocket tokenizer (all offline, all seeded).

Three sources, each returning clips ``[T, 3, H, W]`` float32 in [0, 1]:

* ``texture``: procedural 2.5D scenes (noise, gratings, shapes) seen by a moving camera
  (affine pan / zoom / roll) with independently moving foreground sprites;
* ``world``: ``lyra.world`` procedural 3D worlds rendered along random moving-camera trajectories
  (used when ``lyra.world`` provides ``generate_world``);
* ``photo``: pans and zooms over scikit-image's bundled photos (``lyra.world.photos``).

Splits: procedural clips are held out by seed (training seeds < ``EVAL_SEED_BASE``, evaluation
seeds >= it); photos are held out by name (``HELDOUT_PHOTOS``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.world.photos import load_photo, photo_names

EVAL_SEED_BASE = 1_000_000_000
# the shared photo registry (lyra.world.photos): scikit-image's training / held-out photos; never the benchmark pair
TRAIN_PHOTOS = photo_names("train", "skimage")
HELDOUT_PHOTOS = photo_names("heldout", "skimage")


# ---------------------------------------------------------------------------- procedural textures
def _value_noise(g: torch.Generator, size: int, octaves: int = 4) -> Tensor:
    """[1, size, size] multi-octave value noise in [0, 1]."""
    out = torch.zeros(1, 1, size, size)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        n = 2 ** (o + 2)
        grid = torch.rand(1, 1, n, n, generator=g)
        out += amp * F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False)
        total += amp
        amp *= 0.5
    out = out[0] / total
    return ((out - out.min()) / (out.max() - out.min() + 1e-6)).clamp(0, 1)


def _rand_color(g: torch.Generator) -> Tensor:
    return torch.rand(3, 1, 1, generator=g)


def procedural_texture(seed: int, size: int = 256) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
    """A random background ``[3, S, S]`` and 0-4 sprites ``(rgb [3, s, s], alpha [1, s, s])``."""
    g = torch.Generator().manual_seed(int(seed))
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    c0, c1 = _rand_color(g), _rand_color(g)
    ang = float(torch.rand((), generator=g)) * 2 * math.pi
    ramp = (math.cos(ang) * xx + math.sin(ang) * yy)
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min() + 1e-6)
    bg = c0 * (1 - ramp) + c1 * ramp
    n = _value_noise(g, size, octaves=int(torch.randint(2, 6, (), generator=g)))
    bg = bg * (0.6 + 0.4 * n) + 0.3 * (n - 0.5) * _rand_color(g)
    kind = int(torch.randint(0, 4, (), generator=g))
    if kind == 1:  # grating
        f = float(torch.empty(()).uniform_(4, 24, generator=g))
        a2 = float(torch.rand((), generator=g)) * math.pi
        s = 0.5 + 0.5 * torch.sin(2 * math.pi * f * (math.cos(a2) * xx + math.sin(a2) * yy))
        bg = bg * (1 - 0.5 * s) + 0.5 * s * _rand_color(g)
    elif kind == 2:  # checker
        f = int(torch.randint(3, 16, (), generator=g))
        s = (((xx * f).floor() + (yy * f).floor()) % 2)
        bg = bg * (1 - 0.4 * s) + 0.4 * s * _rand_color(g)
    for _ in range(int(torch.randint(3, 12, (), generator=g))):  # painted shapes
        cx, cy = torch.rand(2, generator=g).tolist()
        rx, ry = (0.03 + 0.2 * torch.rand(2, generator=g)).tolist()
        if float(torch.rand((), generator=g)) < 0.5:
            m = (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2) <= 1
        else:
            m = ((xx - cx).abs() <= rx) & ((yy - cy).abs() <= ry)
        soft = float(torch.rand((), generator=g)) < 0.3
        col = _rand_color(g) * (0.7 + 0.3 * n) if soft else _rand_color(g)
        bg = torch.where(m[None], col.expand(3, size, size), bg)
    sprites = []
    for _ in range(int(torch.randint(0, 5, (), generator=g))):
        s = int(torch.randint(size // 8, size // 3, (), generator=g))
        sy, sx = torch.meshgrid(torch.linspace(-1, 1, s), torch.linspace(-1, 1, s), indexing="ij")
        if float(torch.rand((), generator=g)) < 0.5:
            alpha = ((sx**2 + sy**2) <= 1).float()
        else:
            alpha = ((sx.abs() <= 0.9) & (sy.abs() <= 0.6)).float()
        sn = _value_noise(g, s, octaves=3)
        rgb = _rand_color(g) * (0.5 + 0.5 * sn) + 0.2 * sx.abs()[None] * _rand_color(g)
        sprites.append((rgb.clamp(0, 1), alpha[None]))
    return bg.clamp(0, 1), sprites


def _affine_path(g: torch.Generator, T: int, strength: float = 1.0) -> Tensor:
    """[T, 2, 3] smooth camera paths (pan, zoom, roll) as affine_grid thetas."""
    t = torch.linspace(0, 1, T)
    p0 = (torch.rand(2, generator=g) - 0.5) * 0.6
    v = (torch.rand(2, generator=g) - 0.5) * 0.8 * strength
    acc = (torch.rand(2, generator=g) - 0.5) * 0.4 * strength
    z0 = float(torch.empty(()).uniform_(0.35, 0.8, generator=g))
    dz = float(torch.empty(()).uniform_(-0.3, 0.3, generator=g)) * strength
    r0 = float(torch.empty(()).uniform_(-0.3, 0.3, generator=g))
    dr = float(torch.empty(()).uniform_(-0.3, 0.3, generator=g)) * strength
    thetas = []
    for ti in t.tolist():
        z = z0 * math.exp(dz * ti)
        r = r0 + dr * ti
        c = p0 + v * ti + acc * ti * ti
        thetas.append(torch.tensor([[z * math.cos(r), -z * math.sin(r), float(c[0])],
                                    [z * math.sin(r), z * math.cos(r), float(c[1])]]))
    return torch.stack(thetas)


def _warp(img: Tensor, theta: Tensor, H: int, W: int) -> Tensor:
    """Sample ``img [C, S, S]`` through ``theta [T, 2, 3]`` into ``[T, C, H, W]`` (aspect-correct)."""
    T = theta.shape[0]
    th = theta.clone()
    th[:, :, 0] *= W / max(H, W)
    th[:, :, 1] *= H / max(H, W)
    grid = F.affine_grid(th, [T, img.shape[0], H, W], align_corners=False)
    src = img[None].expand(T, -1, -1, -1)
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def texture_clip(seed: int, T: int, H: int, W: int) -> Tensor:
    """A procedural moving-camera clip ``[T, 3, H, W]`` in [0, 1] (deterministic in ``seed``)."""
    bg, sprites = procedural_texture(seed, size=max(256, 2 * max(H, W)))
    g = torch.Generator().manual_seed(int(seed) + 7919)
    strength = float(torch.empty(()).uniform_(0.2, 1.2, generator=g))
    cam = _affine_path(g, T, strength)
    frames = _warp(bg, cam, H, W)
    for rgb, alpha in sprites:
        # sprite placed in view coordinates, moving on its own path: inverse of a small box map
        t = torch.linspace(0, 1, T)
        p0 = (torch.rand(2, generator=g) - 0.5) * 1.4
        v = (torch.rand(2, generator=g) - 0.5) * 1.0 * strength
        sc = float(torch.empty(()).uniform_(2.0, 5.0, generator=g))
        rot = float(torch.empty(()).uniform_(-1, 1, generator=g))
        th = torch.zeros(T, 2, 3)
        for i, ti in enumerate(t.tolist()):
            r = rot * ti
            th[i, 0, 0], th[i, 0, 1] = sc * math.cos(r), -sc * math.sin(r)
            th[i, 1, 0], th[i, 1, 1] = sc * math.sin(r), sc * math.cos(r)
            c = -(p0 + v * ti) * sc
            th[i, 0, 2], th[i, 1, 2] = float(c[0]), float(c[1])
        rgba = torch.cat([rgb, alpha], 0)
        grid = F.affine_grid(th, [T, 4, H, W], align_corners=False)
        layer = F.grid_sample(rgba[None].expand(T, -1, -1, -1), grid, padding_mode="zeros", align_corners=False)
        a = layer[:, 3:4]
        frames = frames * (1 - a) + layer[:, :3] * a
    gain = float(torch.empty(()).uniform_(0.7, 1.2, generator=g))
    return (frames * gain).clamp(0, 1).contiguous()


def photo_clip(name: str, seed: int, T: int, H: int, W: int) -> Tensor:
    """Pan / zoom over bundled photo ``name``: ``[T, 3, H, W]`` in [0, 1] (``T = 1``: a still crop)."""
    img = load_photo(name)
    g = torch.Generator().manual_seed(int(seed))
    S = min(img.shape[1:])
    # square view of the photo (random placement), then an affine path inside it
    y0 = int(torch.randint(0, img.shape[1] - S + 1, (), generator=g))
    x0 = int(torch.randint(0, img.shape[2] - S + 1, (), generator=g))
    sq = img[:, y0 : y0 + S, x0 : x0 + S]
    strength = float(torch.empty(()).uniform_(0.0, 0.8, generator=g))
    cam = _affine_path(g, T, strength)
    # photos: output pixel = 1 to 2.5 source pixels, so zoom in [max(H, W)/S, 2.5 max(H, W)/S]
    lo, hi = max(H, W) / S, min(1.0, 2.5 * max(H, W) / S)
    z = float(torch.empty(()).uniform_(lo, max(lo, hi), generator=g))
    cam[:, :, :2] *= z / cam[0, 0, :2].norm()
    cam[:, :, 2] = cam[:, :, 2].clamp(-(1 - z), 1 - z)
    return _warp(sq, cam, H, W).clamp(0, 1).contiguous()


# ---------------------------------------------------------------------------- lyra.world clips
def world_available() -> bool:
    """True when ``lyra.world.generate_world`` exists (the world helper has landed)."""
    try:
        from lyra.world import generate_world  # noqa: F401
    except ImportError:
        return False
    return True


def world_clip(seed: int, T: int, H: int, W: int, supersample: int = 1) -> Tensor:
    """A ``lyra.world`` scene along a random moving-camera trajectory: ``[T, 3, H, W]`` in [0, 1].

    ``supersample`` k > 1 renders k x k rays per pixel and averages them (anti-aliased, like a camera)."""
    from lyra.cameras import Cameras, look_at
    from lyra.world import generate_world

    g = torch.Generator().manual_seed(int(seed) + 104729)
    world = generate_world(int(seed), moving=bool(torch.rand((), generator=g) < 0.5))
    # a gentle random dolly/orbit around the origin, looking at a point in front
    start = torch.tensor([0.0, 0.0, 0.0])
    direction = F.normalize(torch.randn(3, generator=g) * torch.tensor([1.0, 0.3, 1.0]), dim=0)
    dist = float(torch.empty(()).uniform_(0.2, 1.0, generator=g))
    yaw = float(torch.empty(()).uniform_(-0.5, 0.5, generator=g))
    t = torch.linspace(0, 1, T)[:, None]
    eye = start + t * dist * direction
    look = torch.stack([torch.sin(yaw * t[:, 0]), torch.zeros(T), torch.cos(yaw * t[:, 0])], 1) * 3.0
    w2c = look_at(eye, eye + look)
    k = max(1, int(supersample))
    cams = Cameras.from_fov(w2c, H * k, W * k, fov_x_deg=float(torch.empty(()).uniform_(50, 80, generator=g)))
    rgb = world.render(cams, torch.linspace(0, 1, T)).rgb.float().reshape(T, 3, H * k, W * k)
    if k > 1:
        rgb = F.avg_pool2d(rgb, k)
    return rgb.clamp(0, 1).contiguous()


# ---------------------------------------------------------------------------- mixing
@dataclass
class ClipMix:
    """Probabilities of each training source (renormalised over the available ones)."""

    procedural: float = 0.65
    photo: float = 0.35
    world_share: float = 0.6  # share of procedural clips taken from lyra.world when it exists
    world_supersample: int = 1  # k x k rays per pixel of world clips (2: anti-aliased, ~4x render time)


def procedural_clip(seed: int, T: int, H: int, W: int, use_world: bool, supersample: int = 1) -> Tensor:
    """World clip when ``use_world`` (texture clip if the world render fails), else a texture clip."""
    if use_world:
        try:
            return world_clip(seed, T, H, W, supersample)
        except Exception:  # noqa: BLE001 - a broken world must not stop tokenizer training
            pass
    return texture_clip(seed, T, H, W)


class TrainClips:
    """Endless seeded stream of training batches ``[B, 3, T, H, W]`` in [-1, 1].

    Clips are rendered at ``source_size`` into a pool (``pool_size`` clips) and training crops of
    ``H x W`` are cut at random places with random flips and time reversal; ``refresh`` pool clips
    are replaced by new ones after every batch (rendering costs more than a training step on 2 cores).
    """

    def __init__(self, T: int, H: int, W: int, mix: ClipMix | None = None, seed: int = 0,
                 use_world: bool | None = None, source_size: tuple[int, int] = (64, 112),
                 pool_size: int = 64, refresh: int = 1) -> None:
        self.T, self.H, self.W = T, H, W
        self.src_h, self.src_w = max(source_size[0], H), max(source_size[1], W)
        self.mix = mix or ClipMix()
        self.rng = np.random.default_rng(seed)
        self.use_world = world_available() if use_world is None else use_world
        self.pool_size, self.refresh = pool_size, refresh
        self.pool: list[Tensor] = []
        self.specs: list[tuple[str, int, str]] = []  # how each pool clip was made (kind, seed, photo)

    def state(self) -> dict:
        """Everything the stream's future depends on: the RNG state and what the pool holds (as clip specs,
        re-rendered by :meth:`set_state`), so a resumed run draws exactly the batches of an uninterrupted one."""
        return {"rng": self.rng.bit_generator.state, "pool": [list(s) for s in self.specs]}

    def set_state(self, state: dict) -> None:
        """Restore :meth:`state` (pool clips are rendered again from their specs)."""
        if "rng" not in state:  # a checkpoint from before pool specs were saved: RNG only, fresh pool
            self.rng.bit_generator.state = state
            self.pool, self.specs = [], []
            return
        self.rng.bit_generator.state = state["rng"]
        self.specs = [(str(k), int(seed), str(name)) for k, seed, name in state["pool"]]
        self.pool = [self._render(spec) for spec in self.specs]

    def _new_spec(self) -> tuple[str, int, str]:
        """Draw the next clip: (kind "texture" | "world" | "photo", seed, photo name or "")."""
        r = self.rng
        seed = int(r.integers(0, EVAL_SEED_BASE))
        if r.random() < self.mix.procedural / (self.mix.procedural + self.mix.photo):
            w = self.use_world and r.random() < self.mix.world_share
            return ("world" if w else "texture", seed, "")
        return ("photo", seed, TRAIN_PHOTOS[int(r.integers(len(TRAIN_PHOTOS)))])

    def _render(self, spec: tuple[str, int, str]) -> Tensor:
        kind, seed, name = spec
        T, H, W = self.T, self.src_h, self.src_w
        x = photo_clip(name, seed, T, H, W) if kind == "photo" else \
            procedural_clip(seed, T, H, W, kind == "world", self.mix.world_supersample)
        return (x * 255 + 0.5).to(torch.uint8)  # pool kept as uint8

    def _new_clip(self, slot: int | None = None) -> None:
        """Draw and render a clip into pool position ``slot`` (appended when None)."""
        spec = self._new_spec()
        clip = self._render(spec)
        if slot is None:
            self.specs.append(spec)
            self.pool.append(clip)
        else:
            self.specs[slot], self.pool[slot] = spec, clip

    def clip(self) -> Tensor:
        """One training crop ``[T, 3, H, W]`` in [0, 1]."""
        r = self.rng
        while len(self.pool) < self.pool_size:
            self._new_clip()
        x = self.pool[int(r.integers(len(self.pool)))]
        y0 = int(r.integers(0, x.shape[-2] - self.H + 1))
        x0 = int(r.integers(0, x.shape[-1] - self.W + 1))
        x = x[..., y0 : y0 + self.H, x0 : x0 + self.W].float() / 255.0
        if r.random() < 0.5:
            x = x.flip(-1)
        if r.random() < 0.25:
            x = x.flip(0)  # time reversal
        return x.contiguous()

    def refresh_one(self) -> None:
        """Replace one random pool clip by a newly rendered one."""
        if self.pool:
            self._new_clip(int(self.rng.integers(len(self.pool))))

    def batch(self, batch_size: int) -> Tensor:
        out = torch.stack([self.clip() for _ in range(batch_size)]).permute(0, 2, 1, 3, 4) * 2 - 1
        for _ in range(self.refresh):
            self.refresh_one()
        return out


def eval_clips(kind: str, n: int, T: int, H: int, W: int, use_world: bool | None = None) -> list[Tensor]:
    """Held-out clips ``[T, 3, H, W]`` in [0, 1]: ``kind`` in {procedural, texture, world, world_aa (2x2
    supersampled), photo}."""
    if kind == "photo":
        return [photo_clip(HELDOUT_PHOTOS[i % len(HELDOUT_PHOTOS)], EVAL_SEED_BASE + i, T, H, W) for i in range(n)]
    make: Callable[[int], Tensor]
    if kind == "texture":
        def make(s: int) -> Tensor:
            return texture_clip(s, T, H, W)
    elif kind in ("world", "world_aa"):
        k = 2 if kind == "world_aa" else 1

        def make(s: int) -> Tensor:
            return world_clip(s, T, H, W, supersample=k)
    elif kind == "procedural":
        w = world_available() if use_world is None else use_world
        def make(s: int) -> Tensor:
            return world_clip(s, T, H, W) if w else texture_clip(s, T, H, W)
    else:
        raise ValueError(f"unknown clip kind {kind!r}; use procedural, texture, world, world_aa or photo")
    return [make(EVAL_SEED_BASE + i) for i in range(n)]
