"""Analytic graph of a ResNet definition, node names as torchvision's module layout.

Stem ``conv1``, ``bn1``, ``relu``, ``maxpool``; blocks ``layerS.B`` with ``conv1..3``,
``bn1..3``, one ``relu`` module called after every BN but the last and after the addition
(``relu``, ``relu:1``, ...), ``downsample.0`` (1x1 conv) and ``downsample.1`` (BN) run after
the main branch, and the addition ``layerS.B.add``; head ``avgpool``, ``flatten``, ``fc``.
A v1.5 definition gives the same nodes as tracing torchvision's ``resnet50``.
"""

from __future__ import annotations

import networkx as nx

from hardnet_analysis.families.resnet.definition import ResNetDef
from hardnet_analysis.graph.analytic import AnalyticBuilder


def _conv_bn(
    b: AnalyticBuilder, x: str, prefix: str, i: int, out_ch: int, kernel: int, stride: int
) -> str:
    """Conv (no bias, padding kernel // 2) ``convI`` then ``bnI``."""
    x = b.conv(x, f"{prefix}.conv{i}", out_ch, kernel, stride, kernel // 2)
    return b.batchnorm(x, f"{prefix}.bn{i}")


def _block(
    b: AnalyticBuilder, x: str, prefix: str, defn: ResNetDef, width: int, stride: int
) -> str:
    out_ch = width * defn.expansion
    if defn.block == "basic":
        y = _conv_bn(b, x, prefix, 1, width, 3, stride)
        y = b.activation(y, f"{prefix}.relu", "relu")
        y = _conv_bn(b, y, prefix, 2, width, 3, 1)
    else:
        s1, s3 = (stride, 1) if defn.stride_in_1x1 else (1, stride)
        y = _conv_bn(b, x, prefix, 1, width, 1, s1)
        y = b.activation(y, f"{prefix}.relu", "relu")
        y = _conv_bn(b, y, prefix, 2, width, 3, s3)
        y = b.activation(y, f"{prefix}.relu", "relu")
        y = _conv_bn(b, y, prefix, 3, out_ch, 1, 1)
    identity = x
    if stride != 1 or b.shape(x)[1] != out_ch:
        identity = b.conv(x, f"{prefix}.downsample.0", out_ch, 1, stride)
        identity = b.batchnorm(identity, f"{prefix}.downsample.1")
    y = b.add_tensors([y, identity], f"{prefix}.add")
    return b.activation(y, f"{prefix}.relu", "relu")


def build_resnet_graph(defn: ResNetDef, input_shape: tuple[int, int, int, int]) -> nx.DiGraph:
    """The DAG of `defn` for an NCHW `input_shape`; blocks are labelled stem, layer1, ...,
    head."""
    b = AnalyticBuilder(defn.name)
    b.block = "stem"
    x = b.input(input_shape)
    x = b.conv(x, "conv1", defn.stem_width, 7, 2, 3)
    x = b.batchnorm(x, "bn1")
    x = b.activation(x, "relu", "relu")
    x = b.pool(x, "maxpool", "max", 3, 2, 1)
    for stage, (n_blocks, width) in enumerate(zip(defn.layers, defn.widths, strict=True)):
        b.block = f"layer{stage + 1}"
        for i in range(n_blocks):
            stride = defn.stage_stride(stage) if i == 0 else 1
            x = _block(b, x, f"layer{stage + 1}.{i}", defn, width, stride)
    b.block = "head"
    x = b.adaptive_pool(x, "avgpool", "avg")
    x = b.flatten(x, "flatten")
    x = b.linear(x, "fc", defn.num_classes)
    b.output(x)
    return b.graph
