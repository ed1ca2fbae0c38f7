"""CenterNet-HarDNet definitions as pure data (no torch): backbone, neck, dense heads.

Conventions follow the public CenterNet-HarDNet code (``PingoLH/CenterNet-HarDNet``, class
``HarDNetSeg`` in ``src/lib/models/networks/hardnet.py``; ``../shared/notes/hardnet.md``). Its
HarDBlocks are HarDNet's (harmonic links, the official width rule:
`hardnet_analysis.families.hardnet.definition.HarDBlockDef`) with ReLU for ReLU6:

- stem: 3x3 stride-2 and 3x3 Conv-BN-ReLU layers of `stem_channels`, then 3x3 stride-2
  average pooling (padding 1);
- backbone stage i: a HarDBlock, a 1x1 ConvLayer to `transition_channels` (none after the last
  block), then optional 2x2 average pooling; a stage marked `skip` hands its block's output
  to the decoder. HarDNet-85's first five blocks, output stride 16;
- bottleneck: a 1x1 ConvLayer to `proj_channels`, 2x2 average pooling (output stride 32), the
  *context* (below) and a HarDBlock;
- up stage j (deepest skip first): bilinear upsampling (align_corners=True) to the skip's size,
  [upsampled, skip], a 1x1 ConvLayer to `channels`, whose last `shortcut` channels are split
  off, the context of the rest and a HarDBlock;
- merge: the shortcuts upsampled to the last stage's size, concatenated before its output
  (latest shortcut first): [shortcut 2, shortcut 1, x];
- heads, one per output map: 3x3 conv (bias) to ``max(128, 4 * channels)``, ReLU, 1x1 conv
  (bias) to `channels`. The class heatmap ``hm`` has `num_classes` channels; the code's
  ``head_conv=256`` only switches these hidden convs on, it does not set their width.

The context of x is [x, 9x9 average of x (stride 1, padding 4), x / (sum of x over H and W +
0.1)], three times x's channels; the code's README calls the last term a sum-to-1
normalisation.

CenterNet-HarDNet-85 (COCO, 80 classes): skips of 214, 458 and 784 channels at strides 4, 8 and
16; bottleneck 784 -> 256 -> context 768 -> HarDBlock (k=80, 8 layers) -> 714; up stages 1x1 to
256, 192, 96 with shortcuts 32, 32, 0 (contexts 672, 480, 288); the heads read 136 + 64 = 200
channels at stride 4: ``hm`` 80 x 128 x 128 and ``wh`` 4 x 128 x 128 at 512x512. The code's
detection task (``ctdet``) has these two heads only: ``wh`` holds the box size (2 channels) and
the centre offset (2 channels) that CenterNet's own code gives a separate ``reg`` head.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.hardnet.definition import HarDBlockDef
from hardnet_analysis.families.registry import register_model

#: 2x2 average pooling after a backbone stage: "avg_ceil" rounds the output size up (the first
#: stage's, ``ceil_mode=True``): 127 -> 64 where "avg" gives 63.
Pooling = Literal["none", "avg", "avg_ceil"]


@dataclass(frozen=True)
class BackboneStageDef:
    """A HarDBlock, a 1x1 transition to `transition_channels` (0: none, as after the last
    block), then `downsample`; `skip`: the block's output (before the transition) also feeds
    an up stage."""

    block: HarDBlockDef
    transition_channels: int = 0
    downsample: Pooling = "none"
    skip: bool = False

    def __post_init__(self) -> None:
        if self.transition_channels < 0:
            raise UsageError(f"transition_channels must be >= 0, got {self.transition_channels}")


@dataclass(frozen=True)
class UpStageDef:
    """A 1x1 ConvLayer to `channels` after the [upsampled, skip] concatenation; its last
    `shortcut` channels go straight to the merge, the rest through the context (3x) into
    `block`. HarDNet-85's first: 256 channels, shortcut 32, block input 3 * 224 = 672."""

    block: HarDBlockDef
    channels: int
    shortcut: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.shortcut < self.channels:
            raise UsageError(
                f"an up stage's shortcut must be from 0 to channels - 1 ({self.channels - 1}),"
                f" got {self.shortcut}"
            )


@dataclass(frozen=True)
class HeadDef:
    """One dense output: `name` (the module's, e.g. ``wh``) and its channels."""

    name: str
    channels: int

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.channels < 1:
            raise UsageError(f"head {self.name!r}: needs an identifier and channels >= 1")


#: The class heatmap's module name.
HEATMAP = "hm"


