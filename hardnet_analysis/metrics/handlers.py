"""The table of per-op cost handlers: op name -> function of the node's attributes -> Cost.

This is hda's one cost engine: every quantity hda reports for an op comes from its handler's
`Cost` (CIO, MACs and parameters; the elements it reads and writes, from which the analysis
derives bytes, unfused and fused). Adding an op is one entry in ``HANDLERS``; a call can extend
or override the table (``analyze(..., handlers={...})``). An op without an entry is reported by
the analysis as unhandled, never counted as zero silently. Conventions
(``../shared/notes/hardnet.md``):

- MACs: one multiply-add counted once, convolutions and fully-connected layers (and the other
  products: matmul, einsum, attention) only.
- CIO: elements of every convolution's input plus its output (HarDNet paper, eq. 1); a
  concatenated input counts whole. A convolution is any op in ``CONV_OPS`` (transposed convs
  included); nothing else contributes.
- reads: elements an op reads from memory when it runs as its own kernel: every activation
  input once plus its weights (a BN reads its four per-channel vectors); writes: elements of the
  tensor it produces. Views, graph boundaries and identities at inference move nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from math import prod
from typing import Any

from hardnet_analysis.metrics.op_table import (
    ELEMENTWISE_OPS,
    FREE_OPS,
    is_elementwise_family,
    unsupported_reason,
)

Node = Mapping[str, Any]

#: The ops that are convolutions for CIO, conv MACs and MoC (one definition for all three).
CONV_OPS = frozenset({"conv", "conv_transpose"})


def is_conv(op: str) -> bool:
    """Whether `op` is a convolution (plain or transposed) for CIO, conv MACs and MoC."""
    return op in CONV_OPS


@dataclass(frozen=True)
class Cost:
    """What one op costs, at the batch in its shapes, in elements: parameters it holds, MACs,
    CIO, elements read (activations and weights) and elements written."""

    params: int = 0
    macs: int = 0
    cio: int = 0
    reads: int = 0
    writes: int = 0


Handler = Callable[[Node], Cost]


def _numel(shape: tuple[int, ...]) -> int:
    return prod(shape)


def _inputs(node: Node) -> int:
    """Elements of every activation input (a concatenation's inputs each once)."""
    return sum(_numel(s) for s in node["in_shapes"])


def _param_reads(node: Node) -> int:
    """Elements of the parameter tensors a traced op reads (LayerNorm's weight and bias, a
    matmul's weight operand); analytic nodes of such ops hold none."""
    return sum(size for _, size in node.get("param_tensors", ()))


def conv(node: Node) -> Cost:
    """Conv (1-3 d): MACs = |output| * (C_in/groups) * prod(kernel); CIO = |input| + |output|;
    reads input + weights (+ bias), writes output.

    HarDNet-68's first conv at 224 (3->32, 3x3/2): 112*112*32*3*9 = 10_838_016 MACs,
    150_528 + 401_408 = 551_936 CIO, 150_528 + 864 = 151_392 elements read.
    """
    taps = prod(node["kernel"])
    per_group_in = node["in_channels"] // node["groups"]
    params = node["out_channels"] * per_group_in * taps + (
        node["out_channels"] if node["bias"] else 0
    )
    x, out = _numel(node["in_shapes"][0]), _numel(node["out_shape"])
    return Cost(params, out * per_group_in * taps, x + out, _inputs(node) + params, out)


def conv_transpose(node: Node) -> Cost:
    """Transposed conv: every input element is multiplied into (C_out/groups) * prod(kernel)
    outputs, so MACs = |input| * (C_out/groups) * prod(kernel); CIO = |input| + |output| (it is
    a convolution layer for the paper's eq. 1); reads input + weights (+ bias).

    ConvTranspose2d(64->32, 2x2/2) on 1x64x28x28: 50_176 * 32 * 4 = 6_422_528 MACs.
    """
    taps = prod(node["kernel"])
    per_group_out = node["out_channels"] // node["groups"]
    params = node["in_channels"] * per_group_out * taps + (
        node["out_channels"] if node["bias"] else 0
    )
    x, out = _numel(node["in_shapes"][0]), _numel(node["out_shape"])
    return Cost(params, x * per_group_out * taps, x + out, _inputs(node) + params, out)


def linear(node: Node) -> Cost:
    """Linear: MACs = rows * in_features * out_features (rows = all leading dims); reads input +
    weight matrix (+ bias)."""
    params = node["in_features"] * node["out_features"] + (
        node["out_features"] if node["bias"] else 0
    )
    out = _numel(node["out_shape"])
    return Cost(params, out * node["in_features"], 0, _inputs(node) + params, out)


def batchnorm(node: Node) -> Cost:
    """BatchNorm at inference: weight and bias are parameters when affine (running statistics
    are buffers); reads input and four per-channel vectors (mean, var, weight, bias)."""
    params = 2 * node["channels"] if node["affine"] else 0
    out = _numel(node["out_shape"])
    return Cost(params, 0, 0, _inputs(node) + 4 * node["channels"], out)


def elementwise(node: Node) -> Cost:
    """Ops that read their inputs, write their output and count neither MACs nor CIO
    (activations, pooling, concat, adds, normalisations, resampling, copies)."""
    return Cost(reads=_inputs(node) + _param_reads(node), writes=_numel(node["out_shape"]))


def free(node: Node) -> Cost:
    """Graph boundaries, views and ops that are identities at inference (dropout)."""
    return Cost()


def _product(node: Node, macs: int) -> Cost:
    """A product op (matmul, einsum, attention): reads its operands, writes its output."""
    return Cost(
        macs=macs, reads=_inputs(node) + _param_reads(node), writes=_numel(node["out_shape"])
    )


def matmul(node: Node) -> Cost:
    """matmul/mm/bmm/addmm/baddbmm/@: MACs = |output| * inner (the contracted length).

    ViT-B/16 attention scores q @ k^T on 1x12x197x64 and 1x12x64x197: 12*197*197*64 = 29_805_312.
    """
    return _product(node, _numel(node["out_shape"]) * node["inner"])


def einsum(node: Node) -> Cost:
    """Two-operand einsum: MACs = product of the sizes of all distinct indices (the naive
    contraction); ``bij,bjk->bik`` on 2x3x4 and 2x4x5: 2*3*4*5 = 120."""
    return _product(node, prod(node["index_sizes"]))


def attention(node: Node) -> Cost:
    """scaled_dot_product_attention: q @ k^T and weights @ v,
    MACs = queries * keys * (qk_dim + v_dim), queries counting every batch and head row."""
    return _product(node, node["queries"] * node["keys"] * (node["qk_dim"] + node["v_dim"]))


def multi_head_attention(node: Node) -> Cost:
    """nn.MultiheadAttention as one op: the q, k, v input projections, the two attention
    products over all heads and the output projection:
    MACs = N * (L*E*E + S*E*kdim + S*E*vdim + 2*L*S*E + L*E*E).

    ViT-B/16 (L=S=197, E=768, N=1): 465_813_504 + 59_609_088 = 525_422_592 per block.
    """
    n, tokens, source = node["batch"], node["tokens"], node["source"]
    e, kdim, vdim = node["embed"], node["kdim"], node["vdim"]
    projections = tokens * e * e + source * e * (kdim + vdim) + tokens * e * e
    return _product(node, n * (projections + 2 * tokens * source * e))


def recurrent(node: Node) -> Cost:
    """LSTM/GRU/RNN as one op: MACs = steps * sequences * elements of every weight matrix (all
    gates, layers and directions; each multiplies one vector per step). LSTM(3->5), 2 layers,
    bidirectional, 64 steps: 64 * (2*20*3 + 2*20*10 + 4*20*5) = 64 * 920 = 58_880."""
    return _product(node, node["steps"] * node["sequences"] * node["matrix_elements"])


HANDLERS: dict[str, Handler] = {
    "conv": conv,
    "conv_transpose": conv_transpose,
    "linear": linear,
    "matmul": matmul,
    "einsum": einsum,
    "attention": attention,
    "multi_head_attention": multi_head_attention,
    "recurrent": recurrent,
    "batchnorm": batchnorm,
    **dict.fromkeys(ELEMENTWISE_OPS, elementwise),
    **dict.fromkeys(FREE_OPS, free),
}


def handler_for(op: str, table: Mapping[str, Handler] = HANDLERS) -> Handler | None:
    """The handler of `op`: its entry in `table`, else the elementwise handler when its name's
    family is elementwise (``special_erf``, ``view_copy``); None when it is not counted (the
    analysis then reports it, with `op_table.unsupported_reason` when there is one)."""
    handler = table.get(op)
    if handler is None and unsupported_reason(op) is None and is_elementwise_family(op):
        return elementwise
    return handler
