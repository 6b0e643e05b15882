"""The ``diffusion`` generator: GEN3C's DiT sampling each trajectory from the source view's warped 3D cache.

Per trajectory (sdg.md §3, gen3c-official-inference.md §4): the source view is lifted with its depth and
forward-warped into every camera (:meth:`lyra.generator.cache.CacheGenerator.warp`: the rendered cache with black
holes, or with push-pull filled holes for a network with ``cache_fill = "inpaint"``, and its coverage mask, one
buffer); the source image is the first-frame condition; the EDM sampler (:func:`lyra.generator.diffusion.sample`)
runs in the tokenizer's diffusion space; the result is denormalised into raw latents, and decoded into frames only
when ``decode_frames``. A trajectory longer than the chunk length is made of autoregressive chunks.

Weights (:func:`load_diffusion_net`): a folder written by :func:`lyra.generator.diffusion.model.save_pretrained`
(``config.json`` + ``model.safetensors``, pocket or converted official), or the official GEN3C-Cosmos-7B folder
(``model.pt``, bf16). Text: ``text_embeddings.safetensors`` in the folder when present (needed for the official
weights), else zero embeddings of the network's text shape (a pocket network trained without text). No folder: the
shipped pocket teacher (``lyra/assets/diffusion``). An optional ``generation_config.json`` beside the weights gives
the guidance g they were measured at (:func:`default_guidance`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

from lyra.cameras import Cameras
from lyra.generator.base import Generator, SourceView, TrajectorySample, register_generator, teacher_roundtrip
from lyra.generator.cache import CacheGenerator, tokenizer_device
from lyra.generator.diffusion.autoregressive import generate_autoregressive
from lyra.generator.diffusion.conditioning import chunk_conditioning
from lyra.generator.diffusion.config import DiffusionError
from lyra.generator.diffusion.model import Gen3CNet
from lyra.generator.diffusion.official import OFFICIAL_FILE, OFFICIAL_REPO
from lyra.generator.diffusion.sampler import SamplerConfig, sample
from lyra.generator.diffusion.text import EMBEDDINGS_FILE, PromptEmbeddings
from lyra.tokenizer import VideoTokenizer
from lyra.tokenizer.metrics import video_to_frames
from lyra.utils.weights import CONFIG_NAME

NOT_SHIPPED = ("the shipped pocket diffusion weights are missing from lyra/assets/diffusion; reinstall lyra "
               "or give --diffusion-model DIR")
# the shipped pocket teacher (MODEL_CARD.md there)
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "assets" / "diffusion"


def resolve_model_dir(model: str | os.PathLike | None) -> Path:
    """The weights folder of ``--diffusion-model`` (None: the shipped pocket weights); one-line errors otherwise."""
    if model is None or str(model) in ("shipped", "pocket"):
        if not (SHIPPED_DIR / CONFIG_NAME).is_file():
            raise DiffusionError(NOT_SHIPPED)
        return SHIPPED_DIR
    p = Path(model).expanduser()
    if not p.exists():
        from lyra.utils.hub import parse_hub_id

        hub = parse_hub_id(str(model))
        if hub is not None:
            raise DiffusionError(f"--diffusion-model {model}: lyra never downloads diffusion weights; download them on "
                                 f"a machine with a network (`hf download {hub[0]} --local-dir DIR`, e.g. "
                                 f"{OFFICIAL_REPO}) and pass --diffusion-model DIR")
        raise DiffusionError(model, "diffusion weights folder not found (config.json + model.safetensors, or the "
                                    f"official {OFFICIAL_FILE})")
    if not p.is_dir():
        raise DiffusionError(model, "not a folder (give the folder holding the diffusion weights)")
    if not (p / CONFIG_NAME).is_file() and not (p / OFFICIAL_FILE).is_file():
        raise DiffusionError(model, f"no {CONFIG_NAME} + model.safetensors (pocket / converted) nor {OFFICIAL_FILE} "
                                    "(official GEN3C-Cosmos-7B) in this folder")
    return p


@lru_cache(maxsize=1)
def _load_cached(folder: str, device: str, mtime: float) -> tuple[Gen3CNet, PromptEmbeddings | None]:
    p = Path(folder)
    pocket = (p / CONFIG_NAME).is_file()
    # the official network needs its text embeddings: without them, the one-line "how to" error before the 7B load
    text = PromptEmbeddings.load(p) if (p / EMBEDDINGS_FILE).is_file() or not pocket else None
    if pocket:
        from lyra.generator.diffusion.model import from_pretrained

        net = from_pretrained(p, device=device)
    else:
        from lyra.generator.diffusion.official import load_official

        net = load_official(p, device=device, dtype=torch.bfloat16)
    return net.requires_grad_(False).eval(), text


GENERATION_CONFIG = "generation_config.json"  # optional, beside the weights: the sampler settings they were measured at


OFFICIAL_CHUNK_FRAMES = 121  # frames per chunk of GEN3C-Cosmos-7B


def _generation_setting(model: str | os.PathLike | None, key: str, default: float) -> float:
    """``key`` of the weights folder's ``generation_config.json``, or ``default`` without the file or the key."""
    f = resolve_model_dir(model) / GENERATION_CONFIG
    if not f.is_file():
        return default
    try:
        value = json.loads(f.read_text()).get(key, default)
        return float(value)
    except (ValueError, TypeError, AttributeError) as exc:
        raise DiffusionError(f, f"needs a number under \"{key}\" ({exc})") from exc


