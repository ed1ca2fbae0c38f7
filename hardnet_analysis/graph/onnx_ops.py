"""The ONNX op table: every op of the default ONNX domain -> hda's graph op, or why it is not
counted (pure data and small functions on plain values; no onnx import).

An ONNX node becomes a node of hda's graph under the op name the tracer gives the same work in
PyTorch (``Conv`` -> ``conv``, ``Relu`` -> ``activation`` of kind ``relu``, ``Concat`` ->
``concat``, ``Reshape`` -> ``reshape``), so one cost engine (``metrics/handlers.py``), one fusion
rule and one predictor serve both. Views stay free as in PyTorch (``Transpose``, ``Slice``,
``Expand``), so a module and its export move the same bytes. `ONNX_UNSUPPORTED` says why an op
is reported and not counted; `tests/test_onnx.py` checks that every op in ``onnx.defs`` of
the default domain is in exactly one of the two tables and that every hda op named here has a
cost handler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from math import prod
from typing import Any

Shape = tuple[int, ...]


@dataclass(frozen=True)
class OnnxNode:
    """One ONNX node as plain values: its op, attributes (``{"strides": [2, 2]}``), the shape of
    each input in input order (None for an omitted optional input), the first output's shape,
    and the input positions that hold parameters (a conv's weight and bias)."""

    op_type: str
    attrs: Mapping[str, Any]
    shapes: tuple[Shape | None, ...]
    out_shape: Shape
    weights: frozenset[int] = field(default_factory=frozenset)

    def shape(self, index: int) -> Shape:
        """The shape of input `index`; a ValueError when the input is absent."""
        shape = self.shapes[index] if index < len(self.shapes) else None
        if shape is None:
            raise ValueError(f"{self.op_type} has no input {index}")
        return shape

    def has_input(self, index: int) -> bool:
        return index < len(self.shapes) and self.shapes[index] is not None


AttrFn = Callable[[OnnxNode], dict[str, Any]]


def _spatial(node: OnnxNode, name: str, dims: int, default: int) -> tuple[int, ...]:
    value = node.attrs.get(name)
    return tuple(int(v) for v in value) if value else (default,) * dims


def _pads(node: OnnxNode, dims: int) -> tuple[int, ...]:
    """The leading pads (ONNX lists begins then ends); zeros under ``auto_pad``."""
    pads = node.attrs.get("pads")
    return tuple(int(p) for p in pads[:dims]) if pads else (0,) * dims


def _conv(node: OnnxNode) -> dict[str, Any]:
    """Conv(X, W (C_out, C_in/group, k...), B): the tracer's conv attributes."""
    weight = node.shape(1)
    dims = len(weight) - 2
    return {
        "in_channels": node.shape(0)[1],
        "out_channels": weight[0],
        "kernel": tuple(weight[2:]),
        "stride": _spatial(node, "strides", dims, 1),
        "padding": _pads(node, dims),
        "dilation": _spatial(node, "dilations", dims, 1),
        "groups": int(node.attrs.get("group", 1)),
        "bias": node.has_input(2),
        "transposed": False,
    }


def _conv_transpose(node: OnnxNode) -> dict[str, Any]:
    """ConvTranspose(X, W (C_in, C_out/group, k...), B)."""
    weight = node.shape(1)
    dims = len(weight) - 2
    groups = int(node.attrs.get("group", 1))
    return {
        "in_channels": node.shape(0)[1],
        "out_channels": weight[1] * groups,
        "kernel": tuple(weight[2:]),
        "stride": _spatial(node, "strides", dims, 1),
        "padding": _pads(node, dims),
        "output_padding": _spatial(node, "output_padding", dims, 0),
        "dilation": _spatial(node, "dilations", dims, 1),
        "groups": groups,
        "bias": node.has_input(2),
        "transposed": True,
    }


def _gemm(node: OnnxNode) -> dict[str, Any]:
    """Gemm(A, B, C): a linear layer when B is a parameter (as ``F.linear`` exports), else a
    matmul; the contraction runs over A's columns (its rows with ``transA``)."""
    a = node.shape(0)
    inner = int(a[0] if node.attrs.get("transA") else a[-1])
    if 1 in node.weights:
        return {
            "in_features": inner,
            "out_features": int(node.out_shape[-1]),
            "bias": node.has_input(2),
        }
    return {"op": "matmul", "inner": inner}


def _matmul(node: OnnxNode) -> dict[str, Any]:
    return {"inner": int(node.shape(0)[-1])}


def _einsum(node: OnnxNode) -> dict[str, Any]:
    """Two operands and no ``...``: the product of all distinct index sizes, as in the tracer."""
    equation = str(node.attrs.get("equation", "")).replace(" ", "")
    inputs = equation.split("->")[0].split(",")
    if len(inputs) != 2 or "..." in equation or len(node.shapes) != 2:
        return {"op": "einsum_general", "equation": equation}
    sizes: dict[str, int] = {}
    for letters, shape in zip(inputs, (node.shape(0), node.shape(1)), strict=True):
        sizes.update(zip(letters, shape, strict=True))
    return {"equation": equation, "index_sizes": tuple(sizes.values())}


def _batchnorm(node: OnnxNode) -> dict[str, Any]:
    return {"channels": int(node.shape(0)[1]), "affine": True}


def _recurrent(node: OnnxNode) -> dict[str, Any]:
    """LSTM/GRU/RNN(X, W, R, ...): one layer, all directions; X is (steps, batch, features), or
    (batch, steps, features) with ``layout`` 1. W and R hold every gate's matrices."""
    x = node.shape(0)
    steps, sequences = (x[1], x[0]) if node.attrs.get("layout") else (x[0], x[1])
    matrices = prod(node.shape(1)) + prod(node.shape(2))
    return {"steps": int(steps), "sequences": int(sequences), "matrix_elements": int(matrices)}


def _attention(node: OnnxNode) -> dict[str, Any]:
    """Attention(Q, K, V): 4-d (batch, heads, length, size), or 3-d (batch, length, heads *
    size) with ``q_num_heads`` and ``kv_num_heads``."""
    q, k, v = node.shape(0), node.shape(1), node.shape(2)
    if len(q) == 4:
        return {"queries": prod(q[:-1]), "keys": k[-2], "qk_dim": q[-1], "v_dim": v[-1]}
    q_heads = int(node.attrs.get("q_num_heads", 1))
    kv_heads = int(node.attrs.get("kv_num_heads", 1))
    return {
        "queries": q[0] * q[1] * q_heads,
        "keys": k[1],
        "qk_dim": q[-1] // q_heads,
        "v_dim": v[-1] // kv_heads,
    }


def _pool(node: OnnxNode) -> dict[str, Any]:
    """MaxPool/AveragePool: ONNX's stride defaults to 1 (PyTorch's to the kernel)."""
    kernel = tuple(int(k) for k in node.attrs.get("kernel_shape", ()))
    return {
        "kernel": kernel,
        "stride": _spatial(node, "strides", len(kernel), 1),
        "padding": _pads(node, len(kernel)),
    }


def _resize(node: OnnxNode) -> dict[str, Any]:
    """Resize/Upsample: the mode (``nearest``, ``linear`` or ``cubic``, per spatial axis), whose
    taps per output element the op's work counts (``metrics.op_kinds.resize_taps``)."""
    return {"mode": str(node.attrs.get("mode", "nearest"))}


def _none(node: OnnxNode) -> dict[str, Any]:
    return {}


def _activation(kind: str) -> tuple[str, AttrFn]:
    return "activation", lambda node: {"kind": kind}


_ACTIVATIONS = {
    "Relu": "relu",
    "LeakyRelu": "leaky_relu",
    "PRelu": "prelu",
    "Sigmoid": "sigmoid",
    "HardSigmoid": "hardsigmoid",
    "HardSwish": "hardswish",
    "Swish": "silu",
    "Tanh": "tanh",
    "Elu": "elu",
    "Selu": "selu",
    "Gelu": "gelu",
    "Mish": "mish",
    "Softplus": "softplus",
    "Clip": "hardtanh",
}

#: ONNX op -> the hda op of the same work, for ops whose cost reads shapes only.
_PLAIN = {
    # elementwise math
    "Abs": "abs", "Acos": "acos", "Acosh": "acosh", "Add": "add", "And": "logical_and",
    "Asin": "asin", "Asinh": "asinh", "Atan": "atan", "Atanh": "atanh",
    "BitShift": "bitwise_left_shift", "BitwiseAnd": "bitwise_and", "BitwiseNot": "bitwise_not",
    "BitwiseOr": "bitwise_or", "BitwiseXor": "bitwise_xor", "Ceil": "ceil", "Celu": "celu",
    "Cos": "cos", "Cosh": "cosh", "Div": "div", "Equal": "eq", "Erf": "erf", "Exp": "exp",
    "Floor": "floor", "Greater": "gt", "GreaterOrEqual": "ge", "IsInf": "isinf",
    "IsNaN": "isnan", "Less": "lt", "LessOrEqual": "le", "Log": "log", "Max": "maximum",
    "Mean": "add", "Min": "minimum", "Mod": "fmod", "Mul": "mul", "Neg": "neg",
    "Not": "logical_not", "Or": "logical_or", "Pow": "pow", "Reciprocal": "reciprocal",
    "Round": "round", "Shrink": "hardshrink", "Sign": "sign", "Sin": "sin", "Sinh": "sinh",
    "Softsign": "softsign", "Sqrt": "sqrt", "Sub": "sub", "Sum": "add", "Tan": "tan",
    "ThresholdedRelu": "threshold", "Where": "where", "Xor": "logical_xor",
    "Cast": "to", "CastLike": "to", "SwiGLU": "glu",
    # normalisation, softmax
    "LayerNormalization": "layer_norm", "GroupNormalization": "group_norm",
    "InstanceNormalization": "instance_norm", "RMSNormalization": "rms_norm",
    "MeanVarianceNormalization": "layer_norm", "LRN": "local_response_norm",
    "LpNormalization": "normalize", "Softmax": "softmax", "LogSoftmax": "log_softmax",
    "Hardmax": "one_hot",
    # pooling and resampling
    "GlobalAveragePool": "adaptive_avg_pool", "GlobalMaxPool": "adaptive_max_pool",
    "LpPool": "lp_pool2d", "GlobalLpPool": "lp_pool2d", "MaxUnpool": "max_unpool2d",
    "GridSample": "grid_sample",
    "AffineGrid": "affine_grid", "Col2Im": "fold", "DepthToSpace": "pixel_shuffle",
    "SpaceToDepth": "pixel_unshuffle", "Pad": "pad", "CenterCropPad": "pad",
    "RoiAlign": "roi_align", "MaxRoiPool": "roi_pool",
    # reductions
    "ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "amax", "ReduceMin": "amin",
    "ReduceProd": "prod", "ReduceL1": "norm", "ReduceL2": "norm", "ReduceSumSquare": "norm",
    "ReduceLogSum": "logsumexp", "ReduceLogSumExp": "logsumexp", "ArgMax": "argmax",
    "ArgMin": "argmin", "CumSum": "cumsum", "CumProd": "cumprod", "TopK": "topk",
    # data movement that writes a new tensor
    "Concat": "concat", "Gather": "index_select", "GatherElements": "gather",
    "GatherND": "gather", "Scatter": "scatter", "ScatterElements": "scatter",
    "ScatterND": "index_put", "TensorScatter": "index_put", "Tile": "tile",
    "ReverseSequence": "flip", "Trilu": "triu", "OneHot": "one_hot",
    "ConstantOfShape": "new_zeros", "EyeLike": "zeros_like", "Range": "arange",
    "RotaryEmbedding": "mul",
    # losses and random numbers
    "NegativeLogLikelihoodLoss": "nll_loss", "SoftmaxCrossEntropyLoss": "cross_entropy",
    "Bernoulli": "bernoulli", "Multinomial": "multinomial", "RandomNormal": "normal",
    "RandomNormalLike": "normal", "RandomUniform": "uniform", "RandomUniformLike": "uniform",
    "BlackmanWindow": "arange", "HammingWindow": "arange", "HannWindow": "arange",
    "MelWeightMatrix": "arange",
    # views, identities at inference, graph plumbing: free, as their PyTorch forms are
    "Reshape": "reshape", "Flatten": "flatten", "Squeeze": "squeeze", "Unsqueeze": "unsqueeze",
    "Transpose": "permute", "Slice": "narrow", "Split": "split", "Expand": "expand",
    "Identity": "identity", "Dropout": "dropout", "BitCast": "view",
}  # fmt: skip

#: ONNX op -> (hda op, attribute extractor).
ONNX_OPS: dict[str, tuple[str, AttrFn]] = {
    "Conv": ("conv", _conv),
    "ConvTranspose": ("conv_transpose", _conv_transpose),
    "Gemm": ("linear", _gemm),
    "MatMul": ("matmul", _matmul),
    "Einsum": ("einsum", _einsum),
    "Attention": ("attention", _attention),
    "LSTM": ("recurrent", _recurrent),
    "GRU": ("recurrent", _recurrent),
    "RNN": ("recurrent", _recurrent),
    "BatchNormalization": ("batchnorm", _batchnorm),
    "MaxPool": ("max_pool", _pool),
    "AveragePool": ("avg_pool", _pool),
    "Resize": ("interpolate", _resize),
    "Upsample": ("interpolate", _resize),
    **{op: _activation(kind) for op, kind in _ACTIVATIONS.items()},
    **{op: (name, _none) for op, name in _PLAIN.items()},
}

_QUANTIZED = "a quantized op: analyse the float model"
_DATA_DEPENDENT = "its output shape depends on tensor values, which shape inference does not have"
_SUBGRAPH = "control flow over a subgraph: its body is not costed"
_SEQUENCE = "a sequence or optional value, not a tensor"
_STRINGS = "works on strings, not tensors"

#: ONNX ops that are reported, not counted, with why.
ONNX_UNSUPPORTED: dict[str, str] = {
    **dict.fromkeys(
        [
            "ConvInteger",
            "MatMulInteger",
            "QLinearConv",
            "QLinearMatMul",
            "QuantizeLinear",
            "DequantizeLinear",
            "DynamicQuantizeLinear",
        ],
        _QUANTIZED,
    ),
    **dict.fromkeys(("NonZero", "Compress", "Unique", "NonMaxSuppression"), _DATA_DEPENDENT),
    **dict.fromkeys(("If", "Loop", "Scan", "SequenceMap"), _SUBGRAPH),
    **dict.fromkeys(
        [
            "ConcatFromSequence",
            "SplitToSequence",
            "SequenceAt",
            "SequenceConstruct",
            "SequenceEmpty",
            "SequenceErase",
            "SequenceInsert",
            "SequenceLength",
            "Optional",
            "OptionalGetElement",
            "OptionalHasElement",
        ],
        _SEQUENCE,
    ),
    **dict.fromkeys(
        ("RegexFullMatch", "StringConcat", "StringNormalizer", "StringSplit", "TfIdfVectorizer"),
        _STRINGS,
    ),
    "DeformConv": "a deformable convolution: sampling at learned offsets has no handler yet",
    "CausalConvWithState": "a stateful causal convolution: no handler reads its state yet",
    "LinearAttention": "linear attention: no handler counts its recurrence yet",
    "Det": "a matrix determinant: no multiply-add convention to count",
    "DFT": "an FFT: n log n multiply-adds have no agreed MAC convention",
    "STFT": "an FFT: n log n multiply-adds have no agreed MAC convention",
    "ImageDecoder": "decodes encoded image bytes, outside the network",
}

#: Ops whose outputs are values known without running the network (a shape, a constant):
#: what is computed from them alone is plumbing (``Shape -> Gather -> Concat -> Reshape``), as
#: ``x.size(0)`` is in PyTorch, and makes no node.
VALUE_SOURCES = frozenset({"Shape", "Size", "Constant"})

#: Input positions that are not data but control: shapes, axes, indices of a slice, sizes,
#: scalar bounds. They never make edges and never hold parameters.
CONTROL_INPUTS: dict[str, frozenset[int]] = {
    op: frozenset(slots)
    for op, slots in {
        "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Squeeze": (1,), "Unsqueeze": (1,),
        "Slice": (1, 2, 3, 4), "Split": (1,), "Pad": (1, 2, 3), "CenterCropPad": (1, 2),
        "Resize": (1, 2, 3), "Upsample": (1,), "TopK": (1,), "Clip": (1, 2), "CumSum": (1,),
        "CumProd": (1,), "Trilu": (1,), "OneHot": (1, 2), "Range": (0, 1, 2),
        "ConstantOfShape": (0,), "Dropout": (1, 2), "ReduceMean": (1,), "ReduceSum": (1,),
        "ReduceMax": (1,), "ReduceMin": (1,), "ReduceProd": (1,), "ReduceL1": (1,),
        "ReduceL2": (1,), "ReduceSumSquare": (1,), "ReduceLogSum": (1,),
        "ReduceLogSumExp": (1,), "AffineGrid": (1,), "Col2Im": (1, 2), "RoiAlign": (2,),
        "MaxUnpool": (2,), "Bernoulli": (), "BlackmanWindow": (0,), "HammingWindow": (0,),
        "HannWindow": (0,), "MelWeightMatrix": (0, 1, 2, 3, 4), "CastLike": (1,),
    }.items()
}  # fmt: skip

#: Data inputs that are statistics, not parameters (BatchNormalization's running mean and
#: variance are buffers in PyTorch).
STATISTICS: dict[str, frozenset[int]] = {"BatchNormalization": frozenset({3, 4})}

#: Ops that multiply activations by weights: recorded as nodes even when every input is a
#: parameter (a constant product the exporter did not fold still costs MACs).
COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum", "Attention"})


def snake(op_type: str) -> str:
    """``GlobalAveragePool`` -> ``global_average_pool``: an ONNX op in a layer's name."""
    out = [op_type[0].lower()]
    for prev, char in pairwise(op_type):
        out.append(f"_{char.lower()}" if char.isupper() and prev.islower() else char.lower())
    return "".join(out)
