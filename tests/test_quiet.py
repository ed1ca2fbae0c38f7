"""A busy machine is noticed: the load probe, its warnings, and the scoring of a device model
against runs that differ from its calibration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardnet_analysis.documents.device_model import DeviceModel
from hardnet_analysis.documents.machine import (
    LoadProbe,
    busy_warning,
    drift,
    drift_warning,
    speed_ratio,
    spread_warning,
)
from hardnet_analysis.documents.profile_run import ProfileRun
from hardnet_analysis.metrics.predictor_score import mismatches, score
from hardnet_analysis.profiler.calibrate import (
    CONTROLS_PER_POINT,
    SPEED_PROBES,
    speed_probe_points,
)
from hardnet_analysis.profiler.quiet import probe_load
from tests.trainkit import ROOT

SWEEP = ROOT / "results" / "predict-sweep"


def test_drift_and_warnings_worked_examples() -> None:
    before = LoadProbe(2, 1.0e-3, 2.0e-3, 1.0)
    assert drift(before, LoadProbe(2, 1.3e-3, 2.0e-3, 1.0)) == pytest.approx(0.3)
    assert drift(before, LoadProbe(2, 1.0e-3, 1.5e-3, 1.0)) == pytest.approx(-0.25)
    what = "the runs ran {} than the calibration"
    assert drift_warning(before, [LoadProbe(2, 1.05e-3, 2e-3, 1.0)], what) is None
    assert drift_warning(before, [LoadProbe(2, 1.3e-3, 2e-3, 1.0)], what) == (
        "the runs ran 30% slower than the calibration"
    )
    assert drift_warning(before, [LoadProbe(1, 9e-3, 2e-3, 1.0)], what) is None  # other threads
    assert busy_warning(before) is None
    message = busy_warning(LoadProbe(2, 9e-3, 2e-3, 0.51))
    assert message is not None and "51% of its cores' time" in message


def _hogs(count: int) -> list[subprocess.Popen[bytes]]:
    """`count` processes spinning on a core each."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def test_the_probe_sees_every_core_taken() -> None:
    """With a spinning process per core, a probe on every core gets about half their time,
    however many cores the machine has (so the test does not depend on its load)."""
    cores = os.cpu_count() or 1
    hogs = _hogs(cores)
    try:
        time.sleep(0.3)  # the hogs are running
        busy = probe_load(cores)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert busy.cpu_share < 0.8 and busy_warning(busy) is not None
    assert busy.matmul_s > 0 and busy.copy_s > 0


def test_scoring_names_another_thread_count_and_clock() -> None:
    device = DeviceModel.read(SWEEP / "device-1thread.json")
    runs = [ProfileRun.read(p) for p in sorted((SWEEP / "runs-2threads").glob("resnet*.json"))]
    found = mismatches(runs, device)
    assert any("threads 2, the device model at 1" in line for line in found)
    assert any("clock time.perf_counter_ns" in line for line in found)
    same = [ProfileRun.read(p) for p in sorted((SWEEP / "runs-1thread").glob("resnet*.json"))]
    assert mismatches(same, device) == []


