"""Speed controls beside every timed call: on a machine whose speed moves, how long a call took
over how long a fixed piece of work took just before and just after it.

A shared VM's speed moves within seconds, under every timing. On a 2-core Intel Xeon VM 27.8%
of 1 ms matmul calls ran more than 20% slower than the fastest, in spells of up to 156 calls
(``benchmarks/bench_speed_states.py``), and two profiles of the same 24 models differed by
31.1% per model at one thread. Load probes tens of milliseconds before and after a timing
(`profiler.quiet`) explained half of that (15.4%). The control here is taken beside each call,
so it sees the state that call ran in. Runs of 5 forwards taken back to back for 30 s there
(``benchmarks/bench_pace.py``, results/pace): at one thread ResNet-18's, MobileNetV2's and
DenseNet-121's medians drifted 6.7%, 2.9% and 9.5% apart on average, their paced figures 3.0%,
1.5% and 4.7%; at two threads 19.4%, 10.8% and 17.7%, paced 8.3%, 7.0% and 8.1%. The controls
do not slow the forwards beside them (paced runs' medians 0.998-1.008x the plain runs').

The control is `CONTROL_MATMULS` 384x384 fp32 matmuls at `control_threads` threads, on the
run's clock: about 1.4 ms on one thread of that VM, compute-bound and held in L2, so that its
time follows the core's speed. One more matmul runs untimed before each control: after a sweep
of 128 MiB (as a large model's forward evicts the caches) the timed matmuls ran 1.10x (1
thread) and 1.16-1.19x (2 threads) as long as back to back on a 2-core AMD EPYC, 1.00-1.02x
with that warm-up, so that a run's controls (each after a forward) read as slow as a
calibration's (taken back to back) at the same speed (``benchmarks/bench_control_cache.py``).
`time_paced` interleaves it with the calls (one control between two calls serves both);
`beside_controls` does the same for forwards timed by a profiler (``torch.profiler``, ONNX
Runtime's), so that each op gets its own paced figure (`paced_each`); `take_controls` times it
alone, for a calibration's reference (`DeviceModel.controls`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from hardnet_analysis.backends import Clock
from hardnet_analysis.documents.machine import Controls, Pace

#: Matmuls in one control, and their side.
CONTROL_MATMULS, SIDE = 2, 384


class Control:
    """`CONTROL_MATMULS` matmuls of two fixed SIDE x SIDE fp32 matrices on `threads` threads
    (torch's count is set for the call and set back; None: torch's current count), timed on
    `clock`; calling it returns their seconds."""

    def __init__(self, clock: Clock, threads: int | None = None) -> None:
        self.clock, self.threads = clock, threads
        self._a, self._b = torch.rand(SIDE, SIDE), torch.rand(SIDE, SIDE)
        self._out = torch.empty(SIDE, SIDE)
        for _ in range(2):  # warm: the first call allocates and spins the thread pool up
            self()

    def __call__(self) -> float:
        if self.threads is None:
            return self._time()
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self._time()
        finally:
            torch.set_num_threads(before)

    def _time(self) -> float:
        # One matmul untimed first: after a forward that evicted the caches the timed ones ran
        # 10-19% slower than back to back (operands, output and the GEMM's packing buffers
        # cold; reading the operands alone left 5-9%), and a run's controls, each after a
        # forward, are set against a calibration's, taken back to back.
        torch.matmul(self._a, self._b, out=self._out)
        start = self.clock.mark()
        for _ in range(CONTROL_MATMULS):
            torch.matmul(self._a, self._b, out=self._out)
        end = self.clock.mark()
        return float(self.clock.elapsed(start, end))


@dataclass(frozen=True)
class PacedSeconds:
    """A call's median seconds as timed and its paced figure (`paced`; 0.0: not paced)."""

    seconds: float
    paced: float

    def at(self, reference: float | None) -> float:
        """Its seconds at the speed of the `reference` control (s; a calibration's median)
        where both are known, else as timed: paced 50.0 at 1.44 ms, 72 ms."""
        return self.paced * reference if self.paced and reference else self.seconds


