"""Helpers for the trainer tests: a tiny HarDNet and FC-HarDNet, tiny datasets on disk (image
folders, CIFAR pickles, generated segmentation shapes), the CLI in a process."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from hardnet_analysis.families.fchardnet.definition import FCHarDNetConfig, FCHarDNetDef
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


def tiny_fchardnet(name: str = "tinyfc", classes: int = 4, growth: int = 6) -> FCHarDNetDef:
    """Three encoder and two decoder blocks of 2-4 layers, about 110 k parameters: segments
    64x64 shapes in seconds per epoch on one core."""
    config = FCHarDNetConfig(
        first_ch=(8, 12, 16, 24),
        ch_list=(32, 48, 64),
        gr=(growth, growth + 2, growth + 4),
        n_layers=(2, 4, 4),
        grmul=1.7,
    )
    return replace(config.build(name, classes), input_size=(64, 64))


def tiny_fchardnet_file(directory: Path, name: str = "tinyfc", growth: int = 6) -> Path:
    return save_definition(tiny_fchardnet(name, growth=growth), directory / f"{name}.json")


#: Shape classes of `shapes_dataset` (0 is the background), each with its own hue range.
SHAPES = ("circle", "rectangle", "triangle")


def _texture(rng: np.random.Generator, size: int) -> np.ndarray[Any, Any]:
    """A background: two colours mixed by a random stripe pattern, plus pixel noise."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(4, 12)
    stripes = 0.5 + 0.5 * np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period)
    low, high = rng.uniform(40, 200, 3), rng.uniform(40, 200, 3)
    pixels = low + stripes[..., None] * (high - low) + rng.normal(0, 12, (size, size, 3))
    texture: np.ndarray[Any, Any] = np.clip(pixels, 0, 255).astype(np.uint8)
    return texture


def _shape_colour(rng: np.random.Generator, cls: int) -> tuple[int, int, int]:
    """A flat colour near the class's primary (red, green, blue), jittered."""
    colour = rng.uniform(0, 90, 3)
    colour[cls - 1] = rng.uniform(170, 255)
    return (int(colour[0]), int(colour[1]), int(colour[2]))


def _outline(rng: np.random.Generator, cls: int, size: int) -> list[tuple[float, float]]:
    """The polygon (or circle's box) of one shape of class `cls`, 3/16 to 7/16 of the image
    across (12-28 px at 64)."""
    margin = size * 3 / 16
    cx, cy = rng.uniform(margin, size - margin), rng.uniform(margin, size - margin)
    r = rng.uniform(size * 3 / 32, size * 7 / 32)
    if cls == 3:  # a triangle with a random orientation
        turn = rng.uniform(0, 2 * np.pi)
        return [(cx + r * np.cos(turn + a), cy + r * np.sin(turn + a)) for a in (0, 2.1, 4.2)]
    w, h = (r, r) if cls == 1 else (r, rng.uniform(0.5, 1.0) * r)
    return [(cx - w, cy - h), (cx + w, cy + h)]


def _shape_image(
    rng: np.random.Generator, size: int, classes: int
) -> tuple[Image.Image, Image.Image]:
    image = Image.fromarray(_texture(rng, size))
    mask = Image.new("L", (size, size), 0)
    paint, label = ImageDraw.Draw(image), ImageDraw.Draw(mask)
    for _ in range(int(rng.integers(1, 4))):
        cls = int(rng.integers(1, classes))
        points, colour = _outline(rng, cls, size), _shape_colour(rng, cls)
        draw = "ellipse" if cls == 1 else "rectangle" if cls == 2 else "polygon"
        getattr(paint, draw)(points, fill=colour)
        # the shape's 1-pixel border is ignored (255), as VOC marks object boundaries
        getattr(label, draw)(points, fill=cls, outline=255)
    return image, mask


def shapes_dataset(
    root: Path, train: int = 160, val: int = 48, size: int = 64, classes: int = 4, seed: int = 0
) -> Path:
    """A segmentation folder of random shapes on textured backgrounds, made here (nothing is
    downloaded): ``root/{train,val}/{images,labels}/<n>.png``. Classes: 0 background, then
    circle, rectangle and triangle (the first ``classes - 1`` of them), 1-3 shapes an image,
    each filled with a jittered colour near its class's primary; masks are 8-bit PNGs whose
    shape borders are 255 (the ignore index)."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        for folder in ("images", "labels"):
            (root / split / folder).mkdir(parents=True, exist_ok=True)
        for n in range(count):
            image, mask = _shape_image(rng, size, classes)
            image.save(root / split / "images" / f"{n:04d}.png")
            mask.save(root / split / "labels" / f"{n:04d}.png")
    return root