def default_guidance(model: str | os.PathLike | None) -> float:
    """The guidance g to use with ``--diffusion-model`` when none is given: the folder's ``generation_config.json``
    ``"guidance"`` where it has one (the shipped pocket teacher: 0, measured better), else the official 1."""
    return _generation_setting(model, "guidance", 1.0)


def default_noise_scale(model: str | os.PathLike | None) -> float:
    """The sampler's initial-noise scale τ (:class:`SamplerConfig`): ``generation_config.json``'s ``"noise_scale"``
    (the shipped pocket teacher: measured in its model card), else the official 1."""
    tau = _generation_setting(model, "noise_scale", 1.0)
    if not 0 <= tau <= 1:
        raise DiffusionError(resolve_model_dir(model) / GENERATION_CONFIG, f"noise_scale must be in [0, 1], got {tau}")
    return tau


def default_chunk_frames(model: str | os.PathLike | None) -> int:
    """Frames per autoregressive chunk: ``generation_config.json``'s ``"chunk_frames"`` (the shipped pocket teacher:
    49, its training length), else the official 121."""
    n = _generation_setting(model, "chunk_frames", OFFICIAL_CHUNK_FRAMES)
    if n != int(n) or n < 2:
        raise DiffusionError(resolve_model_dir(model) / GENERATION_CONFIG, f"chunk_frames must be an integer >= 2, "
                                                                           f"got {n}")
    return int(n)


def load_diffusion_net(model: str | os.PathLike | None, device: torch.device | str = "cpu"
                       ) -> tuple[Gen3CNet, PromptEmbeddings]:
    """(network, text embeddings) of ``--diffusion-model`` on ``device`` (the last one loaded is kept in memory, so
    that one SDG run reads the weights once)."""
    p = resolve_model_dir(model).resolve()
    marker = p / CONFIG_NAME if (p / CONFIG_NAME).is_file() else p / OFFICIAL_FILE
    net, text = _load_cached(str(p), str(device), marker.stat().st_mtime)
    cfg = net.config
    if text is None:
        zeros = torch.zeros(cfg.text_tokens, cfg.text_dim)
        text = PromptEmbeddings(zeros, zeros.clone())
    return net, text.check(cfg)


