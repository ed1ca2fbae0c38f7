"""The package's floors: below the CLI, `hardnet_analysis` imports nothing from the `search` or
`reports` packages that sit on top of it."""

from __future__ import annotations

import subprocess
import sys

from tests.trainkit import ROOT

#: Imports every module of hardnet_analysis except the CLI (and `__main__`, which runs it), then
#: prints the top-level packages above the floor that ended up imported.
PROBE = """
import importlib, pkgutil, sys
import hardnet_analysis
for info in pkgutil.walk_packages(hardnet_analysis.__path__, "hardnet_analysis."):
    name = info.name
    if name.startswith("hardnet_analysis.cli") or name == "hardnet_analysis.__main__":
        continue
    importlib.import_module(name)
print(sorted({"search", "reports"} & {m.split(".")[0] for m in sys.modules}))
"""


def test_library_below_the_cli_imports_neither_search_nor_reports() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
