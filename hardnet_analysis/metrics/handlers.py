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
    """Conv (1-3 d): MACs = |output| * (C_in/groups) * prod(kernel); CIO = |input| + |output|.

    HarDNet-68's first conv at 224 (3->32, 3x3/2): 112*112*32*3*9 = 10_838_016 MACs and
    150_528 + 401_408 = 551_936 CIO.
    """
    taps = prod(node["kernel"])
    weights = node["out_channels"] * (node["in_channels"] // node["groups"]) * taps
    params = weights + (node["out_channels"] if node["bias"] else 0)
    out = _numel(node["out_shape"])
    macs = out * (node["in_channels"] // node["groups"]) * taps
    return Cost(params, macs, _numel(node["in_shapes"][0]) + out, out)


def conv_transpose(node: Node) -> Cost:
    """Transposed conv: every input element is multiplied into (C_out/groups) * prod(kernel)
    outputs, so MACs = |input| * (C_out/groups) * prod(kernel); CIO = |input| + |output| (it is
    a convolution layer for the paper's eq. 1).

    ConvTranspose2d(64->32, 2x2/2) on 1x64x28x28: 50_176 * 32 * 4 = 6_422_528 MACs.
    """
    taps = prod(node["kernel"])
    per_group_out = node["out_channels"] // node["groups"]
    params = node["in_channels"] * per_group_out * taps + (
        node["out_channels"] if node["bias"] else 0
    )
    x, out = _numel(node["in_shapes"][0]), _numel(node["out_shape"])
    return Cost(params, x * per_group_out * taps, x + out, out)


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


def matmul(node: Node) -> Cost:
    """matmul/mm/bmm/addmm/baddbmm/@: MACs = |output| * inner (the contracted length).

    ViT-B/16 attention scores q @ k^T on 1x12x197x64 and 1x12x64x197: 12*197*197*64 = 29_805_312.
    """
    out = _numel(node["out_shape"])
    return Cost(macs=out * node["inner"], writes=out)


def einsum(node: Node) -> Cost:
    """Two-operand einsum: MACs = product of the sizes of all distinct indices (the naive
    contraction); ``bij,bjk->bik`` on 2x3x4 and 2x4x5: 2*3*4*5 = 120."""
    return Cost(macs=prod(node["index_sizes"]), writes=_numel(node["out_shape"]))


def attention(node: Node) -> Cost:
    """scaled_dot_product_attention: q @ k^T and weights @ v,
    MACs = queries * keys * (qk_dim + v_dim), queries counting every batch and head row."""
    macs = node["queries"] * node["keys"] * (node["qk_dim"] + node["v_dim"])
    return Cost(macs=macs, writes=_numel(node["out_shape"]))


def multi_head_attention(node: Node) -> Cost:
    """nn.MultiheadAttention as one op: the q, k, v input projections, the two attention
    products over all heads and the output projection:
    MACs = N * (L*E*E + S*E*kdim + S*E*vdim + 2*L*S*E + L*E*E).

    ViT-B/16 (L=S=197, E=768, N=1): 465_813_504 + 59_609_088 = 525_422_592 per block.
    """
    n, tokens, source = node["batch"], node["tokens"], node["source"]
    e, kdim, vdim = node["embed"], node["kdim"], node["vdim"]
    projections = tokens * e * e + source * e * (kdim + vdim) + tokens * e * e
    macs = n * (projections + 2 * tokens * source * e)
    return Cost(macs=macs, writes=_numel(node["out_shape"]))


#: Ops that write a tensor and count no MACs or CIO by the convention (normalisation,
#: activations, pooling, elementwise arithmetic, reductions, resampling, copies).
ELEMENTWISE_OPS = (
    "activation",
    "max_pool",
    "avg_pool",
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "concat",
    "add",
    "sub",
    "mul",
    "div",
    "neg",
    "pow",
    "sqrt",
    "rsqrt",
    "exp",
    "log",
    "abs",
    "clamp",
    "clip",
    "where",
    "masked_fill",
    "eq",
    "ne",
    "lt",
    "gt",
    "le",
    "ge",
    "softmax",
    "log_softmax",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "local_response_norm",
    "normalize",
    "mean",
    "sum",
    "amax",
    "max",
    "min",
    "std",
    "var",
    "interpolate",
    "upsample",
    "pad",
    "roll",
    "flip",
    "clone",
    "zero",
    "fill",
    "contiguous",
    "repeat",
    "stack",
    "new_zeros",
    "new_ones",
    "zeros_like",
    "ones_like",
    "to",
    "float",
    "type_as",
)

#: Views and graph boundaries: no new data (dropout is an identity at inference).
FREE_OPS = (
    "input",
    "output",
    "flatten",
    "unflatten",
    "dropout",
    "view",
    "view_as",
    "reshape",
    "permute",
    "transpose",
    "t",
    "getitem",
    "chunk",
    "split",
    "unbind",
    "squeeze",
    "unsqueeze",
    "expand",
    "expand_as",
    "narrow",
    "select",
    "detach",
)

HANDLERS: dict[str, Handler] = {
    "conv": conv,
    "conv_transpose": conv_transpose,
    "linear": linear,
    "matmul": matmul,
    "einsum": einsum,
    "attention": attention,
    "multi_head_attention": multi_head_attention,
    "batchnorm": batchnorm,
    **dict.fromkeys(ELEMENTWISE_OPS, elementwise),
    **dict.fromkeys(FREE_OPS, free),
    # CondenseNet's converted model: gathering channels and shuffling them are memory copies
    # that write their output; no MACs, no CIO.
    "index_select": elementwise,
    "channel_shuffle": elementwise,
}
