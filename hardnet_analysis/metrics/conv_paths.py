"""Which kernel a CPU runtime runs a conv with, from its channels: the same conv can take a
blocked JIT kernel or an im2col and a GEMM, at costs of their own, so a device model fits the
two as different op kinds (``metrics.op_kinds.KINDS``).

- **ONNX Runtime** (`nchwc_path`, `ort_kind`): its blocked NCHWc convs take input channels in
  multiples of a step (4 on an AVX2 CPU) and grouped convs in multiples of its block (8 with
  AVX2, 16 with AVX-512) per group; every other conv runs in plain NCHW through im2col and a
  GEMM. HarDNet-68 runs 27 of its 68 convs so, those whose input channels, such as 78 and
  150, are no multiple of 4.
- **PyTorch** (`torch_native_path`, `onednn_gemm_path`, `torch_kind`): its conv dispatch
  leaves a small conv to its own im2col and GEMM (``slow_conv2d``) instead of oneDNN: with
  fp32 and a batch below 16, a stride-1 1x1 conv at one thread, and a dense conv of at most
  3x3 whose input holds at most 20,480 elements at any thread count (a 3x3 conv at 14x14 on
  up to 104 channels). The two paths differ most at two threads: on a 2-core AMD EPYC,
  oneDNN's 1x1 convs pay about 165 us per op there (reorders of input, weights and output,
  each a parallel region), the native ones 36 us, and one fit of both was 16% off its 193
  benchmarks leave-one-out where one per path is 5.6% and 2.9%. A grouped conv whose
  channels per group, in and out, are not multiples of the vector width (8 with AVX2) runs
  on oneDNN as im2col and a GEMM per group. CondenseNet-74 runs 42 of its 72 grouped convs
  so (the 3x3 convs of its first two stages, with 2 and 4 outputs per group, and its learned
  1x1 group convs with inputs per group such as 36, which at one thread take PyTorch's own
  path, a GEMM per group), ResNeXt-50 32x4d 3 of its 16 (its first stage's 4 per group).

The blocks and PyTorch's limit are probed on the machine (``profiler.onnxrt.nchwc_layout``,
``profiler.onednn.onednn_paths``) and stored in the device
model; 0 means never.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import prod
from typing import Any

from hardnet_analysis.documents.device_model import DeviceModel
from hardnet_analysis.metrics.analysis import Analysis
from hardnet_analysis.metrics.handlers import is_conv

#: The kind of a grouped conv lowered to im2col and a GEMM per group, in either runtime.
LOWERED_GROUPED = "conv_grouped_gemm"
#: PyTorch's own convs (`torch_native_path`): a stride-1 1x1 conv is one GEMM on its input,
#: any other one an im2col and a GEMM.
NATIVE_1X1 = "conv_1x1_gemm"
NATIVE_KXK = "conv_kxk_gemm"
#: A depthwise conv on oneDNN whose channels its blocked layout pads (`padded_depthwise`).
PADDED_DEPTHWISE = "conv_dw_padded"
#: A grouped conv on oneDNN in its narrowest blocked layout (`narrow_grouped`).
NARROW_GROUPED = "conv_grouped_narrow"
#: Kinds whose bytes count an im2col matrix, written and read (`im2col_bytes`; 0 for a
#: stride-1 1x1 conv, whose input is that matrix).
LOWERED = frozenset({LOWERED_GROUPED, NATIVE_1X1, NATIVE_KXK})
#: PyTorch's largest input (elements) of a dense conv it runs on its own path at any thread
#: count (``ConvParams::use_mkldnn``; ``profiler.onednn.native_limit`` checks it on the install).
TORCH_NATIVE_LIMIT = 20480
#: Channel blocks a fit tries where no blocked layout was probed (``device_model.padded_work``):
#: 1 (no padding), 8 and 16 (fp32 vector lanes of AVX2 and AVX-512).
CHANNEL_BLOCKS = (1, 8, 16)


@dataclass(frozen=True)
class ConvPaths:
    """Which kernel each conv runs on one CPU in one runtime at `threads` threads, as probed
    there: ORT's NCHWc (block, step) for ``onnxruntime``; for ``torch``, oneDNN's grouped-conv
    block and the input size up to which PyTorch runs a conv on its own path
    (`torch_native_path`); zeros tell no convs apart. `layout_block`: the channel block of
    oneDNN's blocked layout for dense convs (16 with AVX-512, where the grouped block is 4; 0:
    the grouped block). `kind` maps an op kind to the one its kernel was fitted as."""

    runtime: str = "torch"
    nchwc: tuple[int, int] = (0, 0)
    onednn_block: int = 0
    native_limit: int = 0
    threads: int = 1
    layout_block: int = 0

    @classmethod
    def of(cls, device: DeviceModel) -> ConvPaths:
        """The paths `device` was calibrated with, at its thread count."""
        return cls(
            device.runtime,
            device.nchwc,
            device.onednn_block,
            device.native_limit,
            device.threads,
            device.onednn_layout_block,
        )

    def kind(self, kind: str, attrs: Mapping[str, Any]) -> str:
        """`kind` of the node with `attrs` as this runtime runs it (`ort_kind`, `torch_kind`)."""
        if self.runtime == "onnxruntime":
            return ort_kind(kind, attrs, self.nchwc)
        if kind.startswith("conv") and torch_native_path(attrs, self.threads, self.native_limit):
            return native_kind(attrs)
        return torch_kind(kind, attrs, self.onednn_block, self.layout_block)

    def channel_blocks(self, kind: str) -> tuple[tuple[int, int], ...]:
        """The (input, output) channel blocks a fit tries for `kind` (``padded_work``).

        For a conv kind run in a blocked layout: none, or the block b probed here (oneDNN's
        layout block, 8 on an AVX2 CPU and 16 with AVX-512; ORT's NCHWc block) on the input,
        and on the output b, 2b, b x threads or 2b x threads, since oneDNN hands each thread
        whole units of two blocks of output channels (`KindModel.out_block`). For a GEMM-path
        kind, or where nothing was probed, each of `CHANNEL_BLOCKS` on both (a GEMM's register
        tiles may favour multiples of 8 or 16); (1, 1) for any other kind. E.g. RegNetX-1.6GF's
        3x3 convs with 24 channels per group: oneDNN computes 24 on AVX2, where a block of 16
        would count 32 (1.78x)."""
        if not kind.startswith("conv"):
            return ((1, 1),)
        b = self.nchwc[0] if self.runtime == "onnxruntime" else self._onednn_layout
        if kind in LOWERED or kind.endswith("_nchw") or b <= 1:
            return tuple((k, k) for k in CHANNEL_BLOCKS)
        t = max(self.threads, 1)
        return tuple(dict.fromkeys(((1, 1), (b, b), (b, 2 * b), (b, b * t), (b, 2 * b * t))))

    @property
    def _onednn_layout(self) -> int:
        """oneDNN's layout block, or in a device model from before it was probed the grouped
        block (the same on the AVX2 CPU those were calibrated on)."""
        return self.layout_block or self.onednn_block

    def benchmark_kind(self, kind: str, analysis: Analysis) -> str:
        """`kind` of a micro-benchmark (traced as `analysis`) as its first conv runs, if any:
        a 3x3 conv 26 -> 26 is ``conv_nchw`` in ORT at (8, 4)."""
        convs = [a for _, a in analysis.graph.nodes(data=True) if is_conv(a["op"])]
        return self.kind(kind, convs[0]) if convs and kind.startswith("conv") else kind


def nchwc_path(attrs: Mapping[str, Any], layout: tuple[int, int]) -> bool:
    """Whether ORT runs the conv with `attrs` in its blocked NCHWc layout, `layout` being
    (block, step) as ``profiler.onnxrt.nchwc_layout`` probes them ((0, 0): never): a dense
    conv whose input channels are a multiple of `step` or fewer than `block` (a stem's 3; any
    output is padded), a depthwise conv whose channels are a multiple of `step`, a grouped
    conv whose channels per group are multiples of `block`, in and out; a transposed conv
    never. At (8, 4): 68 -> 40 yes, 78 -> 34 no, depthwise 20 yes, depthwise 14 no, 96 -> 96
    in 8 groups (12 each) no."""
    block, step = layout
    if block <= 0 or attrs.get("transposed"):
        return False
    c_in, c_out = int(attrs["in_channels"]), int(attrs["out_channels"])
    groups = int(attrs["groups"])
    if groups == 1:
        return c_in % step == 0 or c_in < block
    if groups == c_in == c_out:
        return c_in % step == 0
    return (c_in // groups) % block == 0 and (c_out // groups) % block == 0


def ort_kind(kind: str, attrs: Mapping[str, Any], layout: tuple[int, int]) -> str:
    """`kind` as ONNX Runtime runs the node with `attrs`: a conv off the NCHWc path
    (`nchwc_path` at `layout`) is ``conv_nchw`` (dense), ``conv_dw_nchw`` (depthwise) or
    ``conv_grouped_gemm`` (grouped: im2col and a GEMM per group, as oneDNN's); any other kind
    is itself."""
    if not kind.startswith("conv") or nchwc_path(attrs, layout):
        return kind
    groups = int(attrs["groups"])
    if groups == 1:
        return "conv_nchw"
    return "conv_dw_nchw" if groups == int(attrs["in_channels"]) else LOWERED_GROUPED


def onednn_gemm_path(attrs: Mapping[str, Any], block: int) -> bool:
    """Whether PyTorch's oneDNN runs the conv with `attrs` as im2col and a GEMM per group: a
    grouped conv (not depthwise) whose channels per group, in or out, are no multiple of
    `block` (``profiler.onednn.grouped_block``; 0: never). At 8: CondenseNet's 64 -> 16 in 4
    groups (16 in, 4 out per group) yes, ResNeXt's 128 -> 128 in 32 groups yes, 64 -> 64 in
    8 groups no, a dense or depthwise conv never."""
    groups = int(attrs.get("groups") or 1)
    c_in, c_out = int(attrs["in_channels"]), int(attrs["out_channels"])
    if block <= 0 or groups == 1 or groups == c_in:
        return False
    return (c_in // groups) % block != 0 or (c_out // groups) % block != 0


def torch_native_path(attrs: Mapping[str, Any], threads: int, limit: int) -> bool:
    """Whether PyTorch runs the fp32 conv with `attrs` on its own path (im2col and a GEMM,
    ``slow_conv2d``) rather than oneDNN at `threads` threads, `limit` being the largest input
    (elements) it leaves there (``profiler.onednn.native_limit``; 0: never). Its rule: oneDNN
    takes a conv that is strided, dilated, batched by 16 or more, of a kernel other than 1x1
    or run on several threads, *and* that is grouped, of a kernel over 3x3 both ways, batched,
    or of an input over `limit`. At 20,480: a 1x1 conv 256 -> 64 at 56x56 is native at 1
    thread, oneDNN's at 2; a 3x3 conv 128 -> 32 at 7x7 (6,272 elements) native at both; a 3x3
    conv 128 -> 32 at 14x14 (25,088) oneDNN's at both; a 3-D conv never native."""
    shapes = attrs.get("in_shapes") or ()
    kernel = tuple(int(k) for k in attrs.get("kernel") or ())
    if limit <= 0 or not shapes or len(kernel) not in (1, 2):
        return False
    shape = tuple(int(d) for d in shapes[0])
    batch, kernel = shape[0], (1, *kernel)[-2:]
    strided = prod(attrs.get("stride") or (1,)) > 1
    dilated = any(int(d) > 1 for d in attrs.get("dilation") or (1,))
    onednn_form = strided or dilated or batch >= 16 or kernel != (1, 1) or threads > 1
    onednn_size = int(attrs["groups"]) > 1 or min(kernel) > 3 or batch > 1 or prod(shape) > limit
    return not (onednn_form and onednn_size)


def native_kind(attrs: Mapping[str, Any]) -> str:
    """The kind of a conv on PyTorch's own path (`torch_native_path`): a grouped one runs a
    GEMM per group (``conv_grouped_gemm``), a stride-1 1x1 conv without padding one GEMM on
    its input (``conv_1x1_gemm``), any other an im2col and a GEMM (``conv_kxk_gemm``)."""
    if int(attrs["groups"]) > 1:
        return LOWERED_GROUPED
    return NATIVE_1X1 if input_is_matrix(attrs) else NATIVE_KXK


def torch_kind(kind: str, attrs: Mapping[str, Any], block: int, layout: int = 0) -> str:
    """`kind` as PyTorch's oneDNN runs the node with `attrs`: a grouped conv on the GEMM path
    (`onednn_gemm_path` at `block`) is ``conv_grouped_gemm``, one in oneDNN's narrowest layout
    (`narrow_grouped`) ``conv_grouped_narrow``, a depthwise conv whose channels the layout
    block `layout` pads (`padded_depthwise`) ``conv_dw_padded``; any other kind is itself.
    A lowered conv's bytes count the im2col matrix (`im2col_bytes`), written and read: on a
    2-core AMD EPYC that takes the leave-one-out error of 28 such convs (3x3 and 1x1) from 39%
    (MACs and bytes alone) to 7%, where the blocked grouped convs' fit was 60% off."""
    if kind == "conv_grouped" and onednn_gemm_path(attrs, block):
        return LOWERED_GROUPED
    if kind == "conv_grouped" and narrow_grouped(attrs, block, layout):
        return NARROW_GROUPED
    if kind == "conv_dw" and padded_depthwise(attrs, layout):
        return PADDED_DEPTHWISE
    return kind


def narrow_grouped(attrs: Mapping[str, Any], block: int, layout: int) -> bool:
    """Whether oneDNN runs the grouped conv with `attrs` (not on the GEMM path) in its narrowest
    blocked layout, of the grouped block `block` (``profiler.onednn.grouped_block``): its
    channels per group, in or out, are no multiple of twice `block`, where twice `block`
    still fits the layout block `layout` (0: not probed, never). oneDNN takes the widest of
    16, 8 and 4 channels that divides both, and a kernel on 4 of 16 lanes runs far below one
    on 8 or 16: on a 2-core AVX-512 AMD EPYC (block 4, layout 16) its 3x3 convs with 12
    channels per group ran 1.2-1.6x and its 1x1 convs 1808 -> 512 in 4 groups (452 in, 128
    out per group) at 2 threads 2.3-2.9x what one grouped fit predicts, where those with 8
    or 16 per group ran 0.8-1.1x. At (4, 16): 96 -> 96 in 8 groups (12 each) yes, 64 -> 16
    in 4 groups (16 in, 4 out) yes, 64 -> 64 in 8 groups (8 each) no, 32 -> 8 in 4 groups
    no (2 out per group: the GEMM path)."""
    groups = int(attrs.get("groups") or 1)
    c_in, c_out = int(attrs["in_channels"]), int(attrs["out_channels"])
    if block <= 0 or 2 * block > layout or groups == 1 or groups == c_in:
        return False
    if onednn_gemm_path(attrs, block):
        return False
    return (c_in // groups) % (2 * block) != 0 or (c_out // groups) % (2 * block) != 0


def padded_depthwise(attrs: Mapping[str, Any], layout: int) -> bool:
    """Whether oneDNN runs the depthwise conv with `attrs` in a blocked layout whose channel
    block `layout` (``profiler.onednn.layout_block``; 0: not probed, never) its channels are
    no multiple of. Its kernel is the same, but the reorders in and out of the padded layout
    take another one (``jit:uni`` instead of ``jit:blk``): on a 2-core AVX-512 AMD EPYC the
    output's reorder of a 58-channel map at 56x56 took 0.13 ms against 0.015 ms for 32 or 48
    channels, and ShuffleNetV2's 58- and 116-channel depthwise convs ran 1.6-3.7x what one fit
    of all depthwise convs predicted. At 16: 58 yes, 48 no; at 8: 58 yes, 40 no."""
    channels = int(attrs["in_channels"])
    return layout > 1 and channels == int(attrs.get("groups") or 1) and channels % layout != 0


def im2col_bytes(attrs: Mapping[str, Any], itemsize: int) -> int:
    """Bytes of the im2col matrix a conv lowered to a GEMM writes and then reads: in channels x
    kernel taps x output pixels x batch elements of `itemsize` bytes; 0 for a 1x1 conv of
    stride 1 without padding, whose input already is that matrix. CondenseNet's 3x3 conv
    32 -> 8 in 4 groups at 112x112, fp32: 32 x 9 x 12,544 x 4 = 14,450,688 bytes."""
    if input_is_matrix(attrs):
        return 0
    n, _, *out = attrs["out_shape"]
    taps = int(prod(attrs["kernel"]))
    return int(n) * int(attrs["in_channels"]) * taps * int(prod(out)) * itemsize


def input_is_matrix(attrs: Mapping[str, Any]) -> bool:
    """Whether a conv's input already is its GEMM's matrix: a 1x1 kernel of stride 1 without
    padding (no im2col)."""
    stride, padding = attrs.get("stride") or (1,), attrs.get("padding") or (0,)
    return prod(attrs["kernel"]) == 1 and prod(stride) == 1 and not any(padding)
