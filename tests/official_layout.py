"""A reference model in the module layout of the official PyTorch-HarDNet code, written from the
layout description in the notes (``base`` ModuleList; ``conv``/``norm``/``relu``; ``dwconv``;
``layer1``/``layer2``; ``layers``; head Sequential). Only its state_dict is used: it is what the
released checkpoints hold, so `create_model` must accept it unchanged.
"""

from __future__ import annotations

from torch import nn


def _conv(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    layer = nn.Sequential()
    layer.add_module("conv", nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False))
    layer.add_module("norm", nn.BatchNorm2d(out_ch))
    layer.add_module("relu", nn.ReLU6(True))
    return layer


def _dw(ch: int, stride: int = 1) -> nn.Sequential:
    layer = nn.Sequential()
    layer.add_module("dwconv", nn.Conv2d(ch, ch, 3, stride, 1, groups=ch, bias=False))
    layer.add_module("norm", nn.BatchNorm2d(ch))
    return layer


def _get_link(layer: int, base_ch: int, growth: int, grmul: float) -> tuple[int, int, list[int]]:
    # The recursion of the official HarDBlock.get_link.
    if layer == 0:
        return base_ch, 0, []
    out_ch: float = growth
    link = []
    for i in range(10):
        dv = 2**i
        if layer % dv == 0:
            link.append(layer - dv)
            if i > 0:
                out_ch *= grmul
    out = int(int(out_ch + 1) / 2) * 2
    in_ch = sum(_get_link(i, base_ch, growth, grmul)[0] for i in link)
    return out, in_ch, link


class _Block(nn.Module):
    def __init__(self, in_ch: int, growth: int, grmul: float, n_layers: int, dw: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        self.out_channels = 0
        for i in range(n_layers):
            out, inp, _ = _get_link(i + 1, in_ch, growth, grmul)
            if dw:
                comb = nn.Sequential()
                comb.add_module("layer1", _conv(inp, out, 1))
                comb.add_module("layer2", _dw(out))
                layers.append(comb)
            else:
                layers.append(_conv(inp, out))
            if i % 2 == 0 or i == n_layers - 1:
                self.out_channels += out
        self.layers = nn.ModuleList(layers)


OFFICIAL_ARGS = {
    # arch, depth_wise -> as the official constructor's lists
    "hardnet68": (68, False),
    "hardnet85": (85, False),
    "hardnet39ds": (39, True),
    "hardnet68ds": (68, True),
}


class OfficialLayout(nn.Module):
    def __init__(self, name: str) -> None:
        super().__init__()
        arch, dw = OFFICIAL_ARGS[name]
        first_ch, grmul = [32, 64], 1.7
        ch_list, gr = [128, 256, 320, 640, 1024], [14, 16, 20, 40, 160]
        n_layers, down = [8, 16, 16, 16, 4], [1, 0, 1, 1, 0]
        if arch == 85:
            first_ch = [48, 96]
            ch_list, gr = [192, 256, 320, 480, 720, 1280], [24, 24, 28, 36, 48, 256]
            n_layers, down = [8, 16, 16, 16, 16, 4], [1, 0, 1, 0, 1, 0]
        elif arch == 39:
            first_ch, grmul = [24, 48], 1.6
            ch_list, gr = [96, 320, 640, 1024], [16, 20, 64, 160]
            n_layers, down = [4, 16, 8, 4], [1, 1, 1, 0]
        base: list[nn.Module] = [
            _conv(3, first_ch[0], 3, 2),
            _conv(first_ch[0], first_ch[1], 1 if dw else 3),
        ]
        base.append(_dw(first_ch[1], 2) if dw else nn.MaxPool2d(3, 2, 1))
        ch = first_ch[1]
        for i in range(len(n_layers)):
            block = _Block(ch, gr[i], grmul, n_layers[i], dw)
            base.append(block)
            if i == len(n_layers) - 1 and arch == 85:
                base.append(nn.Dropout(0.1))
            base.append(_conv(block.out_channels, ch_list[i], 1))
            ch = ch_list[i]
            if down[i]:
                base.append(_dw(ch, 2) if dw else nn.MaxPool2d(2, 2))
        base.append(
            nn.Sequential(
                nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Dropout(0.1), nn.Linear(ch, 1000)
            )
        )
        self.base = nn.ModuleList(base)
