"""Load the teacher network and time sampler steps at a chosen size: the GPU smoke test of the official weights.

::

    python -m lyra.generator.diffusion.check WEIGHTS [--device cuda] [--offload BLOCKS] [--steps 2]
        [--frames 121 --height 704 --width 1280] [--text text_embeddings.safetensors] [--convert DIR]

``WEIGHTS`` is NVIDIA's ``model.pt`` (or its folder) or a folder written by ``save_pretrained``. The conditioning is
random (the timing and memory of a step do not depend on it); each step runs both guidance branches. Prints one
JSON line: parameters, dtype, load seconds, latent shape, seconds per step, peak device memory. ``--convert DIR``
also writes the loaded network as ``config.json`` + bf16 ``model.safetensors`` (≈ 14.5 GB for 7B), which later
loads faster (``from_pretrained``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from lyra.generator.diffusion.conditioning import Conditioning
from lyra.generator.diffusion.config import Gen3CNetConfig
from lyra.generator.diffusion.model import Gen3CNet, from_pretrained, save_pretrained
from lyra.generator.diffusion.official import load_official
from lyra.generator.diffusion.sampler import SamplerConfig, sample
from lyra.generator.diffusion.text import PromptEmbeddings
from lyra.utils.weights import WEIGHTS_NAME


def load_network(weights: str | Path, device: str, dtype: torch.dtype, config: Gen3CNetConfig | None = None,
                 offload: int = 0) -> Gen3CNet:
    """A ``save_pretrained`` folder or an official ``model.pt`` (or its folder), optionally block-offloaded."""
    w = Path(weights)
    load_to = "cpu" if offload else device
    if (w / WEIGHTS_NAME).is_file():
        net = from_pretrained(w, load_to, dtype)
    else:
        net = load_official(w, device=load_to, dtype=dtype, config=config)
    return net.offload(device, offload) if offload else net


def random_conditioning(net: Gen3CNet, frames: int, height: int, width: int, text: PromptEmbeddings,
                        seed: int = 0) -> Conditioning:
    """Random latents of the size a ``frames`` × ``height`` × ``width`` video encodes to (8× space and time)."""
    cfg = net.config
    shape = (1, cfg.latent_channels, 1 + (frames - 1) // 8, height // 8, width // 8)
    g = torch.Generator().manual_seed(seed)
    cache = torch.randn((1, cfg.cache_channels, *shape[2:]), generator=g)
    return Conditioning(torch.randn(shape, generator=g), cache, *text.batched())


def run_check(weights: str | Path, *, device: str = "cpu", dtype: torch.dtype = torch.bfloat16, offload: int = 0,
              steps: int = 2, frames: int = 121, height: int = 704, width: int = 1280, text: str | None = None,
              config: Gen3CNetConfig | None = None, convert: str | None = None) -> dict:
    """Load, optionally convert, sample ``steps`` steps; returns the measurements."""
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    net = load_network(weights, device, dtype, config, offload)
    load_s = time.perf_counter() - t0
    if convert:
        save_pretrained(net, convert)
    emb = PromptEmbeddings.load(text) if text else PromptEmbeddings.random(net.config)
    cond = random_conditioning(net, frames, height, width, emb.check(net.config))
    times: list[float] = []
    last = [time.perf_counter()]

    def tick(_: int, x: torch.Tensor) -> None:
        if cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    z = sample(net, cond, SamplerConfig(steps=steps), seed=1, callback=tick)
    return {"parameters": net.num_parameters(), "dtype": str(net.dtype).removeprefix("torch."), "device": device,
            "offload_blocks": offload, "load_s": round(load_s, 2), "latent_shape": list(z.shape),
            "step_s": [round(t, 3) for t in times],
            "peak_device_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
            "finite": bool(torch.isfinite(z).all()), "converted_to": convert}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lyra.generator.diffusion.check", description=__doc__.split("\n")[0])
    ap.add_argument("weights", help="model.pt (or its folder), or a save_pretrained folder")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    ap.add_argument("--offload", type=int, default=0, metavar="BLOCKS",
                    help="keep weights on the CPU, BLOCKS transformer blocks at a time on the device (0: off)")
    ap.add_argument("--steps", type=int, default=2, help="sampler steps to time (each runs both branches)")
    ap.add_argument("--frames", type=int, default=121)
    ap.add_argument("--height", type=int, default=704)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--text", help="text_embeddings.safetensors (default: random embeddings)")
    ap.add_argument("--config", help="network config.json for model.pt (default: the official 7B)")
    ap.add_argument("--convert", metavar="DIR", help="also write the network as config.json + model.safetensors")
    a = ap.parse_args(argv)
    config = Gen3CNetConfig.load(a.config) if a.config else None
    report = run_check(a.weights, device=a.device, dtype=getattr(torch, a.dtype), offload=a.offload, steps=a.steps,
                       frames=a.frames, height=a.height, width=a.width, text=a.text, config=config,
                       convert=a.convert)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
