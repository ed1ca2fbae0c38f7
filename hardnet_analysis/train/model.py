"""The model side of training: building for a class count, and the generic ``hda_*`` hooks.

Hooks a module may implement (the loop calls each only where it exists):

- ``hda_set_memory_efficient(flag: bool)``: recompute features in backward (``--memory-efficient``);
- ``hda_set_progress(progress: float)``: called every iteration with iteration / total iterations;
- ``hda_regularization() -> Tensor``: a term added to the loss (e.g. CondenseNet's group lasso);
- ``hda_convert() -> nn.Module``: the inference model written by ``--convert``.

A hook is called on the *outermost* modules that have it: on the model itself if it has it,
otherwise on the highest submodules that do (never on one nested inside another owner, so a
term is never counted twice).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.registry import NetworkDef, build_module
from hardnet_analysis.models.factory import load_weights
from hardnet_analysis.resolve import ModuleSpec, resolve


def build_for_classes(spec: str | NetworkDef, num_classes: int) -> tuple[nn.Module, Any]:
    """The model of `spec` (a name, a torchvision name, a ``*.json`` file or a definition) for
    `num_classes`.

    Returns ``(module, definition)``; the definition is None for torchvision models.
    """
    target = resolve(spec, num_classes)
    if isinstance(target, ModuleSpec):
        return target.build(), None
    defn = target.with_num_classes(num_classes)
    return build_module(defn), defn


def load_initial_weights(
    model: nn.Module, path: str, num_classes: int, data_classes: int | None = None
) -> None:
    """Load `path` strictly; a classifier of another width is named as a class-count mismatch
    (saying where the width came from: the data's `data_classes`, or --num-classes)."""
    try:
        load_weights(model, path)
    except UsageError as exc:
        if "shape mismatch" in str(exc):
            data = num_classes if data_classes is None else data_classes
            source = "" if data == num_classes else f"--num-classes {num_classes}; "
            raise UsageError(
                f"weights file {path!r} does not fit a {num_classes}-class model ({source}the "
                f"data has {data} classes): {str(exc).split('; ', 1)[-1]}"
            ) from None
        raise


def hook_owners(model: nn.Module, hook: str) -> list[nn.Module]:
    """The outermost modules of `model` (itself included) that define method `hook`."""
    owners: list[nn.Module] = []
    covered: list[str] = []
    for name, module in model.named_modules():
        if any(name == c or name.startswith(c + ".") or c == "" for c in covered):
            continue
        if callable(getattr(module, hook, None)):
            owners.append(module)
            covered.append(name)
    return owners


def _call(module: nn.Module, hook: str, *args: Any) -> Any:
    return getattr(module, hook)(*args)


def set_memory_efficient(model: nn.Module, spec: str) -> None:
    owners = hook_owners(model, "hda_set_memory_efficient")
    if not owners:
        raise UsageError(
            f"--memory-efficient: model {spec!r} has no memory-efficient mode (models with an "
            "hda_set_memory_efficient hook have one, e.g. DenseNets)"
        )
    for owner in owners:
        _call(owner, "hda_set_memory_efficient", True)


@dataclasses.dataclass
class Hooks:
    """The per-iteration hooks found on a model, looked up once."""

    progress: list[nn.Module]
    regularizers: list[nn.Module]

    @classmethod
    def of(cls, model: nn.Module) -> Hooks:
        return cls(hook_owners(model, "hda_set_progress"), hook_owners(model, "hda_regularization"))

    def set_progress(self, progress: float) -> None:
        for owner in self.progress:
            _call(owner, "hda_set_progress", progress)

    def regularization(self) -> torch.Tensor | None:
        terms = [_call(owner, "hda_regularization") for owner in self.regularizers]
        return torch.stack([t.reshape(()) for t in terms]).sum() if terms else None


def check_convertible(model: nn.Module, spec: str) -> None:
    """A UsageError unless `model` has the ``hda_convert`` hook (checked before training)."""
    if not callable(getattr(model, "hda_convert", None)):
        raise UsageError(
            f"--convert: model {spec!r} has no hda_convert hook (CondenseNets have one)"
        )


def probe_output(model: nn.Module, spec: str, image_size: tuple[int, int]) -> tuple[int, ...] | str:
    """The output shape of `model` on two zero images of `image_size` (h, w), in eval mode, or
    the output's type name if it is no tensor; a UsageError if the forward pass fails."""
    height, width = image_size
    probe = torch.zeros(2, 3, height, width)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(probe)
    except (RuntimeError, ValueError) as exc:  # shapes that do not fit raise either
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(
            f"model {spec!r} cannot run on 3x{height}x{width} images: {first}"
        ) from None
    finally:
        model.train(was_training)
    return tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__


def check_output(
    model: nn.Module, spec: str, num_classes: int, image_size: tuple[int, int]
) -> None:
    """A UsageError unless `model` maps two images of the data's (h, w) to (2, `num_classes`)
    logits: one forward pass on zeros, in eval mode, before the first training step."""
    shape = probe_output(model, spec, image_size)
    if shape != (2, num_classes):
        raise UsageError(
            f"model {spec!r} outputs {shape} for 2 images; training needs (N, {num_classes}) "
            f"logits (N images, {num_classes} classes)"
        )


def check_dense_output(
    model: nn.Module, spec: str, num_classes: int, image_size: tuple[int, int]
) -> None:
    """A UsageError unless `model` maps two HxW images to (2, `num_classes`, H, W) logits (one
    score per class and pixel), checked as `check_output` does."""
    shape = probe_output(model, spec, image_size)
    wanted = (2, num_classes, *image_size)
    if shape != wanted:
        raise UsageError(
            f"model {spec!r} outputs {shape} for 2 images of {image_size[0]}x{image_size[1]}; "
            f"segmentation needs {wanted}: (N, classes, H, W) logits at the input's size"
        )


def convert(model: nn.Module, spec: str) -> nn.Module:
    """The model's ``hda_convert()`` result (its inference form); an error if it has none."""
    check_convertible(model, spec)
    converted = model.hda_convert()  # type: ignore[operator]
    if not isinstance(converted, nn.Module):
        raise UsageError(f"--convert: {spec!r}.hda_convert() returned {type(converted).__name__}")
    return converted
