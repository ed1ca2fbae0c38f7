"""The files of a run directory other than checkpoints: ``args.json`` and the metric logs.

``args.json`` holds the settings of the latest invocation and a ``history`` list with one entry
per invocation (``time``, ``start_epoch``, ``epochs``, ``note`` and the settings ``changed``
since the previous one, as ``[old, new]``): a resumed run that extends its schedule says so
there, and the first run's settings stay readable.

``metrics.jsonl`` has one JSON object per finished epoch; ``metrics.csv`` the same rows. Both are
rewritten atomically from the history after every epoch, so they always agree with ``last.pt``.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

from hardnet_analysis.errors import UsageError
from hardnet_analysis.fileio import atomic_write_json, atomic_write_text

#: Columns of a classification run's metrics row (a task's `fields`; segmentation's has
#: train_pixel_acc, val_miou and val_pixel_acc for the top-1/top-5 columns, and its val_loss is
#: per labelled pixel). Losses are mean cross-entropy per image (with label smoothing, if set, for
#: training); top-1/top-5 are percentages; `lr` is the epoch's learning rate; `peak_memory_mb`
#: is CUDA max allocated memory, or the process's peak RSS on CPU.
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


#: Settings whose change between invocations is not worth a history entry.
_UNTRACKED = ("resume",)


def write_args(
    run_dir: Path, config: dict[str, Any], extra: dict[str, Any], start_epoch: int, note: str
) -> None:
    """Write ``args.json``: `config` and `extra` at the top, the history appended to."""
    path = run_dir / "args.json"
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        before = {}
    history = list(before.get("history", [])) if isinstance(before, dict) else []
    settings = {**config, **extra}
    changed = {
        k: [before[k], v]
        for k, v in settings.items()
        if history and k in before and before[k] != v and k not in _UNTRACKED
    }
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "start_epoch": start_epoch,
        "epochs": config["epochs"],
        "note": note,
        **({"changed": changed} if changed else {}),
    }
    atomic_write_json(path, {**settings, "history": [*history, entry]})


def write_metrics(
    run_dir: Path, history: list[dict[str, Any]], fields: tuple[str, ...] = METRIC_FIELDS
) -> None:
    lines = "".join(json.dumps(record) + "\n" for record in history)
    atomic_write_text(run_dir / "metrics.jsonl", lines)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for record in history:
        writer.writerow({k: record.get(k) for k in fields})
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
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise UsageError(f"metrics file {str(path)!r} cannot be read: {exc}") from None
    if not all(isinstance(row, dict) and "epoch" in row for row in rows):
        raise UsageError(f"metrics file {str(path)!r}: every line must be an object with 'epoch'")
    return rows
