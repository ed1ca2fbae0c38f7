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


def _cell(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return (
            "x".join(str(v) for v in value)
            if all(isinstance(v, int) for v in value)
            else json.dumps(value)
        )
    return "" if value is None else value


def write_csv(rows: Iterable[Mapping[str, Any]], stream: TextIO | None = None) -> None:
    """CSV with a header from the first row's keys; shapes are written as ``1x3x224x224``."""
    out = stream or sys.stdout
    writer: csv.DictWriter[str] | None = None
    for row in rows:
        if writer is None:
            writer = csv.DictWriter(out, fieldnames=list(row), lineterminator="\n")
            writer.writeheader()
        writer.writerow({k: _cell(v) for k, v in row.items()})
