"""Strict conversion of plain JSON/YAML values into typed dataclasses (configs, world files).

Unknown fields, missing required fields and values of the wrong type raise the caller's error type
with the dotted path of the offending field.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, Literal, Union


def coerce_fields(cls: type, data: Any, where: str = "", error: type[Exception] = ValueError) -> dict[str, Any]:
    """The fields of dataclass ``cls`` present in ``data``, type-checked and converted (no object is built).

    Unknown fields raise ``error``; missing ones are not checked here (see :func:`from_plain`).
    """
    prefix = f"{where}: " if where else ""
    if not isinstance(data, dict):
        raise error(f"{prefix}expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    unknown = sorted(map(str, set(data) - set(known)))
    if unknown:
        raise error(f"{prefix}unknown field(s) {', '.join(map(repr, unknown))} (known: {', '.join(sorted(known))})")
    return {name: coerce(data[name], hints[name], f"{where}.{name}" if where else name, error)
            for name in known if name in data}


def coerce_instance(obj: Any, error: type[Exception] = ValueError) -> None:
    """Type-check and convert every field of dataclass instance ``obj`` in place (a ``__post_init__`` helper: lists
    become tuples, numeric strings numbers); a wrong type raises ``error`` naming the field."""
    values = {f.name: getattr(obj, f.name) for f in fields(obj)}
    for name, value in coerce_fields(type(obj), values, "", error).items():
        setattr(obj, name, value)


def from_plain(cls: type, data: Any, where: str = "", error: type[Exception] = ValueError) -> Any:
    """Build dataclass ``cls`` from a plain mapping, recursively; raises ``error`` naming the field."""
    prefix = f"{where}: " if where else ""
    kwargs = coerce_fields(cls, data, where, error)
    for f in fields(cls):
        if f.name not in kwargs and f.default is MISSING and f.default_factory is MISSING:
            raise error(f"{prefix}missing field {f.name!r}")
    try:
        return cls(**kwargs)
    except error:
        raise
    except (TypeError, ValueError) as e:
        raise error(f"{prefix}{e}") from e


def coerce(value: Any, tp: Any, where: str, error: type[Exception] = ValueError) -> Any:
    """Check and convert ``value`` to the annotated type ``tp`` (numbers, str, bool, Literal, Optional/Union,
    tuple, list, dict, nested dataclasses). Numbers may be given as numeric strings (YAML reads ``1e-4`` as one)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if isinstance(tp, type) and is_dataclass(tp):
        return from_plain(tp, value, where, error)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise error(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value)
        except ValueError as e:
            raise error(f"{where}: expected a number, got {value!r}") from e
        if math.isnan(number):
            raise error(f"{where}: expected a number, got NaN")
        return number
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise error(f"{where}: expected an integer, got {value!r}")
        return value
    if tp in (bool, str):
        if not isinstance(value, tp):
            raise error(f"{where}: expected {'true/false' if tp is bool else 'a string'}, got {value!r}")
        return value
    if origin is Literal:
        if value not in args:
            raise error(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, where, error)
            except error as e:
                errors.append(str(e))
        raise error(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of the allowed types")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise error(f"{where}: expected a list, got {value!r}")
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            items = [coerce(v, args[0], f"{where}[{i}]", error) for i, v in enumerate(value)] if args else list(value)
            return items if origin is list else tuple(items)
        if args and len(value) != len(args):
            raise error(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(coerce(v, a, f"{where}[{i}]", error) for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise error(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    return value
