"""Which kernel runs a conv (``metrics.conv_paths``): oneDNN's GEMM path for grouped convs whose
channels per group its JIT kernel does not take, as oneDNN's own verbose log shows it, the im2col
matrix such a conv also moves (checked against ``torch.nn.functional.unfold``), the device
model's kind for those convs in a real calibration, and an overhead paid once per group (ORT's
depthwise convs off NCHWc)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from hardnet_analysis.analysis import analyze
from hardnet_analysis.documents.device_model import DeviceModel
from hardnet_analysis.errors import UsageError
from hardnet_analysis.graph.traced import trace_module
from hardnet_analysis.metrics.analysis import measure_graph
from hardnet_analysis.metrics.conv_paths import (
    LOWERED_GROUPED,
    TORCH_NATIVE_LIMIT,
    ConvPaths,
    im2col_bytes,
    narrow_grouped,
    onednn_gemm_path,
    ort_kind,
    padded_depthwise,
    torch_kind,
    torch_native_path,
)
from hardnet_analysis.metrics.fit_device import Measurement, fit_device
from hardnet_analysis.metrics.op_kinds import op_kind
from hardnet_analysis.metrics.predict import layer_features, predict, runtime_features
from hardnet_analysis.profiler.onednn import (
    WIDTHS,
    _verbose_log,
    conv_impls,
    grouped_block,
    layout_block,
    native_limit,
    onednn_paths,
)


def _conv_attrs(
    c_in: int, c_out: int, groups: int, k: int = 3, side: int = 8, batch: int = 1, **kw: Any
) -> Any:
    conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, groups=groups, bias=False, **kw)
    graph = trace_module(conv, (batch, c_in, side, side), "conv")
    (attrs,) = (a for _, a in graph.nodes(data=True) if a["op"] == "conv")
    return attrs


@pytest.mark.parametrize(
    ("shape", "block", "gemm"),
    [
        ((32, 8, 4), 8, True),  # CondenseNet's first stage: 8 in, 2 out per group
        ((64, 16, 4), 8, True),
        ((128, 32, 4), 8, False),  # 32 in, 8 out per group: the JIT kernel
        ((128, 128, 32), 8, True),  # ResNeXt 32x4d's first stage
        ((64, 64, 8), 8, False),
        ((64, 64, 8), 16, True),  # 8 per group where vectors hold 16 floats
        ((64, 64, 1), 8, False),  # dense
        ((36, 36, 36), 8, False),  # depthwise: a kernel of its own
        ((32, 8, 4), 0, False),  # no block probed: nothing told apart
    ],
)
def test_the_onednn_gemm_rule(shape: tuple[int, int, int], block: int, gemm: bool) -> None:
    attrs = _conv_attrs(*shape)
    assert onednn_gemm_path(attrs, block) is gemm
    kind = "conv_dw" if shape[2] == shape[0] else "conv_grouped" if shape[2] > 1 else "conv_kxk"
    assert torch_kind(kind, attrs, block) == ("conv_grouped_gemm" if gemm else kind)


#: (in, out, groups, kernel, side, stride, batch, threads, kind PyTorch runs it as at 20,480),
#: by PyTorch's rule read from its source (``ConvParams::use_mkldnn``); None: oneDNN's.
NATIVE_CASES = [
    (64, 64, 1, 1, 56, 1, 1, 1, "conv_1x1_gemm"),  # a 1x1 conv at one thread: any size
    (64, 64, 1, 1, 56, 1, 1, 2, None),  # 200,704 elements on two threads
    (64, 64, 1, 1, 14, 1, 1, 2, "conv_1x1_gemm"),  # 12,544
    (64, 64, 1, 1, 56, 1, 16, 1, None),  # a batch of 16
    (128, 32, 1, 3, 7, 1, 1, 2, "conv_kxk_gemm"),  # DenseNet's last block: 6,272
    (128, 32, 1, 3, 14, 1, 1, 1, None),  # 25,088
    (20, 8, 1, 3, 32, 1, 1, 1, "conv_kxk_gemm"),  # 20,480: at the limit
    (21, 8, 1, 3, 32, 1, 1, 1, None),
    (16, 16, 1, 3, 8, 1, 2, 1, None),  # batched
    (16, 16, 1, 5, 8, 1, 1, 1, None),  # a kernel over 3x3
    (64, 128, 1, 1, 14, 2, 1, 1, "conv_kxk_gemm"),  # a small strided 1x1: im2col first
    (64, 128, 1, 1, 56, 2, 1, 1, None),
    (24, 16, 4, 1, 8, 1, 1, 1, "conv_grouped_gemm"),  # a 1x1 group conv at one thread
    (24, 16, 4, 1, 8, 1, 1, 2, None),
    (16, 16, 4, 3, 8, 1, 1, 1, None),  # a small grouped 3x3 conv
]


@pytest.mark.parametrize(
    ("c_in", "c_out", "groups", "k", "side", "stride", "batch", "threads", "native"),
    NATIVE_CASES,
)
def test_the_torch_native_rule(
    c_in: int,
    c_out: int,
    groups: int,
    k: int,
    side: int,
    stride: int,
    batch: int,
    threads: int,
    native: str | None,
) -> None:
    attrs = _conv_attrs(c_in, c_out, groups, k, side, batch, stride=stride)
    assert torch_native_path(attrs, threads, TORCH_NATIVE_LIMIT) is (native is not None)
    assert not torch_native_path(attrs, threads, 0)  # no limit probed: none told apart
    paths = ConvPaths("torch", onednn_block=8, native_limit=TORCH_NATIVE_LIMIT, threads=threads)
    kind = op_kind(attrs)
    assert paths.kind(kind, attrs) == native or torch_kind(kind, attrs, 8)


_DISPATCH_CHILD = """
import torch
torch.set_num_threads({threads})
with torch.no_grad():
    for c_in, c_out, groups, k, side, stride, batch in {cases}:
        conv = torch.nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False)
        conv.eval()(torch.zeros(batch, c_in, side, side))
