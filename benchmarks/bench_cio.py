"""Benchmark: how fast `hda cio` and `analyze()` are, as ratios against baselines run alongside.

1. Whole process: ``hda cio hardnet68 --input 224`` against ``python -c "import torch"``
   (target <= 0.5x: the analytic path never imports torch).
2. In process, on the same torch model: ``analyze(model)`` (traced on meta tensors) and
   ``analyze("hardnet68")`` (analytic) against fvcore's ``FlopCountAnalysis(...).total()``.

Run: ``python benchmarks/bench_cio.py [--repeat 7]``. Prints medians and ratios.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable


def _median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _process(cmd: list[str]) -> Callable[[], object]:
    return lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def bench_processes(repeat: int) -> None:
    hda = shutil.which("hda")
    cio_cmd = [hda] if hda else [sys.executable, "-m", "hardnet_analysis"]
    cio_cmd += ["cio", "hardnet68", "--input", "224"]
    torch_cmd = [sys.executable, "-c", "import torch"]
    _process(torch_cmd)()  # warm the file cache for both
    _process(cio_cmd)()
    torch_s = _median_seconds(_process(torch_cmd), repeat)
    cio_s = _median_seconds(_process(cio_cmd), repeat)
    print(f"whole process, median of {repeat}:")
    print(f"  python -c 'import torch'        {torch_s * 1e3:8.0f} ms  (baseline)")
    print(f"  hda cio hardnet68 --input 224   {cio_s * 1e3:8.0f} ms  ratio {cio_s / torch_s:.2f}x")


def bench_in_process(repeat: int) -> None:
    import torch
    from fvcore.nn import FlopCountAnalysis

    from hardnet_analysis import analyze, create_model

    model = create_model("hardnet68").eval()
    x = torch.randn(1, 3, 224, 224)

    def fvcore_total() -> int:
        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        return int(analysis.total())

    fv_s = _median_seconds(fvcore_total, repeat)
    traced_s = _median_seconds(lambda: analyze(model), repeat)
    analytic_s = _median_seconds(lambda: analyze("hardnet68"), repeat)
    print(f"in process on hardnet68 at 224, median of {repeat}:")
    print(f"  fvcore FlopCountAnalysis.total() {fv_s * 1e3:8.0f} ms  (baseline)")
    for label, seconds in (
        ("analyze(nn.Module), traced", traced_s),
        ("analyze('hardnet68')", analytic_s),
    ):
        print(f"  {label:<32} {seconds * 1e3:8.0f} ms  ratio {seconds / fv_s:.3f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    bench_processes(args.repeat)
    bench_in_process(args.repeat)


if __name__ == "__main__":
    main()
