"""Which oneDNN kernel PyTorch's CPU convs run, probed from oneDNN's own verbose log.

oneDNN runs a grouped conv with its blocked JIT kernel only when the channels per group, in
and out, are multiples of a width that depends on the CPU (8 on an AVX2 AMD EPYC; 4 on an
AVX-512 Intel Xeon, whose JIT kernel takes 4, 12 and 20 per group in blocks of 4 but runs 6
and 10 as GEMMs); any other grouped conv becomes an im2col and a GEMM per group
(``x64:gemm:jit``), at a cost of its own: on a 2-core AMD EPYC (AVX2), CondenseNet's 3x3
conv 64 -> 16 in 4 groups (4 outputs per group) at 56x56 takes 2.09 ms, more than 64 -> 32
in 4 groups' 1.58 ms on the JIT kernel. `grouped_block` finds that width from lone grouped
convs run in a child process with ``ONEDNN_VERBOSE=1`` (the log is written by oneDNN's C code
to the process's stdout, which only a child's pipe catches whole) and reading the
implementation each one ran.
``metrics.conv_paths.onednn_gemm_path`` applies it. Dense and depthwise convs run in a blocked
layout of their own, whose channel block, the fp32 vector width (8 with AVX2, 16 with
AVX-512), `layout_block` reads from the same log: a conv's channels are padded to it, which is
not the grouped width on AVX-512.

PyTorch keeps small convs off oneDNN altogether (``metrics.conv_paths.torch_native_path``):
`native_limit` checks its rule on this install in the same child, from which of five lone
dense convs oneDNN's log shows (`onednn_paths` runs both).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import torch

from hardnet_analysis.metrics.conv_paths import TORCH_NATIVE_LIMIT

#: Channels per group tried, smallest first; the first run by a non-GEMM kernel is the block.
WIDTHS = (4, 8, 16)

#: (threads, kernel, input channels at 32x32, runs on oneDNN) of the dense convs the probe
#: runs: PyTorch's rule at 20,480 input elements (``metrics.conv_paths.torch_native_path``)
#: says which of them oneDNN runs. Their input channels tell their log lines apart.
NATIVE_PROBES = (
    (1, 3, 20, False),  # 20,480 elements: PyTorch's own im2col and GEMM
    (1, 3, 21, True),  # 21,504: oneDNN's
    (1, 1, 24, False),  # a stride-1 1x1 conv at one thread: PyTorch's own GEMM
    (2, 1, 25, True),  # the same on two threads, over the limit: oneDNN's
    (2, 1, 19, False),  # two threads, under the limit: PyTorch's own
)

# One child for both probes: each costs about 3 s of start-up (Python and torch).
_CHILD = """
import torch
with torch.no_grad():
    torch.set_num_threads(1)
    for w in {widths}:
        conv = torch.nn.Conv2d(2 * w, 2 * w, 3, padding=1, groups=2, bias=False).eval()
        conv(torch.zeros(1, 2 * w, 8, 8))
    for threads, kernel, channels, _ in {probes}:
        torch.set_num_threads(threads)
        conv = torch.nn.Conv2d(channels, 8, kernel, padding=kernel // 2, bias=False).eval()
        conv(torch.zeros(1, channels, 32, 32))
"""


def onednn_paths() -> tuple[int, int, int]:
    """(`grouped_block`, `native_limit`, `layout_block`) read from one child's oneDNN log;
    zeros when PyTorch has no oneDNN: 8, 20,480 and 8 on an AVX2 AMD EPYC with torch 2.14; 4,
    20,480 and 16 on an AVX-512 Intel Xeon."""
    if not torch.backends.mkldnn.is_available():  # type: ignore[no-untyped-call]
        return 0, 0, 0
    log = _verbose_log(_CHILD.format(widths=WIDTHS, probes=NATIVE_PROBES))
    return grouped_block(log), native_limit(log), layout_block(log)


def grouped_block(log: str) -> int:
    """The channels per group (in and out) that oneDNN's JIT grouped convs take multiples of
    on this CPU, from the probe's `log`: 8 on an AVX2 AMD EPYC, where 16 -> 16 in 2 groups
    runs ``jit:avx2`` and 8 -> 8 in 2 groups ``x64:gemm:jit``; 4 on an AVX-512 Intel Xeon,
    where 8 -> 8 in 2 groups runs ``jit:avx512_core``; 0 when no width in `WIDTHS` runs off
    the GEMM path (then no grouped conv is told apart)."""
    grouped = "\n".join(line for line in log.splitlines() if ",g2mb1_" in line)
    impls = conv_impls(grouped)
    if len(impls) != len(WIDTHS):
        return 0
    return next((w for w, impl in zip(WIDTHS, impls, strict=True) if "gemm" not in impl), 0)


def native_limit(log: str) -> int:
    """The largest input (elements) of a dense conv that PyTorch runs on its own im2col and
    GEMM instead of oneDNN, from the probe's `log`: 20,480
    (``metrics.conv_paths.TORCH_NATIVE_LIMIT``) when it shows PyTorch's rule on
    `NATIVE_PROBES`; 0 (every conv taken for oneDNN's, as before the rule was known) when
    this PyTorch decides otherwise."""
    seen = {int(c) for c in re.findall(r"exec,cpu,convolution,.*?,mb1_ic(\d+)", log)}
    if seen != {channels for *_, channels, onednn in NATIVE_PROBES if onednn}:
        return 0
    return TORCH_NATIVE_LIMIT


def layout_block(log: str) -> int:
    """The channel block of the blocked layout oneDNN runs dense convs in on this CPU, from
    the probe's `log`: the ``N`` of the first dense conv's source layout ``aBcdNb`` (8 with
    AVX2, 16 with AVX-512, where the probe's 21 input channels are laid out as 32); 0 when no
    dense conv ran blocked."""
    for line in log.splitlines():
        if "exec" in line and ",convolution," in line and ",g2mb1_" not in line:
            found = re.search(r"src:f32:\w*:blocked:aBcd(\d+)b", line)
            if found:
                return int(found.group(1))
    return 0


def conv_impls(log: str) -> list[str]:
    """The implementation of each convolution oneDNN executed, in order, from its verbose
    `log`: ``onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx2,...`` (oneDNN 3.x) or
    ``onednn_verbose,exec,cpu,convolution,gemm:jit,...`` (2.x) give ``jit:avx2``, ``gemm:jit``."""
    out = []
    for line in log.splitlines():
        fields = line.split(",")
        if "exec" not in fields or "convolution" not in fields:
            continue
        at = fields.index("convolution") + 1
        if at < len(fields):
            out.append(fields[at])
    return out


def _verbose_log(script: str) -> str:
    """The stdout of `script` run by this Python with oneDNN's verbose log on ("" on failure)."""
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "DNNL_VERBOSE": "1"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""
