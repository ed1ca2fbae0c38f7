"""Per-layer timing: attribution with a fake clock, names joined to the traced graph, stats,
the roofline formula."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from hardnet_analysis.backends import specs
from hardnet_analysis.graph.traced import trace_module
from hardnet_analysis.profiler.latency import ROOT, LayerTimer, Stats
from hardnet_analysis.profiler.run import layer_of_node


class TickClock:
    """Each mark is one tick later: an interval's length counts the marks inside it."""

    def __init__(self) -> None:
        self.now = 0

    def mark(self) -> int:
        self.now += 1
        return self.now

    def sync(self) -> None:
        return None

    def elapsed(self, start: int, end: int) -> float:
        return float(end - start)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.conv(x))
        return torch.cat([self.relu(y), x], 1)


def test_attribution_tiles_the_forward() -> None:
    model = nn.Sequential(Block(), nn.Conv2d(4, 1, 1))
    clock = TickClock()
    with LayerTimer(model, clock) as timer:
        times = timer.run(lambda: model(torch.ones(1, 2, 3, 3)))
    # marks: 12 hooks (6 module calls x pre/post); intervals 11; first mark at tick 1
    assert sum(times.values()) == 11
    assert set(times) == {ROOT, "0", "0.conv", "0.relu", "0.relu:1", "1"}
    assert times["0.conv"] == 1 and times["0.relu:1"] == 1


def test_layer_keys_join_every_graph_node() -> None:
    model = nn.Sequential(Block(), nn.Conv2d(4, 1, 1)).eval()
    graph = trace_module(model, (1, 2, 3, 3))
    with LayerTimer(model, TickClock()) as timer:
        samples = timer.run(lambda: model(torch.ones(1, 2, 3, 3)))
    leaves = {p for p, m in model.named_modules() if next(m.children(), None) is None}
    containers = {p for p, _ in model.named_modules()} - leaves
    for name, attrs in graph.nodes(data=True):
        if attrs["op"] in ("input", "output"):
            continue
        assert layer_of_node(name, leaves, containers) in samples, name
    assert layer_of_node("0.cat", leaves, containers) == "0"


@given(st.lists(st.floats(1e-6, 1.0), min_size=1, max_size=30))
def test_stats_against_numpy(samples: list[float]) -> None:
    s = Stats.of(samples)
    assert s.median == pytest.approx(statistics.median(samples))
    assert s.p25 == pytest.approx(float(np.percentile(samples, 25)))
    assert s.p75 == pytest.approx(float(np.percentile(samples, 75)))
    assert s.min == min(samples) and s.max == max(samples)


def test_roofline_worked_example() -> None:
    v100 = specs.DEVICES["V100"]
    macs = 56 * 56 * 64 * 256
    moved = 4 * (256 * 56 * 56 + 64 * 56 * 56 + 64 * 256)
    point = specs.roofline(macs, moved, v100, "fp32")
    assert point.bound == "compute"
    assert point.intensity == pytest.approx(2 * macs / moved)
    assert point.time_s == pytest.approx(2 * macs / 15.7e12)
    assert specs.roofline(0, 1000, v100, "fp32").bound == "memory"


def test_device_table_and_lookup() -> None:
    assert specs.find_device("NVIDIA H100 80GB HBM3").bandwidth == 3.35e12
    assert specs.find_device("NVIDIA GeForce GTX 1080 Ti").name == "1080 Ti"
    assert set(specs.DEVICES) >= {"H100", "H200", "A100", "V100", "Titan V", "Jetson Nano"}
    assert all(d.source for d in specs.DEVICES.values())