"""
#: oneDNN's problem descriptor: ``mb16_ic64oc64_ih56...``, ``g4mb1_ic24oc16_ih8...``.
_DESCRIPTOR = re.compile(r"exec,cpu,convolution,.*?,(?:g(\d+))?mb(\d+)_ic(\d+)oc(\d+)_ih(\d+)")


@pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(),  # type: ignore[no-untyped-call]
    reason="this PyTorch has no oneDNN",
)
@pytest.mark.parametrize("threads", [1, 2])
def test_the_native_rule_is_what_this_pytorch_does(threads: int) -> None:
    """Of `NATIVE_CASES` at `threads`, oneDNN's own log shows running exactly those the rule
    gives oneDNN, on the PyTorch installed here (told apart by their shapes in the log), and
    `native_limit` finds the rule."""
    mine = [case for case in NATIVE_CASES if case[7] == threads]
    log = _verbose_log(_DISPATCH_CHILD.format(threads=threads, cases=[c[:7] for c in mine]))
    assert "convolution" in log
    ran = {
        (int(c_in), int(c_out), int(groups or 1), int(side), int(batch))
        for groups, batch, c_in, c_out, side in _DESCRIPTOR.findall(log)
    }
    onednn = {(c[0], c[1], c[2], c[4], c[6]) for c in mine if c[8] is None}
    assert ran == onednn
    assert onednn_paths()[1] == TORCH_NATIVE_LIMIT


@pytest.mark.parametrize(
    ("shape", "layout", "padded"),
    [
        ((58, 58, 58), 16, True),  # ShuffleNetV2's first stage
        ((48, 48, 48), 16, False),
        ((58, 58, 58), 8, True),
        ((40, 40, 40), 8, False),
        ((40, 40, 40), 16, True),
        ((58, 58, 58), 0, False),  # no layout probed: never
        ((58, 58, 1), 16, False),  # dense
        ((60, 60, 6), 16, False),  # grouped
    ],
)
def test_the_padded_depthwise_rule(shape: tuple[int, int, int], layout: int, padded: bool) -> None:
    attrs = _conv_attrs(*shape)
    assert padded_depthwise(attrs, layout) is padded
    kind = op_kind(attrs)
    expected = "conv_dw_padded" if padded else kind
    assert torch_kind(kind, attrs, 0, layout) == expected
    assert ConvPaths(layout_block=layout).kind(kind, attrs) == expected


@pytest.mark.parametrize(
    ("shape", "block", "layout", "narrow"),
    [
        ((96, 96, 8), 4, 16, True),  # 12 per group: oneDNN's 4-channel layout
        ((48, 48, 4), 4, 16, True),
        ((64, 16, 4), 4, 16, True),  # 16 in, 4 out per group
        ((1808, 512, 4), 4, 16, True),  # CondenseNet-74's last learned group conv
        ((64, 64, 8), 4, 16, False),  # 8 per group: the 8-channel layout
        ((256, 256, 16), 4, 16, False),  # 16 per group: the full block
        ((96, 96, 8), 4, 8, True),  # AVX2: 4 of 8 lanes
        ((96, 96, 8), 8, 8, False),  # twice the block beyond the layout: no narrower one
        ((32, 8, 4), 4, 16, False),  # 2 out per group: the GEMM path
        ((96, 96, 8), 4, 0, False),  # no layout probed: never
        ((96, 96, 96), 4, 16, False),  # depthwise
        ((96, 96, 1), 4, 16, False),  # dense
    ],
)
def test_the_narrow_grouped_rule(
    shape: tuple[int, int, int], block: int, layout: int, narrow: bool
) -> None:
    attrs = _conv_attrs(*shape)
    assert narrow_grouped(attrs, block, layout) is narrow
    kind = op_kind(attrs)
    if kind == "conv_grouped" and not onednn_gemm_path(attrs, block):
        expected = "conv_grouped_narrow" if narrow else kind
        assert torch_kind(kind, attrs, block, layout) == expected
        assert ConvPaths(onednn_block=block, layout_block=layout).kind(kind, attrs) == expected


@pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(),  # type: ignore[no-untyped-call]
    reason="this PyTorch has no oneDNN",
)
def test_onednn_runs_the_narrow_grouped_convs_in_its_narrowest_layout() -> None:
    """oneDNN's own log on this CPU: the grouped convs the rule calls narrow run in a layout
    of the grouped block's channels (``aBcd4b`` where it is 4), the others in a wider one."""
    block, _, layout = onednn_paths()
    if block <= 0 or 2 * block > layout:
        pytest.skip("oneDNN has no narrower grouped layout here")
    shapes = [(3 * block * 8, 3 * block * 8, 8), (2 * block * 8, 2 * block * 8, 8)]
    shapes += [(layout * 4, layout * 4, 4)]
    cases = [(c_in, c_out, g, 3, 16, 1, 1) for c_in, c_out, g in shapes]
    log = _verbose_log(_DISPATCH_CHILD.format(threads=1, cases=cases))
    found = re.findall(r"exec,cpu,convolution,[^,]*,[^,]*,src:f32:\w*:blocked:aBcd(\d+)b", log)
    narrow = [narrow_grouped(_conv_attrs(*shape), block, layout) for shape in shapes]
    assert narrow == [True, False, False]
    assert [int(b) == block for b in found] == narrow


@pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(),  # type: ignore[no-untyped-call]
    reason="this PyTorch has no oneDNN",
)
def test_onednn_pads_the_depthwise_convs_the_rule_names() -> None:
    """oneDNN's own log on this CPU: a depthwise conv on a multiple of the layout block runs
    unpadded (``src:f32:a:blocked``), one on 2 channels more in the padded layout
    (``src:f32:ap:blocked``), as `padded_depthwise` says."""
    block = onednn_paths()[2]
    if block <= 1:
        pytest.skip("oneDNN runs no blocked layout here")
    cases = [(c, c, c, 3, 16, 1, 1) for c in (2 * block, 2 * block + 2)]
    log = _verbose_log(_DISPATCH_CHILD.format(threads=1, cases=cases))
    sources = re.findall(r"exec,cpu,convolution,[^,]*,[^,]*,src:f32:(\w*):blocked", log)
    assert sources == ["a", "ap"]
    assert [padded_depthwise(_conv_attrs(*c[:3]), block) for c in cases] == [False, True]


def test_a_calibration_grid_times_padded_depthwise_convs() -> None:
    """The full and quick grids hold depthwise benchmarks the rule calls padded, at AVX2's
    block and AVX-512's, for a fit of their own."""
    from hardnet_analysis.profiler.microbench import grid

    for size, least in (("full", 8), ("quick", 3)):
        for layout in (8, 16):
            paths = ConvPaths(layout_block=layout)
            kinds = [
                paths.benchmark_kind(b.kind, measure_graph(trace_module(b.make(), b.shape)))
                for b in grid(size)
                if b.kind == "conv_dw"
            ]
            assert kinds.count("conv_dw_padded") >= least, (size, layout)


