"""`hda predict --explain`: what makes a model slow, per block, with shares that add up, the
device model's bound, MoC from the analysis and a flag for layers outside the calibration."""

from __future__ import annotations

import json
import math

import pytest

from hardnet_analysis import analyze
from hardnet_analysis.cli.main import main
from hardnet_analysis.documents.device_model import DeviceModel
from hardnet_analysis.metrics.explain import REACH_LIMIT, explain, reach
from hardnet_analysis.metrics.predict import predict
from tests.trainkit import ROOT

DEVICE = ROOT / "results" / "predict-sweep" / "device-1thread.json"


def test_reach_worked_example() -> None:
    ranges = {"conv_1x1": [(1_000_000, 10_000), (800_000_000, 5_000_000)]}
    assert reach("conv_1x1", 2_400_000_000, 1_000_000, ranges).factor == pytest.approx(3.0)
    assert reach("conv_1x1", 2_400_000_000, 1_000_000, ranges).factor > REACH_LIMIT
    assert reach("conv_1x1", 5_000_000, 20_000, ranges).label() == "in range"
    assert reach("conv_1x1", 5_000_000, 1_000, ranges).factor == pytest.approx(10.0)
    missing = reach("attention", 1, 1, ranges)
    assert missing.benchmarks == 0 and math.isinf(missing.factor) and missing.flagged


def test_explanation_adds_up_and_follows_the_blocks() -> None:
    device = DeviceModel.read(DEVICE)
    analysis = analyze("hardnet68", 224)
    prediction = predict(analysis, device)
    explained = explain(analysis, prediction, device, min_share=0.02)
    blocks = [b.block for b in explained.blocks]
    assert blocks[0] == "stem" and blocks[-1] == "head" and "hardblock3" in blocks
    assert sum(b.share for b in explained.blocks) == pytest.approx(1.0)
    assert sum(b.time_s for b in explained.blocks) == pytest.approx(prediction.latency_s)
    assert sum(explained.bounds.values()) == pytest.approx(1.0)
    assert set(explained.bounds) <= {"compute", "dram", "cache", "overhead"}
    layers = [layer for b in explained.blocks for layer in b.layers]
    assert all(layer.share >= 0.02 for layer in layers)
    assert explained.shown_share == pytest.approx(sum(layer.share for layer in layers))
    records = {r.name: r for r in analysis.layers}
    for layer in layers:  # MoC and block are the analysis's own, not recomputed
        assert layer.moc == records[layer.name].moc and layer.block == records[layer.name].block
    slowest = max(prediction.layers, key=lambda p: p.time_s)
    assert slowest.name in {layer.name for layer in layers}


def test_cli_explain_in_every_format(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["predict", "hardnet39ds", "--device-model", str(DEVICE), "--explain"]
    assert main([*argv, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["model"] == "hardnet39ds" and document["blocks"][0]["block"] == "stem"
    assert main([*argv, "--format", "csv"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert {"name", "block", "share", "bound", "moc", "calibration"} <= set(header)
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "what makes hardnet39ds @ 224x224 slow" in out and "hardblock" in out
