"""``hda calibrate --runtime onnxruntime``: benchmarks timed by ORT's own kernel events, a device
model that says its runtime and predicts ORT's fused kernels, scoring kept to its runtime, and
one-line errors for what ORT's CPU provider cannot calibrate."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from hardnet_analysis.analysis import analyze
from hardnet_analysis.cli.main import main
from hardnet_analysis.documents.device_model import DeviceModel, DeviceModels
from hardnet_analysis.errors import UsageError
from hardnet_analysis.metrics.fusion import runtime_groups
from hardnet_analysis.metrics.predict import predict
from hardnet_analysis.profiler.calibrate_ort import op_seconds
from hardnet_analysis.shapes import InputShape

FAST = ["--grid", "tiny", "--threads", "1", "--repeat", "2", "--budget", "0.001"]


def _event(name: str, op: str, ts: int, dur: int) -> dict[str, object]:
    return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur,
            "args": {"op_name": op}}  # fmt: skip


def test_a_benchmarks_time_is_its_ops_kernels() -> None:
    """Two runs of a chunk + add: ORT's Split (a view in torch) and its layout reorders are
    left out; the Add's microseconds are the run's."""
    events = [
        {"cat": "Session", "name": "model_run", "ts": 0, "dur": 100},
        _event("ReorderInput", "ReorderInput", 1, 5),
        _event("split", "Split", 10, 30),
        _event("add", "Add", 50, 20),
        {"cat": "Session", "name": "model_run", "ts": 200, "dur": 100},
        _event("split", "Split", 210, 31),
        _event("add", "Add", 250, 22),
        _event("ReorderOutput", "ReorderOutput", 280, 4),
    ]
    assert op_seconds(events) == pytest.approx([20e-6, 22e-6])


def test_a_torch_device_model_reads_as_torch(device_file: Path) -> None:
    document = json.loads(device_file.read_text())
    for model in document["models"]:
        model.pop("runtime", None)  # as files written before the runtime was recorded
    older = device_file.parent / "older.json"
    older.write_text(json.dumps(document))
    assert DeviceModel.read(older).runtime == "torch"


def test_an_unknown_runtime_is_refused_on_load(device_file: Path, tmp_path: Path) -> None:
    document = json.loads(device_file.read_text())
    document["models"][0]["runtime"] = "tensorrt"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    with pytest.raises(UsageError, match="runtime 'tensorrt' is none of torch, onnxruntime"):
        DeviceModel.read(bad)


def test_an_ort_model_predicts_per_kernel(device_file: Path) -> None:
    """The same coefficients read per ORT kernel: one layer per group, each named after its
    first node; BN and activation fused into a conv no longer pay their own kind time. With
    BN and elementwise ops costing 10 ms each, ResNet-18's 45 fused into a conv (20 BNs, 25
    ReLUs and adds) leave about 450 ms of the unfused prediction out, less what the fused
    convs' extra bytes (BN's vectors, the residual reads) cost: a few ms."""
    eager = DeviceModel.read(device_file)
    costly = tuple(
        replace(k, overhead_s=10e-3) if k.kind in ("bn", "eltwise") else k for k in eager.kinds
    )
    eager = replace(eager, kinds=costly, context=None)
    ort = replace(eager, runtime="onnxruntime", nchwc_block=8, nchwc_step=4)
    analysis = analyze("resnet18")
    groups = runtime_groups(analysis)
    fused = predict(analysis, ort)
    assert [layer.name for layer in fused.layers] == list(groups)
    unfused = predict(analysis, eager)
    assert len(fused.layers) == 24 < len(unfused.layers) == 69
    kinds = {layer.name: layer.kind for layer in unfused.layers}
    absorbed = [
        n for nodes in groups.values() for n in nodes[1:] if kinds.get(n) in ("bn", "eltwise")
    ]
    assert len(absorbed) == 45
    assert unfused.latency_s - fused.latency_s > 0.9 * len(absorbed) * 10e-3


pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def ort_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A device model from a real ``hda calibrate --runtime onnxruntime`` on the tiny grid
    (no context networks: their exports take a minute)."""
    out = tmp_path_factory.mktemp("ort") / "ort.json"
    argv = ["calibrate", *FAST, "--runtime", "onnxruntime", "--models", "none", "--out", str(out)]
    assert main([*argv, "--format", "json"]) == 0
    return out


