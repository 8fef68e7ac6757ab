"""The shape of the code: imports point one way, each job has one home.

* ``scheduled_substances`` (the registry) imports nothing from ``precursor_screen``;
* no module imports its own package's ``__init__``, and the import graph has no cycle;
* imports inside functions are few, and each says why (an optional dependency imported when
  asked for);
* one module tells file formats (``io/formats.py``), one writes files (``io/writers.py``), one
  holds the output columns (``results.py``).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("precursor_screen", "scheduled_substances")
MAX_FUNCTION_IMPORTS = 20


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()
EXTENSIONS = {".".join(p.relative_to(ROOT).with_suffix("").parts): p
              for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.c"))}
"""Compiled extension modules (C sources built by setup.py): modules that import nothing."""


def _imports(module: str) -> list[tuple[ast.AST, list[str], bool]]:
    """(node, imported module names, inside a function) for every import of ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                here = here[: len(here) - (node.level - 1)]
                base = ".".join(here + ([node.module] if node.module else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES | EXTENSIONS else base
                     for a in node.names]
        else:
            names = [a.name for a in node.names]
        inner, up = False, parents.get(node)
        while up is not None:
            if isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = True
                break
            up = parents.get(up)
        out.append((node, names, inner))
    return out


def _own(name: str) -> str | None:
    """The package module an imported name refers to (None for third-party names)."""
    while name not in MODULES and name not in EXTENSIONS and "." in name:
        name = name.rsplit(".", 1)[0]
    return name if name in MODULES else None


GRAPH = {m: {t for _, names, _ in _imports(m) for n in names if (t := _own(n)) and t != m}
         for m in MODULES}


def test_the_registry_stands_alone() -> None:
    bad = [(m, t) for m, ts in GRAPH.items() for t in ts
           if m.startswith("scheduled_substances") and t.startswith("precursor_screen")]
    assert not bad


def test_no_module_imports_its_own_package() -> None:
    bad = [(m, t) for m, ts in GRAPH.items() for t in ts
           if m.startswith(t + ".") and MODULES[t].name == "__init__.py"]
    assert not bad


def test_import_graph_has_no_cycle() -> None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(GRAPH[m]):
            if state.get(t) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(MODULES):
        if m not in state:
            visit(m)


def test_function_level_imports_are_few_and_say_why() -> None:
    inner = [(m, node) for m in MODULES for node, _, is_inner in _imports(m) if is_inner]
    assert len(inner) <= MAX_FUNCTION_IMPORTS, [f"{m}:{n.lineno}" for m, n in inner]
    for m, node in inner:
        lines = MODULES[m].read_text(encoding="utf-8").splitlines()
        line, above = lines[node.lineno - 1], lines[node.lineno - 2]
        assert "#" in line or above.strip().startswith("#"), f"{m}:{node.lineno} says not why"


def test_the_command_line_starts_as_a_module() -> None:
    proc = subprocess.run([sys.executable, "-m", "precursor_screen", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert "screen" in proc.stdout


def _sources(exclude: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(m, p.read_text(encoding="utf-8")) for m, p in MODULES.items()
            if not any(m == e or m.startswith(e + ".") for e in exclude)]


def test_one_place_tells_formats() -> None:
    # an extension table: a dict literal mapping a file extension to a format
    table = re.compile(r'"(?:pq":\s*"parquet|ndjson":\s*"jsonl|smiles":\s*"smi"|tab":\s*"tsv)')
    found = [m for m, text in _sources(("precursor_screen.io.formats",)) if table.search(text)]
    assert not found


def test_one_module_writes_files() -> None:
    writers = re.compile(r"csv\.(?:writer|DictWriter)\(|ParquetWriter\(|pq\.write_table\(|"
                         r"pacsv\.write_csv\(|atomic_open\(")
    found = [m for m, text in _sources(("precursor_screen.io.writers",)) if writers.search(text)]
    # working and storage files, not outputs: the declarations run's resumable part files and
    # manifest, and a library index's shard tables
    assert set(found) <= {"precursor_screen.declarations.run", "precursor_screen.survey.library"}, \
        found


def test_one_table_of_output_columns() -> None:
    literal = re.compile(r'^[A-Z_]*COLUMNS\b[^=\n]*=\s*\(\s*\(?"', re.M)
    found = [m for m, text in _sources(("precursor_screen.results", "precursor_screen.io.readers",
                                        "precursor_screen.survey.library",
                                        "precursor_screen.declarations.resolve",
                                        "scheduled_substances")) if literal.search(text)]
    assert not found


# What each part of precursor_screen may import (besides errors, types and version), as the
# README's architecture table says: the data flow read -> chem -> search/rules -> screen ->
# results -> report, with the workflows and the command line on top.
_EVERYTHING = {"io", "chem", "reference", "search", "rules", "parallel", "manifest", "results",
               "screen", "report", "survey", "declarations", "lookup", "frame", "serve",
               "scheduled_substances"}
ALLOWED = {
    "io": set(),
    "chem": {"io"},
    "reference": {"chem", "io", "parallel", "scheduled_substances"},
    "search": {"chem"},
    "rules": {"chem", "io", "reference", "scheduled_substances"},
    "parallel": set(),
    "manifest": set(),
    "results": {"io"},
    "screen": {"chem", "io", "parallel", "reference", "rules", "search"},
    "report": {"chem", "io", "manifest", "reference", "results", "rules"},
    "survey": _EVERYTHING - {"report", "survey", "declarations", "screen", "lookup", "frame",
                             "serve"},
    "declarations": _EVERYTHING - {"report", "survey", "declarations", "lookup", "frame", "serve"},
    "lookup": {"chem", "declarations", "reference"},
    "frame": {"io", "manifest", "results", "screen"},
    "serve": _EVERYTHING - {"serve"},
    "cli": _EVERYTHING,
    "errors": {"scheduled_substances"},
    "precursor_screen": _EVERYTHING,
    "__main__": {"cli"},
}


def _part(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "scheduled_substances":
        return "scheduled_substances"
    return parts[1] if len(parts) > 1 else "precursor_screen"


def test_each_part_imports_only_what_comes_before_it() -> None:
    bad = sorted((m, t) for m, ts in GRAPH.items() if m.startswith("precursor_screen")
                 for t in ts if _part(t) != _part(m)
                 and _part(t) not in ALLOWED[_part(m)] | {"errors", "types", "version"})
    assert not bad
