"""The report: one self-contained HTML page (plotly.js inlined once, works offline) built from
whatever the user has, one section per kind of input, each in its own module:

- `reports.models`: models analysed without running them (table, per block, per layer);
- `reports.latency`: profile runs, latency against each traffic measure and MACs;
- `reports.prediction`: a device model's predicted against measured latency (``--device-model``);
- `reports.roofline`: the runs' layers on each device's roofline, one run's time per layer;
- `reports.search`: a search directory's space, front and trained front;
- `reports.training`: training runs' loss, top-1 and learning rate per epoch.

Everything shown is computed in `hardnet_analysis` (analyses, run documents, correlations,
fronts); this package only draws it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hardnet_analysis.documents.profile_run import ProfileRun
from hardnet_analysis.errors import UsageError
from hardnet_analysis.fileio import atomic_write_text
from hardnet_analysis.metrics.analysis import Analysis
from hardnet_analysis.metrics.predictor_score import PredictorScore
from hardnet_analysis.reports.latency import latency_section
from hardnet_analysis.reports.models import models_section
from hardnet_analysis.reports.page import Section, page
from hardnet_analysis.reports.prediction import prediction_section
from hardnet_analysis.reports.roofline import roofline_section
from hardnet_analysis.reports.search import SearchDir, search_section
from hardnet_analysis.reports.training import TrainingRun, training_section

__all__ = ["ReportInputs", "SearchDir", "TrainingRun", "build_report", "write_report"]


@dataclass(frozen=True)
class ReportInputs:
    """What the report is made of: analysed models, profile runs, search directories and
    training runs (any may be empty); `detail` names the model whose run's time per layer is
    shown (default: the first run's), `given` the inputs as the user named them, `prediction`
    a device model's score on the runs (``--device-model``)."""

    analyses: Sequence[Analysis] = ()
    runs: Sequence[ProfileRun] = ()
    searches: Sequence[SearchDir] = ()
    trainings: Sequence[TrainingRun] = ()
    detail: str | None = None
    given: Sequence[str] = ()
    prediction: PredictorScore | None = None


def sections(inputs: ReportInputs) -> list[Section]:
    """The sections the inputs allow, in reading order."""
    out = []
    if inputs.analyses:
        out.append(models_section(inputs.analyses))
    if inputs.runs:
        detail = next((r for r in inputs.runs if r.model == inputs.detail), None)
        if inputs.detail and detail is None:
            raise UsageError(f"--model {inputs.detail!r} has no run among the inputs")
        out.append(latency_section(inputs.runs))
        if inputs.prediction is not None:
            out.append(prediction_section(inputs.prediction))
        out.append(roofline_section(inputs.runs, detail or inputs.runs[0]))
    if inputs.searches:
        out.append(search_section(inputs.searches))
    if inputs.trainings:
        out.append(training_section(inputs.trainings))
    return out


def build_report(inputs: ReportInputs) -> str:
    """The report's HTML; a UsageError when the inputs give nothing to show."""
    found = sections(inputs)
    if not found:
        raise UsageError("nothing to report: give models, profile runs, a search or training runs")
    return page("hda report", found, inputs.given)


def write_report(inputs: ReportInputs, path: str | Path) -> Path:
    """Write `build_report` to `path` atomically."""
    return atomic_write_text(path, build_report(inputs))
