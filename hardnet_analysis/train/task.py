"""What a run learns. A `Task` is a dataset kind, a loss, metrics and a model-output check:

- `Classification`: one class per image (folders, CIFAR, digits); cross-entropy with optional
  label smoothing; top-1 and top-5 (%); logits (N, classes). ``best.pt`` follows top-1.
- `Segmentation`: one class per pixel (`hardnet_analysis.train.segdata`); cross-entropy over the
  pixels whose label is not the ignore index; mIoU and pixel accuracy (%); logits
  (N, classes, H, W). ``best.pt`` follows mIoU.

Metrics are kept as sums (floats by name) that add over batches and data-parallel ranks; a task's
`summarize` divides them once at the end of an evaluation.

mIoU convention: per class c, IoU_c = TP_c / (TP_c + FP_c + FN_c), the counts taken over every
non-ignored pixel of the whole validation set (not per image); mIoU is the mean of IoU_c over the
classes present in the labels or the predictions (union > 0), in percent. A class absent from
both is left out rather than counted as 0 or 100. Pixel accuracy is correct / non-ignored pixels.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from hardnet_analysis.train.config import TrainConfig
from hardnet_analysis.train.data import DataSplit, load_data
from hardnet_analysis.train.model import check_dense_output, check_output
from hardnet_analysis.train.runlog import METRIC_FIELDS
from hardnet_analysis.train.segdata import load_segmentation

Sums = dict[str, float]


class Task(ABC):
    """A task's parts (see the module docstring); `score` is the epoch record's key that
    ``best.pt`` maximises, `train_accuracy` the record's training accuracy key, `fields` the
    columns of ``metrics.csv``."""

    name: ClassVar[str]
    score: ClassVar[str]
    train_accuracy: ClassVar[str]
    fields: ClassVar[tuple[str, ...]]

    @abstractmethod
    def load(self, config: TrainConfig) -> DataSplit: ...

    @abstractmethod
    def criterion(self, config: TrainConfig) -> nn.Module: ...

    @abstractmethod
    def check_output(self, model: nn.Module, spec: str, classes: int, split: DataSplit) -> None:
        """A UsageError unless `model`'s output fits this task (one forward pass on zeros)."""

    @abstractmethod
    def train_sums(self, logits: torch.Tensor, labels: torch.Tensor) -> Sums:
        """Of one training batch: ``correct`` predictions and the ``counted`` labels."""

    @abstractmethod
    def eval_sums(self, logits: torch.Tensor, labels: torch.Tensor) -> Sums:
        """Of one validation batch: what `summarize` needs, summed (``loss`` included)."""

    @abstractmethod
    def summarize(self, sums: Sums) -> Sums:
        """Means of evaluation sums (metric names without ``val_``), ``images`` and
        ``skipped`` passed through."""

    @abstractmethod
    def metrics_text(self, values: dict[str, Any], prefix: str = "val_") -> str:
        """The validation metrics for a log line, e.g. ``top-1 93.06 top-5 99.72``."""

    @property
    def best_key(self) -> str:
        """The score's key in ``best.pt`` (``top1``, ``miou``)."""
        return self.score.removeprefix("val_")

    def zero_sums(self, num_classes: int) -> Sums:
        """Evaluation sums before the first batch: every key a rank reduces, so ranks that saw
        different classes (or no batch) still add the same keys."""
        return {"loss": 0.0, "images": 0.0, "skipped": 0.0}

    def record(self, train: Sums, val: Sums) -> dict[str, float]:
        """The epoch record's loss and metric columns, from train and summarized val sums."""
        values = {"train_loss": train["loss"] / max(train["images"], 1.0)}
        values[self.train_accuracy] = 100.0 * train["correct"] / max(train["counted"], 1.0)
        values |= {f: val[f.removeprefix("val_")] for f in self.fields if f.startswith("val_")}
        return values


class Classification(Task):
    name = "classification"
    score = "val_top1"
    train_accuracy = "train_top1"
    fields = METRIC_FIELDS

    def load(self, config: TrainConfig) -> DataSplit:
        return load_data(config.dataset, config.data, config.image_size)

    def criterion(self, config: TrainConfig) -> nn.Module:
        return nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    def check_output(self, model: nn.Module, spec: str, classes: int, split: DataSplit) -> None:
        check_output(model, spec, classes, split.input_shape.hw)

    def train_sums(self, logits: torch.Tensor, labels: torch.Tensor) -> Sums:
        correct = float((logits.detach().argmax(1) == labels).sum())
        return {"correct": correct, "counted": float(len(labels))}

    def eval_sums(self, logits: torch.Tensor, labels: torch.Tensor) -> Sums:
        """Cross-entropy summed per image, top-1 and top-5 hits (top-min(5, classes))."""
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hits = top == labels[:, None]
        return {
            "loss": float(nn.functional.cross_entropy(logits, labels, reduction="sum")),
            "top1": float(hits[:, 0].sum()),
            "top5": float(hits.any(dim=1).sum()),
        }

    def zero_sums(self, num_classes: int) -> Sums:
        return {**super().zero_sums(num_classes), "top1": 0.0, "top5": 0.0}

    def summarize(self, sums: Sums) -> Sums:
        """Loss per image and top-1/top-5 in percent."""
        n = max(sums["images"], 1.0)
        means = {k: sums[k] / n * (1.0 if k == "loss" else 100.0) for k in ("loss", "top1", "top5")}
        return {**means, "images": sums["images"], "skipped": sums["skipped"]}

    def metrics_text(self, values: dict[str, Any], prefix: str = "val_") -> str:
        return f"top-1 {values[prefix + 'top1']:.2f} top-5 {values[prefix + 'top5']:.2f}"


