"""The package's floors: below the CLI, `hardnet_analysis` imports nothing from its `search` or
`reports` subpackages, which sit on top of it."""

from __future__ import annotations

import subprocess
import sys

from tests.trainkit import ROOT

#: Imports every module of hardnet_analysis except the CLI (and `__main__`, which runs it), then
#: prints the top-level packages above the floor that ended up imported.
PROBE = """
import importlib, pkgutil, sys
import hardnet_analysis
above = {"cli", "search", "reports", "__main__"}
for info in pkgutil.iter_modules(hardnet_analysis.__path__):
    if info.name in above:
        continue
    module = importlib.import_module(f"hardnet_analysis.{info.name}")
    if info.ispkg:
        for sub in pkgutil.walk_packages(module.__path__, f"{module.__name__}."):
            importlib.import_module(sub.name)
names = {m.split(".")[1] for m in sys.modules if m.startswith("hardnet_analysis.")}
print(sorted(names & above))
"""


def test_library_below_the_cli_imports_neither_search_nor_reports() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
