"""The trainer: learning on digits, the run directory, datasets, hooks, exact resume, errors."""

from __future__ import annotations

import csv
import json
import signal
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Literal

import networkx as nx
import pytest
import torch
from torch import nn

from hardnet_analysis.cli.common.training import DEFAULTS as TRAIN_DEFAULTS
from hardnet_analysis.families import FamilySpec, build_module, register_family
from hardnet_analysis.families.serialize import save_definition
from hardnet_analysis.graph.analytic import AnalyticBuilder
from hardnet_analysis.shapes import InputShape
from hardnet_analysis.train import TrainConfig, train
from hardnet_analysis.train.evaluate import evaluate_weights
from hardnet_analysis.train.runlog import METRIC_FIELDS
from hardnet_analysis.train.schedule import lr_factor
from tests.trainkit import (
    cifar_dir,
    hda_process,
    hda_run,
    image_folder,
    tiny_definition_file,
    tiny_hardnet,
)

torch.set_num_threads(1)  # the suite shares a 2-core machine


def digits_config(tmp_path: Path, **changes: object) -> TrainConfig:
    base = TrainConfig(
        model=str(tiny_definition_file(tmp_path)),
        dataset="digits",
        image_size=InputShape.of_image(16),
        epochs=3,
        batch_size=32,
        out=str(tmp_path / "run"),
    )
    return base.replace(**changes)


def test_digits_reaches_95_percent(tmp_path: Path) -> None:
    result = train(digits_config(tmp_path))
    assert result.best_top1 >= 95.0, result.history
    # best.pt evaluated from scratch gives the logged best accuracy (359 validation images).
    check = evaluate_weights(
        str(tmp_path / "tiny.json"),
        str(tmp_path / "run" / "best.pt"),
        None,
        "digits",
        InputShape.of_image(16),
    )
    assert check["images"] == 359
    assert check["top1"] == pytest.approx(result.best_top1)


