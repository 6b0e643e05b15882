"""NVIDIA's GEN3C-Cosmos-7B weights (``model.pt``) into :class:`Gen3CNet`: read safely, rename, drop, load strictly.

The released file is the state dict of the official ``ModuleDict(net, conditioner, logvar)`` (possibly under a
``"model"`` entry). Its network keys follow the official module tree (``net.blocks.block{i}.blocks.{0,1,2}`` for
self-attention, cross-attention and MLP; ``to_q.0`` the projection, ``to_q.1`` the per-head RMSNorm...); they map
one to one onto diffusers' ``CosmosTransformer3DModel`` names (:data:`RENAMES`). Dropped, as nothing at inference
reads them (:func:`dropped_reason`): ``*._extra_state`` (Transformer Engine metadata), ``logvar.*`` (the training
loss weighting), ``net.pos_embedder.*`` (the RoPE position buffer, recomputed) and ``net.accum_*`` (training
counters). Every other key must match the network exactly: a missing, extra or mis-shaped key is an error.

Read with ``torch.load(weights_only=True, mmap=True)``: no code runs, and only ``io.BytesIO`` (how Transformer
Engine stores its extra state) is allowed beside tensors; tensors are cast to the requested dtype (bf16 by default).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import Tensor

from lyra.errors import reading
from lyra.generator.diffusion.config import DiffusionError, Gen3CNetConfig
from lyra.generator.diffusion.model import Gen3CNet, with_weights
from lyra.utils.inputs import require_file

OFFICIAL_REPO = "nvidia/GEN3C-Cosmos-7B"
OFFICIAL_FILE = "model.pt"
OFFICIAL_MD5 = "38644bf823aa5272acef60cfad8bc0f7"  # scripts/download_gen3c_checkpoints.py of nv-tlabs/GEN3C

# official network key (without "net.") -> diffusers CosmosTransformer3DModel key; the first matching rule applies.
# Official sub-blocks 0, 1, 2 of a block are self-attention, cross-attention and MLP ("FA-CA-MLP").
_BLOCK = r"blocks\.block(\d+)\.blocks\."
RENAMES: tuple[tuple[str, Callable[[re.Match[str]], str]], ...] = (
    (r"x_embedder\.proj\.1\.(\w+)", lambda m: f"patch_embed.proj.{m[1]}"),
    (r"t_embedder\.1\.(linear_[12])\.(\w+)", lambda m: f"time_embed.t_embedder.{m[1]}.{m[2]}"),
    (r"affline_norm\.(\w+)", lambda m: f"time_embed.norm.{m[1]}"),
    (r"extra_pos_embedder\.(pos_emb_[thw])", lambda m: f"learnable_pos_embed.{m[1]}"),
    (_BLOCK + r"([012])\.adaLN_modulation\.([12])\.(\w+)",
     lambda m: f"transformer_blocks.{m[1]}.norm{int(m[2]) + 1}.linear_{m[3]}.{m[4]}"),
    (_BLOCK + r"([01])\.block\.attn\.to_([qkv])\.0\.(\w+)",
     lambda m: f"transformer_blocks.{m[1]}.attn{int(m[2]) + 1}.to_{m[3]}.{m[4]}"),
    (_BLOCK + r"([01])\.block\.attn\.to_([qk])\.1\.(\w+)",
     lambda m: f"transformer_blocks.{m[1]}.attn{int(m[2]) + 1}.norm_{m[3]}.{m[4]}"),
    (_BLOCK + r"([01])\.block\.attn\.to_out\.0\.(\w+)",
     lambda m: f"transformer_blocks.{m[1]}.attn{int(m[2]) + 1}.to_out.0.{m[3]}"),
    (_BLOCK + r"2\.block\.layer1\.(\w+)", lambda m: f"transformer_blocks.{m[1]}.ff.net.0.proj.{m[2]}"),
    (_BLOCK + r"2\.block\.layer2\.(\w+)", lambda m: f"transformer_blocks.{m[1]}.ff.net.2.{m[2]}"),
    (r"final_layer\.linear\.(\w+)", lambda m: f"proj_out.{m[1]}"),
    (r"final_layer\.adaLN_modulation\.([12])\.(\w+)", lambda m: f"norm_out.linear_{m[1]}.{m[2]}"),
)


def dropped_reason(key: str) -> str | None:
    """Why an official key has no place in the network (None: it must map)."""
    if key.endswith("_extra_state"):
        return "Transformer Engine extra state"
    if key.startswith("logvar."):
        return "training-only loss weighting (logvar)"
    if key.startswith("conditioner."):
        return "conditioner state (none at inference)"
    if key.startswith("net.pos_embedder."):
        return "RoPE position buffer (recomputed)"
    if key.startswith("net.accum_"):
        return "training counter"
    return None


def official_to_diffusers_key(key: str) -> str | None:
    """The diffusers name of an official network key (``net.`` prefix optional); None when no rule matches."""
    name = key.removeprefix("net.")
    for pattern, rename in RENAMES:
        m = re.fullmatch(pattern, name)
        if m:
            return rename(m)
    return None


def convert_official_state(state: Mapping[str, object]) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Official state dict -> (diffusers-named tensors, {dropped key: reason}).

    A key that is neither dropped nor renamed is kept under its own name, so that the strict load lists it as
    unexpected (with the keys the network misses).
    """
    out: dict[str, Tensor] = {}
    dropped: dict[str, str] = {}
    for key, value in state.items():
        reason = dropped_reason(key)
        if reason is not None:
            dropped[key] = reason
            continue
        if not isinstance(value, Tensor):
            raise DiffusionError(f"official key {key!r} holds a {type(value).__name__}, expected a tensor")
        new = official_to_diffusers_key(key)
        name = key if new is None else new
        if name in out:
            raise DiffusionError(f"official keys map twice onto {name!r}")
        out[name] = value
    return out, dropped


