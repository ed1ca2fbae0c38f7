"""The analytic size rules against PyTorch's own shape computation (meta tensors)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from hardnet_analysis.graph.shapes import conv_out, conv_transpose_out, pool_out


@given(
    size=st.integers(1, 97),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 4),
    padding=st.integers(0, 3),
    dilation=st.integers(1, 3),
)
def test_conv_out_matches_torch(
    size: int, kernel: int, stride: int, padding: int, dilation: int
) -> None:
    expected = conv_out(size, kernel, stride, padding, dilation)
    assume(expected >= 1)
    x = torch.empty(1, 1, size, size, device="meta")
    w = torch.empty(1, 1, kernel, kernel, device="meta")
    out = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)
    assert out.shape[-1] == expected


@given(
    size=st.integers(1, 97),
    kernel=st.integers(1, 6),
    stride=st.integers(1, 4),
    padding=st.integers(0, 3),
    ceil_mode=st.booleans(),
)
def test_pool_out_matches_torch(
    size: int, kernel: int, stride: int, padding: int, ceil_mode: bool
) -> None:
    assume(padding <= kernel // 2)  # PyTorch's own constraint
    expected = pool_out(size, kernel, stride, padding, ceil_mode=ceil_mode)
    assume(expected >= 1)
    x = torch.zeros(1, 1, size, size)
    out = F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode)
    assert out.shape[-1] == expected
    avg = F.avg_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode)
    assert avg.shape[-1] == expected


@given(
    size=st.integers(1, 97),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 4),
    padding=st.integers(0, 3),
    output_padding=st.integers(0, 3),
    dilation=st.integers(1, 3),
)
def test_conv_transpose_out_matches_torch(
    size: int, kernel: int, stride: int, padding: int, output_padding: int, dilation: int
) -> None:
    # PyTorch's constraint: output padding smaller than the stride or the dilation.
    assume(output_padding < max(stride, dilation))
    expected = conv_transpose_out(size, kernel, stride, padding, output_padding, dilation)
    assume(expected >= 1)
    x = torch.empty(1, 1, size, size, device="meta")
    w = torch.empty(1, 1, kernel, kernel, device="meta")
    out = F.conv_transpose2d(
        x, w, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    assert out.shape[-1] == expected
