"""What the single-purpose benchmarks share: a median timing, and printing and writing their
figures as JSON."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hardnet_analysis.fileio import atomic_write_text


def median_ms(call: Callable[[], object], repeat: int, warmup: int = 2) -> float:
    """Median milliseconds of `repeat` calls of `call` after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return 1e3 * statistics.median(samples)


def emit(found: Mapping[str, Any], out: Path | None) -> None:
    """Print `found` as indented JSON and, with `out`, write it there atomically."""
    text = json.dumps(found, indent=2) + "\n"
    print(text, end="")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, text)
