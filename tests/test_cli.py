"""The `hda` command line: output formats, exit codes, one-line errors, the torch-free path."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys

import pytest

from hardnet_analysis.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse exits on usage errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cio_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "cio", "hardnet68", "--input", "224")
    assert code == 0
    assert "17.6M" in out and "11.5M" in out and "base.0.conv" in out


def test_cio_json_totals_are_integers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "cio", "hardnet68", "--format", "json")
    document = json.loads(out)
    assert code == 0
    assert document["totals"]["params"] == 17_565_348
    assert all(isinstance(document["totals"][k], int) for k in ("params", "macs", "cio"))
    assert sum(layer["cio"] for layer in document["layers"]) == document["totals"]["cio"]


def test_cio_csv_rows(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "cio", "hardnet39ds", "--input", "320x480", "--by-block", "--format", "csv"
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    assert [r["name"] for r in rows][:3] == ["input", "stem", "hardblock1"]


def test_per_layer_lists_every_op(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "cio", "hardnet68", "--per-layer")
    assert "base.0.norm" in out and "base.3.cat" in out


def test_compare_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "compare", "hardnet68", "hardnet85", "--format", "json")
    models = json.loads(out)["models"]
    assert code == 0
    assert [m["model"] for m in models] == ["hardnet68", "hardnet85"]
    assert models[1]["params"] > models[0]["params"]


def test_models_lists_zoo(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "--format", "json")
    assert code == 0
    assert {m["model"] for m in json.loads(out)} >= {
        "hardnet68",
        "hardnet85",
        "hardnet39ds",
        "hardnet68ds",
    }


def test_unknown_model_is_one_line_with_close_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "cio", "hardnet86")
    assert code == 2
    assert err.count("\n") == 1 and "hardnet85" in err and "Traceback" not in err


def test_too_small_input_names_the_layer(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "cio", "hardnet68", "--input", "12")
    assert code == 2
    assert "layer 'base." in err and err.count("\n") == 1


@pytest.mark.parametrize("bad", ["22x", "0", "axb", "-5", "224x224x3"])
def test_malformed_input_is_a_usage_error(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    code, _, err = run(capsys, "cio", "hardnet68", f"--input={bad}")
    assert code == 2
    assert "--input" in err and err.count("\n") == 1


def test_cli_path_imports_nothing_heavy() -> None:
    # The analytic path is what makes `hda cio` start fast: torch, torchvision, scipy and plotly
    # each take a second or more to import, and only the commands that need them may pay for it.
    code = (
        "import sys\nfrom hardnet_analysis.cli.main import main\n"
        "main(['cio', 'hardnet68', '--format', 'json'])\n"
        "heavy = {'torch', 'torchvision', 'scipy', 'plotly', 'sklearn'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hardnet_analysis", "cio", "hardnet39ds", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert json.loads(result.stdout)["totals"]["params"] == 3_488_228


def test_default_input_is_the_models_own(capsys: pytest.CaptureFixture[str]) -> None:
    # DenseNet-BC-100 is a CIFAR model: without --input it is analysed at 32x32, where its
    # published size (0.8 M params) and the 3x3-stem shapes hold.
    code, out, _ = run(capsys, "cio", "densenet_bc_100_k12", "--format", "json")
    assert code == 0
    assert json.loads(out)["input_shape"] == [1, 3, 32, 32]
    _, out, _ = run(capsys, "cio", "hardnet68", "--format", "json")
    assert json.loads(out)["input_shape"] == [1, 3, 224, 224]


def test_csv_writes_every_shape_as_nxcxhxw(capsys: pytest.CaptureFixture[str]) -> None:
    # A concat's inputs are several shapes: ';'-separated, each written as out_shape is.
    _, out, _ = run(capsys, "cio", "hardnet68", "--per-layer", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    shape = r"\d+(x\d+)+"
    assert all(re.fullmatch(shape, r["out_shape"]) for r in rows)
    assert all(re.fullmatch(f"{shape}(;{shape})*", r["in_shapes"]) for r in rows[1:])
    assert any(";" in r["in_shapes"] for r in rows)


def test_models_csv_writes_published_counts_as_integers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = run(capsys, "models", "--family", "condensenet", "--format", "csv")
    counts = [r[k] for r in csv.DictReader(io.StringIO(out)) for k in ("published_params",)]
    assert "4800000" in counts and all(c == "" or c.isdigit() for c in counts)


def test_traced_blocks_are_all_named(capsys: pytest.CaptureFixture[str]) -> None:
    # resnet18's forward calls torch.flatten itself: its block is the model's, "(model)".
    _, out, _ = run(capsys, "cio", "resnet18", "--by-block", "--format", "csv")
    names = [r["name"] for r in csv.DictReader(io.StringIO(out))]
    assert "(model)" in names and "" not in names
