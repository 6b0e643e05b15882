"""Training checkpoints: ``<output_dir>/checkpoint-<step>/`` written atomically (temporary folder, then rename).

Contents: ``model.safetensors`` + ``config.json`` (the decoder, loadable by ``LyraDecoder.from_pretrained``),
``optimizer.pt`` and ``scheduler.pt`` (state dicts, loaded with ``weights_only=True``), ``rng-<rank>.pt``
(torch / numpy / python RNG states of every process) and ``state.json`` (step, stage, config), written last;
then the folder is renamed into place, so a checkpoint is complete or absent.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lyra.decoder import DecoderConfig, LyraDecoder
from lyra.decoder.checkpoint import load_into

STATE_NAME = "state.json"
_CKPT_RE = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_dirs(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints (``state.json`` present) in ``output_dir``, oldest first."""
    d = Path(output_dir)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _CKPT_RE.match(p.name)) and (p / STATE_NAME).is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    dirs = checkpoint_dirs(output_dir)
    return dirs[-1] if dirs else None


def rng_state() -> dict[str, Any]:
    """RNG states of this process (torch CPU, CUDA when present, numpy, python)."""
    st: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def save_rng(directory: Path, rank: int) -> None:
    """Per-process RNG file (numpy/python states are plain tuples of ints and arrays)."""
    st = rng_state()
    payload = {"torch": st["torch"], "numpy": [st["numpy"][0], torch.from_numpy(np.asarray(st["numpy"][1])),
                                               *st["numpy"][2:]],
               "python": [st["python"][0], list(st["python"][1]), st["python"][2]]}
    if "cuda" in st:
        payload["cuda"] = st["cuda"]
    torch.save(payload, directory / f"rng-{rank}.pt")


def load_rng(directory: Path, rank: int) -> bool:
    p = directory / f"rng-{rank}.pt"
    if not p.is_file():
        return False
    d = torch.load(p, map_location="cpu", weights_only=True)
    n = d["numpy"]
    set_rng_state({"torch": d["torch"], "numpy": (n[0], n[1].numpy().astype(np.uint32), *n[2:]),
                   "python": (d["python"][0], tuple(d["python"][1]), d["python"][2]),
                   **({"cuda": d["cuda"]} if "cuda" in d else {})})
    return True


def staging_dir(output_dir: str | os.PathLike, step: int) -> Path:
    """The hidden folder where ``checkpoint-<step>`` is assembled before :func:`commit_checkpoint` renames it."""
    return Path(output_dir) / f".checkpoint-{step}.tmp"


def begin_checkpoint(output_dir: str | os.PathLike, step: int) -> Path:
    """Create an empty staging folder for ``checkpoint-<step>`` (main process; a stale one is removed)."""
    tmp = staging_dir(output_dir, step)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def write_training_state(directory: Path, model: LyraDecoder, optimizer: torch.optim.Optimizer,
                         scheduler: Any) -> None:
    """Model (``model.safetensors`` + ``config.json``), optimiser and scheduler state into ``directory``."""
    model.save_pretrained(directory)
    torch.save(optimizer.state_dict(), directory / "optimizer.pt")
    torch.save(scheduler.state_dict(), directory / "scheduler.pt")


def commit_checkpoint(output_dir: str | os.PathLike, step: int, state: dict[str, Any], keep: int = 3) -> Path:
    """Write ``state.json`` into the staging folder, flush every file to disk and rename it to
    ``checkpoint-<step>``; older checkpoints beyond ``keep`` are removed afterwards.

    A process killed at any moment leaves either the complete new checkpoint or none (a stale staging
    folder is ignored by :func:`checkpoint_dirs` and replaced by the next :func:`begin_checkpoint`).
    """
    out = Path(output_dir)
    tmp, final = staging_dir(out, step), out / f"checkpoint-{step}"
    (tmp / STATE_NAME).write_text(json.dumps({**state, "step": step}, indent=1, sort_keys=True) + "\n")
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in checkpoint_dirs(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_model_weights(model: nn.Module, source: str | os.PathLike) -> None:
    """Load decoder weights strictly from a checkpoint / pretrained folder (``model.safetensors``) or a file."""
    from lyra.utils.inputs import load_tensors

    p = Path(source)
    f = p / "model.safetensors" if p.is_dir() else p
    state = load_tensors(f, "decoder weights file")
    load_into(model, {k: v.float() for k, v in state.items()}, source=str(f))


def read_decoder_config(source: str | os.PathLike) -> DecoderConfig | None:
    p = Path(source) / "config.json"
    return DecoderConfig.load(p) if p.is_file() else None


def load_optimizer(optimizer: torch.optim.Optimizer, directory: Path) -> bool:
    p = directory / "optimizer.pt"
    if not p.is_file():
        return False
    optimizer.load_state_dict(torch.load(p, map_location="cpu", weights_only=True))
    return True


def load_scheduler(scheduler: Any, directory: Path) -> bool:
    p = directory / "scheduler.pt"
    if not p.is_file():
        return False
    scheduler.load_state_dict(torch.load(p, map_location="cpu", weights_only=True))
    return True