def test_the_ort_calibration_says_its_runtime_and_fits_every_kind(ort_file: Path) -> None:
    (model,) = DeviceModels.read(ort_file).models
    assert model.runtime == "onnxruntime" and model.threads == 1
    assert model.clock == "time.perf_counter_ns"  # the wall clock, as ORT runs are timed
    kinds = {k.kind for k in model.kinds}
    assert {"conv_kxk", "conv_1x1", "conv_dw", "bn", "eltwise", "linear", "matmul"} <= kinds
    # every benchmark was timed: a kernel time is positive and below a second
    assert all(0 < s.time_s < 1 for s in model.samples)


def test_predict_with_an_ort_model_predicts_its_kernels(
    ort_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["predict", "resnet18", "--input", "64", "--device-model", str(ort_file)]
    assert main([*argv, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    (row,) = document if isinstance(document, list) else [document]
    assert len(row["layers"]) == 24 and row["latency_s"] > 0


def test_an_ort_model_is_not_scored_against_eager_runs(
    ort_file: Path, profiled_runs: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["correlate", *map(str, profiled_runs), "--device-model", str(ort_file)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "predicts runtime onnxruntime, these runs are of torch" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--thread-time",), "--thread-time clocks torch's thread"),
        (("--device", "cuda", "--strict-device"), "cuda"),
    ],
)
def test_what_ort_cannot_calibrate_is_one_line(
    extra: tuple[str, ...], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["calibrate", *FAST, "--runtime", "onnxruntime", *extra, "--out", str(tmp_path / "x")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_the_ort_context_fit_times_a_network_kernel_by_kernel(tmp_path: Path) -> None:
    """A context network in ORT (a tiny HarDNet at 32: a dynamo export of a few seconds) is
    timed whole and per kernel: one op sample per ORT kernel that is no view (24 kernels, 2 of
    them flattens), each of the kind it runs as, HarDNet's odd channel counts in NCHW."""
    out = tmp_path / "ctx.json"
    tiny = "tests/data/tinyhardnet.json"
    argv = ["calibrate", *FAST, "--runtime", "onnxruntime", "--models", tiny]
    assert main([*argv, "--context-input", "32", "--out", str(out), "--format", "json"]) == 0
    (model,) = DeviceModels.read(out).models
    assert model.context is not None
    (network,) = model.context.models
    assert network.model == tiny and tuple(network.input) == (32, 32)
    groups = runtime_groups(analyze(tiny, InputShape(((1, 3, 32, 32),))))
    assert network.ops == len(network.samples) == len(groups) - 2
    assert {"conv_kxk", "conv_nchw", "concat", "linear"} <= {s.kind for s in network.samples}
    assert all(0 < s.measured_s < network.measured_s for s in network.samples)


def test_an_ort_benchmark_is_paced_by_the_controls_around_its_calls() -> None:
    """One control before the timed calls and one after: the paced figure is the median
    kernel time over their mean; without a control there is none."""
    import torch

    from hardnet_analysis.profiler.calibrate import CalibrationSettings
    from hardnet_analysis.profiler.calibrate_ort import _timed, export_bench
    from hardnet_analysis.profiler.microbench import grid
    from tests.test_pace import CountingControl

    bench = grid("tiny")[0]
    with torch.inference_mode(False):
        model = export_bench(bench, bench.make().eval())
    x = torch.rand(bench.shape).numpy()
    settings = CalibrationSettings(threads=(1,), grid="tiny", repeat=3, budget_s=0.001)
    control = CountingControl(2e-3)
    seconds, paced = _timed(model, [x], 1, settings, control)  # type: ignore[arg-type]
    assert control.calls == 2 and paced == pytest.approx(seconds / 2e-3)
    assert _timed(model, [x], 1, settings)[1] is None
