"""`create_model`: names or definitions -> torch modules, optionally with official weights."""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.registry import NetworkDef, build_module
from hardnet_analysis.graph.traced import uncompiled
from hardnet_analysis.models.checkpoints import (
    LoadedWeights,
    fill_batches_tracked,
    mismatches,
    read_checkpoint,
    rename_legacy_dense,
    strip_wrapper_prefixes,
    unwrap,
)
from hardnet_analysis.resolve import ModuleSpec, resolve

_log = logging.getLogger(__name__)


def load_weights(model: nn.Module, path: str | Path) -> LoadedWeights:
    """Load a weights file into `model` strictly, after fitting the layouts found in the wild.

    Accepted: a state dict, or one under ``state_dict``/``model``/``model_ema``/
    ``state_dict_ema`` (possibly nested); keys all prefixed ``module.`` (`DataParallel`/DDP) or
    ``_orig_mod.`` (saved from a `torch.compile` d module), in any nesting; a compiled `model`
    (loaded into the module it wraps);
    legacy torchvision DenseNet keys (``norm.1``); no BatchNorm ``num_batches_tracked``. Returns
    what was done; a file that still does not fit raises `UsageError` naming the missing,
    unexpected and mis-shaped keys.
    """
    file = Path(path)
    model = uncompiled(model)  # a compiled module's own keys all start with _orig_mod.
    state, wrapper, alternatives = unwrap(read_checkpoint(file), file)
    expected = model.state_dict()
    # The fitting steps change `state` in place, in this order: each sees the keys left before.
    loaded = LoadedWeights(
        file,
        wrapper,
        alternatives,
        stripped_prefix=strip_wrapper_prefixes(state, expected),
        legacy_renamed=rename_legacy_dense(state, expected),
        batches_tracked_filled=fill_batches_tracked(state, expected),
    )
    problems = mismatches(state, expected)
    parts = [f"{label}: {_shorten(keys)}" for label, keys in problems.items() if keys]
    if parts:
        # What was tried goes before the first "; ": callers split the key lists off there.
        tried = loaded.changes()
        how = f" ({', '.join(tried)})" if tried else ""
        raise UsageError(
            f"weights file {str(file)!r}{how} does not fit the model; " + "; ".join(parts)
        )
    model.load_state_dict(state)
    return loaded


def _shorten(keys: list[str], shown: int = 5) -> str:
    more = f", ... ({len(keys)} in all)" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def create_model(
    name_or_definition: str | NetworkDef,
    num_classes: int | None = None,
    weights: str | Path | None = None,
) -> nn.Module:
    """Build the torch model of a registered name, a definition file (``*.json``) or a definition.

    `weights` is a path to a state dict (e.g. the official ``hardnet68-5d684880.pth``) or a
    training checkpoint holding one (see `load_weights`; what was done is logged at INFO);
    nothing is downloaded. `num_classes` applies to names (None: the model's own, 1000 for
    ImageNet models and 10 for the CIFAR ones); a definition carries its own head.
    """
    target = resolve(name_or_definition, num_classes)
    model = target.build() if isinstance(target, ModuleSpec) else build_module(target)
    if weights is not None:
        _log.info("%s", load_weights(model, weights))
    return model
