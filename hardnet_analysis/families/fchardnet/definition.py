"""FC-HarDNet definitions as pure data (no torch): stem, encoder, decoder, classes per pixel.

Conventions follow the official FCHarDNet code (``../shared/notes/hardnet.md``, class
``hardnet``, FC-HarDNet-70). Its HarDBlocks are HarDNet's (harmonic links, the official width
rule: `hardnet_analysis.families.hardnet.definition.HarDBlockDef`) with ReLU for ReLU6:

- stem: 3x3 Conv-BN-ReLU layers of `stem.channels` with `stem.strides` (16/2, 24, 32/2, 48);
- encoder stage i: a HarDBlock, a 1x1 ConvLayer to `transition_channels`, then 2x2 average
  pooling for every stage but the last; the block's output (before the transition) is the skip
  of every stage but the last;
- decoder stage j (deepest skip first): bilinear upsampling (align_corners=True) to the skip's
  size, concatenation [upsampled, skip], a 1x1 ConvLayer to half the channels (rounded down),
  a HarDBlock;
- head: a 1x1 conv with bias to `num_classes`, bilinear upsampling to the input.

FC-HarDNet-70: skips of 48, 78, 160 and 214 channels; the decoder's 1x1 convs go 534 -> 267,
374 -> 187, 238 -> 119 and 126 -> 63; 70 convolutions in all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.hardnet.definition import HarDBlockDef
from hardnet_analysis.families.registry import register_model


@dataclass(frozen=True)
class FCStemDef:
    """3x3 Conv-BN-ReLU layers of `channels` with `strides` (one stride per layer)."""

    channels: tuple[int, ...] = (16, 24, 32, 48)
    strides: tuple[int, ...] = (2, 1, 2, 1)
    in_channels: int = 3

    def __post_init__(self) -> None:
        if not self.channels or len(self.channels) != len(self.strides):
            raise UsageError("stem: channels and strides need one entry per layer, at least one")


@dataclass(frozen=True)
class EncoderStageDef:
    """A HarDBlock and its 1x1 transition to `transition_channels` (pooling is implied by the
    stage's place: every encoder stage but the last ends with 2x2 average pooling)."""

    block: HarDBlockDef
    transition_channels: int


@dataclass(frozen=True)
class FCHarDNetDef:
    """A whole FC-HarDNet. `decoder` holds one HarDBlock per skip, in execution order (the
    deepest skip first): ``decoder[j]`` meets the skip of ``encoder[-2 - j]``. `input_size` is
    (height, width) in pixels."""

    name: str
    stem: FCStemDef
    encoder: tuple[EncoderStageDef, ...]
    decoder: tuple[HarDBlockDef, ...]
    num_classes: int = 19
    input_size: tuple[int, int] = (1024, 2048)
    family: Literal["fchardnet"] = "fchardnet"

    def __post_init__(self) -> None:
        if len(self.encoder) < 2 or len(self.decoder) != len(self.encoder) - 1:
            raise UsageError(
                f"{self.name}: an FC-HarDNet needs at least 2 encoder stages and one decoder "
                f"block per skip ({len(self.encoder) - 1}), got {len(self.decoder)}"
            )
        if min(self.input_size) < 1 or self.num_classes < 1:
            raise UsageError(f"{self.name}: input_size and num_classes must be >= 1")

    @property
    def in_channels(self) -> int:
        """The input's channels (``stem.in_channels``)."""
        return self.stem.in_channels

    def with_num_classes(self, num_classes: int) -> FCHarDNetDef:
        """This definition with `num_classes` classes per pixel."""
        return replace(self, num_classes=num_classes)

    def blocks(self) -> tuple[HarDBlockDef, ...]:
        """The encoder's blocks, then the decoder's (the architecture search's stages)."""
        return (*(s.block for s in self.encoder), *self.decoder)

    def with_blocks(self, blocks: Sequence[HarDBlockDef], name: str) -> FCHarDNetDef:
        """This network named `name` with `blocks` in `blocks()` order."""
        n = len(self.encoder)
        if len(blocks) != n + len(self.decoder):
            raise UsageError(f"{self.name}: expected {n + len(self.decoder)} blocks")
        encoder = tuple(replace(s, block=b) for s, b in zip(self.encoder, blocks[:n], strict=True))
        return replace(self, name=name, encoder=encoder, decoder=tuple(blocks[n:]))

    def skip_channels(self) -> tuple[int, ...]:
        """Channels of each skip, shallowest first: FC-HarDNet-70 -> (48, 78, 160, 214)."""
        widths = []
        ch = self.stem.channels[-1]
        for stage in self.encoder[:-1]:
            widths.append(stage.block.out_channels(ch))
            ch = stage.transition_channels
        return tuple(widths)


@dataclass(frozen=True)
class FCHarDNetConfig:
    """The lists of the official constructor, as a table row (the decoder reuses gr and
    n_layers of the stage whose skip it meets)."""

    first_ch: tuple[int, ...]
    ch_list: tuple[int, ...]
    gr: tuple[int, ...]
    n_layers: tuple[int, ...]
    grmul: float

    def build(self, name: str, num_classes: int = 19) -> FCHarDNetDef:
        """The definition this row describes."""
        if len({len(self.ch_list), len(self.gr), len(self.n_layers)}) != 1:
            raise UsageError(f"{name}: ch_list, gr and n_layers differ in length")
        blocks = [
            HarDBlockDef(g, self.grmul, n) for g, n in zip(self.gr, self.n_layers, strict=True)
        ]
        encoder = tuple(EncoderStageDef(b, c) for b, c in zip(blocks, self.ch_list, strict=True))
        decoder = tuple(reversed(blocks[:-1]))
        strides = tuple(2 if i % 2 == 0 else 1 for i in range(len(self.first_ch)))
        return FCHarDNetDef(name, FCStemDef(self.first_ch, strides), encoder, decoder, num_classes)


#: The official FC-HarDNet-70 (``../shared/notes/hardnet.md``).
FCHARDNET70 = FCHarDNetConfig(
    first_ch=(16, 24, 32, 48),
    ch_list=(64, 96, 160, 224, 320),
    gr=(10, 16, 18, 24, 32),
    n_layers=(4, 4, 8, 8, 8),
    grmul=1.7,
)

#: Published (official README, Cityscapes 1024x2048): params, MACs, mIoU (%, test set).
PUBLISHED = {"params": 4.1e6, "macs": 35.4e9, "miou": 75.9}


@register_model("fchardnet", "FC-HarDNet-70: HarDNet encoder-decoder, Cityscapes", PUBLISHED)
def fchardnet70(num_classes: int = 19) -> FCHarDNetDef:
    return FCHARDNET70.build("fchardnet70", num_classes)
