"""Resolve what the user names into a definition or a module builder.

- a registered model name (``hardnet68``) -> its definition (pure data, analysed without torch);
- a definition file (``*.json``) -> the definition it holds;
- a torchvision classification builder name (``resnet50``) -> a `ModuleSpec`;
- definitions, `ModuleSpec`s and ``nn.Module``s pass through unchanged.

A `ModuleSpec` builds its module on demand, on the meta device for analysis (no weights, no
initialisation cost) or on a real device for profiling and training. Only the torchvision branch
imports torch.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardnet_analysis.definitions.registry import get_definition, get_entry, list_models
from hardnet_analysis.definitions.serialize import load_definition
from hardnet_analysis.errors import UnknownModelError, UsageError

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ModuleSpec:
    """A named recipe for an ``nn.Module``: `factory(**kwargs)` builds it."""

    name: str
    factory: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self, device: str | None = None) -> nn.Module:
        """Build the module, on `device` (``"meta"`` for analysis) when given."""
        import torch
        from torch import nn

        with torch.device(device) if device else contextlib.nullcontext():
            module = self.factory(**self.kwargs)
        if not isinstance(module, nn.Module):
            kind = type(module).__name__
            raise UsageError(f"{self.name} returned a {kind}, not a torch nn.Module")
        return module


def torchvision_classifiers() -> list[str]:
    """Names of torchvision's classification model builders (imports torchvision)."""
    import torchvision

    names: list[str] = torchvision.models.list_models(module=torchvision.models)
    return names


def _torchvision_spec(name: str, num_classes: int | None) -> ModuleSpec | None:
    try:
        import torchvision
    except ImportError:
        return None
    if name not in torchvision_classifiers():
        return None
    kwargs = {"name": name, "num_classes": 1000 if num_classes is None else num_classes}
    return ModuleSpec(name, torchvision.models.get_model, kwargs)


def resolve(target: Any, num_classes: int | None = None) -> Any:
    """A definition or a `ModuleSpec` for a name or path; anything else is returned as it is.

    `num_classes` None keeps the model's own default (1000 for ImageNet models, 10 for CIFAR)."""
    if isinstance(target, Path) or (isinstance(target, str) and target.endswith(".json")):
        return load_definition(target)
    if not isinstance(target, str):
        return target
    if target.lower() in list_models():
        return get_definition(target, num_classes)
    spec = _torchvision_spec(target, num_classes)
    if spec is not None:
        return spec
    known = list_models() + torchvision_classifiers()
    close = difflib.get_close_matches(target.lower(), known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownModelError(
        f"unknown model {target!r}{hint} (a registered name, a torchvision classifier or a .json "
        "definition; `hda models` lists the registered ones)"
    )


def native_input_size(target: Any) -> int:
    """The square input a model is made for: a registered entry's own (32 for the CIFAR models),
    else 224."""
    if isinstance(target, str) and target.lower() in list_models():
        return get_entry(target).input_size
    return 224
