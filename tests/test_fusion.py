"""`metrics.fusion.runtime_groups`: ONNX Runtime's CPU fusions modelled on hda's graph, checked
by hand on small modules, against counts taken from the graph itself, and node for node against
the optimized graph ORT writes for exports of several families."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from hardnet_analysis.analysis import analyze
from hardnet_analysis.metrics.conv_paths import ConvPaths, nchwc_path
from hardnet_analysis.metrics.fusion import runtime_groups
from hardnet_analysis.metrics.predict import fused_features, layer_features
from hardnet_analysis.resolve import input_shape_of, resolve
from hardnet_analysis.shapes import InputShape


class TwoBranches(nn.Module):
    """Two convs on one input summed and activated (a ResNet downsample block's shape), then a
    BN that follows no conv, a ReLU, and a conv whose output has two consumers (a SiLU)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 8, 3, padding=1)
        self.b = nn.Conv2d(4, 8, 1)
        self.bn = nn.BatchNorm2d(8)
        self.c = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.a(x) + self.b(x))
        z = torch.relu(self.bn(y))
        w: torch.Tensor = self.c(z)
        return w * torch.sigmoid(w)


def _groups(module: nn.Module, shape: tuple[int, ...]) -> dict[str, list[str]]:
    return runtime_groups(analyze(module.eval(), InputShape((shape,))))


def test_the_add_goes_to_the_conv_that_runs_second() -> None:
    groups = _groups(TwoBranches(), (1, 4, 8, 8))
    ops = list(groups.values())
    # b runs after a, so only b's kernel can read a's output as its Sum input
    assert ops[0] == ["a"]
    assert ops[1][0] == "b" and len(ops[1]) == 3  # b, the add, the ReLU
    # a BN after no conv is a kernel of its own with its ReLU as epilogue
    assert ops[2][0] == "bn" and len(ops[2]) == 2
    # c's output has two consumers (sigmoid and mul): nothing fuses into it
    assert ops[3] == ["c"]
    assert [len(g) for g in ops[4:]] == [2]  # w * sigmoid(w): ORT's QuickGelu kernel


def test_every_node_with_work_is_in_exactly_one_kernel() -> None:
    analysis = analyze("resnet18")
    groups = runtime_groups(analysis)
    owned = [n for nodes in groups.values() for n in nodes]
    expected = [r.name for r in analysis.layers if r.op not in ("input", "output")]
    assert sorted(owned) == sorted(expected)


def test_resnet18_runs_as_24_kernels() -> None:
    analysis = analyze("resnet18")
    groups = runtime_groups(analysis)
    graph = analysis.graph
    ops = {n: graph.nodes[n]["op"] for n in graph}
    convs = [g for g in groups.values() if ops[g[0]] == "conv"]
    assert len(groups) == 24 and len(convs) == 20
    # every conv owns its BN; counted from the graph, not from the groups
    assert all(ops[g[1]] == "batchnorm" for g in convs)
    assert sum("add" in (ops[n] for n in g) for g in convs) == 8
    relus = sum(ops[n] == "activation" for n in graph)
    assert sum(ops[g[-1]] == "activation" for g in convs) == relus == 17


def test_a_fused_kernel_moves_the_groups_bytes() -> None:
    """Conv 3->4 3x3 (no bias) + BN + ReLU6 on 1x3x8x8 fp32: the kernel reads the input (192),
    the weights (108) and BN's four vectors (16) and writes 256 elements: 2,288 bytes; its
    work is the conv's."""
    module = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU6())
    analysis = analyze(module.eval(), InputShape(((1, 3, 8, 8),)))
    features = layer_features(analysis, 2**20)
    fused = fused_features(analysis, features, ConvPaths("onnxruntime", (8, 4)))
    assert len(fused) == 1
    assert fused[0].bytes == (192 + 108 + 16 + 256) * 4
    assert fused[0].work == features[0].work == 2 * 4 * 3 * 9 * 64
    assert fused[0].kind == "conv_kxk"


