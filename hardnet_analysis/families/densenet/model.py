"""Torch DenseNet-BC built from a definition, module layout as torchvision's ``densenet*``.

State-dict keys and shapes equal torchvision's model of the same configuration, so its
checkpoints load with ``create_model("densenet121", weights=path)``. The memory-efficient
option recomputes each layer's concatenation + BN + ReLU + 1x1 conv in the backward pass
(``torch.utils.checkpoint``): feature-map memory grows linearly instead of quadratically with
depth, for some extra compute; outputs, gradients and BN running statistics are unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from hardnet_analysis.families.densenet.definition import DenseNetDef


class _DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1 (``bn_size * k``) then BN-ReLU-Conv3x3 (k) on the concatenated inputs."""

    def __init__(self, in_ch: int, growth: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        width = bn_size * growth
        self.norm1 = nn.BatchNorm2d(in_ch)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, growth, 3, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.memory_efficient = False

    def _bottleneck(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        out: torch.Tensor = self.conv1(self.relu1(self.norm1(torch.cat(inputs, 1))))
        return out

    def _checkpointed(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        calls = 0

        def bottleneck(*xs: torch.Tensor) -> torch.Tensor:
            nonlocal calls
            calls += 1
            if calls == 1 or not self.norm1.training:
                return self._bottleneck(list(xs))
            # The backward recomputation: batch statistics again, but the running statistics
            # were already updated by the forward call, so momentum 0 leaves them as they are.
            norm = self.norm1
            x = F.batch_norm(
                torch.cat(xs, 1),
                norm.running_mean,
                norm.running_var,
                norm.weight,
                norm.bias,
                True,
                0.0,
                norm.eps,
            )
            recomputed: torch.Tensor = self.conv1(self.relu1(x))
            return recomputed

        out: torch.Tensor = checkpoint(bottleneck, *inputs, use_reentrant=False)
        return out

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in inputs)
        if self.memory_efficient and needs_grad:
            x = self._checkpointed(inputs)
        else:
            x = self._bottleneck(inputs)
        x = self.conv2(self.relu2(self.norm2(x)))
        if self.drop_rate > 0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x


class _DenseBlock(nn.ModuleDict):
    """Layers ``denselayer1..n``; the output concatenates the input and every layer's output."""

    def __init__(self, n_layers: int, in_ch: int, defn: DenseNetDef) -> None:
        super().__init__()
        for i in range(n_layers):
            layer = _DenseLayer(
                in_ch + i * defn.growth_rate, defn.growth_rate, defn.bn_size, defn.drop_rate
            )
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    """BN-ReLU-Conv1x1 to `out_ch`, then a 2x2 average pool."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(in_ch))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(in_ch, out_ch, 1, bias=False))
        self.add_module("pool", nn.AvgPool2d(2, 2))


def _stem(defn: DenseNetDef) -> list[tuple[str, nn.Module]]:
    if defn.stem == "cifar":
        return [("conv0", nn.Conv2d(defn.in_channels, defn.init_channels, 3, 1, 1, bias=False))]
    return [
        ("conv0", nn.Conv2d(defn.in_channels, defn.init_channels, 7, 2, 3, bias=False)),
        ("norm0", nn.BatchNorm2d(defn.init_channels)),
        ("relu0", nn.ReLU(inplace=True)),
        ("pool0", nn.MaxPool2d(3, 2, 1)),
    ]


class DenseNet(nn.Module):
    """A DenseNet-BC: ``features`` (stem, blocks, transitions, ``norm5``), a parameterless
    ``head`` (ReLU, global average pool, flatten) and the ``classifier``.

    `memory_efficient` (also settable later with `hda_set_memory_efficient`) checkpoints every
    layer's concatenation + BN + ReLU + 1x1 conv while training.
    """

    def __init__(self, defn: DenseNetDef, memory_efficient: bool = False) -> None:
        super().__init__()
        modules = _stem(defn)
        labels = {f"features.{name}": "stem" for name, _ in modules}
        widths = defn.block_in_channels()
        last = len(defn.block_config)
        for i, n_layers in enumerate(defn.block_config, start=1):
            block = _DenseBlock(n_layers, widths[i - 1], defn)
            modules.append((f"denseblock{i}", block))
            labels[f"features.denseblock{i}"] = f"denseblock{i}"
            if i < last:
                in_ch = widths[i - 1] + n_layers * defn.growth_rate
                modules.append((f"transition{i}", _Transition(in_ch, widths[i])))
                labels[f"features.transition{i}"] = f"transition{i}"
        modules.append(("norm5", nn.BatchNorm2d(defn.out_channels)))
        self.features = nn.Sequential()
        for name, module in modules:
            self.features.add_module(name, module)
        self.head = nn.Sequential()
        self.head.add_module("relu", nn.ReLU(inplace=True))
        self.head.add_module("pool", nn.AdaptiveAvgPool2d((1, 1)))
        self.head.add_module("flatten", nn.Flatten(1))
        self.classifier = nn.Linear(defn.out_channels, defn.num_classes)
        self.hda_blocks = {**labels, "features.norm5": "head", "head": "head", "classifier": "head"}
        self.definition = defn
        self._init_weights()
        self.hda_set_memory_efficient(memory_efficient)

    def _init_weights(self) -> None:
        # As torchvision: Kaiming-normal convs, unit BN scale, zero biases.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def hda_set_memory_efficient(self, flag: bool) -> None:
        """Checkpoint (recompute in backward) every layer's concat-BN-ReLU-1x1 conv, or stop."""
        for m in self.modules():
            if isinstance(m, _DenseLayer):
                m.memory_efficient = flag

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.classifier(self.head(self.features(x)))
        return out
