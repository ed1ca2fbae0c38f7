"""nvprof (legacy; GPUs below compute capability 7.5 in practice, none at 8.0+): whole-forward
DRAM bytes from ``dram_read_bytes`` / ``dram_write_bytes``.

The child calls ``cudaProfilerStart``/``Stop`` around one forward, and nvprof runs with
``--profile-from-start off``, so only that forward counts. ``--csv`` in metric mode prints
``==PID==`` log lines, then a header ``"Device","Kernel","Invocations","Metric Name",
"Metric Description","Min","Max","Avg"`` and one row per (kernel, metric). nvprof aggregates
per kernel name, so it gives whole-model bytes, not per-layer bytes.
"""

from __future__ import annotations

import csv
import io
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hardnet_analysis.profiler.counters import CounterError

METRICS = ("dram_read_bytes", "dram_write_bytes")


def nvprof_command(nvprof: str, child: Sequence[str], log_file: str | Path) -> list[str]:
    """The nvprof command line profiling `child`'s profiler-started region into `log_file`."""
    return [
        nvprof,
        "--profile-from-start",
        "off",
        "--metrics",
        ",".join(METRICS),
        "--csv",
        "--log-file",
        str(log_file),
        *child,
    ]


@dataclass(frozen=True)
class NvprofTotals:
    """DRAM bytes read and written over every profiled kernel (Avg x Invocations summed)."""

    read_bytes: float
    write_bytes: float
    kernels: int


def parse_metrics_csv(text: str) -> NvprofTotals:
    """Totals of an ``nvprof --metrics ... --csv`` log; ``==PID==`` lines are skipped."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("==")]
    start = next((i for i, line in enumerate(lines) if line.startswith('"Device"')), None)
    if start is None:
        raise CounterError('nvprof produced no metric table (no header row starting "Device")')
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[start:]))))
    need = {"Kernel", "Invocations", "Metric Name", "Avg"}
    if not rows or need - set(rows[0]):
        raise CounterError(f"nvprof metric table lacks columns: {', '.join(sorted(need))}")
    totals = dict.fromkeys(METRICS, 0.0)
    kernels = set()
    for row in rows:
        name = row["Metric Name"].strip()
        if name in totals:
            totals[name] += float(row["Avg"].replace(",", "")) * int(row["Invocations"])
            kernels.add(row["Kernel"])
    return NvprofTotals(totals["dram_read_bytes"], totals["dram_write_bytes"], len(kernels))


def run_nvprof(nvprof: str, child: Sequence[str], log_file: Path, timeout: float) -> NvprofTotals:
    """Run nvprof on `child` and parse its metric table; failures are CounterErrors."""
    proc = subprocess.run(
        nvprof_command(nvprof, child, log_file),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    text = log_file.read_text() if log_file.exists() else proc.stderr
    if "ERR_NVGPUCTRPERM" in text + proc.stderr or "insufficient privileges" in proc.stderr:
        raise CounterError("nvprof: no permission to read GPU performance counters")
    if proc.returncode != 0:
        raise CounterError(f"nvprof exited with status {proc.returncode}: {proc.stderr[-300:]}")
    return parse_metrics_csv(text)
