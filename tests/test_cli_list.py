"""`precursor-screen list`: filters, formats, and the registry hash."""

from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner
from rdkit import Chem

from precursor_screen.cli import cli
from precursor_screen.reference import builtin_registry


def run(*args: str) -> "CliRunner.invoke":
    return CliRunner().invoke(cli, list(args))


def test_list_csv_has_the_listed_substances_with_inchikeys() -> None:
    result = run("list", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    by_name = {r["name"].lower(): r for r in rows}
    bmk = by_name["1-phenyl-2-propanone"]
    assert bmk["inchikey"] == "QCCDLTOVEPVEJK-UHFFFAOYSA-N"
    for r in rows:
        if r["smiles"]:
            assert Chem.MolToInchiKey(Chem.MolFromSmiles(r["smiles"])) == r["inchikey"]
    assert builtin_registry().content_hash in result.stderr


def test_list_as_of_2012() -> None:
    rows = list(csv.DictReader(io.StringIO(run("list", "--format", "csv", "--as-of", "2012-12-31").stdout)))
    ids = {r["id"] for r in rows}
    assert "bmk" in ids and "apaan" not in ids and "anpp" not in ids


def test_list_json_records_hash_and_parameters() -> None:
    result = run("list", "--format", "json", "--category", "2B")
    data = json.loads(result.stdout)
    assert data["metadata"]["registry_sha256"] == builtin_registry().content_hash
    assert data["metadata"]["parameters"]["category"] == "2B"
    assert {s["id"] for s in data["substances"]} >= {"phenylacetic-acid", "piperidine"}
    assert all(s["eu_category"] == "2B" for s in data["substances"])


def test_list_table_and_sdf(tmp_path: object) -> None:
    table = run("list", "--un-table", "II")
    assert table.exit_code == 0 and "registry sha256" in table.stdout
    sdf = run("list", "--format", "sdf", "--search", "piperidone")
    supplier = Chem.SDMolSupplier()
    supplier.SetData(sdf.stdout)
    names = [m.GetProp("_Name") for m in supplier if m is not None]
    assert any("iperidone" in n for n in names) and len(names) >= 2


def test_list_added_since_and_include_proposed() -> None:
    recent = run("list", "--format", "csv", "--added-since", "2024-01-01").stdout
    assert "4-piperidone" in recent and "QCCDLTOVEPVEJK" not in recent
    assert ",proposed," not in run("list", "--format", "csv").stdout
    # the six propiophenones were proposed (COM(2025) 747) until (EU) 2026/314 scheduled them
    before = run("list", "--format", "csv", "--as-of", "2026-01-01").stdout
    assert ",proposed," not in before
    proposed = run("list", "--format", "csv", "--include", "proposed", "--as-of",
                   "2026-01-01").stdout
    assert proposed.count(",proposed,") == 6


def test_list_per_jurisdiction() -> None:
    us = list(csv.DictReader(io.StringIO(run("list", "--format", "csv", "--jurisdiction", "us",
                                             "--added-since", "2023-01-01").stdout)))
    assert {r["id"] for r in us} >= {"4-piperidone", "1-boc-4-piperidone", "bmk-glycidic-acid"}
    assert all(r["jurisdictions"] == "us" and r["first_listed"] >= "2023-01-01" for r in us)
    eu = {r["id"] for r in csv.DictReader(io.StringIO(run(
        "list", "--format", "csv", "--jurisdiction", "eu", "--added-since", "2026-01-01").stdout))}
    assert len(eu) == 9 and "phenyl-2-nitropropene" in eu
    default = {r["id"] for r in csv.DictReader(io.StringIO(run("list", "--format", "csv").stdout))}
    assert "benzyl-cyanide" not in default and "phenyl-2-nitropropene" in default
    bad = run("list", "--jurisdiction", "xx")
    assert bad.exit_code == 2 and "jurisdictions are eu, un, us" in bad.stderr


def test_bad_date_is_a_usage_error() -> None:
    result = run("list", "--as-of", "yesterday")
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.stderr
