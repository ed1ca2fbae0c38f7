"""Resolving names: registered models, torchvision classifiers, unknown names."""

from __future__ import annotations

import pytest
import torch
import torchvision

from hardnet_analysis import analyze, create_model
from hardnet_analysis.errors import UnknownModelError
from hardnet_analysis.resolve import ModuleSpec, resolve
from tests.hookcount import hook_count


def test_torchvision_name_is_traced_and_matches_its_metadata() -> None:
    spec = resolve("resnet18")
    assert isinstance(spec, ModuleSpec)
    totals = analyze("resnet18").totals
    meta = torchvision.models.get_model_weights("resnet18").DEFAULT.meta
    assert totals.params == meta["num_params"]
    # torchvision's "_ops" is GMACs (conv + linear), rounded to 3 decimals.
    assert totals.macs / 1e9 == pytest.approx(meta["_ops"], abs=5e-4)
    with torch.device("meta"):
        counted = hook_count(spec.build(), torch.empty(1, 3, 224, 224))
    assert (totals.macs, totals.cio) == (counted.macs, counted.cio)


def test_create_model_builds_torchvision_with_classes() -> None:
    model = create_model("resnet18", num_classes=10)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_unknown_name_suggests_torchvision_names_too() -> None:
    with pytest.raises(UnknownModelError, match="resnet50"):
        resolve("resnet5")