def official_weights_path(path: str | os.PathLike) -> Path:
    """``model.pt`` itself, or the folder holding it (``hf download nvidia/GEN3C-Cosmos-7B --local-dir DIR``)."""
    p = Path(path)
    if p.is_dir():
        p = p / OFFICIAL_FILE
    if not p.exists():
        raise DiffusionError(p, f"GEN3C weights not found; download them on a machine with a network "
                                f"(`hf download {OFFICIAL_REPO} {OFFICIAL_FILE} --local-dir DIR`, licence: NVIDIA Open "
                                f"Model License) and pass DIR or DIR/{OFFICIAL_FILE}")
    return require_file(p, "GEN3C weights file", DiffusionError)


def read_official_state(path: str | os.PathLike) -> dict[str, object]:
    """The state dict of an official ``model.pt`` (unwrapped from ``"model"`` / ``"state_dict"``), memory-mapped.

    ``torch.load(weights_only=True, mmap=True)`` with ``io.BytesIO`` allowed (Transformer Engine's extra state):
    a file needing any other class is refused.
    """
    p = official_weights_path(path)
    with reading(p, "not a readable weights-only torch checkpoint", DiffusionError), \
            torch.serialization.safe_globals([io.BytesIO]):
        obj = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    for wrapper in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise DiffusionError(p, "expected a state dict (a mapping of names to tensors)")
    return obj


def load_official(path: str | os.PathLike, *, device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.bfloat16, config: Gen3CNetConfig | None = None) -> Gen3CNet:
    """GEN3C-Cosmos-7B as a :class:`Gen3CNet`: built on the meta device, the renamed weights assigned strictly.

    Args:
        path: ``model.pt`` or its folder.
        device: where the weights go (each tensor is moved as it is cast; peak host memory ≈ one copy in ``dtype``).
        dtype: weights dtype (bf16, as the official inference runs).
        config: the network configuration (default :meth:`Gen3CNetConfig.official`).
    """
    source = str(official_weights_path(path))
    renamed, _ = convert_official_state(read_official_state(path))
    net = with_weights(config or Gen3CNetConfig.official(), renamed, device, dtype, source,
                       "the GEN3C network configuration")
    return net.requires_grad_(False)
