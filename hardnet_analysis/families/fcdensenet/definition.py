"""FC-DenseNet ("The One Hundred Layers Tiramisu", Jegou et al. 2017) as pure data (no torch).

The network (``../shared/notes/hardnet.md``): a 3x3 conv to `first_channels`; down blocks, each a
dense block (layer l reads the concatenation of the block input and every earlier layer's output
and adds `growth_rate` channels; a layer is BN-ReLU-3x3 conv-dropout) followed by a transition
down (BN-ReLU-1x1 conv keeping the channels-dropout-2x2 max pooling); its output before the
transition is a skip. A bottleneck dense block; then per up block: a 3x3 stride-2 transposed conv
of the previous block's *new* features only (not its input), cropped at the centre to the skip's
size, concatenated [upsampled, skip], and a dense block; the last up block returns its input
and new features, the others their new features only. A final 1x1 conv gives the class scores
(logits: the paper's softmax is left to the loss).

FC-DenseNet-103 (CamVid, 11 classes, 360x480): skips of 112, 192, 304, 464 and 656 channels,
bottleneck 240 new features, the last up block outputs 192 + 4 * 16 = 256 channels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.registry import register_model


@dataclass(frozen=True)
class FCDenseNetDef:
    """A whole FC-DenseNet. `down_blocks` and `up_blocks` are layers per block (the up blocks in
    execution order, deepest first, one per down block); `input_size` is (height, width)."""

    name: str
    down_blocks: tuple[int, ...]
    up_blocks: tuple[int, ...]
    bottleneck_layers: int
    growth_rate: int = 16
    first_channels: int = 48
    dropout: float = 0.2
    num_classes: int = 11
    in_channels: int = 3
    input_size: tuple[int, int] = (360, 480)
    family: Literal["fcdensenet"] = "fcdensenet"

    def __post_init__(self) -> None:
        if not self.down_blocks or len(self.up_blocks) != len(self.down_blocks):
            raise UsageError(f"{self.name}: one up block per down block, at least one")
        counts = (*self.down_blocks, *self.up_blocks, self.bottleneck_layers)
        if min(counts) < 1 or min(self.growth_rate, self.first_channels, self.num_classes) < 1:
            raise UsageError(f"{self.name}: layer counts, widths and classes must be >= 1")
        if min(self.input_size) < 1 or not 0 <= self.dropout < 1:
            raise UsageError(f"{self.name}: input_size must be >= 1 and dropout in [0, 1)")

    def with_num_classes(self, num_classes: int) -> FCDenseNetDef:
        """This definition with `num_classes` classes per pixel."""
        return replace(self, num_classes=num_classes)

    def skip_channels(self) -> tuple[int, ...]:
        """Channels of each skip (down block output), shallowest first: FC-DenseNet-103 ->
        (112, 192, 304, 464, 656)."""
        widths, ch = [], self.first_channels
        for layers in self.down_blocks:
            ch += layers * self.growth_rate
            widths.append(ch)
        return tuple(widths)


#: Published ("The One Hundred Layers Tiramisu", CamVid): params; the HarDNet paper's CamVid
#: CIO in MB of fp32 is in the README's segmentation table.
PUBLISHED = {"params": 9.4e6}


@register_model("fcdensenet", "FC-DenseNet-103 (Tiramisu): growth 16, CamVid", PUBLISHED)
def fcdensenet103(num_classes: int = 11) -> FCDenseNetDef:
    return FCDenseNetDef(
        "fcdensenet103", (4, 5, 7, 10, 12), (12, 10, 7, 5, 4), 15, num_classes=num_classes
    )
