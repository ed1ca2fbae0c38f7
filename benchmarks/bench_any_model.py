"""Benchmark: `analyze()` on torchvision models against fvcore's FlopCountAnalysis, same process.

For each model (densenet121, resnet50, mobilenet_v2, vit_b_16, swin_t and convnext_tiny by
default) the same CPU module is given to ``FlopCountAnalysis(model, x).total()`` (baseline:
jit trace + real forward) and to ``analyze(model)`` (meta-tensor trace + per-op handlers).
Target: analyze >= 10x faster on every model.

Run: ``python benchmarks/bench_any_model.py [--repeat 5] [--models a,b]``. Prints medians and
speed-ups; ``--profile`` prints cProfile's top functions of one ``analyze`` call per model.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import pstats
import statistics
import time
from collections.abc import Callable


def _median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    import torch
    import torchvision
    from fvcore.nn import FlopCountAnalysis

    from hardnet_analysis import analyze

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--models", default="densenet121,resnet50,mobilenet_v2,vit_b_16,swin_t,convnext_tiny"
    )
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    x = torch.zeros(1, 3, 224, 224)
    print(f"median of {args.repeat}, 224x224, batch 1, 1 thread")
    print(f"{'model':<14} {'fvcore':>10} {'analyze':>10} {'speed-up':>9}")
    for name in args.models.split(","):
        model = torchvision.models.get_model(name).eval()

        def fvcore_total(model: torch.nn.Module = model) -> int:
            analysis = FlopCountAnalysis(model, x)
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            return int(analysis.total())

        analyze(model)  # warm caches (signatures, first meta kernels)
        fv_s = _median_seconds(fvcore_total, args.repeat)
        ours_s = _median_seconds(functools.partial(analyze, model), args.repeat)
        print(f"{name:<14} {fv_s * 1e3:8.0f}ms {ours_s * 1e3:8.1f}ms {fv_s / ours_s:8.1f}x")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(analyze, model)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
