"""Terminal tables for analyses, comparisons and the model list (rich)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from hardnet_analysis.metrics.analysis import Analysis, GroupRecord, Totals
from hardnet_analysis.units import format_bytes, format_count


def _moc(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape)


def title(analysis: Analysis) -> str:
    return f"{analysis.model} @ {_shape(analysis.input_shape)} {analysis.dtype} ({analysis.source})"


def totals_table(analysis: Analysis) -> Table:
    """Totals: params, MACs, CIO, MoC, minimum layer MoC, activation bytes."""
    t = analysis.totals
    table = Table(title=title(analysis), show_header=True)
    for column in ("params", "MACs", "CIO", "MoC", "min MoC", "act. bytes", "convs"):
        table.add_column(column, justify="right")
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


def layers_table(analysis: Analysis, all_ops: bool = False) -> Table:
    """One row per convolution and linear layer (every op with `all_ops`): name, op, block,
    output shape, params, MACs, CIO, MoC."""
    table = Table(title=f"{title(analysis)}: {'all ops' if all_ops else 'conv and linear layers'}")
    table.add_column("layer", overflow="fold")
    table.add_column("op")
    table.add_column("block")
    table.add_column("output")
    for column in ("params", "MACs", "CIO", "MoC"):
        table.add_column(column, justify="right")
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


def blocks_table(analysis: Analysis) -> Table:
    """One row per block: layers, params, MACs, CIO, MoC."""
    table = Table(title=f"{title(analysis)}: blocks")
    table.add_column("block")
    for column in ("nodes", "params", "MACs", "CIO", "MoC"):
        table.add_column(column, justify="right")
    for g in analysis.by_block():
        if g.name not in ("input", "output"):
            table.add_row(*_group_row(g))
    return table


def compare_table(rows: Sequence[tuple[str, Totals]], input_label: str) -> Table:
    """One row per model, as the HarDNet paper's ImageNet table: params, MACs, CIO, MoC."""
    table = Table(title=f"models @ {input_label}")
    table.add_column("model")
    for column in ("params", "MACs", "CIO", "MoC", "min MoC"):
        table.add_column(column, justify="right")
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
