"""Hypothesis strategies for the DenseNet, CondenseNet and ResNet families."""

from __future__ import annotations

from hypothesis import strategies as st

from hardnet_analysis.families.condensenet.definition import CondenseNetDef
from hardnet_analysis.families.densenet.definition import DenseNetDef
from hardnet_analysis.families.resnet.definition import BlockType, ResNetDef


@st.composite
def densenets(draw: st.DrawFn) -> DenseNetDef:
    """Random small DenseNet-BC definitions (either stem, any compression, optional dropout)."""
    blocks = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    return DenseNetDef(
        "random",
        growth_rate=draw(st.integers(1, 8)),
        block_config=blocks,
        init_channels=draw(st.integers(1, 16)),
        bn_size=draw(st.integers(1, 4)),
        compression=draw(st.sampled_from([0.5, 0.75, 1.0, 0.3])),
        stem=draw(st.sampled_from(("imagenet", "cifar"))),
        drop_rate=draw(st.sampled_from([0.0, 0.2])),
        num_classes=draw(st.integers(1, 17)),
    )


@st.composite
def condensenets(draw: st.DrawFn) -> CondenseNetDef:
    """Random tiny training-time CondenseNets: growth rates are multiples of 4, so every width
    divides by C, G and the 3x3 groups drawn from 1, 2 and 4."""
    n_stages = draw(st.integers(1, 3))
    return CondenseNetDef(
        "random",
        stages=tuple(draw(st.integers(1, 3)) for _ in range(n_stages)),
        growth=tuple(4 * draw(st.integers(1, 3)) for _ in range(n_stages)),
        condense_factor=draw(st.sampled_from([1, 2, 4])),
        groups_1x1=draw(st.sampled_from([1, 2, 4])),
        groups_3x3=draw(st.sampled_from([1, 2, 4])),
        bottleneck=draw(st.integers(1, 4)),
        stem_stride=draw(st.integers(1, 2)),
        dropout=draw(st.sampled_from([0.0, 0.1])),
        classifier_keep=draw(st.sampled_from([0.5, 0.25, 1.0])),
        num_classes=draw(st.integers(1, 9)),
    )


@st.composite
def resnets(draw: st.DrawFn) -> ResNetDef:
    """Random small ResNets: either block type, v1 or v1.5 bottlenecks, 1-4 stages of 1-2
    blocks at narrow widths (so a stage may keep the width and need no downsample)."""
    block: BlockType = "bottleneck" if draw(st.booleans()) else "basic"
    n_stages = draw(st.integers(1, 4))
    return ResNetDef(
        "random",
        block=block,
        layers=tuple(draw(st.integers(1, 2)) for _ in range(n_stages)),
        widths=tuple(draw(st.integers(1, 8)) for _ in range(n_stages)),
        stride_in_1x1=block == "bottleneck" and draw(st.booleans()),
        stem_width=draw(st.integers(1, 16)),
        num_classes=draw(st.integers(1, 9)),
    )
