"""A `torch.compile` d module analyses as the module it wraps: the same totals, the layers named
as written (no ``_orig_mod.``), and without dynamo compiling the trace."""

from __future__ import annotations

from typing import cast

import torch
import torchvision

from hardnet_analysis import analyze
from hardnet_analysis.graph.traced import uncompiled


def test_a_compiled_module_analyses_as_its_original() -> None:
    model = torchvision.models.resnet18()
    compiled = cast(torch.nn.Module, torch.compile(model))
    assert uncompiled(compiled) is model
    plain, seen = analyze(model, 224), analyze(compiled, 224)
    assert seen.totals == plain.totals
    assert [layer.name for layer in seen.layers] == [layer.name for layer in plain.layers]
    assert not any("_orig_mod" in layer.name for layer in seen.layers)
    assert seen.totals.params == sum(p.numel() for p in model.parameters())


def test_a_plain_module_is_its_own_original() -> None:
    model = torch.nn.Conv2d(3, 8, 3)
    assert uncompiled(model) is model