@pytest.mark.parametrize(
    ("c_in", "c_out", "groups", "blocked"),
    [
        (136, 134, 1, True),  # input channels a multiple of 4; the output is padded
        (26, 26, 1, False),
        (6, 32, 1, True),  # fewer input channels than the block: a stem
        (12, 12, 12, True),  # depthwise, a multiple of 4
        (14, 14, 14, False),
        (48, 48, 2, True),  # 24 per group
        (96, 96, 8, False),  # 12 per group
        (64, 16, 4, False),  # 4 out per group
    ],
)
def test_the_nchwc_rule_on_convs_ort_was_seen_to_run(
    c_in: int, c_out: int, groups: int, blocked: bool
) -> None:
    """Cases probed on lone convs in ORT 1.32 on a 2-core AMD EPYC (AVX2: block 8, step 4)."""
    attrs = {"in_channels": c_in, "out_channels": c_out, "groups": groups}
    assert nchwc_path(attrs, (8, 4)) is blocked
    assert not nchwc_path(attrs, (0, 0))  # no NCHWc on this CPU: every conv in NCHW


onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.mark.parametrize(
    "name",
    [
        "resnet18",
        "mobilenet_v2",
        "densenet121",
        "hardnet39ds",
        "shufflenet_v2_x1_0",
        "efficientnet_b0",
    ],
)
def test_the_groups_are_the_kernels_ort_runs(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The groups of the exported graph equal ORT's own (its optimized graph joined back by
    ``profiler.onnxrt.kernel_owners``), kernel for kernel."""
    from hardnet_analysis.models import create_model
    from hardnet_analysis.profiler.onnxrt import export_cached, kernel_owners

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    shape = input_shape_of(resolve(name), (64, 64))
    path = export_cached(name, create_model(name).eval(), shape).path
    analysis = analyze(str(path), shape)
    ours = sorted(tuple(nodes) for nodes in runtime_groups(analysis).values())
    ort = sorted(tuple(nodes) for nodes in kernel_owners(path, analysis.graph, 1).values() if nodes)
    assert ours == ort
    assert sum(map(len, ours)) > len(ours)  # something was fused


def test_a_kernels_bytes_are_its_convs_and_what_the_fusion_adds() -> None:
    """Counted from the graph alone, for every fused kernel of ResNet-18 at 64: the conv's own
    input, weights and output, plus BN's four vectors (ORT folds them, they are still read
    once) and the residual an add reads; an activation epilogue adds nothing."""
    analysis = analyze("resnet18", InputShape(((1, 3, 64, 64),)))
    nodes, records = analysis.graph.nodes, {r.name: r for r in analysis.layers}
    fused = fused_features(
        analysis, layer_features(analysis, 2**23), ConvPaths("onnxruntime", (8, 4))
    )
    by_name = {f.name: f for f in fused}
    checked = 0
    for name, members in runtime_groups(analysis).items():
        if len(members) == 1:
            continue
        expected = records[members[0]].bytes
        for member in members[1:]:
            shape = nodes[member]["out_shape"]
            if nodes[member]["op"] == "batchnorm":
                expected += 4 * shape[1] * 4
            elif nodes[member]["op"] == "add":
                expected += shape[0] * shape[1] * shape[2] * shape[3] * 4
        assert by_name[name].bytes == expected, name
        checked += 1
    assert checked == 20  # every conv of ResNet-18 heads a kernel of several nodes


@pytest.mark.parametrize(
    "name", ["hardnet39ds", "shufflenet_v2_x1_0", "condensenet74_c4_g4_converted"]
)
def test_the_nchwc_rule_names_the_convs_ort_blocks(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`nchwc_path` at this CPU's block says, conv for conv, which convs ORT rewrote into
    ``com.microsoft.nchwc.Conv`` (these three models have convs on both paths)."""
    from hardnet_analysis.models import create_model
    from hardnet_analysis.profiler.onnxrt import (
        export_cached,
        hda_nodes_of,
        nchwc_layout,
        ownership,
        session,
    )

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    layout = nchwc_layout()
    shape = input_shape_of(resolve(name), (64, 64))
    path = export_cached(name, create_model(name).eval(), shape).path
    graph = analyze(str(path), shape).graph
    session(path, 1, tmp_path).end_profiling()
    optimized = onnx.load(tmp_path / "optimized.onnx")
    owners = ownership(onnx.load(path), optimized)
    names = hda_nodes_of(graph)
    ops = {onnx_name: graph.nodes[hda]["op"] for onnx_name, hda in names.items()}
    paths = set()
    for node in optimized.graph.node:
        convs = [names[n] for n in owners[node.name] if ops.get(n) == "conv"]
        if "Conv" in node.op_type and convs:
            blocked = node.domain == "com.microsoft.nchwc"
            assert nchwc_path(graph.nodes[convs[0]], layout) == blocked, convs[0]
            paths.add(blocked)
    assert paths == ({True, False} if layout[0] else {False})
