"""Correlations, fits and the calibration contract, on real ``hda profile`` runs (and on points
with a known answer where the fit itself is tested)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hardnet_analysis.cli.common.runs import load_runs
from hardnet_analysis.cli.main import main
from hardnet_analysis.documents.latency_model import LATENCY_FEATURES, LatencyModel
from hardnet_analysis.documents.profile_run import DramBytes, ProfileRun
from hardnet_analysis.metrics import correlate as corr

A, B, C = 2e-11, 3e-10, 1e-3  # s per MAC, s per CIO element, s


def linear(run: ProfileRun) -> ProfileRun:
    """`run` with its median latency replaced by exactly C + A * MACs + B * CIO."""
    latency = C + A * run.totals.macs + B * run.totals.cio
    return replace(run, latency=replace(run.latency, median_s=latency))


def test_pearson_matches_numpy_and_ci_brackets_it(profiled_runs: list[Path]) -> None:
    run = load_runs(profiled_runs[:1])[0]
    found = corr.correlate(corr.layer_points([run]), "cio", "layer")
    assert found is not None
    timed = [layer for layer in run.layers if layer.nodes]
    x, y = [layer.cio for layer in timed], [layer.time_s for layer in timed]
    assert found.pearson == pytest.approx(float(np.corrcoef(x, y)[0, 1]))
    assert found.pearson_ci[0] <= found.pearson <= found.pearson_ci[1]
    assert found.n == len(timed) and found.source == "model"


def test_spearman_interval_by_hand() -> None:
    low, high = corr.spearman_ci(0.9, 12)
    se = math.sqrt((1 + 0.81 / 2) / 9)
    assert low == pytest.approx(math.tanh(math.atanh(0.9) - 1.959964 * se), rel=1e-5)
    assert high == pytest.approx(math.tanh(math.atanh(0.9) + 1.959964 * se), rel=1e-5)


def test_exact_linear_latency_is_recovered_leave_one_model_out() -> None:
    points = [
        corr.Point(name, name, "dev", C + A * m * s + B * c * s, {"macs": m * s, "cio": c * s})
        for name, m, c in (("a", 4e9, 1e7), ("b", 1e9, 3e7), ("c", 8e9, 2e7), ("d", 2e9, 1.5e7))
        for s in (1.0, (512 / 224) ** 2)
    ]
    model = corr.fit_latency_model(points, ("macs", "cio"))
    assert model is not None
    assert model.coef == pytest.approx((A, B), rel=1e-6)
    assert model.intercept == pytest.approx(C, rel=1e-6)
    assert model.lomo_error is not None and model.lomo_error < 1e-6


def test_measured_dram_keeps_its_source(profiled_runs: list[Path]) -> None:
    run = load_runs(profiled_runs[:1])[0]
    measured = replace(run, dram=DramBytes("ncu", 3e7, 1e7))
    points = corr.model_points([measured])
    assert points[0].features["dram_bytes"] == 4e7 and points[0].sources["dram_bytes"] == "ncu"
    assert points[0].sources["model_bytes"] == "model"
    assert "dram_bytes" not in corr.model_points([run])[0].features


def test_cli_saves_the_calibration_contract(
    profiled_runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [linear(run) for run in load_runs(profiled_runs)]
    files = [str(run.write(tmp_path / f"run{i}.json")) for i, run in enumerate(runs)]
    calibration = tmp_path / "cal.json"
    code = main(["correlate", *files, "--save-calibration", str(calibration), "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and {b["level"] for b in document["best"]} == {"model", "layer"}
    saved = json.loads(calibration.read_text())
    assert saved["format"] == "hda-latency-model" and saved["version"] == 1
    assert saved["features"] == ["macs", "cio"] and saved["units"] == "s"
    assert set(saved["features"]) <= set(LATENCY_FEATURES)
    model = LatencyModel.read(calibration)
    for run in runs:
        features = {"macs": run.totals.macs, "cio": run.totals.cio}
        assert model.predict(features) == pytest.approx(run.latency.median_s, rel=1e-6)


def test_cli_rejects_foreign_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    assert main(["correlate", str(bad)]) == 2
    assert "not an hda profile run" in capsys.readouterr().err


def _one_line_usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_unreadable_run_files_are_one_line_errors(
    profiled_runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(profiled_runs[0].read_text())
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**document, "version": 2}))
    err = _one_line_usage_error(capsys, "correlate", str(newer))
    assert "newer.json" in err and "version 2" in err and "version 1" in err
    del document["layers"][3]["time_s"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document))
    err = _one_line_usage_error(capsys, "report", str(broken), "--out", str(tmp_path / "r.html"))
    assert "broken.json" in err and "layers[3]: missing field 'time_s'" in err
    assert "accepted: format 'hda-profile-run' version 1" in err
    calibration = (
        Path(__file__).parents[1] / "results" / "cpu-sweep" / "calibration-cpu-1thread.json"
    )
    err = _one_line_usage_error(capsys, "correlate", str(calibration))
    assert "is not an hda profile run (format 'hda-latency-model')" in err
