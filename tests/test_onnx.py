"""ONNX files in: every default-domain op classified, an export's counts equal its module's
(params up to the BatchNorms the exporter folded, exactly theirs), bad files one-line errors."""

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
from hardnet_analysis.errors import UsageError
from hardnet_analysis.graph.onnx_ops import ONNX_OPS, ONNX_UNSUPPORTED, VALUE_SOURCES
from hardnet_analysis.metrics.handlers import handler_for
from hardnet_analysis.metrics.op_kinds import op_kind, op_work
from hardnet_analysis.metrics.op_table import unsupported_reason
from hardnet_analysis.profiler.onnxrt import quiet_exporter

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def test_every_default_domain_op_is_classified_once() -> None:
    ops = {s.name for s in onnx.defs.get_all_schemas_with_history() if s.domain == ""}
    assert len(ops) > 180  # onnx 1.16 defines about 190
    classes = [set(ONNX_OPS), set(ONNX_UNSUPPORTED), set(VALUE_SOURCES)]
    for op in ops:
        assert sum(op in c for c in classes) == 1, op
    for onnx_op, (op, _) in ONNX_OPS.items():
        assert handler_for(op) is not None and unsupported_reason(op) is None, (onnx_op, op)


def randomised(model: nn.Module) -> nn.Module:
    """`model` in eval mode with every float parameter and buffer drawn at random, so no two
    tensors are equal (exporters share equal initializers) and no BN folds to a zero bias."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * 0.5 + 0.5)
    return model.eval()


def export(model: nn.Module, path: Path, size: tuple[int, int] = (224, 224), **kw: object) -> Path:
    """`model` exported by PyTorch's TorchScript exporter (BN folded unless
    ``do_constant_folding=False``), or the dynamo exporter with ``dynamo=True``."""
    x = torch.randn(1, 3, *size)
    kw.setdefault("dynamo", False)
    with quiet_exporter():
        torch.onnx.export(model, (x,), str(path), **kw)  # type: ignore[arg-type]
    return path


def conv_bn_pairs(traced: Any) -> list[str]:
    """Convs whose only consumer is a BatchNorm (what an exporter folds), in a traced graph."""
    graph = traced.graph
    pairs = []
    for name, attrs in graph.nodes(data=True):
        after = list(graph.successors(name))
        if attrs["op"] == "conv" and len(after) == 1 and graph.nodes[after[0]]["op"] == "batchnorm":
            pairs.append(name)
    return pairs


def folded_params(model: nn.Module, convs: list[str]) -> int:
    """What folding removes: each folded BN's weight and bias (2 x channels), less the bias it
    gives a conv that had none (from the module itself)."""
    modules = dict(model.named_modules())
    removed = 0
    for name in convs:
        conv = modules[name]
        assert isinstance(conv, nn.Conv2d)
        removed += 2 * conv.out_channels - (0 if conv.bias is not None else conv.out_channels)
    return removed


#: One torchvision classifier per family, beside every registered model; ``HDA_ONNX_ZOO=all``
#: runs every torchvision classifier (results/onnx-zoo has that run, 2026-12-06).
_FAMILIES = [
    "alexnet",
    "convnext_tiny",
    "efficientnet_b0",
    "efficientnet_v2_s",
    "googlenet",
    "inception_v3",
    "mnasnet0_5",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "regnet_x_400mf",
    "regnet_y_400mf",
    "resnet18",
    "resnext50_32x4d",
    "shufflenet_v2_x0_5",
    "squeezenet1_0",
    "vgg11",
    "wide_resnet50_2",
    "swin_t",
    "vit_b_16",
    "maxvit_t",
]
#: Registered models an export cannot reproduce, with why.
_NOT_EXPORTED = {
    "condensenet": "its learned group convs multiply float mask buffers into their weights, "
    "and an ONNX file does not say which initializers were buffers",
    "_converted": "channel_shuffle has no ONNX export in PyTorch's TorchScript exporter",
}


#: Models whose folded export also folds tensors computed from parameters (the relative
#: position bias ``table[index]`` of every attention block becomes an initializer of its own),
#: so only their BN-kept export holds the module's parameters.
_FOLDS_PARAMETERS = ("swin", "maxvit")


#: Models whose float buffers enter the forward and stay initializers of the BN-kept export,
#: which an ONNX file cannot mark as buffers: those exports hold the module's parameters plus
#: the buffers (Swin V2: each block's relative_coords_table, 450 values, feeding its continuous
#: position bias; 5,400 in Swin V2-T, the whole difference the full zoo run found).
_BUFFERS_AS_INITIALIZERS = ("swin_v2",)


def _zoo() -> list[str]:
    from hardnet_analysis.families.registry import list_models
    from hardnet_analysis.resolve import torchvision_classifiers

    every = os.environ.get("HDA_ONNX_ZOO") == "all"
    classifiers = torchvision_classifiers() if every else _FAMILIES
    registered = [m for m in list_models() if not any(k in m for k in _NOT_EXPORTED)]
    return registered + list(classifiers)


def _module(name: str) -> tuple[nn.Module, tuple[int, int]]:
    """The module of `name` with random weights, and its native input size."""
    from hardnet_analysis.families.registry import build_module, list_models
    from hardnet_analysis.resolve import native_input_size, resolve

    target = resolve(name)
    module = build_module(target) if name in list_models() else target.build()
    size = native_input_size(target)
    if name == "fchardnet70":
        size = (512, 1024)  # the size; 1024x2048 quadruples the test's time
    return randomised(module), size


@pytest.mark.slow
@pytest.mark.parametrize("name", _zoo())
def test_an_export_counts_what_its_module_counts(name: str, tmp_path: Path) -> None:
    model, size = _module(name)
    traced = analyze(model, size)
    expected = traced.totals
    kept = analyze(export(model, tmp_path / "kept.onnx", size, do_constant_folding=False), size)
    folded = analyze(export(model, tmp_path / "folded.onnx", size), size)
    for result in (kept, folded):
        assert result.unhandled == ()
        assert (result.totals.macs, result.totals.cio) == (expected.macs, expected.cio)
    buffers = sum(b.numel() for b in model.buffers() if b.is_floating_point())
    kept_buffers = buffers if name.startswith(_BUFFERS_AS_INITIALIZERS) else 0
    assert kept.totals.params == expected.params + kept_buffers
    # what the forward never uses (GoogLeNet's auxiliary heads in eval mode) is in neither
    every = sum(p.numel() for p in model.parameters())
    assert expected.params + sum(traced.unused_params.values()) == every
    pairs = conv_bn_pairs(traced)
    assert set(folded.folded_bn) == set(pairs)
    assert kept.folded_bn == {}
    if not name.startswith(_FOLDS_PARAMETERS):
        assert folded.totals.params == expected.params - folded_params(model, pairs)
    module_convs = [r.name for r in traced.layers if r.op == "conv"]
    assert [r.name for r in folded.layers if r.op == "conv"] == module_convs


class Small(nn.Module):
    """conv-BN-ReLU twice, a residual add, pooling and a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)) + y)
        out: torch.Tensor = self.fc(torch.flatten(self.pool(y), 1))
        return out


