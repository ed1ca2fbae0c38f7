"""`hda report`: one offline page from models, profile runs, a search and training runs; the
figures' numbers are `hardnet_analysis`'s (correlations per device, power-law fits), and every
section renders in headless Chromium at 1400 and 800 px without errors or overlapping titles."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from plotly.offline import get_plotlyjs

from hardnet_analysis.cli.common.runs import load_runs
from hardnet_analysis.cli.main import main
from hardnet_analysis.documents.fronts import (
    SearchFront,
    SearchSample,
    TrainedCandidate,
    TrainedFront,
)
from hardnet_analysis.documents.profile_run import DramBytes, ProfileRun
from hardnet_analysis.metrics.correlate import correlations, model_points, power_fit
from hardnet_analysis.reports import ReportInputs, build_report
from hardnet_analysis.reports import search as search_report
from hardnet_analysis.reports.latency import panel
from hardnet_analysis.reports.search import (
    EMITTED,
    FRONT,
    RANKED,
    TRAINED,
    SearchDir,
    choices_figure,
    latency_figure,
    space_figure,
)
from hardnet_analysis.train.runlog import write_metrics
from tests.browser import CHROMIUM, render

TINY = str(Path(__file__).parent / "data" / "tinyhardnet.json")
SECTIONS = ["models", "latency", "prediction", "roofline", "search", "training"]


def test_page_is_self_contained(profiled_runs: list[Path]) -> None:
    page = build_report(ReportInputs(runs=load_runs(profiled_runs)))
    assert "<script src=" not in page  # nothing fetched
    assert page.count(get_plotlyjs()[:300]) == 1  # plotly.js inlined once
    assert page.count("Plotly.newPlot") >= 6


def on_other_device(run: ProfileRun, slower: float) -> ProfileRun:
    """`run` as if timed on another CPU `slower` times slower (one CPU here has one device)."""
    layers = tuple(replace(layer, time_s=layer.time_s * slower) for layer in run.layers)
    latency = replace(run.latency, median_s=run.latency.median_s * slower)
    return replace(
        run, device=replace(run.device, name="other cpu"), layers=layers, latency=latency
    )


def test_r_and_n_are_correlates_per_device(profiled_runs: list[Path]) -> None:
    runs = load_runs(profiled_runs)
    runs += [on_other_device(run, 30.0) for run in runs]
    found = correlations(runs)
    title = panel(runs, "macs", found).layout.title.text
    expected = {
        f"r = {c.pearson:.2f}, n = {c.n}" for c in found if c.predictor == "macs"
    }  # both levels, both devices, never pooled
    shown = set(re.findall(r"r = -?\d\.\d\d, n = \d+", title))
    assert shown == expected and len({c.device for c in found}) == 2


def test_fit_is_a_straight_line_on_log_axes(profiled_runs: list[Path]) -> None:
    runs = load_runs(profiled_runs)
    fig = panel(runs, "model_bytes", correlations(runs))
    (line,) = [t for t in fig.data if (t.name or "").startswith("models fit")]
    x, y = map(lambda v: [math.log10(a) for a in v], (line.x, line.y))
    slopes = {round((y[i + 1] - y[i]) / (x[i + 1] - x[i]), 6) for i in range(len(x) - 1)}
    fit = power_fit(model_points(runs), "model_bytes", "model")
    assert fit is not None and slopes == {round(fit.exponent, 6)} and min(line.y) > 0
    assert fig.layout.xaxis.type == "log" and "(B)" in fig.layout.xaxis.title.text


def test_measured_and_modelled_bytes_never_share_an_axis(profiled_runs: list[Path]) -> None:
    runs = load_runs(profiled_runs)
    measured = replace(runs[0], dram=DramBytes("perf", 1e6, 2e6))
    mixed = [measured, *runs[1:]]
    dram = panel(mixed, "dram_bytes", correlations(mixed))
    xs = {x for trace in dram.data if trace.mode and "text" in trace.mode for x in trace.x}
    assert xs == {3e6} and "perf" in dram.layout.xaxis.title.text
    modelled = panel(mixed, "model_bytes", correlations(mixed))
    xs = {x for trace in modelled.data if trace.mode and "text" in trace.mode for x in trace.x}
    assert xs == {float(r.totals.model_bytes) for r in runs}


@pytest.fixture(scope="module")
def search_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `hda search --out` of the tiny HarDNet's space, with a trained front written as
    the pool would (accuracies made up: training is tested elsewhere)."""
    out = tmp_path_factory.mktemp("search")
    argv = ["search", "--template", TINY, "--input", "32", "--k", "x0.75,x1", "--m", "1.5,1.6"]
    assert main([*argv, "--out", str(out), "--emit", "3", "--format", "json"]) == 0
    front = SearchFront.read(out / "front.json")
    rows = [
        TrainedCandidate(c, "done", 90.0 + i, 99.0, 90.0 + i, None, f"runs/{c.id}", 1)
        for i, c in enumerate(front.candidates)
    ]
    TrainedFront("hda-test", "sqlite:///optuna.db", tuple(rows)).write(out / "front_trained.json")
    assert json.loads((out / "sample.json").read_text())["space_size"] == 72
    return out


