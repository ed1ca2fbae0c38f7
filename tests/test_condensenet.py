"""CondenseNet: published figures, analytic == traced == hooks for the training-time and the
converted models, condensing stages, the group lasso, and conversion equal to the masked model."""

from __future__ import annotations

import json
from math import prod

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from hardnet_analysis import analyze
from hardnet_analysis.errors import ShapeError, UsageError
from hardnet_analysis.families import get_definition, list_models
from hardnet_analysis.families.condensenet.definition import PUBLISHED, CondenseNetDef
from hardnet_analysis.families.condensenet.model import CondenseNet, LearnedGroupConv, MaskedLinear
from hardnet_analysis.families.serialize import from_dict, to_dict
from hardnet_analysis.metrics.analysis import Analysis
from tests.family_strategies import condensenets
from tests.hookcount import hook_count

# name -> (input size, classes); the CIFAR model is measured as published, on CIFAR-10.
ZOO = {
    "condensenet74_c4_g4": (224, 1000),
    "condensenet74_c8_g8": (224, 1000),
    "condensenet86": (32, 10),
}


def official_flops(analysis: Analysis) -> int:
    """The official CondenseNet counter (``measure_model``), written out independently from the
    layer records: conv multiply-adds, one op per ReLU output element, kernel-area ops per
    average-pool output element (the global pool: its input elements), and linear
    multiply-adds plus biases. BN, concat, index-select and shuffle count nothing."""
    total = 0
    for r in analysis.layers:
        if r.op == "conv":
            total += r.macs
        elif r.op == "activation":
            total += prod(r.out_shape)
        elif r.op == "avg_pool":
            total += 4 * prod(r.out_shape)
        elif r.op == "adaptive_avg_pool":
            total += prod(r.in_shapes[0])
        elif r.op == "linear":
            total += r.macs + r.out_shape[-1]
    return total


def test_zoo_is_registered() -> None:
    expected = {*ZOO, *(f"{n}_converted" for n in ZOO)}
    assert set(list_models(family="condensenet")) == expected


@pytest.mark.parametrize("name", sorted(ZOO))
def test_converted_models_match_published_params_and_flops(name: str) -> None:
    size, classes = ZOO[name]
    analysis = analyze(get_definition(f"{name}_converted", classes), size)
    published = PUBLISHED[name]
    # Published to 2-3 significant digits: 4.8 M / 529 M, 2.9 M / 274 M, 0.52 M / 65.8 M. The
    # official counter on the converted model reproduces them (529.3 M, 274.2 M, 65.81 M);
    # conv + linear MACs alone are 516.6 M, 261.5 M and 62.4 M.
    params_digit = 0.01e6 if name == "condensenet86" else 0.1e6
    flops_digit = 0.1e6 if name == "condensenet86" else 1e6
    assert abs(analysis.totals.params - published["params"]) <= params_digit / 2
    assert abs(official_flops(analysis) - published["macs"]) <= flops_digit / 2


def test_converted_widths_follow_c_and_g() -> None:
    defn = get_definition("condensenet86_converted", 10)
    assert isinstance(defn, CondenseNetDef)
    layer = analyze(defn, 32).graph.nodes["features.denseblock_1.denselayer_2.conv_1.conv"]
    # Input 16 + 8 = 24 channels, each of G=4 groups keeps 24 / C=4 = 6: a 24 -> 32 conv in 4
    # groups, 32 * 6 = 192 weights instead of the training-time 32 * 24 = 768.
    assert (layer["in_channels"], layer["out_channels"], layer["groups"]) == (24, 32, 4)
    wide = CondenseNetDef("c2g4", (2,), (8,), condense_factor=2, groups_1x1=4, converted=True)
    assert wide.kept_in_channels(24) == 48  # each group keeps half: 4 * 12


def _tiny() -> CondenseNetDef:
    return CondenseNetDef("tiny", (2, 2), (4, 8), stem_stride=1, num_classes=5, group_lasso=1e-3)