def test_the_dynamo_exporter_says_which_bn_it_folded(tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    model = randomised(Small())
    path = export(model, tmp_path / "small.onnx", size=(32, 32), dynamo=True)
    result = analyze(path, 32)
    assert result.graph.graph["folded_bn"] == {"conv1": "bn1", "conv2": "bn2"}
    expected = analyze(model, 32).totals
    assert (result.totals.macs, result.totals.cio) == (expected.macs, expected.cio)
    # bn1, bn2 folded: 4 x 8 weights and biases out, a bias of 8 into conv1 (conv2 had one)
    assert result.totals.params == expected.params - 32 + 8
    assert [r.name for r in result.layers if r.op in ("conv", "linear")] == ["conv1", "conv2", "fc"]


def _tensor(name: str, dims: list[int]) -> Any:
    size = 1
    for d in dims:
        size *= d
    return helper.make_tensor(name, TensorProto.FLOAT, dims, [0.5] * size)


def _write(
    path: Path,
    nodes: list[Any],
    weights: list[Any],
    dims: list[int | str],
    out: str,
    opset: int = 17,
) -> Path:
    graph = helper.make_graph(
        nodes,
        "hand",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path.write_bytes(model.SerializeToString())
    return path


def hand_built(path: Path, dims: list[int | str] | None = None) -> Path:
    """Conv 3->4 3x3/1 pad 1 with bias, Relu, Shape arithmetic into a Reshape, Gemm 4*8*8->5."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Shape", ["r"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["r", "shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fw", "fb"], ["y"], transB=1),
    ]
    weights = [
        _tensor("w", [4, 3, 3, 3]),
        _tensor("b", [4]),
        _tensor("fw", [5, 256]),
        _tensor("fb", [5]),
        helper.make_tensor("zero", TensorProto.INT64, [], [0]),
        helper.make_tensor("zero1", TensorProto.INT64, [1], [0]),
        helper.make_tensor("minus1", TensorProto.INT64, [1], [-1]),
    ]
    return _write(path, nodes, weights, dims or [1, 3, 8, 8], "y")


def test_a_hand_built_graph_has_hand_counted_totals(tmp_path: Path) -> None:
    result = analyze(hand_built(tmp_path / "hand.onnx"))
    # conv: 4*3*9 + 4 = 112 params, 4*8*8 outputs * 27 = 6912 MACs, CIO 192 + 256 = 448;
    # gemm: 5*256 + 5 = 1285 params, 1280 MACs. The shape arithmetic makes no node.
    assert (result.totals.params, result.totals.macs, result.totals.cio) == (1397, 8192, 448)
    assert [r.op for r in result.layers] == [
        "input",
        "conv",
        "activation",
        "reshape",
        "linear",
        "output",
    ]
    assert result.source == "onnx"


def test_a_dynamic_size_needs_an_input_and_a_dynamic_batch_takes_batch(tmp_path: Path) -> None:
    path = hand_built(tmp_path / "dynamic.onnx", ["N", 3, "H", "W"])
    with pytest.raises(UsageError, match=r"dynamic dims \?x3x\?x\?.*--input"):
        analyze(path)
    assert analyze(path, 8, batch=2).totals.macs == 2 * 8192
    # the Gemm holds 256 inputs: another size fails in shape inference, one line
    with pytest.raises(UsageError, match="shape inference failed at input 1x3x16x16"):
        analyze(path, 16)


def test_unsupported_and_unknown_ops_are_reported_not_counted(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("FusedThing", ["r"], ["f"], domain="com.example"),
        helper.make_node("Det", ["x"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "odd",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 3])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [2]),
            helper.make_tensor_value_info("f", TensorProto.FLOAT, [2, 3, 3]),
        ],
        value_info=[helper.make_tensor_value_info("f", TensorProto.FLOAT, [2, 3, 3])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    )
    path = tmp_path / "odd.onnx"
    path.write_bytes(model.SerializeToString())
    result = analyze(path)
    reasons = {u.op: u.reason for u in result.unhandled}
    assert set(reasons) == {"com.example.FusedThing", "onnx.Det"}
    assert "outside the ONNX standard" in reasons["com.example.FusedThing"]
    assert "determinant" in reasons["onnx.Det"]
    assert result.coverage == pytest.approx(1 / 3)


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hardnet_analysis", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def test_cio_reads_an_onnx_file(tmp_path: Path) -> None:
    path = hand_built(tmp_path / "hand.onnx")
    done = _cli("cio", str(path), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert '"cio": 448' in done.stdout.replace("\n", "").replace("  ", "")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "holds no ONNX graph"),
        (b"this is not a protobuf \xff\xfe", "is not an ONNX model"),
        (None, "no such file"),
        ("dynamic", "dynamic dims"),
        ("opset", "uses ONNX opset 99"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "bad.onnx"
    if content == "dynamic":
        hand_built(path, ["N", 3, "H", "W"])
    elif content == "opset":
        hand_built(path)
        model = onnx.load(path)
        model.opset_import[0].version = 99  # newer than any onnx knows
        path.write_bytes(model.SerializeToString())
    elif isinstance(content, bytes):
        path.write_bytes(content)
    done = _cli("cio", str(path))
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_truncated_file_is_a_one_line_error(tmp_path: Path) -> None:
    whole = hand_built(tmp_path / "whole.onnx").read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(whole[: len(whole) // 2])
    done = _cli("cio", str(path))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_without_onnx_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(UsageError, match=r"hda\[onnx\]"):
        analyze("model.onnx")


def test_an_export_at_another_size_equals_the_module_there(tmp_path: Path) -> None:
    model = randomised(Small())
    path = tmp_path / "dyn.onnx"
    x = torch.randn(1, 3, 32, 32)
    with quiet_exporter():
        torch.onnx.export(
            model,
            (x,),
            str(path),
            dynamo=False,
            dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}},
            input_names=["x"],
        )
    for size in (48, (40, 64)):
        expected = analyze(model, size).totals
        got = analyze(path, size).totals
        assert (got.macs, got.cio) == (expected.macs, expected.cio)


def test_input_shape_gives_the_file_its_inputs(tmp_path: Path) -> None:
    path = hand_built(tmp_path / "dynamic.onnx", ["N", 3, "H", "W"])
    done = _cli("cio", str(path), "--input-shape", "2x3x8x8", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert analyze(path, inputs="2x3x8x8").totals.macs == 2 * 8192
    for bad, message in (("1x3x8", "is ?x3x?x?, not 1x3x8"), ("y=1x3x8x8", "no input 'y'")):
        done = _cli("cio", str(path), "--input-shape", bad)
        assert done.returncode == 2 and message in done.stderr, done.stderr
    done = _cli("cio", str(path), "--input-shape", "1x3x8x8", "--input-shape", "1x3x8x8")
    assert done.returncode == 2 and "takes 1 inputs (x ?x3x?x?); 2 given" in done.stderr


def test_an_exported_resize_keeps_its_mode_and_work(tmp_path: Path) -> None:
    # ONNX names the modes per axis (linear, cubic): the export's Resize nodes read the same
    # taps as the module's interpolate calls, 4 per bilinear output and 16 per bicubic one.
    class Resample(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            up = nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear")
            return up + nn.functional.interpolate(x, scale_factor=2.0, mode="bicubic")

    graph = analyze(export(Resample(), tmp_path / "resample.onnx", (16, 16))).graph
    resizes = [graph.nodes[n] for n in graph if graph.nodes[n]["op"] == "interpolate"]
    assert sorted(a["mode"] for a in resizes) == ["cubic", "linear"]
    outputs = 3 * 32 * 32
    assert sorted(op_work(a, 0) for a in resizes) == [outputs * 4, outputs * 16]
    assert {op_kind(a) for a in resizes} == {"resize"}
