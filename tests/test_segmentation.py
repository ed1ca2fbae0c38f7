"""Segmentation training: a tiny FC-HarDNet learns generated shapes (`shapes_dataset`), best.pt
and ``hda evaluate`` agree with the logged best mIoU, a stopped run resumes exactly, the mIoU
convention on a hand-made case, and bad data refused in one line before the first step."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hardnet_analysis.cli.main import main
from hardnet_analysis.shapes import InputShape
from hardnet_analysis.train import TrainConfig, train
from hardnet_analysis.train.progress import Reporter
from hardnet_analysis.train.schedule import lr_factor
from hardnet_analysis.train.task import Segmentation
from tests.trainkit import shapes_dataset, tiny_fchardnet_file

torch.set_num_threads(1)  # the suite shares a 2-core machine

#: 10 epochs of 160 64x64 images reach about 87 % mIoU (48 validation images) in about 15 s on
#: one core; predicting background everywhere scores about 22 %.
EPOCHS = 10
MIOU_FLOOR = 70.0


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shapes_dataset(tmp_path_factory.mktemp("shapes") / "data")


def seg_config(tmp_path: Path, data: Path, **changes: object) -> TrainConfig:
    base = TrainConfig(
        model=str(tiny_fchardnet_file(tmp_path)),
        data=str(data),
        task="segmentation",
        image_size=InputShape.of_image(64),
        epochs=EPOCHS,
        batch_size=16,
        schedule="poly",
        workers=0,
        out=str(tmp_path / "run"),
    )
    return base.replace(**changes)


def background_miou(data: Path) -> float:
    """The mIoU (%) of predicting class 0 everywhere on the validation masks: IoU_0 is the
    background's share of labelled pixels, every other present class scores 0."""
    masks = [np.asarray(Image.open(p)) for p in sorted((data / "val" / "labels").iterdir())]
    pixels = np.concatenate([m.ravel() for m in masks])
    labelled = pixels[pixels != 255]
    return 100.0 * float(np.mean(labelled == 0)) / len(np.unique(labelled))


def test_shapes_are_learned_and_best_pt_evaluates_to_the_logged_best(
    tmp_path: Path, shapes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.perf_counter()
    result = train(seg_config(tmp_path, shapes))
    seconds = time.perf_counter() - start
    baseline = background_miou(shapes)
    assert baseline < 30.0
    assert result.score == "val_miou"
    assert result.best >= MIOU_FLOOR, (result.history, seconds)
    run = tmp_path / "run"
    with (run / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["val_miou"]) for r in rows] == pytest.approx(
        [r["val_miou"] for r in result.history]
    )
    assert {"train_pixel_acc", "val_pixel_acc", "val_loss"} <= set(rows[0])
    best = torch.load(run / "best.pt", weights_only=True)
    assert best["miou"] == result.best == max(r["val_miou"] for r in result.history)
    capsys.readouterr()
    argv = ["evaluate", str(tmp_path / "tinyfc.json"), "--weights", str(run / "best.pt")]
    argv += ["--task", "segmentation", "--data", str(shapes), "--image-size", "64"]
    assert main([*argv, "--workers", "0", "--format", "json"]) == 0
    score = json.loads(capsys.readouterr().out)
    assert score["images"] == 48 and score["task"] == "segmentation"
    assert score["miou"] == pytest.approx(result.best, abs=1e-6)
    assert score["pixel_acc"] == pytest.approx(
        result.history[best["epoch"] - 1]["val_pixel_acc"], abs=1e-6
    )


class Stopped(Exception):
    pass


class StopAfter(Reporter):
    """Stops the run (as a kill would) right after epoch `epoch` has been saved."""

    def __init__(self, epoch: int) -> None:
        super().__init__(enabled=True)
        self.epoch = epoch

    def log(self, message: str) -> None:
        if message.startswith(f"epoch {self.epoch}/"):
            raise Stopped


def _stable(history: list[dict[str, float]]) -> list[list[float]]:
    keys = ("train_loss", "train_pixel_acc", "val_loss", "val_miou", "val_pixel_acc", "lr")
    return [[r[k] for k in keys] for r in history]


