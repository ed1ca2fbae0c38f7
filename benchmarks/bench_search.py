"""Benchmark: `hda search --budget-macs 4.5G` over the default space, against the naive baseline.

1. End to end: ``python -m hardnet_analysis search --budget-macs 4.5G --format json`` as a
   process (imports, measuring the distinct stages, the sweep, ranking, output), median of
   `--repeat` runs. Target: under 30 s for the default space (3,037,500 candidates) on 2 cores.
2. Naive baseline, in the same run: for a random sample of candidates, build the torch model
   from the definition and count it (forward hooks for MACs/CIO, ``sum(p.numel())`` for
   params). The model is built and run on the meta device, the cheapest form of the baseline,
   so the ratio is conservative. Its counts are checked against the search's.

Run: ``python benchmarks/bench_search.py [--repeat 3] [--sample 5]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.hookcount, the independent counter

COMMAND = [sys.executable, "-m", "hardnet_analysis", "search", "--budget-macs", "4.5G"]


def end_to_end(repeat: int) -> float:
    """Median wall seconds of the whole `hda search` process."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(
            [*COMMAND, "--format", "json"],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def naive_seconds_per_candidate(sample: int) -> float:
    """Median seconds to build one candidate's torch model and count it."""
    import torch

    from hardnet_analysis import create_model
    from hardnet_analysis.search.evaluate import GridEvaluator, PartCosts
    from hardnet_analysis.search.space import default_space, load_template
    from tests.hookcount import hook_count

    space = default_space(load_template("hardnet68"))
    grid = GridEvaluator(space, PartCosts(space, (1, 3, 224, 224)))
    times = []
    for index in random.Random(0).sample(range(space.size), sample):
        defn = space.definition(space.choices(index))
        start = time.perf_counter()
        with torch.device("meta"):
            model = create_model(defn)
        counted = hook_count(model, torch.empty(1, 3, 224, 224, device="meta"))
        params = sum(p.numel() for p in model.parameters())
        times.append(time.perf_counter() - start)
        m = grid.at([index])
        assert (params, counted.macs, counted.cio) == (
            int(m.params[0]),
            int(m.macs[0]),
            int(m.cio[0]),
        ), f"candidate {index}: naive and search counts differ"
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample", type=int, default=5)
    args = parser.parse_args()
    from hardnet_analysis.search.space import default_space, load_template

    size = default_space(load_template("hardnet68")).size
    search_s = end_to_end(args.repeat)
    naive_s = naive_seconds_per_candidate(args.sample)
    naive_total = naive_s * size
    print(f"default space: {size:,} candidates, --budget-macs 4.5G, 224x224, batch 1")
    print(f"  naive: build + hook count, median of {args.sample} (baseline)")
    print(f"    {naive_s * 1e3:9.1f} ms per candidate, {1 / naive_s:12,.1f} candidates/s")
    print(f"    whole space, extrapolated: {naive_total / 3600:.1f} h")
    print(f"  hda search end to end, median of {args.repeat}")
    print(f"    {search_s:9.2f} s in all,        {size / search_s:12,.0f} candidates/s")
    print(f"  speed-up against the baseline: {naive_total / search_s:,.0f}x")
    print(f"  target < 30 s: {'met' if search_s < 30 else 'MISSED'}")


if __name__ == "__main__":
    main()
