"""Weights files in the layouts users have load through `create_model(..., weights=path)`.

Each file is written from a real module in one layout (DataParallel-prefixed inside a
``.pth.tar`` training checkpoint, legacy torchvision DenseNet keys, no ``num_batches_tracked``,
each wrapper key); the loaded model must compute what the source module computes.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, cast

import pytest
import torch
from torch import nn

from hardnet_analysis import create_model
from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.condensenet import CondenseNetDef
from hardnet_analysis.families.densenet import DenseNetDef
from hardnet_analysis.families.registry import NetworkDef
from hardnet_analysis.models.checkpoints import (
    WRAPPER_KEYS,
    LoadedWeights,
    rename_legacy_dense,
    strip_wrapper_prefixes,
)
from hardnet_analysis.models.factory import load_weights
from tests.trainkit import tiny_hardnet

FACTORY_LOGGER = "hardnet_analysis.models.factory"


def tiny_densenet() -> DenseNetDef:
    return DenseNetDef("t", 4, (2, 2), 8, stem="cifar", num_classes=5)


def tiny_condensenet() -> CondenseNetDef:
    return CondenseNetDef("t", (2, 2), (4, 8), stem_stride=1, num_classes=5, converted=True)


TINY: dict[str, NetworkDef] = {
    "densenet": tiny_densenet(),
    "condensenet": tiny_condensenet(),
    "hardnet": tiny_hardnet(classes=5),
}


def source_module(defn: NetworkDef | str, seed: int = 1) -> nn.Module:
    """`create_model(defn)` with BatchNorm statistics drawn at random (a fresh model's 0/1 would
    not show whether they were loaded) and ``num_batches_tracked`` at 7."""
    torch.manual_seed(seed)
    module = create_model(defn)
    randomize_batchnorm(module, seed)
    return module


def randomize_batchnorm(module: nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for sub in module.modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            assert sub.running_mean is not None and sub.running_var is not None
            with torch.no_grad():
                sub.weight.copy_(torch.rand(sub.weight.shape, generator=gen) + 0.5)
                sub.bias.copy_(torch.randn(sub.bias.shape, generator=gen) * 0.1)
                sub.running_mean.copy_(torch.randn(sub.running_mean.shape, generator=gen) * 0.1)
                sub.running_var.copy_(torch.rand(sub.running_var.shape, generator=gen) + 0.5)
            sub.num_batches_tracked = torch.tensor(7)


def assert_same_outputs(source: nn.Module, loaded: nn.Module, size: int = 32) -> None:
    """Both modules in eval mode compute the same on a random batch."""
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x), source.eval()(x))


def load_logged(
    defn: NetworkDef | str, path: Path, caplog: pytest.LogCaptureFixture
) -> tuple[nn.Module, str]:
    """`create_model(defn, weights=path)` and the one line it logged about the file."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=FACTORY_LOGGER):
        model = create_model(defn, weights=path)
    lines = [r.getMessage() for r in caplog.records if r.name == FACTORY_LOGGER]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    return model, lines[0]


def report(defn: NetworkDef | str, path: Path) -> LoadedWeights:
    return load_weights(create_model(defn), path)


def legacy_dense_keys(state: dict[str, Any]) -> OrderedDict[str, Any]:
    """`state` with torchvision's pre-0.3 DenseNet names (``norm1`` -> ``norm.1``, etc.): the
    inverse of the renaming `load_weights` does."""
    legacy = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.")
    return OrderedDict((legacy.sub(r"\1.\2.", k), v) for k, v in state.items())


