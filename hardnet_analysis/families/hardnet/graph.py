"""Analytic graph of a HarDNet definition, with the official module layout's node names.

The network is built part by part (stem, one stage at a time, head), and each part can also be
built alone as a *fragment* fed by an input node of the right shape. With a fixed stem and fixed
transition widths, a stage's input shape does not depend on the other stages' blocks, so the
architecture search measures each distinct stage once on its fragment; the fragments' costs sum
to the whole graph's exactly (inputs and outputs cost nothing).
"""

from __future__ import annotations

from functools import partial

import networkx as nx

from hardnet_analysis.families.hardnet.definition import (
    HarDBlockDef,
    HarDNetDef,
    HeadDef,
    StageDef,
    StemDef,
    harmonic_links,
)
from hardnet_analysis.families.parts import NETWORK_INPUT, Part
from hardnet_analysis.graph.analytic import AnalyticBuilder
from hardnet_analysis.graph.ir import Shape


def conv_layer(
    b: AnalyticBuilder,
    x: str,
    prefix: str,
    out_ch: int,
    kernel: int,
    stride: int = 1,
    activation: str = "relu6",
) -> str:
    """Conv-BN-ReLU6 (the official ``ConvLayer``: padding kernel // 2, no bias); FC-HarDNet's
    ConvLayer is the same with ``activation="relu"``."""
    x = b.conv(x, f"{prefix}.conv", out_ch, kernel, stride, kernel // 2)
    x = b.batchnorm(x, f"{prefix}.norm")
    return b.activation(x, f"{prefix}.relu", activation)


def _dw_layer(b: AnalyticBuilder, x: str, prefix: str, stride: int = 1) -> str:
    """3x3 depthwise conv-BN, no activation (the official ``DWConvLayer``)."""
    channels = b.shape(x)[1]
    x = b.conv(x, f"{prefix}.dwconv", channels, 3, stride, 1, groups=channels)
    return b.batchnorm(x, f"{prefix}.norm")


def hard_block(
    b: AnalyticBuilder, x: str, prefix: str, block: HarDBlockDef, activation: str = "relu6"
) -> str:
    """A harmonic dense block; concatenations are nodes named ``{prefix}.cat``, ``.cat:1``, ...
    (`activation` of its conv layers: FC-HarDNet's blocks use ``"relu"``)."""
    outputs = [x]
    for layer in range(1, block.n_layers + 1):
        links = harmonic_links(layer)
        tin = (
            outputs[links[0]]
            if len(links) == 1
            else b.concat([outputs[i] for i in links], f"{prefix}.cat")
        )
        name = f"{prefix}.layers.{layer - 1}"
        width = block.layer_out_channels(layer)
        if block.depthwise:
            out = conv_layer(b, tin, f"{name}.layer1", width, 1, activation=activation)
            out = _dw_layer(b, out, f"{name}.layer2")
        else:
            out = conv_layer(b, tin, name, width, 3, activation=activation)
        outputs.append(out)
    return b.concat([outputs[i] for i in block.output_layers()], f"{prefix}.cat")


def add_stem(b: AnalyticBuilder, x: str, stem: StemDef) -> str:
    """The stem as ``base.0`` to ``base.2``; returns its output node."""
    b.block = "stem"
    x = conv_layer(b, x, "base.0", stem.channels[0], 3, stride=2)
    x = conv_layer(b, x, "base.1", stem.channels[1], stem.second_kernel)
    if stem.downsample == "maxpool":
        return b.pool(x, "base.2", "max", 3, 2, 1)
    return _dw_layer(b, x, "base.2", stride=2)


def stage_modules(stage: StageDef) -> int:
    """How many entries of the official ``base`` list a stage takes (block, optional dropout,
    transition, optional downsampling): HarDNet-68's first stage takes 3."""
    return 2 + (stage.dropout_before_transition > 0) + (stage.downsample != "none")


def stage_offsets(defn: HarDNetDef) -> tuple[int, ...]:
    """The ``base`` index of each stage's block, then of the head: HarDNet-68 gives
    (3, 6, 8, 11, 14, 16)."""
    offsets = [3]
    for stage in defn.stages:
        offsets.append(offsets[-1] + stage_modules(stage))
    return tuple(offsets)


def add_stage(b: AnalyticBuilder, x: str, stage: StageDef, number: int, index: int) -> str:
    """Stage `number` (1-based) at ``base.{index}``: block, transition, downsampling."""
    b.block = f"hardblock{number}"
    x = hard_block(b, x, f"base.{index}", stage.block)
    index += 1
    b.block = f"transition{number}"
    if stage.dropout_before_transition > 0:
        x = b.dropout(x, f"base.{index}", stage.dropout_before_transition)
        index += 1
    x = conv_layer(b, x, f"base.{index}", stage.transition_channels, 1)
    index += 1
    if stage.downsample == "maxpool":
        x = b.pool(x, f"base.{index}", "max", 2, 2)
    elif stage.downsample == "dwconv":
        x = _dw_layer(b, x, f"base.{index}", stride=2)
    return x


def add_head(b: AnalyticBuilder, x: str, head: HeadDef, index: int) -> str:
    """Global average pool, flatten, dropout and linear as ``base.{index}.0`` to ``.3``."""
    b.block = "head"
    x = b.adaptive_pool(x, f"base.{index}.0", "avg")
    x = b.flatten(x, f"base.{index}.1")
    x = b.dropout(x, f"base.{index}.2", head.dropout)
    return b.linear(x, f"base.{index}.3", head.num_classes)


def build_hardnet_graph(defn: HarDNetDef, input_shape: tuple[int, int, int, int]) -> nx.DiGraph:
    """The DAG of `defn` for an NCHW `input_shape`, node names as in the official ``base`` list."""
    b = AnalyticBuilder(defn.name)
    x = add_stem(b, b.input(input_shape), defn.stem)
    offsets = stage_offsets(defn)
    for number, stage in enumerate(defn.stages, start=1):
        x = add_stage(b, x, stage, number, offsets[number - 1])
    b.output(add_head(b, x, defn.head, offsets[-1]))
    return b.graph


def _fragment(b: AnalyticBuilder, x: str) -> nx.DiGraph:
    b.output(x)
    return b.graph


def stem_fragment(defn: HarDNetDef, input_shape: Shape) -> nx.DiGraph:
    """The stem alone, fed by the network input."""
    b = AnalyticBuilder(f"{defn.name}:stem")
    return _fragment(b, add_stem(b, b.input(input_shape), defn.stem))


def stage_fragment(defn: HarDNetDef, number: int, in_shape: Shape) -> nx.DiGraph:
    """Stage `number` (1-based) alone, fed by an input node of shape `in_shape` (the previous
    part's output); its node names equal those in the whole network's graph."""
    b = AnalyticBuilder(f"{defn.name}:stage{number}")
    x = b.input(in_shape)
    offset = stage_offsets(defn)[number - 1]
    return _fragment(b, add_stage(b, x, defn.stages[number - 1], number, offset))


def head_fragment(defn: HarDNetDef, in_shape: Shape) -> nx.DiGraph:
    """The classifier head alone, fed by the last stage's output shape."""
    b = AnalyticBuilder(f"{defn.name}:head")
    return _fragment(b, add_head(b, b.input(in_shape), defn.head, stage_offsets(defn)[-1]))


def search_parts(defn: HarDNetDef, input_shape: Shape) -> tuple[Part, ...]:
    """Stem, one part per stage (stage i reads part i's output), head. With a fixed stem and
    fixed transition widths every stage meets one input shape, so each block is measured once."""
    n = len(defn.stages)
    stages = tuple(
        Part(f"stage{i}", i - 1, ((i - 1, 0),), partial(_stage_part, i)) for i in range(1, n + 1)
    )
    return (
        Part("stem", None, (NETWORK_INPUT,), lambda d, s: stem_fragment(d, s[0])),
        *stages,
        Part("head", None, ((n, 0),), lambda d, s: head_fragment(d, s[0])),
    )


def _stage_part(number: int, defn: HarDNetDef, shapes: tuple[Shape, ...]) -> nx.DiGraph:
    return stage_fragment(defn, number, shapes[0])
