"""Validation metrics of a model with given weights: what ``hda evaluate`` reports (top-1 and
top-5, or for ``--task segmentation`` mIoU and pixel accuracy, as `hardnet_analysis.train.task`
defines them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from hardnet_analysis.backends import pick
from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.registry import NetworkDef
from hardnet_analysis.families.serialize import from_dict
from hardnet_analysis.models.checkpoints import read_checkpoint
from hardnet_analysis.shapes import InputShape
from hardnet_analysis.train.config import TrainConfig
from hardnet_analysis.train.data import collate_skipping
from hardnet_analysis.train.model import build_for_classes, load_initial_weights
from hardnet_analysis.train.steps import evaluate_model
from hardnet_analysis.train.task import make_task


def carried_definition(weights: str) -> NetworkDef | None:
    """The definition a weights file carries beside its state dict (``converted.pt`` does: its
    weights fit the converted network, not the one trained), else None."""
    document = read_checkpoint(Path(weights))
    carried = document.get("definition") if isinstance(document, dict) else None
    if not isinstance(carried, dict):
        return None
    return from_dict(carried, where=f"the definition in {weights!r}")


def evaluate_weights(
    model: str,
    weights: str | None,
    data: str | None,
    dataset: str = "auto",
    image_size: InputShape | None = None,
    batch_size: int = 256,
    device: str = "auto",
    workers: int | None = None,
    random_weights: bool = False,
    task: str = "classification",
    ignore_index: int = 255,
    strict_device: bool = False,
) -> dict[str, Any]:
    """The task's validation metrics: loss (mean cross-entropy per image), top-1 and top-5 (%);
    for segmentation loss per labelled pixel, mIoU and pixel accuracy (%).

    The model is built for the data's class count and `weights` must fit it exactly: a run's
    ``last.pt`` or ``best.pt``, a plain or wrapped state dict, an official checkpoint, or
    ``converted.pt``, whose own definition is built instead of `model`. Without `weights` it is
    an error unless `random_weights` (an untrained model's score is rarely what was meant).
    `image_size` is ``--image-size``'s `InputShape` (``InputShape.of_image(16)``), None for the
    dataset's own.
    """
    if weights is None and not random_weights:
        raise UsageError(
            "no --weights given: pass a weights file (last.pt, best.pt, converted.pt or a state "
            "dict), or --random-weights to score the untrained model"
        )
    config = TrainConfig(
        model, data, dataset, image_size=image_size, task=task, ignore_index=ignore_index
    )
    kind = make_task(config)
    split = kind.load(config)
    carried = carried_definition(weights) if weights is not None else None
    net, _ = build_for_classes(carried or model, split.num_classes)
    if weights is not None:
        load_initial_weights(net, weights, split.num_classes)
    kind.check_output(net, model, split.num_classes, split)
    target = pick(device, strict_device).device
    net.to(target)
    if workers is None:
        workers = 0 if split.in_memory else min(4, os.cpu_count() or 1)
    loader: DataLoader[Any] = DataLoader(
        split.val, batch_size, num_workers=workers, collate_fn=collate_skipping
    )
    with torch.inference_mode():
        sums = evaluate_model(net, loader, target, task=kind, num_classes=split.num_classes)
    result = kind.summarize(sums)
    if not result["images"]:
        raise UsageError(f"zero usable validation images ({result['skipped']:.0f} skipped)")
    hw = split.input_shape.hw  # kept as before: a side for classification, [h, w] else
    return {
        "model": carried.name if carried is not None else model,
        "weights": weights,
        "task": kind.name,
        "dataset": split.name,
        "num_classes": split.num_classes,
        "image_size": hw[0] if kind.name == "classification" else list(hw),
        "images": int(result.pop("images")),
        "skipped": int(result.pop("skipped")),
        **result,
    }
