"""ResNet definitions as pure data (no torch): v1 (the paper's) and v1.5 (torchvision's).

The stem is Conv7x7/2-BN-ReLU-MaxPool3x3/2 to ``stem_width`` channels. Stage i repeats a
residual block ``layers[i]`` times at width ``widths[i]``; the first stage keeps the resolution,
every later one halves it in its first block. A basic block is Conv3x3-BN-ReLU-Conv3x3-BN, a
bottleneck block Conv1x1-BN-ReLU-Conv3x3-BN-ReLU-Conv1x1-BN with 4x the width at its output.
Either adds its input (through a 1x1 conv + BN "downsample" where the stride or the width
changes) and ends with a ReLU. The head is global average pooling and a linear classifier.

The two versions differ only in the first bottleneck of a downsampling stage: v1 (He et al.
2016, and the HarDNet paper's comparison rows) puts the stride 2 on its first 1x1 conv
(`stride_in_1x1=True`), v1.5 (torchvision's ``resnet50``) on the 3x3 conv. Parameters are the
same; v1 costs fewer MACs because its 1x1 conv already works at the lower resolution. Basic
blocks have no 1x1 conv, so ResNet-18/34 are the same in both versions and are left to
torchvision's builders.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.registry import register_model

BlockType = Literal["basic", "bottleneck"]

#: Output width of a block over its inner width.
EXPANSION: dict[str, int] = {"basic": 1, "bottleneck": 4}


@dataclass(frozen=True)
class ResNetDef:
    """A whole ResNet.

    `block` is the residual block type, `layers` the blocks per stage, `widths` each stage's
    inner width (a bottleneck block outputs 4x that), `stem_width` the stem conv's width and
    `stride_in_1x1` selects v1 (stride on the downsampling bottleneck's first 1x1 conv) over
    v1.5 (stride on its 3x3 conv); it needs bottleneck blocks.
    """

    name: str
    block: BlockType
    layers: tuple[int, ...]
    widths: tuple[int, ...] = (64, 128, 256, 512)
    stride_in_1x1: bool = False
    stem_width: int = 64
    num_classes: int = 1000
    in_channels: int = 3
    input_size: int = 224
    family: Literal["resnet"] = "resnet"

    def __post_init__(self) -> None:
        checks = {
            "stem_width": self.stem_width,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "input_size": self.input_size,
        }
        for field, value in checks.items():
            if value < 1:
                raise UsageError(f"{self.name}: {field} must be >= 1, got {value}")
        if not self.layers or min(self.layers) < 1:
            raise UsageError(
                f"{self.name}: layers needs at least one stage of >= 1 blocks, "
                f"got {list(self.layers)}"
            )
        if len(self.widths) != len(self.layers) or min(self.widths) < 1:
            raise UsageError(
                f"{self.name}: widths needs one width >= 1 per stage ({len(self.layers)}), "
                f"got {list(self.widths)}"
            )
        if self.stride_in_1x1 and self.block == "basic":
            raise UsageError(
                f"{self.name}: stride_in_1x1 needs bottleneck blocks (basic blocks have no 1x1)"
            )

    def with_num_classes(self, num_classes: int) -> ResNetDef:
        """This definition with a classifier of `num_classes` outputs."""
        return replace(self, num_classes=num_classes)

    @property
    def expansion(self) -> int:
        """Block output width over inner width: 1 for basic blocks, 4 for bottlenecks."""
        return EXPANSION[self.block]

    @property
    def out_channels(self) -> int:
        """Width of the last stage's output, the classifier's input; ResNet-50 -> 2048."""
        return self.widths[-1] * self.expansion

    def stage_stride(self, stage: int) -> int:
        """Stride of stage `stage` (0-based) in its first block: 1 for the first stage, else 2."""
        return 1 if stage == 0 else 2


@dataclass(frozen=True)
class ResNetConfig:
    """One row of the zoo table: block type and blocks per stage (widths 64-128-256-512)."""

    block: BlockType
    layers: tuple[int, ...]

    def build(self, name: str, num_classes: int, stride_in_1x1: bool) -> ResNetDef:
        return ResNetDef(
            name, self.block, self.layers, stride_in_1x1=stride_in_1x1, num_classes=num_classes
        )


#: The ImageNet ResNets of He et al. (2016), Table 1, as data. Build with
#: ``RESNETS["resnet50"].build("resnet50_v1_5", 1000, stride_in_1x1=False)`` for torchvision's
#: version; only the v1 models are registered, so torchvision's names keep their meaning.
RESNETS: dict[str, ResNetConfig] = {
    "resnet18": ResNetConfig("basic", (2, 2, 2, 2)),
    "resnet34": ResNetConfig("basic", (3, 4, 6, 3)),
    "resnet50": ResNetConfig("bottleneck", (3, 4, 6, 3)),
    "resnet101": ResNetConfig("bottleneck", (3, 4, 23, 3)),
    "resnet152": ResNetConfig("bottleneck", (3, 8, 36, 3)),
}

#: Published figures quoted by the HarDNet paper's comparison table (ImageNet, 224x224). The
#: params hold for both versions; the MACs are the v1.5 count rounded (4.089 G, 7.801 G), while
#: v1 counts 3.858 G and 7.570 G, close to the ResNet paper's own 3.8 G and 7.6 G "FLOPs"
#: (multiply-adds there too).
PUBLISHED: dict[str, dict[str, float]] = {
    "resnet50_v1": {"params": 25.6e6, "macs": 4.1e9},
    "resnet101_v1": {"params": 44.6e6, "macs": 7.8e9},
}


def _v1(depth: str, num_classes: int) -> ResNetDef:
    return RESNETS[depth].build(f"{depth}_v1", num_classes, stride_in_1x1=True)


@register_model(
    "resnet", "ResNet-50 v1 (stride in the first 1x1, as the paper)", PUBLISHED["resnet50_v1"]
)
def resnet50_v1(num_classes: int = 1000) -> ResNetDef:
    return _v1("resnet50", num_classes)


@register_model(
    "resnet", "ResNet-101 v1 (stride in the first 1x1, as the paper)", PUBLISHED["resnet101_v1"]
)
def resnet101_v1(num_classes: int = 1000) -> ResNetDef:
    return _v1("resnet101", num_classes)
