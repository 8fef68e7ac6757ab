"""The hostile corpus (``tests/fuzz_corpus.py``, 22,587 rows) through `screen` and `declarations`:
no crash, no row lost or invented, no cell a spreadsheet would run, every output parses.

Marked ``long`` (about a minute on two busy cores); it is part of the default ``python -m
pytest`` that CI runs (``-m "not long"`` leaves it out while developing).
"""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from rdkit import Chem

from precursor_screen.cli import cli
from precursor_screen.results import SCREEN

pytestmark = pytest.mark.long

HERE = Path(__file__).resolve().parent
SCREEN_FILES = ("fuzz.smi", "fuzz.csv", "fuzz.tsv", "fuzz.sdf", "fuzz_utf16.smi", "fuzz_cr.smi",
                "fuzz_latin1.smi", "fuzz_bom.csv", "fuzz.smi.gz")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
TEXT_COLUMNS = [c.name for c in SCREEN if c.type is str]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    spec = importlib.util.spec_from_file_location("fuzz_corpus", HERE / "fuzz_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    where = tmp_path_factory.mktemp("fuzz")
    return where, module.make_corpus(where)


def _run(*args: str):  # noqa: ANN202
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _unsafe(cells: list[str]) -> list[str]:
    return [c for c in cells if c.startswith(FORMULA_START)]


def test_the_corpus_is_large_and_deterministic(corpus: tuple[Path, dict[str, int]],
                                               tmp_path: Path) -> None:
    where, expected = corpus
    assert sum(expected.values()) >= 20_000
    spec = importlib.util.spec_from_file_location("fuzz_corpus_again", HERE / "fuzz_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make_corpus(tmp_path)
    for name in expected:
        assert (tmp_path / name).read_bytes() == (where / name).read_bytes(), name


def test_screen_loses_no_row_and_writes_no_formula(corpus: tuple[Path, dict[str, int]]) -> None:
    where, expected = corpus
    out = where / "all.csv"
    result = _run("screen", *(str(where / f) for f in SCREEN_FILES), "-o", str(out),
                  "--jobs", "2", "--timeout", "20", "--no-progress")
    assert result.exit_code == 0, result.stderr
    total = sum(expected[f] for f in SCREEN_FILES)
    assert f"{total} rows in, {total} rows out" in result.stderr
    with open(out, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["row"]) for r in rows] == list(range(total))
    assert not _unsafe([r[c] for r in rows for c in TEXT_COLUMNS])
    # physical lines: the header and one per row, besides line breaks inside quoted cells
    unquoted = out.read_bytes().split(b'"')[::2]
    assert sum(p.count(b"\n") for p in unquoted) == total + 1
    assert sum(p.count(b"\r") for p in unquoted) == 0
    statuses = {r["status"].split(":")[0] for r in rows}
    assert {"ok", "too large", "malformed row", "unreadable", "empty",
            "unparsable SMILES", "broken SDF record"} <= statuses
    assert not [r for r in rows if r["status"].startswith("error")]
    # each file's rows, in order: the first file's first row is row 0 and so on
    start = 0
    for name in SCREEN_FILES:
        assert rows[start]["row"] == str(start)
        start += expected[name]


@pytest.mark.parametrize("fmt", ["tsv", "jsonl", "parquet", "sdf"])
def test_every_output_format_parses(corpus: tuple[Path, dict[str, int]], fmt: str) -> None:
    where, expected = corpus
    inputs = ("fuzz.tsv", "fuzz_bom.csv", "fuzz_cr.smi")
    out = where / f"mix.{fmt}"
    result = _run("screen", *(str(where / f) for f in inputs), "-o", str(out), "--jobs", "2",
                  "--timeout", "20", "--no-progress")
    assert result.exit_code == 0, result.stderr
    total = sum(expected[f] for f in inputs)
    if fmt == "tsv":
        with open(out, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        assert not _unsafe([r[c] for r in rows for c in TEXT_COLUMNS])
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    elif fmt == "parquet":
        rows = pq.read_table(out).to_pylist()
    else:
        text = out.read_text(encoding="utf-8")
        assert text.count("$$$$\n") == total
        supplier = Chem.ForwardSDMolSupplier(str(out), sanitize=False)
        rows = [m.GetPropsAsDict() if m is not None else None for m in supplier]
        assert None not in rows
    assert len(rows) == total
    assert [int(r["row"]) for r in rows] == list(range(total))


def test_declarations_lose_no_row_and_write_no_formula(corpus: tuple[Path, dict[str, int]]) -> None:
    where, expected = corpus
    out = where / "declarations.csv"
    result = _run("declarations", str(where / "fuzz_declarations.csv"), "-o", str(out),
                  "--jobs", "1", "--no-progress")
    assert result.exit_code == 0, result.stderr
    n = expected["fuzz_declarations.csv"]
    assert f"{n} rows in, {n} rows out" in result.stderr
    with open(out, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["row"]) for r in rows] == list(range(n))
    assert not _unsafe([v for r in rows for k, v in r.items() if k not in ("row", "similarity")])
    assert sum(r["rules"].startswith("input:malformed") for r in rows) > 0