def test_a_stopped_run_resumes_exactly(tmp_path: Path) -> None:
    data = shapes_dataset(tmp_path / "data", train=24, val=8, size=32, seed=1)
    config = seg_config(
        tmp_path,
        data,
        image_size=InputShape.of_image(32),
        epochs=3,
        batch_size=8,
        deterministic=True,
    )
    straight = train(config.replace(out=str(tmp_path / "straight")))
    with pytest.raises(Stopped):
        train(config, StopAfter(2))
    resumed = train(config.replace(resume=True))
    assert _stable(resumed.history) == _stable(straight.history)
    assert resumed.best == straight.best
    args = json.loads((tmp_path / "run" / "args.json").read_text())
    assert args["task"] == "segmentation" and args["history"][1]["start_epoch"] == 2


def test_miou_convention_on_a_hand_made_case() -> None:
    """Classes 0-3; class 3 is in neither labels nor predictions and is left out; the ignored
    pixel (255) counts nowhere, although its prediction is wrong."""
    labels = torch.tensor([[[0, 0, 1, 1, 2, 255]]])
    predicted = torch.tensor([[[0, 1, 1, 1, 0, 2]]])
    logits = torch.nn.functional.one_hot(predicted, 4).permute(0, 3, 1, 2).float()
    task = Segmentation(255)
    sums = {**task.zero_sums(4), "images": 1.0}
    for key, value in task.eval_sums(logits, labels).items():
        sums[key] += value
    means = task.summarize(sums)
    # IoU = TP / (predicted + labelled - TP): class 0 1/(2+2-1), class 1 2/(3+2-2), class 2
    # 0/(0+1-0) (its only prediction is on the ignored pixel).
    assert means["miou"] == pytest.approx(100 * (1 / 3 + 2 / 3 + 0) / 3)
    assert means["pixel_acc"] == pytest.approx(100 * 3 / 5)


def test_poly_schedule() -> None:
    assert [lr_factor(e, 4, 0, "poly") for e in range(4)] == pytest.approx(
        [1.0, 0.75**0.9, 0.5**0.9, 0.25**0.9]
    )
    assert lr_factor(0, 4, 1, "poly") == 0.5  # warm-up as for the cosine


def _one_line(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert all(word in err for word in words), err


def _bad(root: Path, damage: str) -> Path:
    data = shapes_dataset(root, train=3, val=2, size=16, seed=2)
    mask = data / "train" / "labels" / "0001.png"
    if damage == "no labels":
        for path in (data / "val" / "labels").iterdir():
            path.unlink()
        (data / "val" / "labels").rmdir()
    elif damage == "size":
        Image.new("L", (15, 16)).save(mask)
    elif damage == "range":
        Image.fromarray(np.full((16, 16), 7, dtype=np.uint8)).save(mask)
    elif damage == "rgb":
        Image.new("RGB", (16, 16)).save(mask)
    elif damage == "missing":
        mask.unlink()
    return data


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ("no labels", ("val/labels/", "train/images, train/labels")),
        ("size", ("0001.png", "15x16", "16x16")),
        ("range", ("class index 7", "4 classes", "--num-classes")),
        ("rgb", ("mode RGB", "single-channel")),
        ("missing", ("no mask for 1 image", "0001.png")),
    ],
)
def test_bad_data_is_one_line_before_the_first_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str, words: tuple[str, ...]
) -> None:
    data = _bad(tmp_path / "data", damage)
    model = str(tiny_fchardnet_file(tmp_path))
    out = tmp_path / "run"
    argv = ["train", model, "--task", "segmentation", "--data", str(data), "--out", str(out)]
    _one_line(main([*argv, "--num-classes", "4", "--epochs", "1"]), capsys.readouterr().err, *words)
    assert not out.exists()


def test_a_classifier_is_refused_for_segmentation(
    tmp_path: Path, shapes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.trainkit import tiny_definition_file

    model = str(tiny_definition_file(tmp_path))
    argv = ["train", model, "--task", "segmentation", "--data", str(shapes), "--out", "x"]
    _one_line(main(argv), capsys.readouterr().err, "(N, classes, H, W)")
    _one_line(
        main(["train", model, "--task", "segmentation"]), capsys.readouterr().err, "--data DIR"
    )
