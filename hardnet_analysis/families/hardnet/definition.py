"""HarDNet definitions as pure data (no torch): blocks, stem, stages, head, whole networks.

Conventions follow the official PyTorch-HarDNet code (see ``../shared/notes/hardnet.md``):
in a block of L layers, layer k (1..L) takes the concatenation of layers ``k - 2**n`` for every
``n >= 0`` with ``2**n`` dividing k (layer 0 is the block input). Its width is growth_rate
multiplied by m once per link after the first (the official float product), rounded to an even
number as ``int(int(x + 1) / 2) * 2``.
The block output concatenates the last layer and every odd layer (layer 0 only with keep_base).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.registry import register_model

Downsample = Literal["none", "maxpool", "dwconv"]


#: The official code looks for links at 2**i for i < 10 only, so a layer never links further
#: back than 512 (it matters for blocks of 1024 layers or more).
MAX_LINK_POWER = 10


def harmonic_links(layer: int) -> tuple[int, ...]:
    """Indices of the layers that layer `layer` (>= 1) concatenates, nearest first.

    Layer 8 takes layers 7, 6, 4 and 0 (8 - 2**n for n = 0..3):
    ``harmonic_links(8) == (7, 6, 4, 0)``.
    """
    return tuple(layer - 2**i for i in range(MAX_LINK_POWER) if 2**i <= layer and layer % 2**i == 0)


def even_width(x: float) -> int:
    """Round a channel count to an even number as the official code does: 23.8 -> 24, 14 -> 14."""
    return int(int(x + 1) / 2) * 2


#: The largest k, layers per block and m a block may have: far above any published HarDNet (k 160,
#: 16 layers, m 1.7), low enough that a block's widths and counts stay integers that build in
#: moments (the search's spaces take the same bounds).
MAX_K = 1024
MAX_N_LAYERS = 256
MAX_M = 3.0


@dataclass(frozen=True)
class HarDBlockDef:
    """One harmonic dense block.

    `growth_rate` is k (channels of a layer with a single link), `grmul` the channel weighting
    factor m, `depthwise` selects the DS layer (1x1 conv-BN-ReLU6 then 3x3 depthwise conv-BN).
    """

    growth_rate: int
    grmul: float
    n_layers: int
    depthwise: bool = False
    keep_base: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.growth_rate <= MAX_K:
            raise UsageError(f"growth rate k must be from 1 to {MAX_K}, got {self.growth_rate}")
        if not 1 <= self.n_layers <= MAX_N_LAYERS:
            raise UsageError(f"n_layers must be from 1 to {MAX_N_LAYERS}, got {self.n_layers}")
        if not 1.0 <= self.grmul <= MAX_M:  # also refuses NaN
            raise UsageError(
                f"channel weighting factor m must be from 1 to {MAX_M:g}, got {self.grmul}"
            )

    def layer_out_channels(self, layer: int) -> int:
        """Output channels of layer `layer` (1..n_layers); e.g. k=14, m=1.7, layer 4 -> 40.

        As the official code computes it: k as a float, multiplied by m once for every link
        after the first, then rounded to even. ``k * m ** (links - 1)`` is not the same float:
        for k=25, m=1.4 and 3 links it gives 48.999... -> 48 where the product gives 50.
        """
        width = float(self.growth_rate)
        for _ in harmonic_links(layer)[1:]:
            width *= self.grmul
        return even_width(width)

    def widths(self, in_channels: int) -> tuple[int, ...]:
        """Channels of layers 0..n_layers, layer 0 being the block input."""
        return (in_channels, *(self.layer_out_channels(i) for i in range(1, self.n_layers + 1)))

    def output_layers(self) -> tuple[int, ...]:
        """Layers concatenated into the block output, in index order."""
        last = self.n_layers
        return tuple(
            i for i in range(last + 1) if (i == 0 and self.keep_base) or i == last or i % 2 == 1
        )

    def out_channels(self, in_channels: int) -> int:
        """Channels of the block output; HarDNet-68 block 1 (64 in, k=14, 8 layers) -> 124."""
        widths = self.widths(in_channels)
        return sum(widths[i] for i in self.output_layers())


@dataclass(frozen=True)
class StemDef:
    """Stem: 3x3 stride-2 conv, a second conv (`second_kernel`), then a stride-2 downsampling."""

    channels: tuple[int, int] = (32, 64)
    second_kernel: int = 3
    downsample: Downsample = "maxpool"
    in_channels: int = 3

    def __post_init__(self) -> None:
        for field, value in (
            ("channels", min(self.channels)),
            ("second_kernel", self.second_kernel),
            ("in_channels", self.in_channels),
        ):
            if value < 1:
                raise UsageError(f"{field} must be >= 1, got {value}")


@dataclass(frozen=True)
class StageDef:
    """A block, its 1x1 transition to `transition_channels`, then optional downsampling.

    `dropout_before_transition` > 0 inserts a dropout between block and transition (HarDNet-85's
    last stage).
    """

    block: HarDBlockDef
    transition_channels: int
    downsample: Downsample = "none"
    dropout_before_transition: float = 0.0

    def __post_init__(self) -> None:
        if self.transition_channels < 1:
            raise UsageError(f"transition_channels must be >= 1, got {self.transition_channels}")
        if not 0 <= self.dropout_before_transition < 1:
            raise UsageError(
                f"dropout_before_transition must be in [0, 1), got {self.dropout_before_transition}"
            )


@dataclass(frozen=True)
class HeadDef:
    """Global average pool, flatten, dropout, linear to `num_classes`."""

    dropout: float = 0.1
    num_classes: int = 1000

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise UsageError(f"num_classes must be >= 1, got {self.num_classes}")
        if not 0 <= self.dropout < 1:
            raise UsageError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class HarDNetDef:
    """A whole HarDNet: stem, stages, head. Any HarDNet is one; the zoo is a table of them."""

    name: str
    stem: StemDef
    stages: tuple[StageDef, ...]
    head: HeadDef
    input_size: int = 224
    family: Literal["hardnet"] = "hardnet"

    def __post_init__(self) -> None:
        if not self.stages:
            raise UsageError(f"{self.name}: a HarDNet needs at least one stage")
        if self.input_size < 1:
            raise UsageError(f"{self.name}: input_size must be >= 1, got {self.input_size}")

    @property
    def num_classes(self) -> int:
        """The classifier's width (``head.num_classes``)."""
        return self.head.num_classes

    @property
    def in_channels(self) -> int:
        """The input's channels (``stem.in_channels``)."""
        return self.stem.in_channels

    def with_num_classes(self, num_classes: int) -> HarDNetDef:
        """This definition with a classifier of `num_classes` outputs."""
        return replace(self, head=replace(self.head, num_classes=num_classes))

    def blocks(self) -> tuple[HarDBlockDef, ...]:
        """Each stage's block, in stage order (the architecture search's stages)."""
        return tuple(s.block for s in self.stages)

    def with_blocks(self, blocks: Sequence[HarDBlockDef], name: str) -> HarDNetDef:
        """This network named `name`, stage i's block replaced by ``blocks[i]``."""
        stages = tuple(replace(s, block=b) for s, b in zip(self.stages, blocks, strict=True))
        return replace(self, name=name, stages=stages)


