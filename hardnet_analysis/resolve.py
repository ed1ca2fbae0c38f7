"""Resolve what the user names into a definition or a module builder.

- a registered model name (``hardnet68``) -> its definition (pure data, analysed without torch);
- a definition file (``*.json``) -> the definition it holds;
- a torchvision classification builder name (``resnet50``) -> a `ModuleSpec`;
- an ONNX model file (``*.onnx``) -> an `OnnxSpec` (analysed from the file, without torch);
- ``package.module:callable`` or ``path/to/file.py:callable`` returning an ``nn.Module`` -> a
  `ModuleSpec` (its keyword arguments come from `kwargs`, the CLI's ``--kwargs`` JSON);
- definitions, `ModuleSpec`s and ``nn.Module``s pass through unchanged.

A `ModuleSpec` builds its module on demand, on the meta device for analysis (no weights, no
initialisation cost) or on a real device for profiling and training. Only the torchvision branch
imports torch.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardnet_analysis.errors import UnknownModelError, UsageError, first_line
from hardnet_analysis.families.registry import get_definition, list_models
from hardnet_analysis.families.serialize import load_definition
from hardnet_analysis.fileio import atomic_write_text
from hardnet_analysis.graph.onnx_graph import ONNX_SUFFIX, OnnxSpec, load_onnx
from hardnet_analysis.shapes import InputShape

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ModuleSpec:
    """A named recipe for an ``nn.Module``: `factory(**kwargs)` builds it."""

    name: str
    factory: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self, device: str | None = None) -> nn.Module:
        """Build the module, on `device` (``"meta"`` for analysis) when given.

        A builder that computes with tensors while it builds (torchvision's RegNet rounds its
        widths with torch ops) cannot run wholly on the meta device; it is retried with only its
        parameter allocations (``torch.empty``) on meta. Any failure is a one-line UsageError.
        """
        from torch import nn

        try:
            module = self._call(device)
        except NotImplementedError as exc:
            if device != "meta" or "meta" not in str(exc):
                raise self._failed(exc) from exc
            module = self._call_with_meta_empty()
        if not isinstance(module, nn.Module):
            kind = type(module).__name__
            raise UsageError(f"{self.name} returned a {kind}, not a torch nn.Module")
        return module

    def _call(self, device: str | None) -> Any:
        import torch

        with torch.device(device) if device else contextlib.nullcontext(), self._user():
            try:
                return self.factory(**self.kwargs)
            except NotImplementedError:
                raise
            except Exception as exc:
                raise self._failed(exc) from exc

    def _call_with_meta_empty(self) -> Any:
        from torch.overrides import TorchFunctionMode

        class EmptyOnMeta(TorchFunctionMode):
            def __torch_function__(
                self, func: Any, types: Any, args: Any = (), kwargs: Any = None
            ) -> Any:
                kwargs = kwargs or {}
                if getattr(func, "__name__", "") == "empty" and kwargs.get("device") is None:
                    kwargs = {**kwargs, "device": "meta"}
                return func(*args, **kwargs)

        with EmptyOnMeta(), self._user():
            try:
                return self.factory(**self.kwargs)
            except Exception as exc:
                raise self._failed(exc) from exc

    def _user(self) -> contextlib.AbstractContextManager[None]:
        return user_code(f"building {self.name}")

    def _failed(self, exc: Exception) -> UsageError:
        text = first_line(exc)
        args = f" with {self.kwargs}" if self.kwargs else ""
        return UsageError(f"building {self.name}{args} failed: {type(exc).__name__}: {text}")


def torchvision_classifiers() -> list[str]:
    """Names of torchvision's classification model builders.

    Read from a cache file keyed by torchvision's version (``$XDG_CACHE_HOME/hda`` or
    ``~/.cache/hda``), so that a name that is not one is refused without importing torchvision
    (3.5 s, 7.7 s cold); the first call imports it and writes the cache, best effort.
    """
    cache = _torchvision_cache()
    if cache is not None and cache.is_file():
        try:
            names = json.loads(cache.read_text())
        except (OSError, ValueError, RecursionError):
            names = None
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return names
    import torchvision

    listed: list[str] = torchvision.models.list_models(module=torchvision.models)
    if cache is not None:
        with contextlib.suppress(OSError):
            cache.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(cache, json.dumps(sorted(listed)))
    return listed


def _torchvision_cache() -> Path | None:
    """The cache file of torchvision's classifier names for the installed version, or None when
    torchvision is not installed."""
    try:
        version = importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        return None
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "hda" / f"torchvision-{version}-classifiers.json"


def _torchvision_spec(
    name: str, num_classes: int | None, kwargs: dict[str, Any]
) -> ModuleSpec | None:
    if _torchvision_cache() is None or name not in torchvision_classifiers():
        return None
    import torchvision

    classes = 1000 if num_classes is None else num_classes
    options = {"name": name, "num_classes": classes, **kwargs}
    return ModuleSpec(name, torchvision.models.get_model, options)


_MODULE_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def _load_file(path: Path) -> Any:
    """Import a Python file as a fresh module (its directory is not added to sys.path)."""
    if not path.is_file():
        raise UsageError(f"file {str(path)!r} does not exist")
    name = f"hda_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {str(path)!r}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    with user_code(f"importing {str(path)!r}"):
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            del sys.modules[name]
            if not isinstance(exc, Exception):
                raise  # sys.exit: `user_code` says so; Ctrl-C: hda stops
            raise UsageError(f"cannot import {str(path)!r}: {type(exc).__name__}: {exc}") from exc
    return module


@contextlib.contextmanager
def user_code(doing: str) -> Iterator[None]:
    """Run a user's module or builder: what it prints goes to stderr (stdout carries hda's
    results, ``--format json`` among them), and a ``sys.exit`` in it is a UsageError saying
    what was being done, not an exit of hda with no message."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except SystemExit as exc:
        raise UsageError(f"{doing}: it called sys.exit({exc.code!r})") from exc


