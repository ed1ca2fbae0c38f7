"""Benchmark: hda's traffic models against the kernels ONNX Runtime really runs.

For each model and input size: CIO, the bytes of hda's unfused and fused views of the eager
module (BN kept), the bytes of the kernels ONNX Runtime runs on the model's export
(`metrics.traffic.grouped_traffic` over the optimized graph's kernels, each kernel's nodes as
`profiler.onnxrt.ownership` joins them), the NCHWc reorder kernels ORT adds, and the median
latency of eager PyTorch and of ONNX Runtime at `--threads`. Then, per size, each model's rank
by every figure, and per op how hda's fused view and ORT's kernels fuse it (`FusionRule`; BNs
count as folded where the exporter folded them into their conv).

Run: ``python benchmarks/ort_traffic.py [--sizes 224 512] [--threads 1] [--repeat 10]
[--out results/ort-traffic]``. Exports are cached (``$XDG_CACHE_HOME/hda/onnx``). Say the
machine's load with the figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from timing import median_ms

from hardnet_analysis.analysis import analyze
from hardnet_analysis.fileio import atomic_write_text
from hardnet_analysis.metrics.traffic import fusion_rules, grouped_traffic
from hardnet_analysis.models import create_model
from hardnet_analysis.profiler.onnxrt import export_cached, feeds, kernel_owners, session
from hardnet_analysis.profiler.run_ort import named_groups
from hardnet_analysis.shapes import InputShape

MODELS = [
    "hardnet68",
    "hardnet85",
    "hardnet39ds",
    "hardnet68ds",
    "resnet50",
    "densenet121",
    "mobilenet_v2",
]
FIGURES = ("cio", "hda_unfused", "hda_fused", "ort_kernels", "eager_ms", "ort_ms")


def measure(model: str, size: int, threads: int, repeat: int) -> dict[str, Any]:
    """One model at one size: every figure of the module docstring."""
    shape = InputShape.of_image(size)
    module = create_model(model).eval()
    eager = analyze(module, shape)
    exported = export_cached(model, module, shape)
    graph = analyze(str(exported.path), shape)
    owners = kernel_owners(exported.path, graph.graph, threads)
    groups = named_groups(owners, graph)
    sess = session(exported.path, threads)
    data = feeds(sess, shape)
    x = torch.randn(shape.image)
    with torch.inference_mode():
        eager_ms = median_ms(lambda: module(x), repeat)
    return {
        "model": model,
        "size": size,
        "cio": eager.totals.cio,
        "hda_unfused": eager.totals.bytes,
        "hda_fused": eager.totals.fused_bytes,
        "ort_kernels": sum(g.bytes for g in grouped_traffic(graph, groups)),
        "kernels": sum(1 for nodes in owners.values() if nodes),
        "reorders": sum(1 for nodes in owners.values() if not nodes),
        "bn_folded": len(graph.folded_bn),
        "bn": sum(1 for r in eager.layers if r.op == "batchnorm"),
        "fusion": [rule.__dict__ for rule in fusion_rules(graph, groups)],
        "eager_ms": eager_ms,
        "ort_ms": median_ms(lambda: sess.run(None, data), repeat),
    }


def ranks(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per model, its rank (1 = least) by each figure among `rows` (one size)."""
    out: dict[str, dict[str, int]] = {r["model"]: {} for r in rows}
    for figure in FIGURES:
        for rank, row in enumerate(sorted(rows, key=lambda r: r[figure]), start=1):
            out[row["model"]][figure] = rank
    return out


def markdown(rows: list[dict[str, Any]], threads: int) -> str:
    lines = [
        f"| model | size | CIO (M) | hda unfused (MB) | hda fused (MB) | ORT kernels (MB) | "
        f"kernels + reorders | eager ms | ORT ms | ORT/eager | ranks CIO/fused/ORT-bytes/ORT-ms "
        f"({threads} thread{'s' * (threads > 1)}) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_size: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_size.setdefault(row["size"], []).append(row)
    for size, group in by_size.items():
        ranked = ranks(group)
        for r in group:
            k = ranked[r["model"]]
            lines.append(
                f"| {r['model']} | {size} | {r['cio'] / 1e6:.1f} | {r['hda_unfused'] / 1e6:.0f} | "
                f"{r['hda_fused'] / 1e6:.0f} | {r['ort_kernels'] / 1e6:.0f} | "
                f"{r['kernels']} + {r['reorders']} | {r['eager_ms']:.1f} | {r['ort_ms']:.1f} | "
                f"{r['ort_ms'] / r['eager_ms']:.2f} | {k['cio']}/{k['hda_fused']}/"
                f"{k['ort_kernels']}/{k['ort_ms']} |"
            )
    return "\n".join(lines) + "\n"


def fusion_table(rows: list[dict[str, Any]]) -> str:
    """Per op, summed over every row: nodes, fused by hda, by ORT, by both."""
    totals: dict[str, list[int]] = {}
    for row in rows:
        for rule in row["fusion"]:
            acc = totals.setdefault(rule["op"], [0, 0, 0, 0])
            for i, key in enumerate(("nodes", "hda", "runtime", "both")):
                acc[i] += rule[key]
    bn = sum(r["bn"] for r in rows), sum(r["bn_folded"] for r in rows)
    lines = [
        "| op | nodes | hda fuses | ORT fuses | both |",
        "|---|---|---|---|---|",
        f"| batchnorm (eager module) | {bn[0]} | - | {bn[1]} folded at export | - |",
    ]
    lines += [f"| {op} | {n} | {h} | {o} | {b} |" for op, (n, h, o, b) in totals.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--sizes", nargs="+", type=int, default=[224, 512])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for size in args.sizes:
        for model in args.models:
            rows.append(measure(model, size, args.threads, args.repeat))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "fusion"}), flush=True)
    text = markdown(rows, args.threads) + "\n" + fusion_table(rows)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out / "runs.json", json.dumps(rows, indent=1) + "\n")
        atomic_write_text(args.out / "tables.md", text)


if __name__ == "__main__":
    main()
