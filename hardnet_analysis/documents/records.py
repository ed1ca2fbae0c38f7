"""Typed JSON: frozen dataclasses written and read field by field, the one reader of hda's files.

Every JSON file hda reads (the documents of `hardnet_analysis.documents`, model definitions) is
a frozen dataclass of plain values, tuples, mappings and nested dataclasses. `encode` turns one
into JSON-ready values (a field is its JSON key); `decode` reads one back, checking every
value's type, and `check_header` checks the ``format`` and integer ``version`` a document
starts with (`hardnet_analysis.documents.base.Document` calls all three for every document).
Anything wrong is a one-line `UsageError` ``{where}: {key path}: {problem}``, ending in
``; {accepted}`` when the caller says what is accepted, e.g.
``run file 'x.json': layers[3]: missing field 'time_s'; accepted: format 'hda-profile-run' ...``.

Fields may be made by these helpers:

* ``= omitted_if_none()``: defaults to None and is left out of the JSON while None;
* ``= field(metadata=FLATTENED)``: a nested dataclass whose keys sit in the parent's object;
* ``= field(metadata=keyed(kinds))``: a mapping whose keys are among a declared few, each of a
  declared type (``int``, ``float``, ...), written in declared order; with ``flat=True`` the
  keys sit in the parent's object (the search fronts' metrics).

`decode` is tolerant by default (keys that are no field, such as the header, are ignored: a
document may carry more than the reader needs) and strict with ``strict=True`` (an unknown key
is an error listing the known ones: a typo in a hand-written definition must not pass silently).
A `keyed` mapping is always strict. Example::

    @dataclass(frozen=True)
    class Row:
        id: str
        metrics: dict[str, float] = field(
            metadata=keyed({"macs": int, "min_moc": float}, flat=True)
        )

    encode(Row("a", {"macs": 2, "min_moc": 0.5})) == {"id": "a", "macs": 2, "min_moc": 0.5}
    row = decode(Row, {"id": "a", "macs": 2, "min_moc": 1}, "row")  # min_moc read as 1.0
    decode(Row, {"id": "a", "macs": 2.5, "min_moc": 1}, "row")
    # UsageError: row: macs: expected int, got 2.5
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping
from typing import Any, Literal, NoReturn, TypeVar, Union, get_args, get_origin, get_type_hints

from hardnet_analysis.errors import UsageError

T = TypeVar("T")
_OMIT = "hda_omit_if_none"
_FLAT = "hda_flattened"
_KEYS = "hda_keys"
_COMPLETE = "hda_complete"


def omitted_if_none() -> Any:
    """A field defaulting to None that is left out of the JSON while None (details only some
    writers have, e.g. a CPU's clock list or ncu's kernel count): with ``kernels: int | None =
    omitted_if_none()``, ``encode`` writes no ``kernels`` key while it is None."""
    return dataclasses.field(default=None, metadata={_OMIT: True})


#: Metadata of a dataclass-typed field whose own fields are keys of the parent's object
#: (``field(metadata=FLATTENED)``): a trained front row is the front's row (``id``, ``rank``,
#: ...) plus ``status``, ``top1``, ....
FLATTENED: Mapping[str, Any] = types.MappingProxyType({_FLAT: True})


def keyed(
    kinds: Mapping[str, type], *, flat: bool = False, complete: bool = True
) -> Mapping[str, Any]:
    """Metadata of a mapping field (``field(metadata=keyed(...))``) whose keys are among
    `kinds`, each value of its type (``int``, ``float``, ``str``, ``bool``; an int is accepted
    for a float). `complete`: every key must be there (else any subset may be); `flat`: the keys
    sit in the parent's object (then complete). Written in `kinds` order.
    ``keyed({"macs": int, "min_moc": float})`` reads ``{"macs": 4, "min_moc": 0.5}``."""
    if flat and not complete:
        raise TypeError("a flattened keyed field must be complete")
    return types.MappingProxyType({_KEYS: dict(kinds), _FLAT: flat, _COMPLETE: complete})


def encode(value: Any) -> Any:
    """The JSON-ready form of `value`: dataclasses as objects by field name (see the field
    helpers above), tuples as lists: ``encode((1, {"a": (2,)})) == [1, {"a": [2]}]``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode_record(value)
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def _encode_record(record: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        item = getattr(record, f.name)
        if item is None and f.metadata.get(_OMIT):
            continue
        if _KEYS in f.metadata:
            body = {k: encode(item[k]) for k in f.metadata[_KEYS] if k in item}
        else:
            body = encode(item)
        if f.metadata.get(_FLAT):
            out.update(body)
        else:
            out[f.name] = body
    return out


def check_header(document: Any, where: str, what: str, fmt: str, versions: tuple[int, ...]) -> int:
    """The version of `document`, after a UsageError unless it is an object of format `fmt`
    and one of `versions` (the current one and any older one still read). `where` names the
    file (``run file 'x.json'``), `what` the kind (``hda profile run``). Example: version 0
    where 1 is read gives ``run file 'x.json' is older version 0 of 'hda-profile-run';
    accepted: format 'hda-profile-run' version 1 only (write it again with this hda)``."""
    accepted = f"accepted: format {fmt!r} {versions_text(versions)}"
    if not isinstance(document, dict) or document.get("format") != fmt:
        got = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise UsageError(f"{where} is not an {what} (format {got!r}); {accepted}")
    found = document.get("version")
    if type(found) is not int or found not in versions:
        age = "another"
        if type(found) is int and not min(versions) <= found <= max(versions):
            age = "older" if found < min(versions) else "newer"
        again = " (write it again with this hda)" if age == "older" else ""
        raise UsageError(f"{where} is {age} version {found!r} of {fmt!r}; {accepted} only{again}")
    return found


def versions_text(versions: tuple[int, ...]) -> str:
    """``version 2``, or ``version 1 or 2`` where an older one is read too."""
    return "version " + " or ".join(map(str, sorted(versions)))


def decode(
    cls: type[T], document: Any, where: str, accepted: str = "", *, strict: bool = False
) -> T:
    """`document` read as an instance of dataclass `cls`. Keys that are no field (the header,
    say) are ignored, or with `strict` an error listing the known ones. A missing key or a
    wrong type is a UsageError ``{where}: {key path}: {problem}; {accepted}``. Example:
    ``decode(Timing, {"median_s": "x", ...}, "f")`` fails with ``f: median_s: expected float,
    got 'x'``."""
    return _Decoder(where, accepted, strict).record(cls, document, "")  # type: ignore[no-any-return]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _init_fields(cls: type[Any]) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if f.init]


def _json_keys(cls: type[Any]) -> list[str]:
    """The keys of `cls`'s JSON object, flattened fields expanded."""
    hints = get_type_hints(cls)
    keys: list[str] = []
    for f in _init_fields(cls):
        if not f.metadata.get(_FLAT):
            keys.append(f.name)
        elif _KEYS in f.metadata:
            keys.extend(f.metadata[_KEYS])
        else:
            keys.extend(_json_keys(hints[f.name]))
    return keys


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


class _Decoder:
    """One `decode` call: where the document comes from, what is accepted, how strict."""

    def __init__(self, where: str, accepted: str, strict: bool) -> None:
        self.where = where
        self.accepted = accepted
        self.strict = strict

    def fail(self, path: str, problem: str) -> NoReturn:
        place = f"{path}: " if path else ""
        tail = f"; {self.accepted}" if self.accepted else ""
        raise UsageError(f"{self.where}: {place}{problem}{tail}")

    def value(self, hint: Any, value: Any, path: str) -> Any:
        origin, args = get_origin(hint), get_args(hint)
        if hint is Any:
            return value
        if origin in (Union, types.UnionType):
            return None if value is None else self.value(_only(args), value, path)
        if dataclasses.is_dataclass(hint):
            return self.record(hint, value, path)  # type: ignore[arg-type]
        if origin is tuple:
            return self.sequence(args, value, path)
        if origin in (dict, Mapping):
            items = self.object(value, path).items()
            return {k: self.value(args[1], v, _join(path, k)) for k, v in items}
        if origin is Literal:
            if value not in args:
                self.fail(path, f"{value!r} is not one of {', '.join(map(repr, args))}")
            return value
        return self.scalar(hint, value, path)

    def object(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"expected an object, got {type(value).__name__}")
        return value

    def known(self, obj: dict[str, Any], keys: list[str], path: str) -> None:
        unknown = sorted(set(obj) - set(keys))
        if unknown:
            self.fail(path, f"unknown field(s) {', '.join(unknown)}; known: {', '.join(keys)}")

    def record(self, cls: type[Any], value: Any, path: str) -> Any:
        obj = self.object(value, path)
        if self.strict:
            self.known(obj, _json_keys(cls), path)
        return self.fields(cls, obj, path)

    def fields(self, cls: type[Any], obj: dict[str, Any], path: str) -> Any:
        """An instance of `cls` from the object `obj` at `path`, flattened fields included."""
        hints = get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for f in _init_fields(cls):
            if _KEYS in f.metadata and f.metadata[_FLAT]:
                kwargs[f.name] = self.keyed(f, obj, path)
            elif f.metadata.get(_FLAT):
                kwargs[f.name] = self.fields(hints[f.name], obj, path)
            elif f.name not in obj:
                if _required(f):
                    self.fail(path, f"missing field {f.name!r}")
            elif _KEYS in f.metadata:
                inner = _join(path, f.name)
                kwargs[f.name] = self.keyed(f, self.object(obj[f.name], inner), inner)
            else:
                kwargs[f.name] = self.value(hints[f.name], obj[f.name], _join(path, f.name))
        try:
            return cls(**kwargs)
        except UsageError as exc:  # a range check of the class itself, named by its path
            self.fail(path, str(exc))

    def keyed(self, f: dataclasses.Field[Any], obj: dict[str, Any], path: str) -> dict[str, Any]:
        """The `keyed` field `f` read from `obj`: its own object, or the parent's if flat."""
        kinds: dict[str, type] = f.metadata[_KEYS]
        if not f.metadata[_FLAT]:
            self.known(obj, list(kinds), path)
        out: dict[str, Any] = {}
        for key, kind in kinds.items():
            if key in obj:
                out[key] = self.scalar(kind, obj[key], _join(path, key))
            elif f.metadata[_COMPLETE]:
                self.fail(path, f"missing field {key!r}")
        return out

    def sequence(self, args: tuple[Any, ...], value: Any, path: str) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            self.fail(path, f"expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(self.value(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            self.fail(path, f"expected {len(args)} values, got {len(value)}")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(self.value(a, v, f"{path}[{i}]") for i, (a, v) in pairs)

    def scalar(self, hint: Any, value: Any, path: str) -> Any:
        # bool is an int in Python but never a number in these files.
        if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # JSON has no NaN or Infinity; Python's parser does
                self.fail(path, f"expected a finite number, got {value!r}")
            return float(value)
        if hint is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if hint in (str, bool) and isinstance(value, hint):
            return value
        self.fail(path, f"expected {getattr(hint, '__name__', hint)}, got {value!r:.40}")


def _only(args: tuple[Any, ...]) -> Any:
    """The one type of an optional hint (``int | None``); unions of two types are not read."""
    options = [a for a in args if a is not type(None)]
    if len(options) != 1:
        raise TypeError(f"records read X | None unions only, not {args}")
    return options[0]
