"""Torch HarDNet built from a definition, module layout as the official PyTorch-HarDNet code.

State-dict keys and shapes equal those of the released checkpoints (``hardnet68-5d684880.pth``
and the others), so they load with ``create_model(name, weights=path)``.
"""

from __future__ import annotations

import torch
from torch import nn

from hardnet_analysis.families.hardnet.definition import HarDBlockDef, HarDNetDef, harmonic_links

Activation = type[nn.ReLU] | type[nn.ReLU6]


class ConvLayer(nn.Sequential):
    """Conv-BN-ReLU6, padding kernel // 2, no bias (FC-HarDNet's: ``activation=nn.ReLU``)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int = 3,
        stride: int = 1,
        activation: Activation = nn.ReLU6,
    ) -> None:
        super().__init__()
        self.add_module("conv", nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False))
        self.add_module("norm", nn.BatchNorm2d(out_ch))
        self.add_module("relu", activation(inplace=True))


class DWConvLayer(nn.Sequential):
    """3x3 depthwise conv-BN, no activation."""

    def __init__(self, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.add_module(
            "dwconv", nn.Conv2d(channels, channels, 3, stride, 1, groups=channels, bias=False)
        )
        self.add_module("norm", nn.BatchNorm2d(channels))


class CombConvLayer(nn.Sequential):
    """The depthwise-separable block layer: 1x1 ConvLayer then 3x3 DWConvLayer."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.add_module("layer1", ConvLayer(in_ch, out_ch, kernel=1))
        self.add_module("layer2", DWConvLayer(out_ch))


class HarDBlock(nn.Module):
    """Harmonic dense block: layer k concatenates layers k - 2**n (2**n dividing k)."""

    def __init__(
        self, in_channels: int, block: HarDBlockDef, activation: Activation = nn.ReLU6
    ) -> None:
        super().__init__()
        widths = block.widths(in_channels)
        self.links = [list(harmonic_links(k)) for k in range(1, block.n_layers + 1)]
        self.out_layers = list(block.output_layers())
        layers: list[nn.Module] = []
        for k, links in enumerate(self.links, start=1):
            in_ch = sum(widths[i] for i in links)
            layer = (
                CombConvLayer(in_ch, widths[k])
                if block.depthwise
                else ConvLayer(in_ch, widths[k], activation=activation)
            )
            layers.append(layer)
        self.layers = nn.ModuleList(layers)
        self.out_channels = block.out_channels(in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [x]
        for layer, links in zip(self.layers, self.links, strict=True):
            tin = (
                outputs[links[0]] if len(links) == 1 else torch.cat([outputs[i] for i in links], 1)
            )
            outputs.append(layer(tin))
        return torch.cat([outputs[i] for i in self.out_layers], 1)


class HarDNet(nn.Module):
    """A HarDNet with the official layout: one ``base`` ModuleList, the head as its last entry.

    `hda_blocks` maps each ``base`` index's module path to its block label (stem, hardblock1,
    transition1, ..., head), so traced graphs carry the same per-block view as analytic ones.
    """

    def __init__(self, defn: HarDNetDef) -> None:
        super().__init__()
        stem = defn.stem
        base: list[nn.Module] = [
            ConvLayer(stem.in_channels, stem.channels[0], kernel=3, stride=2),
            ConvLayer(stem.channels[0], stem.channels[1], kernel=stem.second_kernel),
            nn.MaxPool2d(3, 2, 1)
            if stem.downsample == "maxpool"
            else DWConvLayer(stem.channels[1], 2),
        ]
        labels = ["stem"] * 3
        ch = stem.channels[1]
        for i, stage in enumerate(defn.stages, start=1):
            block = HarDBlock(ch, stage.block)
            base.append(block)
            labels.append(f"hardblock{i}")
            transition: list[nn.Module] = []
            if stage.dropout_before_transition > 0:
                transition.append(nn.Dropout(stage.dropout_before_transition))
            transition.append(ConvLayer(block.out_channels, stage.transition_channels, kernel=1))
            ch = stage.transition_channels
            if stage.downsample == "maxpool":
                transition.append(nn.MaxPool2d(2, 2))
            elif stage.downsample == "dwconv":
                transition.append(DWConvLayer(ch, 2))
            base.extend(transition)
            labels.extend([f"transition{i}"] * len(transition))
        base.append(
            nn.Sequential(
                nn.AdaptiveAvgPool2d((1, 1)),
                nn.Flatten(),
                nn.Dropout(defn.head.dropout),
                nn.Linear(ch, defn.head.num_classes),
            )
        )
        labels.append("head")
        self.base = nn.ModuleList(base)
        self.hda_blocks = {f"base.{i}": label for i, label in enumerate(labels)}
        self.definition = defn
        self._init_weights()

    def _init_weights(self) -> None:
        # Xavier-normal conv init, as in the HarDNet training recipe.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.base:
            x = layer(x)
        return x
