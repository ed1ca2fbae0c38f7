"""Inputs of any rank and several inputs (issue 23, item 2): ``--input-shape`` and
``analyze(inputs=...)``; Conv1d, Conv3d and their transposes counted exactly as Conv2d, with the
counts written out by hand; integer inputs into an embedding; a video model; one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hypothesis import given
from torch import nn

from hardnet_analysis.analysis import analyze
from hardnet_analysis.errors import UsageError
from hardnet_analysis.metrics.analysis import Analysis
from hardnet_analysis.shapes import (
    InputShape,
    InputShapeError,
    parse_input_shape,
)
from tests.strategies import input_shapes
from tests.test_cli import run


def _conv_rows(analysis: Analysis) -> list[tuple[int, int, int, int, int]]:
    """(params, MACs, CIO, elements read, elements written) of each conv, in order (fp32)."""
    return [
        (r.params, r.macs, r.cio, r.read_bytes // 4, r.act_bytes // 4)
        for r in analysis.layers
        if r.op in ("conv", "conv_transpose")
    ]


# Conv1d, Conv3d and the transposes, each count by hand: params = C_out * C_in/g * taps (+ C_out
# bias); MACs = |out| * C_in/g * taps (transposed: |in| * C_out/g * taps); CIO = |in| + |out|;
# reads = |in| + params; writes = |out|.
HAND = [
    pytest.param(
        nn.Sequential(nn.Conv1d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv1d(8, 2, 5, stride=2)),
        (2, 4, 100),
        [
            # 2x4x100 -> 2x8x100: 8*4*3 + 8 weights and biases; 1,600 outputs x 4*3 taps.
            (104, 1_600 * 12, 800 + 1_600, 800 + 104, 1_600),
            # 2x8x100 -> 2x2x48 (floor((100 - 5) / 2) + 1 = 48): 2*8*5 + 2; 192 x 8*5.
            (82, 192 * 40, 1_600 + 192, 1_600 + 82, 192),
        ],
        id="conv1d",
    ),
    pytest.param(
        nn.Conv1d(4, 8, 3, padding=1),
        (4, 100),  # unbatched (C, L): the channels come from the weight, not from dim 1
        [(104, 800 * 12, 400 + 800, 400 + 104, 800)],
        id="conv1d-unbatched",
    ),
    pytest.param(
        nn.ConvTranspose1d(2, 3, 4, stride=2),
        (1, 2, 10),
        # 1x2x10 -> 1x3x22 ((10 - 1) * 2 + 4): 2*3*4 + 3; every input element into 3*4 outputs.
        [(27, 20 * 12, 20 + 66, 20 + 27, 66)],
        id="conv_transpose1d",
    ),
    pytest.param(
        nn.Conv3d(3, 4, 3, padding=1),
        (1, 3, 4, 8, 8),
        # 1x3x4x8x8 (768) -> 1x4x4x8x8 (1,024): 4*3*27 + 4; 1,024 outputs x 3*27 taps.
        [(328, 1_024 * 81, 768 + 1_024, 768 + 328, 1_024)],
        id="conv3d",
    ),
    pytest.param(
        nn.ConvTranspose3d(4, 2, 2, stride=2, bias=False),
        (1, 4, 2, 3, 3),
        # 1x4x2x3x3 (72) -> 1x2x4x6x6 (288): 4*2*8 weights; 72 inputs x 2*8 outputs each.
        [(64, 72 * 16, 72 + 288, 72 + 64, 288)],
        id="conv_transpose3d",
    ),
    pytest.param(
        nn.Conv3d(6, 6, (1, 3, 3), groups=3, bias=False),
        (2, 6, 2, 5, 5),
        # grouped: 6*2*9 weights; 2x6x2x3x3 = 216 outputs x 2*9 taps; input 600.
        [(108, 216 * 18, 600 + 216, 600 + 108, 216)],
        id="conv3d-grouped",
    ),
]


@pytest.mark.parametrize(("model", "shape", "expected"), HAND)
def test_convs_of_any_rank_count_by_hand(
    model: nn.Module, shape: tuple[int, ...], expected: list[tuple[int, ...]]
) -> None:
    analysis = analyze(model, inputs=shape)
    assert _conv_rows(analysis) == expected
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    assert analysis.totals.cio == sum(row[2] for row in expected)


@pytest.mark.parametrize(
    ("conv_nd", "conv_2d", "nd_shape", "shape_2d"),
    [
        (
            nn.Conv1d(4, 8, 3, padding=1),
            nn.Conv2d(4, 8, (1, 3), padding=(0, 1)),
            "2x4x50",
            "2x4x1x50",
        ),
        (
            nn.Conv3d(4, 8, (1, 3, 3), stride=(1, 2, 2)),
            nn.Conv2d(4, 8, 3, stride=2),
            "1x4x1x15x15",
            "1x4x15x15",
        ),
        (
            nn.ConvTranspose1d(4, 2, 4, stride=2),
            nn.ConvTranspose2d(4, 2, (1, 4), stride=(1, 2)),
            "1x4x9",
            "1x4x1x9",
        ),
        (
            nn.ConvTranspose3d(4, 2, (1, 2, 2), stride=(1, 2, 2)),
            nn.ConvTranspose2d(4, 2, 2, stride=2),
            "1x4x1x7x7",
            "1x4x7x7",
        ),
    ],
)
def test_a_conv_of_any_rank_counts_as_the_conv2d_it_equals(
    conv_nd: nn.Module, conv_2d: nn.Module, nd_shape: str, shape_2d: str
) -> None:
    # A Conv1d over L is a Conv2d over 1xL (and a Conv3d over 1xHxW one over HxW): the same
    # params, MACs, CIO and bytes, unfused and fused.
    nd, flat = analyze(conv_nd, inputs=nd_shape), analyze(conv_2d, inputs=shape_2d)
    assert nd.totals == flat.totals
    assert _conv_rows(nd) == _conv_rows(flat)


class TwoInputs(nn.Module):
    """An image and a mask, each through its own conv, concatenated, then fused."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Conv2d(3, 4, 3, padding=1)
        self.masked = nn.Conv2d(1, 4, 1, bias=False)
        self.fuse = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fuse(torch.cat([self.image(x), self.masked(mask)], 1))
        return out


