"""What a profile run and a device model record of the machine they were measured on: the device
(`DeviceRecord`) and how busy it was (`LoadProbe`), with the two checks that read a probe.

On a shared machine other processes take cores: a 2-thread forward then runs several times
slower than a quiet one (seen here: 2.3-54x with the other core partly busy), and even one
thread's CPU time moves, through the shared caches and memory bus. The probe
(``profiler.quiet.probe_load``) times parallel matmuls and a memory copy at the run's thread
count with wall and process CPU time. Two checks follow:

- **busy now**: `LoadProbe.cpu_share` below `BUSY_SHARE` means the process's threads did not
  run all the time (on this machine, quiet: 0.99-1.0 at 1 and 2 threads; with one `yes` on the
  other core, 2 threads: 0.51 and the matmul 9x slower);
- **another speed than before**: `drift` compares a calibration's start and end probes, and
  `speed_ratio` the runs scored with a device model against all of its calibration's probes:
  more than `DRIFT` apart, the machine ran at another speed, and a prediction or fit mixing the
  two means less than its figures say;
- **a speed that moves**: `spread_warning` reads the probes taken through one calibration.

`speed_ratio` turns the probes into a factor: a prediction for the calibrated machine times
that factor is the prediction at the speed the machine had when a run was measured. On this
shared 2-core VM the 2-thread probe moved 21% between a calibration and the runs after it; the
factor took the 2-thread predictor from 12.2% to 5.4% MAPE on the same runs, and two
calibrations that scored 3.6% and 5.8% at 1 thread to 3.9% and 4.1%.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

from hardnet_analysis.documents.records import omitted_if_none

#: Below this CPU share the machine counts as busy.
BUSY_SHARE = 0.8
#: Probes whose matmul or copy times differ by more than this share are at another speed.
DRIFT = 0.10
#: A calibration's probes spread wider than this share (`spread_warning`) ran on a machine
#: whose speed moved under them.
SPREAD = 0.20


@dataclass(frozen=True)
class DeviceRecord:
    """The device asked for and used (``cpu``/``cuda``), why it fell back (or None), its name;
    CPU clocks in MHz, or a GPU's compute capability, memory bytes and SM count."""

    requested: str
    used: str
    fallback: str | None
    name: str
    mhz: tuple[float, ...] | None = omitted_if_none()
    capability: tuple[int, ...] | None = omitted_if_none()
    memory_bytes: int | None = omitted_if_none()
    sm_count: int | None = omitted_if_none()


@dataclass(frozen=True)
class LoadProbe:
    """A short probe of how busy the machine is, taken before timing
    (`hardnet_analysis.profiler.quiet`): at `threads` threads, the seconds of one 384x384 fp32
    matmul and of one 16 MiB copy, and `cpu_share`, the process's CPU time over wall time x
    threads during the matmuls (1.0: every thread ran the whole time; 0.5: other processes held
    half the cores). `thread_time`: the two times are the calling thread's CPU time (a 1-thread
    probe for ``--thread-time`` runs and calibrations), not wall time; probes on different
    clocks are never compared (absent in older files: wall time)."""

    threads: int
    matmul_s: float
    copy_s: float
    cpu_share: float
    thread_time: bool = False

    def comparable(self, other: LoadProbe) -> bool:
        """Whether `other` timed the same work the same way: thread count and clock."""
        return (self.threads, self.thread_time) == (other.threads, other.thread_time)


@dataclass(frozen=True)
class Controls:
    """Timings of the speed control (`hardnet_analysis.profiler.pace`: two 384x384 fp32
    matmuls) at `threads` threads, on one clock (`thread_time`: the calling thread's CPU time,
    else wall time), in seconds each, in the order taken."""

    threads: int
    thread_time: bool
    seconds: tuple[float, ...]
    #: Whether each control ran a matmul untimed before it was timed (hda's controls since
    #: 2026-12-07). Older files' controls ran cold after a forward that had evicted the caches,
    #: 10-19% slower than back to back (a calibration's) on a 2-core AMD EPYC: never compared
    #: with warm ones.
    warm: bool = False

    def comparable(self, other: Controls) -> bool:
        """Whether `other` timed the control the same way: thread count, clock and warming."""
        return replace(self, seconds=()) == replace(other, seconds=())


@dataclass(frozen=True)
class Pace:
    """A timing paced by controls (`hardnet_analysis.profiler.pace`): beside each timed call,
    the mean seconds of the control just before and just after it (`controls`, one per call),
    and `paced`, the median over the calls of call seconds over control seconds (a pure
    number: 72 ms forwards beside 1.44 ms controls, 50.0). `paced` x a calibration's median
    control is the call's time at the speed the calibration ran at (`pace_ratio`)."""

    controls: Controls
    paced: float