@dataclass(frozen=True)
class HarDNetConfig:
    """The per-stage lists of the official code (one entry per stage), as a table row."""

    first_ch: tuple[int, int]
    ch_list: tuple[int, ...]
    gr: tuple[int, ...]
    n_layers: tuple[int, ...]
    down_samp: tuple[int, ...]
    grmul: float
    dropout: float
    depthwise: bool = False
    dropout_before_last_transition: float = 0.0

    def build(self, name: str, num_classes: int = 1000) -> HarDNetDef:
        """The definition this row describes."""
        if len({len(self.ch_list), len(self.gr), len(self.n_layers), len(self.down_samp)}) != 1:
            raise UsageError(f"{name}: ch_list, gr, n_layers and down_samp differ in length")
        last = len(self.ch_list) - 1
        down: Downsample = "dwconv" if self.depthwise else "maxpool"
        stages = tuple(
            StageDef(
                block=HarDBlockDef(self.gr[i], self.grmul, self.n_layers[i], self.depthwise),
                transition_channels=self.ch_list[i],
                downsample=down if self.down_samp[i] else "none",
                dropout_before_transition=self.dropout_before_last_transition if i == last else 0.0,
            )
            for i in range(last + 1)
        )
        stem = StemDef(self.first_ch, second_kernel=1 if self.depthwise else 3, downsample=down)
        return HarDNetDef(name, stem, stages, HeadDef(self.dropout, num_classes))