#: TwoInputs on a 1x3x8x8 image and a 1x1x8x8 mask, by hand: image conv 4*27 + 4 = 112 params,
#: 256 outputs x 27 taps, CIO 192 + 256; mask conv 4 params, 256 x 1, CIO 64 + 256; fuse
#: 2*8 + 2 = 18 params, 128 outputs x 8, CIO 512 (the concatenation, whole) + 128.
TWO = {"params": 112 + 4 + 18, "macs": 256 * 27 + 256 + 128 * 8, "cio": 448 + 320 + 640}


def _totals(analysis: Analysis) -> dict[str, int]:
    return {key: getattr(analysis.totals, key) for key in TWO}


@pytest.mark.parametrize(
    "inputs",
    [
        [(1, 3, 8, 8), (1, 1, 8, 8)],
        ["1x3x8x8", "1x1x8x8"],
        {"x": (1, 3, 8, 8), "mask": "1x1x8x8"},
        [torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8)],
        {"x": torch.zeros(1, 3, 8, 8, device="meta"), "mask": torch.ones(1, 1, 8, 8)},
        ["1x3x8x8", "mask=1x1x8x8"],
    ],
    ids=["shapes", "strings", "keywords", "tensors", "keyword-tensors", "mixed"],
)
def test_a_two_input_model_counts_by_hand(inputs: object) -> None:
    analysis = analyze(TwoInputs(), inputs=inputs)
    assert _totals(analysis) == TWO
    assert analysis.graph.in_degree("fuse") == 1


def test_input_nodes_are_named_by_position_or_keyword() -> None:
    by_position = analyze(TwoInputs(), inputs=[(1, 3, 8, 8), (1, 1, 8, 8)]).graph
    by_keyword = analyze(TwoInputs(), inputs={"x": (1, 3, 8, 8), "mask": (1, 1, 8, 8)}).graph
    mixed = analyze(TwoInputs(), inputs=["1x3x8x8", "mask=1x1x8x8"]).graph
    assert [n for n, op in by_position.nodes(data="op") if op == "input"] == ["input", "input.1"]
    assert [n for n, op in by_keyword.nodes(data="op") if op == "input"] == ["x", "mask"]
    assert [n for n, op in mixed.nodes(data="op") if op == "input"] == ["input", "mask"]
    assert list(by_position.successors("input.1")) == ["masked"]


def test_integer_token_ids_feed_an_embedding() -> None:
    model = nn.Sequential(nn.Embedding(1_000, 16), nn.Linear(16, 4))
    analysis = analyze(model, inputs="1x128:int64")
    # 1,000 x 16 embedding + 16 x 4 + 4 linear; the linear's 128 rows x 16 x 4 MACs.
    assert analysis.totals.params == 16_000 + 68
    assert analysis.totals.macs == 128 * 16 * 4
    assert analysis.input_shape == (1, 128)
    # Float "token ids" are refused by torch itself: a one-line UsageError naming the module.
    with pytest.raises(UsageError, match=r"module '0', op embedding"):
        analyze(model, inputs=(1, 128))


