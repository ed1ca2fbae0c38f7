"""Analytic graph of an FC-DenseNet, node names as the widely used PyTorch layout
(``bfortuner/pytorch_tiramisu``: ``firstconv``, ``denseBlocksDown.i.layers.l.{norm,relu,conv,
drop}``, ``transDownBlocks.i.{norm,relu,conv,drop,maxpool}``, ``bottleneck.bottleneck``,
``transUpBlocks.j.convTrans``, ``denseBlocksUp.j``, ``finalConv``).

Blocks, for the per-block view: ``stem``, ``encoder{i}`` and ``transition{i}`` (down block i
and its transition down), ``bottleneck``, ``skip{i}`` (the transposed conv, its crop and the
concatenation with skip i), ``decoder{i}`` (the up block after it), ``head``.

Sizes: the transposed conv (3x3, stride 2, no padding) maps n to 2n + 1, which is the skip's
size when the skip is odd and one more when it is even (2x2 max pooling floors). Following the
official Tiramisu, the upsampled map is cropped at its centre to the skip's size; the crop is a
view (free), and it is always applied, so the graph does not depend on the parity.
"""

from __future__ import annotations

import networkx as nx

from hardnet_analysis.families.fcdensenet.definition import FCDenseNetDef
from hardnet_analysis.graph.analytic import AnalyticBuilder


def _dense_layer(
    b: AnalyticBuilder, x: str, prefix: str, out_ch: int, kernel: int, p: float
) -> str:
    """BN-ReLU-conv (bias, padding kernel // 2)-dropout as ``{prefix}.norm``... ``.drop``."""
    x = b.batchnorm(x, f"{prefix}.norm")
    x = b.activation(x, f"{prefix}.relu", "relu")
    x = b.conv(x, f"{prefix}.conv", out_ch, kernel, 1, kernel // 2, bias=True)
    return b.dropout(x, f"{prefix}.drop", p)


def dense_block(
    b: AnalyticBuilder, x: str, prefix: str, defn: FCDenseNetDef, layers: int, new_only: bool
) -> str:
    """A dense block; with `new_only` it returns its layers' outputs only (no input)."""
    new = []
    for layer in range(layers):
        out = _dense_layer(b, x, f"{prefix}.layers.{layer}", defn.growth_rate, 3, defn.dropout)
        new.append(out)
        if not (new_only and layer == layers - 1):  # the running concat is not needed after
            x = b.concat([x, out], f"{prefix}.cat")
    return b.concat(new, f"{prefix}.cat") if new_only else x


def build_fcdensenet_graph(
    defn: FCDenseNetDef, input_shape: tuple[int, int, int, int]
) -> nx.DiGraph:
    """The DAG of `defn` for an NCHW `input_shape`."""
    b = AnalyticBuilder(defn.name)
    b.block = "stem"
    x = b.conv(b.input(input_shape), "firstconv", defn.first_channels, 3, 1, 1, bias=True)
    skips = []
    for i, layers in enumerate(defn.down_blocks):
        b.block = f"encoder{i + 1}"
        x = dense_block(b, x, f"denseBlocksDown.{i}", defn, layers, new_only=False)
        skips.append(x)
        b.block = f"transition{i + 1}"
        x = _dense_layer(b, x, f"transDownBlocks.{i}", b.shape(x)[1], 1, defn.dropout)
        x = b.pool(x, f"transDownBlocks.{i}.maxpool", "max", 2, 2)
    b.block = "bottleneck"
    x = dense_block(b, x, "bottleneck.bottleneck", defn, defn.bottleneck_layers, new_only=True)
    for j, layers in enumerate(defn.up_blocks):
        skip, number = skips.pop(), len(defn.down_blocks) - j
        b.block, prefix = f"skip{number}", f"transUpBlocks.{j}"
        x = b.conv_transpose(x, f"{prefix}.convTrans", b.shape(x)[1], 3, 2, 0, bias=True)
        x = b.crop(x, f"{prefix}.getitem", (b.shape(skip)[2], b.shape(skip)[3]))
        x = b.concat([x, skip], f"{prefix}.cat")
        b.block = f"decoder{number}"
        last = j == len(defn.up_blocks) - 1
        x = dense_block(b, x, f"denseBlocksUp.{j}", defn, layers, new_only=not last)
    b.block = "head"
    b.output(b.conv(x, "finalConv", defn.num_classes, 1, bias=True))
    return b.graph
