"""The bundled trainer: the HarDNet recipe on the user's data, resumable, DDP, and a search front
trained as an Optuna study by workers on any host.

Its modules import torch, except `hardnet_analysis.train.config` (the recipe as data, which the
CLI reads when it builds its parser). So this package's names are loaded on first use: importing
``hardnet_analysis.train.config`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hardnet_analysis.train.config import TrainConfig
    from hardnet_analysis.train.loop import TrainResult, train
    from hardnet_analysis.train.pool import train_front
    from hardnet_analysis.train.steps import evaluate_model

__all__ = ["TrainConfig", "TrainResult", "evaluate_model", "train", "train_front"]

#: Where each public name lives.
_HOMES = {
    "TrainConfig": "hardnet_analysis.train.config",
    "TrainResult": "hardnet_analysis.train.loop",
    "evaluate_model": "hardnet_analysis.train.steps",
    "train": "hardnet_analysis.train.loop",
    "train_front": "hardnet_analysis.train.pool",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
