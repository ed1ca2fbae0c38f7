"""perf: CPU memory-controller (uncore IMC) read/write bytes around the timed forwards.

Where the kernel exposes an ``uncore_imc*`` PMU (``/sys/bus/event_source/devices``) with
``cas_count_read``/``cas_count_write`` (servers) or ``data_reads``/``data_writes`` (client
parts), ``perf stat -a -x,`` counts them system-wide while the forwards run; perf applies the
PMU's scale and prints ``value,unit,event,...`` lines (unit ``MiB`` for the scaled events).
The counts are system-wide, so other processes add noise: figures are per forward, averaged.
"""

from __future__ import annotations

import signal
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from hardnet_analysis.profiler.counters import CounterError

PMU_ROOT = Path("/sys/bus/event_source/devices")
_EVENT_NAMES = {"cas_count_read": "read", "cas_count_write": "write"}
_EVENT_NAMES |= {"data_reads": "read", "data_writes": "write"}
_UNIT = {"": 1.0, "B": 1.0, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def imc_events(root: Path = PMU_ROOT) -> list[str]:
    """perf event names of the memory-controller read/write counters this machine exposes
    (``uncore_imc_0/cas_count_read/``, ...); empty where there is no such PMU."""
    events = []
    for pmu in sorted(root.glob("uncore_imc*")):
        for event in sorted(_EVENT_NAMES):
            if (pmu / "events" / event).exists():
                events.append(f"{pmu.name}/{event}/")
    return events


def perf_command(perf: str, events: Sequence[str], out_file: str | Path) -> list[str]:
    """``perf stat`` counting `events` system-wide until interrupted, CSV into `out_file`."""
    return [perf, "stat", "-a", "-x", ",", "-o", str(out_file), "-e", ",".join(events)]


@dataclass(frozen=True)
class PerfTotals:
    """Memory-controller bytes read and written while perf counted."""

    read_bytes: float
    write_bytes: float


def parse_perf_stat(text: str) -> PerfTotals:
    """Sum ``perf stat -x,`` lines by direction: ``1234.5,MiB,uncore_imc_0/cas_count_read/,...``
    counts 1234.5 MiB read. Unscaled CAS counts (no unit) are 64-byte lines."""
    totals = {"read": 0.0, "write": 0.0}
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) < 3 or line.startswith("#"):
            continue
        value, unit, event = fields[0].strip(), fields[1].strip(), fields[2].strip()
        kind = next((d for e, d in _EVENT_NAMES.items() if e in event), None)
        if kind is None:
            continue
        if value.startswith("<"):  # <not supported> / <not counted>
            raise CounterError(f"perf could not count {event}: {value}")
        scale = _UNIT.get(unit, 1.0) if unit else 64.0
        totals[kind] += float(value) * scale
    return PerfTotals(totals["read"], totals["write"])


class PerfSession:
    """Counts `events` system-wide between ``__enter__`` and ``__exit__``; `totals` after."""

    def __init__(self, perf: str, events: Sequence[str]) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="hda-perf-")
        self._out = Path(self._dir.name) / "perf.csv"
        self._command = perf_command(perf, events, self._out)
        self._proc: subprocess.Popen[bytes] | None = None
        self.totals: PerfTotals | None = None

    def __enter__(self) -> PerfSession:
        self._proc = subprocess.Popen(self._command, stderr=subprocess.PIPE)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGINT)
        _, err = self._proc.communicate(timeout=30)
        try:
            if not self._out.exists():
                raise CounterError(f"perf stat wrote nothing: {err.decode(errors='replace')}")
            self.totals = parse_perf_stat(self._out.read_text())
        finally:
            self._dir.cleanup()
