"""The trainer never silently wastes a run: resume and its schedule, zero usable images, every
weights file ``hda evaluate`` is handed, and the settings checked before the first step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from hardnet_analysis.cli.main import main
from hardnet_analysis.errors import NonFiniteLossError, UsageError
from hardnet_analysis.families.serialize import save_definition
from hardnet_analysis.shapes import InputShape
from hardnet_analysis.train import train
from hardnet_analysis.train.evaluate import evaluate_weights
from hardnet_analysis.train.schedule import lr_factor
from tests.test_train import digits_config
from tests.trainkit import image_folder, tiny_definition_file

torch.set_num_threads(1)  # the suite shares a 2-core machine


def _lrs(run: Path) -> list[float]:
    return [json.loads(line)["lr"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def _one_line(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert all(word in err for word in words), err


def test_resume_with_more_epochs_extends_the_cosine(tmp_path: Path) -> None:
    config = digits_config(tmp_path, epochs=2, batch_size=128)
    train(config)
    train(config.replace(epochs=4, resume=True))
    run = tmp_path / "run"
    # Epochs 3 and 4 follow a 4-epoch cosine; they used to run at the 2-epoch schedule's end, 0.
    expected = [0.05 * lr_factor(e, n, 0) for e, n in ((0, 2), (1, 2), (2, 4), (3, 4))]
    assert _lrs(run) == pytest.approx(expected)
    args = json.loads((run / "args.json").read_text())
    first, second = args["history"]  # appended to, not overwritten
    assert (first["epochs"], first["start_epoch"], first["note"]) == (2, 0, "started")
    assert second["start_epoch"] == 2 and second["changed"] == {"epochs": [2, 4]}
    assert "extended from 2 to 4 epochs" in second["note"]
    assert args["epochs"] == 4


def test_resume_with_fewer_epochs_or_nothing_left_changes_nothing(tmp_path: Path) -> None:
    config = digits_config(tmp_path, epochs=2, batch_size=256)
    train(config)
    args = (tmp_path / "run" / "args.json").read_bytes()
    last = (tmp_path / "run" / "last.pt").read_bytes()
    with pytest.raises(UsageError, match="--epochs 1 is fewer than the 2 epochs"):
        train(config.replace(epochs=1, resume=True))
    result = train(config.replace(resume=True))  # all 2 epochs done: nothing to train
    assert [r["epoch"] for r in result.history] == [1, 2]
    assert (tmp_path / "run" / "args.json").read_bytes() == args
    assert (tmp_path / "run" / "last.pt").read_bytes() == last


def test_resume_takes_the_runs_settings_and_refuses_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = digits_config(tmp_path, epochs=2, batch_size=128, deterministic=True, lr=0.02)
    train(config)
    capsys.readouterr()
    run = tmp_path / "run"
    before = {name: (run / name).read_bytes() for name in ("args.json", "last.pt", "best.pt")}
    resume = ["train", config.model, "--out", str(run), "--resume"]
    # A finished run: resuming it with its own settings changes nothing.
    assert main(resume) == 0
    assert "nothing to do" in capsys.readouterr().err
    assert {name: (run / name).read_bytes() for name in before} == before
    # Settings that would make another run are refused, each named with both values.
    code = main([*resume, "--batch-size", "256", "--lr", "0.02", "--wd", "0.001"])
    _one_line(code, capsys.readouterr().err, "--batch-size 256 (the run's: 128)", "--wd 0.001")
    assert {name: (run / name).read_bytes() for name in before} == before
    code = main([*resume, "--epochs", "1"])
    _one_line(code, capsys.readouterr().err, "--epochs 1 is fewer than the 2 epochs")
    code = main(["train", "hardnet39ds", "--out", str(run), "--resume"])
    _one_line(code, capsys.readouterr().err, "holds a run of", "untouched")
    # More epochs can be applied: the schedule is stretched, everything else kept.
    assert main([*resume, "--epochs", "3", "--batch-size", "128"]) == 0
    args = json.loads((run / "args.json").read_text())
    assert (args["epochs"], args["batch_size"], args["lr"], args["deterministic"]) == (
        3,
        128,
        0.02,
        True,
    )
    assert args["history"][-1]["changed"] == {"epochs": [2, 3]}


def test_zero_usable_images_is_an_error(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", classes=2, per_class=0)
    for split in ("train", "val"):
        for c in ("c0", "c1"):
            (data / split / c / "bad.png").write_bytes(b"not a png")
    config = digits_config(tmp_path, dataset="auto", data=str(data), batch_size=2, epochs=1)
    with pytest.raises(UsageError, match="none of the 2 train images can be decoded"):
        train(config)
    assert not (tmp_path / "run").exists()  # refused before anything was written
    with pytest.raises(UsageError, match="zero usable"):
        evaluate_weights(config.model, None, str(data), random_weights=True)


def test_evaluate_reads_every_run_file_and_plain_state_dicts(tmp_path: Path) -> None:
    from hardnet_analysis.families.condensenet import CondenseNetDef

    defn = CondenseNetDef("tiny", (2, 2), (4, 8), stem_stride=1, num_classes=10, input_size=16)
    model = str(save_definition(defn, tmp_path / "condense.json"))
    result = train(digits_config(tmp_path, model=model, epochs=1, batch_size=512, convert=True))
    run = tmp_path / "run"
    best = torch.load(run / "best.pt", weights_only=True)["state_dict"]
    torch.save(best, tmp_path / "plain.pt")
    for name in ("last.pt", "best.pt", "converted.pt", str(tmp_path / "plain.pt")):
        score = evaluate_weights(model, str(run / name), None, "digits", InputShape.of_image(16))
        assert score["top1"] == pytest.approx(result.best_top1, abs=0.3), name
    assert evaluate_weights(
        model, str(run / "converted.pt"), None, "digits", InputShape.of_image(16)
    )["model"] == (defn.as_converted().name)


def test_evaluate_needs_weights_or_random_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = str(tiny_definition_file(tmp_path))
    argv = ["evaluate", definition, "--dataset", "digits", "--image-size", "16", "--format", "json"]
    _one_line(main(argv), capsys.readouterr().err, "--random-weights")
    assert main([*argv, "--random-weights"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 359


def test_convert_without_the_hook_is_refused_before_training(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no hda_convert hook"):
        train(digits_config(tmp_path, convert=True))
    assert not (tmp_path / "run").exists()  # it used to train every epoch first


def seven_logits() -> nn.Module:
    """A model whose output is not (N, classes): 7 logits for 10 digits."""
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 7))


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--lr", "-1"], ["--lr must be a positive number, not -1"]),
        (["--wd", "-1"], ["--wd must be a number >= 0"]),  # nan: the parser refuses it
        (["--model", f"{__name__}:seven_logits"], ["outputs (2, 7) for 2 images", "(N, 10)"]),
    ],
)
def test_bad_settings_are_one_line_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], words: list[str]
) -> None:
    model = str(tiny_definition_file(tmp_path))
    if flags[0] == "--model":
        model, flags = flags[1], []
    argv = ["train", model, "--dataset", "digits", "--image-size", "16", "--out"]
    code = main([*argv, str(tmp_path / "run"), *flags])
    _one_line(code, capsys.readouterr().err, *words)
    assert not (tmp_path / "run").exists()


def test_a_diverging_run_stops_with_a_transient_error(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLossError, match="the training loss is nan"):
        train(digits_config(tmp_path, lr=1e30, epochs=1, batch_size=128))
