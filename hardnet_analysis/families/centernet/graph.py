"""Analytic graph of a CenterNet-HarDNet definition, node names as the torch module's.

Layout (`hardnet_analysis.families.centernet.model`, parameters as the public ``HarDNetSeg``'s):
``base`` holds the stem (two ConvLayers and an average pool), then per backbone stage its
HarDBlock, its 1x1 ConvLayer and its pooling where it has them; ``last_proj``, ``last_pool``,
``contexts.0`` and ``last_blk`` are the bottleneck; up stage j is ``transUpBlocks.j``
(resampling and concatenation), ``conv1x1_up.j``, ``splits.j`` (where it has a shortcut),
``contexts.{j+1}`` and ``denseBlocksUp.j``; ``merge`` upsamples the shortcuts and concatenates;
each head is a Sequential named after it (``hm``, ``wh``). The graph has one output node per
head, in head order: ``output`` (the heatmap) and ``output:1``.

Blocks, for the per-block view: ``stem``, ``hardblock{i}``, ``transition{i}``, ``bottleneck``,
``up{j}`` and ``decoder{j}`` (j = 1 is the deepest), ``merge``, ``head_{name}``.
"""

from __future__ import annotations

import networkx as nx

from hardnet_analysis.families.centernet.definition import (
    BackboneStageDef,
    CenterNetHarDNetDef,
    HeadDef,
)
from hardnet_analysis.families.hardnet.graph import conv_layer, hard_block
from hardnet_analysis.graph.analytic import AnalyticBuilder

ACTIVATION = "relu"


def add_stem(b: AnalyticBuilder, x: str, defn: CenterNetHarDNetDef) -> str:
    """``base.0`` (3x3/2), ``base.1`` (3x3) and ``base.2`` (3x3/2 average pool, padding 1)."""
    b.block = "stem"
    x = conv_layer(b, x, "base.0", defn.stem_channels[0], 3, 2, ACTIVATION)
    x = conv_layer(b, x, "base.1", defn.stem_channels[1], 3, 1, ACTIVATION)
    return b.pool(x, "base.2", "avg", 3, 2, 1)


def add_backbone_stage(
    b: AnalyticBuilder, x: str, stage: BackboneStageDef, number: int, index: int
) -> tuple[str, str, int]:
    """Backbone stage `number` (1-based) at ``base.{index}``: returns its output, its block's
    output and the ``base`` index after it."""
    b.block = f"hardblock{number}"
    block_out = x = hard_block(b, x, f"base.{index}", stage.block, ACTIVATION)
    index += 1
    b.block = f"transition{number}"
    if stage.transition_channels:
        x = conv_layer(b, x, f"base.{index}", stage.transition_channels, 1, 1, ACTIVATION)
        index += 1
    if stage.downsample != "none":
        x = b.pool(x, f"base.{index}", "avg", 2, 2, ceil_mode=stage.downsample == "avg_ceil")
        index += 1
    return x, block_out, index