def test_ort_runs_grouped_nchw_convs_as_the_lowered_grouped_kind() -> None:
    assert ort_kind("conv_grouped", _conv_attrs(96, 96, 8), (8, 4)) == "conv_grouped_gemm"
    assert ort_kind("conv_grouped", _conv_attrs(64, 64, 4), (8, 4)) == "conv_grouped"
    assert ort_kind("conv_dw", _conv_attrs(26, 26, 26), (8, 4)) == "conv_dw_nchw"
    assert ort_kind("conv_kxk", _conv_attrs(78, 34, 1), (8, 4)) == "conv_nchw"


@settings(max_examples=40, deadline=None)
@given(
    per_group=st.integers(1, 6),
    groups=st.sampled_from([1, 2, 4]),
    k=st.sampled_from([1, 3, 5]),
    stride=st.sampled_from([1, 2]),
    side=st.integers(5, 12),
)
def test_the_im2col_matrix_is_what_unfold_builds(
    per_group: int, groups: int, k: int, stride: int, side: int
) -> None:
    """The im2col matrix of any conv is ``unfold``'s output: in channels x taps x positions;
    a 1x1 conv of stride 1 needs none (its input is the matrix)."""
    c_in = per_group * groups
    attrs = _conv_attrs(c_in, 2 * groups, groups, k, side, stride=stride)
    x = torch.zeros(1, c_in, side, side)
    unfolded = nn.functional.unfold(x, k, padding=k // 2, stride=stride).numel() * 4
    expected = 0 if k == 1 and stride == 1 else unfolded
    assert im2col_bytes(attrs, 4) == expected


def test_a_lowered_grouped_conv_moves_its_im2col_matrix_twice() -> None:
    """Written once and read once by the GEMM: CondenseNet's 3x3 conv 32 -> 8 in 4 groups at
    112x112 moves 2 x 14,450,688 bytes more than its input, weights and output."""
    module = nn.Conv2d(32, 8, 3, padding=1, groups=4, bias=False)
    analysis = measure_graph(trace_module(module, (1, 32, 112, 112), "conv"))
    (plain,) = layer_features(analysis, 2**23)
    (lowered,) = runtime_features(analysis, [plain], ConvPaths("torch", onednn_block=8))
    assert plain.kind == "conv_grouped" and lowered.kind == "conv_grouped_gemm"
    assert plain.bytes == (32 * 112 * 112 + 8 * 8 * 9 + 8 * 112 * 112) * 4
    assert lowered.bytes - plain.bytes == 2 * 32 * 9 * 112 * 112 * 4
    assert lowered.macs == plain.macs and lowered.dram_bytes == plain.dram_bytes


def test_condensenet_runs_its_first_two_stages_3x3_convs_on_the_gemm_path(
    device_file: Path,
) -> None:
    """CondenseNet-74 (C = G = 4) has stages of 4, 6, 8, 10 and 8 layers with growth 8, 16, 32,
    64 and 128; each layer's 3x3 conv takes 4 x growth channels to growth in 4 groups, so the
    first two stages' (2 and 4 outputs per group) are the 10 off oneDNN's JIT kernel at 8."""
    device = DeviceModel.read(device_file)
    analysis = analyze("condensenet74_c4_g4_converted")
    lowered = [layer for layer in predict(analysis, _with_block(device, 8)).layers
               if layer.kind == "conv_grouped_gemm"]  # fmt: skip
    taps = [
        n for n in (layer.name for layer in lowered) if analysis.graph.nodes[n]["kernel"] == (3, 3)
    ]
    assert len(taps) == 10
    older = predict(analysis, _with_block(device, 0, 0))  # a file from before: none told apart
    assert not any(layer.kind == "conv_grouped_gemm" for layer in older.layers)


def _with_block(device: DeviceModel, block: int, limit: int | None = None) -> DeviceModel:
    from dataclasses import replace

    return replace(
        device, onednn_block=block, native_limit=device.native_limit if limit is None else limit
    )


def test_onednn_verbose_lines_give_each_convs_implementation() -> None:
    log = "\n".join(
        [
            "onednn_verbose,v1,info,cpu,runtime:OpenMP,nthr:1",
            "onednn_verbose,v1,primitive,exec,cpu,convolution,x64:gemm:jit,forward_training,"
            "src:f32:a:blocked:abcd::f0 wei:f32:a:blocked:abcde::f0,alg:convolution_direct,0.1",
            "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32::blocked:abcd::f0",
            "onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx2,forward_training,"
            "src:f32:a:blocked:aBcd8b::f0,alg:convolution_direct,0.05",
            "onednn_verbose,exec,cpu,convolution,jit:avx512_core,forward_inference,src_f32::",
        ]
    )
    assert conv_impls(log) == ["x64:gemm:jit", "jit:avx2", "jit:avx512_core"]


def _exec(impl: str, problem: str, block: int = 8) -> str:
    return (
        f"onednn_verbose,v1,primitive,exec,cpu,convolution,{impl},forward_training,"
        f"src:f32:ap:blocked:aBcd{block}b::f0 wei:f32:a:blocked:ABcd{block}b{block}a::f0,"
        "attr-scratchpad:user,"
        f"alg:convolution_direct,{problem}_ih32oh32kh3sh1dh0ph1_iw32ow32kw3sw1dw0pw0,0.25"
    )


def test_the_probe_log_gives_the_grouped_block_and_the_native_limit() -> None:
    """Grouped lines (``g2mb1_...``) give the block, dense ones the limit: both dense convs
    over the limit on oneDNN and none under it is PyTorch's rule; one more is not."""
    grouped = [_exec("x64:gemm:jit", "g2mb1_ic8oc8"), _exec("jit:avx2", "g2mb1_ic16oc16")]
    grouped.append(_exec("jit:avx2", "g2mb1_ic32oc32"))
    dense = [_exec("jit:avx2", "mb1_ic21oc8"), _exec("jit_1x1:avx2", "mb1_ic25oc8")]
    log = "\n".join(["onednn_verbose,v1,info,cpu,runtime:OpenMP,nthr:2", *grouped, *dense])
    assert (grouped_block(log), native_limit(log)) == (8, TORCH_NATIVE_LIMIT)
    other = log + "\n" + _exec("gemm:jit", "mb1_ic20oc8")  # 20,480 elements on oneDNN
    assert (grouped_block(other), native_limit(other)) == (8, 0)
    assert (grouped_block(""), native_limit("")) == (0, 0)
    assert (layout_block(log), layout_block("")) == (8, 0)


def test_an_avx512_log_gives_a_grouped_width_of_4_and_a_layout_block_of_16() -> None:
    """As an AVX-512 Intel Xeon logs the probe (2026-12-07): 4 channels per group already run
    the JIT kernel (in blocks of 4), while dense convs are laid out in blocks of 16; the
    grouped lines' own layouts (4b, 8b, 16b) never count as the dense block."""
    avx512 = "jit:avx512_core"
    grouped = [_exec(avx512, f"g2mb1_ic{2 * w}oc{2 * w}", block=w) for w in WIDTHS]
    dense = [_exec(avx512, "mb1_ic21oc8", 16), _exec("jit_1x1:avx512_core", "mb1_ic25oc8", 16)]
    log = "\n".join([*grouped, *dense])
    assert (grouped_block(log), native_limit(log), layout_block(log)) == (4, TORCH_NATIVE_LIMIT, 16)


@pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(),  # type: ignore[no-untyped-call]
    reason="this PyTorch has no oneDNN",
)
def test_this_cpu_has_a_grouped_block_and_the_calibration_keeps_it(device_file: Path) -> None:
    """On an x86 CPU with AVX2 oneDNN's JIT grouped convs take some width of `WIDTHS`; the
    tiny calibration records it and fits the lowered grouped convs as a kind of their own,
    their bytes counting the im2col matrix."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if " avx2" not in flags:
        pytest.skip("not an AVX2 CPU")
    block, limit, layout = onednn_paths()
    assert block in WIDTHS and layout in (8, 16) and layout >= block  # AVX2 8/8, AVX-512 4/16
    device = DeviceModel.read(device_file)
    assert (device.onednn_block, device.onednn_layout_block) == (block, layout)
    assert device.native_limit == limit == TORCH_NATIVE_LIMIT
    lowered = [s for s in device.samples if s.kind == "conv_grouped_gemm"]
    assert {s.label.split(" cold")[0] for s in lowered} == {
        "gconv3 16->4 g4 @8",
        "gconv1 24->16 g4 @8",
    }
    gconv3 = next(s for s in lowered if s.label == "gconv3 16->4 g4 @8")
    assert gconv3.bytes == (16 * 64 + 4 * 4 * 9 + 4 * 64) * 4 + 2 * 16 * 9 * 64 * 4


def _depthwise(channels: int, side: int, seconds: Any) -> Measurement:
    module = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
    analysis = measure_graph(trace_module(module, (1, channels, side, side), "dw"))
    (f,) = layer_features(analysis, 2**23, warm=True, flush_outputs=False)
    return Measurement("conv_dw", f"dw {channels} @{side}", analysis, 0, seconds(channels, f), 0)


@pytest.mark.parametrize("per_group", [True, False])
def test_the_fit_finds_an_overhead_paid_per_group(per_group: bool) -> None:
    """Depthwise convs timed as 0.7 us per channel (ORT's NCHW kernel: one small GEMM per
    channel) or 50 us per op, plus 0.3 ns per byte: the fit tells the two apart, recovers the
    overhead, and predicts a 462-channel conv at 7x7 from convs of 16 to 256 channels."""
    fixed = (lambda c: 0.7e-6 * c) if per_group else (lambda c: 50e-6)
    seconds = lambda c, f: fixed(c) + 3e-10 * f.bytes  # noqa: E731
    shapes = [(16, 56), (24, 56), (32, 28), (64, 28), (96, 14), (128, 14), (256, 7), (40, 28)]
    fit = fit_device([_depthwise(c, side, seconds) for c, side in shapes], {2**23: "test"})
    (model,) = fit.kinds
    assert model.overhead_per_group is per_group
    assert model.overhead_s == pytest.approx(0.7e-6 if per_group else 50e-6, rel=0.02)
    probe = _depthwise(462, 7, seconds)
    (f,) = layer_features(probe.analysis, 2**23, warm=True, flush_outputs=False)
    assert f.groups == 462
    predicted, _ = model.time(f.work, f.dram_bytes, f.bytes, f.groups)
    assert predicted == pytest.approx(probe.time_s, rel=0.02)


def test_a_model_without_padded_depthwise_convs_predicts_them_as_depthwise(
    device_file: Path,
) -> None:
    """A device model calibrated before padded depthwise convs were told apart (or on a grid
    without them) predicts them with its depthwise fit."""
    from dataclasses import replace

    device = DeviceModel.read(device_file)
    older = replace(device, kinds=tuple(k for k in device.kinds if k.kind != "conv_dw_padded"))
    assert older.kind("conv_dw_padded") == device.kind("conv_dw")


def test_a_model_without_narrow_grouped_convs_predicts_them_as_grouped(
    device_file: Path,
) -> None:
    """A device model calibrated before grouped convs in oneDNN's narrowest layout were told
    apart (or on a grid without them) predicts them with its grouped fit."""
    from dataclasses import replace

    device = DeviceModel.read(device_file)
    older = replace(device, kinds=tuple(k for k in device.kinds if k.kind != "conv_grouped_narrow"))
    assert older.kind("conv_grouped_narrow") == device.kind("conv_grouped")


def test_a_calibration_grid_times_narrow_grouped_convs() -> None:
    """The full and quick grids hold grouped benchmarks the rule calls narrow at AVX-512's
    blocks (grouped 4, layout 16) and at AVX2's (4, 8), at 1 and 2 threads."""
    from hardnet_analysis.profiler.microbench import grid

    for size, least in (("full", 8), ("quick", 3)):
        for layout in (8, 16):
            for threads in (1, 2):
                paths = ConvPaths(
                    onednn_block=4, layout_block=layout, native_limit=20480, threads=threads
                )
                kinds = [
                    paths.benchmark_kind(b.kind, measure_graph(trace_module(b.make(), b.shape)))
                    for b in grid(size)
                    if b.kind == "conv_grouped"
                ]
                assert kinds.count("conv_grouped_narrow") >= least, (size, layout, threads)


