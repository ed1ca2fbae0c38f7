"""The micro-benchmarks ``hda calibrate`` times: one small module per layer kind and shape.

Grids (`grid`): ``full`` (the default, 537 benchmarks, about 110 s at 1 thread on 2 cores),
``quick`` (every kind over fewer shapes) and ``tiny`` (one or two small shapes per kind, for
tests). Each benchmark is a module of one op (or a free view plus one op, so a concat or an add
reads two pieces of its input) whose graph the tracer records, so its features come from the
same engine as a network's. Memory-bound kinds and convs run twice where the difference can
show: warm (one input, repeated) and cold (a rotated pool of copies spanning more than twice
the largest cache, so every call reads from DRAM).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

Make = Callable[[], nn.Module]


@dataclass(frozen=True)
class Bench:
    """One micro-benchmark: the kind it measures, a label, the module factory and input shape."""

    kind: str
    label: str
    make: Make
    shape: tuple[int, ...]


class Lambda(nn.Module):
    """A module running `fn` on its input (the traced graph names its ops after `fn`'s)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _pair(op: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Make:
    """A module splitting its input in two along channels and combining the halves with `op`."""
    return lambda: Lambda(lambda x: op(*x.chunk(2, 1)))


def _shuffle(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous()


#: (channels, side) of feature maps, small to large, and the subset the smaller grids use.
MAPS = {
    "full": (
        (32, 112),
        (64, 112),
        (64, 56),
        (128, 56),
        (128, 28),
        (256, 28),
        (256, 14),
        (512, 14),
        (512, 7),
        (1024, 7),
        (24, 224),
        (16, 112),
    ),
    "quick": ((32, 112), (64, 56), (256, 14), (1024, 7)),
    "tiny": ((8, 16), (16, 8)),
}
CHANNELS = {"full": (16, 32, 64, 128, 256, 512), "quick": (32, 128, 512), "tiny": (8, 16)}
SIDES = {"full": (7, 14, 28, 56, 112), "quick": (14, 56), "tiny": (8, 16)}
MAX_MACS = 2e9
#: (in, out, side) of convs whose channels are no multiple of 8 or 16, as HarDNet's and
#: DenseNet's concatenations make them: where blocked layouts pad channels, they show it. Those
#: with input channels that are no multiple of 4 either (HarDNet-68's 34, 78, 150, 262) are
#: convs ONNX Runtime runs outside its NCHWc layout on an AVX2 CPU (``metrics.fusion``).
ODD_CHANNELS = {
    "full": (
        (20, 24, 56),
        (36, 40, 56),
        (34, 20, 56),
        (48, 20, 56),
        (56, 56, 28),
        (72, 68, 28),
        (78, 34, 28),
        (100, 100, 14),
        (136, 134, 14),
        (150, 64, 28),
        (200, 216, 14),
        (262, 256, 14),
        (260, 270, 7),
        (8, 32, 112),
    ),
    "quick": ((20, 24, 56), (78, 34, 28), (100, 100, 14)),
    "tiny": ((12, 10, 8), (10, 12, 8)),
}
#: (channels, side, stride) of depthwise convs with such channel counts (HarDNet-DS's; 26, 34,
#: 58, 134 and 334 no multiple of 4).
ODD_DEPTHWISE = {
    "full": (
        (20, 56, 1),
        (26, 56, 1),
        (34, 56, 1),
        (40, 56, 1),
        (52, 28, 1),
        (58, 28, 1),
        (88, 28, 1),
        (116, 14, 1),
        (134, 14, 1),
        (200, 14, 1),
        (334, 7, 1),
        (48, 112, 2),
        (96, 56, 2),
        (200, 28, 2),
    ),
    "quick": ((26, 56, 1), (58, 28, 1), (116, 14, 1), (200, 28, 2)),
    "tiny": ((12, 8, 1), (10, 8, 1)),
}
#: (kernel, channels, side, stride) of depthwise convs on the large maps of 320x320 inputs
#: (MobileNetV2's and MNASNet's 96 @160 /2, EfficientNet-B4's 144 @112 /2 at 224). Their
#: inputs of 3.7-9.8 MB outgrow what this VM's L3 keeps warm: MobileNetV2's 96-channel conv
#: at 160x160 took 1.5 ms alone at one thread on a 2-core AMD EPYC, 0.12 ns per byte against
#: 0.08 for the grid's largest stride-2 conv (48 @112), and a fit without them predicted
#: 0.99 ms (``results/dw-large/NOTE.md``).
LARGE_DEPTHWISE = {
    "full": ((3, 32, 160, 1), (3, 96, 160, 2), (3, 144, 80, 1), (3, 144, 112, 2), (5, 72, 80, 2)),
    "quick": (),
    "tiny": (),
}


#: (in, out, groups, kernel, side) of grouped convs with channels per group that are no
#: multiple of 8: CondenseNet's 3x3 convs (4 groups of 2 or 4 outputs) and learned 1x1 group
#: convs (4 groups of 12 to 452 inputs), ResNeXt's first stage (32 groups of 4) and other
#: widths. PyTorch's oneDNN runs them as im2col and a GEMM per group, or (4 or 12 channels per
#: group, or at several threads the 1x1 ones) in its narrowest blocked layout; ONNX Runtime in
#: NCHW (``metrics.conv_paths``); each far from a blocked grouped conv of the same work.
GEMM_GROUPED = {
    "full": (
        (32, 8, 4, 3, 112),
        (32, 8, 4, 3, 28),
        (64, 16, 4, 3, 112),
        (64, 16, 4, 3, 56),
        (64, 16, 4, 3, 14),
        (128, 128, 32, 3, 56),
        (64, 64, 16, 3, 28),
        (24, 24, 4, 3, 56),
        (48, 48, 4, 3, 28),
        (96, 96, 8, 3, 28),
        (192, 192, 16, 3, 14),
        (72, 72, 6, 3, 28),
        (48, 64, 4, 1, 56),
        (144, 128, 4, 1, 28),
        (208, 128, 4, 1, 28),
        (400, 256, 4, 1, 14),
        (656, 256, 4, 1, 14),
        (1040, 512, 4, 1, 7),
        (1808, 512, 4, 1, 7),
    ),
    "quick": (
        (32, 8, 4, 3, 56),
        (128, 128, 32, 3, 28),
        (48, 48, 4, 3, 28),
        (96, 96, 8, 3, 28),
        (144, 128, 4, 1, 28),
    ),
    "tiny": ((16, 4, 4, 3, 8), (24, 16, 4, 1, 8)),
}


def _conv(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> Make:
    return lambda: nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False)


def _dense(size: str) -> Iterator[Bench]:
    for c in CHANNELS[size]:
        for side in SIDES[size]:
            for k, ratio in ((3, 1), (1, 1), (1, 4), (3, 2)):
                c_out = c * ratio if k == 1 else c // ratio if ratio > 1 else c
                if side * side * c * c_out * k * k > MAX_MACS:
                    continue
                kind = "conv_1x1" if k == 1 else "conv_kxk"
                yield Bench(
                    kind, f"conv{k} {c}->{c_out} @{side}", _conv(c, c_out, k), (1, c, side, side)
                )
                if k == 1 and ratio == 4:
                    yield Bench(
                        kind,
                        f"conv1 {c_out}->{c} @{side}",
                        _conv(c_out, c, 1),
                        (1, c_out, side, side),
                    )
    for c_in, c_out, side in ODD_CHANNELS[size]:
        for k in (3, 1):
            kind = "conv_1x1" if k == 1 else "conv_kxk"
            yield Bench(
                kind,
                f"conv{k} {c_in}->{c_out} @{side}",
                _conv(c_in, c_out, k),
                (1, c_in, side, side),
            )
    yield from _strided_1x1(size)
    if size != "tiny":
        yield Bench("conv_kxk", "conv3 3->32 /2 @224", _conv(3, 32, 3, 2), (1, 3, 224, 224))
        yield Bench("conv_kxk", "conv7 3->64 /2 @224", _conv(3, 64, 7, 2), (1, 3, 224, 224))
        yield Bench("conv_kxk", "conv3 64->128 /2 @56", _conv(64, 128, 3, 2), (1, 64, 56, 56))


def _strided_1x1(size: str) -> Iterator[Bench]:
    """1x1 convs of stride 2 doubling the channels (ResNet and RegNet downsamples), on the
    dense grid's channels and sides and on its odd channel counts (sides from 8: a network
    downsamples no smaller map)."""
    shapes = [(c, 2 * c, side) for c in CHANNELS[size] for side in SIDES[size]]
    for c_in, c_out, side in [*shapes, *ODD_CHANNELS[size]]:
        if side < 8 or (side // 2) ** 2 * c_in * c_out > MAX_MACS:
            continue
        yield Bench(
            "conv_1x1_strided",
            f"conv1 {c_in}->{c_out} /2 @{side}",
            _conv(c_in, c_out, 1, 2),
            (1, c_in, side, side),
        )


def _grouped(size: str) -> Iterator[Bench]:
    for c, side in MAPS[size]:
        for k in (3, 5, 7) if size == "full" else (3,):
            yield Bench(
                "conv_dw", f"dw{k} {c} @{side}", _conv(c, c, k, groups=c), (1, c, side, side)
            )
        for width in (8, 16, 32):
            if c % width == 0 and c > width:
                label = f"gconv3 {c} g{c // width} @{side}"
                yield Bench(
                    "conv_grouped", label, _conv(c, c, 3, groups=c // width), (1, c, side, side)
                )
    for c_in, c_out, groups, k, side in GEMM_GROUPED[size]:
        label = f"gconv{k} {c_in}->{c_out} g{groups} @{side}"
        yield Bench(
            "conv_grouped", label, _conv(c_in, c_out, k, groups=groups), (1, c_in, side, side)
        )
    yield Bench("conv_dw", "dw3 /2 64 @32", _conv(64, 64, 3, 2, 64), (1, 64, 32, 32))
    odd = [(3, c, side, stride) for c, side, stride in ODD_DEPTHWISE[size]]
    for k, c, side, stride in [*odd, *LARGE_DEPTHWISE[size]]:
        yield Bench(
            "conv_dw",
            f"dw{k} /{stride} {c} @{side}",
            _conv(c, c, k, stride, c),
            (1, c, side, side),
        )


LINEAR = {
    "full": (
        (1, 1024, 1000),
        (1, 2048, 1000),
        (1, 4096, 4096),
        (1, 25088, 4096),
        (197, 768, 768),
        (197, 768, 3072),
        (197, 3072, 768),
        (3136, 96, 384),
        (784, 192, 768),
        (49, 768, 3072),
        (1, 1280, 1000),
        (16, 512, 512),
    ),
    "quick": ((1, 2048, 1000), (197, 768, 3072), (3136, 96, 384), (1, 25088, 4096)),
    "tiny": ((1, 64, 10), (16, 32, 64)),
}
ATTENTION = {
    "full": ((768, 197), (256, 50), (384, 197), (192, 785)),
    "quick": ((768, 197),),
    "tiny": ((32, 10),),
}


def _gemm(size: str) -> Iterator[Bench]:
    for rows, d_in, d_out in LINEAR[size]:
        yield Bench(
            "linear",
            f"linear {rows}x{d_in}->{d_out}",
            partial(nn.Linear, d_in, d_out),
            (1, rows, d_in),
        )
    for embed, tokens in ATTENTION[size]:
        heads = max(1, embed // 64)
        mha = lambda e=embed, h=heads: _Attention(nn.MultiheadAttention(e, h, batch_first=True))  # noqa: E731
        yield Bench("matmul", f"mha {embed} x{tokens}", mha, (1, tokens, embed))
        yield Bench("matmul", f"bmm {heads}x{tokens}x64", _pair0(_scores), (2 * heads, tokens, 64))


def _scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return torch.matmul(q, k.transpose(-1, -2))


def _pair0(op: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Make:
    """A module splitting its input in two along the batch and combining the halves with `op`."""
    return lambda: Lambda(lambda x: op(*x.chunk(2, 0)))


class _Attention(nn.Module):
    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        self.mha = mha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.mha(x, x, x, need_weights=False)[0]
        return out


ELTWISE: dict[str, Make] = {
    "relu": lambda: nn.ReLU(),
    "relu6": lambda: nn.ReLU6(),
    "hardswish": lambda: nn.Hardswish(),
    "silu": lambda: nn.SiLU(),
    "gelu": lambda: nn.GELU(),
    "sigmoid": lambda: nn.Sigmoid(),
    "add": _pair(torch.add),
    "mul": _pair(torch.mul),
}


def _memory(size: str) -> Iterator[Bench]:
    names = ["relu", "add", "mul", "hardswish"] if size == "full" else ["relu", "add"]
    curves = ["silu", "sigmoid"] if size == "full" else ["silu"]
    for c, side in MAPS[size]:
        shape = (1, c, side, side)
        yield Bench("bn", f"bn {c} @{side}", partial(nn.BatchNorm2d, c), shape)
        for name in names:
            yield Bench("eltwise", f"{name} {c} @{side}", ELTWISE[name], shape)
        for name in curves:
            yield Bench("transcendental", f"{name} {c} @{side}", ELTWISE[name], shape)
        if size != "tiny":
            yield Bench("gelu", f"gelu {c} @{side}", ELTWISE["gelu"], shape)
        yield Bench("max_pool", f"maxpool3/2 {c} @{side}", lambda: nn.MaxPool2d(3, 2, 1), shape)
        yield Bench("max_pool", f"maxpool2/2 {c} @{side}", lambda: nn.MaxPool2d(2, 2), shape)
        yield Bench("avg_pool", f"avgpool2/2 {c} @{side}", lambda: nn.AvgPool2d(2, 2), shape)
        yield Bench("global_pool", f"gap {c} @{side}", lambda: nn.AdaptiveAvgPool2d(1), shape)
        yield Bench("concat", f"cat2 {c} @{side}", _pair(lambda a, b: torch.cat([a, b], 1)), shape)
        yield Bench("copy", f"shuffle {c} @{side}", lambda: Lambda(_shuffle), shape)
        yield Bench("norm", f"layernorm {c} @{side}", partial(nn.LayerNorm, c), (1, side, side, c))
        yield Bench("view", f"flatten {c} @{side}", lambda: nn.Flatten(), shape)
    for heads, tokens in ((12, 197), (4, 50)) if size != "tiny" else ((2, 10),):
        yield Bench(
            "norm", f"softmax {heads}x{tokens}", lambda: nn.Softmax(-1), (1, heads, tokens, tokens)
        )
        yield Bench(
            "view",
            f"permute {heads}x{tokens}",
            lambda: Lambda(lambda x: x.permute(0, 2, 1, 3)),
            (1, heads, tokens, 64),
        )
    if size == "full":
        yield Bench(
            "concat",
            "cat4 256 @28",
            lambda: Lambda(lambda x: torch.cat(x.chunk(4, 1), 1)),
            (1, 256, 28, 28),
        )
        yield Bench(
            "copy",
            "contiguous permute 96 @56",
            lambda: Lambda(lambda x: x.permute(0, 2, 3, 1).contiguous()),
            (1, 96, 56, 56),
        )
    yield from _resize(size)


#: (channels, side, scale) of upsamplings as decoders and feature pyramids run them, the last a
#: segmentation head's logits upsampled to the input (FC-HarDNet's 19 classes). PyTorch's
#: kernels cost far from one figure per tap: at one thread on a 2-core AMD EPYC, 0.45 ns per
#: output for nearest and 1.5 for bilinear on 19-64 channels, 1.6-4.2 for both on 256-1024.
RESIZE = {
    "full": (
        (256, 7, 2),
        (256, 14, 2),
        (128, 28, 2),
        (64, 56, 2),
        (32, 112, 2),
        (320, 8, 2),
        (78, 64, 2),
        (19, 128, 4),
    ),
    "quick": ((256, 14, 2), (64, 56, 2), (19, 128, 4)),
    "tiny": ((8, 8, 2),),
}


def _resize(size: str) -> Iterator[Bench]:
    for c, side, scale in RESIZE[size]:
        shape = (1, c, side, side)
        for mode in ("nearest", "bilinear"):
            label = f"{mode}{scale} {c} @{side}"
            yield Bench("resize", label, partial(_upsample, scale, mode), shape)
    if size == "full":
        yield Bench("resize", "bicubic2 64 @56", partial(_upsample, 2, "bicubic"), (1, 64, 56, 56))


def _upsample(scale: int, mode: str) -> nn.Module:
    return nn.Upsample(scale_factor=float(scale), mode=mode)


GRIDS = ("full", "quick", "tiny")


def grid(size: str = "full") -> list[Bench]:
    """The benchmarks of grid `size` (``full``, ``quick`` or ``tiny``)."""
    return [*_dense(size), *_grouped(size), *_gemm(size), *_memory(size)]
