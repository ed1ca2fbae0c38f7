"""hda installs only its own name: `search/` and `reports/` are `hardnet_analysis.search` and
`hardnet_analysis.reports`, so a user's own `search` or `reports` package never shadows them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.trainkit import ROOT


@pytest.mark.slow
def test_the_wheel_holds_only_hardnet_analysis(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy, so the build leaves no build/ folder in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("hardnet_analysis", "search", "reports"):  # the folder links stay links
        shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=_caches)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(source)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("hda-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        assert archive.read(top_level).decode().split() == ["hardnet_analysis"]
    code = [n for n in names if n.endswith(".py")]
    assert code and all(n.startswith("hardnet_analysis/") for n in code)
    for package in ("search", "reports"):  # every module of the folder, under hda's name
        expected = {p.name for p in (ROOT / package).glob("*.py")}
        assert {Path(n).name for n in code if n.startswith(f"hardnet_analysis/{package}/")} == (
            expected
        )


_caches = shutil.ignore_patterns("__pycache__", "*.egg-info")


def test_a_users_search_and_reports_packages_do_not_shadow_hdas(tmp_path: Path) -> None:
    for name in ("search", "reports"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('the user {name}')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed hda
    env["OMP_NUM_THREADS"] = "1"
    for argv in (
        ["search", "--template", "hardnet39ds", "--k", "16,20", "--format", "json"],
        ["report", "hardnet39ds", "--out", "report.html"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "hardnet_analysis", *argv],
            cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "report.html").stat().st_size > 10_000