@pytest.fixture(scope="module")
def training_dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two run directories as `hda train` leaves them (metrics files only)."""
    out = tmp_path_factory.mktemp("training")
    for name, lr in (("a", 0.1), ("b", 0.05)):
        rows = [{"epoch": e, "train_loss": 2 / e, "val_loss": 2.2 / e, "train_top1": 30 * e,
                 "val_top1": 28 * e, "lr": lr / e} for e in (1, 2, 3)]  # fmt: skip
        write_metrics(out / name, rows)
    return out


@pytest.fixture(scope="module")
def report_page(
    profiled_runs: list[Path],
    search_dir: Path,
    training_dirs: Path,
    device_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """`hda report` of all four kinds of input, with a device model's predictions."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    inputs = [TINY, str(profiled_runs[0].parent), str(search_dir), str(training_dirs)]
    device = ["--device-model", str(device_file)]
    assert main(["report", *inputs, "--input", "64", *device, "--out", str(out)]) == 0
    return out


def test_prediction_figures_are_the_predictors_score(
    profiled_runs: list[Path], device_file: Path
) -> None:
    from hardnet_analysis.metrics.predictor_score import score_file
    from hardnet_analysis.reports.prediction import errors, scatter

    runs = [ProfileRun.read(p) for p in profiled_runs]
    found = score_file(runs, device_file)
    points = [t for t in scatter(found).data if t.mode == "markers+text"]
    assert sorted(p.y[0] for p in points) == sorted(m.predicted_s * 1e3 for m in found.models)
    assert sorted(errors(found).data[0].x) == sorted(100 * m.error for m in found.models)
    assert f"MAPE {100 * found.mape:.1f}%" in scatter(found).layout.title.text


def test_per_op_figure_draws_every_op_of_at_least_one_percent(
    profiled_runs: list[Path], device_file: Path
) -> None:
    from hardnet_analysis.metrics.predictor_score import score_file
    from hardnet_analysis.reports.prediction import op_scatter, prediction_section

    runs = [ProfileRun.read(p) for p in profiled_runs]
    expected = []  # straight from the run files: every op >= 1% of its run's op time
    for run in runs:
        times = [t for layer in run.layers for t in (layer.node_times or {}).values()]
        expected += [t * 1e3 for t in times if t >= 0.01 * sum(times) and t > 0]
    found = score_file(runs, device_file)
    assert found.ops is not None
    figure = op_scatter(found.ops)
    drawn = [x for trace in figure.data if trace.mode == "markers" for x in trace.x]
    assert sorted(drawn) == pytest.approx(sorted(expected))
    assert {t.name for t in figure.data if t.mode == "markers"} == set(found.ops.by_kind)
    assert "predicted vs measured per op" in prediction_section(found).html()


def test_device_model_needs_runs_of_one_device(
    tmp_path: Path, device_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "r.html")
    assert main(["report", TINY, "--device-model", str(device_file), "--out", out]) == 2
    assert "--device-model applies only with profile runs" in capsys.readouterr().err


def search_found(path: Path) -> SearchDir:
    """The search directory at `path` as `hda report` reads it."""
    sample, trained = path / "sample.json", path / "front_trained.json"
    return SearchDir(
        path,
        SearchFront.read(path / "front.json"),
        SearchSample.read(sample) if sample.exists() else None,
        TrainedFront.read(trained) if trained.exists() else None,
    )


def traces(fig: Any, name: str) -> list[Any]:
    """The figure's traces whose legend name starts with `name`."""
    return [t for t in fig.data if (t.name or "").startswith(name)]


def test_search_figure_draws_the_whole_front_with_emitted_and_trained_marked(
    search_dir: Path,
) -> None:
    found = search_found(search_dir)
    front = found.front.front
    assert front is not None and found.trained is not None
    fig = space_figure(found)
    (line,) = traces(fig, FRONT)
    assert line.line.shape == "vh" and "lines" in line.mode  # a staircase through every member
    assert list(line.x) == [m.metrics["macs"] for m in front.members]
    assert list(line.y) == [m.metrics["cio"] for m in front.members]
    (emitted,) = traces(fig, EMITTED)
    rows = [r for r in found.front.candidates if r.definition is not None]
    assert len(rows) == 3 and emitted.name == f"{EMITTED} (3)"
    assert list(zip(emitted.x, emitted.y, strict=True)) == [
        (r.metrics["macs"], r.metrics["cio"]) for r in rows
    ]
    done = {c.candidate.id for c in found.trained.candidates if c.status == "done"}
    (trained,) = traces(fig, TRAINED)
    assert {d[0] for d in trained.customdata} == done
    assert not traces(fig, "Pareto front") and not traces(fig, RANKED)


