"""A `torch.compile` d module analyses as the module it wraps: the same totals, the layers named
as written (no ``_orig_mod.``), and without dynamo compiling the trace; a `torch.export` program
saved as .pt2 has the totals of the module it came from."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
import torch
import torchvision
from torch import nn

from hardnet_analysis import analyze, create_model
from hardnet_analysis.cli.main import main
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


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, nn.Module]]:
    """ResNet-18 at 224 and HarDNet-39DS at 160 (concatenations, depthwise convs, pooling),
    each exported with `torch.export` and saved as .pt2."""
    out = {}
    folder = tmp_path_factory.mktemp("pt2")
    for name, model, size in (
        ("resnet18", torchvision.models.resnet18().eval(), 224),
        ("hardnet39ds", create_model("hardnet39ds").eval(), 160),
    ):
        path = folder / f"{name}.pt2"
        program = torch.export.export(model, (torch.randn(1, 3, size, size),))
        torch.export.save(program, path)
        out[name] = (path, model)
    return out


@pytest.mark.parametrize("name", ["resnet18", "hardnet39ds"])
def test_an_exported_program_has_the_totals_of_its_module(
    programs: dict[str, tuple[Path, nn.Module]], name: str
) -> None:
    """The program calls aten ops (``aten.conv2d.default``) where the module called ``F.conv2d``;
    params, MACs, CIO and bytes equal the module's, at the input it was exported with."""
    path, model = programs[name]
    seen = analyze(str(path))
    size = seen.input_shape[-1]
    assert seen.totals == analyze(model, size).totals
    assert seen.totals.params == sum(p.numel() for p in model.parameters())
    assert not seen.unhandled


def test_exported_program_errors_are_one_line(
    programs: dict[str, tuple[Path, nn.Module]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = programs["resnet18"]
    bad = tmp_path / "bad.pt2"
    bad.write_text("not a program")
    for args, expected in (
        ([str(tmp_path / "none.pt2")], "no such file"),
        ([str(bad)], "is not a torch.export program"),
        ([str(path), "--input", "320"], "Guard failed"),  # exported for 224x224 only
    ):
        assert main(["cio", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and expected in err, err
