"""Definitions to and from JSON: the same schema as the dataclasses, plus a format header.

A file looks like ``{"format": "hda-definition", "version": 1, "family": "hardnet", "name": ...,
"stem": {...}, "stages": [...], "head": {...}}``: every dataclass field by name, tuples as lists.
``hda`` writes one for any zoo model, so users start from a real example.
"""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.registry import NetworkDef, get_family
from hardnet_analysis.fileio import atomic_write_json, read_json

FORMAT = "hda-definition"
VERSION = 1


def to_dict(defn: NetworkDef) -> dict[str, Any]:
    """The JSON-ready dict of a definition (a dataclass), with the format header."""
    body = dataclasses.asdict(defn)  # type: ignore[call-overload]
    return {"format": FORMAT, "version": VERSION, **body}


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _build(hint, value, where)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        return None if value is None else _convert(options[0], value, where)
    if origin is Literal:
        if value not in get_args(hint):
            allowed = ", ".join(repr(a) for a in get_args(hint))
            raise UsageError(f"{where}: {value!r} is not one of {allowed}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{where}: expected a list, got {type(value).__name__}")
        args = get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise UsageError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(
            _convert(a, v, f"{where}[{i}]")
            for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not (
        isinstance(value, hint) and (hint is bool or not isinstance(value, bool))
    ):
        raise UsageError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def _build(cls: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected an object, got {type(data).__name__}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(fields)
        raise UsageError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {known}")
    kwargs = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], f"{where}.{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise UsageError(f"{where}: missing field {name!r}")
    return cls(**kwargs)


def from_dict(data: dict[str, Any], where: str = "definition") -> NetworkDef:
    """The definition a dict describes; errors name the offending field."""
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a JSON object")
    body = {k: v for k, v in data.items() if k not in ("format", "version")}
    try:
        spec = get_family(str(body.get("family")))
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    defn: NetworkDef = _build(spec.definition, body, where)
    return defn


def save_definition(defn: NetworkDef, path: str | Path) -> Path:
    """Write `defn` as JSON to `path`, atomically."""
    return atomic_write_json(path, to_dict(defn))


def load_definition(path: str | Path) -> NetworkDef:
    """Read a definition file; a missing file or bad JSON is a one-line UsageError."""
    return from_dict(read_json(path, "definition file"), where=Path(path).name)
