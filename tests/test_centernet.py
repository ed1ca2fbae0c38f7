"""CenterNet-HarDNet-85: analytic, traced and independent counts agree; the published size
(37.2 M params, "87.9 GFLOPs" at 512x512) against what the public code's architecture gives;
the heads' output shapes; the registry listing."""

from __future__ import annotations

import json

import pytest
import torch

from hardnet_analysis import analyze, create_model
from hardnet_analysis.cli.main import main
from hardnet_analysis.families import get_definition, list_models
from hardnet_analysis.families.centernet import CenterNetHarDNetDef
from tests.hookcount import hook_count

NAME = "centernet_hardnet85"


def _definition() -> CenterNetHarDNetDef:
    defn = get_definition(NAME)
    assert isinstance(defn, CenterNetHarDNetDef)
    return defn


def test_analytic_traced_and_independent_counts_agree_at_512() -> None:
    with torch.device("meta"):
        model = create_model(NAME)
    analytic = analyze(NAME).totals
    traced = analyze(model, 512).totals
    with torch.device("meta"):
        counted = hook_count(model, torch.empty(1, 3, 512, 512))
    numel = sum(p.numel() for p in model.parameters())
    assert analytic == traced
    assert analytic.params == numel == 37_274_988
    assert (analytic.macs, analytic.cio, analytic.conv_layers) == (
        counted.macs,
        counted.cio,
        counted.convs,
    )
    assert (analytic.macs, analytic.cio, analytic.conv_layers) == (87_715_217_408, 171_153_920, 114)


def test_params_against_the_published_37_2_m() -> None:
    # The public code's model (HarDNetSeg(85) with the ctdet heads hm: 80 and wh: 4) has
    # 37,274,988 parameters, as its own get_pose_net prints (checked by building that model).
    # The README's 37.2 M fits that number cut to one decimal (it rounds to 37.3 M), 0.2% above.
    # A separate reg head (hm, wh: 2, reg: 2, as in CenterNet's own code) would give 37.51 M:
    # the ctdet task has no reg head.
    params = analyze(NAME).totals.params
    assert params == 37_274_988
    assert int(params / 1e5) / 10 == 37.2
    assert abs(params / 37.2e6 - 1) < 0.003


@pytest.mark.parametrize(
    ("side", "macs", "published"),
    [(416, 57_905_748_992, 58.0e9), (512, 87_715_217_408, 87.9e9), (608, 123_692_162_048, 123.9e9)],
)
def test_published_gflops_are_multiply_adds(side: int, macs: int, published: float) -> None:
    # hda's MACs: one multiply-add counted once, convolutions only. The README's "GFLOPs" (58.0,
    # 87.9, 123.9 at 416, 512, 608) are such multiply-adds, not 2 x MACs (175.4 G at 512):
    # conv MACs are 0.2% below each. The counter is not named; the four 9x9 context average
    # pools at 82 ops per output would add 0.21 G at 512 (87.92 G), but give 124.0 G at 608.
    got = analyze(NAME, side).totals.macs
    assert got == macs
    assert -0.003 < got / published - 1 < 0


def test_heads_are_output_nodes_at_a_quarter_of_the_input() -> None:
    analysis = analyze(NAME)
    outputs = [(r.name, r.out_shape) for r in analysis.layers if r.op == "output"]
    assert outputs == [("output", (1, 80, 128, 128)), ("output:1", (1, 4, 128, 128))]
    assert analysis.output_shape == (1, 4, 128, 128)  # the last output node
    heads = {r.name: r for r in analysis.layers if r.name in ("hm.0", "hm.2", "wh.0", "wh.2")}
    # Hidden widths max(128, 4 * channels): 320 for 80 classes, 128 for wh; 200 channels in.
    assert [(h.in_shapes[0][1], h.out_shape[1]) for h in heads.values()] == [
        (200, 320),
        (320, 80),
        (200, 128),
        (128, 4),
    ]


def test_the_module_returns_one_map_per_head() -> None:
    torch.manual_seed(0)
    model = create_model(NAME, num_classes=3).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 96))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "hm": (1, 3, 16, 24),
        "wh": (1, 4, 16, 24),
    }
    # sigmoid(-2.19) = 0.1: the heatmap's starting prior, as the public code initialises it.
    last = model.get_submodule("hm.2")
    assert isinstance(last, torch.nn.Conv2d) and last.bias is not None
    assert float(last.bias.detach()[0]) == pytest.approx(-2.19)


def test_skips_neck_and_blocks_are_the_public_codes() -> None:
    defn = _definition()
    assert defn.skip_channels() == (214, 458, 784)
    analysis = analyze(NAME)
    ups = [r for r in analysis.layers if r.name.startswith("conv1x1_up") and r.op == "conv"]
    # [upsampled, skip]: 714 + 784, 570 + 458, 428 + 214 (the previous block's output + skip).
    assert [(r.in_shapes[0][1], r.out_shape[1]) for r in ups] == [
        (1498, 256),
        (1028, 192),
        (642, 96),
    ]
    contexts = [r for r in analysis.layers if r.op == "concat" and r.name.startswith("contexts")]
    assert [r.out_shape[1] for r in contexts] == [768, 672, 480, 288]  # 3 x (256, 224, 160, 96)
    assert [g.name for g in analysis.by_block()][-11:] == [
        "bottleneck",
        "up1",
        "decoder1",
        "up2",
        "decoder2",
        "up3",
        "decoder3",
        "merge",
        "head_hm",
        "head_wh",
        "output",
    ]


def test_listed_by_hda_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert NAME in list_models("centernet")
    assert main(["models", "--family", "centernet", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["model"], row["input"], row["params"], row["macs"]) == (
        NAME,
        512,
        37_274_988,
        87_715_217_408,
    )
    assert (row["published_params"], row["published_macs"]) == (37_200_000, 87_900_000_000)
