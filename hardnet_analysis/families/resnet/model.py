"""Torch ResNet built from a definition, module layout as torchvision's ``resnet*``.

State-dict keys and shapes equal torchvision's model of the same depth in both versions (the
stride moves between convs, no weight changes shape), so torchvision checkpoints load with
``create_model(defn, weights=path)``; loaded into a v1 definition they give a different network.
"""

from __future__ import annotations

import torch
from torch import nn

from hardnet_analysis.families.resnet.definition import ResNetDef


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False)


class _Block(nn.Module):
    """One residual block: ``conv1``/``bn1`` ... (2 for basic, 3 for bottleneck), a shared
    ``relu`` and an optional ``downsample`` (1x1 conv + BN) on the shortcut."""

    def __init__(self, defn: ResNetDef, in_ch: int, width: int, stride: int) -> None:
        super().__init__()
        out_ch = width * defn.expansion
        if defn.block == "basic":
            convs = [_conv(in_ch, width, 3, stride), _conv(width, width, 3)]
        else:
            s1, s3 = (stride, 1) if defn.stride_in_1x1 else (1, stride)
            convs = [_conv(in_ch, width, 1, s1), _conv(width, width, 3, s3)]
            convs.append(_conv(width, out_ch, 1))
        for i, conv in enumerate(convs, start=1):
            self.add_module(f"conv{i}", conv)
            self.add_module(f"bn{i}", nn.BatchNorm2d(conv.out_channels))
        self.n_convs = len(convs)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(_conv(in_ch, out_ch, 1, stride), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for i in range(1, self.n_convs + 1):
            out = getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(out))
            if i < self.n_convs:
                out = self.relu(out)
        identity = x if self.downsample is None else self.downsample(x)
        out = out + identity
        result: torch.Tensor = self.relu(out)
        return result


class ResNet(nn.Module):
    """A ResNet: stem (``conv1``, ``bn1``, ``relu``, ``maxpool``), stages ``layer1..n`` and the
    head (``avgpool``, ``flatten``, ``fc``), labelled stem, layer1..n and head in ``hda_blocks``.
    """

    def __init__(self, defn: ResNetDef) -> None:
        super().__init__()
        self.conv1 = _conv(defn.in_channels, defn.stem_width, 7, 2)
        self.bn1 = nn.BatchNorm2d(defn.stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        labels = {name: "stem" for name in ("conv1", "bn1", "relu", "maxpool")}
        in_ch = defn.stem_width
        for stage, (n_blocks, width) in enumerate(zip(defn.layers, defn.widths, strict=True)):
            blocks = []
            for i in range(n_blocks):
                stride = defn.stage_stride(stage) if i == 0 else 1
                blocks.append(_Block(defn, in_ch, width, stride))
                in_ch = width * defn.expansion
            self.add_module(f"layer{stage + 1}", nn.Sequential(*blocks))
            labels[f"layer{stage + 1}"] = f"layer{stage + 1}"
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(defn.out_channels, defn.num_classes)
        self.hda_blocks = {**labels, "avgpool": "head", "flatten": "head", "fc": "head"}
        self.n_stages = len(defn.layers)
        self.definition = defn
        self._init_weights()

    def _init_weights(self) -> None:
        # As torchvision: Kaiming-normal (fan-out) convs, unit BN scale, zero BN shift.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in range(1, self.n_stages + 1):
            x = getattr(self, f"layer{stage}")(x)
        out: torch.Tensor = self.fc(self.flatten(self.avgpool(x)))
        return out