def add_context(b: AnalyticBuilder, x: str, defn: CenterNetHarDNetDef, prefix: str) -> str:
    """[x, average pool of x, x / (sum of x over H, W + eps)] as ``{prefix}.pool``, ``.sum``,
    ``.add``, ``.div`` and ``.cat``: 1x224x32x32 -> 1x672x32x32; the sum is 1x224x1x1."""
    n, c, _, _ = shape = b.shape(x)
    pooled = b.pool(x, f"{prefix}.pool", "avg", defn.context_pool, 1, defn.context_pool // 2)
    total = b.add("sum", f"{prefix}.sum", [x], (n, c, 1, 1), b.block, dim=(2, 3))
    total = b.add("add", f"{prefix}.add", [total], (n, c, 1, 1), b.block)
    ratio = b.add("div", f"{prefix}.div", [x, total], shape, b.block)
    return b.concat([x, pooled, ratio], f"{prefix}.cat")


def add_bottleneck(b: AnalyticBuilder, x: str, defn: CenterNetHarDNetDef) -> str:
    """``last_proj`` (1x1), ``last_pool`` (2x2), ``contexts.0``, ``last_blk``."""
    b.block = "bottleneck"
    x = conv_layer(b, x, "last_proj", defn.proj_channels, 1, 1, ACTIVATION)
    x = b.pool(x, "last_pool", "avg", 2, 2)
    x = add_context(b, x, defn, "contexts.0")
    return hard_block(b, x, "last_blk", defn.bottleneck, ACTIVATION)


def add_up_stage(
    b: AnalyticBuilder, x: str, skip: str, defn: CenterNetHarDNetDef, j: int
) -> tuple[str, str | None]:
    """Up stage `j` (0-based, deepest first) on `x` and its skip: returns its output and its
    shortcut (None without one)."""
    up = defn.up[j]
    b.block = f"up{j + 1}"
    size = b.shape(skip)[2:]
    x = b.interpolate(x, f"transUpBlocks.{j}", (size[0], size[1]))
    x = b.concat([x, skip], f"transUpBlocks.{j}")
    b.block = f"decoder{j + 1}"
    x = conv_layer(b, x, f"conv1x1_up.{j}", up.channels, 1, 1, ACTIVATION)
    shortcut = None
    if up.shortcut:
        n, c, h, w = b.shape(x)
        keep = c - up.shortcut
        main = b.add("getitem", f"splits.{j}", [x], (n, keep, h, w), b.block)
        shortcut = b.add("getitem", f"splits.{j}", [x], (n, up.shortcut, h, w), b.block)
        x = main
    x = add_context(b, x, defn, f"contexts.{j + 1}")
    return hard_block(b, x, f"denseBlocksUp.{j}", up.block, ACTIVATION), shortcut


def add_merge(b: AnalyticBuilder, x: str, shortcuts: list[str]) -> str:
    """The shortcuts upsampled to x's size (first shortcut first), then [latest, ..., first,
    x]: HarDNet-85's heads read 32 + 32 + 136 = 200 channels."""
    b.block = "merge"
    _, _, h, w = b.shape(x)
    ups = [b.interpolate(s, "merge", (h, w)) for s in shortcuts]
    return b.concat([*reversed(ups), x], "merge")


def add_head(b: AnalyticBuilder, x: str, defn: CenterNetHarDNetDef, head: HeadDef) -> str:
    """``{name}.0`` (3x3 conv, bias), ``{name}.1`` (ReLU), ``{name}.2`` (1x1 conv, bias)."""
    b.block = f"head_{head.name}"
    x = b.conv(x, f"{head.name}.0", defn.head_width(head), 3, 1, 1, bias=True)
    x = b.activation(x, f"{head.name}.1", ACTIVATION)
    return b.conv(x, f"{head.name}.2", head.channels, 1, bias=True)


def build_centernet_graph(
    defn: CenterNetHarDNetDef, input_shape: tuple[int, int, int, int]
) -> nx.DiGraph:
    """The DAG of `defn` for an NCHW `input_shape`, one output node per head."""
    b = AnalyticBuilder(defn.name)
    x = add_stem(b, b.input(input_shape), defn)
    skips, index = [], 3
    for number, stage in enumerate(defn.backbone, start=1):
        x, block_out, index = add_backbone_stage(b, x, stage, number, index)
        if stage.skip:
            skips.append(block_out)
    x = add_bottleneck(b, x, defn)
    shortcuts = []
    for j in range(len(defn.up)):
        x, shortcut = add_up_stage(b, x, skips[-1 - j], defn, j)
        if shortcut is not None:
            shortcuts.append(shortcut)
    x = add_merge(b, x, shortcuts)
    heads = [add_head(b, x, defn, head) for head in defn.heads()]
    for out in heads:
        b.output(out)
    return b.graph
