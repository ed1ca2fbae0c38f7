"""The child process a counter tool profiles: one forward of a model on a GPU backend (CUDA), in
its named ranges (NVTX).

``python -m hardnet_analysis.profiler.child MODEL --input 224 --batch 1 --dtype fp32
[--channels-last] [--warmup 2] [--mode ncu|nvprof]``. Warm-up forwards run outside any range;
then one forward runs inside the ``hda`` range (ncu, ``--nvtx-include "hda/"``) with a nested
range per module call named by its layer key, or between ``cudaProfilerStart``/``Stop``
(nvprof, ``--profile-from-start off``). It prints nothing on stdout; ``profiler.dram.child_argv``
builds its command line.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from hardnet_analysis.backends import Backend, pick
from hardnet_analysis.profiler.counters.ncu import RANGE, nvtx_name
from hardnet_analysis.profiler.latency import LayerTimer
from hardnet_analysis.profiler.run import prepare
from hardnet_analysis.resolve import input_shape_of, resolve
from hardnet_analysis.units import parse_input_size


class RangeLayers(LayerTimer):
    """Opens the backend's named range (NVTX on CUDA) at each module call, named by the layer
    key, and closes it after."""

    def __init__(self, model: nn.Module, backend: Backend) -> None:
        super().__init__(model, backend.clock())
        self.backend = backend
        self.open: list[contextlib.AbstractContextManager[None]] = []

    def _pre(self, module: nn.Module, args: Any) -> None:
        span = self.backend.range(nvtx_name(self.key(self.paths[id(module)])))
        span.__enter__()
        self.open.append(span)

    def _post(self, module: nn.Module, args: Any, output: Any) -> None:
        self.open.pop().__exit__(None, None, None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hardnet_analysis.profiler.child")
    parser.add_argument("model")
    parser.add_argument("--input", default="224")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--mode", choices=("ncu", "nvprof"), default="ncu")
    parser.add_argument("--device", required=True, help="the GPU backend the counter tool reads")
    args = parser.parse_args(argv)
    picked = pick(args.device, strict=True)
    backend, device = picked.backend, picked.device
    backend.prepare(None)
    shape = input_shape_of(resolve(args.model), parse_input_size(args.input), args.batch)
    model, x = prepare(args.model, shape, args.dtype, args.channels_last, device)
    with torch.inference_mode():
        for _ in range(args.warmup):
            model(x)
        backend.synchronize(device)
        if args.mode == "nvprof":
            with backend.capture():
                model(x)
            return 0
        with RangeLayers(model, backend), backend.range(RANGE):
            model(x)
            backend.synchronize(device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
