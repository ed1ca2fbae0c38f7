"""Models from the wild: one minimal reproducer per class of model that used to crash or
miscount, each checked against an independent computation (``sum(p.numel())``,
``torch.utils.flop_counter.FlopCounterMode`` / 2, hooks counting conv input and output
elements on a real forward, or a formula from the layer's hyper-parameters)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hardnet_analysis import analyze
from hardnet_analysis.errors import UsageError
from hardnet_analysis.metrics.handlers import Cost


def flop_macs(model: nn.Module, x: torch.Tensor) -> int:
    """MACs as torch's own FLOP counter sees them (FLOPs / 2) on a real forward."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(x)
    return int(counter.get_total_flops() // 2)


def conv_cio(model: nn.Module, x: torch.Tensor) -> int:
    """Elements of every F.conv2d call's input and output on a real forward (a function-level
    hook, so convs with buffer or computed weights count too)."""
    total = 0
    original = F.conv2d

    def counting(inp: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        nonlocal total
        out = original(inp, *args, **kwargs)
        total += inp.numel() + out.numel()
        return out

    F.conv2d = counting  # type: ignore[assignment]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        F.conv2d = original
    return total


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class PositionalConv(nn.Module):
    """A 1x1 conv on an arange/meshgrid coordinate grid, added to a conv of the input."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 8, 3, padding=1)
        self.pos = nn.Conv2d(2, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ys, xs = torch.meshgrid(
            torch.arange(h, dtype=x.dtype, device=x.device),
            torch.arange(w, dtype=x.dtype, device=x.device),
            indexing="ij",
        )
        out: torch.Tensor = self.body(x) + self.pos(torch.stack([ys, xs])[None])
        return out


class Blur(nn.Module):
    """A fixed anti-aliasing kernel held as a buffer, then a learned 1x1 conv."""

    kernel: torch.Tensor
    basis: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", torch.ones(3, 1, 3, 3) / 9)
        self.dct = nn.Linear(4, 4)
        self.register_buffer("basis", torch.eye(4))
        self.proj = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.kernel, padding=1, groups=3)
        y = self.proj(x).mean((2, 3))
        out: torch.Tensor = F.linear(y, self.basis) + self.dct(y)
        return out


class CondConv(nn.Module):
    """CondConv: per-sample routing over a bank of expert kernels, mixed into one conv weight."""

    def __init__(self, experts: int = 4) -> None:
        super().__init__()
        self.routing = nn.Linear(3, experts)
        self.bank = nn.Parameter(torch.randn(experts, 8 * 3 * 3 * 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.routing(x.mean((2, 3))))  # (1, experts)
        kernel = (weights @ self.bank).reshape(8, 3, 3, 3)
        return F.conv2d(x, kernel, padding=1)


class Rotary(nn.Module):
    """Rotary frequencies from a buffer and positions: a product of constants only."""

    inv_freq: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("inv_freq", torch.rand(1, 16))
        self.head = nn.Linear(3, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(10, dtype=x.dtype, device=x.device)[:, None]
        angles = positions @ self.inv_freq  # (10, 16): 160 MACs on constants
        out: torch.Tensor = self.head(x.mean((2, 3))) + angles.cos().sum(0)
        return out


class UnevenSplit(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(2, 4, 1)
        self.b = nn.Conv2d(6, 4, 3, padding=1)
        self.stem = nn.Conv2d(3, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        small, large = torch.split(self.stem(x), [2, 6], 1)
        out: torch.Tensor = self.a(small) + self.b(large)
        return out


@pytest.mark.parametrize(
    "model", [PositionalConv(), Blur(), CondConv(), Rotary(), UnevenSplit()], ids=type
)
def test_counts_equal_independent_counters(model: nn.Module) -> None:
    x = torch.randn(1, 3, 12, 10)
    analysis = analyze(model, (12, 10))
    assert analysis.unhandled == ()
    # Params are nn.Parameter tensors only, each counted once: no buffer (Blur's kernel and
    # basis), no computed weight (CondConv's mixed kernel, which used to add 20%).
    assert analysis.totals.params == params(model)
    assert analysis.totals.macs == flop_macs(model, x)
    assert analysis.totals.cio == conv_cio(model, x)


def test_conv_on_a_grid_used_to_crash() -> None:
    # analyze() raised IndexError in handlers.conv: the grid had no node.
    layers = {r.name: r for r in analyze(PositionalConv(), 8).layers}
    assert layers["pos"].in_shapes == ((1, 2, 8, 8),)
    assert layers["pos"].macs == 8 * 8 * 8 * 2


def test_ops_on_constants_do_not_vanish() -> None:
    layers = analyze(Rotary(), 8).layers
    (product,) = [r for r in layers if r.op == "matmul"]
    assert product.macs == 10 * 16 and product.in_shapes == ((10, 1), (1, 16))
    assert {r.name for r in layers if r.op == "constant"} == {"constant", "inv_freq"}


def test_uneven_split_gives_each_consumer_its_piece() -> None:
    layers = {r.name: r for r in analyze(UnevenSplit(), 8).layers}
    assert layers["a"].in_shapes == ((1, 2, 8, 8),)
    assert layers["b"].in_shapes == ((1, 6, 8, 8),)


def _recurrent_macs(rnn: nn.RNNBase, steps: int, sequences: int) -> int:
    """From the hyper-parameters: per layer and direction, gates * hidden * (input + hidden)
    MACs a step (plus the projection for an LSTM with proj_size)."""
    gates = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}[rnn.mode]
    hidden, out = rnn.hidden_size, rnn.proj_size or rnn.hidden_size
    dirs = 2 if rnn.bidirectional else 1
    total = 0
    for layer in range(rnn.num_layers):
        inp = rnn.input_size if layer == 0 else out * dirs
        total += dirs * (gates * hidden * (inp + out) + hidden * out * (rnn.proj_size > 0))
    return total * steps * sequences


@pytest.mark.parametrize(
    "rnn",
    [
        nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True),
        nn.GRU(3, 6, batch_first=True),
        nn.RNN(3, 4, num_layers=3, batch_first=True, nonlinearity="relu"),
        nn.LSTM(3, 8, proj_size=4, batch_first=True),
    ],
    ids=lambda m: type(m).__name__,
)
def test_recurrent_layers_are_costed(rnn: nn.RNNBase) -> None:
    class Mixer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = rnn

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.rnn(x.flatten(2).transpose(1, 2))[0]
            return out

    analysis = analyze(Mixer(), (4, 5), batch=2)
    assert analysis.unhandled == ()
    assert analysis.totals.macs == _recurrent_macs(rnn, steps=20, sequences=2)
    assert analysis.totals.params == params(rnn)


def test_a_handler_that_breaks_is_a_one_line_error() -> None:
    def broken(node: Any) -> Cost:
        raise KeyError("kernel")

    with pytest.raises(UsageError, match=r"cannot cost node 'body' \(op conv\): KeyError"):
        analyze(PositionalConv(), 8, handlers={"conv": broken})


def test_hda_cio_on_a_grid_conv_model_exits_0(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from hardnet_analysis.cli.main import main

    source = tmp_path / "net.py"
    source.write_text("from tests.test_fidelity import PositionalConv as make\n")
    assert main(["cio", f"{source}:make", "--input", "8", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["totals"]["cio"] == conv_cio(PositionalConv(), torch.randn(1, 3, 8, 8))
