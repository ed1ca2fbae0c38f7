"""The model registry: names -> tiny entry functions that return definitions (pure data)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from hardnet_analysis.errors import UnknownModelError


class NetworkDef(Protocol):
    """What every family's top-level definition offers."""

    @property
    def name(self) -> str: ...

    @property
    def family(self) -> str: ...


DefT = TypeVar("DefT", bound=NetworkDef)
EntryFn = Callable[..., NetworkDef]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its entry function and what is published about it."""

    name: str
    family: str
    build: EntryFn
    description: str
    published: dict[str, float]
    input_size: int = 224


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    family: str,
    description: str,
    published: dict[str, float] | None = None,
    input_size: int = 224,
) -> Callable[[Callable[[int], DefT]], Callable[[int], DefT]]:
    """Register an entry function ``name(num_classes=<its default>) -> definition`` under its own
    name; `input_size` is the model's native square input (224 for ImageNet, 32 for CIFAR)."""

    def decorator(fn: Callable[[int], DefT]) -> Callable[[int], DefT]:
        name = fn.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(
            name, family, fn, description, dict(published or {}), input_size
        )
        return fn

    return decorator


def list_models(family: str | None = None) -> list[str]:
    """Registered model names, sorted; only those of `family` when given."""
    return sorted(n for n, e in _REGISTRY.items() if family is None or e.family == family)


def get_entry(name: str) -> ModelEntry:
    """The entry for `name`; an unknown name raises UnknownModelError naming the closest ones."""
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        close = difflib.get_close_matches(name.lower(), list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}{hint} (`hda models` lists all {len(_REGISTRY)})"
        ) from None


def get_definition(name: str, num_classes: int | None = None) -> NetworkDef:
    """The definition of registered model `name`, with `num_classes` outputs (None: the entry's
    own default, 1000 for ImageNet models and 10 for the CIFAR ones)."""
    build = get_entry(name).build
    return build() if num_classes is None else build(num_classes)