def test_trains_through_all_condensing_stages_and_converts_exactly() -> None:
    torch.manual_seed(0)
    defn = _tiny()
    model = CondenseNet(defn).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.randn(8, 3, 12, 12), torch.randint(0, 5, (8,))
    steps, stages = 12, []
    for step in range(steps):
        model.hda_set_progress(step / steps)
        stages.append(int(model.learned_group_convs()[0].stage))
        regulariser = model.hda_regularization()
        assert (regulariser > 0) == (stages[-1] < 3)
        loss: torch.Tensor = nn.functional.cross_entropy(model(x), y) + regulariser
        opt.zero_grad()
        torch.autograd.backward(loss)
        opt.step()
    # C = 4: 3 condensing stages in the first half of training (progress 1/6, 2/6, 3/6).
    assert stages == [0, 0, 1, 1, 2, 2, 3, 3, 3, 3, 3, 3]
    for lgc in model.learned_group_convs():
        kept = lgc.conv.mask.sum(1)
        assert torch.equal(kept, torch.full_like(kept, lgc.conv.in_channels // 4))
    model.eval()
    converted = model.hda_convert().eval()
    probe = torch.randn(3, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(converted(probe), model(probe), rtol=1e-5, atol=1e-5)
    params = sum(p.numel() for p in converted.parameters())
    assert params == analyze(defn.as_converted(), 12).totals.params


def _randomise(model: nn.Module) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_()
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)


@settings(max_examples=10)
@given(defn=condensenets(), size=st.integers(4, 20), batch=st.integers(1, 2))
def test_random_condensenets(defn: CondenseNetDef, size: int, batch: int) -> None:
    converted_defn = defn.as_converted()
    try:
        analytic = analyze(defn, size, batch=batch)
        analytic_converted = analyze(converted_defn, size, batch=batch)
    except ShapeError:
        assume(False)
        raise
    model = CondenseNet(defn)
    _randomise(model)
    model.hda_set_progress(1.0)
    model.eval()
    converted = model.hda_convert().eval()
    x = torch.randn(batch, 3, size, size)
    for m, a in ((model, analytic), (converted, analytic_converted)):
        assert analyze(m, size, batch=batch).layers == a.layers
        counted = hook_count(m, x)
        assert (a.totals.macs, a.totals.cio) == (counted.macs, counted.cio)
        assert a.totals.params == sum(p.numel() for p in m.parameters())
    with torch.no_grad():
        out = model(x)
        assert tuple(out.shape) == analytic.output_shape
        torch.testing.assert_close(converted(x), out, rtol=1e-4, atol=1e-4)


def test_condensing_keeps_the_heaviest_channels_per_group() -> None:
    defn = CondenseNetDef("one", (1,), (8,), condense_factor=2, groups_1x1=2, num_classes=2)
    lgc = CondenseNet(defn).learned_group_convs()[0]  # 16 -> 32, filters g, g+2, ...
    with torch.no_grad():
        weights = torch.arange(1.0, 17.0)  # input channel c weighs c + 1
        lgc.conv.weight.copy_(weights.repeat(32, 1)[:, :, None, None])
        lgc.conv.weight[0::2, :8] *= 100  # group 0 prefers channels 0-7
    lgc.condense_to(1)
    assert lgc.conv.mask[0].nonzero().flatten().tolist() == list(range(8))
    assert lgc.conv.mask[1].nonzero().flatten().tolist() == list(range(8, 16))
    lgc.condense_to(5)  # beyond the last stage: nothing more to drop
    assert int(lgc.conv.mask.sum()) == 16


def test_classifier_keeps_the_largest_l1_inputs() -> None:
    linear = MaskedLinear(6, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, -9, 0, 3, 0, 0], [0, 0, 1, -3, 8, 0]]))
    linear.prune(3)
    assert linear.mask.tolist() == [0, 1, 0, 1, 1, 0]


def test_misuse_is_a_clear_error() -> None:
    model = CondenseNet(_tiny())
    with pytest.raises(UsageError, match="has not finished condensing"):
        model.hda_convert()
    with pytest.raises(UsageError, match=r"progress must be in \[0, 1\]"):
        model.hda_set_progress(1.5)
    assert isinstance(model.learned_group_convs()[0], LearnedGroupConv)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"growth": (8, 8)}, "same number"),
        ({"growth": (6,)}, "input width 18 of stage 1 layer 2 is not divisible"),
        ({"groups_3x3": 3}, "not divisible by groups_1x1=4 and groups_3x3=3"),
        ({"classifier_keep": 0.0}, r"classifier_keep must be in \(0, 1\]"),
        ({"condense_factor": 0}, "condense_factor must be >= 1"),
    ],
)
def test_bad_definitions(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"stages": (3,), "growth": (8,)}
    with pytest.raises(UsageError, match=message):
        CondenseNetDef("bad", **{**args, **kwargs})  # type: ignore[arg-type]


@given(condensenets())
def test_json_round_trip(defn: CondenseNetDef) -> None:
    assert from_dict(json.loads(json.dumps(to_dict(defn)))) == defn