def test_choices_figure_shows_each_members_choice_per_stage(search_dir: Path) -> None:
    found = search_found(search_dir)
    front = found.front.front
    assert front is not None
    fig = choices_figure(found.front)
    assert fig is not None
    k, n_layers, m = fig.data
    assert (k.name, n_layers.name, m.name) == ("k", "n_layers", "m")
    assert list(k.x) == list(range(len(front.members)))
    for stage in range(2):  # the tiny HarDNet's stages, each its own row
        values = [float(v) for _, v, _, _ in k.customdata[stage]]
        assert values == [member.k[stage] for member in front.members]
        assert all(0 <= z <= 1 for z in k.z[stage])
    assert len(m.y) == 1  # one m shared by all stages: one row


def test_an_old_front_without_the_whole_front_still_loads_and_reports(
    search_dir: Path, tmp_path: Path
) -> None:
    old = tmp_path / "old"
    old.mkdir()
    document = json.loads((search_dir / "front.json").read_text())
    del document["front"]
    (old / "front.json").write_text(json.dumps(document))
    assert SearchFront.read(old / "front.json").front is None
    out = tmp_path / "r.html"
    assert main(["report", str(old), "--out", str(out)]) == 0
    assert "<section id='search'>" in out.read_text()
    found = search_found(old)
    fig = space_figure(found)
    (ranked,) = traces(fig, RANKED)
    assert list(ranked.x) == [r.metrics["macs"] for r in found.front.candidates]
    assert not traces(fig, FRONT) and "ranked candidates only" in fig.layout.title.text
    assert choices_figure(found.front) is None and latency_figure(found.front) is None


def test_latency_figure_draws_the_fronts_predicted_latency(
    device_file: Path, tmp_path: Path
) -> None:
    argv = ["search", "--template", TINY, "--input", "32", "--k", "x0.75,x1", "--m", "1.5,1.6"]
    out = tmp_path / "s"
    device = ["--device-model", str(device_file)]
    assert main([*argv, *device, "--out", str(out), "--emit", "2", "--sample", "0"]) == 0
    found = search_found(out)
    assert found.front.front is not None
    members = found.front.front.members
    fig = latency_figure(found.front)
    assert fig is not None
    (points,) = traces(fig, FRONT)
    assert list(points.y) == [1e3 * (m.latency_s or 0.0) for m in members]
    assert list(points.marker.color) == [m.metrics["macs"] for m in members]
    assert main(["report", str(out), "--out", str(tmp_path / "r.html")]) == 0
    assert "front: predicted latency vs CIO" in (tmp_path / "r.html").read_text()


def test_cli_sorts_inputs_into_sections(report_page: Path) -> None:
    page = report_page.read_text()
    assert [s for s in SECTIONS if f"<section id='{s}'>" in page] == SECTIONS
    assert oct(report_page.stat().st_mode & 0o777) != oct(0o600)  # the umask's mode


def test_nothing_to_report_and_unknown_names_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 2
    assert "holds no profile runs" in capsys.readouterr().err
    assert main(["report", "resnet5O", "--out", str(tmp_path / "r.html")]) == 2
    assert "unknown model" in capsys.readouterr().err


def _boxes_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and (a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize("width", [1400, 800])
def test_every_section_renders_in_chromium(report_page: Path, width: int) -> None:
    seen = render(report_page, width)
    assert seen.errors == [] and seen.width <= width  # no script errors, no sideways scroll
    assert [s["id"] for s in seen.sections] == SECTIONS
    titles = []
    for section in seen.sections:
        assert section["plots"], f"{section['id']} has no plot"
        for plot in section["plots"]:
            where = f"{section['id']}: {plot['title']!r} at {width} px"
            assert plot["marks"] > 0 and plot["height"] > 100, f"{where} drew nothing"
            assert 300 < plot["width"] <= width, where
            assert plot["overlaps"] == [] and plot["clashes"] == [], where
            assert plot["titleInside"], f"{where}: title cut off"
            titles.append(plot["titleBox"])
    for i, a in enumerate(titles):
        assert not any(_boxes_overlap(a, b) for b in titles[i + 1 :])


def test_a_huge_front_is_drawn_evenly_thinned(
    search_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `DRAWN` members the figures draw that many, evenly along capacity, first and last
    included, and say so; every member stays in front.json."""
    found = search_found(search_dir)
    front = found.front.front
    assert front is not None and len(front.members) > 4
    monkeypatch.setattr(search_report, "DRAWN", 3)
    members = front.members
    shown = search_report.drawn(members)
    assert len(shown) == 3 and shown[0] is members[0] and shown[-1] is members[-1]
    fig = space_figure(found)
    staircase = next(t for t in fig.data if t.name.startswith(FRONT))
    assert len(staircase.x) == 3 and f"({len(members):,})" in staircase.name
    assert "3 of them drawn, evenly by capacity" in fig.layout.title.text
    choices = choices_figure(found.front)
    assert choices is not None and list(choices.data[0].x) == [0, 1, 2]
