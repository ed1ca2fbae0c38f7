"""DenseNet-BC: torchvision-compatible state dicts, published figures, analytic == traced ==
hooks, and the memory-efficient (checkpointed) path equal to the standard one."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hardnet_analysis import analyze, create_model
from hardnet_analysis.errors import ShapeError, UsageError
from hardnet_analysis.families import get_definition, list_models
from hardnet_analysis.families.densenet.definition import DenseNetDef, densenet_bc_100_k12
from hardnet_analysis.families.densenet.model import DenseNet
from hardnet_analysis.families.serialize import from_dict, to_dict
from tests.family_strategies import densenets
from tests.hookcount import hook_count

IMAGENET = ["densenet121", "densenet161", "densenet169", "densenet201"]


def test_zoo_is_registered() -> None:
    assert set(list_models(family="densenet")) == {*IMAGENET, "densenet_bc_100_k12"}


@pytest.mark.parametrize("name", IMAGENET)
def test_state_dict_equals_torchvision(name: str) -> None:
    with torch.device("meta"):
        ours = create_model(name).state_dict()
        theirs = torchvision.models.get_model(name).state_dict()
    assert list(ours) == list(theirs)
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


@pytest.mark.parametrize("name", IMAGENET)
def test_params_and_macs_match_torchvision_metadata(name: str) -> None:
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    totals = analyze(name).totals
    assert totals.params == meta["num_params"]
    # torchvision's "_ops" are GMACs (convs and linear) rounded to 3 decimals.
    assert abs(totals.macs / 1e9 - meta["_ops"]) <= 0.0005


def test_analytic_graph_matches_torchvision_trace() -> None:
    # Independent module code: only the head's node names differ (torchvision runs its ReLU,
    # pool and flatten as functions of the root module).
    with torch.device("meta"):
        theirs = analyze(torchvision.models.densenet121(), (161, 161)).layers
    ours = analyze("densenet121", (161, 161)).layers

    def key(r: object) -> tuple[object, ...]:
        return tuple(getattr(r, f) for f in ("op", "in_shapes", "out_shape", "params", "macs"))

    assert [key(r) for r in theirs] == [key(r) for r in ours]
    assert [r.cio for r in theirs] == [r.cio for r in ours]


def test_cifar_densenet_bc_100_params() -> None:
    defn = densenet_bc_100_k12(10)
    assert defn.block_config == (16, 16, 16) and defn.init_channels == 24
    model = create_model(defn)
    params = analyze(defn, 32).totals.params
    assert params == sum(p.numel() for p in model.parameters()) == 769_162
    # Published (DenseNet paper, CIFAR-10): 0.8 M, rounded to one decimal.
    assert abs(params - 0.8e6) < 0.05e6
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_widths_by_hand() -> None:
    defn = get_definition("densenet121")
    assert isinstance(defn, DenseNetDef)
    # 64 + 6*32 = 256 -> 128; 128 + 12*32 = 512 -> 256; 256 + 24*32 = 1024 -> 512; + 16*32.
    assert defn.block_in_channels() == (64, 128, 256, 512)
    assert defn.out_channels == 1024


@settings(max_examples=12)
@given(defn=densenets(), size=st.integers(5, 40), batch=st.integers(1, 2))
def test_random_densenets_analytic_traced_hooks(defn: DenseNetDef, size: int, batch: int) -> None:
    try:
        analytic = analyze(defn, (size, size + 3), batch=batch)
    except ShapeError:
        assume(False)
        raise
    model = create_model(defn).eval()
    assert analyze(model, (size, size + 3), batch=batch).layers == analytic.layers
    x = torch.randn(batch, 3, size, size + 3)
    counted = hook_count(model, x)
    assert (analytic.totals.macs, analytic.totals.cio) == (counted.macs, counted.cio)
    assert analytic.totals.params == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        assert tuple(model(x).shape) == analytic.output_shape


def _run(model: DenseNet, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    x = x.clone().requires_grad_(True)
    out = model(x)
    (out * torch.linspace(-1, 1, out.shape[1])).sum().backward()
    assert x.grad is not None
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.detach(), {"input": x.grad, **grads, **dict(model.named_buffers())}


def test_memory_efficient_gives_the_same_outputs_gradients_and_statistics() -> None:
    defn = DenseNetDef("small", 6, (3, 2), 8, stem="cifar", num_classes=5)
    torch.manual_seed(0)
    standard = DenseNet(defn).train()
    efficient = DenseNet(defn, memory_efficient=True).train()
    efficient.load_state_dict(standard.state_dict())
    x = torch.randn(4, 3, 12, 12)
    out_a, grads_a = _run(standard, x)
    out_b, grads_b = _run(efficient, x)
    torch.testing.assert_close(out_b, out_a)
    assert grads_a.keys() == grads_b.keys()
    for key, value in grads_a.items():
        torch.testing.assert_close(grads_b[key], value, msg=key)
    efficient.hda_set_memory_efficient(False)
    assert not any(getattr(m, "memory_efficient", False) for m in efficient.modules())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"growth_rate": 0}, "growth_rate must be >= 1"),
        ({"block_config": ()}, "block_config needs at least one block"),
        ({"compression": 0.0}, r"compression must be in \(0, 1\]"),
        ({"drop_rate": 1.0}, r"drop_rate must be in \[0, 1\)"),
    ],
)
def test_bad_definitions(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"growth_rate": 4, "block_config": (2,), "init_channels": 8}
    with pytest.raises(UsageError, match=message):
        DenseNetDef("bad", **{**args, **kwargs})  # type: ignore[arg-type]


@given(densenets())
def test_json_round_trip(defn: DenseNetDef) -> None:
    assert from_dict(json.loads(json.dumps(to_dict(defn)))) == defn
