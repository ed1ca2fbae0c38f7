"""DenseNet-BC definitions as pure data (no torch).

A dense layer is BN-ReLU-Conv1x1 (``bn_size * k`` channels) then BN-ReLU-Conv3x3 (k channels,
the growth rate) and takes the concatenation of the block input and every earlier layer of its
block. Between blocks, a transition BN-ReLU-Conv1x1 compresses the width to
``floor(compression * width)`` and a 2x2 average pool halves the resolution. The ImageNet stem
is Conv7x7/2-BN-ReLU-MaxPool3x3/2, the CIFAR stem a single 3x3 conv to ``2k`` channels; the
head is BN, ReLU, global average pool and a linear classifier (``../shared/notes/hardnet.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.registry import register_model

DenseStem = Literal["imagenet", "cifar"]


@dataclass(frozen=True)
class DenseNetDef:
    """A whole DenseNet-BC.

    `growth_rate` is k, `block_config` the number of layers per dense block, `init_channels`
    the stem's width, `bn_size` the bottleneck factor (the 1x1 conv gives ``bn_size * k``),
    `compression` the transitions' width factor and `drop_rate` the dropout after each layer's
    3x3 conv (0 disables it).
    """

    name: str
    growth_rate: int
    block_config: tuple[int, ...]
    init_channels: int
    bn_size: int = 4
    compression: float = 0.5
    stem: DenseStem = "imagenet"
    drop_rate: float = 0.0
    num_classes: int = 1000
    in_channels: int = 3
    input_size: int = 224
    family: Literal["densenet"] = "densenet"

    def __post_init__(self) -> None:
        checks = {
            "growth_rate": self.growth_rate >= 1,
            "init_channels": self.init_channels >= 1,
            "bn_size": self.bn_size >= 1,
            "num_classes": self.num_classes >= 1,
            "in_channels": self.in_channels >= 1,
            "input_size": self.input_size >= 1,
        }
        for field, ok in checks.items():
            if not ok:
                raise UsageError(f"{self.name}: {field} must be >= 1, got {getattr(self, field)}")
        if not self.block_config or min(self.block_config) < 1:
            raise UsageError(
                f"{self.name}: block_config needs at least one block of >= 1 layers, "
                f"got {list(self.block_config)}"
            )
        if not 0 < self.compression <= 1:
            raise UsageError(f"{self.name}: compression must be in (0, 1], got {self.compression}")
        if not 0 <= self.drop_rate < 1:
            raise UsageError(f"{self.name}: drop_rate must be in [0, 1), got {self.drop_rate}")

    def with_num_classes(self, num_classes: int) -> DenseNetDef:
        """This definition with a classifier of `num_classes` outputs."""
        return replace(self, num_classes=num_classes)

    def compressed(self, channels: int) -> int:
        """Width after a transition: floor(compression * channels); 256 at 0.5 -> 128."""
        return max(1, math.floor(self.compression * channels))

    def block_in_channels(self) -> tuple[int, ...]:
        """Input width of each dense block; densenet121 -> (64, 128, 256, 512)."""
        widths = [self.init_channels]
        for n_layers in self.block_config[:-1]:
            widths.append(self.compressed(widths[-1] + n_layers * self.growth_rate))
        return tuple(widths)

    @property
    def out_channels(self) -> int:
        """Width of the last block's output, the classifier's input; densenet121 -> 1024."""
        return self.block_in_channels()[-1] + self.block_config[-1] * self.growth_rate


@dataclass(frozen=True)
class DenseNetConfig:
    """One row of the zoo table: growth rate k, layers per block and the stem's width."""

    growth_rate: int
    block_config: tuple[int, ...]
    init_channels: int
    stem: DenseStem = "imagenet"

    def build(self, name: str, num_classes: int) -> DenseNetDef:
        return DenseNetDef(
            name,
            self.growth_rate,
            self.block_config,
            self.init_channels,
            stem=self.stem,
            num_classes=num_classes,
            input_size=32 if self.stem == "cifar" else 224,
        )


#: The DenseNet-BC configurations (``../shared/notes/hardnet.md``), as data. The CIFAR model
#: L=100, k=12 has 3 blocks of (L - 4) / 6 = 16 layers and a stem of 2k = 24 channels.
DENSENETS: dict[str, DenseNetConfig] = {
    "densenet121": DenseNetConfig(32, (6, 12, 24, 16), 64),
    "densenet169": DenseNetConfig(32, (6, 12, 32, 32), 64),
    "densenet201": DenseNetConfig(32, (6, 12, 48, 32), 64),
    "densenet161": DenseNetConfig(48, (6, 12, 36, 24), 96),
    "densenet_bc_100_k12": DenseNetConfig(12, (16, 16, 16), 24, stem="cifar"),
}

#: Published figures: torchvision's metadata for the ImageNet models (params, MACs at 224)
#: and the DenseNet paper's 0.8 M for DenseNet-BC L=100 k=12 (CIFAR-10, 32x32).
PUBLISHED: dict[str, dict[str, float]] = {
    "densenet121": {"params": 7_978_856, "macs": 2.834e9, "top1": 74.434},
    "densenet169": {"params": 14_149_480, "macs": 3.36e9, "top1": 75.6},
    "densenet201": {"params": 20_013_928, "macs": 4.291e9, "top1": 76.896},
    "densenet161": {"params": 28_681_000, "macs": 7.728e9, "top1": 77.138},
    "densenet_bc_100_k12": {"params": 0.8e6},
}


def _zoo(name: str, num_classes: int) -> DenseNetDef:
    return DENSENETS[name].build(name, num_classes)


@register_model("densenet", "DenseNet-121 (BC): k=32, blocks 6-12-24-16", PUBLISHED["densenet121"])
def densenet121(num_classes: int = 1000) -> DenseNetDef:
    return _zoo("densenet121", num_classes)


@register_model("densenet", "DenseNet-169 (BC): k=32, blocks 6-12-32-32", PUBLISHED["densenet169"])
def densenet169(num_classes: int = 1000) -> DenseNetDef:
    return _zoo("densenet169", num_classes)


@register_model("densenet", "DenseNet-201 (BC): k=32, blocks 6-12-48-32", PUBLISHED["densenet201"])
def densenet201(num_classes: int = 1000) -> DenseNetDef:
    return _zoo("densenet201", num_classes)


@register_model("densenet", "DenseNet-161 (BC): k=48, blocks 6-12-36-24", PUBLISHED["densenet161"])
def densenet161(num_classes: int = 1000) -> DenseNetDef:
    return _zoo("densenet161", num_classes)


@register_model(
    "densenet",
    "DenseNet-BC L=100 k=12 for CIFAR (32x32; pass 10 or 100 classes)",
    PUBLISHED["densenet_bc_100_k12"],
)
def densenet_bc_100_k12(num_classes: int = 10) -> DenseNetDef:
    return _zoo("densenet_bc_100_k12", num_classes)
