"""Offline datasets: ImageFolder directories, CIFAR python pickles, and scikit-learn's digits.

Nothing is downloaded. Every loader returns a `DataSplit`: train and validation datasets whose
items are ``(image CHW float tensor, label)`` or ``None`` for a file that cannot be decoded
(`collate_skipping` drops those and counts them). Segmentation folders, whose labels are masks,
are `hardnet_analysis.train.segdata`'s.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from hardnet_analysis.errors import UsageError
from hardnet_analysis.shapes import InputShape

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)

#: A label is a class index, or a mask (an HxW tensor of indices) for segmentation.
Sample = tuple[torch.Tensor, int | torch.Tensor] | None


@dataclass
class DataSplit:
    """Train and validation sets of one dataset.

    `in_memory` data gains nothing from loader processes, so the loop uses none for it.
    `input_shape` is one sample's shape, batch 1: ``InputShape(((1, 3, 32, 32),))`` for CIFAR.
    """

    name: str
    train: Dataset[Any]
    val: Dataset[Any]
    num_classes: int
    input_shape: InputShape
    in_memory: bool = False


def collate_skipping(batch: Sequence[Sample]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Stack the decodable samples (labels as N indices or N masks); the third value counts the
    skipped ones (``None``)."""
    kept = [s for s in batch if s is not None]
    skipped = len(batch) - len(kept)
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.long), skipped
    images = torch.stack([s[0] for s in kept])
    labels = [s[1] for s in kept]
    if isinstance(labels[0], torch.Tensor):
        return images, torch.stack(labels).long(), skipped  # type: ignore[arg-type]
    return images, torch.tensor(labels, dtype=torch.long), skipped


def detect_dataset(data: str | None) -> str:
    """``digits`` without a directory, ``cifar`` for CIFAR pickles, else ``folder``."""
    if data is None:
        return "digits"
    root = Path(data)
    if _cifar_root(root) is not None:
        return "cifar"
    return "folder"


def load_data(dataset: str, data: str | None, shape: InputShape | None) -> DataSplit:
    """The `DataSplit` for a dataset kind (``auto`` detects it from `data`) at `shape`'s square
    side (None: the dataset's own); a split without a usable image is an error
    (`require_usable`)."""
    if data is not None and not Path(data).is_dir():
        problem = "is a file" if Path(data).exists() else "does not exist"
        raise UsageError(f"data directory {data!r} {problem}")
    image_size = None if shape is None else shape.hw[0]  # TrainConfig checked it is square
    kind = detect_dataset(data) if dataset == "auto" else dataset
    if kind == "digits":
        return load_digits(image_size or 32)
    assert data is not None
    if kind == "cifar":
        split = load_cifar(data, image_size or 32)
    else:
        split = load_folder(data, image_size or 224)
    require_usable(split, data)
    return split


def require_usable(split: DataSplit, data: str) -> None:
    """A UsageError unless the train and the validation split each hold a decodable image.

    Samples are tried in order until one decodes, so a good folder costs one image, and only a
    folder with nothing usable is read through (a run on it would train on nothing).
    """
    for name, dataset in (("train", split.train), ("val", split.val)):
        size = len(dataset)  # type: ignore[arg-type]
        if size == 0:
            raise UsageError(f"{data!r} has no {name} images")
        if all(dataset[i] is None for i in range(size)):
            raise UsageError(
                f"{data!r}: none of the {size} {name} images can be decoded (zero usable images)"
            )


# --- digits ------------------------------------------------------------------------------------


def load_digits(image_size: int = 32, val_fraction: float = 0.2) -> DataSplit:
    """scikit-learn's 1,797 8x8 handwritten digits, upsampled bilinearly to 3 x size x size.

    Pixel values 0..16 are scaled to [-1, 1]. The split is fixed (a seed-0 permutation):
    359 validation images and 1,438 training images at the default fraction 0.2.
    """
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32)) / 16.0
    images = torch.nn.functional.interpolate(
        images.unsqueeze(1), size=(image_size, image_size), mode="bilinear", align_corners=False
    )
    images = ((images - 0.5) / 0.5).expand(-1, 3, -1, -1).contiguous()
    labels = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    n_val = round(len(labels) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    return DataSplit(
        "digits",
        TensorDataset(images[train], labels[train]),
        TensorDataset(images[val], labels[val]),
        num_classes=10,
        input_shape=InputShape.of_image(image_size),
        in_memory=True,
    )


# --- CIFAR -------------------------------------------------------------------------------------

_CIFAR_LAYOUTS = {
    "cifar10": ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "batches.meta"),
    "cifar100": (["train"], ["test"], "meta"),
}


def _cifar_root(root: Path) -> Path | None:
    """`root` or its ``cifar-10-batches-py``/``cifar-100-python`` child if it holds the pickles."""
    for candidate in (root, root / "cifar-10-batches-py", root / "cifar-100-python"):
        for train_files, test_files, _ in _CIFAR_LAYOUTS.values():
            if all((candidate / f).is_file() for f in train_files + test_files):
                return candidate
    return None


def _unpickle(path: Path) -> dict[bytes, Any]:
    try:
        with path.open("rb") as handle:
            document = pickle.load(handle, encoding="bytes")
    except Exception as exc:  # a truncated or foreign file
        raise UsageError(f"CIFAR file {str(path)!r} cannot be read: {exc}") from None
    if not isinstance(document, dict) or b"data" not in document:
        raise UsageError(f"CIFAR file {str(path)!r} has no 'data' entry")
    return document


