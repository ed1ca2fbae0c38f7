"""Definitions to and from JSON: the same schema as the dataclasses, plus a format header.

A file looks like ``{"format": "hda-definition", "version": 1, "family": "hardnet", "name": ...,
"stem": {...}, "stages": [...], "head": {...}}``: every dataclass field by name, tuples as lists.
``hda`` writes one for any zoo model, so users start from a real example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hardnet_analysis.documents.records import check_header, decode, encode
from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.registry import NetworkDef, get_family
from hardnet_analysis.fileio import atomic_write_json, read_json

FORMAT = "hda-definition"
VERSION = 1


def to_dict(defn: NetworkDef) -> dict[str, Any]:
    """The JSON-ready dict of a definition (a dataclass), with the format header."""
    return {"format": FORMAT, "version": VERSION, **encode(defn)}


def from_dict(data: dict[str, Any], where: str = "definition") -> NetworkDef:
    """The definition a dict describes, read strictly by
    `hardnet_analysis.documents.records.decode`: an unknown field is an error listing the known
    ones, and every error names `where` and the field, e.g. ``definition: stem.channels:
    expected 2 values, got 1``."""
    check_header(data, where, "hda definition", FORMAT, (VERSION,))
    body = {k: v for k, v in data.items() if k not in ("format", "version")}
    try:
        spec = get_family(str(body.get("family")))
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    defn: NetworkDef = decode(spec.definition, body, where, strict=True)
    return defn


def save_definition(defn: NetworkDef, path: str | Path) -> Path:
    """Write `defn` as JSON to `path`, atomically."""
    return atomic_write_json(path, to_dict(defn))


def load_definition(path: str | Path) -> NetworkDef:
    """Read a definition file; a missing file or bad JSON is a one-line UsageError."""
    return from_dict(read_json(path, "definition file"), where=Path(path).name)
