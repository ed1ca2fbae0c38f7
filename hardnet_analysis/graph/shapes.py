"""Exact output-size rules of 2-D convolution and pooling (PyTorch's, floor and ceil modes)."""

from __future__ import annotations

import math


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one axis: floor((n + 2p - d(k-1) - 1) / s) + 1.

    224 with k=3, s=2, p=1 -> 112. May be <= 0; callers decide whether that is an error.
    """
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pool_out(
    size: int,
    kernel: int,
    stride: int,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length of max/avg pooling along one axis, PyTorch's rule.

    floor (or ceil with `ceil_mode`) of (n + 2p - d(k-1) - 1) / s, plus 1; in ceil mode the last
    window must start inside the input or its left padding, else it is dropped.
    112 with k=3, s=2, p=1 -> 56; 7 with k=2, s=2 -> 3 (floor) or 4 (ceil).
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def conv_transpose_out(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> int:
    """Output length of a transposed convolution along one axis, PyTorch's rule:
    (n - 1)s - 2p + d(k - 1) + output_padding + 1.

    FC-DenseNet's 3x3 stride-2 upsampling (p=0) maps 11 -> 23 and 45 -> 91: always 2n + 1, one
    more than the skip it meets when that skip is even (the model crops it; see fcdensenet).
    """
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
