"""Checkpoints: everything a run needs to continue exactly, written atomically.

``last.pt`` holds the model, optimizer, scheduler and GradScaler states, the RNG states (python,
numpy, torch, CUDA), the finished epoch count, the best score so far (``best``: the task's, top-1
or mIoU; older checkpoints call it ``best_top1``) and the metric history. ``best.pt`` holds
``{"state_dict": ..., "epoch": ..., "top1" (or "miou"): ...}``, which `load_weights` (and
``hda evaluate --weights``) reads.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hardnet_analysis.backends import get_backend, list_backends
from hardnet_analysis.errors import UsageError
from hardnet_analysis.fileio import atomic_write_bytes

FORMAT = "hda-train-checkpoint"


def rng_state() -> dict[str, Any]:
    """The states of every random generator the loop draws from, as tensors and plain Python
    values only, so that checkpoints load with ``torch.load(weights_only=True)``."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (
            kind,
            torch.from_numpy(np.asarray(keys).astype(np.int64)),
            pos,
            has_gauss,
            cached,
        ),
        "torch": torch.get_rng_state(),
    }
    for name in list_backends():  # each device's generators, under its backend's name
        device_state = get_backend(name).rng_state()
        if device_state is not None:
            state[name] = device_state
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    for name in list_backends():
        if name in state:
            get_backend(name).set_rng_state(state[name])


def save(path: Path, document: dict[str, Any]) -> None:
    """`torch.save` into memory, then an atomic write: a crash never leaves a torn file."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **document}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def stored_config(path: Path) -> dict[str, Any]:
    """The training settings (``TrainConfig.to_dict()``) stored in checkpoint `path`; its
    tensors are memory-mapped, not read, so this costs little on any checkpoint size."""
    config = load(path, mmap=True).get("config")
    if not isinstance(config, dict):
        raise UsageError(
            f"checkpoint {str(path)!r} holds no training settings; it was left untouched"
        )
    return config


def load(path: Path, mmap: bool = False) -> dict[str, Any]:
    """Read a checkpoint written by `save`; anything else is a one-line UsageError.

    The file is only read, never changed, so a bad one stays for inspection.
    """
    if not path.is_file():
        raise UsageError(f"nothing to resume: {str(path)!r} does not exist")
    try:
        # weights_only: nothing in a checkpoint needs arbitrary unpickling (see rng_state).
        document = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises several types for torn or foreign files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(
            f"checkpoint {str(path)!r} cannot be read ({reason}); it was left untouched"
        ) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UsageError(
            f"checkpoint {str(path)!r} is not an hda training checkpoint; it was left untouched"
        )
    return document
