"""The one registry: architecture families (their specs) and the models of their zoos.

A family is one folder under ``hardnet_analysis/families/`` whose ``__init__`` registers a
`FamilySpec`: the definition class (pure data, the JSON schema), the analytic graph builder
(no torch) and where its torch module builder lives (``"package.module:callable"``, imported
only when a module is built, so ``analyze()`` stays torch-free). Its zoo registers entry
functions with `register_model`. Families are found by scanning the package's folders, so
adding one needs no edit outside its own folder.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from hardnet_analysis.errors import UnknownModelError, UsageError
from hardnet_analysis.shapes import InputShape, InputShapeError

if TYPE_CHECKING:
    import networkx as nx
    from torch import nn

    from hardnet_analysis.families.parts import PartsFn


class NetworkDef(Protocol):
    """What every family's top-level definition offers (all definitions are frozen dataclasses).

    `num_classes` is the classifier's width (or a dense predictor's classes per pixel),
    `in_channels` the input's channels and `input_size` the input the model is made for: one
    side of a square (224 for ImageNet, 32 for CIFAR) or (height, width) in pixels (1024x2048
    for Cityscapes); `hardnet_analysis.resolve.native_input_size` reads it as (H, W).
    """

    @property
    def name(self) -> str: ...

    @property
    def family(self) -> str: ...

    @property
    def num_classes(self) -> int: ...

    @property
    def in_channels(self) -> int: ...

    @property
    def input_size(self) -> int | tuple[int, int]: ...

    def with_num_classes(self, num_classes: int) -> Any:
        """This definition with a classifier of `num_classes` outputs."""
        ...


DefT = TypeVar("DefT", bound=NetworkDef)
GraphBuilderFn = Callable[[Any, tuple[int, int, int, int]], "nx.DiGraph"]


@dataclass(frozen=True)
class FamilySpec:
    """Where each part of a family lives.

    `name` is the ``family`` field of its definitions and files; `definition` the top-level
    definition class; `graph` builds the analytic DAG at an NCHW shape; `module` names the
    callable that builds the torch module from a definition (``"pkg.mod:fn"``);
    `search_parts`, for families the architecture search can vary, cuts a definition into
    parts measured alone at an NCHW input shape (`hardnet_analysis.families.parts`).
    """

    name: str
    definition: type[Any]
    graph: GraphBuilderFn
    module: str
    description: str
    search_parts: PartsFn | None = None


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its entry function and what is published about it."""

    name: str
    family: str
    build: Callable[..., NetworkDef]
    description: str
    published: dict[str, float]


_FAMILIES: dict[str, FamilySpec] = {}
_MODELS: dict[str, ModelEntry] = {}


def register_family(spec: FamilySpec) -> FamilySpec:
    """Register a family (once, from its folder's ``__init__``)."""
    if spec.name in _FAMILIES and _FAMILIES[spec.name] != spec:
        raise ValueError(f"family {spec.name!r} is registered twice")
    _FAMILIES[spec.name] = spec
    return spec


def register_model(
    family: str, description: str, published: dict[str, float] | None = None
) -> Callable[[Callable[..., DefT]], Callable[..., DefT]]:
    """Register an entry function ``name(num_classes=<its default>) -> definition`` under its own
    name."""

    def decorator(fn: Callable[..., DefT]) -> Callable[..., DefT]:
        name = fn.__name__
        if name in _MODELS and _MODELS[name].build is not fn:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = ModelEntry(name, family, fn, description, dict(published or {}))
        return fn

    return decorator


def discover() -> None:
    """Import every family folder under ``hardnet_analysis.families`` not imported yet (each
    registers itself). One directory listing per search path (about 0.1 ms): lookups call it
    only when a name is missing, listings every time (a folder may have been added)."""
    # The package holding this module, loaded before it: importing it here would be a cycle.
    package = sys.modules[__name__.rpartition(".")[0]]
    for info in pkgutil.iter_modules(package.__path__):
        if info.ispkg:
            importlib.import_module(f"{package.__name__}.{info.name}")


def list_families() -> list[str]:
    """Registered family names, sorted."""
    discover()
    return sorted(_FAMILIES)


def get_family(name: str) -> FamilySpec:
    """The spec of family `name`; an unknown one is a UsageError listing the known ones."""
    if name not in _FAMILIES:
        discover()
    try:
        return _FAMILIES[name]
    except (KeyError, TypeError):
        raise UsageError(f"family {name!r} is not one of {', '.join(sorted(_FAMILIES))}") from None


def family_of(defn: NetworkDef) -> FamilySpec:
    """The spec of the family `defn` belongs to (by its ``family`` field and class)."""
    spec = get_family(defn.family)
    if not isinstance(defn, spec.definition):
        raise TypeError(f"{type(defn).__name__} is not a {spec.definition.__name__}")
    return spec


def list_models(family: str | None = None) -> list[str]:
    """Registered model names, sorted; only those of `family` when given."""
    discover()
    return sorted(n for n, e in _MODELS.items() if family is None or e.family == family)


def get_entry(name: str) -> ModelEntry:
    """The entry for `name`; an unknown name raises UnknownModelError naming the closest ones."""
    if name.lower() not in _MODELS:
        discover()
    try:
        return _MODELS[name.lower()]
    except KeyError:
        close = difflib.get_close_matches(name.lower(), list(_MODELS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}{hint} (`hda models` lists all {len(_MODELS)})"
        ) from None


def get_definition(name: str, num_classes: int | None = None) -> NetworkDef:
    """The definition of registered model `name`, with `num_classes` outputs (None: the entry's
    own default, 1000 for ImageNet models and 10 for the CIFAR ones)."""
    build = get_entry(name).build
    return build() if num_classes is None else build(num_classes)


def build_graph(
    defn: NetworkDef, input_shape: InputShape | tuple[int, int, int, int]
) -> nx.DiGraph:
    """The analytic operation DAG of `defn` at `input_shape`, an `InputShape` of one image or
    its NCHW shape (no torch)."""
    if isinstance(input_shape, InputShape):
        try:
            n, c, h, w = input_shape.image
        except InputShapeError as exc:  # a video clip or token ids: say which model refused
            raise InputShapeError(f"{defn.name} (from its definition): {exc}") from None
        input_shape = (n, c, h, w)
    return family_of(defn).graph(defn, input_shape)


def build_module(defn: NetworkDef) -> nn.Module:
    """The torch module of `defn`, from its family's module builder (imports torch)."""
    where, _, attr = family_of(defn).module.partition(":")
    builder: Callable[[Any], nn.Module] = getattr(importlib.import_module(where), attr)
    return builder(defn)
