"""Definitions: the harmonic link rule, channel rounding and block widths, against hand counts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardnet_analysis.errors import UsageError
from hardnet_analysis.families import get_definition, list_models
from hardnet_analysis.families.hardnet import HarDBlockDef
from hardnet_analysis.families.hardnet.definition import even_width, harmonic_links


def test_harmonic_links_by_hand() -> None:
    assert harmonic_links(1) == (0,)
    assert harmonic_links(2) == (1, 0)
    assert harmonic_links(6) == (5, 4)
    assert harmonic_links(8) == (7, 6, 4, 0)
    assert harmonic_links(12) == (11, 10, 8)


@given(st.integers(1, 4096))
def test_harmonic_links_rule(layer: int) -> None:
    links = harmonic_links(layer)
    # The official get_link looks at 2**i for i = 0..9 only (shared/notes/hardnet.md).
    expected = [layer - 2**n for n in range(10) if 2**n <= layer and layer % 2**n == 0]
    assert list(links) == expected
    if layer < 1024:
        # One more link than the power of two dividing the layer index.
        assert len(links) == (layer & -layer).bit_length()


def _official_width(layer: int, k: int, m: float) -> int:
    """The official rule, restated from the notes: start from k as a float, multiply by m for
    every i in 1..9 with 2**i dividing the layer (and <= it), round with int(int(x + 1) / 2) * 2."""
    out = float(k)
    for i in range(1, 10):
        if 2**i <= layer and layer % 2**i == 0:
            out *= m
    return int(int(out + 1) / 2) * 2


@given(
    k=st.integers(1, 400),
    m=st.sampled_from([1.4, 1.5, 1.6, 1.7, 1.8, 2.0]) | st.floats(1.0, 2.5),
    layer=st.integers(1, 64),
)
def test_widths_follow_the_official_float_product(k: int, m: float, layer: int) -> None:
    assert HarDBlockDef(k, m, 64).layer_out_channels(layer) == _official_width(layer, k, m)


@pytest.mark.parametrize(("k", "m"), [(25, 1.4), (75, 1.4), (225, 1.4), (100, 1.7)])
def test_widths_where_the_power_form_differs(k: int, m: float) -> None:
    # k * m ** (links - 1) rounds to another even width for these (notes: 50 vs 48 for k=25).
    block = HarDBlockDef(k, m, 8)
    widths = [block.layer_out_channels(layer) for layer in range(1, 9)]
    assert widths == [_official_width(layer, k, m) for layer in range(1, 9)]
    power = [even_width(k * m ** (len(harmonic_links(i)) - 1)) for i in range(1, 9)]
    assert widths != power
    if k == 25:
        assert block.layer_out_channels(4) == 50 and power[3] == 48


def test_even_width_matches_official_rounding() -> None:
    assert even_width(14) == 14
    assert even_width(23.8) == 24  # 14 * 1.7
    assert even_width(40.46) == 40  # 14 * 1.7**2
    assert even_width(68.782) == 68  # 14 * 1.7**3


def test_hardnet68_first_block_by_hand() -> None:
    block = get_definition("hardnet68").stages[0].block  # type: ignore[attr-defined]
    assert block.widths(64) == (64, 14, 24, 14, 40, 14, 24, 14, 68)
    assert block.output_layers() == (1, 3, 5, 7, 8)
    assert block.out_channels(64) == 14 * 4 + 68


def test_keep_base_adds_layer_zero() -> None:
    block = HarDBlockDef(10, 1.6, 4, keep_base=True)
    assert block.output_layers() == (0, 1, 3, 4)
    assert block.out_channels(32) == 32 + block.out_channels(0)


@pytest.mark.parametrize("kwargs", [{"growth_rate": 0}, {"n_layers": 0}, {"grmul": 0.0}])
def test_bad_blocks_rejected(kwargs: dict[str, float]) -> None:
    args = {"growth_rate": 8, "grmul": 1.7, "n_layers": 4, **kwargs}
    with pytest.raises(UsageError):
        HarDBlockDef(**args)  # type: ignore[arg-type]


def test_registry_lists_the_official_models() -> None:
    assert {"hardnet39ds", "hardnet68", "hardnet68ds", "hardnet85"} <= set(list_models())
    assert list_models(family="nonexistent") == []
