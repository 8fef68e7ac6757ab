"""One convention for every command, as the README's table of commands says: what each reads
(`-` standard input where the table says so), that results alone go to stdout, and the exit
codes: 0 done, 1 a runtime error (the situation the table names), 2 a usage error."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
import click
import pytest
from click.testing import CliRunner, Result

from precursor_screen.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SEIZED = ROOT / "examples" / "seized.smi"
DECLARATIONS = ROOT / "examples" / "declarations.csv"
DRAFT = ROOT / "tests" / "data" / "golden" / "draft_groups.toml"


def _table() -> dict[str, dict[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("| command | reads (`-`: standard input) |")
    lines = []
    for line in text[start:].splitlines():
        if not line.startswith("|"):
            break
        lines.append([c.strip() for c in line.strip().strip("|").split(" | ")])
    header, rows = lines[0], lines[2:]
    return {row[0].strip("`"): dict(zip(header, row)) for row in rows}


TABLE = _table()


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    out = []
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, prefix + name + " "))
        else:
            out.append(prefix + name)
    return out


def run(*args: str, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def test_the_table_lists_every_command() -> None:
    assert sorted(TABLE) == sorted(_commands(cli))


# -- standard input -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small index, a results file and a declarations output (Parquet) to read back."""
    tmp = tmp_path_factory.mktemp("conventions")
    index = tmp / "idx"
    assert run("index", "build", str(SEIZED), "-o", str(index), "--jobs", "1").exit_code == 0
    results = tmp / "results.csv"
    assert run("screen", str(SEIZED), "-o", str(results), "--jobs", "1").exit_code == 0
    verdicts = tmp / "verdicts.parquet"
    made = run("declarations", str(DECLARATIONS), "--as-of", "2019-12-31", "-o", str(verdicts),
               "--jobs", "1")
    assert made.exit_code == 0, made.stderr
    return {"index": index, "results": results, "verdicts": verdicts, "tmp": tmp}


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _stdin_screen(w: dict[str, Path]) -> tuple[list[str], bytes, Callable[[Result], None]]:
    def check(r: Result) -> None:
        assert [x["id"] for x in _csv(r.stdout)] == ["bmk", "broken"]
    return ["screen", "-", "--jobs", "1"], b"CC(=O)Cc1ccccc1 bmk\nC1CC broken\n", check


def _stdin_check(w: dict[str, Path]) -> tuple[list[str], bytes, Callable[[Result], None]]:
    def check(r: Result) -> None:
        assert json.loads(r.stdout)["flag"] == "scheduled"
    return ["check", "-", "--json"], b"CC(=O)Cc1ccccc1\n", check


def _stdin_report(w: dict[str, Path]) -> tuple[list[str], bytes, Callable[[Result], None]]:
    def check(r: Result) -> None:
        assert r.stdout.startswith("<!DOCTYPE html>") and 'class="card' in r.stdout
    return ["report", "-"], w["results"].read_bytes(), check


def _stdin_declarations(w: dict[str, Path]) -> tuple[list[str], bytes, Callable[[Result], None]]:
    rows = len(_csv(DECLARATIONS.read_text(encoding="utf-8")))

    def check(r: Result) -> None:
        out = _csv(r.stdout)
        assert len(out) == rows and all(x["verdict"] for x in out)
    return ["declarations", "-", "--jobs", "1"], DECLARATIONS.read_bytes(), check


def _stdin_rescreen(w: dict[str, Path]) -> tuple[list[str], bytes, Callable[[Result], None]]:
    def check(r: Result) -> None:
        assert _csv(r.stdout) and "old_verdict" in r.stdout.splitlines()[0]
    return ["rescreen", "-"], w["verdicts"].read_bytes(), check


def _stdin_index(w: dict[str, Path]) -> tuple[list[str], bytes, Callable[[Result], None]]:
    def check(r: Result) -> None:
        assert r.stdout == "" and "index now 2 rows" in r.stderr
    return (["index", "build", "-", "-o", str(w["tmp"] / "stdin.idx")],
            b"CCO ethanol\nCC(=O)Cc1ccccc1 bmk\n", check)


