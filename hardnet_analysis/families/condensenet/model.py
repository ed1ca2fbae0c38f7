"""Torch CondenseNets: the training-time model with learned group convolutions (LGC) and the
converted inference model (index-select, standard group conv, channel shuffle).

Training (``CondenseNet``): each LGC's 1x1 conv is dense under a ``(G, in)`` channel mask; group
g owns the output filters g, g+G, g+2G, ... Condensing runs in C-1 stages over the first half
of training, driven by ``hda_set_progress(iteration / total)``: stage ``min(C-1,
floor(2 (C-1) progress))``. Entering a stage, every group masks in/C more of its input channels,
those with the smallest summed |weight| over the group's filters. After the last stage
(progress >= 0.5) each group keeps in/C channels, and the classifier masks all but the
``classifier_keep`` fraction of its inputs with the largest L1 weight, so that the remaining
training adapts to it and the conversion is exact. ``hda_regularization()`` is the weighted
group-lasso term and ``hda_convert()`` builds the converted model (``CondensedNet``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.condensenet.definition import CondenseNetDef


class MaskedConv2d(nn.Conv2d):
    """A bias-free 1x1 conv whose weight is multiplied by a ``(groups, in)`` channel mask; output
    filter o belongs to group ``o % groups``."""

    mask: torch.Tensor

    def __init__(self, in_ch: int, out_ch: int, groups: int) -> None:
        super().__init__(in_ch, out_ch, 1, bias=False)
        self.mask_groups = groups
        self.register_buffer("mask", torch.ones(groups, in_ch))

    def weight_mask(self) -> torch.Tensor:
        """The mask expanded to the weight's shape (row o is ``mask[o % groups]``)."""
        rows = self.mask.repeat(self.out_channels // self.mask_groups, 1)
        return rows[:, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.weight_mask())


class LearnedGroupConv(nn.Module):
    """BN-ReLU-(dropout)-masked 1x1 conv, condensed stage by stage (see the module docstring)."""

    stage: torch.Tensor
    norm: nn.BatchNorm2d
    conv: MaskedConv2d

    def __init__(self, in_ch: int, out_ch: int, defn: CondenseNetDef) -> None:
        super().__init__()
        self.condense_factor = defn.condense_factor
        self.norm = nn.BatchNorm2d(in_ch)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(defn.dropout) if defn.dropout > 0 else nn.Identity()
        self.conv = MaskedConv2d(in_ch, out_ch, defn.groups_1x1)
        self.register_buffer("stage", torch.zeros((), dtype=torch.long))

    @property
    def final_stage(self) -> int:
        return self.condense_factor - 1

    def _group_importance(self) -> torch.Tensor:
        """(G, in): summed |masked weight| of each input channel over each group's filters."""
        conv = self.conv
        magnitude = (conv.weight * conv.weight_mask()).detach().abs().sum((2, 3))
        return magnitude.view(-1, conv.mask_groups, conv.in_channels).sum(0)

    def condense_to(self, stage: int) -> None:
        """Advance to `stage` (never back): per stage entered, every group masks the in/C of its
        still-active input channels with the smallest importance."""
        count = self.conv.in_channels // self.condense_factor
        while int(self.stage) < min(stage, self.final_stage):
            importance = self._group_importance()
            importance = importance.masked_fill(self.conv.mask == 0, math.inf)
            dropped = importance.topk(count, dim=1, largest=False).indices
            self.conv.mask.scatter_(1, dropped, 0.0)
            self.stage.add_(1)

    def lasso(self) -> torch.Tensor:
        """Group lasso: the sum over groups g and input channels c of the L2 norm of the masked
        weights linking c to g's filters; zero once condensing has finished."""
        if int(self.stage) >= self.final_stage:
            return self.conv.weight.new_zeros(())
        conv = self.conv
        squares = (conv.weight * conv.weight_mask()).pow(2).sum((2, 3))
        per_group = squares.view(-1, conv.mask_groups, conv.in_channels).sum(0)
        norms = per_group.clamp_min(1e-12).sqrt()
        return torch.where(conv.mask > 0, norms, torch.zeros_like(norms)).sum()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(self.drop(self.relu(self.norm(x))))
        return out


class CondensedConv(nn.Module):
    """The converted LGC: index-select the G * in/C kept channels (group by group), BN, ReLU, a
    1x1 conv with G groups, then a channel shuffle back to the original filter order."""

    index: torch.Tensor
    norm: nn.BatchNorm2d
    conv: nn.Conv2d

    def __init__(self, in_ch: int, out_ch: int, defn: CondenseNetDef) -> None:
        super().__init__()
        kept = defn.kept_in_channels(in_ch)
        groups = defn.groups_1x1
        self.register_buffer("index", torch.zeros(kept, dtype=torch.long))
        self.norm = nn.BatchNorm2d(kept)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(kept, out_ch, 1, groups=groups, bias=False)
        self.shuffle = nn.ChannelShuffle(groups)

    @torch.no_grad()
    def copy_from(self, lgc: LearnedGroupConv) -> None:
        """Take the kept channels and weights of a fully condensed `lgc`.

        The grouped conv's output p = g * (out/G) + j is the original filter g + j*G, which the
        shuffle moves back to position j*G + g.
        """
        mask, weight = lgc.conv.mask, lgc.conv.weight
        groups, per_group = mask.shape[0], self.conv.in_channels // mask.shape[0]
        out_per_group = self.conv.out_channels // groups
        for g in range(groups):
            kept = mask[g].nonzero().flatten()
            if kept.numel() != per_group:
                raise UsageError(f"group {g} keeps {kept.numel()} channels, not {per_group}")
            self.index[g * per_group : (g + 1) * per_group] = kept
            rows = weight[g::groups][:, kept]
            self.conv.weight[g * out_per_group : (g + 1) * out_per_group] = rows
        _copy_norm(self.norm, lgc.norm, self.index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.index_select(x, 1, self.index)
        out: torch.Tensor = self.shuffle(self.conv(self.relu(self.norm(x))))
        return out


def _copy_norm(target: nn.BatchNorm2d, source: nn.BatchNorm2d, index: torch.Tensor) -> None:
    """Copy the channels `index` of `source`'s parameters and statistics into `target`."""
    pairs = [
        (target.weight, source.weight),
        (target.bias, source.bias),
        (target.running_mean, source.running_mean),
        (target.running_var, source.running_var),
    ]
    for mine, theirs in pairs:
        assert mine is not None and theirs is not None  # affine, with running statistics
        mine.copy_(theirs[index])


class MaskedLinear(nn.Linear):
    """The training-time classifier: a linear layer with an input mask, pruned once to the
    inputs with the largest L1 weight (summed |weight| over the classes)."""

    mask: torch.Tensor

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features)
        self.register_buffer("mask", torch.ones(in_features))

    @torch.no_grad()
    def prune(self, keep: int) -> None:
        if int(self.mask.sum()) <= keep:
            return
        importance = (self.weight * self.mask).abs().sum(0)
        self.mask.zero_()
        self.mask[importance.topk(keep).indices] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class CondensedLinear(nn.Module):
    """The converted classifier: index-select the kept inputs, then a smaller linear layer."""

    index: torch.Tensor

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.register_buffer("index", torch.zeros(in_features, dtype=torch.long))
        self.linear = nn.Linear(in_features, out_features)

    @torch.no_grad()
    def copy_from(self, masked: MaskedLinear) -> None:
        kept = masked.mask.nonzero().flatten()
        if kept.numel() != self.linear.in_features:
            raise UsageError(
                f"the classifier keeps {kept.numel()} inputs, not {self.linear.in_features}"
            )
        self.index.copy_(kept)
        self.linear.weight.copy_(masked.weight[:, kept])
        self.linear.bias.copy_(masked.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.linear(torch.index_select(x, 1, self.index))
        return out


class _BnReluConv(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(in_ch))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module(
            "conv", nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, groups=groups, bias=False)
        )


class _DenseLayer(nn.Module):
    """LGC 1x1 (to bottleneck * k; converted: CondensedConv), BN-ReLU-grouped 3x3 conv (to k),
    and the concatenation of the input with the new features."""

    def __init__(self, in_ch: int, k: int, defn: CondenseNetDef) -> None:
        super().__init__()
        width = defn.bottleneck * k
        lgc = CondensedConv if defn.converted else LearnedGroupConv
        self.conv_1 = lgc(in_ch, width, defn)
        self.conv_2 = _BnReluConv(width, k, 3, defn.groups_3x3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv_2(self.conv_1(x))], 1)


