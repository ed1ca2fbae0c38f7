"""CondenseNet definitions as pure data (no torch).

A dense layer is a learned group convolution (LGC: BN-ReLU-(dropout)-Conv1x1 to
``bottleneck * k`` channels with a channel mask, G groups, condensation factor C), then
BN-ReLU and a 3x3 convolution with ``groups_3x3`` groups to k channels, and the concatenation
of its input and output. Stages are separated by 2x2 average pooling only; the growth rate
changes per stage as listed. The stem is one 3x3 conv (stride 2 on ImageNet, 1 on CIFAR) to
``2 * growth[0]`` channels; the head is BN, ReLU, global average pool and a linear classifier.

During training each LGC keeps a dense 1x1 conv under a mask; `converted` selects the
inference model instead: every LGC becomes index-select (G * in / C kept inputs), BN, ReLU, a
standard 1x1 conv with G groups and a channel shuffle, and the classifier keeps
``floor(classifier_keep * in)`` inputs (``../shared/notes/hardnet.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.registry import register_model


@dataclass(frozen=True)
class CondenseNetDef:
    """A whole CondenseNet, training-time (`converted` False) or converted for inference.

    `stages` are layers per dense block, `growth` the growth rate k of each block,
    `condense_factor` C, `groups_1x1` G (the LGC's groups), `groups_3x3` the 3x3 conv's groups,
    `bottleneck` the 1x1 width factor, `dropout` the LGC's dropout before its conv,
    `group_lasso` the weight of the group-lasso regulariser (0 disables it) and
    `classifier_keep` the fraction of classifier inputs kept by the conversion.
    """

    name: str
    stages: tuple[int, ...]
    growth: tuple[int, ...]
    condense_factor: int = 4
    groups_1x1: int = 4
    groups_3x3: int = 4
    bottleneck: int = 4
    stem_stride: int = 2
    dropout: float = 0.0
    group_lasso: float = 0.0
    classifier_keep: float = 0.5
    converted: bool = False
    num_classes: int = 1000
    in_channels: int = 3
    input_size: int = 224
    family: Literal["condensenet"] = "condensenet"

    def __post_init__(self) -> None:
        self._check_ranges()
        c, g = self.condense_factor, self.groups_1x1
        for stage, widths in enumerate(self.layer_in_channels(), start=1):
            k = self.growth[stage - 1]
            for layer, width in enumerate(widths, start=1):
                if width % c or width % g:
                    raise UsageError(
                        f"{self.name}: the input width {width} of stage {stage} layer {layer} "
                        f"is not divisible by condense_factor C={c} and groups_1x1 G={g}"
                    )
            if (self.bottleneck * k) % g or (self.bottleneck * k) % self.groups_3x3:
                raise UsageError(
                    f"{self.name}: bottleneck * growth = {self.bottleneck * k} (stage {stage}) "
                    f"is not divisible by groups_1x1={g} and groups_3x3={self.groups_3x3}"
                )
        if self.classifier_in_features < 1:
            raise UsageError(f"{self.name}: classifier_keep {self.classifier_keep} keeps no input")

    def _check_ranges(self) -> None:
        if not self.stages or len(self.stages) != len(self.growth):
            raise UsageError(
                f"{self.name}: stages and growth need the same number (>= 1) of entries, got "
                f"{list(self.stages)} and {list(self.growth)}"
            )
        positive = {
            "stages": min(self.stages),
            "growth": min(self.growth),
            "condense_factor": self.condense_factor,
            "groups_1x1": self.groups_1x1,
            "groups_3x3": self.groups_3x3,
            "bottleneck": self.bottleneck,
            "stem_stride": self.stem_stride,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "input_size": self.input_size,
        }
        for field, value in positive.items():
            if value < 1:
                raise UsageError(f"{self.name}: {field} must be >= 1, got {value}")
        if not 0 <= self.dropout < 1:
            raise UsageError(f"{self.name}: dropout must be in [0, 1), got {self.dropout}")
        if self.group_lasso < 0:
            raise UsageError(f"{self.name}: group_lasso must be >= 0, got {self.group_lasso}")
        if not 0 < self.classifier_keep <= 1:
            raise UsageError(
                f"{self.name}: classifier_keep must be in (0, 1], got {self.classifier_keep}"
            )

    @property
    def init_channels(self) -> int:
        """The stem's width, 2 * growth[0]; CondenseNet-74 -> 16."""
        return 2 * self.growth[0]

    def layer_in_channels(self) -> tuple[tuple[int, ...], ...]:
        """Input width of every dense layer, per stage; CondenseNet-86 stage 1: 16, 24, ..., 120."""
        width = self.init_channels
        stages = []
        for n_layers, k in zip(self.stages, self.growth, strict=True):
            stages.append(tuple(width + i * k for i in range(n_layers)))
            width += n_layers * k
        return tuple(stages)

    @property
    def out_channels(self) -> int:
        """Width of the last stage's output; CondenseNet-74 -> 16 + 4*8 + ... + 8*128 = 2032."""
        return self.init_channels + sum(
            n * k for n, k in zip(self.stages, self.growth, strict=True)
        )

    def kept_in_channels(self, in_channels: int) -> int:
        """Inputs of a converted LGC: each of the G groups keeps in / C channels (96 -> 96 at
        C = G; with C=2, G=4: 96 -> 192, a channel kept by two groups is selected twice)."""
        return self.groups_1x1 * (in_channels // self.condense_factor)

    @property
    def classifier_in_features(self) -> int:
        """Classifier inputs: all of them in training, floor(classifier_keep * in) converted."""
        if not self.converted:
            return self.out_channels
        return int(self.classifier_keep * self.out_channels)

    def with_num_classes(self, num_classes: int) -> CondenseNetDef:
        """This definition with a classifier of `num_classes` outputs."""
        return replace(self, num_classes=num_classes)

    def as_converted(self) -> CondenseNetDef:
        """The definition of this network's converted (inference) model."""
        return replace(self, converted=True)


@dataclass(frozen=True)
class CondenseNetConfig:
    """One row of the zoo table: C = G = `groups` for the LGC and `groups` for the 3x3 conv too
    (with 4 groups for the 3x3 conv, C=G=8 would have 3.75 M params and 392 M MACs, far from the
    published 2.9 M and 274 M; with 8 it has 2.94 M and 274.2 M by the paper's counter)."""

    stages: tuple[int, ...]
    growth: tuple[int, ...]
    groups: int
    stem_stride: int

    def build(self, name: str, num_classes: int, converted: bool) -> CondenseNetDef:
        return CondenseNetDef(
            name,
            self.stages,
            self.growth,
            condense_factor=self.groups,
            groups_1x1=self.groups,
            groups_3x3=self.groups,
            stem_stride=self.stem_stride,
            converted=converted,
            num_classes=num_classes,
            # The CIFAR model keeps full resolution in its stem.
            input_size=32 if self.stem_stride == 1 else 224,
        )


_STAGES_74, _GROWTH_74 = (4, 6, 8, 10, 8), (8, 16, 32, 64, 128)

#: The CondenseNet configurations (``../shared/notes/hardnet.md``), as data.
CONDENSENETS: dict[str, CondenseNetConfig] = {
    "condensenet74_c4_g4": CondenseNetConfig(_STAGES_74, _GROWTH_74, groups=4, stem_stride=2),
    "condensenet74_c8_g8": CondenseNetConfig(_STAGES_74, _GROWTH_74, groups=8, stem_stride=2),
    "condensenet86": CondenseNetConfig((14, 14, 14), (8, 16, 32), groups=4, stem_stride=1),
}

#: Published figures (CondenseNet paper and README) for the converted models, ImageNet at
#: 224x224 and CIFAR-10 at 32x32. Their "FLOPs" (kept here as "macs") come from the official
#: counter: conv multiply-adds + ReLU output elements + pooling window elements + linear
#: multiply-adds and biases; the MACs of this package (convs and linear only) are 2-5% lower:
#: 516.6 M, 261.5 M and 62.4 M.
PUBLISHED: dict[str, dict[str, float]] = {
    "condensenet74_c4_g4": {"params": 4.8e6, "macs": 529e6, "top1": 73.8},
    "condensenet74_c8_g8": {"params": 2.9e6, "macs": 274e6, "top1": 71.0},
    "condensenet86": {"params": 0.52e6, "macs": 65.8e6},
}


def _zoo(name: str, num_classes: int, converted: bool = False) -> CondenseNetDef:
    base = name.removesuffix("_converted")
    return CONDENSENETS[base].build(name, num_classes, converted)


@register_model("condensenet", "CondenseNet-74 C=G=4, training-time (masked LGC)")
def condensenet74_c4_g4(num_classes: int = 1000) -> CondenseNetDef:
    return _zoo("condensenet74_c4_g4", num_classes)


@register_model("condensenet", "CondenseNet-74 C=G=8, training-time (masked LGC)")
def condensenet74_c8_g8(num_classes: int = 1000) -> CondenseNetDef:
    return _zoo("condensenet74_c8_g8", num_classes)


@register_model("condensenet", "CondenseNet-86 (CIFAR, 32x32), training-time (masked LGC)")
def condensenet86(num_classes: int = 10) -> CondenseNetDef:
    return _zoo("condensenet86", num_classes)


@register_model(
    "condensenet",
    "CondenseNet-74 C=G=4, converted for inference (group conv + shuffle)",
    PUBLISHED["condensenet74_c4_g4"],
)
def condensenet74_c4_g4_converted(num_classes: int = 1000) -> CondenseNetDef:
    return _zoo("condensenet74_c4_g4_converted", num_classes, converted=True)


@register_model(
    "condensenet",
    "CondenseNet-74 C=G=8, converted for inference (group conv + shuffle)",
    PUBLISHED["condensenet74_c8_g8"],
)
def condensenet74_c8_g8_converted(num_classes: int = 1000) -> CondenseNetDef:
    return _zoo("condensenet74_c8_g8_converted", num_classes, converted=True)


@register_model(
    "condensenet",
    "CondenseNet-86 (CIFAR, 32x32), converted for inference",
    PUBLISHED["condensenet86"],
)
def condensenet86_converted(num_classes: int = 10) -> CondenseNetDef:
    return _zoo("condensenet86_converted", num_classes, converted=True)