def test_speed_ratio_worked_example() -> None:
    # Matmul 1.0 -> 1.21 ms, copy unchanged: sqrt(1.21 * 1.0) = 1.1 (10% slower). Start and
    # end probes of a calibration count by their geometric mean; another thread count: None.
    start, end = LoadProbe(1, 0.8e-3, 2e-3, 1.0), LoadProbe(1, 1.25e-3, 2e-3, 1.0)
    assert speed_ratio([start, end], [LoadProbe(1, 1.21e-3, 2e-3, 1.0)]) == pytest.approx(1.1)
    assert speed_ratio([start], [LoadProbe(1, 0.8e-3, 1.0e-3, 1.0)]) == pytest.approx(0.5**0.5)
    assert speed_ratio([start], [LoadProbe(2, 0.8e-3, 2e-3, 1.0)]) is None
    # A run's probes before and after its timing count by their geometric mean too: the
    # matmul 1.0 and 1.44 ms (1.2), the copy 2 and 2 ms, against 1.0 and 2: sqrt(1.2) = 1.095.
    reference = LoadProbe(1, 1e-3, 2e-3, 1.0)
    bracket = [LoadProbe(1, 1e-3, 2e-3, 1.0), LoadProbe(1, 1.44e-3, 2e-3, 1.0)]
    assert speed_ratio([reference], bracket) == pytest.approx(1.2**0.5)
    # A reference probe taken while the machine was busy (59% of its cores) timed the load, not
    # the calibration's speed: left out, and when it is the only one there is no ratio. The
    # same holds for a busy probe of the run.
    busy = LoadProbe(1, 7.5e-3, 8e-3, 0.59)
    assert speed_ratio([busy, end], [LoadProbe(1, 1.25e-3, 2e-3, 1.0)]) == pytest.approx(1.0)
    assert speed_ratio([busy], [LoadProbe(1, 1.25e-3, 2e-3, 1.0)]) is None
    assert speed_ratio([end], [busy, LoadProbe(1, 1.25e-3, 2e-3, 1.0)]) == pytest.approx(1.0)
    assert speed_ratio([end], [busy]) is None


def test_probes_on_different_clocks_are_never_compared() -> None:
    # A thread-time probe leaves the hypervisor's steal out, a wall-time one counts it: their
    # ratio says nothing of the speed, so neither the ratio nor the drift warning uses it.
    wall, thread = LoadProbe(1, 1e-3, 2e-3, 1.0), LoadProbe(1, 2e-3, 4e-3, 1.0, thread_time=True)
    assert speed_ratio([wall], [thread]) is None and speed_ratio([thread], [wall]) is None
    assert drift_warning(wall, [thread], "{}") is None
    # among a calibration's probes, only those on the run's clock count: the thread-time one
    # at half the run's times gives 2, the wall one at the same times is left out
    half = replace(thread, matmul_s=1e-3, copy_s=2e-3)
    assert speed_ratio([wall, half], [thread]) == pytest.approx(2.0)


def _pinned_hog(core: int) -> subprocess.Popen[bytes]:
    """A process spinning on `core` only."""
    return subprocess.Popen(
        [sys.executable, "-c", "while True: pass"],
        preexec_fn=lambda: os.sched_setaffinity(0, {core}),
    )


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_a_thread_time_probe_does_not_count_time_the_core_ran_another_process() -> None:
    """Sharing its one core with a spinning process, the wall-time probe's matmul takes about
    twice as long, the thread-time probe's about what the thread itself ran: the figure a
    ``--thread-time`` run's own clock gives, so its speed is compared like with like."""
    core = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})  # this thread, where torch runs a 1-thread matmul
    hog = _pinned_hog(core)
    try:
        # Spin beside the hog rather than sleep: a thread that slept gets the scheduler's
        # credit for it and ran its first probe at 73% of the core, not half.
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            pass
        wall, thread = probe_load(1), probe_load(1, thread_time=True)
    finally:
        hog.kill()
        hog.wait()
        os.sched_setaffinity(0, before)
    assert not wall.thread_time and thread.thread_time
    assert busy_warning(wall) is not None  # the share still reads the load, on either clock
    assert wall.matmul_s > 1.5 * thread.matmul_s
    with pytest.raises(ValueError, match="1 thread"):
        probe_load(2, thread_time=True)


def test_predictions_at_run_speed_take_each_runs_drift_out() -> None:
    # The same run, its probe 1.3x slower than the calibration's: the raw prediction is 1/1.3
    # of the measured time too low, the one at run speed exact.
    device = DeviceModel.read(SWEEP / "device-1thread.json")
    run = ProfileRun.read(sorted((SWEEP / "runs-1thread").glob("resnet18*.json"))[0])
    reference = LoadProbe(1, 1e-3, 2e-3, 1.0)
    slow = LoadProbe(1, 1.3e-3, 2.6e-3, 1.0)
    predicted = score([run], replace(device, load_probe=reference)).models[0].predicted_s
    timed = replace(run, latency=replace(run.latency, median_s=1.3 * predicted), load_probe=slow)
    found = score([timed], replace(device, load_probe=reference))
    assert found.models[0].speed == pytest.approx(1.3)
    assert found.models[0].error == pytest.approx(1 / 1.3 - 1)
    assert found.speed_mape == pytest.approx(0.0, abs=1e-12) and found.speed_within_10pct == 1.0
    # Without the calibration's probe there is no speed to compare with.
    assert score([timed], replace(device, load_probe=None)).speed_mape is None