def pace_ratio(reference: Controls | None, measured_s: float, pace: Pace | None) -> float | None:
    """How much longer a run's timing took than it would have at the speed of the
    `reference` controls (a calibration's): its `measured_s` over its `paced` figure times the
    reference's median control, or None where either lacks controls or they are not
    comparable. 80 ms measured, paced 50.0 against a 1.44 ms reference: 80 / 72 = 1.11 (the
    machine ran 11% slower). Unlike `speed_ratio`, whose probes lie tens of milliseconds
    from the timing, each control lies beside one call and sees the state that call ran in."""
    if reference is None or pace is None or not reference.seconds:
        return None
    if not pace.controls.comparable(reference) or pace.paced <= 0:
        return None
    return measured_s / (pace.paced * statistics.median(reference.seconds))


def busy_warning(probe: LoadProbe) -> str | None:
    """The warning for a busy machine, or None when it is quiet."""
    if probe.cpu_share >= BUSY_SHARE:
        return None
    return (
        f"the machine is busy: at {probe.threads} threads this process got "
        f"{probe.cpu_share:.0%} of its cores' time (other processes use them); timings taken "
        "now mean little: measure on a quiet machine"
    )


def drift(reference: LoadProbe, now: LoadProbe) -> float:
    """How much slower (+) or faster (-) `now` ran than `reference`: the larger relative
    change of the matmul and copy times. Matmul 1.0 -> 1.3 ms, copy unchanged: +0.3."""
    changes = [now.matmul_s / reference.matmul_s - 1, now.copy_s / reference.copy_s - 1]
    return max(changes, key=abs)


def drift_warning(reference: LoadProbe, probes: Sequence[LoadProbe], what: str) -> str | None:
    """A warning when the median drift of `probes` from `reference` exceeds `DRIFT` (probes at
    another thread count or clock are not comparable and left out); `what` names the two sides, e.g.
    ``"the runs ran {} than the calibration"``."""
    same = [p for p in probes if p.comparable(reference)]
    if not same:
        return None
    change = statistics.median(drift(reference, p) for p in same)
    if abs(change) <= DRIFT:
        return None
    return what.format(f"{abs(change):.0%} {'slower' if change > 0 else 'faster'}")


def spread_warning(probes: Sequence[LoadProbe]) -> str | None:
    """A warning when the quiet `probes` of one calibration (one thread count, taken through
    it) ran at speeds more than `SPREAD` apart, their 10th and 90th percentiles of the
    geometric mean of matmul and copy time compared; None with fewer than 5. On a 2-core Intel
    Xeon VM a 1 ms matmul ran more than 20% slower than its fastest in 28% of 71,392 calls
    (``benchmarks/bench_speed_states.py``): a calibration's fits then carry that noise."""
    speeds = sorted(math.sqrt(p.matmul_s * p.copy_s) for p in probes if not busy_warning(p))
    if len(speeds) < 5:
        return None
    deciles = statistics.quantiles(speeds, n=10)
    spread = deciles[-1] / deciles[0] - 1
    if spread <= SPREAD:
        return None
    return (
        f"at {_threads(probes[0].threads)} the machine's speed varied by {spread:.0%} during the "
        f"calibration (10th to 90th percentile of {len(speeds)} load probes): the fits carry "
        "that noise; calibrate when the machine is steadier"
    )


def _threads(count: int) -> str:
    return f"{count} thread" + ("" if count == 1 else "s")


def speed_ratio(reference: Sequence[LoadProbe], now: Sequence[LoadProbe]) -> float | None:
    """How much longer the same work takes during a run, probed `now` (its start and end), than
    when the `reference` probes were taken (a calibration's: start, through and end), or None
    when no quiet probe of either side is comparable (`LoadProbe.comparable`) with the other's:
    the geometric mean of the matmul and copy time ratios, each side the geometric mean of its
    probes, so compute- and memory-bound work weigh alike. Matmul 1.0 -> 1.21 ms, copy 1.0 ->
    1.0 ms: 1.1 (the machine runs 10% slower). A prediction for the calibrated machine times
    this ratio is the prediction at the speed the machine had during the run. A probe taken
    while the machine was busy (`busy_warning`) is left out: it timed another process's load,
    not the speed the timing ran at (a 2-thread start probe that got 59% of its cores read
    7.5 ms against the end probe's 1.7 ms)."""
    runs = [p for p in now if not busy_warning(p)]  # one run's probes: one count and clock
    same = [p for p in reference if runs and p.comparable(runs[0]) and not busy_warning(p)]
    if not same:
        return None
    mean = statistics.geometric_mean
    matmul = mean(p.matmul_s for p in runs) / mean(p.matmul_s for p in same)
    copy = mean(p.copy_s for p in runs) / mean(p.copy_s for p in same)
    return math.sqrt(matmul * copy)
