"""ToyNet as a torch module."""

from __future__ import annotations

import torch
from torch import nn

from .definition import ToyNetDef


class ToyNet(nn.Module):
    def __init__(self, defn: ToyNetDef) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = defn.in_channels
        for width in defn.widths:
            layers += [nn.Conv2d(channels, width, 3, 2, 1), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(channels, defn.num_classes)
        self.definition = defn
        self.hda_blocks = {
            f"features.{3 * i + j}": f"stage{i + 1}"
            for i in range(len(defn.widths))
            for j in range(3)
        }
        self.hda_blocks.update(pool="head", flatten="head", classifier="head")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.classifier(self.flatten(self.pool(self.features(x))))
        return out
