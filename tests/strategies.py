"""Hypothesis strategies shared by the tests."""

from __future__ import annotations

from hypothesis import strategies as st

from hardnet_analysis.families.hardnet import HarDBlockDef, HarDNetDef, HeadDef, StageDef, StemDef
from hardnet_analysis.families.hardnet.definition import Downsample
from hardnet_analysis.shapes import DTYPES, InputShape


@st.composite
def hardnets(draw: st.DrawFn) -> HarDNetDef:
    depthwise = draw(st.booleans())
    pooled: Downsample = "dwconv" if depthwise else "maxpool"
    down = st.sampled_from(("none", pooled))
    stages = tuple(
        StageDef(
            block=HarDBlockDef(
                growth_rate=draw(st.integers(2, 12)),
                grmul=draw(st.floats(1.0, 2.0)),
                n_layers=draw(st.integers(1, 9)),
                depthwise=depthwise,
                keep_base=draw(st.booleans()),
            ),
            transition_channels=draw(st.integers(4, 24)),
            downsample=draw(down),
            dropout_before_transition=draw(st.sampled_from([0.0, 0.1])),
        )
        for _ in range(draw(st.integers(1, 3)))
    )
    stem = StemDef(
        channels=(draw(st.integers(4, 12)), draw(st.integers(4, 16))),
        second_kernel=draw(st.sampled_from([1, 3])),
        downsample=pooled,
    )
    return HarDNetDef(
        "random", stem, stages, HeadDef(dropout=0.1, num_classes=draw(st.integers(2, 17)))
    )


@st.composite
def input_shapes(draw: st.DrawFn) -> InputShape:
    """Any valid `InputShape`: 1 to 4 inputs of rank 1 to 6 (at most 10**18 elements), any
    dtype, the last 0 to all of them passed by keyword."""
    count = draw(st.integers(1, 4))
    shapes = tuple(
        tuple(draw(st.lists(st.integers(1, 1_000), min_size=1, max_size=6))) for _ in range(count)
    )
    dtypes = tuple(draw(st.sampled_from(DTYPES)) for _ in range(count))
    names = draw(
        st.lists(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), unique=True)
    )
    return InputShape(shapes, dtypes, tuple(names[:count]))
