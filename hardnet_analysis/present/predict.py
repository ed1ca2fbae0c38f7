"""Terminal tables for device models and latency predictions (rich)."""

from __future__ import annotations

from rich.table import Table

from hardnet_analysis.documents.context_fit import ContextFit
from hardnet_analysis.documents.device_model import DeviceModel
from hardnet_analysis.metrics.explain import Explanation
from hardnet_analysis.metrics.predict import Prediction
from hardnet_analysis.present.fit import Col, FitTable
from hardnet_analysis.units import format_bytes, format_count, format_ms, format_percent


def _rate(seconds_per_unit: float, unit: str) -> str:
    """A coefficient in seconds per unit as the rate it means (``2e-11`` -> ``50G``)."""
    return "-" if seconds_per_unit <= 0 else f"{format_count(1 / seconds_per_unit)}{unit}"


def kinds_table(device: DeviceModel) -> Table:
    """One row per op kind: the form chosen, overhead, attainable rates, fit errors."""
    table = Table(
        title=f"device model: {device.device} {device.machine.name}, {device.threads} threads, "
        f"cache {format_bytes(device.cache_bytes)}"
    )
    for column in ("kind", "form", "overhead us", "work/s", "DRAM B/s", "cache B/s", "n"):
        table.add_column(column, justify="left" if column in ("kind", "form") else "right")
    for column in ("fit err", "LOO max", "LOO sum", "in forward"):
        table.add_column(column, justify="right")
    scales = device.context.kind_scale if device.context else {}
    for k in device.kinds:
        table.add_row(
            k.kind,
            k.form,
            f"{k.overhead_s * 1e6:.1f}" + ("/group" if k.overhead_per_group else ""),
            _rate(k.flop_s, ""),
            _rate(k.dram_byte_s, ""),
            _rate(k.cache_byte_s, ""),
            str(k.n),
            format_percent(k.train_error),
            format_percent(k.loo_max),
            format_percent(k.loo_sum),
            f"{scales[k.kind]:.2f}x" if k.kind in scales else "-",
        )
    return table


def context_table(context: ContextFit) -> Table:
    """The context fit: its coefficients in the title, one row per network timed."""
    per_kind = " x its kind's scale (in forward)" if context.kind_scale else ""
    if context.bandwidth > 0:
        per_kind = f" x its neighbours' factor (bandwidth {context.bandwidth:g})"
    per_op = (
        f"; per-op factors leave-one-network-out {format_percent(context.op_loo_error)}"
        if context.op_loo_error is not None
        else ""
    )
    table = Table(
        title=f"context fit: {context.scale:.3f} x kind time{per_kind} + "
        f"{context.op_s * 1e6:.1f} us per op; leave-one-model-out "
        f"{format_percent(context.loo_error)} ({format_percent(context.loo_within_10pct)} "
        f"within +-10%){per_op}"
    )
    for column in ("network", "input", "ops", "alone ms", "measured ms", "fitted ms", "error"):
        table.add_column(column, justify="left" if column == "network" else "right")
    for m in context.models:
        table.add_row(
            m.model,
            "x".join(map(str, m.input)),
            str(m.ops),
            format_ms(m.isolated_s),
            format_ms(m.measured_s),
            format_ms(m.predicted_s),
            f"{100 * (m.predicted_s / m.measured_s - 1):+.1f}%",
        )
    return table


def prediction_table(prediction: Prediction, top: int | None) -> Table:
    """The layers by predicted time, slowest first (`top` of them, or all)."""
    size = "x".join(map(str, prediction.input))
    table = Table(
        title=f"{prediction.model} @ {size}, batch {prediction.batch}: predicted "
        f"{format_ms(prediction.latency_s)} ms on {prediction.device}"
    )
    for column in ("layer", "kind", "MACs", "bytes", "DRAM est", "ms", "share", "bound"):
        table.add_column(
            column, justify="left" if column in ("layer", "kind", "bound") else "right"
        )
    rows = sorted(prediction.layers, key=lambda r: r.time_s, reverse=True)
    for r in rows[:top] if top else rows:
        table.add_row(
            r.name,
            r.kind,
            format_count(r.macs),
            format_bytes(r.bytes),
            format_bytes(r.dram_bytes_est),
            format_ms(r.time_s),
            format_percent(r.time_s / prediction.latency_s) if prediction.latency_s else "-",
            r.bound,
        )
    return table


def explanation_table(explanation: Explanation) -> FitTable:
    """What makes the model slow: one section per block (its time and share), its layers that
    hold at least the explanation's minimum share, slowest first, with bound, MoC and whether
    the calibration measured anything like them."""
    size = "x".join(map(str, explanation.input))
    bounds = ", ".join(f"{b} {format_percent(s)}" for b, s in explanation.bounds.items())
    table = FitTable(
        f"what makes {explanation.model} @ {size} slow: predicted "
        f"{format_ms(explanation.latency_s)} ms on {explanation.device} ({bounds})",
        [
            Col("block / layer"),
            Col("kind", drop=2),
            Col("ms", "right"),
            Col("share", "right"),
            Col("bound"),
            Col("MoC", "right", drop=1),
            Col("calibration", drop=3),
        ],
        caption=f"layers >= {format_percent(explanation.min_share)} of the time shown: "
        f"{format_percent(explanation.shown_share)} of it",
    )
    for block in explanation.blocks:
        table.add_section()
        table.add_row(
            block.block, "", format_ms(block.time_s), format_percent(block.share), "", "", ""
        )
        for layer in block.layers:
            table.add_row(
                f"  {layer.name}",
                layer.kind,
                format_ms(layer.time_s),
                format_percent(layer.share),
                layer.bound,
                "-" if layer.moc is None else f"{layer.moc:.1f}",
                ("! " if layer.reach.flagged else "") + layer.reach.label(),
            )
    return table
