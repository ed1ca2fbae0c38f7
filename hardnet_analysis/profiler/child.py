"""The child process a counter tool profiles: one forward of a model on CUDA, in NVTX ranges.

``python -m hardnet_analysis.profiler.child MODEL --input 224 --batch 1 --dtype fp32
[--channels-last] [--warmup 2] [--mode ncu|nvprof]``. Warm-up forwards run outside any range;
then one forward runs inside the ``hda`` range (ncu, ``--nvtx-include "hda/"``) with a nested
range per module call named by its layer key, or between ``cudaProfilerStart``/``Stop``
(nvprof, ``--profile-from-start off``). It prints nothing on stdout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from hardnet_analysis.profiler.counters.ncu import RANGE, nvtx_name
from hardnet_analysis.profiler.latency import CudaClock, LayerTimer


class NvtxLayers(LayerTimer):
    """Pushes an NVTX range named by the layer key at each module call, pops it after."""

    def _pre(self, module: nn.Module, args: Any) -> None:
        torch.cuda.nvtx.range_push(nvtx_name(self.key(self.paths[id(module)])))  # type: ignore[no-untyped-call]

    def _post(self, module: nn.Module, args: Any, output: Any) -> None:
        torch.cuda.nvtx.range_pop()  # type: ignore[no-untyped-call]


def child_argv(
    model: str,
    input_hw: tuple[int, int],
    batch: int,
    dtype: str,
    channels_last: bool,
    mode: str,
) -> list[str]:
    """The argv that runs this module for `model` under a counter tool."""
    argv = [sys.executable, "-m", "hardnet_analysis.profiler.child", model]
    argv += ["--input", f"{input_hw[0]}x{input_hw[1]}", "--batch", str(batch)]
    argv += ["--dtype", dtype, "--mode", mode]
    return argv + (["--channels-last"] if channels_last else [])


def main(argv: Sequence[str] | None = None) -> int:
    from hardnet_analysis.profiler.run import prepare

    parser = argparse.ArgumentParser(prog="hardnet_analysis.profiler.child")
    parser.add_argument("model")
    parser.add_argument("--input", default="224")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--mode", choices=("ncu", "nvprof"), default="ncu")
    args = parser.parse_args(argv)
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda")
    model, x = prepare(args.model, args.input, args.batch, args.dtype, args.channels_last, device)
    with torch.inference_mode():
        for _ in range(args.warmup):
            model(x)
        torch.cuda.synchronize()
        if args.mode == "nvprof":
            torch.cuda.profiler.start()  # type: ignore[no-untyped-call]
            model(x)
            torch.cuda.synchronize()
            torch.cuda.profiler.stop()  # type: ignore[no-untyped-call]
            return 0
        with NvtxLayers(model, CudaClock()):
            torch.cuda.nvtx.range_push(RANGE)  # type: ignore[no-untyped-call]
            model(x)
            torch.cuda.synchronize()
            torch.cuda.nvtx.range_pop()  # type: ignore[no-untyped-call]
    return 0


if __name__ == "__main__":
    sys.exit(main())