@register_generator("diffusion")
class DiffusionGenerator(Generator):
    """GEN3C diffusion teacher: warped 3D cache of the source view -> DiT sampler -> latents (and frames).

    Args:
        tokenizer: the video tokenizer whose latent space the network samples (its channels must be the network's).
        world: ignored (registry signature).
        model: weights folder (``--diffusion-model DIR``); None: the shipped pocket weights (``lyra/assets/diffusion``).
        steps: Euler steps of the sampler (official 35).
        guidance: g of F_c + g·(F_c − F_u) (official 1; 0 halves the cost); None: :func:`default_guidance`.
        noise_scale: τ of the initial noise (official 1); None: :func:`default_noise_scale`.
        chunk_frames: frames per chunk (1 + 8k); a longer trajectory is made of autoregressive chunks overlapping by
            one frame (:func:`chunk_spans`); None: :func:`default_chunk_frames`.
        device: where the network runs (default: the tokenizer's device).
        edge_threshold, edge_dilate, footprint: the cache lift and warp (:class:`CacheGenerator`).
    """

    name = "diffusion"
    needs_source = True

    def __init__(self, tokenizer: VideoTokenizer | None = None, world: object | None = None, *,
                 model: str | os.PathLike | None = None, steps: int = 35, guidance: float | None = None,
                 noise_scale: float | None = None, chunk_frames: int | None = None, device: str | None = None,
                 edge_threshold: float | None = 0.05, edge_dilate: int = 0,
                 footprint: str = "bilinear") -> None:
        if tokenizer is None:
            raise DiffusionError("the diffusion generator needs a tokenizer")
        self.tokenizer = tokenizer
        if guidance is None:
            guidance = default_guidance(model)
        if noise_scale is None:
            noise_scale = default_noise_scale(model)
        self.sampler = SamplerConfig(steps=steps, guidance=guidance, noise_scale=noise_scale)
        self.chunk_frames = default_chunk_frames(model) if chunk_frames is None else int(chunk_frames)
        self.net, self.text = load_diffusion_net(model, device or tokenizer_device(tokenizer))
        if self.net.config.latent_channels != tokenizer.latent_channels:
            raise DiffusionError(f"the diffusion network samples {self.net.config.latent_channels} latent channels "
                                 f"but the tokenizer has {tokenizer.latent_channels}; use the tokenizer it was "
                                 "trained on")
        self.cache = CacheGenerator(tokenizer, edge_threshold=edge_threshold, edge_dilate=edge_dilate,
                                    footprint=footprint)  # type: ignore[arg-type]

    @torch.no_grad()
    def generate(self, trajectories: Sequence[Cameras], source: SourceView | None = None, *,
                 seed: int = 0) -> list[TrajectorySample]:
        """One sample per trajectory; trajectory i samples with seed ``(seed · 1000 + i) mod 2³²`` (the same inputs
        and seed give the same latents).

        A trajectory longer than ``chunk_frames`` is made chunk by chunk (:func:`generate_autoregressive`): chunk k > 0
        is conditioned on the previous chunk's last decoded frame (first-frame condition) and on the source view's
        cache warped into its cameras; the decoded video is encoded whole into the trajectory's latents. (Officially
        the last frame is also lifted into a second cache buffer with its estimated depth; here the cache stays the
        source view's.) Chunk k uses seed ``(seed · 1000 + i + 7919 k) mod 2³²``.
        """
        warped = self.cache.warp(trajectories, source)  # checks the source and its depth
        assert source is not None
        out = []
        for i, (cams, w) in enumerate(zip(trajectories, warped, strict=True)):
            if (cams.height, cams.width) != tuple(source.image.shape[-2:]):
                raise DiffusionError(f"trajectory {i} is {cams.height}x{cams.width} but the source image is "
                                     f"{tuple(source.image.shape[-2:])}")
            base = int(seed) * 1000 + i
            T = len(cams)
            if T <= self.chunk_frames:
                raw = self._chunk_latents(source.image, w.frames, w.mask, base)
                frames = video_to_frames(self.tokenizer.decode(raw).float()).cpu() if self.decode_frames else None
                out.append(TrajectorySample(frames, raw[0].cpu(), cams, w.depth))
                continue

            def chunk(k: int, span: tuple[int, int], last: Tensor | None, w=w, base=base) -> Tensor:
                image = source.image if last is None else last
                s, e = span
                z = self._chunk_latents(image, w.frames[s:e], w.mask[s:e], base + 7919 * k)
                return video_to_frames(self.tokenizer.decode(z).float()).cpu()

            video = generate_autoregressive(T, self.chunk_frames, chunk)
            latents, frames = teacher_roundtrip(self.tokenizer, video, decode=self.decode_frames)
            out.append(TrajectorySample(frames, latents, cams, w.depth))
        return out

    def _chunk_latents(self, image: Tensor, renders: Tensor, mask: Tensor, seed: int) -> Tensor:
        """Raw latents [1, C, T_l, h, w] of one chunk: condition ``image`` [3, H, W] in [0, 1], the cache's
        inpainted ``renders`` [T, 3, H, W] and coverage ``mask`` [T, 1, H, W] (the network's ``cache_fill`` decides
        whether the holes stay filled or become black), sampled with ``seed mod 2³²``."""
        dev = tokenizer_device(self.tokenizer)
        cond = chunk_conditioning(self.tokenizer, self.text, image.float().to(dev), renders[None].to(dev),
                                  mask[None].to(dev), buffers=self.net.config.cache_buffers,
                                  fill=self.net.config.cache_fill)
        z = sample(self.net, cond, self.sampler, seed=seed % 2**32)  # diffusion space
        return self.tokenizer.denormalize_latents(z.to(dev)).float()

