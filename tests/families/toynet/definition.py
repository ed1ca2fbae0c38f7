"""ToyNet as pure data: one strided 3x3 Conv-BN-ReLU per entry of `widths`, then a head."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.registry import register_model


@dataclass(frozen=True)
class ToyNetDef:
    name: str
    widths: tuple[int, ...]
    num_classes: int = 10
    in_channels: int = 3
    input_size: int = 48
    family: Literal["toynet"] = "toynet"

    def __post_init__(self) -> None:
        if not self.widths or min(self.widths) < 1:
            raise UsageError(f"{self.name}: widths needs entries >= 1, got {list(self.widths)}")

    def with_num_classes(self, num_classes: int) -> ToyNetDef:
        return replace(self, num_classes=num_classes)


@register_model("toynet", "ToyNet-S: widths 8-16")
def toynet_s(num_classes: int = 10) -> ToyNetDef:
    return ToyNetDef("toynet_s", (8, 16), num_classes)
