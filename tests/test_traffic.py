"""The traffic model against hand counts and an independent parameter count."""

from __future__ import annotations

import torch
from hypothesis import given
from torch import nn

from hardnet_analysis.analysis import analyze
from hardnet_analysis.definitions import HarDNetDef
from hardnet_analysis.graph.traced import trace_module
from hardnet_analysis.metrics.traffic import traffic
from hardnet_analysis.models import build_module
from tests.strategies import hardnets


def test_conv_bn_relu_by_hand() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU6())
    flow = traffic(trace_module(model, (1, 3, 8, 8)), "fp32").by_name()
    # conv: input 192 + weights 108 read, output 256 written, 4 bytes each
    assert (flow["0"].reads, flow["0"].writes) == (300 * 4, 256 * 4)
    assert (flow["1"].reads, flow["1"].writes) == ((256 + 16) * 4, 256 * 4)
    assert flow["2"].bytes == 512 * 4
    assert flow["1"].fused_bytes == flow["2"].fused_bytes == 0
    assert flow["0"].fused_bytes == flow["0"].bytes


class _Cat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(2, 2, 1)
        self.b = nn.Conv2d(4, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.b(torch.cat([x, self.a(x)], 1))
        return y


def test_concat_reads_inputs_and_vanishes_when_fused() -> None:
    flow = traffic(trace_module(_Cat(), (1, 2, 5, 5)), "fp16").by_name()
    assert (flow["cat"].reads, flow["cat"].writes) == (100 * 2, 100 * 2)
    assert flow["cat"].fused_bytes == 0
    assert flow["b"].fused_reads == (100 + 12 + 3) * 2  # conv still reads the whole concat


@given(hardnets())
def test_conv_traffic_is_cio_plus_weights(defn: HarDNetDef) -> None:
    """Unfused conv bytes = CIO elements + conv weight elements (counted by torch) at 4 B."""
    model = build_module(defn)
    analysis = analyze(model, 32)
    flow = traffic(analysis.graph, "fp32")
    conv_bytes = sum(n.bytes for n in flow.nodes if n.op == "conv")
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))
    assert conv_bytes == 4 * (analysis.totals.cio + weights)
    assert flow.fused_bytes <= flow.bytes
    assert not flow.unhandled


def test_unknown_op_is_reported() -> None:
    class Odd(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y: torch.Tensor = torch.sigmoid(x).mul(2)
            return y

    flow = traffic(trace_module(Odd(), (1, 1, 2, 2)))
    assert [n for n in flow.unhandled] == ["mul"]
