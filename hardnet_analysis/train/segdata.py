"""Segmentation folders: ``DATA/{train,val}/images/*`` beside ``DATA/{train,val}/labels/*.png``.

An image ``images/NAME.jpg`` (or .png, .jpeg, .bmp, .tif, .tiff, .webp) has its mask in
``labels/NAME.png``: a single-channel PNG (mode L, P, I;16 or I) of the image's size whose
values are class indices 0..C-1, or the ignore index (255 by default), which the loss and the
metrics leave out. C is ``--num-classes`` if given, else the largest index found + 1.

Every pair is scanned once before the first step (`scan`): each image's size is read from its
header and each mask is decoded, so a missing folder or mask, a size mismatch, a mask with
several channels and an index out of range are one-line UsageErrors naming the file.

Augmentation (training) is the same for image and mask: a random crop of 50-100 % of the
image's area, of an aspect within 3/4..4/3 of the target's, resized to ``image_size`` (bilinear
for the image, nearest for the mask), then a horizontal flip half the time. Validation resizes
to ``image_size``, so metrics are at that size, not at each image's own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from hardnet_analysis.errors import UsageError
from hardnet_analysis.shapes import InputShape
from hardnet_analysis.train.data import IMAGENET_MEAN, IMAGENET_STD, DataSplit

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MASK_MODES = ("L", "P", "I;16", "I")
LAYOUT = "train/images, train/labels, val/images, val/labels"

Pair = tuple[Path, Path]
MaskSample = tuple[torch.Tensor, torch.Tensor] | None


def pairs(root: Path, split: str) -> list[Pair]:
    """``(image, mask)`` paths of `split`, sorted by image name; a UsageError if a folder, an
    image or a mask is missing."""
    images_dir, labels_dir = root / split / "images", root / split / "labels"
    for folder in (images_dir, labels_dir):
        if not folder.is_dir():
            raise UsageError(
                f"{str(root)!r} has no {split}/{folder.name}/ folder; expected {LAYOUT}"
            )
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise UsageError(f"{str(images_dir)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    masks = {p.stem: p for p in labels_dir.iterdir() if p.suffix.lower() == ".png"}
    missing = [p.name for p in images if p.stem not in masks]
    if missing:
        raise UsageError(
            f"{str(labels_dir)!r} has no mask for {len(missing)} image(s), e.g. {missing[0]!r} "
            "(a mask is labels/<image name>.png)"
        )
    return [(p, masks[p.stem]) for p in images]


def read_mask(path: Path) -> np.ndarray[Any, Any]:
    """The mask's class indices as a 2-D integer array; a UsageError if it is not one channel."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as mask:
            if mask.mode not in MASK_MODES:
                raise UsageError(
                    f"mask {str(path)!r} has mode {mask.mode}; masks are single-channel PNGs "
                    f"({', '.join(MASK_MODES)}) of class indices"
                )
            return np.asarray(mask)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise UsageError(f"mask {str(path)!r} cannot be decoded ({exc})") from None


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header, without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise UsageError(f"image {str(path)!r} cannot be decoded ({exc})") from None


def scan(split_pairs: list[Pair], ignore_index: int) -> int:
    """Check every pair (sizes agree, indices >= 0); returns the largest class index found
    (-1 if every pixel is ignored)."""
    largest = -1
    for image, mask_path in split_pairs:
        mask = read_mask(mask_path)
        size, image_size = (mask.shape[1], mask.shape[0]), _image_size(image)
        if image_size != size:
            raise UsageError(
                f"mask {str(mask_path)!r} is {size[0]}x{size[1]} (WxH) but its image "
                f"{image.name!r} is {image_size[0]}x{image_size[1]}"
            )
        if mask.size and int(mask.min()) < 0:
            raise UsageError(f"mask {str(mask_path)!r} holds negative values")
        values = np.flatnonzero(np.bincount(mask.ravel().astype(np.int64)))
        values = values[values != ignore_index]
        if values.size:
            largest = max(largest, int(values[-1]))
    return largest


def _range_check(found: int, num_classes: int, ignore_index: int, data: str) -> None:
    if found >= num_classes:
        raise UsageError(
            f"{data!r}: a mask holds class index {found}, out of range for {num_classes} classes "
            f"(0..{num_classes - 1}, ignore index {ignore_index}); check --num-classes and "
            "--ignore-index"
        )


def joint_transforms(size: tuple[int, int], train: bool) -> Callable[..., Any]:
    """The transforms applied to an ``(image, mask)`` pair (see the module docstring)."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    steps: list[Callable[..., Any]]
    if train:
        aspect = size[1] / size[0]
        steps = [
            v2.RandomResizedCrop(size, scale=(0.5, 1.0), ratio=(aspect * 3 / 4, aspect * 4 / 3)),
            v2.RandomHorizontalFlip(),
        ]
    else:
        steps = [v2.Resize(size)]
    dtype = {tv_tensors.Image: torch.float32, "others": None}
    steps += [v2.ToDtype(dtype, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    composed: Callable[..., Any] = v2.Compose(steps)
    return composed


class SegmentationFolder(Dataset[MaskSample]):
    """Image and mask pairs; an item is ``(3xHxW float image, HxW int64 mask)``, or None for a
    file that no longer decodes (`collate_skipping` counts it)."""

    def __init__(self, split_pairs: list[Pair], transform: Callable[..., Any]) -> None:
        self.pairs = split_pairs
        self.transform = transform

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> MaskSample:
        from PIL import Image, UnidentifiedImageError
        from torchvision import tv_tensors
        from torchvision.transforms.v2.functional import pil_to_tensor

        image_path, mask_path = self.pairs[index]
        try:
            with Image.open(image_path) as image:
                pixels = pil_to_tensor(image.convert("RGB"))
            mask = torch.from_numpy(read_mask(mask_path).astype(np.int64))
        except (OSError, UnidentifiedImageError, ValueError, UsageError):
            return None
        image_out, mask_out = self.transform(tv_tensors.Image(pixels), tv_tensors.Mask(mask))
        return image_out.as_subclass(torch.Tensor), mask_out.as_subclass(torch.Tensor)


def load_segmentation(
    data: str,
    shape: InputShape | None,
    ignore_index: int = 255,
    num_classes: int | None = None,
) -> DataSplit:
    """The `DataSplit` of a segmentation folder (see the module docstring) at `shape`'s (h, w);
    None is the first training image's."""
    root = Path(data)
    if not root.is_dir():
        raise UsageError(f"data directory {data!r} does not exist")
    train_pairs, val_pairs = pairs(root, "train"), pairs(root, "val")
    found = max(scan(train_pairs, ignore_index), scan(val_pairs, ignore_index))
    if found < 0:
        raise UsageError(f"{data!r}: every mask pixel is the ignore index {ignore_index}")
    classes = num_classes or found + 1
    _range_check(found, classes, ignore_index, data)
    if shape is None:
        width, height = _image_size(train_pairs[0][0])
        shape = InputShape.of_image((height, width))
    size = shape.hw
    return DataSplit(
        "segmentation",
        SegmentationFolder(train_pairs, joint_transforms(size, train=True)),
        SegmentationFolder(val_pairs, joint_transforms(size, train=False)),
        num_classes=classes,
        input_shape=shape,
    )
