"""Every torchvision classifier, traced on meta tensors, against torchvision's own metadata.

Parameters are checked against ``sum(p.numel())`` of the built module; MACs against
``get_model_weights(name).DEFAULT.meta["_ops"]``, which is GMACs (one multiply-add counted once,
conv, linear and matrix products: ViT/Swin attention and MaxViT's einsums included) at the
weights' evaluation crop, rounded to 3 decimals.
"""

from __future__ import annotations

import pytest
import torch
import torchvision

from hardnet_analysis.graph.traced import trace_module
from hardnet_analysis.metrics.analysis import Analysis, measure_graph

NAMES = torchvision.models.list_models(module=torchvision.models)

#: Modules that eval-mode forward never calls: the auxiliary classifiers of GoogLeNet and
#: Inception v3. They are not in ``totals.params`` but listed in ``unused_params``.
AUX_PREFIX = {"googlenet": ("aux1.", "aux2."), "inception_v3": ("AuxLogits.",)}
#: torchvision's num_params counts Inception v3's aux head (its weights keep it) but not
#: GoogLeNet's (its weights drop aux1/aux2).
META_COUNTS_AUX = {"inception_v3"}


def _crop(name: str) -> int:
    weights = torchvision.models.get_model_weights(name).DEFAULT
    crop: int = weights.transforms().crop_size[0]
    return crop


def _traced(name: str) -> tuple[torch.nn.Module, Analysis, int]:
    size = _crop(name)
    # ViT checks its input size against image_size; the SWAG weights of vit_h_14 run at 518.
    kwargs = {"image_size": size} if name.startswith("vit_") else {}
    with torch.device("meta"):
        try:
            model = torchvision.models.get_model(name, **kwargs)
        except NotImplementedError:  # RegNet computes its widths with tensors while building
            model = None
    if model is None:
        from hardnet_analysis.resolve import resolve

        model = resolve(name).build(device="meta")
    graph = trace_module(model, (1, 3, size, size), name)
    return model, measure_graph(graph, source="traced"), size


@pytest.mark.parametrize("name", NAMES)
def test_params_and_macs_match_torchvision(name: str) -> None:
    model, analysis, _ = _traced(name)
    assert analysis.unhandled == (), f"ops without a handler: {analysis.unhandled[:5]}"
    assert analysis.coverage == 1.0
    numel = sum(p.numel() for p in model.parameters())
    unused = analysis.unused_params
    assert analysis.totals.params + sum(unused.values()) == numel
    assert all(k.startswith(AUX_PREFIX.get(name, ("-",))) for k in unused), sorted(unused)[:3]
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    with_aux = name in META_COUNTS_AUX
    assert (
        analysis.totals.params + (numel - analysis.totals.params) * with_aux == meta["num_params"]
    )
    gmacs = analysis.totals.macs / 1e9
    # Within 0.5%, or within the metadata's rounding to 3 decimals for the smallest models
    # (shufflenet_v2_x0_5: 0.0405 GMACs is published as 0.040).
    assert abs(gmacs - meta["_ops"]) <= max(0.005 * meta["_ops"], 0.0005 + 1e-9)
