"""An independent MAC/CIO/param counter: forward hooks on nn.Conv2d, nn.ConvTranspose2d and
nn.Linear.

It shares no code with hardnet_analysis: it reads the modules' own hyper-parameters and the
shapes of the tensors that actually flow through a forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class HookCount:
    macs: int = 0
    cio: int = 0
    convs: int = 0


def hook_count(model: nn.Module, x: torch.Tensor) -> HookCount:
    """Run `model` on `x` and count conv/linear MACs and conv input+output elements (transposed
    convs are convolution layers for CIO)."""
    count = HookCount()

    def on_conv(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        assert isinstance(module, nn.Conv2d)
        kh, kw = module.kernel_size
        count.macs += output.numel() * (module.in_channels // module.groups) * kh * kw
        count.cio += inputs[0].numel() + output.numel()
        count.convs += 1

    def on_conv_transpose(
        module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
    ) -> None:
        # Each input element is multiplied into (C_out / groups) * kh * kw outputs.
        assert isinstance(module, nn.ConvTranspose2d)
        kh, kw = module.kernel_size
        count.macs += inputs[0].numel() * (module.out_channels // module.groups) * kh * kw
        count.cio += inputs[0].numel() + output.numel()
        count.convs += 1

    def on_linear(
        module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
    ) -> None:
        assert isinstance(module, nn.Linear)
        count.macs += output.numel() * module.in_features

    handles: list[Any] = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(on_conv))
        elif isinstance(module, nn.ConvTranspose2d):
            handles.append(module.register_forward_hook(on_conv_transpose))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(on_linear))
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
    return count
