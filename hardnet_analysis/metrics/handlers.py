"""The table of per-op cost handlers: op name -> function of the node's attributes -> Cost.

Adding an op is one entry in ``HANDLERS``. An op without an entry is reported by the analysis as
unhandled, never counted as zero silently. Conventions (``../shared/notes/hardnet.md``):

- MACs: one multiply-add counted once, convolutions and fully-connected layers only.
- CIO: elements of every convolution's input plus its output (HarDNet paper, eq. 1); a
  concatenated input counts whole. Nothing else contributes.
- writes: elements of the tensor an op produces (views and no-ops produce none).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from math import prod
from typing import Any

Node = Mapping[str, Any]


@dataclass(frozen=True)
class Cost:
    """What one op costs, at the batch in its shapes: counts of parameters, MACs, CIO elements
    and output elements written."""

    params: int = 0
    macs: int = 0
    cio: int = 0
    writes: int = 0


Handler = Callable[[Node], Cost]


def _numel(shape: tuple[int, ...]) -> int:
    return prod(shape)


def conv(node: Node) -> Cost:
    """Conv2d: MACs = N*H_out*W_out*C_out*(C_in/groups)*kh*kw; CIO = |input| + |output|.

    HarDNet-68's first conv at 224 (3->32, 3x3/2): 112*112*32*3*9 = 10_838_016 MACs and
    150_528 + 401_408 = 551_936 CIO.
    """
    kh, kw = node["kernel"]
    weights = node["out_channels"] * (node["in_channels"] // node["groups"]) * kh * kw
    params = weights + (node["out_channels"] if node["bias"] else 0)
    out = _numel(node["out_shape"])
    macs = out * (node["in_channels"] // node["groups"]) * kh * kw
    return Cost(params, macs, _numel(node["in_shapes"][0]) + out, out)


def linear(node: Node) -> Cost:
    """Linear: MACs = rows * in_features * out_features (rows = all leading dims)."""
    params = node["in_features"] * node["out_features"] + (
        node["out_features"] if node["bias"] else 0
    )
    out = _numel(node["out_shape"])
    return Cost(params, out * node["in_features"], 0, out)


def batchnorm(node: Node) -> Cost:
    """BatchNorm: weight and bias when affine (running statistics are buffers, not parameters)."""
    return Cost(2 * node["channels"] if node["affine"] else 0, 0, 0, _numel(node["out_shape"]))


def elementwise(node: Node) -> Cost:
    """Ops that write their output and count neither MACs nor CIO (activations, pooling, concat)."""
    return Cost(writes=_numel(node["out_shape"]))


def free(node: Node) -> Cost:
    """Graph boundaries, views and ops that are identities at inference (dropout)."""
    return Cost()


HANDLERS: dict[str, Handler] = {
    "conv": conv,
    "linear": linear,
    "batchnorm": batchnorm,
    "activation": elementwise,
    "max_pool": elementwise,
    "avg_pool": elementwise,
    "adaptive_avg_pool": elementwise,
    "adaptive_max_pool": elementwise,
    "concat": elementwise,
    "add": elementwise,
    "input": free,
    "output": free,
    "flatten": free,
    "dropout": free,
    # CondenseNet's converted model (issue 3): gathering channels and shuffling them are
    # memory copies that write their output; no MACs, no CIO.
    "index_select": elementwise,
    "channel_shuffle": elementwise,
}