def _stdin_search(w: dict[str, Path]) -> tuple[list[str], bytes, Callable[[Result], None]]:
    def check(r: Result) -> None:
        hits = _csv(r.stdout)
        assert hits and hits[0]["query_id"] == "q" and hits[0]["id"].startswith("BMK")
    return (["search", "--index", str(w["index"]), "--similar", "-", "--top", "1"],
            b"CC(=O)Cc1ccccc1 q\n", check)


def _stdin_group(w: dict[str, Path]) -> tuple[list[str], bytes, Callable[[Result], None]]:
    def check(r: Result) -> None:
        assert {x["verdict"] for x in _csv(r.stdout)} >= {"covered", "missed"}
    return ["group", "check", "-", "--no-default-legit"], DRAFT.read_bytes(), check


def _stdin_draft(w: dict[str, Path]) -> tuple[list[str], bytes, Callable[[Result], None]]:
    def check(r: Result) -> None:
        assert r.stdout.startswith("#") and "[draft-" in r.stdout and "must_match" in r.stdout
    return (["group", "draft", "-", "--no-default-legit"],
            b"CCOC(=O)C1(C)OC1c1ccccc1 ethyl\nCC1(C(=O)O)OC1c1ccccc1 acid\n", check)


STDIN = {"screen": _stdin_screen, "check": _stdin_check, "report": _stdin_report,
         "declarations": _stdin_declarations, "rescreen": _stdin_rescreen,
         "index build": _stdin_index, "search": _stdin_search, "group check": _stdin_group,
         "group draft": _stdin_draft}


def test_the_table_says_where_stdin_is_read() -> None:
    assert sorted(c for c, row in TABLE.items() if "`-`" in row["reads (`-`: standard input)"]) \
        == sorted(STDIN)


@pytest.mark.parametrize("command", sorted(STDIN))
def test_stdin_is_read_as_dash(work: dict[str, Path], command: str) -> None:
    argv, data, check = STDIN[command](work)
    result = run(*argv, input=data)
    assert result.exit_code == 0, result.stderr
    check(result)


# -- exit codes -------------------------------------------------------------------------------------

def _bad_table(tmp: Path) -> str:
    path = tmp / "no_smiles.csv"
    path.write_text("name,formula\nwater,H2O\n", encoding="utf-8")
    return str(path)


def _changed_example(tmp: Path) -> str:
    folder = tmp / "ex"
    assert run("examples", str(folder)).exit_code == 0
    (folder / "seized.smi").write_text("CCO changed\n", encoding="utf-8")
    return str(folder)


def _no_id_declarations(tmp: Path) -> str:
    path = tmp / "decl.csv"
    path.write_text("cas,name\n67-64-1,acetone\n", encoding="utf-8")
    return str(path)


def _bad_draft(tmp: Path) -> str:
    path = tmp / "bad.toml"
    path.write_text(DRAFT.read_text(encoding="utf-8").replace(
        "must_match = [", "must_match = ['CCO ethanol', ", 1), encoding="utf-8")
    return str(path)


RUNTIME: dict[str, Callable[[dict[str, Path]], list[str]]] = {
    "screen": lambda w: ["screen", _bad_table(w["tmp"])],
    "check": lambda w: ["check", "no such chemical", "--no-opsin"],
    "report": lambda w: ["report", _bad_table(w["tmp"]), "-o", str(w["tmp"] / "r.html")],
    "examples": lambda w: ["examples", _changed_example(w["tmp"])],
    "declarations": lambda w: ["declarations", _no_id_declarations(w["tmp"])],
    "rescreen": lambda w: ["rescreen", str(w["results"])],
    "index build": lambda w: ["index", "build", str(SEIZED), "-o", str(w["index"])],
    "index info": lambda w: ["index", "info", str(w["tmp"])],
    "search": lambda w: ["search", "--index", str(w["index"]), "--smarts", "C("],
    "derivatives": lambda w: ["derivatives", "no-such-substance", "--index", str(w["index"])],
    "group check": lambda w: ["group", "check", _bad_draft(w["tmp"]), "--no-default-legit"],
    "group draft": lambda w: ["group", "draft", "CCOC(=O)C1(C)OC1c1ccccc1", "C1CC"],
    "enumerate": lambda w: ["enumerate", "no-such-substance"],
}
"""A run that fails at work, per command: the situation the table's last column names."""


@pytest.mark.parametrize("command", sorted(RUNTIME))
def test_a_runtime_error_is_one_line_and_exit_1(work: dict[str, Path], command: str) -> None:
    result = run(*RUNTIME[command](work))
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "unexpected" not in lines[0]
    assert result.stdout == ""


