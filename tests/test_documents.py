"""The typed run and latency-model files: committed results load and write back unchanged, and
a wrong, old or broken file is a one-line UsageError naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardnet_analysis.errors import UsageError
from hardnet_analysis.metrics.calibration import LatencyModel
from hardnet_analysis.profiler.document import ProfileRun, load_run

SWEEP = Path(__file__).parents[1] / "results" / "cpu-sweep"
CALIBRATION = SWEEP / "calibration-cpu-1thread.json"


@pytest.mark.parametrize("path", sorted(SWEEP.glob("*-b1.json")), ids=lambda p: p.stem)
def test_committed_runs_load_and_write_back_unchanged(path: Path) -> None:
    run = load_run(path)
    assert isinstance(run, ProfileRun) and run.layers
    assert run.to_json() == json.loads(path.read_text())


def test_committed_calibration_loads_and_writes_back_unchanged(tmp_path: Path) -> None:
    model = LatencyModel.load(CALIBRATION)
    assert model.features == ("macs", "cio") and model.n == 12
    assert model.to_json() == json.loads(CALIBRATION.read_text())
    assert json.loads(model.save(tmp_path / "m.json").read_text()) == model.to_json()


def _broken(tmp_path: Path, **changes: object) -> Path:
    document = {**json.loads(CALIBRATION.read_text()), **changes}
    path = tmp_path / "model.json"
    path.write_text(json.dumps({k: v for k, v in document.items() if v is not None}))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": 0}, "is hda-latency-model version 0; accepted: format"),
        ({"format": "hda-profile-run"}, "is not an hda latency model (format 'hda-profile-run')"),
        ({"intercept": None}, "missing key at intercept; accepted: format 'hda-latency-model'"),
        ({"coef": [1.0, "x"]}, "expected float, got 'x' at coef[1]"),
        ({"features": ["macs", "dram_bytes"]}, "features must be a list among params, macs"),
        ({"coef": [1.0]}, "needs one finite coef per feature"),
    ],
)
def test_bad_latency_model_is_one_line(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    path = _broken(tmp_path, **changes)
    with pytest.raises(UsageError) as caught:
        LatencyModel.load(path)
    text = str(caught.value)
    assert message in text and "model.json" in text and "\n" not in text


def test_fit_diagnostics_may_be_absent(tmp_path: Path) -> None:
    path = _broken(tmp_path, n_runs=None, lomo_mean_abs_rel_error=None)
    model = LatencyModel.load(path)
    assert model.n is None and model.lomo_error is None and model.train_error is not None
