"""The report: self-contained HTML that renders in a real browser (headless Chromium)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reports import latency_report, write_report
from tests.test_correlate import RUNS


def _with_layer_views(runs: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    for run in runs:
        for layer in run["layers"]:
            layer["roofline"] = {"bound": "memory", "intensity": 1.0, "time_s": 1e-4}
    return runs


def test_html_is_self_contained() -> None:
    page = latency_report(_with_layer_views(RUNS))
    assert "<script src=" not in page  # plotly.js inlined, nothing fetched
    assert "Plotly.newPlot" in page and page.count("Plotly.newPlot") == 2


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    page = write_report(_with_layer_views(RUNS), tmp_path / "report.html")
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
