"""Torch FC-DenseNet built from a definition, module layout as ``bfortuner/pytorch_tiramisu``
(the most used PyTorch Tiramisu; state-dict keys such as ``denseBlocksDown.0.layers.0.conv.weight``
and ``transUpBlocks.0.convTrans.weight``). It returns logits (no final LogSoftmax module) and
does not compute the running concatenation after the last layer of a new-features-only block,
which that code computes and drops."""

from __future__ import annotations

import torch
from torch import nn

from hardnet_analysis.families.fcdensenet.definition import FCDenseNetDef


class DenseLayer(nn.Sequential):
    """BN-ReLU-conv (bias, padding kernel // 2)-dropout."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(in_ch))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(in_ch, out_ch, kernel, 1, kernel // 2, bias=True))
        self.add_module("drop", nn.Dropout(dropout))


class TransitionDown(DenseLayer):
    """A 1x1 DenseLayer keeping the channels, then 2x2 max pooling."""

    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__(channels, channels, 1, dropout)
        self.add_module("maxpool", nn.MaxPool2d(2))


class DenseBlock(nn.Module):
    """Dense layers on the growing concatenation; `new_only` returns their outputs alone."""

    def __init__(self, in_ch: int, defn: FCDenseNetDef, layers: int, new_only: bool) -> None:
        super().__init__()
        g = defn.growth_rate
        self.layers = nn.ModuleList(
            DenseLayer(in_ch + i * g, g, 3, defn.dropout) for i in range(layers)
        )
        self.new_only = new_only
        self.out_channels = layers * g + (0 if new_only else in_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = []
        for i, layer in enumerate(self.layers):
            out = layer(x)
            new.append(out)
            if not (self.new_only and i == len(self.layers) - 1):
                x = torch.cat([x, out], 1)
        return torch.cat(new, 1) if self.new_only else x


class Bottleneck(nn.Sequential):
    """The bottleneck dense block (new features only), as ``bottleneck.bottleneck``."""

    def __init__(self, in_ch: int, defn: FCDenseNetDef) -> None:
        super().__init__()
        self.add_module("bottleneck", DenseBlock(in_ch, defn, defn.bottleneck_layers, True))


class TransitionUp(nn.Module):
    """3x3 stride-2 transposed conv, centre crop to the skip's size, then [upsampled, skip]."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.convTrans = nn.ConvTranspose2d(channels, channels, 3, 2, 0, bias=True)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        out = self.convTrans(x)
        h, w = skip.shape[2], skip.shape[3]
        top, left = (out.shape[2] - h) // 2, (out.shape[3] - w) // 2
        return torch.cat([out[:, :, top : top + h, left : left + w], skip], 1)


class FCDenseNet(nn.Module):
    """An FC-DenseNet; `hda_blocks` labels module paths as the family's graph does."""

    def __init__(self, defn: FCDenseNetDef) -> None:
        super().__init__()
        self.firstconv = nn.Conv2d(defn.in_channels, defn.first_channels, 3, 1, 1, bias=True)
        self.denseBlocksDown = nn.ModuleList()
        self.transDownBlocks = nn.ModuleList()
        ch = defn.first_channels
        for layers in defn.down_blocks:
            self.denseBlocksDown.append(DenseBlock(ch, defn, layers, new_only=False))
            ch += layers * defn.growth_rate
            self.transDownBlocks.append(TransitionDown(ch, defn.dropout))
        self.bottleneck = Bottleneck(ch, defn)
        self.transUpBlocks = nn.ModuleList()
        self.denseBlocksUp = nn.ModuleList()
        prev, skips = defn.bottleneck_layers * defn.growth_rate, defn.skip_channels()
        for j, layers in enumerate(defn.up_blocks):
            last = j == len(defn.up_blocks) - 1
            block = DenseBlock(prev + skips[-1 - j], defn, layers, new_only=not last)
            self.transUpBlocks.append(TransitionUp(prev))
            self.denseBlocksUp.append(block)
            prev = block.out_channels
        self.finalConv = nn.Conv2d(prev, defn.num_classes, 1, bias=True)
        self.hda_blocks = _block_labels(len(defn.down_blocks))
        self.definition = defn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.firstconv(x)
        skips = []
        for block, down in zip(self.denseBlocksDown, self.transDownBlocks, strict=True):
            x = block(x)
            skips.append(x)
            x = down(x)
        x = self.bottleneck(x)
        for up, block in zip(self.transUpBlocks, self.denseBlocksUp, strict=True):
            x = block(up(x, skips.pop()))
        out: torch.Tensor = self.finalConv(x)
        return out


def _block_labels(n: int) -> dict[str, str]:
    labels = {"firstconv": "stem", "bottleneck": "bottleneck", "finalConv": "head"}
    for i in range(n):
        labels[f"denseBlocksDown.{i}"] = f"encoder{i + 1}"
        labels[f"transDownBlocks.{i}"] = f"transition{i + 1}"
        labels[f"transUpBlocks.{i}"] = f"skip{n - i}"
        labels[f"denseBlocksUp.{i}"] = f"decoder{n - i}"
    return labels
