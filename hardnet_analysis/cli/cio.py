"""`hda cio MODEL`: params, MACs, CIO and MoC of one model, in total, per block or per layer."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hardnet_analysis.cli.common import (
    add_format_arg,
    add_input_args,
    add_kwargs_arg,
    analyze_model,
    byte_size,
    console,
    note_real_run,
)
from hardnet_analysis.metrics.analysis import Analysis
from hardnet_analysis.metrics.cache import cache_traffic
from hardnet_analysis.present.formats import write_csv, write_json
from hardnet_analysis.present.tables import blocks_table, layers_table, totals_table
from hardnet_analysis.units import format_bytes, format_count


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cio",
        help="memory traffic (CIO), MACs, params and MoC of one model",
        description="Memory-traffic analysis of one model: CIO (elements), MACs, params and MoC "
        "of every convolution and linear layer, then the totals. CSV prints one row per op "
        "(per block with --by-block).",
    )
    parser.add_argument(
        "model",
        help="registered name (see `hda models`), torchvision classifier, *.json definition, "
        "package.module:callable or path/to/file.py:callable",
    )
    add_input_args(parser)
    add_kwargs_arg(parser)
    parser.add_argument(
        "--per-layer",
        action="store_true",
        help="one row per op (BN, activations, pooling, concat too), not only conv/linear",
    )
    parser.add_argument(
        "--by-block", action="store_true", help="one row per block instead of per layer"
    )
    parser.add_argument(
        "--cache",
        type=byte_size,
        metavar="SIZE",
        help="also estimate DRAM bytes per layer through a last-level cache of SIZE (50MB, "
        "2MiB): dram_bytes_est beside CIO and the unfused and fused bytes",
    )
    add_format_arg(parser)
    parser.set_defaults(func=run)


def _report_unhandled(analysis: Analysis) -> None:
    if analysis.unhandled:
        reasons = {u.op: u.reason for u in analysis.unhandled}
        ops = [f"{op} ({why})" if why else op for op, why in sorted(reasons.items())]
        print(
            f"hda: warning: {len(analysis.unhandled)} ops have no cost handler and are not "
            f"counted (coverage {analysis.coverage:.1%} of ops): {', '.join(ops)}",
            file=sys.stderr,
        )
    unused = analysis.unused_params
    if unused:
        print(
            f"hda: note: {sum(unused.values()):,} parameters in {len(unused)} tensors are never "
            f"used by the forward and not counted (e.g. {next(iter(unused))})",
            file=sys.stderr,
        )
    folded = analysis.folded_bn
    if folded:
        conv, bn = next(iter(folded.items()))
        example = f"{conv} <- {bn}" if bn else conv
        print(
            f"hda: note: the exporter folded {len(folded)} BatchNorms into the convs before them "
            f"(e.g. {example}); their weights and biases are not in params",
            file=sys.stderr,
        )


def _document(analysis: Analysis, cache: int | None) -> dict[str, Any]:
    """The analysis as JSON, with `cache_bytes` and every layer's (and the totals')
    `dram_bytes_est` when a cache size is given."""
    document = analysis.to_dict()
    if cache is None:
        return document
    flow = cache_traffic(analysis, cache)
    for layer, est in zip(document["layers"], flow.layers, strict=True):
        layer["dram_bytes_est"] = est.dram_bytes_est
    document["totals"]["dram_bytes_est"] = flow.dram_bytes_est
    return {"cache_bytes": cache, **document}


def run(args: argparse.Namespace) -> int:
    analysis = analyze_model(args, args.model)
    _report_unhandled(analysis)
    note_real_run(analysis)
    if args.format == "json":
        write_json(_document(analysis, args.cache))
    elif args.format == "csv":
        document = _document(analysis, args.cache)
        write_csv(document["blocks"] if args.by_block else document["layers"])
    else:
        out = console()
        if args.by_block:
            out.print(blocks_table(analysis))
        else:
            out.print(layers_table(analysis, all_ops=args.per_layer))
        out.print(totals_table(analysis))
        if args.cache is not None:
            est = cache_traffic(analysis, args.cache).dram_bytes_est
            out.print(
                f"estimated DRAM bytes through a {format_count(args.cache)}B cache: "
                f"{format_bytes(est)} (unfused {format_bytes(analysis.totals.bytes)}, fused "
                f"{format_bytes(analysis.totals.fused_bytes)})"
            )
    return 0
