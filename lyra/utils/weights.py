"""Strict state-dict loading: every key present, none extra, every shape equal, every value finite."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lyra.errors import InputError
from lyra.utils.files import atomic_write
from lyra.utils.inputs import load_tensors, read_json

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def _listing(title: str, items: list[str]) -> str:
    shown = "\n    ".join(items[:20]) + (f"\n    ... ({len(items) - 20} more)" if len(items) > 20 else "")
    return f"\n  {title} ({len(items)}):\n    {shown}" if items else ""


def load_strict(model: nn.Module, state: Mapping[str, Tensor], source: str = "state dict", *,
                error: type[InputError] = InputError, what: str = "the model configuration",
                assign: bool = False) -> None:
    """Load ``state`` into ``model``, values cast to each of the model's tensor dtypes.

    Raises ``error`` listing missing keys, unexpected keys and shape mismatches ("``source`` does not match
    ``what``"), or naming tensors with NaN/Inf values (tensors on the meta device are not checked).
    ``assign=True`` makes the cast tensors the model's own (a model built on the meta device loads this way).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k}: checkpoint {list(state[k].shape)} vs model {list(own[k].shape)}"
                  for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        raise error(f"{source} does not match {what}" + _listing("missing keys", missing)
                    + _listing("unexpected keys", unexpected) + _listing("shape mismatches", mismatched))
    bad = [k for k, v in state.items()
           if v.is_floating_point() and not v.is_meta and not bool(torch.isfinite(v).all())]
    if bad:
        raise error(f"{source}: NaN/Inf values in {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True, assign=assign)


def save_weights_folder(directory: str | os.PathLike, state: Mapping[str, Tensor], config: dict[str, Any]) -> Path:
    """Write ``model.safetensors`` (``state`` as stored) and ``config.json`` (``config``) into ``directory``, each
    atomically; returns the folder."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    atomic_write(directory / WEIGHTS_NAME, lambda p: save_file(tensors, p, metadata={"format": "pt"}))
    atomic_write(directory / CONFIG_NAME, lambda p: Path(p).write_text(json.dumps(config, indent=2, sort_keys=True)
                                                                       + "\n"))
    return directory


def read_weights_folder(directory: str | os.PathLike, kind: str = "model",
                        error: type[InputError] = InputError) -> tuple[dict[str, Any], dict[str, Tensor], str]:
    """(config mapping, tensors, weights path) of a folder written by :func:`save_weights_folder`."""
    directory = Path(directory)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (directory / name).is_file():
            raise error(directory, f"missing {name} (expected a {kind} folder: config.json + model.safetensors)")
    config = read_json(directory / CONFIG_NAME, f"{kind} config.json", error)
    state = load_tensors(directory / WEIGHTS_NAME, "safetensors weights file", error)
    return config, state, str(directory / WEIGHTS_NAME)
