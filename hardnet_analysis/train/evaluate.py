"""Validation accuracy of a model with given weights: what ``hda evaluate`` reports."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.data import DataLoader

from hardnet_analysis.train.data import collate_skipping, load_data
from hardnet_analysis.train.distributed import pick_device
from hardnet_analysis.train.model import build_for_classes, load_initial_weights
from hardnet_analysis.train.steps import evaluate_model, summarize


def evaluate_weights(
    model: str,
    weights: str | None,
    data: str | None,
    dataset: str = "auto",
    image_size: int | None = None,
    batch_size: int = 256,
    device: str = "auto",
    workers: int | None = None,
) -> dict[str, Any]:
    """Loss (mean cross-entropy per image), top-1 and top-5 (%) on the validation split.

    The model is built for the data's class count and `weights` (a state dict, ``best.pt`` or an
    official HarDNet checkpoint) must fit it exactly.
    """
    split = load_data(dataset, data, image_size)
    net, _ = build_for_classes(model, split.num_classes)
    if weights is not None:
        load_initial_weights(net, weights, split.num_classes)
    target = pick_device(device)
    net.to(target)
    if workers is None:
        workers = 0 if split.in_memory else min(4, os.cpu_count() or 1)
    loader: DataLoader[Any] = DataLoader(
        split.val, batch_size, num_workers=workers, collate_fn=collate_skipping
    )
    with torch.inference_mode():
        result = summarize(evaluate_model(net, loader, target))
    return {
        "model": model,
        "weights": weights,
        "dataset": split.name,
        "num_classes": split.num_classes,
        "image_size": split.image_size,
        "images": int(result["images"]),
        "skipped": int(result["skipped"]),
        "loss": result["loss"],
        "top1": result["top1"],
        "top5": result["top5"],
    }
