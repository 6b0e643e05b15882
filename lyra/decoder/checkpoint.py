"""Decoder weights: the official DeepSpeed checkpoints (lyra_static.pt / lyra_dynamic.pt) and our safetensors format."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from lyra.decoder.config import DecoderConfig
from lyra.errors import InputError
from lyra.utils.inputs import load_tensors
from lyra.utils.weights import CONFIG_NAME, WEIGHTS_NAME, load_strict, save_weights_folder

if TYPE_CHECKING:
    from lyra.decoder.model import LyraDecoder

OFFICIAL_REPO = "nvidia/Lyra"
OFFICIAL_FILES = ("lyra_static.pt", "lyra_dynamic.pt")


class CheckpointError(InputError, RuntimeError):
    """Raised for a missing, unreadable or mismatching decoder checkpoint (an input error; also a RuntimeError)."""


def load_official_checkpoint(path: str | os.PathLike) -> dict[str, Tensor]:
    """The decoder state dict of an official checkpoint file.

    Reads with ``torch.load(weights_only=True)`` (no code execution); takes ``["module"]`` when present (DeepSpeed
    layout; other entries are ignored) and strips a leading ``module.`` from the keys. Tensors keep their stored
    dtype (bf16 in the released files); ``load_into`` casts them to the model's dtype.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"decoder checkpoint not found: {path}. Download {' or '.join(OFFICIAL_FILES)} from the Hugging Face repo "
            f"{OFFICIAL_REPO} (e.g. `huggingface-cli download {OFFICIAL_REPO} lyra_static.pt --local-dir checkpoints`) "
            f"and pass its path, e.g. checkpoints/lyra_static.pt"
        )
    obj = load_tensors(path, "weights-only torch checkpoint", CheckpointError)
    if isinstance(obj, dict) and isinstance(obj.get("module"), dict):
        obj = obj["module"]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors (or a DeepSpeed dict with 'module')")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def load_into(model: nn.Module, state: dict[str, Tensor], source: str = "state dict") -> None:
    """Strictly load ``state`` into ``model`` (values cast to each parameter's dtype).

    Raises CheckpointError listing missing keys, unexpected keys and shape mismatches.
    """
    load_strict(model, state, source, error=CheckpointError, what="the decoder configuration")


def save_pretrained(model: LyraDecoder, directory: str | os.PathLike) -> None:
    """Write ``config.json`` and ``model.safetensors`` (tensors as stored in the model) into ``directory``."""
    save_weights_folder(directory, model.state_dict(), model.config.to_dict())


def from_pretrained(cls: type[LyraDecoder], directory: str | os.PathLike, device: torch.device | str = "cpu",
                    dtype: torch.dtype | None = None) -> LyraDecoder:
    """Rebuild a decoder saved by ``save_pretrained`` (strict key check); any problem raises an InputError naming
    the file (CheckpointError, DecoderConfigError)."""
    directory = Path(directory)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (directory / name).is_file():
            raise CheckpointError(f"{directory}: missing {name} (expected a folder written by save_pretrained)")
    config = DecoderConfig.load(directory / CONFIG_NAME)
    state = load_tensors(directory / WEIGHTS_NAME, "safetensors weights file", CheckpointError)
    if dtype is None:
        dtype = next(iter(state.values())).dtype if state else torch.float32
    with torch.device("meta"):
        model = cls(config)
    model = model.to_empty(device=device).to(dtype)
    load_into(model, state, source=str(directory / WEIGHTS_NAME))
    return model
