"""The package's floors: below the CLI, `hardnet_analysis` imports nothing from its `search` or
`reports` subpackages, which sit on top of it; the documents (`hardnet_analysis.documents`) are
the lowest floor, neither `metrics` nor `backends` imports `profiler`, and no two modules import
each other, even through an import inside a function."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from tests.trainkit import ROOT

PACKAGE = ROOT / "hardnet_analysis"

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


@dataclass(frozen=True)
class Import:
    """One import of a hardnet_analysis module: who imports what, on which line, and where the
    statement sits (``module`` level, inside a ``function``, or under ``TYPE_CHECKING``)."""

    importer: str
    imported: str
    line: int
    place: str


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    """Every module of hardnet_analysis by dotted name, `search` and `reports` (symlinked
    folders) included."""
    found = {}
    for folder, _, files in os.walk(PACKAGE, followlinks=True):
        for name in files:
            if name.endswith(".py"):
                path = Path(folder) / name
                found[_module_name(path)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    """Whether an ``if`` tests ``TYPE_CHECKING`` (or ``typing.TYPE_CHECKING``)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(
    node: ast.Import | ast.ImportFrom, importer: str, modules: dict[str, Path]
) -> set[str]:
    """The hardnet_analysis modules `node` imports (``from pkg import mod`` names the module)."""
    names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: resolved against the importer's package
            package = importer.split(".")
            if modules[importer].name != "__init__.py":
                package = package[:-1]
            base = ".".join([*package[: len(package) - node.level + 1], *filter(None, [base])])
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    found = set()
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != importer:
            found.add(name)
    return found


def _walk(body: list[ast.stmt], place: str) -> Iterator[tuple[ast.stmt, str]]:
    """Every statement of `body` with its place, descending into blocks and functions."""
    for node in body:
        yield node, place
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _walk(node.body, "type_checking")
            yield from _walk(node.orelse, place)
            continue
        inner = "function" if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else place
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(node, field, None)
            if isinstance(block, list):
                yield from _walk(block, place if inner == "type_checking" else inner)


def package_imports() -> list[Import]:
    """Every import of one hardnet_analysis module by another, at any depth."""
    modules = _modules()
    found = []
    for importer, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node, place in _walk(tree.body, "module"):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for imported in _targets(node, importer, modules):
                    found.append(Import(importer, imported, node.lineno, place))
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def test_there_is_no_import_cycle_even_through_imports_inside_functions() -> None:
    # An import inside a function that closes a circle only hides it; type-only imports
    # (under TYPE_CHECKING) never run and are left out.
    graph = nx.DiGraph()
    graph.add_nodes_from(_modules())
    for found in package_imports():
        if found.place != "type_checking":
            graph.add_edge(found.importer, found.imported)
    assert {"hardnet_analysis.search.sweep", "hardnet_analysis.reports.page"} <= set(graph)
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, f"import cycles: {[' -> '.join(c) for c in cycles[:5]]}"


#: What the documents floor may import from hardnet_analysis: itself and these leaf modules.
DOCUMENT_LEAVES = (
    "hardnet_analysis.errors",
    "hardnet_analysis.fileio",
    "hardnet_analysis.units",
    "hardnet_analysis.search_metrics",
)


def test_documents_are_the_lowest_floor() -> None:
    imports = package_imports()
    documents = [i for i in imports if _within(i.importer, "hardnet_analysis.documents")]
    assert {i.importer for i in documents} >= {
        f"hardnet_analysis.documents.{m}"
        for m in ("base", "records", "machine", "profile_run", "device_model", "latency_model")
    }
    above = [
        f"{i.importer}:{i.line} imports {i.imported}"
        for i in documents
        if not _within(i.imported, "hardnet_analysis.documents")
        and i.imported not in DOCUMENT_LEAVES
    ]
    assert not above, above
    # The leaves themselves import only leaves: the floor's closure stays below everything.
    leaves = [i for i in imports if i.importer in DOCUMENT_LEAVES]
    assert all(i.imported in DOCUMENT_LEAVES for i in leaves), leaves


def test_documents_import_only_the_standard_library_at_module_level() -> None:
    # Reading a document loads no numpy, torch or scipy (torch is imported inside the one
    # method that asks it for a thread count).
    for path in (PACKAGE / "documents").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node, place in _walk(tree.body, "module"):
            if place == "module" and isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                for name in names:
                    top = name.partition(".")[0]
                    assert top in sys.stdlib_module_names or top in ("hardnet_analysis", "")


def _upward(package: str, floors: tuple[str, ...]) -> list[str]:
    """Imports from `package` into any of hda's `floors`, as "importer:line imports name"."""
    return [
        f"{i.importer}:{i.line} imports {i.imported}"
        for i in package_imports()
        if _within(i.importer, f"hardnet_analysis.{package}")
        and any(_within(i.imported, f"hardnet_analysis.{floor}") for floor in floors)
    ]


def test_metrics_never_import_the_profiler() -> None:
    # The cost engine and the predictor read documents; measuring sits above them.
    upward = _upward(
        "metrics", ("profiler", "backends", "search", "reports", "present", "cli", "train")
    )
    assert not upward, upward


def test_backends_never_import_the_profiler() -> None:
    # The profiler runs on backends; a backend's ceilings (`backends.specs`) live with it, so
    # not even a type-only import reaches up.
    upward = _upward("backends", ("profiler", "search", "reports", "present", "cli", "train"))
    assert not upward, upward
