"""`hda profile --runtime onnxruntime`: ORT's kernels joined to hda's nodes, run files that say
their runtime, and one-line errors for what ORT's CPU provider cannot do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from hardnet_analysis.analysis import analyze
from hardnet_analysis.documents.profile_run import ProfileRun
from hardnet_analysis.metrics.correlate import device_label
from hardnet_analysis.profiler.allocator import FAULT_WARNING
from hardnet_analysis.profiler.onnxrt import (
    export_cached,
    hda_nodes_of,
    kernel_times,
    ownership,
    session,
)
from hardnet_analysis.shapes import InputShape

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


class Residual(nn.Module):
    """conv-BN-ReLU, then conv-BN plus the first conv's output and a ReLU (which ORT's NCHWc
    transformer, where the CPU has it, fuses into the second conv's kernel), pooling and a
    classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        z = self.relu(self.bn2(self.conv2(y)) + y)
        out: torch.Tensor = self.fc(z.mean((2, 3)))
        return out


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "hda" / "onnx"


def test_each_fused_kernel_owns_its_conv_bn_add_and_relu(cache: Path, tmp_path: Path) -> None:
    shape = InputShape(((1, 8, 16, 16),))
    exported = export_cached("residual", Residual().eval(), shape)
    assert exported.path.parent == cache and "dynamo" in exported.how
    session(exported.path, 1, tmp_path)  # writes the optimized graph ORT runs
    optimized = onnx.load(tmp_path / "optimized.onnx")
    owners = ownership(onnx.load(exported.path), optimized)
    graph = analyze(str(exported.path), shape).graph
    names = hda_nodes_of(graph)
    groups = {opt: sorted(names[n] for n in nodes if n in names) for opt, nodes in owners.items()}
    owned = [n for g in groups.values() for n in g]
    # every node of the exported graph that does work is in exactly one kernel
    assert sorted(owned) == sorted(names.values())
    # the exporter folded both BNs; ORT fuses the first ReLU into its conv on any CPU
    assert ["conv1", "relu"] in groups.values()
    for node in optimized.graph.node:
        kept = node.name in {n.name for n in onnx.load(exported.path).graph.node}
        if kept:  # a node ORT left alone owns itself
            assert len(owners[node.name]) == 1
        if node.op_type == "Conv" and len(node.input) == 4:  # NCHWc conv with a Sum input
            assert groups[node.name] == ["add", "conv2", "relu:1"]


def test_an_export_is_made_once(cache: Path) -> None:
    shape = InputShape(((1, 8, 16, 16),))
    first = export_cached("residual", Residual().eval(), shape)
    stamp = first.path.stat().st_mtime_ns
    again = export_cached("residual", Residual().eval(), shape)
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp
    wider = nn.Sequential(nn.Conv2d(8, 16, 1))
    assert export_cached("residual", wider, shape).path != first.path  # another structure