_HARDNET68 = HarDNetConfig(
    first_ch=(32, 64),
    ch_list=(128, 256, 320, 640, 1024),
    gr=(14, 16, 20, 40, 160),
    n_layers=(8, 16, 16, 16, 4),
    down_samp=(1, 0, 1, 1, 0),
    grmul=1.7,
    dropout=0.1,
)

#: The official configurations (``../shared/notes/hardnet.md``), as data.
OFFICIAL_HARDNETS: dict[str, HarDNetConfig] = {
    "hardnet68": _HARDNET68,
    "hardnet85": HarDNetConfig(
        first_ch=(48, 96),
        ch_list=(192, 256, 320, 480, 720, 1280),
        gr=(24, 24, 28, 36, 48, 256),
        n_layers=(8, 16, 16, 16, 16, 4),
        down_samp=(1, 0, 1, 0, 1, 0),
        grmul=1.7,
        dropout=0.2,
        dropout_before_last_transition=0.1,
    ),
    "hardnet39ds": HarDNetConfig(
        first_ch=(24, 48),
        ch_list=(96, 320, 640, 1024),
        gr=(16, 20, 64, 160),
        n_layers=(4, 16, 8, 4),
        down_samp=(1, 1, 1, 0),
        grmul=1.6,
        dropout=0.05,
        depthwise=True,
    ),
    "hardnet68ds": replace(_HARDNET68, dropout=0.05, depthwise=True),
}

#: Published figures (official README, ImageNet 224x224): params, MACs, top-1 (%).
PUBLISHED: dict[str, dict[str, float]] = {
    "hardnet68": {"params": 17.6e6, "macs": 4.3e9, "top1": 76.5},
    "hardnet85": {"params": 36.7e6, "macs": 9.1e9, "top1": 78.0},
    "hardnet39ds": {"params": 3.5e6, "macs": 0.44e9, "top1": 72.1},
    "hardnet68ds": {"params": 4.2e6, "macs": 0.8e9, "top1": 74.3},
}


def _official(name: str, num_classes: int) -> HarDNetDef:
    return OFFICIAL_HARDNETS[name].build(name, num_classes)


@register_model("hardnet", "HarDNet-68: 5 stages, k=14..160, m=1.7", PUBLISHED["hardnet68"])
def hardnet68(num_classes: int = 1000) -> HarDNetDef:
    return _official("hardnet68", num_classes)


@register_model("hardnet", "HarDNet-85: 6 stages, k=24..256, m=1.7", PUBLISHED["hardnet85"])
def hardnet85(num_classes: int = 1000) -> HarDNetDef:
    return _official("hardnet85", num_classes)


@register_model("hardnet", "HarDNet-39DS: depthwise-separable, m=1.6", PUBLISHED["hardnet39ds"])
def hardnet39ds(num_classes: int = 1000) -> HarDNetDef:
    return _official("hardnet39ds", num_classes)


@register_model("hardnet", "HarDNet-68DS: depthwise-separable HarDNet-68", PUBLISHED["hardnet68ds"])
def hardnet68ds(num_classes: int = 1000) -> HarDNetDef:
    return _official("hardnet68ds", num_classes)
