"""The micro-benchmark grids: each benchmark measures the kind it says, as `op_kind` reads its
traced graph (a benchmark filed under the wrong kind would fit that kind to another op)."""

from __future__ import annotations

import pytest

from hardnet_analysis.graph.traced import trace_module
from hardnet_analysis.metrics.op_kinds import op_kind
from hardnet_analysis.profiler.microbench import grid


@pytest.mark.parametrize("size", ["quick", "tiny"])
def test_each_benchmark_traces_to_its_kind(size: str) -> None:
    for bench in grid(size):
        graph = trace_module(bench.make().eval(), bench.shape, bench.label)
        kinds = {op_kind(d) for _, d in graph.nodes(data=True)} - {""}
        assert bench.kind in kinds, (bench.label, kinds)


def test_strided_1x1_benchmarks_cover_downsample_shapes() -> None:
    # The full grid's stride-2 1x1 convs: channels 16-512 doubling, sides 14-112, and the odd
    # channel counts; a ResNet-50 downsample (256 -> 512 at 56) is among them.
    labels = {b.label for b in grid("full") if b.kind == "conv_1x1_strided"}
    assert len(labels) == 37
    assert {"conv1 256->512 /2 @56", "conv1 16->32 /2 @112", "conv1 20->24 /2 @56"} <= labels


def test_depthwise_benchmarks_reach_the_largest_depthwise_inputs_of_320_inputs() -> None:
    # MobileNetV2's and EfficientNet-B0's depthwise convs at 320x320, their input bytes read by
    # forward hooks: the largest of each stride is at most 1.25x the full grid's largest
    # depthwise benchmark of that stride, so the fit does not extrapolate to them.
    import torch
    import torchvision

    inputs: dict[int, list[int]] = {1: [], 2: []}

    def hook(m: torch.nn.Module, args: tuple[torch.Tensor, ...], _: object) -> None:
        if isinstance(m, torch.nn.Conv2d) and m.groups == m.in_channels > 1:
            inputs[m.stride[0]].append(args[0].numel() * 4)

    for net in (torchvision.models.mobilenet_v2(), torchvision.models.efficientnet_b0()):
        handles = [m.register_forward_hook(hook) for m in net.modules()]
        with torch.no_grad():
            net.eval()(torch.zeros(1, 3, 320, 320))
        for handle in handles:
            handle.remove()
    benched: dict[int, list[int]] = {1: [], 2: []}
    for b in grid("full"):
        if b.kind == "conv_dw":
            conv = b.make()
            assert isinstance(conv, torch.nn.Conv2d)
            benched[conv.stride[0]].append(b.shape[1] * b.shape[2] * b.shape[3] * 4)
    for stride in (1, 2):
        assert max(inputs[stride]) <= 1.25 * max(benched[stride]), stride
