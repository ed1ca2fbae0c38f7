"""The device model: a tiny real calibration, its document, predictions, the fit on points with
a known answer, and bad input as one-line errors (exit status 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hardnet_analysis.analysis import analyze
from hardnet_analysis.cli.main import main
from hardnet_analysis.metrics.device_model import DeviceModel, op_kind
from hardnet_analysis.metrics.fit_device import fit_kind
from hardnet_analysis.metrics.predict import predict

TINY = str(Path(__file__).parent / "data" / "tinyhardnet.json")


def test_calibration_document(device_file: Path) -> None:
    document = json.loads(device_file.read_text())
    assert document["format"] == "hda-device-model" and document["version"] == 1
    assert {"machine", "versions", "cache_bytes", "kinds", "fit", "samples"} <= set(document)
    kinds = {k["kind"] for k in document["kinds"]}
    assert {"conv_kxk", "conv_1x1", "conv_dw", "linear", "bn", "concat", "pool"} <= kinds
    assert document["fit"]["n"] == len(document["samples"]) > 20
    assert DeviceModel.load(device_file).to_json() == document


def test_predict_json_is_the_sum_of_its_layers(
    device_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["predict", TINY, "--input", "64", "--device-model", str(device_file)]
    assert main([*args, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert list(document)[:5] == ["model", "input", "batch", "latency_s", "device"]
    assert document["input"] == [64, 64] and document["batch"] == 1
    assert document["latency_s"] == pytest.approx(sum(r["time_s"] for r in document["layers"]))
    assert {r["bound"] for r in document["layers"]} <= {"compute", "dram", "cache", "overhead"}


def test_predict_any_traced_model_and_csv(
    device_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = DeviceModel.load(device_file)
    traced = predict(analyze("resnet18", 64), device)
    assert traced.latency_s > 0 and len(traced.layers) > 40
    args = ["predict", "resnet18", "--input", "32", "48", "--device-model", str(device_file)]
    assert main([*args, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("model,input,batch,name,op,kind")
    assert {line.split(",")[1] for line in lines[1:]} == {"32x32", "48x48"}


def _one_line_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    return err


def test_bad_device_models_are_one_line_errors(
    device_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["predict", "hardnet39ds", "--device-model"]
    assert "does not exist" in _one_line_error([*base, str(tmp_path / "none.json")], capsys)
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"format": "hda-latency-model", "version": 1, "coef": [1.0]}))
    assert "'hda-latency-model'" in _one_line_error([*base, str(old)], capsys)
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**json.loads(device_file.read_text()), "version": 2}))
    assert "newer version 2" in _one_line_error([*base, str(newer)], capsys)


def test_untraceable_model_is_a_one_line_error(
    device_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "odd.py"
    source.write_text(
        "import torch\n"
        "class Odd(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        return x * 2 if x.sum() > 0 else x\n"
        "def make():\n"
        "    return Odd()\n"
    )
    err = _one_line_error(["predict", f"{source}:make", "--device-model", str(device_file)], capsys)
    assert err.startswith("hda predict: error:")


def test_fit_recovers_a_known_roofline() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.uniform(1e6, 1e9, 30), rng.uniform(1e4, 1e7, 30), np.zeros(30)])
    x[:, 2] = x[:, 1] * 2
    t = 3e-6 + np.maximum(x[:, 0] * 2e-11, x[:, 1] * 1e-10)
    fitted = fit_kind("conv_kxk", x, t)
    assert fitted.model.form == "max" and fitted.model.loo_max < 0.01
    assert fitted.model.flop_s == pytest.approx(2e-11, rel=0.02)


def test_op_kinds() -> None:
    conv = {"op": "conv", "groups": 1, "in_channels": 8, "kernel": (3, 3)}
    assert op_kind(conv) == "conv_kxk"
    assert op_kind({**conv, "kernel": (1, 1)}) == "conv_1x1"
    assert op_kind({**conv, "groups": 8}) == "conv_dw"
    assert op_kind({**conv, "groups": 2}) == "conv_grouped"
    assert [op_kind({"op": op}) for op in ("max_pool", "concat", "flatten", "input", "gelu")] == [
        "pool",
        "concat",
        "view",
        "",
        "eltwise",
    ]


def test_correlate_scores_the_predictor(
    device_file: Path, profiled_runs: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(p) for p in profiled_runs]
    assert main(["correlate", *files, "--device-model", str(device_file), "--format", "json"]) == 0
    found = json.loads(capsys.readouterr().out)["predictor"]
    assert found["runs"] == len(files) and found["layers"] > 0
    assert 0 <= found["within_10pct"] <= 1 and found["mape"] >= 0
    row = found["models"][0]
    assert row["error"] == pytest.approx(row["predicted_s"] / row["measured_s"] - 1)
    # One model only: no other model to fit a scale on.
    assert found["lomo_mape"] is None and row["lomo_predicted_s"] is None
    assert main(["correlate", *files, "--device-model", str(device_file)]) == 0
    assert "device-model predictor" in capsys.readouterr().out
