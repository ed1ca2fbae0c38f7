"""Analytic graph of a DenseNet-BC definition, node names as torchvision's module layout.

Every dense layer concatenates its inputs itself (``…denselayerN.cat``, also for the first layer's
single input, as torchvision does) and each block ends with the concatenation of all its tensors
(``…denseblockN.cat``). The head's ReLU, pool and flatten live in a parameterless ``head``
module, so the traced graph of the torch model has the same names.
"""

from __future__ import annotations

import networkx as nx

from hardnet_analysis.families.densenet.definition import DenseNetDef
from hardnet_analysis.graph.analytic import AnalyticBuilder


def _bn_relu_conv(
    b: AnalyticBuilder, x: str, prefix: str, suffix: str, out_ch: int, kernel: int
) -> str:
    """BN-ReLU-Conv, no bias, padding kernel // 2 (modules normS, reluS, convS for suffix S)."""
    x = b.batchnorm(x, f"{prefix}.norm{suffix}")
    x = b.activation(x, f"{prefix}.relu{suffix}", "relu")
    return b.conv(x, f"{prefix}.conv{suffix}", out_ch, kernel, 1, kernel // 2)


def _dense_block(b: AnalyticBuilder, x: str, prefix: str, defn: DenseNetDef, n_layers: int) -> str:
    features = [x]
    for i in range(1, n_layers + 1):
        name = f"{prefix}.denselayer{i}"
        tin = b.concat(features, f"{name}.cat")
        out = _bn_relu_conv(b, tin, name, "1", defn.bn_size * defn.growth_rate, 1)
        out = _bn_relu_conv(b, out, name, "2", defn.growth_rate, 3)
        if defn.drop_rate > 0:
            out = b.dropout(out, f"{name}.dropout", defn.drop_rate)
        features.append(out)
    return b.concat(features, f"{prefix}.cat")


def build_densenet_graph(defn: DenseNetDef, input_shape: tuple[int, int, int, int]) -> nx.DiGraph:
    """The DAG of `defn` for an NCHW `input_shape`; blocks are labelled stem, denseblock1,
    transition1, ..., head."""
    b = AnalyticBuilder(defn.name)
    b.block = "stem"
    x = b.input(input_shape)
    if defn.stem == "imagenet":
        x = b.conv(x, "features.conv0", defn.init_channels, 7, 2, 3)
        x = b.batchnorm(x, "features.norm0")
        x = b.activation(x, "features.relu0", "relu")
        x = b.pool(x, "features.pool0", "max", 3, 2, 1)
    else:
        x = b.conv(x, "features.conv0", defn.init_channels, 3, 1, 1)
    widths = defn.block_in_channels()
    last = len(defn.block_config)
    for i, n_layers in enumerate(defn.block_config, start=1):
        b.block = f"denseblock{i}"
        x = _dense_block(b, x, f"features.denseblock{i}", defn, n_layers)
        if i < last:
            b.block = f"transition{i}"
            x = _bn_relu_conv(b, x, f"features.transition{i}", "", widths[i], 1)
            x = b.pool(x, f"features.transition{i}.pool", "avg", 2, 2)
    b.block = "head"
    x = b.batchnorm(x, "features.norm5")
    x = b.activation(x, "head.relu", "relu")
    x = b.adaptive_pool(x, "head.pool", "avg")
    x = b.flatten(x, "head.flatten")
    x = b.linear(x, "classifier", defn.num_classes)
    b.output(x)
    return b.graph
