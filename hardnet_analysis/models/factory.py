"""`create_model`: names or definitions -> torch modules, optionally with official weights."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.registry import NetworkDef, build_module
from hardnet_analysis.resolve import ModuleSpec, resolve


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a state dict file into `model` strictly; a mismatch names missing/unexpected keys."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"weights file {str(file)!r} does not exist")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for unreadable files
        raise UsageError(
            f"weights file {str(file)!r} cannot be read as a state dict: {exc}"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UsageError(
            f"weights file {str(file)!r} holds a {type(state).__name__}, not a state dict"
        )
    expected = model.state_dict()
    problems = {
        "missing": [k for k in expected if k not in state],
        "unexpected": [k for k in state if k not in expected],
        "shape mismatch": [
            f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}"
            for k, v in state.items()
            if k in expected and tuple(v.shape) != tuple(expected[k].shape)
        ],
    }
    parts = [f"{label}: {_shorten(keys)}" for label, keys in problems.items() if keys]
    if parts:
        raise UsageError(f"weights file {str(file)!r} does not fit the model; " + "; ".join(parts))
    model.load_state_dict(state)


def _shorten(keys: list[str], shown: int = 5) -> str:
    more = f", ... ({len(keys)} in all)" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def create_model(
    name_or_definition: str | NetworkDef,
    num_classes: int | None = None,
    weights: str | Path | None = None,
) -> nn.Module:
    """Build the torch model of a registered name, a definition file (``*.json``) or a definition.

    `weights` is a path to a state dict (e.g. the official ``hardnet68-5d684880.pth``); nothing is
    downloaded. `num_classes` applies to names (None: the model's own, 1000 for ImageNet models
    and 10 for the CIFAR ones); a definition carries its own head.
    """
    target = resolve(name_or_definition, num_classes)
    model = target.build() if isinstance(target, ModuleSpec) else build_module(target)
    if weights is not None:
        load_weights(model, weights)
    return model
