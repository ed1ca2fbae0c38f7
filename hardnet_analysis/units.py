"""Parsing and formatting of sizes: input resolutions, counts with SI suffixes."""

from __future__ import annotations

import math
import re

from hardnet_analysis.errors import UsageError

_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
# Every pattern spells digits and blanks in ASCII: Python's int() and float() also take other
# scripts' digits ('١٢') and '_' separators, which hda refuses everywhere alike.
_COUNT = re.compile(r"^[ \t]*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)[ \t]*([kKmMgGtT]?)[ \t]*\Z")
_SIZE = re.compile(r"^[ \t]*([0-9]+)[ \t]*(?:[xX][ \t]*([0-9]+))?[ \t]*\Z")
_WHOLE = re.compile(r"^[ \t]*(-?[0-9]+)[ \t]*\Z")
_NUMBER = re.compile(r"^[ \t]*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[ \t]*\Z")
_NOT_FINITE = re.compile(r"^[ \t]*[+-]?(?:inf|infinity|nan)[ \t]*\Z", re.IGNORECASE)

#: Digits past this many make a number larger than any bound, and int() refuses strings of
#: more than 4,300 digits: longer ones saturate at 10**_DIGITS instead.
_DIGITS = 30
#: The largest input side (--input, --image-size): 16,384 pixels, past any camera's frame.
MAX_SIDE = 16_384


def _int(digits: str) -> int:
    """ASCII `digits` (with an optional '-') as an int, saturating past `_DIGITS` digits."""
    sign = -1 if digits.startswith("-") else 1
    body = digits.lstrip("-")
    return sign * (10**_DIGITS if len(body) > _DIGITS else int(body))


def parse_whole(text: str) -> int:
    """A whole number as every count flag takes it: ASCII digits 0-9 with an optional '-' (so
    that a negative value is named as out of range), blanks around it ignored; no '_', '+',
    exponent or decimal point. A UsageError otherwise."""
    match = _WHOLE.match(text)
    if not match:
        raise UsageError(f"{text!r} is not an integer (digits 0-9 only)")
    return _int(match.group(1))


def parse_number(text: str) -> float:
    """A finite decimal number in ASCII (``0.05``, ``-1``, ``6e-5``); infinity, NaN and other
    scripts' digits are a UsageError."""
    if _NOT_FINITE.match(text):
        raise UsageError(f"{text!r} is not a finite number")
    match = _NUMBER.match(text)
    if not match:
        raise UsageError(f"{text!r} is not a number")
    value = float(match.group(1))
    if not math.isfinite(value):  # 1e400
        raise UsageError(f"{text!r} is not a finite number")
    return value


def parse_input_size(text: str | int) -> tuple[int, int]:
    """Parse an input resolution as (height, width).

    Accepts one integer for a square input (``"224"`` -> (224, 224)) or ``HxW``
    (``"320x480"`` -> (320, 480)), in ASCII digits. Both sides must be from 1 to `MAX_SIDE`.
    """
    if isinstance(text, int):
        text = str(text)
    match = _SIZE.match(text)
    if not match:
        raise UsageError(
            f"input size {text!r} is not understood; use N (square) or HxW, e.g. 224 or 320x480"
        )
    height = _int(match.group(1))
    width = _int(match.group(2)) if match.group(2) else height
    if height < 1 or width < 1:
        raise UsageError(f"input size {text!r} must be positive on both sides")
    if max(height, width) > MAX_SIDE:
        raise UsageError(f"input size {text!r} is too large: a side is at most {MAX_SIDE:,}")
    return height, width


def parse_count(text: str | int | float) -> int:
    """Parse a count with an SI suffix: ``"4.5G"``, ``"450M"``, ``"4.5e9"`` -> 4_500_000_000."""
    if isinstance(text, (int, float)):
        return int(text)
    match = _COUNT.match(text)
    if not match:
        raise UsageError(
            f"count {text!r} is not understood; use e.g. 4.5G, 450M, 4.5e9 or 4500000000"
        )
    value = float(match.group(1)) * _SUFFIX[match.group(2).upper()]
    return round(_bounded(value, text, "count"))


#: The largest count or size accepted: every sum of them still fits a 64-bit integer.
LARGEST = 1e18


def _bounded(value: float, text: str, what: str) -> float:
    """`value` when it is at most `LARGEST`; infinity ("1e400" parses as one) is refused too."""
    if not value <= LARGEST:
        raise UsageError(f"{what} {text!r} is too large; {what}s go up to 1e18")
    return value


def format_count(value: float, digits: int = 3) -> str:
    """Format a count with an SI suffix and `digits` significant digits: 17_564_084 -> '17.6M'."""
    magnitude = abs(value)
    for suffix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if magnitude >= scale:
            return f"{value / scale:.{digits}g}{suffix}"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.{digits}g}"


def format_bytes(value: float) -> str:
    """Format a byte count in binary units: 1_572_864 -> '1.50 MiB'."""
    magnitude = abs(value)
    for suffix, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if magnitude >= scale:
            return f"{value / scale:.2f} {suffix}"
    return f"{int(value)} B"


_BYTES = re.compile(
    r"^[ \t]*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)[ \t]*([kKmMgGtT]?)(i?)[bB]?[ \t]*\Z"
)
_DURATION = re.compile(r"^[ \t]*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)[ \t]*(s|ms|us|ns)?[ \t]*\Z")
_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def parse_bytes(text: str | int) -> int:
    """Parse a byte size: SI units are powers of 10 (``"50MB"`` -> 50_000_000), binary units
    powers of 2 (``"2MiB"`` -> 2_097_152); a bare number is bytes."""
    if isinstance(text, int):
        return text
    match = _BYTES.match(text)
    if not match:
        raise UsageError(f"size {text!r} is not understood; use e.g. 50MB, 2MiB or 4194304")
    number, prefix, binary = match.groups()
    power = "KMGT".find(prefix.upper()) + 1 if prefix else 0
    scale: int = (1024 if binary else 1000) ** power
    return round(_bounded(float(number) * scale, text, "size"))


def parse_duration(text: str | float) -> float:
    """Parse a duration in seconds: ``"12ms"`` -> 0.012, ``"250us"`` -> 0.00025, ``"0.5s"`` ->
    0.5. Text needs its unit: a bare ``"12"`` could mean seconds or milliseconds, so it is a
    UsageError (a number given in Python is seconds)."""
    if isinstance(text, (int, float)):
        return float(text)
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"duration {text!r} is not understood; use e.g. 12ms, 250us or 0.5s")
    if match.group(2) is None:
        raise UsageError(
            f"duration {text!r} has no unit; give it as e.g. {text.strip()}ms or {text.strip()}s"
        )
    seconds = float(match.group(1)) * _SECONDS[match.group(2)]
    if not 0 < seconds < math.inf:
        raise UsageError(f"duration {text!r} must be a positive, finite time")
    return seconds


def format_percent(fraction: float | None, missing: str = "-") -> str:
    """A fraction as a percentage with one decimal: 0.241 -> '24.1%'; None -> `missing`."""
    return missing if fraction is None else f"{100 * fraction:.1f}%"


def format_ms(seconds: float) -> str:
    """Seconds as milliseconds with three decimals: 0.0138 -> '13.800'."""
    return f"{seconds * 1e3:.3f}"
