"""`precursor-screen screen` and `check` from the command line: rows, formats, metadata, exit codes."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from rdkit import Chem

from precursor_screen import __version__
from precursor_screen.cli import cli
from precursor_screen.reference import builtin_registry
from precursor_screen.results import COLUMNS, read_results

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "examples" / "seized.smi")


def run(*args: str, input: str | bytes | None = None):  # noqa: ANN201
    return CliRunner().invoke(cli, list(args), input=input)


def test_screen_example_to_stdout_csv() -> None:
    result = run("screen", EXAMPLE, "--jobs", "1")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    n_input = sum(1 for line in open(EXAMPLE, encoding="utf-8")) - 1  # header line
    assert len(rows) == n_input
    assert tuple(rows[0]) == COLUMNS
    flags = {r["id"]: r["flag"] for r in rows}
    assert flags["APAAN"] == "scheduled"
    assert flags["BMK pentyl glycidate (unlisted ester)"] == "convertible"
    assert flags["acetophenone"] == "none"
    assert flags["broken SMILES"] == "" and "rows:" in result.stderr
    assert all(r["reference_sha256"] == builtin_registry().filter().content_hash for r in rows)
    assert all(r["tool_version"] == __version__ for r in rows)


@pytest.mark.parametrize("ext", ["csv", "tsv", "parquet", "sdf", "jsonl"])
def test_output_formats_carry_metadata(tmp_path: Path, ext: str) -> None:
    out = tmp_path / f"r.{ext}"
    result = run("screen", EXAMPLE, "-o", str(out), "--jobs", "1", "--as-of", "2012-12-31")
    assert result.exit_code == 0, result.stderr
    rows, meta = read_results(str(out))
    assert len(rows) == 27
    assert meta["tool_version"] == __version__
    assert meta["reference_as_of"] == "2012-12-31"
    assert meta["parameters"]["screen"]["depth"] == 2
    assert meta["inputs"][0]["sha256"]
    if ext == "parquet":
        assert pq.read_table(out).schema.field("score").type == "double"
    if ext == "sdf":
        assert len([m for m in Chem.SDMolSupplier(str(out)) if m is not None]) == 27


def test_stdin_and_piped_output_stay_clean() -> None:
    result = run("screen", "-", "--progress", input="CC(=O)C(C#N)c1ccccc1 apaan\nnonsense x\n")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["id"] for r in rows] == ["apaan", "x"]
    assert rows[1]["status"].startswith("unparsable")
    assert "screening" not in result.stdout


def test_ten_thousand_rows_with_five_percent_garbage(tmp_path: Path) -> None:
    rng = random.Random(11)
    good = [ln.split("\t")[0] for ln in open(EXAMPLE, encoding="utf-8").read().splitlines()[1:-1]]
    huge = "C" * 20 + "".join(f"C(C{'C' * 8})" for _ in range(48))  # ~500 atoms
    garbage = ["C1CC(", "", "\x00\x13\x7f", huge, "C[N](C)(C)(C)C", "c1cccc1", "[Zz]"]
    lines = [rng.choice(garbage) if i % 20 == 0 else rng.choice(good) for i in range(10_000)]
    f = tmp_path / "big.smi"
    f.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape") + b"\n")
    out = tmp_path / "out.csv"
    result = run("screen", str(f), "-o", str(out), "--jobs", "2")
    assert result.exit_code == 0, result.stderr
    rows, _ = read_results(str(out))
    assert len(rows) == 10_000
    assert [int(r["row"]) for r in rows] == list(range(10_000))
    bad = [r for r in rows if r["status"] != "ok"]
    assert len(bad) == 500 and all(r["flag"] == "" for r in bad)
    assert {r["status"].split(":")[0] for r in bad} >= {"empty", "unparsable SMILES", "too large",
                                                         "cannot sanitize"}
    assert "unreadable 500" in result.stderr


def test_dask_workers_output_is_byte_identical_to_jobs(tmp_path: Path) -> None:
    """`screen --workers 2` (a Dask LocalCluster) writes the very bytes `screen --jobs 2` does,
    in input order: the first 700 rows of the golden corpus (3 chunks) and the example."""
    corpus = (ROOT / "tests" / "data" / "golden" / "corpus.smi").read_text(encoding="utf-8")
    lines = corpus.splitlines()[1:701] + open(EXAMPLE, encoding="utf-8").read().splitlines()[1:]
    f = tmp_path / "in.smi"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outs = {}
    for mode in (("--jobs", "2"), ("--workers", "2")):
        out = tmp_path / f"out{mode[0]}.csv"
        result = run("screen", str(f), "-o", str(out), *mode)
        assert result.exit_code == 0, result.stderr
        outs[mode[0]] = out.read_bytes()
    assert outs["--workers"] == outs["--jobs"]
    rows, meta = read_results(str(tmp_path / "out--workers.csv"))
    assert [int(r["row"]) for r in rows] == list(range(len(lines)))
    assert meta["parameters"]["dask"] == "LocalCluster of 2"
    assert meta["parameters"]["timeout"] is None        # no per-row time budget on Dask
    both = run("screen", EXAMPLE, "--jobs", "2", "--workers", "2")
    assert both.exit_code == 2 and "--jobs is for local processes" in both.stderr
    timed = run("screen", EXAMPLE, "--workers", "2", "--timeout", "60")
    assert timed.exit_code == 2 and "--timeout cannot be enforced on Dask" in timed.stderr


def test_check_prints_evidence_and_json() -> None:
    text = run("check", "CC(=O)C(C#N)c1ccccc1", "--as-of", "2012-12-31")
    assert text.exit_code == 0
    assert "convertible" in text.stdout and "nitrile hydrolysis" in text.stdout
    data = json.loads(run("check", "APAAN", "--json").stdout)
    assert data["flag"] == "scheduled" and data["hits"][0]["substance_id"] == "apaan"


def test_errors_and_exit_codes(tmp_path: Path) -> None:
    missing = run("screen", str(tmp_path / "none.smi"))   # a usage error, as for every command
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    bad_col = tmp_path / "a.csv"
    bad_col.write_text("x,y\n1,2\n", encoding="utf-8")
    assert "no smiles column" in run("screen", str(bad_col)).stderr
    assert run("screen", EXAMPLE, "--depth", "9").exit_code == 2
    assert run("check", "not-a-smiles((").exit_code == 1
    ref = tmp_path / "ref.csv"
    ref.write_text("name,smiles\nx,C1CC(\n", encoding="utf-8")
    bad_ref = run("screen", EXAMPLE, "--reference", str(ref))
    assert bad_ref.exit_code == 1 and "ref.csv:2" in bad_ref.stderr


def test_extra_reference_names_its_list(tmp_path: Path) -> None:
    ref = tmp_path / "national.csv"
    ref.write_text("name,smiles\nbenzylacetone,CC(=O)CCc1ccccc1\n", encoding="utf-8")
    result = run("screen", "-", "--extra-reference", str(ref), input="CC(=O)CCc1ccccc1 x\n")
    row = next(csv.DictReader(io.StringIO(result.stdout)))
    assert row["flag"] == "scheduled" and row["match_list"] == "national.csv"
