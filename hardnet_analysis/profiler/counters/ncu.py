"""Nsight Compute: per-layer DRAM bytes and kernel time from one profiled forward pass.

The child process (``python -m hardnet_analysis.profiler.child``) wraps one forward in an NVTX
range ``hda`` and every module call in a nested range named by its layer key, so
``--nvtx --nvtx-include "hda/"`` keeps exactly the kernels of that forward and each kernel's
innermost range names its layer. ``--csv --page raw`` writes one row per kernel: a header row
(``"ID","Process ID",...,"Kernel Name",...`` and one column per metric), a units row, then the
kernels. The NVTX column (``thread Domain:Push/Pop_Range:...``) holds the thread id and then
each open range as ``"<domain>:<name>:PL_Type:PL_Value:CLR_Type:Color:Msg_Type:Msg"``.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hardnet_analysis.profiler.counters import CounterError

METRICS = ("dram__bytes_read.sum", "dram__bytes_write.sum", "gpu__time_duration.sum")
RANGE = "hda"
_UNIT_SCALE = {
    "byte": 1.0,
    "kbyte": 1e3,
    "mbyte": 1e6,
    "gbyte": 1e9,
    "nsecond": 1e-9,
    "usecond": 1e-6,
    "msecond": 1e-3,
    "second": 1.0,
}
_RANGE_ENTRY = re.compile(r'"([^"]*)"')
_PERMISSION = "ERR_NVGPUCTRPERM"


def nvtx_name(layer: str) -> str:
    """The NVTX range name of a layer key: ``:`` (the call suffix, ``relu:1``) becomes ``#``
    because ncu separates the fields of a range entry with colons."""
    return layer.replace(":", "#")


def layer_key(range_name: str) -> str:
    """Inverse of `nvtx_name`."""
    return range_name.replace("#", ":")


def ncu_command(
    ncu: str,
    child: Sequence[str],
    log_file: str | Path,
    cache_control: str = "all",
    clock_control: str = "base",
) -> list[str]:
    """The ncu command line profiling `child` (argv), CSV written to `log_file`.

    Caches are flushed before each kernel (``--cache-control all``: DRAM bytes of a layer do
    not depend on what ran before) and clocks locked to base (``--clock-control base``), both
    set explicitly so the figures do not depend on ncu's defaults.
    """
    return [
        ncu,
        "--metrics",
        ",".join(METRICS),
        "--nvtx",
        "--nvtx-include",
        f"{RANGE}/",
        "--cache-control",
        cache_control,
        "--clock-control",
        clock_control,
        "--target-processes",
        "all",
        "--csv",
        "--page",
        "raw",
        "--print-units",
        "base",
        "--log-file",
        str(log_file),
        *child,
    ]


@dataclass(frozen=True)
class KernelRow:
    """One kernel of an ncu raw page: name, NVTX range stack (outermost first), metric values in
    base units (bytes, seconds)."""

    id: int
    kernel: str
    ranges: tuple[str, ...]
    metrics: dict[str, float] = field(default_factory=dict)


def _number(text: str) -> float:
    cleaned = text.strip().replace(",", "")
    return float(cleaned) if cleaned and cleaned.lower() != "n/a" else 0.0


def parse_ranges(cell: str) -> tuple[str, ...]:
    """Range names in an NVTX push/pop cell, outermost first:
    ``1 "<default domain>:hda:none:none:none:none:none:none" "<default domain>:fc:none:..."``
    -> ("hda", "fc")."""
    names = []
    for entry in _RANGE_ENTRY.findall(cell):
        body = entry.split(">:", 1)[1] if entry.startswith("<") else entry.split(":", 1)[-1]
        names.append(body.rsplit(":", 6)[0])
    return tuple(names)


def parse_raw_csv(text: str) -> list[KernelRow]:
    """The kernels of an ``ncu --csv --page raw`` output; ``==PROF==`` and other log lines
    before the header are skipped. Raises CounterError on a permission error or no header."""
    if _PERMISSION in text:
        raise CounterError(
            "ncu: ERR_NVGPUCTRPERM: this user may not read GPU performance counters "
            "(see https://developer.nvidia.com/ERR_NVGPUCTRPERM)"
        )
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith('"ID"')), None)
    if start is None:
        raise CounterError('ncu produced no raw CSV page (no header row starting with "ID")')
    table = list(csv.reader(io.StringIO("\n".join(lines[start:]))))
    header, units, body = table[0], table[1], table[2:]
    missing = [m for m in (*METRICS, "Kernel Name") if m not in header]
    if missing:
        raise CounterError(f"ncu CSV lacks columns: {', '.join(missing)}")
    nvtx = next((i for i, h in enumerate(header) if "Push/Pop_Range" in h), None)
    col = {h: i for i, h in enumerate(header)}
    rows = []
    for cells in body:
        if len(cells) != len(header) or not cells[col["ID"]].strip():
            continue
        metrics = {
            m: _number(cells[col[m]]) * _UNIT_SCALE.get(units[col[m]].strip().lower(), 1.0)
            for m in METRICS
        }
        ranges = parse_ranges(cells[nvtx]) if nvtx is not None else ()
        rows.append(KernelRow(int(cells[col["ID"]]), cells[col["Kernel Name"]], ranges, metrics))
    return rows


@dataclass(frozen=True)
class LayerCounters:
    """DRAM bytes read/written and summed kernel time (s) of one layer's kernels."""

    read_bytes: float
    write_bytes: float
    time_s: float
    kernels: int


def per_layer(rows: Sequence[KernelRow]) -> dict[str, LayerCounters]:
    """Kernels grouped by their innermost NVTX range inside ``hda`` (the layer key); kernels
    outside ``hda`` are dropped and kernels directly in ``hda`` go to ``(model)``."""
    sums: dict[str, list[float]] = {}
    for row in rows:
        if RANGE not in row.ranges:
            continue
        inner = row.ranges[row.ranges.index(RANGE) + 1 :]
        key = layer_key(inner[-1]) if inner else "(model)"
        acc = sums.setdefault(key, [0.0, 0.0, 0.0, 0.0])
        acc[0] += row.metrics["dram__bytes_read.sum"]
        acc[1] += row.metrics["dram__bytes_write.sum"]
        acc[2] += row.metrics["gpu__time_duration.sum"]
        acc[3] += 1
    return {k: LayerCounters(v[0], v[1], v[2], int(v[3])) for k, v in sums.items()}


def run_ncu(ncu: str, child: Sequence[str], log_file: Path, timeout: float) -> list[KernelRow]:
    """Run ncu on `child` and parse its raw page; a failure is a CounterError naming why."""
    command = ncu_command(ncu, child, log_file)
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    text = log_file.read_text() if log_file.exists() else ""
    output = text + proc.stdout + proc.stderr
    if _PERMISSION in output:
        parse_raw_csv(output)  # raises the permission error
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise CounterError(f"ncu exited with status {proc.returncode}: {' | '.join(tail)}")
    return parse_raw_csv(text)