@pytest.mark.parametrize("family", ["condensenet", "hardnet"])
def test_dataparallel_checkpoint_pth_tar(
    family: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The official CondenseNet main.py layout: DataParallel keys inside a training checkpoint.
    source = source_module(TINY[family])
    state = nn.DataParallel(source).state_dict()
    assert all(k.startswith("module.") for k in state)
    path = tmp_path / "converted_condensenet_t.pth.tar"
    torch.save({"state_dict": state, "epoch": 3, "arch": family, "best_prec1": 71.5}, path)
    model, line = load_logged(TINY[family], path, caplog)
    assert_same_outputs(source, model)
    assert "['state_dict']" in line and "prefix 'module.' stripped" in line
    loaded = report(TINY[family], path)
    assert (loaded.wrapper, loaded.stripped_prefix) == (("state_dict",), "module.")
    assert (loaded.legacy_renamed, loaded.batches_tracked_filled) == (0, 0)


def test_legacy_torchvision_densenet_keys(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = source_module(TINY["densenet"])
    legacy = legacy_dense_keys(source.state_dict())
    renamed = sum(1 for k in legacy if k not in source.state_dict())
    assert renamed > 0 and any(".norm.1." in k for k in legacy)
    path = tmp_path / "densenet-t.pth"
    torch.save(legacy, path)
    model, line = load_logged(TINY["densenet"], path, caplog)
    assert_same_outputs(source, model)
    assert f"{renamed} legacy DenseNet keys renamed" in line
    assert report(TINY["densenet"], path).legacy_renamed == renamed


def test_legacy_keys_from_torchvision_densenet121(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The released torchvision files are torchvision's own module saved under the legacy names.
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(2)
    reference = torchvision.models.densenet121()
    randomize_batchnorm(reference, 2)
    path = tmp_path / "densenet121-a639ec97.pth"
    torch.save(legacy_dense_keys(reference.state_dict()), path)
    model, line = load_logged("densenet121", path, caplog)
    assert_same_outputs(reference, model, size=64)
    assert "legacy DenseNet keys renamed" in line


@pytest.mark.parametrize("keep_metadata", [True, False], ids=["metadata", "plain-dict"])
def test_without_num_batches_tracked(
    keep_metadata: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = source_module(TINY["hardnet"])
    state = source.state_dict()
    absent = [k for k in state if k.endswith(".num_batches_tracked")]
    if keep_metadata:
        # The saved module versions say "has the buffer": torch's strict load alone refuses this.
        for key in absent:
            del state[key]
    else:
        state = OrderedDict((k, v) for k, v in state.items() if k not in absent)
    path = tmp_path / "old.pth"
    torch.save(state, path)
    model, line = load_logged(TINY["hardnet"], path, caplog)
    assert_same_outputs(source, model)
    assert f"{len(absent)} absent num_batches_tracked" in line
    assert all(int(model.state_dict()[k]) == 0 for k in absent)


def nest(state: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    for key in reversed(keys):
        state = {key: state, "epoch": 3}
    return state


@pytest.mark.parametrize(
    "keys", [(k,) for k in WRAPPER_KEYS] + [("model", "state_dict")], ids="/".join
)
def test_wrapper_keys(
    keys: tuple[str, ...], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = source_module(TINY["densenet"])
    path = tmp_path / "checkpoint.pth"
    torch.save(nest(source.state_dict(), keys), path)
    model, line = load_logged(TINY["densenet"], path, caplog)
    assert_same_outputs(source, model)
    where = "".join(f"[{k!r}]" for k in keys)
    assert f"weights under {where}" in line
    assert report(TINY["densenet"], path).wrapper == keys


def test_timm_checkpoint_prefers_trained_weights_and_names_ema(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trained, ema = source_module(TINY["densenet"], 1), source_module(TINY["densenet"], 2)
    path = tmp_path / "model_best.pth.tar"
    checkpoint = {"epoch": 3, "arch": "t", "state_dict": trained.state_dict()}
    torch.save({**checkpoint, "state_dict_ema": ema.state_dict()}, path)
    model, line = load_logged(TINY["densenet"], path, caplog)
    assert_same_outputs(trained, model)
    assert "['state_dict'] (also holds 'state_dict_ema')" in line


def test_all_layouts_at_once(tmp_path: Path) -> None:
    source = source_module(TINY["densenet"])
    state = legacy_dense_keys(nn.DataParallel(source).state_dict())
    state = OrderedDict((k, v) for k, v in state.items() if "num_batches_tracked" not in k)
    path = tmp_path / "everything.pth.tar"
    torch.save({"model": state}, path)
    model = create_model(TINY["densenet"])
    loaded = load_weights(model, path)
    assert_same_outputs(source, model)
    assert loaded.wrapper == ("model",) and loaded.stripped_prefix == "module."
    assert loaded.legacy_renamed > 0 and loaded.batches_tracked_filled > 0


def test_plain_state_dict_description(tmp_path: Path) -> None:
    path = tmp_path / "plain.pth"
    torch.save(source_module(TINY["hardnet"]).state_dict(), path)
    loaded = report(TINY["hardnet"], path)
    assert loaded == LoadedWeights(path)
    assert str(loaded) == f"loaded weights file {str(path)!r}: a plain state dict"


def test_mismatched_file_refused_with_keys(tmp_path: Path) -> None:
    path = tmp_path / "densenet.pth.tar"
    state = nn.DataParallel(source_module(TINY["densenet"])).state_dict()
    torch.save({"state_dict": state, "epoch": 3}, path)
    with pytest.raises(UsageError) as info:
        create_model(TINY["condensenet"], weights=path)
    message = str(info.value)
    assert "\n" not in message
    assert "does not fit the model; missing: features.init_conv.weight" in message
    assert "unexpected: features.conv0.weight" in message  # keys as compared: prefix stripped
    assert "(weights under ['state_dict'], prefix 'module.' stripped)" in message
    assert "num_batches_tracked" not in message


def test_other_class_count_refused_as_shape_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "five.pth"
    torch.save(source_module(TINY["densenet"]).state_dict(), path)
    seven = DenseNetDef("t", 4, (2, 2), 8, stem="cifar", num_classes=7)
    with pytest.raises(UsageError, match=r"shape mismatch: classifier\.weight \(5, \d+\) vs \(7,"):
        create_model(seven, weights=path)


def test_corrupt_files_refused_without_weights_only_advice(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    whole = tmp_path / "whole-module.pth"
    torch.save(nn.Sequential(nn.Conv2d(3, 3, 1)), whole)  # a pickled module, not a state dict
    truncated = tmp_path / "truncated.pth"
    torch.save(source_module(TINY["hardnet"]).state_dict(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:1000])
    for path in (garbage, whole, truncated):
        with pytest.raises(UsageError) as info:
            create_model(TINY["hardnet"], weights=path)
        message = str(info.value)
        assert "cannot be read as a checkpoint: " in message, message
        assert "weights_only" not in message and "\n" not in message, message
    with pytest.raises(UsageError, match=r"Unsupported global: GLOBAL torch\.nn\.modules"):
        create_model(TINY["hardnet"], weights=whole)


def test_not_a_state_dict_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save({"state_dict": [torch.zeros(1)], "epoch": 3}, path)
    with pytest.raises(
        UsageError, match=r"holds a list under \['state_dict'\], not a state dict \(nor one under"
    ):
        create_model(TINY["hardnet"], weights=path)
    torch.save({"epoch": 3, "top1": 0.5}, path)
    with pytest.raises(UsageError, match=r"holds a dict without tensors \(keys: epoch, top1\)"):
        create_model(TINY["hardnet"], weights=path)
    torch.save(torch.zeros(3), path)
    with pytest.raises(UsageError, match="holds a Tensor, not a state dict"):
        create_model(TINY["hardnet"], weights=path)


def test_legacy_names_renamed_only_where_the_model_expects_the_new_name() -> None:
    t = torch.zeros(1)
    expected = {"denselayer1.norm1.weight": t, "denselayer2.norm.1.weight": t}
    state = {"denselayer1.norm.1.weight": t, "denselayer2.norm.1.weight": t, "x.norm.1.bias": t}
    assert rename_legacy_dense(state, expected) == 1
    assert set(state) == {"denselayer1.norm1.weight", "denselayer2.norm.1.weight", "x.norm.1.bias"}
    # Never over a key the file holds already.
    both = {"denselayer1.norm.1.weight": t, "denselayer1.norm1.weight": t}
    assert rename_legacy_dense(both, expected) == 0


def test_prefix_stripped_only_from_every_key_and_not_from_the_models_own() -> None:
    t = torch.zeros(1)
    partial = {"module.a": t, "b": t}
    assert strip_wrapper_prefixes(partial, {"a": t, "b": t}) == "" and set(partial) == {
        "module.a",
        "b",
    }
    own = {"module.a": t}
    assert strip_wrapper_prefixes(own, {"module.a": t}) == "" and set(own) == {"module.a"}
    twice = {"module.module.a": t}
    assert strip_wrapper_prefixes(twice, {"a": t}) == "module.module." and set(twice) == {"a"}


def test_compile_and_parallel_prefixes_are_stripped_in_any_nesting() -> None:
    t = torch.zeros(1)
    compiled = {"_orig_mod.a": t, "_orig_mod.b.c": t}
    assert strip_wrapper_prefixes(compiled, {"a": t, "b.c": t}) == "_orig_mod."
    assert set(compiled) == {"a", "b.c"}
    nested = {"_orig_mod.module.a": t}
    assert strip_wrapper_prefixes(nested, {"a": t}) == "_orig_mod.module." and set(nested) == {"a"}


def test_weights_saved_from_a_compiled_module_load_plain_and_compiled(tmp_path: Path) -> None:
    """The issue's failure: a checkpoint of a `torch.compile` d HarDNet (`_orig_mod.` in every
    key) did not load with weights= ("missing: base.0.conv.weight, ... (372 in all)")."""
    torch.manual_seed(0)
    trained = create_model("hardnet39ds")
    path = tmp_path / "compiled.pt"
    torch.save(cast(nn.Module, torch.compile(trained)).state_dict(), path)
    assert all(k.startswith("_orig_mod.") for k in torch.load(path, weights_only=True))
    plain = create_model("hardnet39ds", weights=path)
    for mine, theirs in zip(
        plain.state_dict().values(), trained.state_dict().values(), strict=True
    ):
        assert torch.equal(mine, theirs)
    again = cast(nn.Module, torch.compile(create_model("hardnet39ds")))
    loaded = load_weights(again, path)
    assert loaded.stripped_prefix == "_orig_mod."
    first = "base.0.conv.weight"
    assert torch.equal(again.state_dict()[f"_orig_mod.{first}"], trained.state_dict()[first])
