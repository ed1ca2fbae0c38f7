"""Arguments that `hda train`, `hda evaluate` and `hda search --train-top` share: the task, the
data and the image size."""

from __future__ import annotations

import argparse
from typing import Any

from hardnet_analysis.cli.common import add_device_args, integer, non_negative_int
from hardnet_analysis.errors import UsageError
from hardnet_analysis.shapes import InputShape
from hardnet_analysis.train.config import TASKS, recipe_defaults
from hardnet_analysis.units import parse_input_size

#: The recipe defaults, read from `TrainConfig` (whose module imports no torch, so `hda --help`
#: stays light).
DEFAULTS: dict[str, Any] = recipe_defaults()


def image_size(text: str) -> InputShape:
    """argparse type for `--image-size`: N (a square side) or HxW, parsed once into the one
    RGB image a training run reads at batch 1 (the loader batches); ``--image-size 32x48`` is
    ``InputShape(((1, 3, 32, 48),))``, which training, evaluation and the stored settings all
    carry."""
    try:
        return InputShape.of_image(parse_input_size(text))
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_task_args(parser: argparse._ActionsContainer) -> None:
    """--task and --ignore-index (segmentation's masks)."""
    parser.add_argument(
        "--task",
        choices=TASKS,
        default=DEFAULTS["task"],
        help="classification (default) or segmentation (--data DIR with train/images, "
        "train/labels, val/images, val/labels; masks are PNGs of class indices)",
    )
    parser.add_argument(
        "--ignore-index",
        type=integer,
        default=DEFAULTS["ignore_index"],
        metavar="V",
        help=f"segmentation: the mask value left out of loss and metrics (default "
        f"{DEFAULTS['ignore_index']})",
    )


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """--data, the task, --dataset, --image-size, --workers and the device."""
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="image folder (train/<class>/*, val/<class>/*), CIFAR-10/100 python batches, or "
        "a segmentation folder (--task segmentation); without it, the built-in digits dataset",
    )
    add_task_args(parser)
    parser.add_argument(
        "--dataset",
        choices=("auto", "folder", "cifar", "digits"),
        default=DEFAULTS["dataset"],
        help="dataset kind (default auto: detected from --data)",
    )
    parser.add_argument(
        "--image-size",
        type=image_size,
        metavar="N|HxW",
        help="input size: a square side, or HxW for segmentation (default 224 for folders, 32 "
        "for CIFAR and digits, the first training image's for segmentation)",
    )
    parser.add_argument("--workers", type=non_negative_int, metavar="N", help="loader processes")
    add_device_args(parser, DEFAULTS["device"])
