"""Speed controls beside each timed call (`profiler.pace`), and the speed they give a run
against a calibration (`documents.machine.pace_ratio`)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import replace
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardnet_analysis.analysis import analyze
from hardnet_analysis.backends.cpu import CpuClock
from hardnet_analysis.documents.device_model import DeviceModel
from hardnet_analysis.documents.machine import Controls, Pace, pace_ratio
from hardnet_analysis.documents.profile_run import ProfileRun
from hardnet_analysis.metrics.fit_device import Measurement
from hardnet_analysis.metrics.predict import predict
from hardnet_analysis.metrics.predictor_score import score
from hardnet_analysis.profiler.calibrate import (
    CalibrationSettings,
    Timings,
    at_speed,
    fit_calibration,
    seconds_per_call,
    time_calibration,
)
from hardnet_analysis.profiler.pace import (
    Control,
    control_threads,
    pace_of,
    paced_each,
    take_controls,
    time_paced,
)
from tests.test_quiet import SWEEP


class _Scripted:
    """A clock that stands still but for what the scripted calls add to `now`."""

    def __init__(self) -> None:
        self.now = 0.0

    def mark(self) -> float:
        return self.now

    def sync(self) -> None:
        pass

    def elapsed(self, start: float, end: float) -> float:
        return end - start


def test_each_call_gets_the_mean_of_the_controls_either_side() -> None:
    clock = _Scripted()
    controls = [1.0, 3.0, 5.0, 7.0]  # before the first call, then after each of three
    taken = iter(controls)

    class Timed(Control):
        def __init__(self) -> None:
            self.clock = clock

        def __call__(self) -> float:
            seconds = next(taken)
            clock.now += seconds
            return seconds

    calls = iter([10.0, 20.0, 40.0, 99.0])  # the warm-up call, then three timed ones

    def forward() -> None:
        clock.now += next(calls)

    samples, beside = time_paced(forward, Timed(), warmup=1, repeat=3)
    assert samples == [20.0, 40.0, 99.0]
    assert beside == [2.0, 4.0, 6.0]
    pace = pace_of(samples, beside, threads=1, thread_time=True)
    assert pace.paced == pytest.approx(10.0)  # median of 10, 10, 16.5
    assert pace.controls == Controls(1, True, (2.0, 4.0, 6.0), warm=True)


def test_pace_ratio_worked_example() -> None:
    # 80 ms measured, 50 controls' worth, the calibration's median control 1.44 ms: at the
    # calibration's speed the timing would have taken 72 ms, so the machine ran 11% slower.
    reference = Controls(1, True, (1.40e-3, 1.44e-3, 1.50e-3))
    pace = Pace(Controls(1, True, (1.6e-3,)), 50.0)
    assert pace_ratio(reference, 80e-3, pace) == pytest.approx(80 / 72)
    # another thread count or clock, or no controls on either side: no ratio
    assert pace_ratio(replace(reference, threads=2), 80e-3, pace) is None
    assert pace_ratio(replace(reference, thread_time=False), 80e-3, pace) is None
    assert pace_ratio(replace(reference, seconds=()), 80e-3, pace) is None
    assert pace_ratio(None, 80e-3, pace) is None and pace_ratio(reference, 80e-3, None) is None


@given(
    st.lists(st.floats(1e-3, 1.0), min_size=1, max_size=9),
    st.lists(st.floats(1e-4, 1e-2), min_size=10, max_size=10),
    st.floats(0.5, 5.0),
)
def test_a_uniformly_slower_machine_leaves_the_paced_figure_alone(
    calls: list[float], controls: list[float], slower: float
) -> None:
    """If every call and every control takes `slower` times as long, the paced figure is the
    same, and against the quick run's own controls the slow run's ratio is `slower`."""
    beside = controls[: len(calls)]
    quick = pace_of(calls, beside, 1, False)
    slow = pace_of([slower * c for c in calls], [slower * c for c in beside], 1, False)
    assert slow.paced == pytest.approx(quick.paced, rel=1e-9)
    measured = statistics.median(slower * c for c in calls)
    ratio = pace_ratio(quick.controls, measured, slow)
    expected = measured / (quick.paced * statistics.median(beside))
    assert ratio == pytest.approx(expected, rel=1e-9)
    if len(calls) == 1:  # one call: its time over its control is the whole story
        assert ratio == pytest.approx(slower, rel=1e-9)


def test_onnx_runtime_runs_take_one_thread_controls() -> None:
    # ORT's pool and torch's would spin against each other (`control_threads`' docstring)
    assert control_threads(2, "onnxruntime") == 1 and control_threads(2, "torch") == 2


def test_a_control_times_real_matmuls_on_the_asked_threads() -> None:
    """On this machine: two 384x384 matmuls take between 10 us and 1 s each time, and the
    thread count is set back after `take_controls`."""
    import torch

    before = torch.get_num_threads()
    found = take_controls(1, CpuClock(thread_time=True), True, 5)
    assert torch.get_num_threads() == before
    assert (found.threads, found.thread_time) == (1, True) and len(found.seconds) == 5
    assert all(1e-5 < s < 1.0 for s in found.seconds)


def test_predictions_at_run_speed_prefer_the_paced_timing() -> None:
    # The load probes say the run ran at the calibration's speed; its controls say 1.25x
    # slower: the controls lie beside each forward, so the score takes theirs.
    device = DeviceModel.read(SWEEP / "device-1thread.json")
    run = ProfileRun.read(sorted((SWEEP / "runs-1thread").glob("resnet18*.json"))[0])
    thread_time = run.settings.clock == "time.thread_time_ns"
    reference = Controls(1, thread_time, (1.0e-3, 1.2e-3, 1.1e-3))
    predicted = score([run], device).models[0].predicted_s
    measured = 1.25 * predicted
    paced = Pace(Controls(1, thread_time, (1.3e-3,)), predicted / 1.1e-3)
    timed = replace(run, latency=replace(run.latency, median_s=measured), pace=paced)
    found = score([timed], replace(device, controls=reference))
    assert found.models[0].speed == pytest.approx(1.25)
    assert found.speed_mape == pytest.approx(0.0, abs=1e-12)
    # without the calibration's controls the load probes' speed is used, as before
    assert score([timed], device).models[0].speed != pytest.approx(1.25)


class CountingControl:
    """A speed control that says it took `seconds`, every call, and counts its calls."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.calls = seconds, 0

    def __call__(self) -> float:
        self.calls += 1
        return self.seconds


