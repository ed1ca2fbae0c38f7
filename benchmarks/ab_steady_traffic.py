"""One calibration's timings fitted twice: with each benchmark's DRAM bytes those of its loop
in steady state (``metrics.fit_device.steady_dram``: every byte through DRAM when the loop's
inputs, weights and output blocks span more than the cache, none otherwise), and as one
call's (the per-call cache simulation of calibrations before it: a warm benchmark reads its
input from the cache, a cold one from DRAM, and its output's write-back is never charged).

A shared VM changes speed state by 10-20% within minutes, so two calibrations taken one after
the other differ by more than the change under test; fitting the same timings both ways takes
the machine out. Score both on the same profile runs with ``hda correlate RUNS
--device-model OUT/device-steady.json`` and ``.../device-per-call.json``.

    python benchmarks/ab_steady_traffic.py --out results/steady-traffic/ab   # about 3 minutes

Run on a quiet machine; ``--grid tiny`` for a quick end-to-end check.
"""

from __future__ import annotations

from ab_fits import run

from hardnet_analysis.documents.device_model import DeviceModels
from hardnet_analysis.metrics import fit_device
from hardnet_analysis.metrics.predict import LayerFeatures, as_run, layer_features
from hardnet_analysis.profiler.calibrate import Timings, fit_calibration


def _per_call_rows(m: fit_device.Measurement, capacity: int) -> list[LayerFeatures]:
    """The rows as fitted before steady-state traffic: one call simulated alone."""
    warm = m.pool_bytes <= capacity
    rows = layer_features(m.analysis, capacity, warm=warm, flush_outputs=False)
    if m.kind.startswith("conv"):
        rows = [as_run(m.analysis, f, m.kind) if f.kind.startswith("conv") else f for f in rows]
    return [f for f in rows if f.kind == m.kind] or rows


def _steady(timed: Timings, started: float) -> DeviceModels:
    return fit_calibration(timed, None, started)


def _per_call(timed: Timings, started: float) -> DeviceModels:
    steady = fit_device._rows
    fit_device._rows = _per_call_rows
    try:
        return fit_calibration(timed, None, started)
    finally:
        fit_device._rows = steady


if __name__ == "__main__":
    run(__doc__.split("\n\n")[0], {"steady": _steady, "per-call": _per_call})
