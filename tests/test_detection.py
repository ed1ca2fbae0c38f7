"""torchvision's detection models, and the tracer's run on real tensors for data-dependent ops.

A detector's post-processing (score thresholds through ``nonzero`` and boolean masks, NMS,
top-k over what survives) has sizes that depend on values, so the meta trace breaks and the
forward is traced again on real tensors: a seeded random input in [0, 1) and the module's own
weights. Each model is built once on cpu under seed 0, analysed, and run again under
``FlopCounterMode`` on the same input (seed 0, ``torch.rand``), so both see the same detections.

Params equal ``sum(p.numel())`` and conv MACs equal FlopCounterMode's conv FLOPs / 2 for every
model. Where the conv count depends on the detections (`PER_ROI`), the part that depends on them
is a whole number of the head's cost per region: at 64x64, seed 0, Faster R-CNN v2's box head
(four 3x3 convs, 256 channels, 7x7) costs 115,605,504 MACs per proposal on 284 proposals,
Mask R-CNN's mask head 532,066,304 per detection on 100, Keypoint R-CNN's keypoint head
3,495,460,864 per detection on 9. Elsewhere the conv MACs depend on the input's shape only.
Inputs are small: the R-CNNs, RetinaNet and FCOS resized to 64 by ``min_size``/``max_size``
(their transform would resize any input to 800), SSD and SSDlite always resize to 300 and 320.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hardnet_analysis import analyze
from hardnet_analysis.errors import UsageError
from hardnet_analysis.graph.traced import trace_module
from hardnet_analysis.metrics.analysis import Analysis
from tests.test_cli import run

SIDE = 64
SMALL = {"min_size": SIDE, "max_size": SIDE}

#: Model -> its builder's keyword arguments beyond ``weights=None, weights_backbone=None``.
MODELS: dict[str, dict[str, Any]] = {
    "ssdlite320_mobilenet_v3_large": {},
    "ssd300_vgg16": {},
    "retinanet_resnet50_fpn": SMALL,
    "retinanet_resnet50_fpn_v2": SMALL,
    "fcos_resnet50_fpn": SMALL,
    "fasterrcnn_resnet50_fpn": SMALL,
    "fasterrcnn_resnet50_fpn_v2": SMALL,
    "fasterrcnn_mobilenet_v3_large_fpn": SMALL,
    "maskrcnn_resnet50_fpn": SMALL,
    "keypointrcnn_resnet50_fpn": SMALL,
}

#: The issue's two examples always run; the others are marked slow (the whole file takes 20 s
#: on two idle cores, two minutes on busy ones; SSD300 and SSDlite the longest: 90 classes of
#: post-processing).
QUICK = {"ssdlite320_mobilenet_v3_large", "fasterrcnn_resnet50_fpn"}

#: Conv MACs per region of the heads that run on data-dependent regions (written out by hand):
#: box head 4 x 7*7*256*256*9; mask head 4 x 14*14*256*256*9 + the 2x2 transposed conv
#: 14*14*256*256*4 + the 1x1 logits 28*28*256*91; keypoint head 14*14*9*(256*512 + 7*512*512)
#: + the 4x4 transposed conv 14*14*512*17*16.
PER_ROI = {
    "fasterrcnn_resnet50_fpn_v2": 4 * 7 * 7 * 256 * 256 * 9,
    "maskrcnn_resnet50_fpn": 4 * 14 * 14 * 256 * 256 * 9
    + 14 * 14 * 256 * 256 * 4
    + 28 * 28 * 256 * 91,
    "keypointrcnn_resnet50_fpn": 14 * 14 * 9 * (256 * 512 + 7 * 512 * 512)
    + 14 * 14 * 512 * 17 * 16,
}


def _build(name: str) -> nn.Module:
    import torchvision.models.detection as detection

    torch.manual_seed(0)
    kwargs = {"weights": None, "weights_backbone": None, **MODELS[name]}
    model: nn.Module = getattr(detection, name)(**kwargs)
    return model.eval()


def _flop_counter_conv_macs(model: nn.Module) -> int:
    """Conv FLOPs / 2 of a real forward on the input the tracer used (seed 0, torch.rand)."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, SIDE, SIDE)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    counts = counter.get_flop_counts()["Global"]
    return int(sum(v for op, v in counts.items() if "convolution" in str(op)) // 2)


def _dependent_conv_macs(analysis: Analysis) -> int:
    return sum(r.macs for r in analysis.dependent_layers if r.op.startswith("conv"))


@pytest.mark.parametrize(
    "name", [n if n in QUICK else pytest.param(n, marks=pytest.mark.slow) for n in MODELS]
)
def test_detection_model_analyses_exactly(name: str) -> None:
    model = _build(name)
    analysis = analyze(model, SIDE)
    params = sum(p.numel() for p in model.parameters())
    assert analysis.totals.params == params - sum(analysis.unused_params.values())
    assert analysis.unused_params == {}
    assert analysis.totals.conv_macs == _flop_counter_conv_macs(model)
    # Traced on real tensors because post-processing selects by value; the backbone is exact.
    run_ = analysis.real_run
    assert run_ is not None and run_["device"] == "cpu" and run_["detections"] is None
    assert analysis.data_dependent and analysis.dependent_layers
    assert not any(r.depends_on for r in analysis.layers if r.name.startswith("backbone."))
    dependent = _dependent_conv_macs(analysis)
    per_roi = PER_ROI.get(name)
    if per_roi is None:
        assert dependent == 0  # conv MACs depend on the input's shape alone
    else:
        assert dependent > 0 and dependent % per_roi == 0


@pytest.mark.slow
def test_declared_detections_fix_the_head_count() -> None:
    # Every selection keeps its first 7 candidates: 7 proposals reach Faster R-CNN v2's box
    # head whatever the random input selects.
    analysis = analyze(_build("fasterrcnn_resnet50_fpn_v2"), SIDE, detections=7)
    assert _dependent_conv_macs(analysis) == 7 * PER_ROI["fasterrcnn_resnet50_fpn_v2"]
    assert analysis.real_run is not None and analysis.real_run["detections"] == 7


class Gate(nn.Module):
    """A conv, then the values above 0.5 selected by a boolean mask, then a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).permute(0, 2, 3, 1).reshape(-1, 4)  # one row per pixel
        kept = y[y[:, 0] > 0.5]  # masked index: rows whose first channel passes
        out: torch.Tensor = self.fc(kept)
        return out


def test_masked_index_is_marked_and_its_consumers_depend_on_it() -> None:
    torch.manual_seed(0)
    model = Gate()
    analysis = analyze(model, 8)
    layers = {r.name: r for r in analysis.layers}
    # y[:, 0] is node getitem, y[mask] getitem:1
    assert analysis.data_dependent == {"getitem:1": "masked index"}
    assert layers["conv"].depends_on == "" and layers["fc"].depends_on == "getitem:1"
    assert analysis.graph.nodes["getitem:1"]["data_dependent"] == "masked index"
    # The linear layer's MACs are for the rows this input selects, as a real forward sees.
    torch.manual_seed(0)
    rows = int((model.conv(torch.rand(1, 3, 8, 8))[0, 0] > 0.5).sum())
    assert layers["fc"].macs == rows * 4 * 2


def test_a_constant_mask_is_not_data_dependent() -> None:
    class Fixed(nn.Module):
        keep: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("keep", torch.arange(48) % 2 == 0)  # every other value
            self.fc = nn.Linear(24, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.fc(x.flatten()[self.keep])
            return out

    # A boolean index cannot run on meta tensors, so this runs on real ones, but the mask is
    # a buffer: the sizes follow from the module, not from the input's values.
    analysis = analyze(Fixed(), inputs=(1, 3, 4, 4))
    assert analysis.real_run is not None
    assert analysis.data_dependent == {} and analysis.dependent_layers == ()
    assert analysis.totals.macs == 24 * 3


def test_declared_count_replaces_the_values() -> None:
    analysis = analyze(Gate(), 8, detections=5)  # 5 of the 64 rows, whatever passes
    assert {r.name: r.macs for r in analysis.layers}["fc"] == 5 * 4 * 2


def test_nms_is_a_data_dependent_selection() -> None:
    from torchvision.ops import nms

    class Boxes(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            boxes = torch.cat([x[0, 0, :, :2] * 8, x[0, 0, :, :2] * 8 + 4], dim=1)  # (n, 4)
            keep = nms(boxes, x[0, 0, :, 2], 0.3)
            out: torch.Tensor = boxes[keep]
            return out

    analysis = analyze(Boxes(), inputs=(1, 1, 16, 3))
    assert "nms" in analysis.data_dependent.values()
    assert analysis.layers[-1].depends_on == "nms"


def test_meta_module_that_needs_values_says_to_build_it_on_cpu() -> None:
    with torch.device("meta"):
        model = Gate()
    with pytest.raises(UsageError, match=r"weights are on the meta device: build it on cpu"):
        trace_module(model, (1, 3, 8, 8))


@pytest.mark.parametrize("bad", [0, -3, True, 2.5])
def test_detections_must_be_a_count(bad: object) -> None:
    with pytest.raises(UsageError, match=r"detections must be a whole number >= 1"):
        analyze(Gate(), 8, detections=bad)  # type: ignore[arg-type]


GATE_PY = """
import torch
from torch import nn


class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        y = self.conv(x).permute(0, 2, 3, 1).reshape(-1, 4)
        return self.fc(y[y[:, 0] > 0.5])


def make():
    return Gate()
"""


@pytest.fixture
def gate_py(tmp_path: Path) -> Path:
    path = tmp_path / "gate.py"
    path.write_text(GATE_PY)
    return path


def test_cio_notes_the_real_run_and_marks_layers_in_json(
    capsys: pytest.CaptureFixture[str], gate_py: Path
) -> None:
    code, out, err = run(
        capsys, "cio", f"{gate_py}:make", "--input", "8", "--detections", "3", "--format", "json"
    )
    assert code == 0
    document = json.loads(out)
    assert document["real_run"]["detections"] == 3
    assert document["data_dependent"] == {"getitem:1": "masked index"}
    fc = next(layer for layer in document["layers"] if layer["name"] == "fc")
    assert fc["depends_on"] == "getitem:1" and fc["macs"] == 3 * 4 * 2
    (note,) = [line for line in err.splitlines() if "traced on real tensors" in line]
    assert note.startswith("hda: note: ") and "kept its first 3 candidates" in note


@pytest.mark.parametrize(
    ("model", "extra", "message"),
    [
        ("{gate}:make", ("--detections", "0"), "argument --detections: '0' must be >= 1"),
        ("{gate}:make", ("--detections", "x"), "argument --detections:"),
        ("hardnet68", ("--detections", "5"), "--detections applies only with a module"),
    ],
)
def test_bad_detections_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str],
    gate_py: Path,
    model: str,
    extra: tuple[str, ...],
    message: str,
) -> None:
    code, _, err = run(capsys, "cio", model.format(gate=gate_py), *extra)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_compare_notes_the_real_run(capsys: pytest.CaptureFixture[str], gate_py: Path) -> None:
    code, out, err = run(capsys, "compare", f"{gate_py}:make", "--input", "8", "--format", "json")
    assert code == 0 and json.loads(out)["models"][0]["params"] == 3 * 4 + 4 + 4 * 2 + 2
    assert "hda: note: traced on real tensors" in err and "masked index" in err
