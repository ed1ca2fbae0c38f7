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
