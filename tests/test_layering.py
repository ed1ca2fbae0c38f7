"""The package's floors: below the CLI, `hardnet_analysis` imports nothing from its `search` or
`reports` subpackages, which sit on top of it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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


def _cli_imports(path: Path) -> set[str]:
    """The `hardnet_analysis.cli.*` modules that the file at `path` imports (any depth)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "hardnet_analysis.cli":
                found |= {f"hardnet_analysis.cli.{alias.name}" for alias in node.names}
            elif node.module.startswith("hardnet_analysis.cli."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("hardnet_analysis.cli.")}
    return found


def test_a_command_module_imports_only_cli_common() -> None:
    # One module per subcommand, and only main dispatches: a command importing another
    # command ties two commands' options and loading together.
    cli = ROOT / "hardnet_analysis" / "cli"
    commands = [p for p in cli.glob("*.py") if p.name not in ("main.py", "__init__.py")]
    assert len(commands) >= 14
    for path in [*commands, *(cli / "common").glob("*.py")]:
        other = {m for m in _cli_imports(path) if not m.startswith("hardnet_analysis.cli.common")}
        assert not other, f"{path.name} imports {sorted(other)}"