def test_pytorchs_own_path_and_onednns_stand_in_for_each_other(device_file: Path) -> None:
    """A grid that timed dense convs on one path only (the tiny grid's are all small) predicts
    the other path's convs with it, and a model with neither says so instead of looping."""
    from dataclasses import replace

    device = DeviceModel.read(device_file)
    model = device.kind("conv_dw")
    for fitted, asked in (("conv_kxk_gemm", "conv_kxk"), ("conv_kxk", "conv_kxk_gemm")):
        one = replace(device, kinds=(replace(model, kind=fitted),))
        assert one.kind(asked).kind == fitted
        assert one.kind("conv_1x1_gemm").kind == fitted  # via conv_1x1, which falls to conv_kxk
    neither = replace(device, kinds=(model,))
    with pytest.raises(UsageError, match="no fit for op kind 'conv_kxk'"):
        neither.kind("conv_kxk")


@pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(),  # type: ignore[no-untyped-call]
    reason="this PyTorch has no oneDNN",
)
def test_one_calibrations_timings_fit_with_and_without_pytorchs_own_path() -> None:
    """`benchmarks/ab_conv_paths.py`'s two fits: the same benchmarks and times, the tiny grid's
    small dense convs fitted as PyTorch's own kinds with the probed rule and as oneDNN's with
    ``native_limit`` 0, which the file then records (so `predict` maps convs as it fitted)."""
    from dataclasses import replace

    from hardnet_analysis.profiler.calibrate import (
        CalibrationSettings,
        fit_calibration,
        time_calibration,
    )

    settings = CalibrationSettings(threads=(1,), grid="tiny", repeat=2, budget_s=0.001, models=())
    timed = time_calibration(settings)
    assert timed.paths.native_limit == TORCH_NATIVE_LIMIT
    (probed,) = fit_calibration(timed).models
    (before,) = fit_calibration(timed, replace(timed.paths, native_limit=0)).models
    assert [(s.label, s.time_s) for s in probed.samples] == [
        (s.label, s.time_s) for s in before.samples
    ]
    pairs = zip(probed.samples, before.samples, strict=True)
    kinds = {s.label: (s.kind, o.kind) for s, o in pairs}
    assert kinds["conv1 16->16 @16"] == ("conv_1x1_gemm", "conv_1x1")
    assert kinds["conv3 16->16 @16"] == ("conv_kxk_gemm", "conv_kxk")
    assert kinds["conv1 8->16 /2 @8"] == ("conv_kxk_gemm", "conv_1x1_strided")
    assert (probed.native_limit, before.native_limit) == (TORCH_NATIVE_LIMIT, 0)
    assert probed.context is None and before.context is None


