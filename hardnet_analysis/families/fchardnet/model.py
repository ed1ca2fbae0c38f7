"""Torch FC-HarDNet built from a definition, module layout as the official FCHarDNet code.

State-dict keys and shapes equal those of the official ``hardnet`` class (``base``,
``conv1x1_up``, ``denseBlocksUp``, ``finalConv``), so its released Cityscapes checkpoint loads
with ``create_model("fchardnet70", weights=path)``. The HarDBlock and ConvLayer are the HarDNet
family's, with ReLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hardnet_analysis.families.fchardnet.definition import FCHarDNetDef
from hardnet_analysis.families.hardnet.model import ConvLayer, HarDBlock


class TransitionUp(nn.Module):
    """Bilinear upsampling (align_corners=True) of `x` to the skip's size, then [x, skip]."""

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        size = (skip.shape[2], skip.shape[3])
        up = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return torch.cat([up, skip], 1)


class FCHarDNet(nn.Module):
    """An FC-HarDNet with the official layout. `hda_blocks` labels module paths by block
    (stem, encoder{i}, transition{i}, skip{i}, decoder{i}, head; see the family's graph)."""

    def __init__(self, defn: FCHarDNetDef) -> None:
        super().__init__()
        stem = defn.stem
        base: list[nn.Module] = []
        ch = stem.in_channels
        for width, stride in zip(stem.channels, stem.strides, strict=True):
            base.append(ConvLayer(ch, width, 3, stride, nn.ReLU))
            ch = width
        blocks = {f"base.{i}": "stem" for i in range(len(base))}
        skips: list[int] = []  # channels of each HarDBlock's output
        self.skip_layers: list[int] = []  # the base indices whose outputs are skips
        for i, stage in enumerate(defn.encoder, start=1):
            block = HarDBlock(ch, stage.block, nn.ReLU)
            skips.append(block.out_channels)
            if i < len(defn.encoder):
                self.skip_layers.append(len(base))
            blocks[f"base.{len(base)}"] = f"encoder{i}"
            base.append(block)
            ch = stage.transition_channels
            down: list[nn.Module] = [ConvLayer(block.out_channels, ch, 1, 1, nn.ReLU)]
            if i < len(defn.encoder):
                down.append(nn.AvgPool2d(2, 2))
            blocks.update({f"base.{len(base) + j}": f"transition{i}" for j in range(len(down))})
            base.extend(down)
        self.base = nn.ModuleList(base)
        self.transUpBlocks = nn.ModuleList()
        self.conv1x1_up = nn.ModuleList()
        self.denseBlocksUp = nn.ModuleList()
        for up, spec in enumerate(defn.decoder):
            number = len(defn.encoder) - 1 - up
            halved = (ch + skips[number - 1]) // 2
            block = HarDBlock(halved, spec, nn.ReLU)
            self.transUpBlocks.append(TransitionUp())
            self.conv1x1_up.append(ConvLayer(ch + skips[number - 1], halved, 1, 1, nn.ReLU))
            self.denseBlocksUp.append(block)
            ch = block.out_channels
            blocks[f"transUpBlocks.{up}"] = f"skip{number}"
            blocks[f"conv1x1_up.{up}"] = blocks[f"denseBlocksUp.{up}"] = f"decoder{number}"
        self.finalConv = nn.Conv2d(ch, defn.num_classes, 1, bias=True)
        # "" labels the forward's own ops (the final upsampling) as the head.
        self.hda_blocks = {**blocks, "finalConv": "head", "": "head"}
        self.definition = defn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (x.shape[2], x.shape[3])
        skips = []
        for i, layer in enumerate(self.base):
            x = layer(x)
            if i in self.skip_layers:
                skips.append(x)
        for up, block in enumerate(self.denseBlocksUp):
            x = self.transUpBlocks[up](x, skips.pop())
            x = block(self.conv1x1_up[up](x))
        x = self.finalConv(x)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)
