"""Reading versioned JSON documents into typed values, with one-line errors.

A document is a JSON object with a ``format`` name and an integer ``version``. `open_document`
checks both; a `Node` then reads typed keys. Anything wrong (a missing file, a foreign or old
format, a missing key, a value of the wrong type) is a `UsageError` of one line that names the
file and the key, e.g. ``front file 'out/front.json': candidates[2] has no 'cio'``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardnet_analysis.errors import UsageError
from hardnet_analysis.fileio import read_json


@dataclass(frozen=True)
class Node:
    """A JSON object inside document `file` (its description for messages), at `where`
    (``""`` for the top level, else e.g. ``"candidates[2]"``)."""

    data: dict[str, Any]
    file: str
    where: str = ""

    def error(self, problem: str) -> UsageError:
        """A one-line error about this object."""
        place = f"{self.where} " if self.where else ""
        return UsageError(f"{self.file}: {place}{problem}")

    def raw(self, key: str) -> Any:
        if key not in self.data:
            raise self.error(f"has no {key!r}")
        return self.data[key]

    def _typed(self, key: str, ok: bool, kind: str) -> None:
        if not ok:
            raise self.error(f"{key!r} must be {kind}, not {self.data[key]!r}")

    def text(self, key: str) -> str:
        value = self.raw(key)
        self._typed(key, isinstance(value, str), "a string")
        return str(value)

    def integer(self, key: str) -> int:
        value = self.raw(key)
        self._typed(key, _is_int(value), "an integer")
        return int(value)

    def number(self, key: str) -> float:
        value = self.raw(key)
        self._typed(key, _is_number(value), "a number")
        return float(value)

    def optional_integer(self, key: str) -> int | None:
        """The integer at `key`; None when absent or null."""
        return None if self.data.get(key) is None else self.integer(key)

    def optional_number(self, key: str) -> float | None:
        """The number at `key`; None when absent or null."""
        return None if self.data.get(key) is None else self.number(key)

    def optional_text(self, key: str) -> str | None:
        """The string at `key`; None when absent or null."""
        return None if self.data.get(key) is None else self.text(key)

    def integers(self, key: str) -> tuple[int, ...]:
        value = self.raw(key)
        self._typed(key, isinstance(value, list) and all(map(_is_int, value)), "a list of integers")
        return tuple(int(v) for v in value)

    def numbers(self, key: str) -> tuple[float, ...]:
        value = self.raw(key)
        ok = isinstance(value, list) and all(map(_is_number, value))
        self._typed(key, ok, "a list of numbers")
        return tuple(float(v) for v in value)

    def mapping(self, key: str) -> dict[str, Any]:
        """A JSON object kept as a plain dict (free-form content)."""
        value = self.raw(key)
        self._typed(key, isinstance(value, dict), "an object")
        return dict(value)

    def child(self, key: str) -> Node:
        return Node(self.mapping(key), self.file, f"{self.where}.{key}" if self.where else key)

    def children(self, key: str) -> list[Node]:
        value = self.raw(key)
        ok = isinstance(value, list) and all(isinstance(v, dict) for v in value)
        self._typed(key, ok, "a list of objects")
        prefix = f"{self.where}.{key}" if self.where else key
        return [Node(v, self.file, f"{prefix}[{i}]") for i, v in enumerate(value)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def open_document(path: str | Path, what: str, format_name: str, version: int) -> Node:
    """The top-level object of the document at `path`, which must have format `format_name`
    and `version`; `what` names the file in messages (``"front file"``)."""
    data = read_json(path, what)
    file = f"{what} {str(path)!r}"
    if not isinstance(data, dict) or data.get("format") != format_name:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise UsageError(f"{file} is not an {format_name!r} document (format {found!r})")
    found_version = data.get("version")
    if found_version != version:
        older = isinstance(found_version, int) and found_version < version
        age = "older" if older else "another"
        raise UsageError(
            f"{file} is {age} version {found_version!r} of {format_name!r}; this hda reads "
            f"version {version} (write it again with this hda)"
        )
    return Node(data, file)