def test_every_command_in_the_table_has_its_runtime_case() -> None:
    never = {c for c, row in TABLE.items() if row["exit 1 when"].startswith("never")}
    assert sorted(set(RUNTIME) | never | {"serve"}) == sorted(TABLE)   # serve: test_serve.py


MISSING = {
    "screen": ["screen", "{missing}"], "report": ["report", "{missing}"],
    "declarations": ["declarations", "{missing}"], "rescreen": ["rescreen", "{missing}"],
    "index build": ["index", "build", "{missing}", "-o", "{tmp}/x.idx"],
    "index info": ["index", "info", "{missing}"],
    "search": ["search", "--index", "{missing}", "--smarts", "C"],
    "derivatives": ["derivatives", "bmk", "--index", "{missing}"],
    "group check": ["group", "check", "{missing}"],
    "group draft": ["group", "draft", "{missing}", "CCO"],
    "enumerate": ["enumerate", "bmk", "--groups", "{missing}"],
    "check": ["check", "CCO", "--reference", "{missing}"],
}
"""A missing file where each command reads one: a usage error."""


@pytest.mark.parametrize("command", sorted(MISSING))
def test_a_missing_input_file_is_a_usage_error(tmp_path: Path, command: str) -> None:
    argv = [a.format(missing=tmp_path / "missing.file", tmp=tmp_path) for a in MISSING[command]]
    result = run(*argv, input="CCO\n")
    assert result.exit_code == 2, (command, result.stderr)
    assert "does not exist" in result.stderr


@pytest.mark.parametrize("command", sorted(TABLE))
def test_an_unknown_option_is_a_usage_error(command: str) -> None:
    result = run(*command.split(), "--no-such-option")
    assert result.exit_code == 2 and "No such option" in result.stderr


@pytest.mark.parametrize("argv", [
    ["screen", str(SEIZED), "-o", "out.xlsx"],
    ["search", "--index", ".", "--smarts", "C", "-o", "hits.docx"],
    ["declarations", str(DECLARATIONS), "-o", "v.xlsx"],
    ["rescreen", str(DECLARATIONS), "-o", "c.jsonl"],
    ["report", str(SEIZED)],
    ["screen", str(ROOT / "README.md")],
])
def test_an_unknown_output_or_input_format_is_a_usage_error(argv: list[str]) -> None:
    result = run(*argv)
    assert result.exit_code == 2, result.stderr


# -- stdout carries results only ------------------------------------------------------------------

def test_a_csv_without_an_id_column_warns_on_stderr(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("structure;weight\nCCO;46\nCC(=O)Cc1ccccc1;134\n", encoding="utf-8")
    result = run("screen", str(table), "--jobs", "1")
    assert result.exit_code == 0, result.stderr
    assert [r["id"] for r in _csv(result.stdout)] == ["0", "1"]          # stdout: results only
    assert "fields separated by ';'" in result.stderr
    assert re.search(r"warning: .*t\.csv: no id column among structure, weight", result.stderr)


def test_progress_bars_count_to_the_rows_of_a_file(tmp_path: Path) -> None:
    result = run("screen", str(SEIZED), "--jobs", "1", "--progress")
    rows = len(SEIZED.read_text(encoding="utf-8").splitlines()) - 1
    assert result.exit_code == 0, result.stderr
    assert re.search(rf"screening: 100%\|.*\| {rows}/{rows} ", result.stderr), result.stderr
    assert "screening" not in result.stdout
    decl = run("declarations", str(DECLARATIONS), "--jobs", "1", "--progress")
    n = len(_csv(DECLARATIONS.read_text(encoding="utf-8")))
    assert re.search(rf"declarations: 100%\|.*\| {n}/{n} ", decl.stderr), decl.stderr


@pytest.mark.parametrize("argv", [
    ["index", "build", str(SEIZED), "-o", "{tmp}/d.idx", "--workers", "2"],
    ["declarations", str(DECLARATIONS), "--workers", "2"],
])
def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                  argv: list[str]) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)   # as if Dask were not installed
    result = run(*[a.format(tmp=tmp_path) for a in argv])
    assert result.exit_code == 1, result.stderr
    assert "pip install 'precursor-screen[dask]'" in result.stderr
    assert result.stdout == ""
