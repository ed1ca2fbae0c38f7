"""`hda graph MODEL --out FILE`: export the operation DAG (GraphML or node-link JSON)."""

from __future__ import annotations

import argparse
from typing import Any

from hardnet_analysis.cli.common import (
    add_input_args,
    add_kwargs_arg,
    analyze_model,
    output_file,
)

# Library modules are imported inside the functions that use them: `hda` imports every
# command module to build its parser, and a command loads only what it runs.


def register(subparsers: Any) -> None:
    from hardnet_analysis.graph.export import FORMATS

    parser = subparsers.add_parser(
        "graph",
        help="export a model's operation graph (GraphML or node-link JSON)",
        description="Write the DAG that `hda cio` measures: one node per op (op, block, shapes as "
        "'1x3x224x224' strings, op attributes), one edge per tensor. Loads with "
        "networkx.read_graphml or networkx.node_link_graph.",
    )
    parser.add_argument("model", help="any MODEL that `hda cio` takes")
    parser.add_argument("--out", required=True, type=output_file, help="file to write (atomically)")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="graphml or json (default: from the file's suffix, else graphml)",
    )
    add_input_args(parser)
    add_kwargs_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hardnet_analysis.graph.export import write_graph

    fmt = args.format or ("json" if args.out.suffix.lower() == ".json" else "graphml")
    graph = analyze_model(args, args.model).graph
    path = write_graph(graph, args.out, fmt)
    print(f"wrote {graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges to {path}")
    return 0
