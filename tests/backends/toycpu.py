"""A backend written outside hda's folder, as a user would add one: the CPU under another name,
clocked by ``time.process_time_ns``. `tests/test_backends.py` puts this folder on the backends
package's search path and checks that it shows up everywhere with no other file touched."""

from __future__ import annotations

import time

from hardnet_analysis.backends import Clock, register_backend
from hardnet_analysis.backends.cpu import CpuBackend


class ProcessClock:
    """CPU time of the whole process (every thread's)."""

    def mark(self) -> int:
        return time.process_time_ns()

    def sync(self) -> None:
        return None

    def elapsed(self, start: int, end: int) -> float:
        return (end - start) / 1e9


class ToyCpuBackend(CpuBackend):
    name = "toycpu"
    description = "the CPU, clocked by the process's CPU time (a test backend)"
    thread_time = False
    counter_sources = ()

    def clock(self, thread_time: bool = False) -> Clock:
        return ProcessClock()

    def clock_name(self, thread_time: bool = False) -> str:
        return "time.process_time_ns"


register_backend(ToyCpuBackend())
