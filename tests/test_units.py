"""Parsing and formatting of sizes and counts."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardnet_analysis.errors import UsageError
from hardnet_analysis.units import format_count, parse_count, parse_input_size


def test_parse_input_size() -> None:
    assert parse_input_size("224") == (224, 224)
    assert parse_input_size("320x480") == (320, 480)
    assert parse_input_size(" 7X9 ") == (7, 9)
    for bad in ("", "x", "3x", "0", "1x0", "2.5"):
        with pytest.raises(UsageError):
            parse_input_size(bad)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4.5G", 4_500_000_000),
        ("450M", 450_000_000),
        ("4.5e9", 4_500_000_000),
        ("4500000000", 4_500_000_000),
        ("12k", 12_000),
        ("1T", 10**12),
    ],
)
def test_parse_count(text: str, value: int) -> None:
    assert parse_count(text) == value


@pytest.mark.parametrize("bad", ["4.5X", "", "G", "1..2G", "-3M", "1e400", "2e18"])
def test_parse_count_rejects(bad: str) -> None:
    # "1e400" used to escape as OverflowError (float infinity to int).
    with pytest.raises(UsageError):
        parse_count(bad)


@given(st.text(max_size=12))
def test_parse_count_raises_only_hda_errors(text: str) -> None:
    with contextlib.suppress(UsageError):
        assert parse_count(text) >= 0


@given(st.integers(0, 10**14))
def test_format_count_reads_back_within_rounding(value: int) -> None:
    assert parse_count(format_count(value)) == pytest.approx(value, rel=5e-3, abs=1)