def _conv_flops(model: nn.Module, *inputs: torch.Tensor) -> int:
    """FlopCounterMode's convolution FLOPs (2 a MAC) of `model` run on `inputs`: an
    independent count, from aten's convolution rather than from hda's trace."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(*inputs)
    flops: int = counter.get_flop_counts()["Global"][torch.ops.aten.convolution]
    return flops


@pytest.mark.parametrize(
    ("name", "side"),
    [("r3d_18", 112), ("mc3_18", 112), ("r2plus1d_18", 112), ("s3d", 224), ("mvit_v2_s", 224)],
)
def test_torchvision_video_models_analyse_at_a_clip(name: str, side: int) -> None:
    from torchvision.models import get_model, get_model_weights

    with torch.device("meta"):  # no initialisation: the counts need no values
        model = get_model(name).eval()
    clip = (1, 3, 16, side, side)
    analysis = analyze(model, inputs=clip)
    assert analysis.input_shape == clip and analysis.coverage == 1.0
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    # torchvision's own figure (its "GFLOPS" are MACs, at this clip), to its 3 decimals.
    meta = get_model_weights(name).DEFAULT.meta
    assert round(analysis.totals.macs / 1e9, 3) == meta["_ops"]
    assert analysis.totals.params == meta["num_params"]
    conv_macs = sum(r.macs for r in analysis.layers if r.op == "conv")
    assert 2 * conv_macs == _conv_flops(model, torch.empty(clip, device="meta"))


def test_raft_small_takes_two_frames() -> None:
    from torchvision.models.optical_flow import raft_small

    with torch.device("meta"):
        model = raft_small().eval()
    analysis = analyze(model, inputs=[(1, 3, 128, 128), (1, 3, 128, 128)])
    inputs = [n for n, op in analysis.graph.nodes(data="op") if op == "input"]
    assert inputs == ["input", "input.1"] and analysis.coverage == 1.0
    assert analysis.totals.params == sum(p.numel() for p in model.parameters()) == 990_162
    frames = [torch.empty(1, 3, 128, 128, device="meta") for _ in range(2)]
    conv_macs = sum(r.macs for r in analysis.layers if r.op == "conv")
    assert 2 * conv_macs == _conv_flops(model, *frames)


def test_inputs_is_the_whole_input() -> None:
    with pytest.raises(UsageError, match="inputs= holds the whole input"):
        analyze(TwoInputs(), input_size=8, inputs=[(1, 3, 8, 8), (1, 1, 8, 8)])
    with pytest.raises(UsageError, match="inputs= holds the whole input"):
        analyze(nn.Conv1d(1, 1, 1), batch=2, inputs=(1, 1, 8))
    with pytest.raises(InputShapeError, match="an input is a shape"):
        analyze(nn.Conv1d(1, 1, 1), inputs=[3.5])


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([(1, 3, 8, 8)], "forward also needs mask (1 input(s) given)"),
        ([(1, 3, 8, 8), (1, 1, 8, 8), (1, 1)], "takes 2 positional input(s) (x, mask), not 3"),
        ({"x": (1, 3, 8, 8), "weights": (1,)}, "input 'weights' is not one of them"),
        (["1x3x8x8", "x=1x3x8x8"], "input 'x' is already given by position"),
    ],
)
def test_inputs_the_forward_cannot_take_are_one_line_errors(inputs: object, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        analyze(TwoInputs(), inputs=inputs)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_image_helpers_refuse_what_is_not_one_float_image() -> None:
    for other in ("1x3x16x112x112", "1x3x224x224:int64", "x=1x3x224x224"):
        with pytest.raises(InputShapeError, match="one NCHW image"):
            _ = parse_input_shape(other).hw
    two = InputShape.join([InputShape.of_image(8), InputShape.of_image(8)])
    with pytest.raises(InputShapeError, match="one NCHW image"):
        _ = two.batch
    assert parse_input_shape("2x3x8x16").hw == (8, 16)
    assert InputShape(((1, 128),), ("long",)) == InputShape(((1, 128),), ("int64",))


@given(input_shapes())
def test_the_text_form_reads_back(shape: InputShape) -> None:
    parts = [parse_input_shape(text) for text in str(shape).split(" ")]
    assert InputShape.join(parts) == shape
    assert str(InputShape.join(parts)) == str(shape)


# The command line: --input-shape, repeated, and its one-line errors (exit status 2).

NET_PY = """
import torch
from torch import nn