class _CondenseNetBase(nn.Module):
    """``features`` (init_conv, denseblock_i, transition_i, norm_last, relu_last, pool_last,
    flatten) and the ``classifier``; `hda_blocks` labels stem, denseblock1, ..., head."""

    classifier: nn.Module

    def __init__(self, defn: CondenseNetDef) -> None:
        super().__init__()
        self.definition = defn
        self.features = nn.Sequential()
        self.features.add_module(
            "init_conv",
            nn.Conv2d(defn.in_channels, defn.init_channels, 3, defn.stem_stride, 1, bias=False),
        )
        labels = {"features.init_conv": "stem"}
        last = len(defn.stages)
        widths = defn.layer_in_channels()
        for i, (n_layers, k) in enumerate(zip(defn.stages, defn.growth, strict=True), start=1):
            block = nn.Sequential()
            for j in range(n_layers):
                block.add_module(f"denselayer_{j + 1}", _DenseLayer(widths[i - 1][j], k, defn))
            self.features.add_module(f"denseblock_{i}", block)
            labels[f"features.denseblock_{i}"] = f"denseblock{i}"
            if i < last:
                self.features.add_module(f"transition_{i}", nn.AvgPool2d(2, 2))
                labels[f"features.transition_{i}"] = f"transition{i}"
        self.features.add_module("norm_last", nn.BatchNorm2d(defn.out_channels))
        self.features.add_module("relu_last", nn.ReLU(inplace=True))
        self.features.add_module("pool_last", nn.AdaptiveAvgPool2d((1, 1)))
        self.features.add_module("flatten", nn.Flatten(1))
        for name in ("norm_last", "relu_last", "pool_last", "flatten"):
            labels[f"features.{name}"] = "head"
        self.hda_blocks = {**labels, "classifier": "head"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.classifier(self.features(x))
        return out


class CondenseNet(_CondenseNetBase):
    """The training-time CondenseNet, with the trainer hooks ``hda_set_progress``,
    ``hda_regularization`` and ``hda_convert``."""

    classifier: MaskedLinear

    def __init__(self, defn: CondenseNetDef) -> None:
        if defn.converted:
            raise UsageError(f"{defn.name} is a converted definition; build it with CondensedNet")
        super().__init__(defn)
        self.classifier = MaskedLinear(defn.out_channels, defn.num_classes)
        self.progress = 0.0
        self._init_weights()

    def _init_weights(self) -> None:
        # As the official code: He-normal convs (fan-out), unit BN scale, zero biases.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def learned_group_convs(self) -> list[LearnedGroupConv]:
        return [m for m in self.modules() if isinstance(m, LearnedGroupConv)]

    def condensing_stage(self, progress: float) -> int:
        """The stage for a training `progress`: C=4 gives 0 below 1/6, 1 below 1/3, 2 below 1/2,
        then 3 (the last, each group keeping in/C channels)."""
        last = self.definition.condense_factor - 1
        return min(last, math.floor(2 * last * progress))

    def hda_set_progress(self, progress: float) -> None:
        """Set training progress (iteration / total, in [0, 1]) and condense accordingly."""
        if not 0.0 <= progress <= 1.0:
            raise UsageError(f"progress must be in [0, 1], got {progress}")
        self.progress = progress
        stage = self.condensing_stage(progress)
        for lgc in self.learned_group_convs():
            lgc.condense_to(stage)
        if progress >= 0.5:
            self.classifier.prune(self.definition.as_converted().classifier_in_features)

    def hda_regularization(self) -> torch.Tensor:
        """`group_lasso` times the summed group-lasso terms of all LGCs (a 0-dim tensor; zero
        when disabled or after the last condensing stage)."""
        weight = self.definition.group_lasso
        if weight == 0:
            return next(self.parameters()).new_zeros(())
        return weight * torch.stack([lgc.lasso() for lgc in self.learned_group_convs()]).sum()

    def is_condensed(self) -> bool:
        """Whether every LGC has finished condensing and the classifier is pruned."""
        keep = self.definition.as_converted().classifier_in_features
        lgcs = self.learned_group_convs()
        return int(self.classifier.mask.sum()) == keep and all(
            int(m.stage) == m.final_stage for m in lgcs
        )

    @torch.no_grad()
    def hda_convert(self) -> nn.Module:
        """The converted inference model (``CondensedNet``) computing the same function as this
        model in eval mode; needs finished condensing (``hda_set_progress(p >= 0.5)``)."""
        if not self.is_condensed():
            raise UsageError(
                f"{self.definition.name} has not finished condensing "
                f"(progress {self.progress:g}); call hda_set_progress(p) with p >= 0.5 first"
            )
        device = next(self.parameters()).device
        converted = CondensedNet(self.definition.as_converted()).to(device)
        plain = {
            k: v
            for k, v in self.state_dict().items()
            if ".conv_1." not in k and not k.startswith("classifier.")
        }
        loaded = converted.load_state_dict(plain, strict=False)
        assert not loaded.unexpected_keys, loaded.unexpected_keys
        for name, module in self.named_modules():
            if isinstance(module, LearnedGroupConv):
                target = converted.get_submodule(name)
                assert isinstance(target, CondensedConv)
                target.copy_from(module)
        converted.classifier.copy_from(self.classifier)
        return converted.train(self.training)


class CondensedNet(_CondenseNetBase):
    """The converted (inference) CondenseNet. Built directly from a converted definition its
    indices are zeros, to be filled by loading a converted checkpoint."""

    classifier: CondensedLinear

    def __init__(self, defn: CondenseNetDef) -> None:
        if not defn.converted:
            raise UsageError(f"{defn.name} is a training-time definition; build CondenseNet")
        super().__init__(defn)
        self.classifier = CondensedLinear(defn.classifier_in_features, defn.num_classes)


def build_condensenet(defn: CondenseNetDef) -> nn.Module:
    """The training-time model of `defn`, or its converted model when ``defn.converted``."""
    return CondensedNet(defn) if defn.converted else CondenseNet(defn)
