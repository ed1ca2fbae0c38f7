"""Terminal tables for analyses, comparisons and the model list (rich)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hardnet_analysis.metrics.analysis import Analysis, GroupRecord, Totals
from hardnet_analysis.present.fit import Col, FitTable
from hardnet_analysis.units import format_bytes, format_count


def _moc(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape)


def title(analysis: Analysis) -> str:
    """``hardnet68 @ 1x3x224x224 fp32 (analytic)``; every input of a model that takes several
    (``net @ 1x3x8x8 + 1x1x8x8 fp32 (traced)``)."""
    inputs = [_shape(r.out_shape) for r in analysis.layers if r.op == "input"]
    shapes = " + ".join(inputs) or _shape(analysis.input_shape)
    return f"{analysis.model} @ {shapes} {analysis.dtype} ({analysis.source})"


def totals_table(analysis: Analysis) -> FitTable:
    """Totals: params, MACs, CIO, MoC, minimum layer MoC, activation bytes."""
    t = analysis.totals
    names = ("params", "MACs", "CIO", "MoC", "min MoC", "act. bytes", "convs")
    columns = [Col(name, "right", drop=int(name in ("act. bytes", "convs"))) for name in names]
    table = FitTable(title(analysis), columns)
    table.add_row(
        format_count(t.params),
        format_count(t.macs),
        format_count(t.cio),
        _moc(t.moc),
        _moc(t.min_moc),
        format_bytes(t.act_bytes),
        str(t.conv_layers),
    )
    return table


#: The counts every per-layer and per-model table ends with, right-aligned, kept longest.
COUNTS = (Col("params", "right", drop=2), Col("MACs", "right"), Col("CIO", "right"))


def layers_table(analysis: Analysis, all_ops: bool = False) -> FitTable:
    """One row per convolution and linear layer (every op with `all_ops`): name, op, block,
    output shape, params, MACs, CIO, MoC. Narrow terminals lose output, op, params, block."""
    columns = [
        Col("layer"),
        Col("op", drop=3),
        Col("block", drop=1, shorten=True),
        Col("output", drop=4, shorten=True),
        *COUNTS,
        Col("MoC", "right"),
    ]
    what = "all ops" if all_ops else "conv and linear layers"
    table = FitTable(f"{title(analysis)}: {what}", columns)
    for r in analysis.layers:
        if r.op in ("input", "output") or not (all_ops or r.op in ("conv", "linear")):
            continue
        table.add_row(
            r.name,
            r.op,
            r.block,
            _shape(r.out_shape),
            format_count(r.params),
            format_count(r.macs),
            format_count(r.cio),
            _moc(r.moc),
        )
    return table


def _group_row(g: GroupRecord) -> list[str]:
    t = g.totals
    return [
        g.name,
        str(g.layers),
        format_count(t.params),
        format_count(t.macs),
        format_count(t.cio),
        _moc(t.moc),
    ]


def blocks_table(analysis: Analysis) -> FitTable:
    """One row per block: layers, params, MACs, CIO, MoC."""
    columns = [Col("block"), Col("nodes", "right", drop=3), *COUNTS, Col("MoC", "right")]
    table = FitTable(f"{title(analysis)}: blocks", columns)
    for g in analysis.by_block():
        if g.name not in ("input", "output"):
            table.add_row(*_group_row(g))
    return table


def compare_table(rows: Sequence[tuple[str, Totals]], input_label: str) -> FitTable:
    """One row per model, as the HarDNet paper's ImageNet table: params, MACs, CIO, MoC."""
    columns = [Col("model"), *COUNTS, Col("MoC", "right"), Col("min MoC", "right", drop=1)]
    table = FitTable(f"models @ {input_label}", columns)
    for name, t in rows:
        table.add_row(
            name,
            format_count(t.params),
            format_count(t.macs),
            format_count(t.cio),
            _moc(t.moc),
            _moc(t.min_moc),
        )
    return table


def models_table(records: Sequence[dict[str, Any]]) -> FitTable:
    """`hda models`: name, family, input, computed params/MACs/CIO, published figures."""
    columns = [
        Col("model"),
        Col("family", drop=2, shorten=True),
        Col("input", "right", drop=3),
        *COUNTS,
        Col("published params / MACs / top-1", drop=1),
    ]
    table = FitTable("registered models (computed at each model's input, batch 1)", columns)
    for r in records:
        published = " / ".join(
            "-" if r[k] is None else (f"{r[k]:g}%" if k == "published_top1" else format_count(r[k]))
            for k in ("published_params", "published_macs", "published_top1")
        )
        table.add_row(
            r["model"],
            r["family"],
            str(r["input"]),
            format_count(r["params"]),
            format_count(r["macs"]),
            format_count(r["cio"]),
            published,
        )
    return table
