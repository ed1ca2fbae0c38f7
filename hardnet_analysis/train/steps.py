"""One pass over a loader: a training epoch (`train_one_epoch`) and an evaluation
(`evaluate_model`, with `summarize` turning its sums into means).

Both return sums over the images seen (loss summed per image, correct predictions, images,
undecodable files skipped), so data-parallel ranks can add theirs before dividing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from hardnet_analysis.errors import NonFiniteLossError
from hardnet_analysis.train.model import Hooks
from hardnet_analysis.train.progress import Reporter


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


def train_one_epoch(
    step: Step, loader: DataLoader[Any], first_iteration: int, total: int, reporter: Reporter
) -> dict[str, float]:
    """One pass over `loader`; returns sums: loss (per image), correct, images, skipped, seconds.

    `first_iteration` / `total` give the training progress handed to ``hda_set_progress``.
    """
    step.model.train()
    sums = {"loss": 0.0, "correct": 0.0, "images": 0.0, "skipped": 0.0}
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
        sums["correct"] += float((logits.detach().argmax(1) == labels).sum())
        sums["images"] += len(labels)
    if step.device.type == "cuda":
        torch.cuda.synchronize(step.device)
    sums["seconds"] = time.perf_counter() - start
    return sums


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    loader: DataLoader[Any],
    device: torch.device,
    channels_last: bool = False,
    amp: bool = False,
) -> dict[str, float]:
    """Sums over `loader`: cross-entropy (per image), top-1 and top-5 correct, images, skipped.

    Top-5 is top-min(5, classes). Divide by ``images`` for means (`summarize` does).
    """
    model.eval()
    sums = {"loss": 0.0, "top1": 0.0, "top5": 0.0, "images": 0.0, "skipped": 0.0}
    for images, labels, skipped in loader:
        sums["skipped"] += skipped
        if labels.numel() == 0:
            continue
        images, labels = _to_device(images, labels, device, channels_last)
        with torch.autocast(device.type, enabled=amp):
            logits = model(images).float()
        sums["loss"] += float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hits = top == labels[:, None]
        sums["top1"] += float(hits[:, 0].sum())
        sums["top5"] += float(hits.any(dim=1).sum())
        sums["images"] += len(labels)
    return sums


def summarize(sums: dict[str, float]) -> dict[str, float]:
    """Means from `evaluate_model` sums: loss per image and top-1/top-5 in percent."""
    n = max(sums["images"], 1.0)
    return {
        "loss": sums["loss"] / n,
        "top1": 100.0 * sums["top1"] / n,
        "top5": 100.0 * sums["top5"] / n,
        "images": sums["images"],
        "skipped": sums["skipped"],
    }
