"""Helpers for the trainer tests: a tiny HarDNet, tiny datasets on disk, the CLI in a process."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np

from hardnet_analysis.families.hardnet.definition import (
    HarDBlockDef,
    HarDNetDef,
    HeadDef,
    StageDef,
    StemDef,
)
from hardnet_analysis.families.serialize import save_definition

ROOT = Path(__file__).resolve().parents[1]


def tiny_hardnet(name: str = "tiny", growth: int = 8, classes: int = 10) -> HarDNetDef:
    """Two 4-layer harmonic blocks, about 40 k parameters; trains on 16x16 digits in seconds."""
    return HarDNetDef(
        name,
        StemDef((16, 24)),
        (
            StageDef(HarDBlockDef(growth, 1.6, 4), 48, "maxpool"),
            StageDef(HarDBlockDef(growth + 4, 1.6, 4), 64, "none"),
        ),
        HeadDef(0.0, classes),
    )


def tiny_definition_file(directory: Path, name: str = "tiny", growth: int = 8) -> Path:
    return save_definition(tiny_hardnet(name, growth), directory / f"{name}.json")


def image_folder(root: Path, classes: int = 3, per_class: int = 4, corrupt: int = 0) -> Path:
    """``root/{train,val}/c<i>/<n>.png`` random 20x20 images; `corrupt` extra bad files in train."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in range(classes):
            folder = root / split / f"c{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(per_class):
                pixels = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{n}.png")
    for n in range(corrupt):
        (root / "train" / "c0" / f"bad{n}.png").write_bytes(b"not a png at all")
    return root


def cifar_dir(root: Path, per_batch: int = 8, classes: int = 10) -> Path:
    """CIFAR-10 python-format batches (data_batch_1..5, test_batch, batches.meta), tiny."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 255, (per_batch, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, classes, per_batch)],
        }
        (root / name).write_bytes(pickle.dumps(batch))
    meta = {b"label_names": [f"class{i}".encode() for i in range(classes)]}
    (root / "batches.meta").write_bytes(pickle.dumps(meta))
    return root


def hda_process(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    """``python -m hardnet_analysis ARGS`` from this checkout, on one thread (CI has 2 cores)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process: subprocess.Popen[str] = subprocess.Popen(
        [sys.executable, "-m", "hardnet_analysis", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )
    return process


def hda_run(*args: str, timeout: float = 300) -> tuple[int, str, str]:
    process = hda_process(*args)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def hda_background(log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``python -m hardnet_analysis ARGS`` in the background, its output appended to `log`
    (a file, so that a long run never blocks on a full pipe), on one thread."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "hardnet_analysis", *args],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
