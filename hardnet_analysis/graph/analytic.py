"""Layer-by-layer graph construction with shapes from the exact size rules (no torch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hardnet_analysis.errors import ShapeError
from hardnet_analysis.graph.ir import GraphBuilder, Shape
from hardnet_analysis.graph.shapes import conv_out, conv_transpose_out, pool_out

Pair = tuple[int, int]


def _pair(value: int | Pair) -> Pair:
    return (value, value) if isinstance(value, int) else value


class AnalyticBuilder(GraphBuilder):
    """Adds layers by their hyper-parameters and propagates NCHW shapes analytically.

    `block` is the label given to the nodes added next (set it as the network is walked).
    """

    def __init__(self, model: str) -> None:
        super().__init__(model)
        self.block = ""

    def _checked(self, name: str, op: str, in_shape: Shape, out_hw: Pair) -> Shape:
        if out_hw[0] < 1 or out_hw[1] < 1:
            raise ShapeError(
                f"feature map shrinks to {out_hw[0]}x{out_hw[1]} at layer {name!r} ({op}) "
                f"from {in_shape[2]}x{in_shape[3]}"
            )
        return (in_shape[0], in_shape[1], *out_hw)

    def input(self, shape: Shape, name: str = "input") -> str:
        return self.add("input", name, (), shape, "input")

    def conv(
        self,
        x: str,
        name: str,
        out_channels: int,
        kernel: int | Pair,
        stride: int | Pair = 1,
        padding: int | Pair = 0,
        dilation: int | Pair = 1,
        groups: int = 1,
        bias: bool = False,
    ) -> str:
        shape = self.shape(x)
        k, s, p, d = _pair(kernel), _pair(stride), _pair(padding), _pair(dilation)
        hw = (
            conv_out(shape[2], k[0], s[0], p[0], d[0]),
            conv_out(shape[3], k[1], s[1], p[1], d[1]),
        )
        self._checked(name, f"conv {k[0]}x{k[1]}/{s[0]}", shape, hw)
        attrs = {"dilation": d, "groups": groups, "transposed": False}
        return self._conv_node("conv", x, name, out_channels, hw, k, s, p, bias, **attrs)

    def _conv_node(
        self,
        op: str,
        x: str,
        name: str,
        out_channels: int,
        hw: Pair,
        kernel: Pair,
        stride: Pair,
        padding: Pair,
        bias: bool,
        **attrs: Any,
    ) -> str:
        """The node of a plain or transposed convolution of `x` to `out_channels` x `hw`."""
        shape = self.shape(x)
        return self.add(
            op,
            name,
            [x],
            (shape[0], out_channels, *hw),
            self.block,
            in_channels=shape[1],
            out_channels=out_channels,
            kernel=kernel,
            stride=stride,
            padding=padding,
            bias=bias,
            param_key=name,
            **attrs,
        )

    def conv_transpose(
        self,
        x: str,
        name: str,
        out_channels: int,
        kernel: int | Pair,
        stride: int | Pair = 1,
        padding: int | Pair = 0,
        output_padding: int | Pair = 0,
        bias: bool = False,
    ) -> str:
        """A transposed convolution (``nn.ConvTranspose2d``, groups and dilation 1), its size by
        `conv_transpose_out`: 3x3 stride 2 on 1x240x11x15 gives 1x240x23x31."""
        shape = self.shape(x)
        k, s, p, o = _pair(kernel), _pair(stride), _pair(padding), _pair(output_padding)
        hw = (
            conv_transpose_out(shape[2], k[0], s[0], p[0], o[0]),
            conv_transpose_out(shape[3], k[1], s[1], p[1], o[1]),
        )
        self._checked(name, f"conv_transpose {k[0]}x{k[1]}/{s[0]}", shape, hw)
        attrs = {"output_padding": o, "dilation": (1, 1), "groups": 1, "transposed": True}
        return self._conv_node("conv_transpose", x, name, out_channels, hw, k, s, p, bias, **attrs)

    def interpolate(self, x: str, name: str, size: Pair, mode: str = "bilinear") -> str:
        """Resampling to `size` (H, W), as ``F.interpolate(x, size=...)``: no MACs and no CIO,
        it reads its input and writes its output (1x48x256x512 to 1024x2048: 25.2 M elements
        written)."""
        shape = self.shape(x)
        out = self._checked(name, f"interpolate {mode}", shape, size)
        return self.add("interpolate", name, [x], out, self.block, size=size, mode=mode)

    def crop(self, x: str, name: str, size: Pair) -> str:
        """The centre `size` (H, W) window of `x`, a slice (``x[:, :, a:a+h, b:b+w]``: a view,
        it moves nothing; traced as ``getitem``)."""
        shape = self.shape(x)
        if size[0] > shape[2] or size[1] > shape[3]:
            raise ShapeError(
                f"cannot crop {shape[2]}x{shape[3]} to {size[0]}x{size[1]} at {name!r}"
            )
        return self.add("getitem", name, [x], (*shape[:2], *size), self.block)

    def batchnorm(self, x: str, name: str, affine: bool = True) -> str:
        shape = self.shape(x)
        return self.add(
            "batchnorm",
            name,
            [x],
            shape,
            self.block,
            channels=shape[1],
            affine=affine,
            param_key=name,
        )

    def activation(self, x: str, name: str, kind: str) -> str:
        return self.add("activation", name, [x], self.shape(x), self.block, kind=kind)

    def pool(
        self,
        x: str,
        name: str,
        mode: str,
        kernel: int | Pair,
        stride: int | Pair | None = None,
        padding: int | Pair = 0,
        ceil_mode: bool = False,
    ) -> str:
        """Max (`mode="max"`) or average pooling; stride defaults to the kernel, as in PyTorch."""
        shape = self.shape(x)
        k, p = _pair(kernel), _pair(padding)
        s = _pair(stride) if stride is not None else k
        hw = (
            pool_out(shape[2], k[0], s[0], p[0], ceil_mode=ceil_mode),
            pool_out(shape[3], k[1], s[1], p[1], ceil_mode=ceil_mode),
        )
        out = self._checked(name, f"{mode}_pool {k[0]}x{k[1]}/{s[0]}", shape, hw)
        return self.add(
            f"{mode}_pool",
            name,
            [x],
            out,
            self.block,
            kernel=k,
            stride=s,
            padding=p,
            ceil_mode=ceil_mode,
        )

    def adaptive_pool(self, x: str, name: str, mode: str, output_size: Pair = (1, 1)) -> str:
        shape = self.shape(x)
        out = (shape[0], shape[1], *output_size)
        return self.add(
            f"adaptive_{mode}_pool", name, [x], out, self.block, output_size=output_size
        )

    def concat(self, xs: Sequence[str], name: str) -> str:
        shapes = [self.shape(x) for x in xs]
        channels = sum(s[1] for s in shapes)
        return self.add(
            "concat", name, xs, (shapes[0][0], channels, *shapes[0][2:]), self.block, dim=1
        )

    def add_tensors(self, xs: Sequence[str], name: str) -> str:
        return self.add("add", name, xs, self.shape(xs[0]), self.block)

    def flatten(self, x: str, name: str) -> str:
        shape = self.shape(x)
        features = 1
        for size in shape[1:]:
            features *= size
        return self.add("flatten", name, [x], (shape[0], features), self.block)

    def dropout(self, x: str, name: str, p: float) -> str:
        return self.add("dropout", name, [x], self.shape(x), self.block, p=p)

    def linear(self, x: str, name: str, out_features: int, bias: bool = True) -> str:
        shape = self.shape(x)
        return self.add(
            "linear",
            name,
            [x],
            (*shape[:-1], out_features),
            self.block,
            in_features=shape[-1],
            out_features=out_features,
            bias=bias,
            param_key=name,
        )

    def output(self, x: str, name: str = "output") -> str:
        return self.add("output", name, [x], self.shape(x), "output")
