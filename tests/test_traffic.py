"""The traffic model against hand counts and an independent parameter count."""

from __future__ import annotations

import torch
from hypothesis import given
from torch import nn

from hardnet_analysis.analysis import analyze
from hardnet_analysis.families import build_module
from hardnet_analysis.families.hardnet import HarDNetDef
from hardnet_analysis.graph.traced import trace_module
from hardnet_analysis.metrics.handlers import Cost
from hardnet_analysis.metrics.traffic import fusion_rules, grouped_traffic, traffic
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
            y: torch.Tensor = torch.linalg.inv(torch.sigmoid(x).mul(2))
            return y

    flow = traffic(trace_module(Odd(), (1, 1, 2, 2)))
    assert [n for n in flow.unhandled] == ["linalg_inv"]
    # mul has a handler in the one table: it reads its input and writes its output.
    assert flow.by_name()["mul"].bytes == 2 * 4 * 4


def test_conv1d_model_has_traffic() -> None:
    # The traffic model used to unpack `kh, kw = kernel` and died on any Conv1d.
    model = nn.Sequential(nn.Conv1d(3, 8, 5, padding=2), nn.ReLU())
    flow = traffic(trace_module(model, (1, 3, 40)), "fp32").by_name()
    assert flow["0"].reads == (3 * 40 + 8 * 3 * 5 + 8) * 4
    assert flow["0"].writes == 8 * 40 * 4
    assert flow["1"].fused_bytes == 0


def test_transposed_conv_is_a_convolution_everywhere() -> None:
    # A decoder with ConvTranspose2d used to get CIO > 0 but conv MACs 0, MoC 0.0, min MoC None.
    model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ConvTranspose2d(64, 32, 2, 2))
    totals = analyze(model, 28).totals
    up = 28 * 28 * 64 * 32 * 4  # every input element into (C_out/groups) * 2 * 2 outputs
    assert totals.conv_layers == 2
    assert totals.conv_macs == totals.macs == 28 * 28 * 64 * 3 * 9 + up
    first_moc = 28 * 28 * 64 * 27 / (28 * 28 * 3 + 28 * 28 * 64)  # 25.8
    transposed_moc = up / (28 * 28 * 64 + 56 * 56 * 32)  # 42.7
    assert totals.min_moc == min(first_moc, transposed_moc)
    decoder = analyze(nn.ConvTranspose2d(64, 32, 2, 2), 28).totals
    assert decoder.min_moc == decoder.moc == transposed_moc
    assert totals.moc == totals.conv_macs / totals.cio


def test_totals_bytes_equal_the_traffic_view() -> None:
    analysis = analyze("hardnet39ds", 64, dtype="fp16")
    flow = traffic(analysis.graph, "fp16")
    assert (analysis.totals.bytes, analysis.totals.fused_bytes) == (flow.bytes, flow.fused_bytes)
    assert analysis.totals.act_bytes == sum(n.writes for n in flow.nodes)


def test_handlers_can_be_extended_and_overridden_per_call() -> None:
    class Odd(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y: torch.Tensor = torch.linalg.inv(x)
            return y

    assert [u.op for u in analyze(Odd(), 4).unhandled] == ["linalg_inv"]
    counted = analyze(Odd(), 4, handlers={"linalg_inv": lambda node: Cost(macs=7)})
    assert counted.unhandled == () and counted.totals.macs == 7
    # An override wins over the built-in entry for this call only.
    plain = analyze("hardnet39ds", 32)
    no_bn = analyze("hardnet39ds", 32, handlers={"batchnorm": lambda node: Cost()})
    assert no_bn.totals.params < plain.totals.params
    assert analyze("hardnet39ds", 32).totals == plain.totals


def _conv_bn_relu6() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU6())


def test_a_fused_kernel_moves_what_enters_and_leaves_it() -> None:
    analysis = analyze(_conv_bn_relu6(), 8)
    (kernel,) = grouped_traffic(analysis, {"k": ["0", "1", "2"]})
    # input 192 + weights 108 + BN's four vectors 16 read, 256 written, fp32
    assert (kernel.reads, kernel.writes) == ((192 + 108 + 16) * 4, 256 * 4)
    alone = grouped_traffic(analysis, {n: [n] for n in ("0", "1", "2")})
    assert sum(k.bytes for k in alone) == 2224 + 2112 + 2048  # each node its own kernel


def test_a_residual_add_inside_a_kernel_reads_the_skip_once() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 1, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.conv(x) + x)

    analysis = analyze(Block(), 8, in_channels=4)
    names = [r.name for r in analysis.layers if r.op not in ("input", "output")]
    (kernel,) = grouped_traffic(analysis, {"k": names})
    assert (kernel.reads, kernel.writes) == ((256 + 16) * 4, 256 * 4)  # x once, weights
    rules = {r.op: r for r in fusion_rules(analysis, {"k": names})}
    assert (rules["add"].hda, rules["add"].runtime) == (0, 1)  # hda's view keeps the add
    assert (rules["activation"].hda, rules["activation"].runtime) == (1, 1)


def test_fusion_rules_count_what_each_side_fuses() -> None:
    analysis = analyze(_conv_bn_relu6(), 8)
    apart = {r.op: r for r in fusion_rules(analysis, {n: [n] for n in ("0", "1", "2")})}
    assert (apart["batchnorm"].hda, apart["batchnorm"].runtime) == (1, 0)
    together = {r.op: r for r in fusion_rules(analysis, {"k": ["0", "1", "2"]})}
    assert together["batchnorm"].both == together["activation"].both == 1
