"""Op kinds: which kind of the device model (`hardnet_analysis.documents.device_model`) a graph
node is, and what its kind's terms count of it (units of work, channels).

Every op is of one *kind* (`op_kind`: dense k x k conv, 1x1 conv, strided 1x1 conv, depthwise,
grouped, linear, matmul, BN, elementwise, transcendental activations, GELU, norm,
max/average/global pooling, concat, resize, copy, view); a device model holds one fitted time
model per kind. `work` is the FLOPs (2 x MACs), or the window taps of a pooling op, or the
taps a resampling op's outputs read (`op_work`).
"""

from __future__ import annotations

from collections.abc import Mapping
from math import prod
from typing import Any

from hardnet_analysis.metrics.handlers import is_conv
from hardnet_analysis.metrics.op_table import FREE_OPS

#: The kinds, in the order tables list them.
KINDS = (
    "conv_kxk",
    "conv_1x1",
    "conv_1x1_strided",
    "conv_dw",
    "conv_grouped",
    # Convs run as im2col and a GEMM (``metrics.conv_paths``): PyTorch's grouped ones with
    # channels per group that oneDNN's JIT kernel does not take, and the small ones it keeps
    # off oneDNN (1x1: one GEMM on the input; others: im2col first); ONNX Runtime's outside
    # its blocked NCHWc layout, dense ones, and depthwise or grouped ones.
    "conv_grouped_gemm",
    "conv_1x1_gemm",
    "conv_kxk_gemm",
    "conv_nchw",
    "conv_dw_nchw",
    # PyTorch's depthwise convs whose channels oneDNN's blocked layout pads: slower reorders.
    "conv_dw_padded",
    # PyTorch's grouped convs that oneDNN runs in its narrowest blocked layout (4 channels).
    "conv_grouped_narrow",
    "linear",
    "matmul",
    "bn",
    "eltwise",
    "transcendental",
    "gelu",
    "norm",
    "max_pool",
    "avg_pool",
    "global_pool",
    "concat",
    # Resampling (interpolate, ONNX Resize): its work is the taps its outputs read, and a
    # bilinear one computes: 14.3 ms for FC-HarDNet-70's 40 MB output where a fill takes 1.6.
    "resize",
    "copy",
    "view",
)
_GEMM = frozenset({"matmul", "einsum", "attention", "multi_head_attention", "recurrent"})
_NORM = frozenset(
    [
        "layer_norm",
        "group_norm",
        "instance_norm",
        "rms_norm",
        "softmax",
        "log_softmax",
        "mean",
        "sum",
        "amax",
        "amin",
        "max",
        "min",
        "std",
        "var",
        "logsumexp",
        "norm",
        "local_response_norm",
        "normalize",
    ]
)
_COPY = frozenset(
    [
        "contiguous",
        "clone",
        "copy",
        "to",
        "pad",
        "constant_pad_nd",
        "repeat",
        "tile",
        "roll",
        "flip",
        "channel_shuffle",
        "native_channel_shuffle",
        "pixel_shuffle",
        "pixel_unshuffle",
        "index_select",
        "gather",
        "grid_sample",
    ]
)
_CONCAT = frozenset({"concat", "stack", "hstack", "vstack", "dstack", "column_stack"})
#: Activations that evaluate exp or tanh per element (several times a ReLU's work). GELU, which
#: evaluates erf, is a kind of its own: ONNX Runtime's Gelu kernel takes 2.1-2.3x the time per
#: byte of its SiLU and sigmoid on a 2-core AMD EPYC, eager PyTorch's GELU 1.2-1.3x.
_TRANSCENDENTAL = frozenset({"silu", "sigmoid", "tanh", "elu", "selu", "mish", "softplus"})
_RESIZE = frozenset({"interpolate", "upsample"})
#: Input elements each output element of a resampling mode reads, per spatial axis: PyTorch's
#: names (``bilinear``: linear on two axes) and ONNX's (``linear`` on every axis).
_TAPS_PER_AXIS = {
    "nearest": 1,
    "nearest-exact": 1,
    "linear": 2,
    "bilinear": 2,
    "trilinear": 2,
    "cubic": 4,
    "bicubic": 4,
}
#: Ops that are graph boundaries: no time.
BOUNDARY = frozenset({"input", "output", "constant"})


