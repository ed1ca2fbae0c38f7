"""Progress of a run: a rich bar on a terminal, plain log lines on stderr otherwise."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def epoch_line(record: dict[str, Any], epochs: int, metrics: str) -> str:
    """One line per epoch: ``epoch 2/10 train loss 0.4123 val loss 0.3012 METRICS lr ...``,
    METRICS being the task's validation metrics (``top-1 93.06 top-5 99.72``)."""
    return (
        f"epoch {record['epoch']}/{epochs} train loss {record['train_loss']:.4f} "
        f"val loss {record['val_loss']:.4f} {metrics} lr {record['lr']:.5f} "
        f"{record['images_per_s']:.0f} img/s peak {record['peak_memory_mb']:.0f} MB"
        + (f" skipped {record['skipped']}" if record["skipped"] else "")
    )


class Reporter:
    """Shows iterations within an epoch (terminal only) and one line per finished epoch.

    `enabled` False (ranks other than 0, quiet workers) shows nothing.
    """

    def __init__(self, enabled: bool = True, prefix: str = "") -> None:
        self.console = Console(stderr=True, highlight=False)
        self.enabled = enabled
        self.prefix = prefix
        self.live = enabled and self.console.is_terminal
        self.progress: Progress | None = None
        self.task: Any = None

    def __enter__(self) -> Reporter:
        if self.live:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.progress is not None:
            self.progress.stop()

    def start_epoch(self, epoch: int, epochs: int, iterations: int) -> None:
        if self.progress is not None:
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task(f"epoch {epoch}/{epochs}", total=iterations)

    def advance(self) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task)

    def log(self, message: str) -> None:
        if not self.enabled:
            return
        if self.live:
            self.console.print(self.prefix + message)
        else:
            print(self.prefix + message, file=sys.stderr, flush=True)
