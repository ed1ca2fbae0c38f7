"""Shared test settings: hypothesis profiles, the `gpu` marker, and real profile runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


#: Sizes `profiled_runs` profiles the tiny HarDNet at: four points on one device, the fewest a
#: correlation or a two-feature latency model accepts.
PROFILED_SIZES = ("32", "40", "48", "56")


@pytest.fixture(scope="session")
def profiled_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Run files of a real ``hda profile`` of ``tests/data/tinyhardnet.json`` on CPU at
    `PROFILED_SIZES` (1 thread, 2 repeats, no counters; the roofline probe replaced by a table
    entry, which only moves the roofline bounds): what ``correlate`` and ``report`` read."""
    from hardnet_analysis.backends import specs
    from hardnet_analysis.cli.main import main
    from hardnet_analysis.profiler import run as run_mod

    out = tmp_path_factory.mktemp("profiled")
    tiny = str(Path(__file__).parent / "data" / "tinyhardnet.json")
    fast = ["--repeat", "2", "--warmup", "1", "--threads", "1", "--counters", "none"]
    with pytest.MonkeyPatch.context() as patch:
        nano = specs.DEVICES["Jetson Nano"]
        patch.setattr(run_mod, "roofline_spec", lambda backend, device: nano)
        code = main(["profile", tiny, "--input", *PROFILED_SIZES, "--out", str(out), *fast])
    assert code == 0
    return sorted(out.glob("*.json"))


@pytest.fixture(scope="session")
def device_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A device model from a real ``hda calibrate`` on the tiny grid (a few seconds)."""
    from hardnet_analysis.cli.main import main

    out = tmp_path_factory.mktemp("device") / "cpu.json"
    fast = ["--grid", "tiny", "--threads", "1", "--repeat", "2", "--budget", "0.001"]
    assert main(["calibrate", *fast, "--out", str(out), "--format", "json"]) == 0
    return out
