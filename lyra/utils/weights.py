"""Strict state-dict loading: every key present, none extra, every shape equal, every value finite."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from lyra.errors import InputError


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
