"""Analytic graph of a HarDNet definition, with the official module layout's node names."""

from __future__ import annotations

import networkx as nx

from hardnet_analysis.definitions.hardnet import HarDBlockDef, HarDNetDef, harmonic_links
from hardnet_analysis.graph.analytic import AnalyticBuilder


def _conv_layer(
    b: AnalyticBuilder, x: str, prefix: str, out_ch: int, kernel: int, stride: int = 1
) -> str:
    """Conv-BN-ReLU6 (the official ``ConvLayer``: padding kernel // 2, no bias)."""
    x = b.conv(x, f"{prefix}.conv", out_ch, kernel, stride, kernel // 2)
    x = b.batchnorm(x, f"{prefix}.norm")
    return b.activation(x, f"{prefix}.relu", "relu6")


def _dw_layer(b: AnalyticBuilder, x: str, prefix: str, stride: int = 1) -> str:
    """3x3 depthwise conv-BN, no activation (the official ``DWConvLayer``)."""
    channels = b.shape(x)[1]
    x = b.conv(x, f"{prefix}.dwconv", channels, 3, stride, 1, groups=channels)
    return b.batchnorm(x, f"{prefix}.norm")


def _hard_block(b: AnalyticBuilder, x: str, prefix: str, block: HarDBlockDef) -> str:
    """A harmonic dense block; concatenations are nodes named ``{prefix}.cat``, ``.cat:1``, ..."""
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
            out = _conv_layer(b, tin, f"{name}.layer1", width, 1)
            out = _dw_layer(b, out, f"{name}.layer2")
        else:
            out = _conv_layer(b, tin, name, width, 3)
        outputs.append(out)
    return b.concat([outputs[i] for i in block.output_layers()], f"{prefix}.cat")


def build_hardnet_graph(defn: HarDNetDef, input_shape: tuple[int, int, int, int]) -> nx.DiGraph:
    """The DAG of `defn` for an NCHW `input_shape`, node names as in the official ``base`` list."""
    b = AnalyticBuilder(defn.name)
    b.block = "stem"
    x = b.input(input_shape)
    x = _conv_layer(b, x, "base.0", defn.stem.channels[0], 3, stride=2)
    x = _conv_layer(b, x, "base.1", defn.stem.channels[1], defn.stem.second_kernel)
    if defn.stem.downsample == "maxpool":
        x = b.pool(x, "base.2", "max", 3, 2, 1)
    else:
        x = _dw_layer(b, x, "base.2", stride=2)
    index = 3
    for i, stage in enumerate(defn.stages, start=1):
        b.block = f"hardblock{i}"
        x = _hard_block(b, x, f"base.{index}", stage.block)
        index += 1
        b.block = f"transition{i}"
        if stage.dropout_before_transition > 0:
            x = b.dropout(x, f"base.{index}", stage.dropout_before_transition)
            index += 1
        x = _conv_layer(b, x, f"base.{index}", stage.transition_channels, 1)
        index += 1
        if stage.downsample == "maxpool":
            x = b.pool(x, f"base.{index}", "max", 2, 2)
            index += 1
        elif stage.downsample == "dwconv":
            x = _dw_layer(b, x, f"base.{index}", stride=2)
            index += 1
    b.block = "head"
    x = b.adaptive_pool(x, f"base.{index}.0", "avg")
    x = b.flatten(x, f"base.{index}.1")
    x = b.dropout(x, f"base.{index}.2", defn.head.dropout)
    x = b.linear(x, f"base.{index}.3", defn.head.num_classes)
    b.output(x)
    return b.graph
