"""State dicts in the official module layout load into `create_model` (keys and shapes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hardnet_analysis import create_model
from hardnet_analysis.errors import UsageError
from tests.official_layout import OFFICIAL_ARGS, OfficialLayout


@pytest.mark.parametrize("name", sorted(OFFICIAL_ARGS))
def test_official_layout_state_dict_loads(name: str) -> None:
    with torch.device("meta"):
        reference = OfficialLayout(name).state_dict()
        model = create_model(name)
    ours = model.state_dict()
    assert list(ours) == list(reference)
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in reference.items()}


def test_weights_file_roundtrip(tmp_path: Path) -> None:
    reference = OfficialLayout("hardnet39ds")
    for p in reference.parameters():
        torch.nn.init.normal_(p)
    path = tmp_path / "hardnet39ds-0e6c6fa9.pth"
    torch.save(reference.state_dict(), path)
    model = create_model("hardnet39ds", weights=path)
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_wrong_weights_name_missing_and_unexpected_keys(tmp_path: Path) -> None:
    path = tmp_path / "hardnet68.pth"
    torch.save(OfficialLayout("hardnet68").state_dict(), path)
    with pytest.raises(UsageError, match=r"does not fit the model; missing: .*unexpected: "):
        create_model("hardnet39ds", weights=path)


def test_missing_weights_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        create_model("hardnet68", weights=tmp_path / "nope.pth")


def test_garbage_weights_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UsageError, match="cannot be read"):
        create_model("hardnet68", weights=path)