def _import(where: str) -> Any:
    if where.endswith(".py"):
        return _load_file(Path(where))
    if not _MODULE_PATH.match(where):
        raise UsageError(
            f"{where!r} is neither a module path (package.module) nor a .py file; "
            "use package.module:callable or path/to/file.py:callable"
        )
    with user_code(f"importing module {where!r}"):
        try:
            return importlib.import_module(where)
        except Exception as exc:
            raise UsageError(
                f"cannot import module {where!r}: {type(exc).__name__}: {exc}"
            ) from exc


def _callable_spec(target: str, kwargs: dict[str, Any]) -> ModuleSpec:
    """``package.module:callable`` or ``file.py:callable`` as a ModuleSpec."""
    where, _, attr = target.rpartition(":")
    module = _import(where)
    factory = getattr(module, attr, None) if attr else None
    if not callable(factory):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))[
            :8
        ]
        what = "is not callable" if factory is not None else "is not there"
        raise UsageError(
            f"{attr!r} in {where!r} {what}; callables there: {', '.join(found) or 'none'}"
        )
    return ModuleSpec(target, factory, dict(kwargs))


def _is_callable_target(target: str) -> bool:
    where, sep, attr = target.rpartition(":")
    return bool(sep and where and attr.isidentifier())


def resolve(
    target: Any, num_classes: int | None = None, kwargs: dict[str, Any] | None = None
) -> Any:
    """A definition or a `ModuleSpec` for a name or path; anything else is returned as it is.

    `num_classes` None keeps the model's own default (1000 for ImageNet models, 10 for CIFAR).
    `kwargs` are keyword arguments for a callable or a torchvision builder (``{"width": 2}``);
    a registered name or a definition file takes none.
    """
    kwargs = kwargs or {}
    if isinstance(target, str) and _is_callable_target(target):
        return _callable_spec(target, kwargs)
    if kwargs:
        spec = _torchvision_spec(target, num_classes, kwargs) if isinstance(target, str) else None
        if spec is None:
            raise UsageError(
                "--kwargs applies to package.module:callable, file.py:callable and torchvision "
                f"builders, not to {target!r}"
            )
        return spec
    if isinstance(target, (str, Path)) and str(target).endswith(EXPORTED_SUFFIX):
        return exported_spec(Path(target))
    if isinstance(target, (str, Path)) and str(target).endswith(ONNX_SUFFIX):
        return load_onnx(Path(target))
    if isinstance(target, Path) or (isinstance(target, str) and target.endswith(".json")):
        return load_definition(target)
    if not isinstance(target, str):
        return target
    if target.lower() in list_models():
        return get_definition(target, num_classes)
    spec = _torchvision_spec(target, num_classes, {})
    if spec is not None:
        return spec
    known = list_models() + torchvision_classifiers()
    close = difflib.get_close_matches(target.lower(), known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownModelError(
        f"unknown model {target!r}{hint} (a registered name, a torchvision classifier, a .json "
        "definition, a .pt2 torch.export program, an .onnx model, package.module:callable or "
        "file.py:callable; "
        "`hda models` lists the registered ones)"
    )


#: The ending of a `torch.export` program saved with `torch.export.save`.
EXPORTED_SUFFIX = ".pt2"


@dataclass(frozen=True)
class ExportedSpec(ModuleSpec):
    """A `torch.export` program file: its module (`ExportedProgram.module()`, which calls aten
    ops: ``aten.conv2d.default``) and the (height, width) of the example input it was exported
    with, which its shape guards hold it to unless exported with dynamic shapes."""

    input_size: tuple[int, int] = (224, 224)


def exported_spec(path: Path) -> ExportedSpec:
    """The program in `path`, loaded once (a missing or unreadable file is a UsageError)."""
    import torch

    if not path.is_file():
        raise UsageError(f"no such file: {str(path)!r} (a torch.export program, .pt2)")
    try:
        with _quiet("torch.export"):  # it logs the traceback of a bad file before raising
            program = torch.export.load(path)
    except Exception as exc:
        text = first_line(exc)
        raise UsageError(
            f"{str(path)!r} is not a torch.export program that torch.export.load reads: "
            f"{type(exc).__name__}: {text}"
        ) from None
    shapes = [t.shape for t in leaves_of(program.example_inputs)]
    size = (
        (int(shapes[0][-2]), int(shapes[0][-1])) if shapes and len(shapes[0]) >= 2 else (224, 224)
    )
    return ExportedSpec(path.name, program.module, input_size=size)


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Only errors from `logger` while inside."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR + 1)
    try:
        yield
    finally:
        log.setLevel(level)


def leaves_of(value: Any) -> list[Any]:
    """The tensors of nested tuples, lists and dicts (an exported program's example inputs)."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    items = value.values() if isinstance(value, dict) else value
    if not isinstance(items, (list, tuple, type({}.values()))):
        return []
    return [t for item in items for t in leaves_of(item)]


def input_shape_of(
    target: Any,
    size: tuple[int, int] | None = None,
    batch: int = 1,
    in_channels: int | None = None,
) -> InputShape:
    """The `InputShape` a resolved `target` (a definition, a `ModuleSpec`, a module) runs on:
    one NCHW image of `size` (height, width), None for its native size (`native_input_size`),
    at `batch`, with `in_channels` or the target's own (3 where it has none).
    ``input_shape_of(get_definition("hardnet68"))`` is ``InputShape(((1, 3, 224, 224),))``."""
    if isinstance(target, OnnxSpec):  # its inputs are the file's, dynamic dims given here
        return target.input_shape(size, batch, in_channels)
    channels = in_channels if in_channels is not None else getattr(target, "in_channels", 3)
    return InputShape.of_image(size or native_input_size(target), batch, channels)


def native_input_size(target: Any) -> tuple[int, int]:
    """The (height, width) in pixels a model is made for: its definition's own (32x32 for the
    CIFAR models, also when read from a JSON file; 1024x2048 for fchardnet70), else 224x224
    (torchvision names, callables, modules)."""
    size = getattr(target, "input_size", None)
    if isinstance(size, int):
        return size, size
    if isinstance(size, tuple) and len(size) == 2 and all(isinstance(s, int) for s in size):
        return size[0], size[1]
    return 224, 224
