"""The tracer on small modules: every op family, functional forms, sharing, odd outputs, errors.

Expected MACs are written out by hand from the layer hyper-parameters; shapes come from a real
CPU forward of the same module, so the meta trace is checked against actual execution.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hardnet_analysis import analyze
from hardnet_analysis.errors import UsageError
from hardnet_analysis.graph.traced import trace_module


class Zoo(nn.Module):
    """One of each op family, as modules and in functional form."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)  # 8x8 -> 4x4
        self.dw = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8, bias=False)
        self.grouped = nn.Conv2d(8, 8, 1, groups=2)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)  # 4x4 -> 8x8
        self.bn = nn.BatchNorm2d(4)
        self.gn = nn.GroupNorm(2, 4)
        self.ln = nn.LayerNorm(4)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(16, 5)
        self.w = nn.Parameter(torch.ones(8, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv(x))
        y = y + self.dw(y) * torch.sigmoid(self.grouped(y))
        z = self.gn(self.bn(self.up(y)))  # (1, 4, 8, 8)
        z = F.interpolate(z, scale_factor=0.5) - F.max_pool2d(z, 2)  # (1, 4, 4, 4)
        a, b = torch.chunk(z, 2, dim=1)
        z = torch.cat([b, a], 1).permute(0, 2, 3, 1).contiguous().reshape(1, -1, 4)
        z = self.ln(z).softmax(-1)  # (1, h*w, 4)
        attn = z.transpose(1, 2) @ z  # (1, 4, 4), inner h*w
        f = F.conv2d(x, self.w)  # functional conv with a raw parameter
        pooled = self.pool(f[:, :4]).flatten(1)  # (1, 16)
        out: torch.Tensor = self.fc(pooled) + attn.sum()
        return out


def test_every_op_is_handled_and_macs_are_exact() -> None:
    model = Zoo()
    analysis = analyze(model, 8)
    assert analysis.unhandled == () and analysis.coverage == 1.0
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    macs = {r.name: r.macs for r in analysis.layers if r.macs}
    assert macs == {
        "conv": 4 * 4 * 8 * 3 * 9,
        "dw": 4 * 4 * 8 * 1 * 9,
        "grouped": 4 * 4 * 8 * 4,
        "up": 4 * 4 * 8 * 4 * 4,  # each input element feeds C_out * k*k outputs
        "matmul": 4 * 4 * 16,
        "conv2d": 8 * 8 * 8 * 3,
        "fc": 16 * 5,
    }
    ops = {r.op for r in analysis.layers}
    assert {"conv_transpose", "layer_norm", "group_norm", "interpolate", "chunk"} <= ops
    cio = {r.name: r.cio for r in analysis.layers if r.cio}
    assert cio["up"] == 8 * 4 * 4 + 4 * 8 * 8


def test_shapes_equal_a_real_forward() -> None:
    model = Zoo().eval()
    real: dict[str, tuple[int, ...]] = {}
    for name, module in model.named_modules():
        if name:
            module.register_forward_hook(
                lambda m, i, o, name=name: real.__setitem__(name, tuple(o.shape))
            )
    with torch.no_grad():
        out = model(torch.randn(1, 3, 13, 11))
    analysis = analyze(model, "13x11")
    traced = {r.name: r.out_shape for r in analysis.layers}
    assert {k: traced[k] for k in real} == real
    assert analysis.output_shape == tuple(out.shape)


class Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Conv2d(4, 4, 3, padding=1)
        self.alias = self.block  # the same module under two names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.alias(self.block(self.block(x)))
        return out


def test_shared_module_counts_params_once_and_macs_every_call() -> None:
    analysis = analyze(Shared(), 8, in_channels=4)
    convs = [r for r in analysis.layers if r.op == "conv"]
    assert len(convs) == 3
    assert analysis.totals.params == 4 * 4 * 9 + 4
    assert analysis.totals.macs == 3 * (8 * 8 * 4 * 4 * 9)
    assert analysis.totals.cio == 3 * 2 * (4 * 8 * 8)


class ControlFlow(nn.Module):
    """Shape-dependent Python control flow and a non-tensor argument: torch.fx's symbolic tracing
    fails on this module (it cannot branch on a Proxy), the meta tracer runs it."""

    def __init__(self) -> None:
        super().__init__()
        self.small = nn.Conv2d(3, 4, 1)
        self.large = nn.Conv2d(3, 4, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, scale: float = 2.0) -> dict[str, Any]:
        y = self.large(x) if x.shape[-1] > 16 else self.small(x)
        ones = torch.ones(y.shape[1])  # created inside forward without a device
        return {"logits": y * scale + ones.view(1, -1, 1, 1), "pair": (y, y.mean())}


def test_control_flow_dict_outputs_and_factories() -> None:
    with pytest.raises(Exception, match=r"Proxy|symbolically traced"):
        torch.fx.symbolic_trace(ControlFlow())
    for size, conv in ((32, "large"), (8, "small")):
        analysis = analyze(ControlFlow(), size)
        assert [r.name for r in analysis.layers if r.op == "conv"] == [conv]
        assert [r.op for r in analysis.layers].count("output") == 3


class NeedsValues(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.sum() > 0 else -x


def test_value_dependent_model_runs_on_real_tensors_and_is_marked() -> None:
    # `if x.sum() > 0` needs a value: the meta run breaks at the bool, the real one passes and
    # every node after the read is marked as depending on it.
    graph = trace_module(NeedsValues(), (1, 3, 8, 8))
    assert graph.graph["real_run"]["where"] == "module '(top level)', op bool"
    assert graph.graph["data_dependent"] == {"(top level):bool": "value read (bool)"}
    assert graph.nodes["output"]["depends_on"] == "(top level):bool"
    assert "depends_on" not in graph.nodes["sum"]  # read before the value was


class FailsOnValues(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # the stand-in input is in [0, 1): positive
            raise ValueError("positive input")
        return x


def test_model_failing_on_real_tensors_too_says_where_it_broke() -> None:
    expected = r"FailsOnValues cannot be traced on real tensors \(module '\(top level\)', op bool\)"
    with pytest.raises(UsageError, match=expected):
        trace_module(FailsOnValues(), (1, 3, 8, 8))


def test_unknown_ops_are_listed_with_coverage() -> None:
    class Odd(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = torch.linalg.inv(F.relu(x))
            return out

    analysis = analyze(Odd(), 8)
    assert [u.op for u in analysis.unhandled] == ["linalg_inv"]
    assert analysis.coverage == pytest.approx(0.5)


def test_einsum_and_attention() -> None:
    class Attn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = nn.MultiheadAttention(16, 4, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            t = x.flatten(2).transpose(1, 2)  # (1, 64, 16) tokens
            a = self.mha(t, t, t, need_weights=False)[0]
            b = F.scaled_dot_product_attention(t, t, t)
            return torch.einsum("bnc,bmc->bnm", a, b)

    analysis = analyze(Attn(), 8, in_channels=16)
    macs = {r.op: r.macs for r in analysis.layers if r.macs}
    n, e = 64, 16
    assert macs == {
        "multi_head_attention": 4 * n * e * e + 2 * n * n * e,
        "attention": n * n * (e + e),
        "einsum": n * n * e,
    }
    assert analysis.totals.params == sum(p.numel() for p in Attn().parameters())
