"""Resolving names: registered models, torchvision classifiers, unknown names."""

from __future__ import annotations

from pathlib import Path

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


def test_unknown_names_are_refused_without_importing_torchvision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    from hardnet_analysis.resolve import torchvision_classifiers

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    names = torchvision_classifiers()  # imports torchvision once and writes the cache
    assert "resnet50" in names and list(tmp_path.glob("hda/torchvision-*-classifiers.json"))
    probe = (
        "import sys\n"
        "from hardnet_analysis.errors import UnknownModelError\n"
        "from hardnet_analysis.resolve import resolve\n"
        "try:\n    resolve('hardnett68')\nexcept UnknownModelError as e:\n    print(e)\n"
        "print('torchvision' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert "did you mean hardnet68" in out[0]
    assert out[-1] == "False"  # the typo cost no torchvision import (3.5 s)
