"""FC-DenseNet-103: a state dict in the pytorch_tiramisu layout loads strictly and gives the same
output; the published parameters; transposed convs and crops in the per-layer view."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from hardnet_analysis import analyze, create_model
from hardnet_analysis.families import get_definition
from hardnet_analysis.families.fcdensenet import FCDenseNetDef
from tests.test_fchardnet import _randomise


def _layer(in_ch: int, out_ch: int, kernel: int = 3) -> nn.Sequential:
    layer = nn.Sequential()
    layer.add_module("norm", nn.BatchNorm2d(in_ch))
    layer.add_module("relu", nn.ReLU(True))
    layer.add_module("conv", nn.Conv2d(in_ch, out_ch, kernel, 1, kernel // 2, bias=True))
    layer.add_module("drop", nn.Dropout2d(0.2))
    return layer


class _Dense(nn.Module):
    def __init__(self, in_ch: int, n: int, upsample: bool) -> None:
        super().__init__()
        self.upsample = upsample
        self.layers = nn.ModuleList(_layer(in_ch + 16 * i, 16) for i in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = []
        for layer in self.layers:  # as the reference: the last running concat is made anyway
            out = layer(x)
            x = torch.cat([x, out], 1)
            new.append(out)
        return torch.cat(new, 1) if self.upsample else x


class _Up(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.convTrans = nn.ConvTranspose2d(ch, ch, 3, 2, 0, bias=True)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        out = self.convTrans(x)
        h, w = skip.shape[2:]
        top, left = (out.shape[2] - h) // 2, (out.shape[3] - w) // 2
        return torch.cat([out[:, :, top : top + h, left : left + w], skip], 1)


class OfficialFCDenseNet103(nn.Module):
    """pytorch_tiramisu's FCDenseNet103 layout and forward (logits: its LogSoftmax has no
    parameters and is left out)."""

    def __init__(self, n_classes: int = 11) -> None:
        super().__init__()
        self.firstconv = nn.Conv2d(3, 48, 3, 1, 1, bias=True)
        self.denseBlocksDown, self.transDownBlocks = nn.ModuleList(), nn.ModuleList()
        ch, skips = 48, list[int]()
        for n in (4, 5, 7, 10, 12):
            self.denseBlocksDown.append(_Dense(ch, n, False))
            ch += 16 * n
            skips.insert(0, ch)
            down = _layer(ch, ch, 1)
            down.add_module("maxpool", nn.MaxPool2d(2))
            self.transDownBlocks.append(down)
        self.bottleneck = nn.Sequential()
        self.bottleneck.add_module("bottleneck", _Dense(ch, 15, True))
        prev = 16 * 15
        self.transUpBlocks, self.denseBlocksUp = nn.ModuleList(), nn.ModuleList()
        for i, n in enumerate((12, 10, 7, 5, 4)):
            self.transUpBlocks.append(_Up(prev))
            self.denseBlocksUp.append(_Dense(prev + skips[i], n, i < 4))
            prev = 16 * n if i < 4 else prev + skips[i] + 16 * n
        self.finalConv = nn.Conv2d(prev, n_classes, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, skips = self.firstconv(x), []
        for block, down in zip(self.denseBlocksDown, self.transDownBlocks, strict=True):
            out = block(out)
            skips.append(out)
            out = down(out)
        out = self.bottleneck(out)
        for up, block in zip(self.transUpBlocks, self.denseBlocksUp, strict=True):
            out = block(up(out, skips.pop()))
        result: torch.Tensor = self.finalConv(out)
        return result


def test_reference_layout_loads_strictly_and_gives_the_same_output(tmp_path: Path) -> None:
    torch.manual_seed(0)
    reference = OfficialFCDenseNet103()
    _randomise(reference)
    path = tmp_path / "fcdensenet103.pth"
    torch.save(reference.state_dict(), path)
    model = create_model("fcdensenet103", weights=path)
    assert model.state_dict().keys() == reference.state_dict().keys()
    x = torch.rand(1, 3, 36, 50)  # 36 -> 18 -> 9 -> 4 -> 2 -> 1: even and odd skips
    with torch.no_grad():
        expected, got = reference.eval()(x), model.eval()(x)
    assert got.shape == (1, 11, 36, 50) and float(expected.std()) > 0
    torch.testing.assert_close(got, expected)


def test_published_params_and_layer_count() -> None:
    defn = get_definition("fcdensenet103")
    assert isinstance(defn, FCDenseNetDef)
    assert defn.skip_channels() == (112, 192, 304, 464, 656)
    totals = analyze(defn).totals
    # Published 9.4 M (the Tiramisu paper, rounded); 103 convolutions give the name.
    assert totals.params == 9_322_091
    assert abs(totals.params / 9.4e6 - 1) < 0.01
    assert totals.conv_layers == 103


def test_transposed_convs_and_crops_in_the_per_layer_view() -> None:
    analysis = analyze("fcdensenet103")  # 360x480: skips 360, 180, 90, 45, 22 high
    ups = [r for r in analysis.layers if r.op == "conv_transpose"]
    assert [r.block for r in ups] == ["skip5", "skip4", "skip3", "skip2", "skip1"]
    first = ups[0]  # 240 x 11 x 15 -> 240 x 23 x 31, cropped to the 22 x 30 skip
    assert (first.in_shapes[0], first.out_shape) == ((1, 240, 11, 15), (1, 240, 23, 31))
    assert first.cio == 240 * (11 * 15 + 23 * 31)
    assert first.act_bytes == 240 * 23 * 31 * 4 and first.macs == 240 * 11 * 15 * 240 * 9
    crops = [r for r in analysis.layers if r.op == "getitem"]
    assert [r.out_shape[2:] for r in crops] == [
        (22, 30),
        (45, 60),
        (90, 120),
        (180, 240),
        (360, 480),
    ]
    assert all(r.act_bytes == r.read_bytes == 0 for r in crops)
    names = [g.name for g in analysis.by_block()]
    assert names[-5:] == ["decoder2", "skip1", "decoder1", "head", "output"]
    assert "bottleneck" in names