class _Steady(Control):
    """A control that takes `seconds` of `clock`'s time, every time."""

    def __init__(self, clock: _Scripted, seconds: float) -> None:
        self.clock, self.scripted, self.seconds = clock, clock, seconds

    def __call__(self) -> float:
        self.scripted.now += self.seconds
        return self.seconds


def _call(clock: _Scripted, seconds: float) -> None:
    clock.now += seconds


@pytest.mark.parametrize("slower", [1.0, 2.0])
def test_a_benchmark_sample_is_paced_by_the_control_beside_it(slower: float) -> None:
    # 50 us calls beside 1.5 ms controls, and the same on a machine twice as slow: the seconds
    # per call double, the paced figure (per call over control) stays 1/30, and at the
    # calibration's 1.5 ms reference both are 50 us again.
    clock = _Scripted()
    calls: list[Callable[[], object]] = [partial(_call, clock, slower * 50e-6)]
    seconds, paced = seconds_per_call(calls, clock, 6e-3, 5, _Steady(clock, slower * 1.5e-3))
    assert seconds == pytest.approx(slower * 50e-6) and paced == pytest.approx(1 / 30)
    found = Measurement("eltwise", "relu", None, 0, seconds, 0, paced)  # type: ignore[arg-type]
    assert at_speed(found, 1.5e-3).time_s == pytest.approx(50e-6)
    assert at_speed(found, None) == found  # no reference: as timed
    unpaced = replace(found, paced=None)
    assert at_speed(unpaced, 1.5e-3) == unpaced
    assert seconds_per_call(calls, clock, 6e-3, 5)[1] is None  # no control: not paced


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_a_calibration_fits_its_benchmarks_at_its_median_control(runtime: str) -> None:
    """A real tiny calibration (eager PyTorch, or ONNX Runtime with its one-thread wall-clock
    controls), its benchmarks' raw times then tripled as if the machine had run 3x slower under
    them: the paced fit is unchanged, and an unpaced one (no controls) follows the raw times,
    predicting between 2x and 4x as long. Not exactly 3x: on the tiny grid's 2-7 benchmarks per
    kind the sum and max forms' leave-one-out errors nearly tie, and the choice flips between
    the two fits (conv_dw, copy and bn in one case); 8 fits on a 2-core AMD EPYC gave 2.79x to
    3.17x, and one more fell outside 3x +-15% in a test run."""
    settings = CalibrationSettings(
        threads=(1,), grid="tiny", repeat=2, budget_s=0.001, models=(), runtime=runtime
    )
    timed = time_calibration(settings)
    reference = timed.controls[1]
    assert reference is not None and reference.thread_time is False
    assert all(m.paced is not None for m in timed.measured[1])
    slow = {1: [replace(m, time_s=3 * m.time_s) for m in timed.measured[1]]}
    analysis = analyze("resnet18", 64)

    def predicted(timings: Timings) -> float:
        (device,) = fit_calibration(timings).models
        return predict(analysis, device).latency_s

    assert predicted(replace(timed, measured=slow)) == pytest.approx(predicted(timed), rel=1e-9)
    unpaced = replace(timed, controls={1: None})
    tripled = predicted(replace(unpaced, measured=slow)) / predicted(unpaced)
    assert 2.0 < tripled < 4.0


