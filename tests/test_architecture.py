"""The package's shape: a few packages by job, no import circles, no module above ~450 lines, no job reaching into
another job's private names, every benchmark and analysis in a file of its own name and in its registry, and the
docs' benchmark table generated from the registry."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from hybridir.evaluation.benchmarks import BENCHMARKS, docs_table
from hybridir.paper.analyses import ANALYSES as PAPER_ANALYSES
from hybridir.study.analyses import ANALYSES, registered

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "hybridir"
MAX_LINES = 450
#: packages by job, the paper's layer and cli.py: a newcomer finds the room for a change at a glance
MAX_TOP_LEVEL = 9


def _modules() -> dict[str, Path]:
    mods = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """hybridir modules that ``name`` imports anywhere in its body (function-level imports included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            mod = (f"{base}.{node.module}" if node.module else base) if node.level else node.module or ""
            # ``from . import x`` names a submodule when there is one, else a name of the package
            found |= {f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names}
    return {m for m in found if m in known and m != name}


def _job(module: str) -> str:
    """The top-level package (or module) under hybridir that ``module`` belongs to."""
    return module.split(".")[1] if "." in module else ""


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_few_top_level_entries():
    entries = {p.name for p in PACKAGE.iterdir() if p.name not in {"__init__.py", "__pycache__"}}
    assert len(entries) <= MAX_TOP_LEVEL, sorted(entries)


def test_no_job_imports_another_jobs_private_names():
    """A name with a leading underscore is its package's business: another job that needs it asks for a public one."""
    mods = _modules()
    found = []
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}  # local name -> hybridir module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                mod = (f"{base}.{node.module}" if node.module else base) if node.level else node.module or ""
                for a in node.names:
                    if f"{mod}.{a.name}" in mods:
                        aliases[a.asname or a.name] = f"{mod}.{a.name}"
                    elif mod in mods and _private(a.name) and _job(mod) != _job(name):
                        found.append(f"{name}: from {mod} import {a.name}")
            elif isinstance(node, ast.Import):
                aliases |= {a.asname: a.name for a in node.names if a.asname and a.name in mods}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                target = aliases[node.value.id]
                if _private(node.attr) and _job(target) != _job(name):
                    found.append(f"{name}: {target}.{node.attr}")
    assert not found


def test_no_import_circles():
    mods = _modules()
    graph = {name: _imports(name, path, set(mods)) for name, path in mods.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, "import circle: " + " -> ".join([*stack[stack.index(nxt) :], nxt])
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_no_module_above_the_size_limit():
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in _modules().items()}
    assert not {n: s for n, s in sizes.items() if s > MAX_LINES}


def test_each_benchmark_and_analysis_is_a_file_of_its_name_in_its_registry():
    bench_files = {p.stem for p in (PACKAGE / "evaluation" / "benchmarks").glob("*.py")} - {"__init__", "base"}
    assert {b.name.replace("-", "_") for b in BENCHMARKS} == bench_files
    assert all(type(b).__module__ == f"hybridir.evaluation.benchmarks.{b.name.replace('-', '_')}" for b in BENCHMARKS)
    for package, registry in (("study.analyses", ANALYSES), ("paper.analyses", PAPER_ANALYSES)):
        files = {p.stem for p in (PACKAGE / package.replace(".", "/")).glob("*.py")} - {"__init__", "tradeoff"}
        modules = [importlib.import_module(f"hybridir.{package}.{stem}") for stem in sorted(files)]
        assert {id(m.ANALYSIS) for m in modules} == {id(a) for a in registry}  # the trade-off is a figure
    assert set(registered()) == {*ANALYSES, *PAPER_ANALYSES}


def test_the_toolkit_imports_the_paper_layer_by_name_only():
    """No toolkit module names hybridir.paper in an import statement: the layer is found through
    hybridir.infra.layers.optional, so deleting it breaks no import (tests/test_toolkit_alone.py runs without it)."""
    mods = _modules()
    toolkit = {name: path for name, path in mods.items() if _job(name) != "paper"}
    assert not {name for name, path in toolkit.items() if any(m.startswith("hybridir.paper")
                                                              for m in _imports(name, path, set(mods)))}  # fmt: skip


def test_docs_benchmark_table_is_the_registry():
    doc = (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert docs_table() in doc, "paste: python -c 'import hybridir.evaluation.benchmarks as b; print(b.docs_table())'"
