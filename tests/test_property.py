"""Property test: for random valid HarDNet definitions, the analytic graph, the traced torch
model and an independent hook count agree exactly, and the torch forward output has the shape
the graph says."""

from __future__ import annotations

import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from hardnet_analysis import analyze, create_model
from hardnet_analysis.errors import ShapeError
from hardnet_analysis.families.hardnet import HarDNetDef
from tests.hookcount import hook_count
from tests.strategies import hardnets


@given(
    defn=hardnets(), height=st.integers(9, 71), width=st.integers(9, 71), batch=st.integers(1, 3)
)
def test_analytic_equals_traced_and_hooks(
    defn: HarDNetDef, height: int, width: int, batch: int
) -> None:
    try:
        analytic = analyze(defn, (height, width), batch=batch)
    except ShapeError:
        assume(False)
        raise
    model = create_model(defn).eval()
    traced = analyze(model, (height, width), batch=batch)
    assert traced.totals == analytic.totals
    assert traced.layers == analytic.layers

    x = torch.randn(batch, 3, height, width)
    counted = hook_count(model, x)
    assert (analytic.totals.macs, analytic.totals.cio) == (counted.macs, counted.cio)
    assert analytic.totals.params == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        assert tuple(model(x).shape) == analytic.output_shape
