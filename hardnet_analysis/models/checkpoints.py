"""Weights files as users have them: wrapped, `DataParallel`- or `torch.compile`-prefixed, with
legacy keys.

`load_weights` (in ``factory``) reads a file with `read_checkpoint`, finds the state dict with
`unwrap`, fits its keys to the model with `strip_wrapper_prefixes`, `rename_legacy_dense` and
`fill_batches_tracked`, and describes what it did with a `LoadedWeights`. Files are read with
``torch.load(weights_only=True)`` only: tensors and plain containers, never arbitrary objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from hardnet_analysis.errors import UsageError

# Keys training scripts wrap the weights under, most preferred first: the trained weights before
# their EMA copy, as timm's validate.py does unless told --use-ema.
WRAPPER_KEYS = ("state_dict", "model", "model_ema", "state_dict_ema")
#: Prefixes a wrapper puts on every key: `DataParallel`/DDP's ``module.``, and ``_orig_mod.``
#: of a module saved while wrapped by `torch.compile`.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
BATCHES_TRACKED = "num_batches_tracked"

# torchvision's released DenseNets name ``denselayerN.norm1`` as ``denselayerN.norm.1`` (likewise
# relu/conv and 2): modules added under dotted names before torch forbade them.
_LEGACY_DENSE = re.compile(
    r"^(?P<layer>(?:.*\.)?denselayer\d+\.(?:norm|relu|conv))\.(?P<index>[12])\.(?P<leaf>[^.]+)$"
)
_NESTING = 4  # wrappers deeper than this are not looked into
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class LoadedWeights:
    """What `load_weights` did to fit a weights file to the model.

    `wrapper`: the keys descended into to reach the state dict (``("state_dict",)`` for a
    training checkpoint, ``()`` for a bare state dict); `alternatives`: other wrapper keys the
    same dict held (e.g. an EMA copy not used); `stripped_prefix`: the prefix removed from every
    key (``"module."`` for `DataParallel`/DDP files, ``"_orig_mod."`` for a compiled module's,
    "" if none); `legacy_renamed`: legacy
    torchvision DenseNet keys renamed; `batches_tracked_filled`: BatchNorm ``num_batches_tracked``
    buffers the file lacked, left at the model's own value (as ``load_state_dict`` does).
    """

    path: Path
    wrapper: tuple[str, ...] = ()
    alternatives: tuple[str, ...] = ()
    stripped_prefix: str = ""
    legacy_renamed: int = 0
    batches_tracked_filled: int = 0

    def changes(self) -> list[str]:
        """Each adaptation made, as a short phrase ([] for a bare state dict that fit as is)."""
        done = []
        if self.wrapper:
            also = ", ".join(map(repr, self.alternatives))
            held = f" (also holds {also})" if also else ""
            done.append(f"weights under {_subscript(self.wrapper)}{held}")
        if self.stripped_prefix:
            done.append(f"prefix {self.stripped_prefix!r} stripped")
        if self.legacy_renamed:
            done.append(f"{self.legacy_renamed} legacy DenseNet keys renamed (norm.1 -> norm1)")
        if self.batches_tracked_filled:
            n = self.batches_tracked_filled
            done.append(f"{n} absent {BATCHES_TRACKED} left at the model's value")
        return done

    def describe(self) -> str:
        """One line: the file and what was done to load it."""
        done = self.changes()
        how = ", ".join(done) if done else "a plain state dict"
        return f"loaded weights file {str(self.path)!r}: {how}"

    def __str__(self) -> str:
        return self.describe()


def _subscript(keys: tuple[str, ...]) -> str:
    return "".join(f"[{k!r}]" for k in keys)


def read_checkpoint(file: Path) -> object:
    """``torch.load(file, weights_only=True)`` on the CPU; unreadable files raise `UsageError`."""
    if not file.is_file():
        raise UsageError(f"weights file {str(file)!r} does not exist")
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for unreadable files
        raise UsageError(
            f"weights file {str(file)!r} cannot be read as a checkpoint: {torch_reason(exc)}"
        ) from None


def torch_reason(exc: BaseException) -> str:
    """Torch's first line about `exc` without its advice to retry with ``weights_only=False``
    (which would unpickle arbitrary objects), plus the unpickler's own complaint if any."""
    text = _ANSI.sub("", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = _without_advice(lines[0]) if lines else ""
    _, found, detail = text.partition("WeightsUnpickler error:")
    detail_lines = [line.strip() for line in detail.splitlines() if line.strip()]
    if found and detail_lines:
        # The complaint's first sentence; what follows is how to allowlist the object.
        complaint = detail_lines[0].split(". ")[0].rstrip(".") + "."
        first = f"{first} {complaint}".strip()
    return first or type(exc).__name__


def _without_advice(line: str) -> str:
    sentences = [s.strip() for s in re.split(r"(?<=\.)\s+", line) if s.strip()]
    advice = ("weights_only", "trust", "arbitrary code", "option")
    return " ".join(s for s in sentences if not any(word in s for word in advice))


def unwrap(document: object, file: Path) -> tuple[dict[str, Any], tuple[str, ...], tuple[str, ...]]:
    """The state dict inside `document`, the wrapper keys leading to it and the other wrapper
    keys present where it was found. Raises `UsageError` if no dict of named tensors is found."""
    path: tuple[str, ...] = ()
    alternatives: tuple[str, ...] = ()
    while isinstance(document, dict) and len(path) < _NESTING:
        held = [k for k in WRAPPER_KEYS if isinstance(document.get(k), dict)]
        if not held:
            break
        path, alternatives, document = (*path, held[0]), tuple(held[1:]), document[held[0]]
    if not _is_state_dict(document):
        raise _not_a_state_dict(document, path, file)
    assert isinstance(document, dict)  # for mypy: `_is_state_dict` said so
    return document, path, alternatives


def _not_a_state_dict(document: object, path: tuple[str, ...], file: Path) -> UsageError:
    """The refusal of `document`, found under `path` in `file`: what it holds instead."""
    if isinstance(document, dict):
        # A wrapper key holding something else than a dict is the likelier culprit.
        held = [k for k in WRAPPER_KEYS if k in document]
        if held:
            path, document = (*path, held[0]), document[held[0]]
    what = type(document).__name__
    if isinstance(document, dict):
        what += f" without tensors (keys: {', '.join(map(str, list(document)[:5]))})"
    where = f" under {_subscript(path)}" if path else ""
    return UsageError(
        f"weights file {str(file)!r} holds a {what}{where}, not a state dict (nor one under "
        f"{', '.join(map(repr, WRAPPER_KEYS))})"
    )


def _is_state_dict(document: object) -> bool:
    """A dict of names to tensors (some entries, e.g. ``_extra_state``, may be other values)."""
    return (
        isinstance(document, dict)
        and all(isinstance(k, str) for k in document)
        and (not document or any(isinstance(v, torch.Tensor) for v in document.values()))
    )


def strip_wrapper_prefixes(state: dict[str, Any], expected: dict[str, Any]) -> str:
    """Remove a wrapper's prefix (`WRAPPER_PREFIXES`) from the keys of `state` in place when
    every key has it and the model's own keys do not; repeated for nested wrappers (a compiled
    DDP module saves ``_orig_mod.module.conv1.weight``). Returns what was cut, in order."""
    stripped = ""
    while state:
        prefix = next(
            (
                p
                for p in WRAPPER_PREFIXES
                if all(k.startswith(p) for k in state)
                and not any(k.startswith(p) for k in expected)
            ),
            None,
        )
        if prefix is None:
            return stripped
        # torch's helper also renames the `_metadata` entries that carry module versions.
        consume_prefix_in_state_dict_if_present(state, prefix)
        stripped += prefix
    return stripped


def rename_legacy_dense(state: dict[str, Any], expected: dict[str, Any]) -> int:
    """Rename legacy torchvision DenseNet keys (``denselayer1.norm.1.weight``) in place to the
    current ones (``denselayer1.norm1.weight``) where the model expects the new key, not the old,
    and the file does not hold the new key already. Returns how many were renamed."""
    renames = {}
    for key in state:
        match = _LEGACY_DENSE.match(key)
        if match is None or key in expected:
            continue
        new = f"{match['layer']}{match['index']}.{match['leaf']}"
        if new in expected and new not in state:
            renames[key] = new
    for old, new in renames.items():
        state[new] = state.pop(old)
    return len(renames)


def fill_batches_tracked(state: dict[str, Any], expected: dict[str, Any]) -> int:
    """Give `state` the model's own value for each BatchNorm ``num_batches_tracked`` it lacks
    while holding that BatchNorm's statistics (files from before torch 0.4.1). Returns how many
    were filled. ``load_state_dict`` fills them too, but only for modules saved without a
    version, so a file stripped of them by hand would still be refused there."""
    absent = [
        k
        for k in expected
        if _is_batches_tracked(k)
        and k not in state
        and k.removesuffix(BATCHES_TRACKED) + "running_mean" in state
    ]
    for key in absent:
        state[key] = expected[key]
    return len(absent)


def _is_batches_tracked(key: str) -> bool:
    return key.rsplit(".", 1)[-1] == BATCHES_TRACKED


def mismatches(state: dict[str, Any], expected: dict[str, Any]) -> dict[str, list[str]]:
    """The keys the model expects and `state` lacks (but ``num_batches_tracked``: its BatchNorm's
    other keys say it), the keys it has that the model does not, and those whose shapes differ
    (each with both shapes)."""
    return {
        "missing": [k for k in expected if k not in state and not _is_batches_tracked(k)],
        "unexpected": [k for k in state if k not in expected],
        "shape mismatch": [
            f"{k} {_shape(v)} vs {_shape(expected[k])}"
            for k, v in state.items()
            if k in expected and _shape(v) != _shape(expected[k])
        ],
    }


def _shape(value: object) -> tuple[int, ...] | None:
    shape = getattr(value, "shape", None)
    return None if shape is None else tuple(shape)
