"""The search ranks and bounds by a device model's predicted latency, per stage fragment and
exact: a candidate's figure is the sum of its layers' predictions, equal to `hda predict` on
the emitted network."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from hardnet_analysis.analysis import analyze
from hardnet_analysis.cli.main import main
from hardnet_analysis.documents.device_model import DeviceModel, DeviceModels
from hardnet_analysis.metrics.predict import predict
from hardnet_analysis.search.objectives import get_objective
from hardnet_analysis.search.space import default_space, load_template, with_flags
from hardnet_analysis.search.sweep import Budgets, ObjectiveRanker, sweep
from hardnet_analysis.shapes import InputShape

SMALL = ["--k", "x0.75,x1", "--n-layers", "x0.5,x1", "--m", "1.65,1.7"]


@pytest.fixture(scope="module")
def dram_bound(device_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny calibration with every kind a sum whose DRAM term is large, on a 50 MiB cache:
    the case where stage boundaries would show if the fragments' caches did not add up."""
    device = DeviceModel.read(device_file)
    kinds = tuple(replace(k, form="sum", dram_byte_s=1e-9) for k in device.kinds)
    path = tmp_path_factory.mktemp("dram") / "dram.json"
    DeviceModels((replace(device, kinds=kinds, cache_bytes=50 * 2**20),)).write(path)
    return path


@pytest.mark.parametrize("size", [224, 512])
def test_candidate_latency_equals_predict_on_the_network(dram_bound: Path, size: int) -> None:
    space = with_flags(default_space(load_template("hardnet68")), "x0.75,x1", None, "x0.5,x1")
    objective = get_objective("latency", device_model=dram_bound)
    ranker = ObjectiveRanker(objective, keep=3)
    result = sweep(space, InputShape.of_image(size), Budgets(), ranker, features=objective.features)
    device = DeviceModel.read(dram_bound)
    for candidate in result.candidates:
        network = space.definition(candidate.choices)
        whole = predict(analyze(network, size), device).latency_s
        assert candidate.score == pytest.approx(whole, rel=1e-9)


def test_budget_latency_bounds_the_front(
    device_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["search", *SMALL, "--device-model", str(device_file), "--format", "json"]
    assert main([*base, "--objective", "latency", "--top", "50"]) == 0
    scores = [c["score"] for c in json.loads(capsys.readouterr().out)["candidates"]]
    assert scores == sorted(scores)
    limit = scores[len(scores) // 2]
    assert main([*base, "--objective", "latency", "--budget-latency", f"{limit * 1e3}ms"]) == 0
    kept = json.loads(capsys.readouterr().out)
    assert all(c["score"] <= limit * (1 + 1e-9) for c in kept["candidates"])
    assert kept["objective_info"]["budget_latency_s"] == pytest.approx(limit)


def test_latency_budget_errors_are_one_line(
    device_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", *SMALL, "--budget-latency", "12ms"]) == 2
    assert "--budget-latency needs --device-model" in capsys.readouterr().err
    args = ["search", *SMALL, "--device-model", str(device_file), "--budget-latency", "1us"]
    assert main(args) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress lines
    assert last.startswith("hda search: error: no candidate") and "latency_s <= 1e-06" in last


def test_budget_latency_is_in_the_front_file_and_the_summary(
    device_file: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "s"
    base = ["search", *SMALL, "--device-model", str(device_file), "--out", str(out)]
    assert main([*base, "--budget-latency", "1s"]) == 0
    table = capsys.readouterr().out
    assert "within predicted latency <= 1000 ms" in " ".join(table.split())  # wrapped or not
    front = json.loads((out / "front.json").read_text())
    assert front["objective_info"]["budget_latency_s"] == 1.0
    assert "--budget-latency 1s" in front["command"]
