"""Tables for profile runs and correlations. Nothing here measures or computes fits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hardnet_analysis.documents.latency_model import LatencyModel
from hardnet_analysis.documents.profile_run import ProfileRun
from hardnet_analysis.present.fit import Col, FitTable
from hardnet_analysis.units import format_bytes, format_count, format_ms, format_percent


def runs_table(runs: Sequence[ProfileRun]) -> FitTable:
    """One row per run: model, input, what ran (`ProfileRun.setup`), median latency and
    spread, layer sum / whole, page faults per timed forward (where counted), MACs, CIO,
    modeled bytes, measured DRAM bytes with their source."""
    columns = [
        Col("model"),
        Col("input", "right"),
        Col("run", drop=1, shorten=True),
        Col("median", "right"),
        Col("p25-p75", "right", drop=5),
        Col("layers/whole", "right", drop=6),
        Col("faults", "right", drop=8),
        Col("MACs", "right", drop=3),
        Col("CIO", "right", drop=4),
        Col("model bytes", "right", drop=2),
        Col("DRAM bytes", "right", drop=7),
    ]
    table = FitTable("profile runs (latency in ms: median, p25-p75)", columns)
    for run in runs:
        lat, dram = run.latency, run.dram
        measured = "-" if dram is None else f"{format_bytes(dram.total)} ({dram.source})"
        table.add_row(
            run.model,
            run.size,
            run.setup,
            format_ms(lat.median_s),
            f"{format_ms(lat.p25_s)}-{format_ms(lat.p75_s)}",
            f"{run.layer_sum_ratio:.2f}",
            "-" if run.page_faults is None else f"{run.page_faults:,.0f}",
            format_count(run.totals.macs),
            format_count(run.totals.cio),
            format_bytes(run.totals.model_bytes),
            measured,
        )
    return table


def layers_table(run: ProfileRun) -> FitTable:
    """One row per layer key of a run: time, share, ops, MACs, modeled bytes, MoC, bound."""
    total = run.layer_sum_s or 1.0
    columns = [
        Col("layer"),
        Col("ops", drop=5, shorten=True),
        Col("ms", "right"),
        Col("%", "right"),
        Col("MACs", "right", drop=3),
        Col("model bytes", "right", drop=2),
        Col("MoC", "right", drop=4),
        Col("bound", drop=1),
    ]
    table = FitTable(f"{run.model} @ {run.size} per layer ({run.setup})", columns)
    for layer in run.layers:
        moc = f"{layer.macs / layer.cio:.1f}" if layer.cio else "-"
        table.add_row(
            layer.name,
            ",".join(layer.ops) or "-",
            format_ms(layer.time_s),
            f"{100 * layer.time_s / total:.1f}",
            format_count(layer.macs),
            format_bytes(layer.model_bytes),
            moc,
            layer.roofline.bound,
        )
    return table


def _interval(value: float, ci: Sequence[float]) -> str:
    return f"{value:.3f} [{ci[0]:.2f},{ci[1]:.2f}]"


def correlation_tables(rows: Sequence[dict[str, Any]]) -> list[tuple[FitTable, str]]:
    """One table per device (its label in the title) with the device label, one row per
    (level, predictor): n, Pearson r [CI], Spearman rho [CI], fit."""
    columns = [
        Col("level"),
        Col("predictor"),
        Col("source", drop=2),
        Col("n", "right"),
        Col("Pearson r", "right"),
        Col("Spearman rho", "right", drop=1),
        Col("s per unit", "right", drop=3),
    ]
    tables: dict[str, FitTable] = {}
    for r in rows:
        title = f"latency against each predictor on {r['device']} (95% confidence intervals)"
        table = tables.setdefault(r["device"], FitTable(title, columns))
        table.add_row(
            r["level"],
            r["predictor"],
            r["source"],
            str(r["n"]),
            _interval(r["pearson"], r["pearson_ci"]),
            _interval(r["spearman"], r["spearman_ci"]),
            f"{r['slope']:.3g}",
        )
    return [(table, device) for device, table in tables.items()]


def latency_model_table(models: Sequence[LatencyModel]) -> FitTable:
    """One row per latency model of one device: its formula (seconds), its mean relative error
    on the runs it was fitted to and left one model out."""
    columns = [
        Col("latency model (s)"),
        Col("train error", "right"),
        Col("leave-one-model-out", "right"),
    ]
    table = FitTable("latency models (non-negative least squares)", columns)
    for m in models:
        terms = " + ".join(f"{c:.3g}*{f}" for c, f in zip(m.coef, m.features, strict=True))
        table.add_row(
            f"{terms} + {m.intercept:.3g}",
            format_percent(m.train_error),
            format_percent(m.lomo_error),
        )
    return table


def _op_title(ops: dict[str, Any] | None) -> str:
    """The per-op figures for a title (empty for runs without per-op times)."""
    if not ops:
        return ""
    return (
        f"; {ops['ops']} ops >= 1% (profiler): MAPE {format_percent(ops['mape'])}, convs "
        f"{format_percent(ops['conv_mape'])}, Spearman {ops['spearman']:.2f}"
        + (
            f", at run speed {format_percent(ops['speed_mape'])}"
            if ops.get("speed_mape") is not None
            else ""
        )
    )


def _speed_title(score: dict[str, Any]) -> str:
    """The figures at each run's speed for a title (empty where probes are missing)."""
    if score.get("speed_mape") is None:
        return ""
    return (
        f"; at run speed (load probes): {format_percent(score['speed_mape'])}, "
        f"{format_percent(score['speed_within_10pct'])}"
    )


def predictor_table(score: dict[str, Any]) -> FitTable:
    """Predicted vs measured per run, with MAPE and share within +-10% (raw, leave-one-model-out
    scaled and at each run's speed) and the per-layer figures in the title."""
    table = FitTable(
        f"device-model predictor on {score['device']}: MAPE {format_percent(score['mape'])}, "
        f"{format_percent(score['within_10pct'])} within +-10% (leave-one-model-out scaled: "
        f"{format_percent(score['lomo_mape'])}, {format_percent(score['lomo_within_10pct'])}"
        f"{_speed_title(score)}); "
        f"{score['layers']} layers: MAPE {format_percent(score['layer_mape'])}, "
        f"{format_percent(score['layer_within_10pct'])} within +-10%{_op_title(score['ops'])}",
        [
            Col("model"),
            Col("input", "right"),
            Col("measured ms", "right"),
            Col("predicted ms", "right"),
            Col("error", "right"),
            Col("LOMO ms", "right", drop=1),
            Col("at run speed", "right", drop=1),
        ],
    )
    for m in score["models"]:
        lomo, speed = m["lomo_predicted_s"], m.get("speed_error")
        table.add_row(
            m["model"],
            str(m["input"]),
            format_ms(m["measured_s"]),
            format_ms(m["predicted_s"]),
            f"{100 * m['error']:+.1f}%",
            "-" if lomo is None else format_ms(lomo),
            "-" if speed is None else f"{100 * speed:+.1f}%",
        )
    return table
