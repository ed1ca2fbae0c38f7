"""Typed JSON documents: frozen dataclasses written and read field by field.

A document class (`ProfileRun`, `LatencyModel`) is a frozen dataclass of plain values, tuples,
mappings and nested dataclasses. `encode` turns one into JSON-ready values (a field is its JSON
key; a field made with `omitted_if_none` is left out while None); `decode` reads one back,
checking every value's type, so a missing key or a wrong type is a one-line `UsageError` naming
the file, the key path (``layers[3].time_s``) and what is accepted, never a KeyError.
`check_header` checks the ``format`` and ``version`` every document starts with.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from typing import Any, Literal, NoReturn, TypeVar, Union, get_args, get_origin, get_type_hints

from hardnet_analysis.errors import UsageError

T = TypeVar("T")
_OMIT = "omit_if_none"


def omitted_if_none() -> Any:
    """A field defaulting to None that is left out of the JSON while None (details only some
    writers have, e.g. a CPU's clock list or ncu's kernel count)."""
    return dataclasses.field(default=None, metadata={_OMIT: True})


def encode(value: Any) -> Any:
    """The JSON-ready form of `value`: dataclasses as objects by field name, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item is None and f.metadata.get(_OMIT):
                continue
            out[f.name] = encode(item)
        return out
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def check_header(document: Any, where: str, what: str, fmt: str, version: int) -> None:
    """A UsageError unless `document` is an object of format `fmt` and version `version`.
    `where` names the file (``run file 'x.json'``), `what` the kind (``hda profile run``)."""
    accepted = f"accepted: format {fmt!r} version {version}"
    if not isinstance(document, dict) or document.get("format") != fmt:
        got = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise UsageError(f"{where} is not an {what} (format {got!r}); {accepted}")
    got_version = document.get("version")
    if got_version != version:
        raise UsageError(f"{where} is {fmt} version {got_version!r}; {accepted} only")


def decode(cls: type[T], document: Any, where: str, accepted: str) -> T:
    """`document` read as an instance of dataclass `cls`; keys not among its fields (the
    header, say) are ignored. A missing key or a wrong type is a UsageError naming `where`,
    the key path and `accepted`."""
    return _Decoder(where, accepted).value(cls, document, "")  # type: ignore[no-any-return]


class _Decoder:
    def __init__(self, where: str, accepted: str) -> None:
        self.where = where
        self.accepted = accepted

    def fail(self, path: str, problem: str) -> NoReturn:
        raise UsageError(f"{self.where}: {problem} at {path or 'top level'}; {self.accepted}")

    def value(self, hint: Any, value: Any, path: str) -> Any:
        origin, args = get_origin(hint), get_args(hint)
        if hint is Any:
            return value
        if origin in (Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            (inner,) = [a for a in args if a is not type(None)]
            return self.value(inner, value, path)
        if dataclasses.is_dataclass(hint):
            return self.record(hint, value, path)  # type: ignore[arg-type]
        if origin is tuple:
            return self.sequence(args, value, path)
        if origin in (dict, Mapping):
            if not isinstance(value, dict):
                self.fail(path, f"expected an object, got {type(value).__name__}")
            return {k: self.value(args[1], v, f"{path}.{k}") for k, v in value.items()}
        if origin is Literal:
            if value not in args:
                self.fail(path, f"expected one of {args}, got {value!r}")
            return value
        return self.scalar(hint, value, path)

    def record(self, cls: type[Any], value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            self.fail(path, f"expected an object, got {type(value).__name__}")
        hints = get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            key = f"{path}.{f.name}" if path else f.name
            if f.name in value:
                kwargs[f.name] = self.value(hints[f.name], value[f.name], key)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.fail(key, "missing key")
        return cls(**kwargs)

    def sequence(self, args: tuple[Any, ...], value: Any, path: str) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            self.fail(path, f"expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(self.value(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            self.fail(path, f"expected a list of {len(args)}, got {len(value)}")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(self.value(a, v, f"{path}[{i}]") for i, (a, v) in pairs)

    def scalar(self, hint: Any, value: Any, path: str) -> Any:
        # bool is an int in Python but never a number in these documents.
        if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if hint is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if hint in (str, bool) and isinstance(value, hint):
            return value
        self.fail(path, f"expected {getattr(hint, '__name__', hint)}, got {value!r:.40}")
