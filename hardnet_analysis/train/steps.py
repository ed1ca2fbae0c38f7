"""One pass over a loader: a training epoch (`train_one_epoch`) and an evaluation
(`evaluate_model`, whose sums the task's `summarize` turns into means).

Both return sums over the images seen (loss summed per image, correct predictions, images,
undecodable files skipped, and the task's own metric sums), so data-parallel ranks can add
theirs before dividing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from hardnet_analysis.backends import backend_of
from hardnet_analysis.errors import NonFiniteLossError
from hardnet_analysis.train.model import Hooks
from hardnet_analysis.train.progress import Reporter
from hardnet_analysis.train.task import Classification, Sums, Task


def _to_device(
    images: torch.Tensor, labels: torch.Tensor, device: torch.device, channels_last: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    images = images.to(device, non_blocking=True, memory_format=fmt)
    return images, labels.to(device, non_blocking=True)


@dataclass
class Step:
    """What one iteration needs besides the batch."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    criterion: nn.Module
    scaler: torch.amp.GradScaler
    hooks: Hooks
    device: torch.device
    amp: bool
    channels_last: bool
    task: Task = field(default_factory=Classification)


def train_one_epoch(
    step: Step, loader: DataLoader[Any], first_iteration: int, total: int, reporter: Reporter
) -> dict[str, float]:
    """One pass over `loader`; returns sums: loss (batch mean times images), correct and
    counted labels (images, or labelled pixels), images, skipped, seconds.

    `first_iteration` / `total` give the training progress handed to ``hda_set_progress``.
    """
    step.model.train()
    sums = {"loss": 0.0, "correct": 0.0, "counted": 0.0, "images": 0.0, "skipped": 0.0}
    start = time.perf_counter()
    for i, (images, labels, skipped) in enumerate(loader):
        sums["skipped"] += skipped
        reporter.advance()
        if labels.numel() == 0:
            continue
        step.hooks.set_progress((first_iteration + i) / total)
        images, labels = _to_device(images, labels, step.device, step.channels_last)
        with torch.autocast(step.device.type, enabled=step.amp):
            logits = step.model(images)
            loss = step.criterion(logits, labels)
            extra = step.hooks.regularization()
            if extra is not None:
                loss = loss + extra
        step.optimizer.zero_grad(set_to_none=True)
        step.scaler.scale(loss).backward()
        step.scaler.step(step.optimizer)
        step.scaler.update()
        value = float(loss.detach())  # one sync per step, which the sum needs anyway
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"the training loss is {value} at iteration {first_iteration + i + 1} (the run "
                "diverged; last.pt holds the last finished epoch)"
            )
        sums["loss"] += value * len(labels)
        for key, count in step.task.train_sums(logits, labels).items():
            sums[key] += count
        sums["images"] += len(labels)
    backend_of(step.device).synchronize(step.device)
    sums["seconds"] = time.perf_counter() - start
    return sums


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    loader: DataLoader[Any],
    device: torch.device,
    channels_last: bool = False,
    amp: bool = False,
    task: Task | None = None,
    num_classes: int = 0,
) -> Sums:
    """Sums over `loader`: images, skipped, and `task`'s (default classification's: loss per
    image, top-1 and top-5 hits); `task.summarize` turns them into means. `num_classes` sizes
    the per-class sums of segmentation."""
    task = task or Classification()
    model.eval()
    sums = task.zero_sums(num_classes)
    for images, labels, skipped in loader:
        sums["skipped"] += skipped
        if labels.numel() == 0:
            continue
        images, labels = _to_device(images, labels, device, channels_last)
        with torch.autocast(device.type, enabled=amp):
            logits = model(images).float()
        for key, value in task.eval_sums(logits, labels).items():
            sums[key] = sums.get(key, 0.0) + value
        sums["images"] += len(labels)
    return sums
