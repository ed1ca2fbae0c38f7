"""Ops that read subnormal floats are found, with the module that called them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hardnet_analysis.cli.main import main
from hardnet_analysis.documents.profile_run import ProfileRun, SubnormalInputs
from hardnet_analysis.profiler.subnormals import subnormal_inputs, subnormal_warning


class MaskedAttention(nn.Module):
    """Softmax over logits masked with -100 on half the keys (as a shifted window masks the
    tokens of other regions), then the probabilities times the values."""

    def forward(self, logits: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros_like(logits)
        mask[..., logits.shape[-1] // 2 :] = -100.0
        return torch.bmm((logits + mask).softmax(-1), values)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = MaskedAttention()
        self.proj = nn.Linear(8, 8)

    def forward(self, logits: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.proj(self.attn(logits, values))
        return out


def test_the_masked_probabilities_are_counted_where_the_matmul_reads_them() -> None:
    torch.manual_seed(0)
    logits, values = torch.randn(4, 16, 16), torch.rand(4, 16, 8)
    net = Net().eval()
    found = subnormal_inputs(net, lambda: net(logits, values))
    # independently: the probabilities in float64 numpy, cast to fp32 as torch computes them
    x = logits.double().numpy() + np.where(np.arange(16) >= 8, -100.0, 0.0)
    probs = np.exp(x - x.max(-1, keepdims=True))
    probs = (probs / probs.sum(-1, keepdims=True)).astype(np.float32)
    tiny = np.finfo(np.float32).tiny
    expected = ((probs > 0) & (probs < tiny)).sum() / (probs.size + values.numel())
    assert expected > 0.2  # half the keys at about exp(-100): most are subnormal
    bmm = [s for s in found if s.op == "bmm"]
    assert [(s.module, s.calls) for s in bmm] == [("attn", 1)]
    assert bmm[0].share == pytest.approx(expected, abs=0.01)
    assert found[0].share >= bmm[0].share  # the highest share first
    assert all(s.module in ("attn", "proj") for s in found)  # nothing outside the two modules
    # the hooks are gone and the output is the un-counted one
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())
    message = subnormal_warning(found)
    assert message is not None and "attn bmm" in message


def test_a_conv_net_on_random_data_reads_none() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).eval()
    x = torch.rand(1, 3, 16, 16)
    assert subnormal_inputs(net, lambda: net(x)) == ()
    assert subnormal_warning(()) is None


def test_profile_records_swin_ts_subnormal_attention(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Swin-T at 112: the shifted windows of its first two stages mask with -100."""
    argv = ["profile", "swin_t", "--input", "112", "--repeat", "1", "--warmup", "0"]
    argv += ["--threads", "1", "--counters", "none", "--out", str(tmp_path)]
    assert main(argv) == 0
    (path,) = tmp_path.glob("*.json")
    found = json.loads(path.read_text())["subnormals"]
    attention = [s for s in found if s["module"].endswith(".attn") and s["op"] == "matmul"]
    assert attention and all(0 < s["share"] < 1 for s in attention)
    assert (ProfileRun.read(path).subnormals or ())[0] == SubnormalInputs(**found[0])  # read back
    assert "ops read subnormal floats" in capsys.readouterr().err
