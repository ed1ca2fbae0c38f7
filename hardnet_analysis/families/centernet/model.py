"""Torch CenterNet-HarDNet built from a definition, parameter layout as the public code's.

State-dict keys and shapes are those of ``HarDNetSeg`` (``base``, ``last_proj``, ``last_blk``,
``conv1x1_up``, ``denseBlocksUp`` and one Sequential per head: ``hm``, ``wh``; compared with the
public code's model, which loads into this one strictly and gives the same outputs), so its
released COCO checkpoints should load with ``create_model("centernet_hardnet85",
weights=path)`` (the files themselves were not tried: nothing is downloaded). The
parameter-free steps are modules of their own (``contexts``, ``splits``, ``merge``), so every
traced op is named after its step and labelled with its block. The HarDBlock and ConvLayer are
the HarDNet family's, with ReLU. The forward returns ``{"hm": ..., "wh": ...}``: the heatmap
logits (before the sigmoid) and the box maps, at a quarter of the input's size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hardnet_analysis.families.centernet.definition import (
    HEATMAP,
    BackboneStageDef,
    CenterNetHarDNetDef,
)
from hardnet_analysis.families.fchardnet.model import TransitionUp
from hardnet_analysis.families.hardnet.model import ConvLayer, HarDBlock

#: The heatmap's last bias: sigmoid(-2.19) = 0.1, the prior CenterNet starts its focal loss from.
HEATMAP_BIAS = -2.19


class Context(nn.Module):
    """[x, average of x over a `kernel` window (stride 1, same size), x / (sum of x over H and
    W + `eps`)]: three times x's channels, no parameters."""

    def __init__(self, kernel: int, eps: float) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(kernel, 1, kernel // 2)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.pool(x), x / (x.sum((2, 3), keepdim=True) + self.eps)], 1)


class Split(nn.Module):
    """(all but the last `shortcut` channels, the last `shortcut` channels): two views."""

    def __init__(self, shortcut: int) -> None:
        super().__init__()
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = x.shape[1] - self.shortcut
        return x[:, :keep], x[:, keep:]


class Merge(nn.Module):
    """The shortcuts upsampled bilinearly (align_corners=True) to x's size, then [latest
    shortcut, ..., first shortcut, x], as the public code orders them."""

    def forward(self, x: torch.Tensor, shortcuts: list[torch.Tensor]) -> torch.Tensor:
        size = (x.shape[2], x.shape[3])
        ups = [F.interpolate(s, size=size, mode="bilinear", align_corners=True) for s in shortcuts]
        return torch.cat([*reversed(ups), x], 1)


def _transition(in_ch: int, stage: BackboneStageDef) -> list[nn.Module]:
    """What follows a backbone stage's block: its 1x1 ConvLayer, its 2x2 average pool, both,
    or neither (HarDNet-85's fifth stage)."""
    after: list[nn.Module] = []
    if stage.transition_channels:
        after.append(ConvLayer(in_ch, stage.transition_channels, 1, 1, nn.ReLU))
    if stage.downsample != "none":
        after.append(nn.AvgPool2d(2, 2, ceil_mode=stage.downsample == "avg_ceil"))
    return after


def _head(in_ch: int, width: int, out_ch: int) -> nn.Sequential:
    """3x3 conv (bias) to `width`, ReLU, 1x1 conv (bias) to `out_ch`."""
    return nn.Sequential(
        nn.Conv2d(in_ch, width, 3, padding=1, bias=True),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, out_ch, 1, bias=True),
    )


