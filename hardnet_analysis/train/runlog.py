"""The files of a run directory other than checkpoints: ``args.json`` and the metric logs.

``metrics.jsonl`` has one JSON object per finished epoch; ``metrics.csv`` the same rows. Both are
rewritten atomically from the history after every epoch, so they always agree with ``last.pt``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from hardnet_analysis.errors import UsageError
from hardnet_analysis.fileio import atomic_write_json, atomic_write_text

#: Columns of a metrics row. Losses are mean cross-entropy per image (with label smoothing, if
#: set, for training); top-1/top-5 are percentages; `lr` is the epoch's learning rate;
#: `peak_memory_mb` is CUDA max allocated memory, or the process's peak RSS on CPU.
METRIC_FIELDS = (
    "epoch",
    "train_loss",
    "train_top1",
    "val_loss",
    "val_top1",
    "val_top5",
    "lr",
    "images_per_s",
    "epoch_seconds",
    "peak_memory_mb",
    "skipped",
)


def write_args(run_dir: Path, config: dict[str, Any], extra: dict[str, Any]) -> None:
    atomic_write_json(run_dir / "args.json", {**config, **extra})


def write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    lines = "".join(json.dumps(record) + "\n" for record in history)
    atomic_write_text(run_dir / "metrics.jsonl", lines)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in history:
        writer.writerow({k: record.get(k) for k in METRIC_FIELDS})
    atomic_write_text(run_dir / "metrics.csv", buffer.getvalue())


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The per-epoch rows of ``RUN_DIR/metrics.jsonl`` (see `METRIC_FIELDS`), oldest first; a
    missing or unreadable file is a one-line UsageError naming it."""
    path = Path(run_dir) / "metrics.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
    except FileNotFoundError:
        raise UsageError(f"{str(run_dir)!r} is not a training run (no metrics.jsonl)") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"metrics file {str(path)!r} cannot be read: {exc}") from None
    if not all(isinstance(row, dict) and "epoch" in row for row in rows):
        raise UsageError(f"metrics file {str(path)!r}: every line must be an object with 'epoch'")
    return rows
