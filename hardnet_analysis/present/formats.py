"""Machine-readable output: JSON documents and CSV rows."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO


def write_json(document: Any, stream: TextIO | None = None) -> None:
    """One JSON document, indented, newline-terminated."""
    out = stream or sys.stdout
    json.dump(document, out, indent=2)
    out.write("\n")


def _is_shape(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value)


def _cell(value: Any) -> Any:
    """A CSV cell: a shape as ``1x3x224x224``, a list of shapes (a concat's inputs) as
    ``1x64x56x56;1x32x56x56``, other lists as JSON, None as empty."""
    if _is_shape(value):
        return "x".join(str(v) for v in value)
    if isinstance(value, (list, tuple)) and value and all(_is_shape(v) for v in value):
        return ";".join(_cell(v) for v in value)
    if isinstance(value, (list, tuple)):
        return json.dumps(value)
    return "" if value is None else value


def write_csv(rows: Iterable[Mapping[str, Any]], stream: TextIO | None = None) -> None:
    """CSV with a header from the first row's keys; shapes are written as ``1x3x224x224``
    (`_cell`)."""
    out = stream or sys.stdout
    writer: csv.DictWriter[str] | None = None
    for row in rows:
        if writer is None:
            writer = csv.DictWriter(out, fieldnames=list(row), lineterminator="\n")
            writer.writeheader()
        writer.writerow({k: _cell(v) for k, v in row.items()})