class Masked(nn.Module):
    def __init__(self):
        super().__init__()
        self.image = nn.Conv2d(3, 4, 3, padding=1)
        self.masked = nn.Conv2d(1, 4, 1, bias=False)
        self.fuse = nn.Conv2d(8, 2, 1)

    def forward(self, x, mask):
        return self.fuse(torch.cat([self.image(x), self.masked(mask)], 1))


def audio():
    return nn.Sequential(nn.Conv1d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv1d(8, 2, 5, stride=2))
"""


@pytest.fixture
def net(tmp_path: Path) -> Path:
    path = tmp_path / "net.py"
    path.write_text(NET_PY)
    return path


@pytest.mark.parametrize(
    "shapes",
    [("1x3x8x8", "1x1x8x8"), ("1x3x8x8", "mask=1x1x8x8"), ("x=1x3x8x8", "mask=1x1x8x8")],
)
def test_cli_two_inputs(
    capsys: pytest.CaptureFixture[str], net: Path, shapes: tuple[str, str]
) -> None:
    argv = [arg for shape in shapes for arg in ("--input-shape", shape)]
    code, out, err = run(capsys, "cio", f"{net}:Masked", *argv, "--format", "json")
    assert code == 0, err
    assert {key: json.loads(out)["totals"][key] for key in TWO} == TWO


def test_cli_table_title_names_every_input(capsys: pytest.CaptureFixture[str], net: Path) -> None:
    argv = ["--input-shape", "1x3x8x8", "--input-shape", "mask=1x1x8x8:float16"]
    code, out, _ = run(capsys, "cio", f"{net}:Masked", *argv)
    assert code == 0 and "@ 1x3x8x8 + 1x1x8x8 fp32 (traced)" in " ".join(out.split())


def test_cli_conv1d_and_compare(capsys: pytest.CaptureFixture[str], net: Path) -> None:
    code, out, _ = run(
        capsys, "cio", f"{net}:audio", "--input-shape", "2x4x100", "--format", "json"
    )
    document = json.loads(out)
    assert code == 0 and document["input_shape"] == [2, 4, 100]
    assert document["totals"]["macs"] == 1_600 * 12 + 192 * 40
    assert document["totals"]["cio"] == 2_400 + 1_792
    code, out, _ = run(capsys, "compare", f"{net}:audio", "--input-shape", "3x4x100")
    assert code == 0 and "3x4x100" in out
    code, out, _ = run(
        capsys, "compare", "hardnet39ds", "--input-shape", "2x3x64x64", "--format", "json"
    )
    assert code == 0 and json.loads(out)["batch"] == 2


def test_cli_an_image_shape_is_the_same_as_input_and_batch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, short, _ = run(
        capsys, "cio", "hardnet39ds", "--input", "64x96", "--batch", "2", "--format", "json"
    )
    _, whole, _ = run(
        capsys, "cio", "hardnet39ds", "--input-shape", "2x3x64x96", "--format", "json"
    )
    assert json.loads(short) == json.loads(whole)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ("{net}:audio --input-shape 2x0x100", "input shape '2x0x100' needs positive dimensions"),
        ("{net}:audio --input-shape 2x4x-100", "input shape '2x4x-100' needs positive dimensions"),
        ("{net}:audio --input-shape 2x4x100:float13", "unknown input dtype 'float13'; accepted:"),
        ("{net}:audio --input-shape 2x4x100:", "has no dtype after ':'"),
        ("{net}:audio --input-shape 2x4x100 --input-shape 2x4", "takes 1 positional input(s)"),
        ("{net}:Masked --input-shape 1x3x8x8", "forward also needs mask"),
        ("{net}:Masked --input-shape 1x3x8x8 --input-shape w=1x1", "'w' is not one of them"),
        ("{net}:audio --input-shape 2xx4", "input shape '2xx4' is not understood; use"),
        ("{net}:audio --input-shape 2x4,100", "input shape '2x4,100' is not understood"),
        ("{net}:audio --input-shape 1-x=2", "input name '1-x' in '1-x=2' is not a Python"),
        ("{net}:audio --input-shape 99999x99999x99999x99999x9", "more elements than a tensor"),
        ("{net}:Masked --input-shape m=1x1 --input-shape 1x3", "cannot follow a keyword input"),
        ("{net}:audio --input-shape 2x4x100 --input 100", "--input and --input-shape cannot"),
        ("{net}:audio --input-shape 2x4x100 --batch 2", "--batch and --input-shape cannot"),
        ("hardnet68 --input-shape 1x3x16x112x112", "hardnet68 (from its definition): expected"),
    ],
)
def test_cli_bad_input_shapes_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], net: Path, argv: str, message: str
) -> None:
    code, _, err = run(capsys, "cio", *argv.format(net=net).split(" "))
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
