"""Correlations, fits and the calibration contract on synthetic runs with known answers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hardnet_analysis.cli.main import main
from hardnet_analysis.metrics import correlate as corr
from hardnet_analysis.metrics.calibration import LATENCY_FEATURES

A, B, C = 2e-11, 3e-10, 1e-3  # s per MAC, s per CIO element, s


def fake_run(model: str, size: int, macs: float, cio: float, dram: bool = False) -> dict[str, Any]:
    latency = C + A * macs + B * cio
    layers = [
        {
            "name": f"l{i}",
            "nodes": [f"l{i}"],
            "time_s": latency / 4 * (i + 1) / 2.5,
            "macs": macs / 4 * (i + 1) / 2.5,
            "cio": cio / 4 * (i + 1) / 2.5,
            "model_bytes": 4 * cio * (i + 1) / 10,
            "model_fused_bytes": 2 * cio * (i + 1) / 10,
            "params": 1,
            "dram": None,
        }
        for i in range(4)
    ]
    return {
        "format": "hda-profile-run",
        "status": "ok",
        "model": model,
        "input": [size, size],
        "dtype": "fp32",
        "threads": 2,
        "device": {"used": "cpu", "name": "test cpu"},
        "latency": {"median_s": latency},
        "totals": {
            "macs": macs,
            "cio": cio,
            "model_bytes": 4.2 * cio,
            "model_fused_bytes": 2 * cio,
            "params": 10,
            "act_bytes": 4 * cio,
        },
        "dram": {"source": "ncu", "read_bytes": 3 * cio, "write_bytes": cio} if dram else None,
        "layers": layers,
    }


RUNS = [
    fake_run(name, size, macs * (size / 224) ** 2, cio * (size / 224) ** 2)
    for name, macs, cio in (("a", 4e9, 1e7), ("b", 1e9, 3e7), ("c", 8e9, 2e7), ("d", 2e9, 1.5e7))
    for size in (224, 512)
]


def test_pearson_matches_numpy_and_ci_brackets_it() -> None:
    found = corr.correlate(corr.model_points(RUNS), "cio", "model")
    assert found is not None
    x = [r["totals"]["cio"] for r in RUNS]
    y = [r["latency"]["median_s"] for r in RUNS]
    assert found.pearson == pytest.approx(float(np.corrcoef(x, y)[0, 1]))
    assert found.pearson_ci[0] <= found.pearson <= found.pearson_ci[1]
    assert found.n == 8 and found.source == "model"


def test_spearman_interval_by_hand() -> None:
    low, high = corr.spearman_ci(0.9, 12)
    se = math.sqrt((1 + 0.81 / 2) / 9)
    assert low == pytest.approx(math.tanh(math.atanh(0.9) - 1.959964 * se), rel=1e-5)
    assert high == pytest.approx(math.tanh(math.atanh(0.9) + 1.959964 * se), rel=1e-5)


def test_exact_linear_latency_is_recovered_leave_one_model_out() -> None:
    model = corr.fit_latency_model(corr.model_points(RUNS), ("macs", "cio"))
    assert model is not None
    assert model.coef == pytest.approx((A, B), rel=1e-6)
    assert model.intercept == pytest.approx(C, rel=1e-6)
    assert model.lomo_error is not None and model.lomo_error < 1e-6


def test_measured_dram_keeps_its_source() -> None:
    runs = [fake_run("a", 224, 1e9, 1e7, dram=True)]
    points = corr.model_points(runs)
    assert points[0].features["dram_bytes"] == 4e7 and points[0].sources["dram_bytes"] == "ncu"
    assert points[0].sources["model_bytes"] == "model"


def test_cli_saves_the_calibration_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = []
    for i, run in enumerate(RUNS):
        path = tmp_path / f"run{i}.json"
        path.write_text(json.dumps(run))
        files.append(str(path))
    calibration = tmp_path / "cal.json"
    code = main(["correlate", *files, "--save-calibration", str(calibration), "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and {b["level"] for b in document["best"]} == {"model", "layer"}
    saved = json.loads(calibration.read_text())
    assert saved["format"] == "hda-latency-model" and saved["version"] == 1
    assert saved["features"] == ["macs", "cio"] and saved["units"] == "s"
    assert set(saved["features"]) <= set(LATENCY_FEATURES)
    predicted = saved["intercept"] + sum(
        c * RUNS[0]["totals"][f] for c, f in zip(saved["coef"], saved["features"], strict=True)
    )
    assert predicted == pytest.approx(RUNS[0]["latency"]["median_s"], rel=1e-6)


def test_cli_rejects_foreign_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    assert main(["correlate", str(bad)]) == 2
    assert "not an hda profile run" in capsys.readouterr().err