class CenterNetHarDNet(nn.Module):
    """A CenterNet-HarDNet. `hda_blocks` labels module paths by block: stem, hardblock{i},
    transition{i}, bottleneck, up{j} (upsampling and concatenation), decoder{j}, merge and
    head_{name} (see the family's graph)."""

    def __init__(self, defn: CenterNetHarDNetDef) -> None:
        super().__init__()
        self.hda_blocks: dict[str, str] = {}
        skips = self._add_backbone(defn)
        self._add_bottleneck(defn)
        ch = self._add_up_stages(defn, skips)
        self.merge = Merge()
        self.hda_blocks["merge"] = "merge"
        self.head_names = [head.name for head in defn.heads()]
        for head in defn.heads():
            self.add_module(head.name, _head(ch, defn.head_width(head), head.channels))
            self.hda_blocks[head.name] = f"head_{head.name}"
        self.definition = defn
        self._init_heatmap()

    def _label(self, paths: list[str], block: str) -> None:
        self.hda_blocks.update(dict.fromkeys(paths, block))

    def _add_backbone(self, defn: CenterNetHarDNetDef) -> list[int]:
        """``base`` (stem and backbone stages) and `skip_layers`; returns the skips' channels,
        shallowest first."""
        first, second = defn.stem_channels
        base: list[nn.Module] = [
            ConvLayer(defn.in_channels, first, 3, 2, nn.ReLU),
            ConvLayer(first, second, 3, 1, nn.ReLU),
            nn.AvgPool2d(3, 2, 1),
        ]
        self._label(["base.0", "base.1", "base.2"], "stem")
        ch, skips = second, []
        self.skip_layers: list[int] = []  # the base indices whose outputs are skips
        for i, stage in enumerate(defn.backbone, start=1):
            block = HarDBlock(ch, stage.block, nn.ReLU)
            if stage.skip:
                self.skip_layers.append(len(base))
                skips.append(block.out_channels)
            self._label([f"base.{len(base)}"], f"hardblock{i}")
            base.append(block)
            ch = stage.transition_channels or block.out_channels
            after = _transition(block.out_channels, stage)
            self._label([f"base.{len(base) + k}" for k in range(len(after))], f"transition{i}")
            base.extend(after)
        self.base = nn.ModuleList(base)
        self.backbone_channels = ch
        return skips

    def _add_bottleneck(self, defn: CenterNetHarDNetDef) -> None:
        """``last_proj``, ``last_pool``, the first context and ``last_blk``."""
        self.last_proj = ConvLayer(self.backbone_channels, defn.proj_channels, 1, 1, nn.ReLU)
        self.last_pool = nn.AvgPool2d(2, 2)
        self.contexts = nn.ModuleList([Context(defn.context_pool, defn.context_eps)])
        self.last_blk = HarDBlock(3 * defn.proj_channels, defn.bottleneck, nn.ReLU)
        self._label(["last_proj", "last_pool", "contexts.0", "last_blk"], "bottleneck")

    def _add_up_stages(self, defn: CenterNetHarDNetDef, skips: list[int]) -> int:
        """The up stages (deepest skip first); returns the channels the heads read (the last
        block's output and every shortcut)."""
        self.transUpBlocks = nn.ModuleList()
        self.conv1x1_up = nn.ModuleList()
        self.denseBlocksUp = nn.ModuleList()
        self.splits = nn.ModuleDict()
        ch, shortcuts = self.last_blk.out_channels, 0
        for j, up in enumerate(defn.up):
            self.transUpBlocks.append(TransitionUp())
            self.conv1x1_up.append(ConvLayer(ch + skips[-1 - j], up.channels, 1, 1, nn.ReLU))
            if up.shortcut:
                self.splits[str(j)] = Split(up.shortcut)
            self.contexts.append(Context(defn.context_pool, defn.context_eps))
            block = HarDBlock(3 * (up.channels - up.shortcut), up.block, nn.ReLU)
            self.denseBlocksUp.append(block)
            ch, shortcuts = block.out_channels, shortcuts + up.shortcut
            self._label([f"transUpBlocks.{j}"], f"up{j + 1}")
            # contexts.0 is the bottleneck's, so up stage j's is contexts.{j + 1}.
            paths = [f"conv1x1_up.{j}", f"splits.{j}", f"contexts.{j + 1}", f"denseBlocksUp.{j}"]
            self._label(paths, f"decoder{j + 1}")
        return ch + shortcuts

    def _init_heatmap(self) -> None:
        # The public code starts the heatmap at a 0.1 probability everywhere (focal loss prior).
        last = self.get_submodule(f"{HEATMAP}.2")
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.constant_(last.bias, HEATMAP_BIAS)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        skips = []
        for i, layer in enumerate(self.base):
            x = layer(x)
            if i in self.skip_layers:
                skips.append(x)
        x = self.last_blk(self.contexts[0](self.last_pool(self.last_proj(x))))
        shortcuts = []
        for j, block in enumerate(self.denseBlocksUp):
            x = self.conv1x1_up[j](self.transUpBlocks[j](x, skips.pop()))
            if str(j) in self.splits:
                x, shortcut = self.splits[str(j)](x)
                shortcuts.append(shortcut)
            x = block(self.contexts[j + 1](x))
        x = self.merge(x, shortcuts)
        return {name: self.get_submodule(name)(x) for name in self.head_names}
