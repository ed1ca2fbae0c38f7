"""FC-HarDNet-70: a state dict in the official FCHarDNet layout loads strictly and gives the
same output; the published parameter and MAC figures; the per-block and per-layer views."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hardnet_analysis import analyze, create_model
from hardnet_analysis.families import get_definition
from hardnet_analysis.families.fchardnet import FCHarDNetDef
from tests.official_layout import _get_link


def _conv(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    layer = nn.Sequential()
    layer.add_module("conv", nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False))
    layer.add_module("norm", nn.BatchNorm2d(out_ch))
    layer.add_module("relu", nn.ReLU(True))
    return layer


class _Block(nn.Module):
    """The official HarDBlock: links and widths from its get_link recursion."""

    def __init__(self, in_ch: int, growth: int, n_layers: int) -> None:
        super().__init__()
        specs = [_get_link(i + 1, in_ch, growth, 1.7) for i in range(n_layers)]
        self.links = [link for _, _, link in specs]
        self.layers = nn.ModuleList(_conv(inp, out) for out, inp, _ in specs)
        self.out_channels = sum(
            out for i, (out, _, _) in enumerate(specs) if i % 2 == 0 or i == n_layers - 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [x]
        for layer, link in zip(self.layers, self.links, strict=True):
            tin = [outs[i] for i in link]
            outs.append(layer(torch.cat(tin, 1) if len(tin) > 1 else tin[0]))
        t = len(outs)
        return torch.cat([outs[i] for i in range(t) if i == t - 1 or i % 2 == 1], 1)


class OfficialFCHarDNet(nn.Module):
    """The official ``hardnet`` class's layout and forward, written from the notes."""

    def __init__(self, n_classes: int = 19) -> None:
        super().__init__()
        first, ch_list = [16, 24, 32, 48], [64, 96, 160, 224, 320]
        gr, n_layers = [10, 16, 18, 24, 32], [4, 4, 8, 8, 8]
        base: list[nn.Module] = [_conv(3, 16, 3, 2), _conv(16, 24), _conv(24, 32, 3, 2)]
        base.append(_conv(32, 48))
        self.shortcut_layers, skips, ch = [], [], first[3]
        for i in range(5):
            blk = _Block(ch, gr[i], n_layers[i])
            skips.append(blk.out_channels)
            base.append(blk)
            if i < 4:
                self.shortcut_layers.append(len(base) - 1)
            base.append(_conv(blk.out_channels, ch_list[i], 1))
            ch = ch_list[i]
            if i < 4:
                base.append(nn.AvgPool2d(2, 2))
        self.base = nn.ModuleList(base)
        self.conv1x1_up, self.denseBlocksUp = nn.ModuleList(), nn.ModuleList()
        for i in range(3, -1, -1):
            cur = ch + skips[i]
            self.conv1x1_up.append(_conv(cur, cur // 2, 1))
            blk = _Block(cur // 2, gr[i], n_layers[i])
            self.denseBlocksUp.append(blk)
            ch = blk.out_channels
        self.finalConv = nn.Conv2d(ch, n_classes, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size, skips = x.shape[2:], []
        for i, layer in enumerate(self.base):
            x = layer(x)
            if i in self.shortcut_layers:
                skips.append(x)
        for conv, blk in zip(self.conv1x1_up, self.denseBlocksUp, strict=True):
            skip = skips.pop()
            up = F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=True)
            x = blk(conv(torch.cat([up, skip], 1)))
        return F.interpolate(self.finalConv(x), size=size, mode="bilinear", align_corners=True)


def _randomise(model: nn.Module) -> None:
    """Random BN statistics and affine terms (convs keep their random init), so a key loaded
    into the wrong module changes the output."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)


def test_official_layout_loads_strictly_and_gives_the_same_output(tmp_path: Path) -> None:
    torch.manual_seed(0)
    official = OfficialFCHarDNet()
    _randomise(official)
    path = tmp_path / "fchardnet70.pth"
    torch.save(official.state_dict(), path)
    model = create_model("fchardnet70", weights=path)
    assert model.state_dict().keys() == official.state_dict().keys()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        expected, got = official.eval()(x), model.eval()(x)
    assert got.shape == (1, 19, 64, 96) and float(expected.std()) > 0
    torch.testing.assert_close(got, expected)


def test_published_params_and_macs_at_1024x2048() -> None:
    totals = analyze("fchardnet70").totals
    assert totals.params == 4_119_257  # published 4.1 M
    assert abs(totals.params / 4.1e6 - 1) < 0.01
    # Published 35.4 GMACs; convolutions alone give 35.22 G (-0.5%): the official counter's
    # convention is not published (BN or resampling would add about the difference).
    assert totals.macs == 35_217_426_432
    assert abs(totals.macs / 35.4e9 - 1) < 0.01
    assert totals.conv_layers == 70


def test_skips_and_decoder_widths_are_the_official_ones() -> None:
    defn = get_definition("fchardnet70")
    assert isinstance(defn, FCHarDNetDef)
    assert defn.skip_channels() == (48, 78, 160, 214)
    ups = [r for r in analyze(defn).layers if r.name.startswith("conv1x1_up") and r.op == "conv"]
    assert [(r.in_shapes[0][1], r.out_shape[1]) for r in ups] == [
        (534, 267),
        (374, 187),
        (238, 119),
        (126, 63),
    ]


def test_blocks_name_encoder_skip_decoder_and_head_and_interpolation_has_bytes() -> None:
    analysis = analyze("fchardnet70")
    names = [g.name for g in analysis.by_block()]
    assert names[:4] == ["input", "stem", "encoder1", "transition1"]
    assert names[-10:] == [
        "skip4",
        "decoder4",
        "skip3",
        "decoder3",
        "skip2",
        "decoder2",
        "skip1",
        "decoder1",
        "head",
        "output",
    ]
    resample = [r for r in analysis.layers if r.op == "interpolate"]
    assert [r.name for r in resample][-1] == "interpolate"
    assert len(resample) == 5 and all(r.cio == 0 and r.macs == 0 for r in resample)
    last = resample[-1]  # 19 x 1024 x 2048 fp32 logits written
    assert (last.block, last.act_bytes) == ("head", 19 * 1024 * 2048 * 4)
    assert last.read_bytes == 19 * 256 * 512 * 4