def test_the_channel_blocks_a_fit_tries() -> None:
    """Blocked kinds: the probed block on the input, whole units of one or two blocks per
    thread on the output; GEMM-path kinds and unprobed CPUs: 1, 8 or 16 on both."""
    two = ConvPaths("torch", onednn_block=8, threads=2)
    assert two.channel_blocks("conv_kxk") == ((1, 1), (8, 8), (8, 16), (8, 32))
    one = ConvPaths("torch", onednn_block=8, threads=1)
    assert one.channel_blocks("conv_kxk") == ((1, 1), (8, 8), (8, 16))
    assert two.channel_blocks(LOWERED_GROUPED) == ((1, 1), (8, 8), (16, 16))
    assert ConvPaths().channel_blocks("conv_kxk") == ((1, 1), (8, 8), (16, 16))  # unprobed
    assert two.channel_blocks("pool") == ((1, 1),)
    ort = ConvPaths("onnxruntime", (8, 4), threads=2)
    assert ort.channel_blocks("conv_kxk_nchw") == ((1, 1), (8, 8), (16, 16))
    assert ort.channel_blocks("conv_kxk")[-1] == (8, 32)
    # AVX-512: grouped convs take 4 per group, dense ones are laid out in blocks of 16
    avx512 = ConvPaths("torch", onednn_block=4, threads=2, layout_block=16)
    assert avx512.channel_blocks("conv_kxk") == ((1, 1), (16, 16), (16, 32), (16, 64))
