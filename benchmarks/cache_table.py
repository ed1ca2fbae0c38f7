"""The cache-aware traffic table: HarDNet-68, ResNet-50 and DenseNet-121 from 224 to 1024 on a
50 MiB cache (H100's L2, 52,428,800 bytes as the device reports it) and a 2 MiB one (GTX 1080).

Pure analysis (no timing): CIO, the unfused and fused byte counts and ``dram_bytes_est`` from
``metrics.cache`` at batch 1, fp32. Writes ``results/cache-traffic/cache.json`` and
``RESULTS.md`` there. Run: ``python benchmarks/cache_table.py [--out results/cache-traffic]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hardnet_analysis.analysis import analyze
from hardnet_analysis.metrics.cache import cache_traffic

MODELS = ("hardnet68", "resnet50", "densenet121")
SIZES = (224, 320, 512, 768, 1024)
CACHES = {"50MiB": 50 * 2**20, "2MiB": 2 * 2**20}
MB = 1e6


def measure(models: tuple[str, ...], sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """One row per (model, size): CIO (elements), bytes unfused/fused and the estimates."""
    rows = []
    for model in models:
        for size in sizes:
            analysis = analyze(model, size)
            row: dict[str, Any] = {"model": model, "input": size, "cio": analysis.totals.cio}
            row |= {"bytes": analysis.totals.bytes, "fused_bytes": analysis.totals.fused_bytes}
            for label, cache in CACHES.items():
                row[f"dram_bytes_est_{label}"] = cache_traffic(analysis, cache).dram_bytes_est
            rows.append(row)
    return rows


def _ratio(rows: list[dict[str, Any]], size: int, key: str) -> str:
    by = {r["model"]: r[key] for r in rows if r["input"] == size}
    return f"{by['hardnet68'] / by['resnet50']:.2f} / {by['hardnet68'] / by['densenet121']:.2f}"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table in MB (10^6 bytes; CIO as fp32 bytes), then HarDNet-68's ratios."""
    head = "| model | input | CIO (MB fp32) | unfused MB | fused MB | DRAM est 50 MiB | "
    lines = [head + "DRAM est 2 MiB |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [r["cio"] * 4, r["bytes"], r["fused_bytes"]]
        cells += [r[f"dram_bytes_est_{label}"] for label in CACHES]
        numbers = " | ".join(f"{c / MB:,.0f}" for c in cells)
        lines.append(f"| {r['model']} | {r['input']} | {numbers} |")
    lines += ["", "HarDNet-68 / ResNet-50 and HarDNet-68 / DenseNet-121:", ""]
    lines += ["| input | CIO | DRAM est 50 MiB | DRAM est 2 MiB |", "|---|---|---|---|"]
    for size in sorted({r["input"] for r in rows}):
        keys = ["cio", *(f"dram_bytes_est_{label}" for label in CACHES)]
        lines.append(f"| {size} | " + " | ".join(_ratio(rows, size, k) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("results/cache-traffic"))
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args()
    rows = measure(MODELS, tuple(args.sizes))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cache.json").write_text(json.dumps(rows, indent=2) + "\n")
    table = markdown(rows)
    header = (
        "# Cache-aware DRAM traffic estimate (batch 1, fp32, unfused eager schedule)\n\n"
        "Command: `python benchmarks/cache_table.py` (pure analysis, no timing). MB are 10^6 "
        "bytes; CIO is shown as fp32 bytes.\n\n"
    )
    (args.out / "RESULTS.md").write_text(header + table)
    print(table)


if __name__ == "__main__":
    main()