def _cifar_arrays(files: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    images: list[np.ndarray[Any, Any]] = []
    labels: list[int] = []
    for path in files:
        batch = _unpickle(path)
        key = b"labels" if b"labels" in batch else b"fine_labels"
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(int(v) for v in batch[key])
    return torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.long)


class CifarDataset(Dataset[Sample]):
    """CIFAR uint8 images in memory; training adds RandomCrop(pad 4) + horizontal flip."""

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, size: int, augment: bool
    ) -> None:
        from torchvision.transforms import v2

        steps: list[Callable[..., Any]] = [v2.ToDtype(torch.float32, scale=True)]
        if size != 32:
            steps.append(v2.Resize((size, size), antialias=True))
        if augment:
            steps += [v2.RandomCrop(size, padding=size // 8), v2.RandomHorizontalFlip()]
        steps.append(v2.Normalize(CIFAR_MEAN, CIFAR_STD))
        self.transform = v2.Compose(steps)
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Sample:
        return self.transform(self.images[index]), int(self.labels[index])


def load_cifar(data: str, image_size: int = 32) -> DataSplit:
    """CIFAR-10 (``data_batch_1..5``, ``test_batch``) or CIFAR-100 (``train``, ``test``) pickles.

    The class count is the length of the label names in the meta file, else the largest label + 1.
    """
    root = _cifar_root(Path(data))
    if root is None:
        raise UsageError(
            f"{data!r} holds no CIFAR python batches (CIFAR-10: data_batch_1..5 + test_batch; "
            "CIFAR-100: train + test)"
        )
    name, (train_files, test_files, meta) = next(
        (n, layout)
        for n, layout in _CIFAR_LAYOUTS.items()
        if all((root / f).is_file() for f in layout[0] + layout[1])
    )
    train_x, train_y = _cifar_arrays([root / f for f in train_files])
    val_x, val_y = _cifar_arrays([root / f for f in test_files])
    num_classes = int(max(train_y.max(), val_y.max())) + 1
    if (root / meta).is_file():
        names = _unpickle_meta(root / meta)
        num_classes = max(num_classes, len(names))
    return DataSplit(
        name,
        CifarDataset(train_x, train_y, image_size, augment=True),
        CifarDataset(val_x, val_y, image_size, augment=False),
        num_classes=num_classes,
        input_shape=InputShape.of_image(image_size),
    )


def _unpickle_meta(path: Path) -> list[Any]:
    try:
        with path.open("rb") as handle:
            meta = pickle.load(handle, encoding="bytes")
    except Exception:
        return []
    for key in (b"label_names", b"fine_label_names"):
        if isinstance(meta, dict) and key in meta:
            return list(meta[key])
    return []


# --- image folders -----------------------------------------------------------------------------


class SkippingImageFolder(Dataset[Sample]):
    """An ImageFolder whose undecodable files yield ``None`` instead of raising."""

    def __init__(self, root: Path, transform: Callable[..., Any]) -> None:
        from torchvision.datasets import ImageFolder

        try:
            self.folder = ImageFolder(str(root))
        except (FileNotFoundError, OSError) as exc:
            raise UsageError(
                f"{str(root)!r} is not an image folder ({exc}); expected "
                "train/<class>/<image> and val/<class>/<image>"
            ) from None
        self.transform = transform

    @property
    def classes(self) -> list[str]:
        classes: list[str] = self.folder.classes
        return classes

    def __len__(self) -> int:
        return len(self.folder.samples)

    def __getitem__(self, index: int) -> Sample:
        from PIL import Image, UnidentifiedImageError

        path, label = self.folder.samples[index]
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError):
            return None
        return self.transform(rgb), int(label)


def folder_transforms(size: int) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """ImageNet transforms: train RandomResizedCrop + flip; eval Resize(size*256/224) + center crop.

    At 224 the eval resize is 256, as in the recipe.
    """
    from torchvision import transforms as t

    normalize = t.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train = t.Compose(
        [t.RandomResizedCrop(size), t.RandomHorizontalFlip(), t.ToTensor(), normalize]
    )
    val = t.Compose(
        [t.Resize(round(size * 256 / 224)), t.CenterCrop(size), t.ToTensor(), normalize]
    )
    return train, val


def _differ(train: SkippingImageFolder, val: SkippingImageFolder) -> str:
    """Which classes only one split has, e.g. ``cat only in train/, dog only in val/``."""
    only = [
        f"{', '.join(sorted(set(a.classes) - set(b.classes)))} only in {where}/"
        for a, b, where in ((train, val, "train"), (val, train, "val"))
        if set(a.classes) - set(b.classes)
    ]
    return "; ".join(only)


def load_folder(data: str, image_size: int = 224) -> DataSplit:
    """``DATA/train/<class>/*`` and ``DATA/val/<class>/*``; both must list the same classes."""
    root = Path(data)
    missing = [part for part in ("train", "val") if not (root / part).is_dir()]
    if missing:
        raise UsageError(
            f"{data!r} has no {' or '.join(m + '/' for m in missing)} directory; expected an "
            "image folder (train/<class>/<image>, val/<class>/<image>) or CIFAR python batches"
        )
    train_tf, val_tf = folder_transforms(image_size)
    train = SkippingImageFolder(root / "train", train_tf)
    val = SkippingImageFolder(root / "val", val_tf)
    if train.classes != val.classes:
        raise UsageError(f"{data!r}: train/ and val/ list different classes: {_differ(train, val)}")
    return DataSplit("folder", train, val, len(train.classes), InputShape.of_image(image_size))