def test_run_directory(tmp_path: Path) -> None:
    config = digits_config(tmp_path, epochs=2, lr=0.02)
    train(config)
    run = tmp_path / "run"
    args = json.loads((run / "args.json").read_text())
    assert args["lr"] == 0.02 and args["num_classes"] == 10 and args["dataset"] == "digits"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    with (run / "metrics.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [r["epoch"] for r in rows] == [1, 2] and len(table) == 2
    assert tuple(table[0]) == METRIC_FIELDS
    # per-epoch cosine: epoch 2 of 2 runs at 0.5 * (1 + cos(pi / 2)) = half the base lr.
    assert [r["lr"] for r in rows] == pytest.approx([0.02, 0.01])
    assert all(0 <= r["val_top1"] <= r["val_top5"] <= 100 for r in rows)
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["epoch"] == 2 and {"python", "numpy", "torch"} <= set(state["rng"])
    assert {"model", "optimizer", "scheduler", "scaler"} <= set(state)


def test_lr_schedule_formula() -> None:
    assert [lr_factor(e, 4, 0) for e in range(4)] == pytest.approx(
        [1.0, 0.5 + 0.5 * 2**-0.5, 0.5, 0.5 - 0.5 * 2**-0.5]
    )
    assert [lr_factor(e, 5, 2) for e in range(3)] == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_cli_defaults_are_the_recipe() -> None:
    config = {f.name: f.default for f in fields(TrainConfig)}
    assert {k: config[k] for k in TRAIN_DEFAULTS} == TRAIN_DEFAULTS
    assert (config["momentum"], config["nesterov"]) == (0.9, True)
    assert (config["lr"], config["weight_decay"], config["batch_size"]) == (0.05, 6e-5, 256)


def test_image_folder_skips_and_counts_undecodable_files(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", classes=3, per_class=4, corrupt=2)
    config = digits_config(tmp_path, dataset="auto", data=str(data), batch_size=4, epochs=1)
    result = train(config)
    (record,) = result.history
    assert record["skipped"] == 2
    assert json.loads((tmp_path / "run" / "args.json").read_text())["num_classes"] == 3


def test_cifar_pickles(tmp_path: Path) -> None:
    data = cifar_dir(tmp_path / "cifar", per_batch=8)
    result = train(digits_config(tmp_path, dataset="auto", data=str(data), batch_size=8, epochs=1))
    assert json.loads((tmp_path / "run" / "args.json").read_text())["dataset"] == "cifar10"
    assert result.history[0]["epoch"] == 1


# --- hooks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HookNetDef:
    name: str = "hooknet"
    num_classes: int = 10
    in_channels: int = 3
    input_size: int = 16
    family: Literal["hooknet"] = "hooknet"

    def with_num_classes(self, num_classes: int) -> HookNetDef:
        return replace(self, num_classes=num_classes)


class HookNet(nn.Module):
    """A linear classifier that records every hook call; its regulariser is a constant 3.0."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 16 * 16, classes)
        self.progress: list[float] = []
        self.memory_efficient = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))  # type: ignore[no-any-return]

    def hda_set_progress(self, progress: float) -> None:
        self.progress.append(progress)

    def hda_set_memory_efficient(self, flag: bool) -> None:
        self.memory_efficient = flag

    def hda_regularization(self) -> torch.Tensor:
        return torch.tensor(3.0)

    def hda_convert(self) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, self.fc.out_features))


def _hooknet_graph(defn: HookNetDef, shape: tuple[int, int, int, int]) -> nx.DiGraph:
    b = AnalyticBuilder(defn.name)
    x = b.flatten(b.input(shape), "flatten")
    b.output(b.linear(x, "fc", defn.num_classes))
    return b.graph


def build_hooknet(defn: HookNetDef) -> nn.Module:
    return HookNet(defn.num_classes)


register_family(
    FamilySpec("hooknet", HookNetDef, _hooknet_graph, f"{__name__}:build_hooknet", "hooks")
)


def test_hooks_are_driven(tmp_path: Path) -> None:
    from hardnet_analysis.train.loop import Run
    from hardnet_analysis.train.progress import Reporter

    model = save_definition(HookNetDef(), tmp_path / "hook.json")
    config = digits_config(
        tmp_path, model=str(model), epochs=2, batch_size=512, memory_efficient=True, convert=True
    )
    run = Run(config)
    run.fit(Reporter(enabled=False))
    net = run.model
    assert isinstance(net, HookNet) and net.memory_efficient
    # 1438 images, batch 512 (last partial batch dropped): 2 iterations per epoch, 4 in all.
    assert net.progress == [0.0, 0.25, 0.5, 0.75]
    # the regulariser is in the logged loss: at least 3.0 above a non-negative cross-entropy.
    assert all(r["train_loss"] >= 3.0 for r in run.history)
    converted = torch.load(tmp_path / "run" / "converted.pt", weights_only=True)
    # HookNet's converted module is a plain Sequential: no definition describes it, so none is
    # written (the training-time one used to be, which these weights do not fit).
    assert converted["definition"] is None
    assert set(converted["state_dict"]) == {"1.weight", "1.bias"}


def test_convert_writes_the_converted_definition(tmp_path: Path) -> None:
    from hardnet_analysis.families.condensenet import CondenseNetDef
    from hardnet_analysis.families.serialize import from_dict
    from hardnet_analysis.models import create_model

    defn = CondenseNetDef("tiny", (2, 2), (4, 8), stem_stride=1, num_classes=10, input_size=16)
    model = save_definition(defn, tmp_path / "condense.json")
    train(digits_config(tmp_path, model=str(model), epochs=1, batch_size=512, convert=True))
    converted = torch.load(tmp_path / "run" / "converted.pt", weights_only=True)
    written = from_dict(converted["definition"])
    # `hda train --convert` used to save the training-time definition beside these weights.
    assert written == defn.as_converted()
    create_model(written).load_state_dict(converted["state_dict"])  # strict


def test_memory_efficient_without_hook_is_an_error(tmp_path: Path) -> None:
    from hardnet_analysis.errors import UsageError

    with pytest.raises(UsageError, match="no memory-efficient mode"):
        train(digits_config(tmp_path, memory_efficient=True))


# --- resume ------------------------------------------------------------------------------------

STABLE = ("train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "lr")


def _cli_args(tmp_path: Path, out: str) -> list[str]:
    definition = str(tiny_definition_file(tmp_path))
    return [
        "train", definition, "--dataset", "digits", "--image-size", "16", "--epochs", "3",
        "--batch-size", "32", "--deterministic", "--out", str(tmp_path / out),
    ]  # fmt: skip


def test_killed_run_resumes_exactly(tmp_path: Path) -> None:
    killed = hda_process(*_cli_args(tmp_path, "killed"))
    last = tmp_path / "killed" / "last.pt"
    deadline = time.monotonic() + 240
    while not last.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # epoch 2 is under way
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert torch.load(last, weights_only=True)["epoch"] == 1  # killed inside epoch 2
    # Only the model and the run directory: every other setting comes from the run itself
    # (the parser's defaults, 150 epochs of batch 256, would make another run).
    definition = str(tmp_path / "tiny.json")
    code, _, err = hda_run("train", definition, "--out", str(tmp_path / "killed"), "--resume")
    assert code == 0, err
    assert "resuming" in err and "resumed after epoch 1 of 3" in err
    settings = json.loads((tmp_path / "killed" / "args.json").read_text())
    assert (settings["epochs"], settings["batch_size"], settings["deterministic"]) == (3, 32, True)
    assert "changed" not in settings["history"][-1]
    train(
        TrainConfig(
            model=str(tmp_path / "tiny.json"),
            dataset="digits",
            image_size=InputShape.of_image(16),
            epochs=3,
            batch_size=32,
            deterministic=True,
            out=str(tmp_path / "straight"),
        )
    )

    def stable(run: str) -> list[list[float]]:
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [[json.loads(line)[k] for k in STABLE] for line in lines]

    assert len(stable("straight")) == 3
    assert stable("killed") == stable("straight")


# --- bad input ---------------------------------------------------------------------------------


def _one_line_error(code: int, err: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_missing_data_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hardnet_analysis.cli.main import main

    code = main(["train", "hardnet39ds", "--data", str(tmp_path / "nope"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    _one_line_error(code, err)
    assert "does not exist" in err


def test_wrong_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hardnet_analysis.cli.main import main

    (tmp_path / "data" / "train" / "a").mkdir(parents=True)
    code = main(["train", "hardnet39ds", "--data", str(tmp_path / "data"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    _one_line_error(code, err)
    assert "val/" in err


def test_corrupt_checkpoint_is_left_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hardnet_analysis.cli.main import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"\x00garbage" * 10)
    argv = ["train", str(tiny_definition_file(tmp_path)), "--out", str(run), "--resume"]
    code = main([*argv, "--image-size", "16"])
    err = capsys.readouterr().err
    _one_line_error(code, err)
    assert "cannot be read" in err and "untouched" in err
    assert (run / "last.pt").read_bytes() == b"\x00garbage" * 10


def test_class_count_mismatch_with_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hardnet_analysis.cli.main import main

    definition = tiny_definition_file(tmp_path)
    torch.save(build_module(tiny_hardnet(classes=3)).state_dict(), tmp_path / "w.pt")
    argv = ["train", str(definition), "--weights", str(tmp_path / "w.pt"), "--out", str(tmp_path)]
    code = main([*argv, "--image-size", "16"])
    err = capsys.readouterr().err
    _one_line_error(code, err)
    assert "10-class" in err
