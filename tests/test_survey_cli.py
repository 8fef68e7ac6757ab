"""`index build`, `index info` and `search` from the command line: rows, formats, metadata, exits."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import click
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from rdkit import Chem, DataStructs

from precursor_screen import __version__
from precursor_screen.chem.fingerprint import get_recipe
from precursor_screen.cli import Cli
from precursor_screen.cli.survey import (
    derivatives_cmd,
    enumerate_cmd,
    group_cmd,
    index_group,
    search_cmd,
)

LIBRARY = """smiles\tid
CC(=O)Cc1ccccc1\tP2P
CC(=O)Cc1ccc2c(c1)OCO2\tPMK
CC(=O)C(C#N)c1ccccc1\tAPAAN
CCC(=O)Cc1ccccc1\tethyl benzyl ketone
CC(=O)c1ccccc1\tacetophenone
OC(=O)Cc1ccccc1\tphenylacetic acid
c1ccccc1\tbenzene
C1CC\tbroken
CCO\tethanol
<b>x</b>\tmarkup
"""


def app() -> click.Group:
    @click.group(cls=Cli)
    @click.option("--debug", is_flag=True)
    def cli(debug: bool) -> None:
        """Test app."""

    for name, cmd in (("index", index_group), ("search", search_cmd),
                      ("derivatives", derivatives_cmd), ("group", group_cmd),
                      ("enumerate", enumerate_cmd)):
        cli.add_command(cmd, name)
    return cli


def run(*args: str, input: str | None = None):  # noqa: ANN201
    return CliRunner().invoke(app(), list(args), input=input)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    csv_path = d / "library.csv"
    csv_path.write_text(LIBRARY.replace("\t", ","), encoding="utf-8")
    result = run("index", "build", str(csv_path), "-o", str(d / "lib.idx"), "--shard-size", "4",
                 "--jobs", "1")
    assert result.exit_code == 0, result.stderr
    assert "10 rows added" in result.stderr and "2 unreadable" in result.stderr
    return d / "lib.idx"


def test_every_command_has_help_with_example() -> None:
    def walk(group: click.Group):  # noqa: ANN202
        for cmd in group.commands.values():
            yield cmd
            if isinstance(cmd, click.Group):
                yield from walk(cmd)

    for cmd in walk(app()):
        assert cmd.help and "Example" in cmd.help, cmd.name


def test_build_from_stdin_and_append(tmp_path: Path) -> None:
    out = tmp_path / "idx"
    result = run("index", "build", "-", "-o", str(out), input="CCO a\nCCN b\n")
    assert result.exit_code == 0, result.stderr
    result = run("index", "build", "-", "-o", str(out), "--append", input="CCC c\n")
    assert result.exit_code == 0, result.stderr
    assert "index now 3 rows" in result.stderr
    result = run("index", "build", "-", "-o", str(out), input="CCC c\n")
    assert result.exit_code == 1 and "--append" in result.stderr
    result = run("index", "info", str(out), "--verify")
    assert result.exit_code == 0, result.stderr
    assert "rows:         3 (3 indexed, 0 unreadable)" in result.stdout
    assert "every file matches" in result.stderr


def test_smarts_search_to_stdout(index_dir: Path) -> None:
    result = run("search", "--index", str(index_dir), "--smarts", "[CH3]C(=O)[CH2]c")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["id"] for r in rows] == ["P2P", "PMK"]
    assert rows[0] == {"row": "0", "id": "P2P", "smiles": "CC(=O)Cc1ccccc1"}
    assert "2 rows match" in result.stderr


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl"])
def test_similarity_search_outputs_carry_metadata(index_dir: Path, tmp_path: Path,
                                                  ext: str) -> None:
    out = tmp_path / f"hits.{ext}"
    result = run("search", "--index", str(index_dir), "--similar", "BMK", "--threshold", "0.3",
                 "-o", str(out))
    assert result.exit_code == 0, result.stderr
    manifest_sha = hashlib.sha256((index_dir / "manifest.json").read_bytes()).hexdigest()
    if ext == "parquet":
        table = pq.read_table(out)
        rows = table.to_pylist()
        meta = json.loads(table.schema.metadata[b"precursor_screen"])
        assert table.schema.field("similarity").type == "double"
    else:
        meta = json.loads(Path(str(out) + ".meta.json").read_text())
        rows = (list(csv.DictReader(out.open())) if ext == "csv"
                else [json.loads(line) for line in out.read_text().splitlines()])
    assert meta["tool_version"] == __version__ and meta["index_manifest_sha256"] == manifest_sha
    assert meta["parameters"]["threshold"] == 0.3 and meta["command"] == "search"
    recipe = get_recipe("morgan2")
    bmk = recipe.bitvect(Chem.MolFromSmiles("CC(=O)Cc1ccccc1"))
    for r in rows:
        expected = DataStructs.TanimotoSimilarity(bmk, recipe.bitvect(Chem.MolFromSmiles(r["smiles"])))
        assert float(r["similarity"]) == expected >= 0.3
    assert rows[0]["id"] == "P2P" and float(rows[0]["similarity"]) == 1.0


def test_similarity_search_query_file_top_k(index_dir: Path, tmp_path: Path) -> None:
    queries = tmp_path / "q.smi"
    queries.write_text("CC(=O)Cc1ccc2c(c1)OCO2 q-pmk\nnonsense q-bad\nCCO q-ethanol\n")
    result = run("search", "--index", str(index_dir), "--similar", str(queries), "--top", "2")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    by_query: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_query.setdefault(r["query_id"], []).append(r)
    assert [r["id"] for r in by_query["q-pmk"]] == ["PMK", "P2P"]
    assert [r["rank"] for r in by_query["q-ethanol"]] == ["1", "2"]
    assert by_query["q-bad"][0]["query_status"].startswith("unparsable SMILES")
    assert "3 queries (1 unreadable)" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--smarts", "C", "--similar", "C"], "one of --smarts"),
    ([], "one of --smarts"),
    (["--smarts", "C", "--top", "3"], "go with --similar"),
    (["--similar", "C", "--top", "3", "--threshold", "0.5"], "not both"),
    (["--similar", "C", "--threshold", "1.5"], "1.5"),
    (["--similar", "no such molecule or name"], "is not a file"),
])
def test_usage_errors_exit_2(index_dir: Path, args: list[str], message: str) -> None:
    result = run("search", "--index", str(index_dir), *args)
    assert result.exit_code == 2 and message in result.stderr


def test_runtime_errors_exit_1(index_dir: Path, tmp_path: Path) -> None:
    result = run("search", "--index", str(index_dir), "--smarts", "C(")
    assert result.exit_code == 1 and "Error: unparsable SMARTS" in result.stderr
    assert "Traceback" not in result.stderr
    result = run("search", "--index", str(tmp_path), "--smarts", "C")
    assert result.exit_code == 1 and "not a library index" in result.stderr
    result = run("search", "--index", str(index_dir), "--smarts", "C", "-o", "x.xlsx")
    assert result.exit_code == 2 and "output format" in result.stderr   # a usage error
