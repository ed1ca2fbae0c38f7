"""Tables for profile runs and correlations (rich). Nothing here measures or computes fits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from hardnet_analysis.profiler.document import ProfileRun
from hardnet_analysis.units import format_bytes, format_count


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def runs_table(runs: Sequence[ProfileRun]) -> Table:
    """One row per run: model, input, device, median latency and spread, layer sum / whole,
    MACs, CIO, modeled bytes, measured DRAM bytes with their source."""
    table = Table(title="profile runs (latency in ms: median, p25-p75)")
    for column in ("model", "input", "device", "median", "p25-p75", "layers/whole"):
        table.add_column(column, justify="left" if column in ("model", "device") else "right")
    for column in ("MACs", "CIO", "model bytes", "DRAM bytes"):
        table.add_column(column, justify="right")
    for run in runs:
        lat, dram = run.latency, run.dram
        measured = "-" if dram is None else f"{format_bytes(dram.total)} ({dram.source})"
        table.add_row(
            run.model,
            run.size,
            run.device.used,
            _ms(lat.median_s),
            f"{_ms(lat.p25_s)}-{_ms(lat.p75_s)}",
            f"{run.layer_sum_ratio:.2f}",
            format_count(run.totals.macs),
            format_count(run.totals.cio),
            format_bytes(run.totals.model_bytes),
            measured,
        )
    return table


def layers_table(run: ProfileRun) -> Table:
    """One row per layer key of a run: time, share, ops, MACs, modeled bytes, MoC, bound."""
    total = run.layer_sum_s or 1.0
    table = Table(title=f"{run.model} @ {run.size} per layer")
    table.add_column("layer", overflow="fold")
    table.add_column("ops")
    for column in ("ms", "%", "MACs", "model bytes", "MoC", "bound"):
        table.add_column(column, justify="right")
    for layer in run.layers:
        moc = f"{layer.macs / layer.cio:.1f}" if layer.cio else "-"
        table.add_row(
            layer.name,
            ",".join(layer.ops) or "-",
            _ms(layer.time_s),
            f"{100 * layer.time_s / total:.1f}",
            format_count(layer.macs),
            format_bytes(layer.model_bytes),
            moc,
            layer.roofline.bound,
        )
    return table


def correlation_table(rows: Sequence[dict[str, Any]]) -> Table:
    """One row per (level, device, predictor): n, Pearson r [CI], Spearman rho [CI], fit."""
    table = Table(title="latency against each predictor (95% confidence intervals)")
    for column in ("level", "device", "predictor", "source", "n", "Pearson r", "Spearman rho"):
        table.add_column(column, justify="right" if column == "n" else "left")
    table.add_column("fit: s per unit", justify="right")
    for r in rows:
        table.add_row(
            r["level"],
            r["device"],
            r["predictor"],
            r["source"],
            str(r["n"]),
            f"{r['pearson']:.3f} [{r['pearson_ci'][0]:.2f}, {r['pearson_ci'][1]:.2f}]",
            f"{r['spearman']:.3f} [{r['spearman_ci'][0]:.2f}, {r['spearman_ci'][1]:.2f}]",
            f"{r['slope']:.3g}",
        )
    return table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def predictor_table(score: dict[str, Any]) -> Table:
    """Predicted vs measured per run, with MAPE and share within +-10% (raw and
    leave-one-model-out scaled) and the per-layer figures in the title."""
    table = Table(
        title=f"device-model predictor on {score['device']}: MAPE {_pct(score['mape'])}, "
        f"{_pct(score['within_10pct'])} within +-10% (leave-one-model-out scaled: "
        f"{_pct(score['lomo_mape'])}, {_pct(score['lomo_within_10pct'])}); "
        f"{score['layers']} layers: MAPE {_pct(score['layer_mape'])}, "
        f"{_pct(score['layer_within_10pct'])} within +-10%"
    )
    for column in ("model", "input", "measured ms", "predicted ms", "error", "LOMO ms"):
        table.add_column(column, justify="left" if column in ("model", "input") else "right")
    for m in score["models"]:
        lomo = m["lomo_predicted_s"]
        table.add_row(
            m["model"],
            m["input"],
            _ms(m["measured_s"]),
            _ms(m["predicted_s"]),
            f"{100 * m['error']:+.1f}%",
            "-" if lomo is None else _ms(lomo),
        )
    return table