@dataclass(frozen=True)
class CenterNetHarDNetDef:
    """A whole CenterNet-HarDNet. `up` holds one stage per skip, deepest first; `regression`
    the heads after the heatmap; a head's hidden width is ``max(head_width_min,
    head_width_per_channel * channels)`` (``hm`` with 80 classes: 320; ``wh``: 128)."""

    name: str
    stem_channels: tuple[int, int]
    backbone: tuple[BackboneStageDef, ...]
    proj_channels: int
    bottleneck: HarDBlockDef
    up: tuple[UpStageDef, ...]
    num_classes: int = 80
    regression: tuple[HeadDef, ...] = (HeadDef("wh", 4),)
    head_width_min: int = 128
    head_width_per_channel: int = 4
    context_pool: int = 9
    context_eps: float = 0.1
    in_channels: int = 3
    input_size: int = 512
    family: Literal["centernet"] = "centernet"

    def __post_init__(self) -> None:
        skips = sum(s.skip for s in self.backbone)
        if not self.up or skips != len(self.up):
            raise UsageError(
                f"{self.name}: needs one up stage per skip ({skips}), got {len(self.up)}"
            )
        names = [h.name for h in self.heads()]
        if len(set(names)) != len(names):
            raise UsageError(f"{self.name}: head names repeat: {', '.join(names)}")
        if min(self.num_classes, self.input_size, self.in_channels, *self.stem_channels) < 1:
            raise UsageError(
                f"{self.name}: num_classes, input_size, in_channels and stem_channels must be >= 1"
            )
        if self.context_pool < 1 or self.context_pool % 2 == 0:
            raise UsageError(f"{self.name}: context_pool must be odd, got {self.context_pool}")

    def with_num_classes(self, num_classes: int) -> CenterNetHarDNetDef:
        """This definition with a heatmap of `num_classes` channels."""
        return replace(self, num_classes=num_classes)

    def heads(self) -> tuple[HeadDef, ...]:
        """Every head in output order, the heatmap first."""
        return (HeadDef(HEATMAP, self.num_classes), *self.regression)

    def head_width(self, head: HeadDef) -> int:
        """Channels of `head`'s hidden 3x3 conv: 80 classes -> 320, 4 channels -> 128."""
        return max(self.head_width_min, self.head_width_per_channel * head.channels)

    def skip_channels(self) -> tuple[int, ...]:
        """Channels of each skip, shallowest first: CenterNet-HarDNet-85 -> (214, 458, 784)."""
        widths = []
        ch = self.stem_channels[1]
        for stage in self.backbone:
            out = stage.block.out_channels(ch)
            if stage.skip:
                widths.append(out)
            ch = stage.transition_channels or out
        return tuple(widths)


@dataclass(frozen=True)
class CenterNetHarDNetConfig:
    """The lists of the official ``HarDNetSeg`` constructor, as a table row. Backbone stage i
    has ``gr[i]``, ``n_layers[i]``, ``ch_list[i]`` (missing for the last: no transition),
    ``pools[i]``; `skips` are the stages whose blocks feed the decoder; up stage j has
    ``up_channels[j]`` (``ch_list2``), ``shortcuts[j]`` (``SC``), ``up_gr[j]``,
    ``up_layers[j]``."""

    first_ch: tuple[int, int]
    ch_list: tuple[int, ...]
    gr: tuple[int, ...]
    n_layers: tuple[int, ...]
    pools: tuple[Pooling, ...]
    skips: tuple[int, ...]
    grmul: float
    proj: int
    bottom_gr: int
    bottom_layers: int
    up_channels: tuple[int, ...]
    shortcuts: tuple[int, ...]
    up_gr: tuple[int, ...]
    up_layers: tuple[int, ...]

    def build(self, name: str, num_classes: int = 80) -> CenterNetHarDNetDef:
        """The definition this row describes."""
        n = len(self.gr)
        if {len(self.n_layers), len(self.pools), len(self.ch_list) + 1} != {n}:
            raise UsageError(f"{name}: gr, n_layers, pools and ch_list + 1 differ in length")
        backbone = tuple(
            BackboneStageDef(
                HarDBlockDef(self.gr[i], self.grmul, self.n_layers[i]),
                self.ch_list[i] if i < n - 1 else 0,
                self.pools[i],
                i in self.skips,
            )
            for i in range(n)
        )
        up = tuple(
            UpStageDef(HarDBlockDef(g, self.grmul, layers), ch, sc)
            for ch, sc, g, layers in zip(
                self.up_channels, self.shortcuts, self.up_gr, self.up_layers, strict=True
            )
        )
        bottom = HarDBlockDef(self.bottom_gr, self.grmul, self.bottom_layers)
        return CenterNetHarDNetDef(
            name, self.first_ch, backbone, self.proj, bottom, up, num_classes=num_classes
        )


#: CenterNet-HarDNet-85 (``--arch hardnet_85``): HarDNet-85's backbone without its last
#: stage (``ch_list`` 720 of the fifth stage is never built: its block output, 784, goes
#: straight to the bottleneck).
CENTERNET_HARDNET85 = CenterNetHarDNetConfig(
    first_ch=(48, 96),
    ch_list=(192, 256, 320, 480),
    gr=(24, 24, 28, 36, 48),
    n_layers=(8, 16, 16, 16, 16),
    pools=("avg_ceil", "none", "avg", "none", "none"),
    skips=(0, 2, 4),
    grmul=1.7,
    proj=256,
    bottom_gr=80,
    bottom_layers=8,
    up_channels=(256, 192, 96),
    shortcuts=(32, 32, 0),
    up_gr=(64, 48, 28),
    up_layers=(8, 8, 4),
)

#: Published (official README, COCO at 512x512): 37.2 M params, "87.9 GFLOPs" (multiply-adds:
#: convolutions alone give 87.7 G, twice that would be 175 G), 44.3 AP on test-dev.
PUBLISHED = {"params": 37.2e6, "macs": 87.9e9, "ap": 44.3}


@register_model("centernet", "CenterNet-HarDNet-85: COCO detector, 512x512", PUBLISHED)
def centernet_hardnet85(num_classes: int = 80) -> CenterNetHarDNetDef:
    return CENTERNET_HARDNET85.build("centernet_hardnet85", num_classes)
