"""The documents: committed runs and latency models load and write back unchanged, a wrong, old
or broken file is a one-line UsageError naming it, every document reads only its own format
through the one base (`hardnet_analysis.documents.base`); the decoder behind every typed file
(`hardnet_analysis.documents.records`) and its exact messages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hardnet_analysis.documents.base import Document
from hardnet_analysis.documents.device_model import DeviceModels
from hardnet_analysis.documents.fronts import SearchFront, SearchSample, TrainedFront
from hardnet_analysis.documents.latency_model import LatencyModel
from hardnet_analysis.documents.profile_run import (
    FailedRun,
    Failure,
    ProfileRun,
    RequestedDevice,
    RunDocument,
)
from hardnet_analysis.documents.records import (
    FLATTENED,
    check_header,
    decode,
    encode,
    keyed,
    versions_text,
)
from hardnet_analysis.errors import UsageError

SWEEP = Path(__file__).parents[1] / "results" / "cpu-sweep"
CALIBRATION = SWEEP / "calibration-cpu-1thread.json"


@pytest.mark.parametrize("path", sorted(SWEEP.glob("*-b1.json")), ids=lambda p: p.stem)
def test_committed_runs_load_and_write_back_unchanged(path: Path) -> None:
    run = ProfileRun.read(path)
    assert run.layers
    assert run.to_dict() == json.loads(path.read_text())


def test_committed_calibration_loads_and_writes_back_unchanged(tmp_path: Path) -> None:
    model = LatencyModel.read(CALIBRATION)
    assert model.features == ("macs", "cio") and model.n == 12
    assert model.to_dict() == json.loads(CALIBRATION.read_text())
    assert json.loads(model.write(tmp_path / "m.json").read_text()) == model.to_dict()


def _broken(tmp_path: Path, **changes: object) -> Path:
    document = {**json.loads(CALIBRATION.read_text()), **changes}
    path = tmp_path / "model.json"
    path.write_text(json.dumps({k: v for k, v in document.items() if v is not None}))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": 0}, "is older version 0 of 'hda-latency-model'; accepted: format"),
        ({"format": "hda-profile-run"}, "is not an hda latency model (format 'hda-profile-run')"),
        ({"intercept": None}, ": missing field 'intercept'; accepted: format 'hda-latency-model'"),
        ({"coef": [1.0, "x"]}, "coef[1]: expected float, got 'x'"),
        ({"features": ["macs", "dram_bytes"]}, "features must be a list among params, macs"),
        ({"coef": [1.0]}, "needs one finite coef per feature"),
    ],
)
def test_bad_latency_model_is_one_line(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    path = _broken(tmp_path, **changes)
    with pytest.raises(UsageError) as caught:
        LatencyModel.read(path)
    text = str(caught.value)
    assert message in text and "model.json" in text and "\n" not in text


def test_fit_diagnostics_may_be_absent(tmp_path: Path) -> None:
    path = _broken(tmp_path, n_runs=None, lomo_mean_abs_rel_error=None)
    model = LatencyModel.read(path)
    assert model.n is None and model.lomo_error is None and model.train_error is not None


# --- the decoder itself ------------------------------------------------------------------------

KINDS = {"macs": int, "min_moc": float}


@dataclass(frozen=True)
class Row:
    id: str
    metrics: dict[str, float] = field(metadata=keyed(KINDS, flat=True))
    budgets: dict[str, float] = field(metadata=keyed(KINDS, complete=False))


@dataclass(frozen=True)
class Trained:
    row: Row = field(metadata=FLATTENED)
    top1: float | None = None


def _error(cls: type[Any], document: Any, strict: bool = False) -> str:
    with pytest.raises(UsageError) as caught:
        decode(cls, document, "f.json", strict=strict)
    return str(caught.value)


def test_flattened_mappings_round_trip_in_declared_order() -> None:
    row = Row("a", {"min_moc": 0.5, "macs": 2}, {"min_moc": 1.5})
    trained = Trained(row, 91.0)
    document = encode(trained)
    assert document == {
        "id": "a",
        "macs": 2,
        "min_moc": 0.5,
        "budgets": {"min_moc": 1.5},
        "top1": 91.0,
    }
    assert list(document) == ["id", "macs", "min_moc", "budgets", "top1"]
    assert decode(Trained, json.loads(json.dumps(document)), "f.json") == trained


def test_ints_read_as_floats_but_not_floats_as_ints() -> None:
    document = {"id": "a", "macs": 2, "min_moc": 1, "budgets": {}}
    row = decode(Row, document, "f.json")
    assert row.metrics == {"macs": 2, "min_moc": 1.0} and type(row.metrics["min_moc"]) is float
    assert _error(Row, {**document, "macs": 2.0}) == "f.json: macs: expected int, got 2.0"


@pytest.mark.parametrize("key", ["macs", "min_moc"])
def test_a_bool_is_never_a_number(key: str) -> None:
    document = {"id": "a", "macs": 2, "min_moc": 1.0, "budgets": {}, key: True}
    expected = "int" if key == "macs" else "float"
    assert _error(Row, document) == f"f.json: {key}: expected {expected}, got True"


def test_keyed_and_strict_errors_name_the_path_and_the_known_keys() -> None:
    document = {"id": "a", "macs": 2, "min_moc": 1.0, "budgets": {}, "colour": "red"}
    assert decode(Row, document, "f.json").id == "a"  # tolerant: extra keys are ignored
    assert _error(Row, document, strict=True) == (
        "f.json: unknown field(s) colour; known: id, macs, min_moc, budgets"
    )
    assert _error(Row, {**document, "budgets": {"flops": 1}}) == (
        "f.json: budgets: unknown field(s) flops; known: macs, min_moc"
    )
    del document["macs"]
    assert _error(Row, document) == "f.json: missing field 'macs'"
    assert _error(Trained, {"top1": None}) == "f.json: missing field 'id'"


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (
            0,
            "f.json is older version 0 of 'fmt'; accepted: format 'fmt' version 2 only "
            "(write it again with this hda)",
        ),
        (3, "f.json is newer version 3 of 'fmt'; accepted: format 'fmt' version 2 only"),
        ("2", "f.json is another version '2' of 'fmt'; accepted: format 'fmt' version 2 only"),
        (True, "f.json is another version True of 'fmt'; accepted: format 'fmt' version 2 only"),
    ],
)
def test_header_versions(version: object, message: str) -> None:
    assert check_header({"format": "fmt", "version": 2}, "f.json", "hda thing", "fmt", (2,)) == 2
    with pytest.raises(UsageError) as caught:
        check_header({"format": "fmt", "version": version}, "f.json", "hda thing", "fmt", (2,))
    assert str(caught.value) == message


def test_header_with_an_older_version_still_read() -> None:
    # The device model reads version 1 beside 2: both are named wherever a file is refused.
    read = (2, 1)
    assert check_header({"format": "fmt", "version": 1}, "f.json", "hda thing", "fmt", read) == 1
    with pytest.raises(UsageError) as caught:
        check_header({"format": "fmt", "version": 0}, "f.json", "hda thing", "fmt", read)
    expected = "older version 0 of 'fmt'; accepted: format 'fmt' version 1 or 2 only (write it"
    assert expected in str(caught.value)


#: Every document type: one base, so one header check and the same four methods.
DOCUMENTS: tuple[type[Document], ...] = (
    RunDocument,
    DeviceModels,
    LatencyModel,
    SearchFront,
    SearchSample,
    TrainedFront,
)


def test_each_document_reads_only_its_own_format(tmp_path: Path) -> None:
    assert len({d.FORMAT for d in DOCUMENTS}) == len(DOCUMENTS)
    path = tmp_path / "doc.json"
    for written in DOCUMENTS:
        path.write_text(json.dumps({"format": written.FORMAT, "version": written.VERSION}))
        for reader in DOCUMENTS:
            if reader is written:
                continue
            with pytest.raises(UsageError) as caught:
                reader.read(path)
            versions = versions_text((reader.VERSION, *reader.READS))
            assert str(caught.value) == (
                f"{reader.FILE} {str(path)!r} is not an {reader.WHAT} (format "
                f"{written.FORMAT!r}); accepted: format {reader.FORMAT!r} {versions}"
            )


def test_a_failed_run_reads_as_a_run_file_but_not_as_a_profile_run(tmp_path: Path) -> None:
    failed = FailedRun("m", (8, 8), 1, "fp32", RequestedDevice("cpu"), (Failure("x", "boom"),))
    path = failed.write(tmp_path / "failed.json")
    assert json.loads(path.read_text())["status"] == "failed"
    assert RunDocument.read(path) == failed
    with pytest.raises(UsageError, match="holds a failed run, not a successful one"):
        ProfileRun.read(path)
