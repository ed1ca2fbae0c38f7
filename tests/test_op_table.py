"""The op table is complete by construction: every function torch lets a TorchFunctionMode see
is costed, elementwise, free, returns no tensor, or unsupported with a stated reason."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.overrides import get_overridable_functions

from hardnet_analysis import analyze
from hardnet_analysis.graph.trace_ops import FUNCTION_OPS, function_name
from hardnet_analysis.metrics.handlers import HANDLERS, handler_for
from hardnet_analysis.metrics.op_table import (
    ELEMENTWISE_OPS,
    FREE_OPS,
    returns_no_tensor,
    unsupported_reason,
)


def _ops() -> dict[str, str]:
    """Graph op -> one torch function name that becomes it, over every overridable function."""
    ops: dict[str, str] = {}
    for functions in get_overridable_functions().values():
        for func in functions:
            short = function_name(func)
            ops.setdefault(FUNCTION_OPS.get(short, (short,))[0], short)
    return ops


def test_every_overridable_function_is_classified() -> None:
    ops = _ops()
    assert len(ops) > 700  # torch 2.x exposes about 800
    unclassified = sorted(
        op
        for op in ops
        if handler_for(op) is None and unsupported_reason(op) is None and not returns_no_tensor(op)
    )
    assert unclassified == []


def test_classes_do_not_overlap() -> None:
    assert not set(ELEMENTWISE_OPS) & set(FREE_OPS)
    for op in _ops():
        costed = handler_for(op) is not None
        assert not (costed and unsupported_reason(op)), op
        assert not (costed and returns_no_tensor(op) and op in HANDLERS), op


def test_unsupported_ops_are_reported_with_their_reason() -> None:
    class Inverts(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = torch.linalg.inv(x) + 1
            return out

    analysis = analyze(Inverts(), (3, 3))
    (unhandled,) = analysis.unhandled
    assert unhandled.op == "linalg_inv" and "matrix decomposition" in unhandled.reason


class Products(nn.Module):
    """Every vector product the table maps to matmul, each on real operands."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 5))
        self.v = nn.Parameter(torch.randn(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        row = x.flatten()[:5]  # (5,)
        total = torch.mv(self.w, row).sum() + torch.dot(row, self.v) + torch.inner(row, row)
        total = total + torch.addmv(torch.zeros(6), self.w, row).sum()
        total = total + torch.outer(row, row).sum() + torch.addr(torch.zeros(5, 5), row, row).sum()
        batch = x.flatten()[:24].reshape(2, 3, 4)
        total = total + torch.addbmm(torch.zeros(3, 3), batch, batch.transpose(1, 2)).sum()
        return total


def test_vector_products_count_their_macs() -> None:
    # torch's FlopCounterMode counts none of these (no aten mm underneath), so by hand: mv and
    # addmv 6*5 each, dot and inner 5 each, outer and addr 5*5 each, addbmm 2*3*4*3.
    analysis = analyze(Products(), 5, in_channels=1)
    assert analysis.unhandled == ()
    assert analysis.totals.macs == 30 + 30 + 5 + 5 + 25 + 25 + 72


@pytest.mark.parametrize("cell", [nn.LSTMCell(3, 4), nn.GRUCell(3, 5), nn.RNNCell(3, 2)])
def test_recurrent_cells_are_costed(cell: nn.RNNCellBase) -> None:
    class Step(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cell = cell

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.cell(x.flatten(1)[:, :3])
            first: torch.Tensor = out[0] if isinstance(out, tuple) else out
            return first

    gates = {nn.LSTMCell: 4, nn.GRUCell: 3, nn.RNNCell: 1}[type(cell)]
    hidden = cell.hidden_size
    analysis = analyze(Step(), 2, batch=2)
    assert analysis.unhandled == ()
    assert analysis.totals.macs == 2 * gates * hidden * (3 + hidden)