@dataclass(frozen=True)
class PacedSpans:
    """Ops' median seconds as timed and their paced figures (`paced_each`; empty: not paced),
    keyed alike."""

    seconds: Mapping[str, float]
    paced: Mapping[str, float]

    def at(self, reference: float | None) -> dict[str, float]:
        """Their seconds at the speed of the `reference` control where both are known."""
        if self.paced and reference:
            return {key: figure * reference for key, figure in self.paced.items()}
        return dict(self.seconds)


def control_threads(threads: int, runtime: str) -> int:
    """The thread count of a run's controls: the run's own in eager PyTorch, whose controls
    share its OpenMP pool; 1 in ONNX Runtime (``runtime`` ``onnxruntime``), whose thread pool
    and torch's would spin against each other on the same cores. On a 2-core Intel Xeon VM at
    2 threads, ORT's MobileNetV2 and ResNet-18 forwards ran 1.38x and 1.29x slower beside
    2-thread controls, whose own times then moved so much that the paced figures drifted 94%
    and 162% between runs; beside 1-thread controls, 1.01x and 1.01x, and 5.5% and 3.6%
    (``benchmarks/bench_pace.py --runtime onnxruntime [--control-threads 2]``)."""
    return 1 if runtime == "onnxruntime" else threads


def beside_controls(call: Callable[[], object], control: Control, repeat: int) -> list[float]:
    """Call `call` `repeat` times with a control before the first call and after each, and
    return per call the mean seconds of the control just before and just after it (one
    control between two calls serves both: `repeat` + 1 controls in all)."""
    before = control()
    controls = []
    for _ in range(repeat):
        call()
        after = control()
        controls.append((before + after) / 2)
        before = after
    return controls


def time_paced(
    forward: Callable[[], object], control: Control, warmup: int, repeat: int
) -> tuple[list[float], list[float]]:
    """Seconds of each of `repeat` calls of `forward` after `warmup` untimed calls, on the
    control's clock, and beside each the mean seconds of the control just before and just
    after it (`beside_controls`)."""
    clock = control.clock
    samples: list[float] = []

    def timed() -> None:
        start = clock.mark()
        forward()
        end = clock.mark()
        clock.sync()
        samples.append(float(clock.elapsed(start, end)))

    for _ in range(warmup):
        forward()
    clock.sync()
    controls = beside_controls(timed, control, repeat)
    return samples, controls


def paced(samples: list[float], controls: list[float]) -> float:
    """The median over the calls of call seconds over the control beside it (`Pace.paced`)."""
    return statistics.median(s / c for s, c in zip(samples, controls, strict=True))


def pace_of(samples: list[float], controls: list[float], threads: int, thread_time: bool) -> Pace:
    """The `Pace` record of `time_paced`'s result at `threads` threads on one clock."""
    return Pace(controls_of(threads, thread_time, controls), paced(samples, controls))


def paced_each(
    per_call: Sequence[Mapping[str, float]], controls: Sequence[float]
) -> dict[str, float]:
    """Per key (a graph node), the median over the calls it has seconds in (`per_call`, one
    mapping per call) of those seconds over the control beside that call (`controls`, one per
    call): an op's `paced` figure. A conv of 2.0, 2.2 and 2.0 ms beside controls of 1.40, 1.54
    and 1.43 ms: 1.43, 1.43, 1.40 -> 1.43."""
    ratios: dict[str, list[float]] = {}
    for times, control in zip(per_call, controls, strict=True):
        for key, seconds in times.items():
            ratios.setdefault(key, []).append(seconds / control)
    return {key: statistics.median(values) for key, values in ratios.items()}


def take_controls(threads: int, clock: Clock, thread_time: bool, count: int) -> Controls:
    """`count` controls at `threads` threads on `clock`, back to back (torch's thread count is
    set back after each)."""
    control = Control(clock, threads)
    return controls_of(threads, thread_time, [control() for _ in range(count)])


def controls_of(threads: int, thread_time: bool, seconds: Sequence[float]) -> Controls:
    """The record of `Control` timings taken at `threads` threads on one clock."""
    return Controls(threads, thread_time, tuple(seconds), warm=True)
