"""Analytic graph of a CondenseNet definition, training-time or converted, named as the torch
modules in ``models/condensenet.py``.

Training-time, an LGC is BN, ReLU, (dropout) and a dense 1x1 conv (the mask zeroes weights but
the conv still runs densely). Converted, it is index-select of ``G * in / C`` channels, BN,
ReLU, a 1x1 conv with G groups and a channel shuffle; the classifier index-selects its kept
inputs before the linear layer.
"""

from __future__ import annotations

import networkx as nx

from hardnet_analysis.families.condensenet.definition import CondenseNetDef
from hardnet_analysis.graph.analytic import AnalyticBuilder


def _index_select(b: AnalyticBuilder, x: str, name: str, kept: int) -> str:
    shape = b.shape(x)
    return b.add("index_select", name, [x], (shape[0], kept, *shape[2:]), b.block, dim=1)


def _lgc(b: AnalyticBuilder, x: str, prefix: str, defn: CondenseNetDef, out_ch: int) -> str:
    if defn.converted:
        x = _index_select(b, x, f"{prefix}.index_select", defn.kept_in_channels(b.shape(x)[1]))
    x = b.batchnorm(x, f"{prefix}.norm")
    x = b.activation(x, f"{prefix}.relu", "relu")
    if not defn.converted:
        if defn.dropout > 0:
            x = b.dropout(x, f"{prefix}.drop", defn.dropout)
        return b.conv(x, f"{prefix}.conv", out_ch, 1)
    x = b.conv(x, f"{prefix}.conv", out_ch, 1, groups=defn.groups_1x1)
    return b.add("channel_shuffle", f"{prefix}.shuffle", [x], b.shape(x), b.block)


def _dense_layer(b: AnalyticBuilder, x: str, prefix: str, defn: CondenseNetDef, k: int) -> str:
    out = _lgc(b, x, f"{prefix}.conv_1", defn, defn.bottleneck * k)
    out = b.batchnorm(out, f"{prefix}.conv_2.norm")
    out = b.activation(out, f"{prefix}.conv_2.relu", "relu")
    out = b.conv(out, f"{prefix}.conv_2.conv", k, 3, 1, 1, groups=defn.groups_3x3)
    return b.concat([x, out], f"{prefix}.cat")


def _classifier(b: AnalyticBuilder, x: str, defn: CondenseNetDef) -> str:
    if not defn.converted:
        return b.linear(x, "classifier", defn.num_classes)
    kept = defn.classifier_in_features
    x = b.add("index_select", "classifier.index_select", [x], (b.shape(x)[0], kept), b.block)
    return b.linear(x, "classifier.linear", defn.num_classes)


def build_condensenet_graph(
    defn: CondenseNetDef, input_shape: tuple[int, int, int, int]
) -> nx.DiGraph:
    """The DAG of `defn` (training-time or converted, as `defn.converted` says) for an NCHW
    `input_shape`; blocks are labelled stem, denseblock1, transition1, ..., head."""
    b = AnalyticBuilder(defn.name)
    b.block = "stem"
    x = b.input(input_shape)
    x = b.conv(x, "features.init_conv", defn.init_channels, 3, defn.stem_stride, 1)
    last = len(defn.stages)
    for i, (n_layers, k) in enumerate(zip(defn.stages, defn.growth, strict=True), start=1):
        b.block = f"denseblock{i}"
        for j in range(1, n_layers + 1):
            x = _dense_layer(b, x, f"features.denseblock_{i}.denselayer_{j}", defn, k)
        if i < last:
            b.block = f"transition{i}"
            x = b.pool(x, f"features.transition_{i}", "avg", 2, 2)
    b.block = "head"
    x = b.batchnorm(x, "features.norm_last")
    x = b.activation(x, "features.relu_last", "relu")
    x = b.adaptive_pool(x, "features.pool_last", "avg")
    x = b.flatten(x, "features.flatten")
    b.output(_classifier(b, x, defn))
    return b.graph