class Segmentation(Task):
    """Per-pixel classes; `ignore_index` pixels count nowhere (see the module docstring)."""

    name = "segmentation"
    score = "val_miou"
    train_accuracy = "train_pixel_acc"
    fields = (
        "epoch", "train_loss", "train_pixel_acc", "val_loss", "val_miou", "val_pixel_acc",
        *METRIC_FIELDS[METRIC_FIELDS.index("lr"):],
    )  # fmt: skip

    def __init__(self, ignore_index: int = 255) -> None:
        self.ignore_index = ignore_index

    def load(self, config: TrainConfig) -> DataSplit:
        assert config.data is not None  # TrainConfig requires it for segmentation
        return load_segmentation(
            config.data, config.image_size, config.ignore_index, config.num_classes
        )

    def criterion(self, config: TrainConfig) -> nn.Module:
        return nn.CrossEntropyLoss(
            ignore_index=self.ignore_index, label_smoothing=config.label_smoothing
        )

    def check_output(self, model: nn.Module, spec: str, classes: int, split: DataSplit) -> None:
        check_dense_output(model, spec, classes, split.input_shape.hw)

    def train_sums(self, logits: torch.Tensor, labels: torch.Tensor) -> Sums:
        valid = labels != self.ignore_index
        correct = (logits.detach().argmax(1) == labels) & valid
        return {"correct": float(correct.sum()), "counted": float(valid.sum())}

    def eval_sums(self, logits: torch.Tensor, labels: torch.Tensor) -> Sums:
        """Cross-entropy summed over labelled pixels, their count, and per class c the
        intersection ``inter.c`` (true positives), ``pred.c`` (TP + FP) and ``label.c``
        (TP + FN), from the confusion matrix."""
        classes = logits.shape[1]
        valid = labels != self.ignore_index
        target, predicted = labels[valid], logits.argmax(1)[valid]
        confusion = torch.bincount(target * classes + predicted, minlength=classes * classes)
        confusion = confusion.reshape(classes, classes).double()
        loss = nn.functional.cross_entropy(
            logits, labels, ignore_index=self.ignore_index, reduction="sum"
        )
        sums = {"loss": float(loss), "pixels": float(valid.sum())}
        for key, column in (
            ("inter", confusion.diag()),
            ("pred", confusion.sum(0)),
            ("label", confusion.sum(1)),
        ):
            sums |= {f"{key}.{c}": float(v) for c, v in enumerate(column.tolist())}
        return sums

    def zero_sums(self, num_classes: int) -> Sums:
        keys = [f"{k}.{c}" for k in ("inter", "pred", "label") for c in range(num_classes)]
        return {**super().zero_sums(num_classes), "pixels": 0.0, **dict.fromkeys(keys, 0.0)}

    def summarize(self, sums: Sums) -> Sums:
        """Loss per labelled pixel, mIoU and pixel accuracy in percent."""
        classes = sum(1 for k in sums if k.startswith("inter."))
        ious = []
        for c in range(classes):
            union = sums[f"pred.{c}"] + sums[f"label.{c}"] - sums[f"inter.{c}"]
            if union > 0:
                ious.append(sums[f"inter.{c}"] / union)
        pixels = max(sums["pixels"], 1.0)
        correct = sum(sums[f"inter.{c}"] for c in range(classes))
        return {
            "loss": sums["loss"] / pixels,
            "miou": 100.0 * sum(ious) / max(len(ious), 1),
            "pixel_acc": 100.0 * correct / pixels,
            "images": sums["images"],
            "skipped": sums["skipped"],
        }

    def metrics_text(self, values: dict[str, Any], prefix: str = "val_") -> str:
        return f"mIoU {values[prefix + 'miou']:.2f} pixel acc {values[prefix + 'pixel_acc']:.2f}"


def make_task(config: TrainConfig) -> Task:
    """The `Task` that `config.task` names."""
    if config.task == "segmentation":
        return Segmentation(config.ignore_index)
    return Classification()