@given(
    st.lists(st.floats(1e-4, 1e-1), min_size=1, max_size=7),
    st.lists(st.floats(0.5, 4.0), min_size=7, max_size=7),
)
def test_an_ops_paced_figure_ignores_the_speed_of_each_call(
    seconds: list[float], slower: list[float]
) -> None:
    """An op that takes `seconds[i]` x `slower[i]` beside a control of 1 ms x `slower[i]` (the
    machine ran `slower[i]` times as slow during call i) has the paced figure of its plain
    seconds over 1 ms, whatever the slowdowns; an op missing from a call is figured from the
    calls it is in."""
    calls = [
        {"conv": s * k, **({"relu": s * k} if i % 2 else {})}
        for i, (s, k) in enumerate(zip(seconds, slower, strict=False))
    ]
    controls = [1e-3 * k for k in slower[: len(seconds)]]
    found = paced_each(calls, controls)
    assert found["conv"] == pytest.approx(statistics.median(s / 1e-3 for s in seconds))
    odd = seconds[1::2]
    assert ("relu" in found) == bool(odd)
    if odd:
        assert found["relu"] == pytest.approx(statistics.median(s / 1e-3 for s in odd))


def test_a_control_on_fixed_threads_sets_torchs_count_back() -> None:
    """A control on 1 thread (as ONNX Runtime's runs take them) leaves torch's count as it was,
    and its matmuls take between 10 us and 1 s."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        control = Control(CpuClock(), 1)
        assert 1e-5 < control() < 1.0 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_warmed_controls_are_never_set_against_cold_ones() -> None:
    """hda's controls now run a matmul untimed first (`Controls.warm`); a file's controls from
    before ran cold after each forward and read 10-19% slower for no change of
    speed, so a run and a calibration of different kinds give no speed, and old files read as
    cold."""
    found = take_controls(1, CpuClock(thread_time=True), True, 2)
    assert found.warm and pace_of([2e-3], [1e-3], 1, True).controls.warm
    cold = Controls(1, True, (1e-3,))
    assert not cold.warm and not cold.comparable(found)
    assert pace_ratio(cold, 2e-3, pace_of([2e-3], [1e-3], 1, True)) is None
    paced_sweep = SWEEP.parent / "eager-sweep-paced" / "runs-1thread"
    old = ProfileRun.read(sorted(paced_sweep.glob("resnet18*.json"))[0])
    assert old.pace is not None and not old.pace.controls.warm


def test_paced_times_at_a_reference_control() -> None:
    """A 72 ms network paced 50.0 is 72 ms at a 1.44 ms reference and 60 ms at 1.2 ms; its ops
    scale alike; unpaced, or without a reference, both stay as timed."""
    from hardnet_analysis.profiler.pace import PacedSeconds, PacedSpans

    whole, spans = PacedSeconds(72e-3, 50.0), PacedSpans({"conv": 9e-3}, {"conv": 6.25})
    assert whole.at(1.44e-3) == pytest.approx(72e-3) and whole.at(1.2e-3) == pytest.approx(60e-3)
    assert spans.at(1.2e-3) == pytest.approx({"conv": 7.5e-3})
    assert PacedSeconds(72e-3, 0.0).at(1.2e-3) == 72e-3 and whole.at(None) == 72e-3
    assert PacedSpans({"conv": 9e-3}, {}).at(1.2e-3) == {"conv": 9e-3}