def op_kind(attrs: Mapping[str, Any]) -> str:
    """The kind of the graph node with attributes `attrs` (see `KINDS`); ``""`` for graph
    boundaries. A conv with groups == in_channels > 1 is depthwise, other groups > 1 grouped,
    a 1x1 kernel ``conv_1x1`` (``conv_1x1_strided`` with a stride > 1: a ResNet downsample,
    which CPU libraries run through a slower path, 2-5x the time of a stride-1 1x1 conv with
    the same MACs), any other ``conv_kxk`` (transposed convs included)."""
    op = attrs["op"]
    if op in BOUNDARY:
        return ""
    if is_conv(op):
        groups = attrs["groups"]
        if groups > 1:
            return "conv_dw" if groups == attrs["in_channels"] else "conv_grouped"
        if prod(attrs["kernel"]) != 1:
            return "conv_kxk"
        strided = prod(attrs.get("stride") or (1,)) > 1 and not attrs.get("transposed")
        return "conv_1x1_strided" if strided else "conv_1x1"
    if op == "linear":
        return "linear"
    if op in _GEMM:
        return "matmul"
    if op == "batchnorm":
        return "bn"
    if op in _CONCAT:
        return "concat"
    if op in ("max_pool", "avg_pool"):
        return str(op)
    if "pool" in op:
        return "global_pool"
    if op in _NORM:
        return "norm"
    if op in _RESIZE:
        return "resize"
    if op in _COPY or op.endswith("_copy"):
        return "copy"
    if op == "activation" and attrs.get("kind") == "gelu":
        return "gelu"
    if op == "activation" and attrs.get("kind") in _TRANSCENDENTAL:
        return "transcendental"
    return "view" if op in FREE_OPS else "eltwise"


def op_work(attrs: Mapping[str, Any], macs: int) -> int:
    """Units of work of the node with attributes `attrs` and `macs` MACs, what its kind's compute
    term counts: FLOPs (2 x MACs) for convs and GEMMs; window taps (output elements x kernel
    area) for max and average pooling, whose CPU kernels pay per tap, not per byte (the 3x3/2
    stem pool of ResNet-50 at 224, 64x112x112 -> 64x56x56: 200,704 x 9 = 1,806,336 taps);
    input taps (output elements x `resize_taps`) for resampling; 0 for other ops."""
    if attrs["op"] in ("max_pool", "avg_pool") and "kernel" in attrs:
        return int(prod(attrs["out_shape"]) * prod(attrs["kernel"]))
    if attrs["op"] in _RESIZE:
        return int(prod(attrs["out_shape"]) * resize_taps(attrs))
    return 2 * macs


def resize_taps(attrs: Mapping[str, Any]) -> int:
    """Input elements each output element of a resampling node reads: 1 (nearest), 2 per
    spatial axis ((bi/tri)linear), 4 per axis ((bi)cubic); an ``area`` resampling (an adaptive
    average) reads input / output elements each. Modes it does not name count 1, as nearest.
    FC-HarDNet-70's bilinear upsampling 19x128x256 -> 19x512x1024 reads 4 taps per output,
    39,845,888 in all."""
    mode, out = str(attrs.get("mode", "nearest")), attrs["out_shape"]
    if mode == "area":
        return max(1, int(prod(attrs["in_shapes"][0])) // int(prod(out)))
    return int(_TAPS_PER_AXIS.get(mode, 1) ** (len(out) - 2))


def op_groups(attrs: Mapping[str, Any]) -> int:
    """A conv's groups (a depthwise conv of 40 channels: 40), 1 for any other node."""
    return int(attrs["groups"]) if is_conv(attrs["op"]) else 1


def op_channels(attrs: Mapping[str, Any]) -> tuple[int, int]:
    """(input channels per group, output channels) of a conv, (0, 0) for any other node: a
    dense 3x3 conv 20 -> 24 is (20, 24), a depthwise conv of 40 channels (1, 40)."""
    if is_conv(attrs["op"]):
        return int(attrs["in_channels"]) // int(attrs["groups"]), int(attrs["out_channels"])
    return 0, 0
