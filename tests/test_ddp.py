"""DDP: `torchrun --nproc-per-node 2` on CPU follows the single-process run at the same batch.

Tolerance: the global batches are the same images (the union of the ranks' i-th batches is the
single process's i-th batch) and gradients are averaged, so the runs differ only through batch
norm, whose statistics each rank takes over its half batch (SyncBatchNorm needs CUDA). Per-epoch
training loss agrees within 0.1 (absolute; about 1.3 then 0.2 here) and validation top-1 within
5 points.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hardnet_analysis.shapes import InputShape
from hardnet_analysis.train import TrainConfig, train
from tests.trainkit import ROOT, shapes_dataset, tiny_definition_file, tiny_fchardnet_file

STABLE = ("train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "lr")


def _torchrun(definition: str, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
        "-m", "hardnet_analysis", "train", definition, "--dataset", "digits", "--image-size", "16",
        "--epochs", "3", "--batch-size", "64", "--deterministic", "--out", str(out), *extra,
    ]  # fmt: skip


def _stable(out: Path) -> list[list[float]]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [[json.loads(line)[k] for k in STABLE] for line in lines]


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="needs torchrun")
def test_torchrun_two_ranks_match_one_process(tmp_path: Path) -> None:
    definition = str(tiny_definition_file(tmp_path))
    common = ["--dataset", "digits", "--image-size", "16", "--epochs", "2", "--batch-size", "64"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--standalone", "-m", "hardnet_analysis", "train", definition, *common,
        "--deterministic", "--out", str(tmp_path / "ddp"),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    single = train(
        TrainConfig(
            model=definition,
            dataset="digits",
            image_size=InputShape.of_image(16),
            epochs=2,
            batch_size=64,
            deterministic=True,
            out=str(tmp_path / "single"),
        )
    )
    lines = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    ddp = [json.loads(line) for line in lines]
    assert [r["epoch"] for r in ddp] == [1, 2]  # rank 0 alone wrote
    assert json.loads((tmp_path / "ddp" / "args.json").read_text())["world_size"] == 2
    assert result.stdout.count("best val top-1") == 1
    for d, s in zip(ddp, single.history, strict=True):
        assert d["train_loss"] == pytest.approx(s["train_loss"], abs=0.1)
        assert d["val_top1"] == pytest.approx(s["val_top1"], abs=5.0)
        assert d["lr"] == s["lr"]
    assert ddp[-1]["train_loss"] < 0.5 * ddp[0]["train_loss"]  # it learned


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="needs torchrun")
def test_killed_ddp_run_resumes_exactly(tmp_path: Path) -> None:
    """A 2-rank run killed (SIGKILL to the whole process group) inside epoch 2 and resumed
    under torchrun ends with the same per-epoch metrics as the uninterrupted 2-rank run."""
    definition = str(tiny_definition_file(tmp_path))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    straight = subprocess.run(
        _torchrun(definition, tmp_path / "straight"), env=env, cwd=ROOT, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert straight.returncode == 0, straight.stderr[-2000:]

    killed_dir = tmp_path / "killed"
    killed = subprocess.Popen(
        _torchrun(definition, killed_dir), env=env, cwd=ROOT, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not (killed_dir / "last.pt").exists() and killed.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint within 240 s"
        time.sleep(0.05)
    time.sleep(0.3)  # epoch 2 is under way
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    epoch = torch.load(killed_dir / "last.pt", weights_only=True)["epoch"]
    assert epoch < 3, "the run finished before it could be killed"
    resumed = subprocess.run(
        _torchrun(definition, killed_dir, "--resume"), env=env, cwd=ROOT, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _stable(killed_dir) == _stable(tmp_path / "straight")


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="needs torchrun")
def test_segmentation_two_ranks_match_one_process(tmp_path: Path) -> None:
    """The same for segmentation: the ranks' per-class intersections and unions are added
    before the mIoU is taken, so it is the whole validation set's. Tolerance as above (batch
    norm over half batches): training loss within 0.1 (0.01 seen), validation mIoU within 10
    points (3.4 seen; it rises from the background-only 23 to about 39 in 3 epochs here)."""
    definition = str(tiny_fchardnet_file(tmp_path))
    data = shapes_dataset(tmp_path / "shapes", train=96, val=16, size=32)
    common = ["--task", "segmentation", "--data", str(data), "--image-size", "32"]
    common += ["--epochs", "3", "--batch-size", "8", "--workers", "0", "--deterministic"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
        "-m", "hardnet_analysis", "train", definition, *common, "--out", str(tmp_path / "ddp"),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("best val mIoU") == 1
    config = TrainConfig(
        model=definition,
        data=str(data),
        task="segmentation",
        image_size=InputShape.of_image(32),
    )
    single = train(
        config.replace(
            epochs=3, batch_size=8, workers=0, deterministic=True, out=str(tmp_path / "single")
        )
    )
    lines = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    ddp = [json.loads(line) for line in lines]
    for d, s in zip(ddp, single.history, strict=True):
        assert d["train_loss"] == pytest.approx(s["train_loss"], abs=0.1)
        assert d["val_miou"] == pytest.approx(s["val_miou"], abs=10.0)
        assert d["lr"] == s["lr"]
    assert single.history[-1]["val_miou"] > single.history[0]["val_miou"] + 5  # it learned
