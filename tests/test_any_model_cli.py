"""`hda cio` on callables and files, `hda definition`, `hda graph`, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest

from hardnet_analysis.cli.main import main
from hardnet_analysis.families.serialize import load_definition
from tests.test_cli import run

NET_PY = """
import torch
from torch import nn


def make_model(width=8):
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.Conv2d(width, 4, 1))


def not_a_model():
    return 42


class NeedsValues(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            raise ValueError("positive input")
        return x


def untraceable():
    return NeedsValues()
"""


@pytest.fixture
def net_py(tmp_path: Path) -> Path:
    path = tmp_path / "net.py"
    path.write_text(NET_PY)
    return path


def test_file_callable_with_kwargs(capsys: pytest.CaptureFixture[str], net_py: Path) -> None:
    code, out, _ = run(
        capsys,
        "cio",
        f"{net_py}:make_model",
        "--input",
        "10",
        "--kwargs",
        '{"width": 16}',
        "--format",
        "json",
    )
    totals = json.loads(out)["totals"]
    assert code == 0
    # conv 3->16 3x3 on 10x10 -> 8x8, then 1x1 16->4: MACs and params written out by hand.
    assert totals["macs"] == 8 * 8 * 16 * 27 + 8 * 8 * 4 * 16
    assert totals["params"] == 16 * 27 + 16 + 4 * 16 + 4


def test_module_callable(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "cio", "torchvision.models:resnet18", "--format", "json")
    assert code == 0 and json.loads(out)["totals"]["params"] == 11_689_512


@pytest.mark.parametrize(
    ("target", "extra", "message"),
    [
        ("missing.py:make", (), "file 'missing.py' does not exist"),
        ("no_such_pkg.models:make", (), "cannot import module 'no_such_pkg.models'"),
        ("{net}:nothing", (), "'nothing' in '{net}' is not there; callables there:"),
        ("{net}:not_a_model", (), "returned a int, not a torch nn.Module"),
        ("{net}:untraceable", (), "{net}:untraceable cannot be traced on real tensors"),
        ("{net}:make_model", ("--kwargs", '{"depth": 2}'), "unexpected keyword argument"),
        ("{net}:make_model", ("--kwargs", "[1]"), "is not a JSON object"),
        ("hardnet68", ("--kwargs", "{}"), None),
        ("hardnet68", ("--kwargs", '{"a": 1}'), "--kwargs applies to"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str],
    net_py: Path,
    target: str,
    extra: tuple[str, ...],
    message: str | None,
) -> None:
    code, _, err = run(capsys, "cio", target.format(net=net_py), *extra, "--format", "json")
    if message is None:
        assert code == 0
        return
    assert code == 2
    assert message.format(net=net_py) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_definition_roundtrip(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "mine.json"
    code, _, _ = run(capsys, "definition", "hardnet39ds", "--out", str(out))
    assert code == 0 and load_definition(out).name == "hardnet39ds"
    code, printed, _ = run(capsys, "cio", str(out), "--format", "json")
    assert json.loads(printed)["totals"]["params"] == 3_488_228
    assert list(tmp_path.iterdir()) == [out]  # the atomic write left no temporary file


def test_definition_of_a_torchvision_model_says_it_has_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # It used to say "unknown model 'resnet50'", though resnet50 is known to every other command.
    code, _, err = run(capsys, "definition", "resnet50", "--out", str(tmp_path / "r.json"))
    assert code == 2 and "torch module builder with no hda definition" in err
    assert "unknown model" not in err and not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("model", ["hardnet68ds", "mobilenet_v2"])
def test_graph_export_reads_back(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, model: str
) -> None:
    from hardnet_analysis import analyze

    graph = analyze(model).graph
    graphml, node_link = tmp_path / "g.graphml", tmp_path / "g.json"
    assert main(["graph", model, "--out", str(graphml)]) == 0
    assert main(["graph", model, "--out", str(node_link)]) == 0
    loaded = [
        nx.read_graphml(graphml),
        nx.node_link_graph(json.loads(node_link.read_text()), edges="edges"),
    ]
    for g in loaded:
        assert set(g.nodes) == set(graph.nodes) and set(g.edges) == set(graph.edges)
        first_conv = next(n for n, a in graph.nodes(data=True) if a["op"] == "conv")
        assert g.nodes[first_conv]["out_shape"] == "x".join(
            str(n) for n in graph.nodes[first_conv]["out_shape"]
        )