def test_kernel_times_are_grouped_by_run() -> None:
    events: list[dict[str, Any]] = [
        {"cat": "Session", "name": "model_run", "ts": 100, "dur": 50},
        {"cat": "Node", "name": "conv_kernel_time", "ts": 110, "dur": 20},
        {"cat": "Node", "name": "conv_fence_before", "ts": 109, "dur": 1},
        {"cat": "Node", "name": "relu_kernel_time", "ts": 131, "dur": 5},
        {"cat": "Session", "name": "model_run", "ts": 200, "dur": 40},
        {"cat": "Node", "name": "conv_kernel_time", "ts": 205, "dur": 30},
        {"cat": "Session", "name": "SequentialExecutor::Execute", "ts": 200, "dur": 40},
    ]
    assert kernel_times(events) == [{"conv": 20e-6, "relu": 5e-6}, {"conv": 30e-6}]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hardnet_analysis", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_profile_runs_the_export_in_onnxruntime(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    args = ["profile", "hardnet39ds", "--input", "64", "--runtime", "onnxruntime"]
    args += ["--threads", "1", "--repeat", "3", "--warmup", "1", "--out", str(tmp_path / "runs")]
    done = _cli(*args, env=env)
    assert done.returncode == 0, done.stderr
    (path,) = (tmp_path / "runs").glob("*.json")
    assert path.name == "hardnet39ds-64x64-onnxruntime-cpu-fp32-b1-t1-r3.json"
    run = ProfileRun.read(path)
    assert run.runtime is not None and run.runtime.name == "onnxruntime"
    assert run.runtime.optimization == "all" and run.ops is not None
    assert run.ops.source == "onnxruntime profiler"
    assert device_label(run).startswith("onnxruntime cpu ")
    # the timing is bracketed by two wall-clock probes (ORT's threads are its own)
    assert [(p.threads, p.thread_time) for p in run.probes()] == [(1, False), (1, False)]
    # and paced by a wall-clock control beside each of its 3 runs
    assert run.pace is not None and len(run.pace.controls.seconds) == 3
    assert (run.pace.controls.threads, run.pace.controls.thread_time) == (1, False)
    # and so are the 3 profiled runs, which give every timed kernel its own paced figure
    assert run.ops.controls is not None and len(run.ops.controls.seconds) == 3
    assert run.ops.controls.comparable(run.pace.controls)
    for layer in run.layers:
        assert set(layer.node_paced or {}) == set(layer.node_times or {})
    assert run.subnormals is None  # ORT's kernels' inputs are not torch's to look at
    assert run.page_faults is not None and run.page_faults < FAULT_WARNING  # its arena's own
    # every conv of the export is in exactly one kernel's layer, and the kernels cover the run
    nodes = [n for layer in run.layers for n in layer.nodes]
    assert len(nodes) == len(set(nodes))
    convs = sum(1 for layer in run.layers for op in layer.ops if op == "conv")
    assert convs == len(run.layers) - sum(1 for layer in run.layers if "conv" not in layer.ops)
    # loose: 64x64 takes about a millisecond, and a busy machine stretches the whole runs
    assert 0.1 < run.layer_sum_ratio < 3.0
    # the kernels' bytes: every layer has them, and they sum to the runtime's figure, below
    # hda's unfused view of the same graph (BN, ReLU and adds run inside conv kernels)
    assert all(layer.kernel_bytes is not None for layer in run.layers)
    assert sum(layer.kernel_bytes or 0 for layer in run.layers) == run.runtime.kernel_bytes
    assert run.runtime.kernel_bytes < run.totals.model_bytes
    rules = {rule["op"]: rule for rule in run.runtime.fusion}
    assert rules["activation"]["runtime"] > 0
    assert "joined to hda nodes" in done.stderr
    again = _cli(*args, env=env)  # the run is there: skipped, the export is cached
    assert again.returncode == 0 and "done already" in again.stderr


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--dtype", "bf16"), "fp32 NCHW export"),
        (("--channels-last",), "fp32 NCHW export"),
        (("--device", "cuda"), "--device cpu"),
        (("--thread-time",), "--thread-time clocks torch's thread"),
    ],
)
def test_what_ort_cannot_do_is_one_line(extra: tuple[str, ...], message: str) -> None:
    done = _cli("profile", "hardnet39ds", "--runtime", "onnxruntime", *extra)
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_an_onnx_file_needs_the_onnx_runtime(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    export_cached_file(path)
    done = _cli("profile", str(path))
    assert done.returncode == 2 and "--runtime onnxruntime" in done.stderr


def export_cached_file(path: Path) -> None:
    model = Residual().eval()
    torch.onnx.export(model, (torch.randn(1, 8, 16, 16),), str(path), dynamo=False)


def test_a_file_ort_cannot_run_is_one_line(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Mystery", ["x"], ["y"], domain="com.example")]
    graph = helper.make_graph(
        nodes,
        "odd",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])],
        value_info=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    path = tmp_path / "odd.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=opsets).SerializeToString())
    done = _cli("profile", str(path), "--runtime", "onnxruntime", "--input", "4")
    assert done.returncode == 2 and "cannot run odd.onnx" in done.stderr, done.stderr
    # the error is the last line; the warning about the unknown op comes before it
    assert done.stderr.strip().splitlines()[-1].startswith("hda profile: error:")


class PreActivation(nn.Module):
    """BN-ReLU-conv on a concatenation of two convs (DenseNet's order): the BN has no conv to fold
    into, and cannot fold into the conv after it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(32, 32, 3, padding=1)
        self.conv1 = nn.Conv2d(32, 32, 3, padding=1)
        self.norm = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(64, 32, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.conv0(x), self.conv1(x)], 1)
        out: torch.Tensor = self.conv(self.relu(self.norm(y)))
        return out


def test_a_bn_that_cannot_fold_is_a_kernel_of_its_own(cache: Path) -> None:
    """ORT runs it as a BatchNormalization kernel, or (NCHWc CPUs) as a per-channel conv named
    ``<value>_bn_nchwc``: either way it owns the BN and the ReLU after it, not the next conv."""
    shape = InputShape(((1, 32, 16, 16),))
    exported = export_cached("preactivation", PreActivation().eval(), shape)
    graph = analyze(str(exported.path), shape).graph
    from hardnet_analysis.profiler.onnxrt import kernel_owners

    groups = [sorted(nodes) for nodes in kernel_owners(exported.path, graph, 1).values()]
    assert ["norm", "relu"] in groups or (["norm"] in groups and ["relu"] in groups)
    assert ["conv"] in groups
