"""The report: self-contained HTML that renders in a real browser (headless Chromium), with the
correlations ``hda correlate`` computes, per device."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hardnet_analysis.cli.correlate import load_runs
from hardnet_analysis.cli.main import main
from hardnet_analysis.metrics.correlate import layer_points
from hardnet_analysis.profiler.document import ProfileRun
from reports import latency_report, write_report
from reports.latency import scatter_figure


def test_html_is_self_contained(profiled_runs: list[Path]) -> None:
    page = latency_report(load_runs(profiled_runs))
    assert "<script src=" not in page  # plotly.js inlined, nothing fetched
    assert "Plotly.newPlot" in page and page.count("Plotly.newPlot") == 2


def on_other_device(run: ProfileRun, slower: float) -> ProfileRun:
    """`run` as if timed on another CPU `slower` times slower (one CPU here has one device)."""
    layers = tuple(replace(layer, time_s=layer.time_s * slower) for layer in run.layers)
    return replace(run, device=replace(run.device, name="other cpu"), layers=layers)


def test_report_r_is_per_device_as_correlate_computes_it(
    profiled_runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = load_runs(profiled_runs[:2])
    runs = [first, on_other_device(second, 30.0)]
    files = [str(run.save(tmp_path / f"run{i}.json")) for i, run in enumerate(runs)]
    assert main(["correlate", *files, "--format", "json"]) == 0
    found = json.loads(capsys.readouterr().out)["correlations"]
    expected = {f"{c['pearson']:.3f}" for c in found if c["predictor"] in ("model_bytes", "macs")}
    assert {c["device"] for c in found} == {
        "cpu other cpu fp32 1 threads",
        f"cpu {first.device.name} fp32 1 threads",
    }
    names = [trace.name or "" for trace in scatter_figure(runs).data]
    shown = {m for name in names for m in re.findall(r"r = (-?\d\.\d{3})", name)}
    assert shown == expected and len(shown) > 1
    points = layer_points(runs)  # the old report's r: both devices' layers pooled
    pooled = np.corrcoef([p.features["macs"] for p in points], [p.latency for p in points])
    assert f"{pooled[0, 1]:.3f}" not in shown


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(profiled_runs: list[Path], tmp_path: Path) -> None:
    page = write_report(load_runs(profiled_runs), tmp_path / "report.html")
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    assert dom.count('class="main-svg"') >= 4  # two figures, each with its svg layers
    assert "scatterlayer" in dom and "barlayer" in dom  # the traces were drawn
