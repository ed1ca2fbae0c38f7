"""Hypothesis strategies for the DenseNet and CondenseNet families."""

from __future__ import annotations

from hypothesis import strategies as st

from hardnet_analysis.definitions.densenet import DenseNetDef


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