def test_a_busy_calibration_probe_is_no_reference_for_drift() -> None:
    # The calibration's start probe caught another process (59% of the core): comparing the
    # run with it would say it ran far faster. The quiet end probe is the reference.
    device = DeviceModel.read(SWEEP / "device-1thread.json")
    speed = LoadProbe(1, 1e-3, 2e-3, 1.0)
    first = ProfileRun.read(sorted((SWEEP / "runs-1thread").glob("resnet18*.json"))[0])
    run = replace(first, load_probe=speed)
    busy = LoadProbe(1, 7.5 * speed.matmul_s, 3 * speed.copy_s, 0.59)
    for end in (None, speed):
        found = mismatches([run], replace(device, load_probe=busy, end_probe=end))
        assert not any("during the calibration" in line for line in found)
    # The same probe taken quietly is a reference: the run is then 7.5x faster, and says so.
    quiet = replace(busy, cpu_share=1.0)
    found = mismatches([run], replace(device, load_probe=quiet, end_probe=None))
    assert any("faster than during the calibration" in line for line in found)


@given(st.integers(min_value=1, max_value=5000))
def test_speed_probes_are_spread_through_the_calibration(jobs: int) -> None:
    points = sorted(speed_probe_points(jobs))
    assert len(points) <= SPEED_PROBES
    assert all(2 <= p <= jobs for p in points)  # never where the start and end probes are
    if jobs > 2 * (SPEED_PROBES + 1):  # room for all: evenly spaced, a gap each side
        assert len(points) == SPEED_PROBES
        gaps = [b - a for a, b in zip([1, *points], [*points, jobs + 1], strict=True)]
        assert max(gaps) - min(gaps) <= 2


def test_speed_probe_points_worked_example() -> None:
    points = sorted(speed_probe_points(551))
    assert points[:2] == [33, 66] and points[-1] == 520  # 551 / 17 = 32.4 jobs apart


def test_a_calibration_on_a_machine_whose_speed_moves_is_warned_of() -> None:
    # Ten probes at 1.0 ms and ten at 1.3 ms (matmul and copy alike): deciles 1.0 and 1.3,
    # 30% apart; within 20% (or with fewer than 5 quiet probes) nothing is said.
    steady = [LoadProbe(1, 1e-3, 1e-3, 1.0)] * 10
    moving = steady + [LoadProbe(1, 1.3e-3, 1.3e-3, 1.0)] * 10
    message = spread_warning(moving)
    assert message is not None and "varied by 30%" in message and "20 load probes" in message
    assert spread_warning(steady + [LoadProbe(1, 1.15e-3, 1.15e-3, 1.0)] * 10) is None
    busy = [replace(p, cpu_share=0.5) for p in moving[10:]]
    assert spread_warning(steady[:4] + busy) is None  # 4 quiet probes: too few to say


def test_a_calibration_keeps_its_speed_probes(device_file: Path) -> None:
    """The tiny calibration probes its speed through the timing too; all its probes make the
    reference a run's speed is compared with."""
    device = DeviceModel.read(device_file)
    assert device.speed_probes and all(p.threads == device.threads for p in device.speed_probes)
    assert device.probes() == (device.load_probe, *device.speed_probes, device.end_probe)
    written = json.loads(device_file.read_text())["models"][0]
    assert len(written["speed_probes"]) == len(device.speed_probes)  # in the file calibrate wrote
    # speed controls at the start and beside each speed probe: the paced runs' reference
    controls = written["controls"]
    assert len(controls["seconds"]) == CONTROLS_PER_POINT * (1 + len(device.speed_probes))
    assert controls["threads"] == device.threads and all(s > 0 for s in controls["seconds"])
