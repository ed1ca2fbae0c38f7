"""hda against fvcore's FlopCountAnalysis on a handful of torchvision models, op by op.

fvcore (jit-traced, real forward) and hda (meta trace) agree exactly where their conventions
agree, conv and linear MACs. Each difference is a documented convention:

- fvcore also counts batch_norm (2 per element at inference), layer_norm (5 per element) and
  adaptive_avg_pool2d (1 per input element). hda, like the HarDNet paper and torchvision's
  metadata, counts conv, linear and matrix products only.
- fvcore has no handler for ``aten::scaled_dot_product_attention`` and skips it, so it misses
  ViT's attention products (q @ k^T and weights @ v: 2 * L * L * E per block). hda counts them,
  as torchvision's metadata does (17.564 GMACs for vit_b_16).
- Elementwise ops (SE-block multiplies, residual adds, activations) count in neither.
"""

from __future__ import annotations

from math import prod

import pytest
import torch
import torchvision
from fvcore.nn import FlopCountAnalysis

from hardnet_analysis import analyze
from hardnet_analysis.metrics.analysis import Analysis


def _sum(analysis: Analysis, op: str, key: str = "macs") -> int:
    rows = [r for r in analysis.layers if r.op == op]
    if key == "macs":
        return sum(r.macs for r in rows)
    if key == "out":
        return sum(prod(r.out_shape) for r in rows)
    return sum(prod(r.in_shapes[0]) for r in rows)


@pytest.mark.parametrize(
    "name", ["resnet50", "mobilenet_v2", "densenet121", "efficientnet_b0", "vit_b_16"]
)
def test_matches_fvcore_where_conventions_agree(name: str) -> None:
    # fvcore's jit tracing takes seconds per model: the CNNs run at 112 to keep the suite fast
    # (the counts are exact at any size); ViT-B/16 needs its 224.
    size = 224 if name.startswith("vit") else 112
    model = torchvision.models.get_model(name).eval()
    fv = FlopCountAnalysis(model, torch.zeros(1, 3, size, size))
    fv.unsupported_ops_warnings(False)
    fv.uncalled_modules_warnings(False)
    by_op = dict(fv.by_operator())
    ours = analyze(model, size)

    assert by_op.pop("conv") == _sum(ours, "conv")
    mha = [ours.graph.nodes[r.name] for r in ours.layers if r.op == "multi_head_attention"]
    # Two products of L*L*E per block (L tokens of width E).
    attention = sum(2 * node["tokens"] ** 2 * node["embed"] for node in mha)
    # fvcore sees MHA's input/output projections as linear layers.
    assert by_op.pop("linear") == _sum(ours, "linear") + _sum(ours, "multi_head_attention") - (
        attention
    )
    assert by_op.pop("batch_norm", 0) == 2 * _sum(ours, "batchnorm", "out")
    assert by_op.pop("layer_norm", 0) == 5 * _sum(ours, "layer_norm", "out")
    assert by_op.pop("adaptive_avg_pool2d", 0) == _sum(ours, "adaptive_avg_pool", "in")
    assert by_op == {}
    assert ("aten::scaled_dot_product_attention" in fv.unsupported_ops()) == bool(mha)
    assert ours.totals.macs == _sum(ours, "conv") + _sum(ours, "linear") + _sum(
        ours, "multi_head_attention"
    )
