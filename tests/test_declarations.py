"""Declaration screening: schema and column mapping, resolution, verdicts with reasons, the CLI."""

from __future__ import annotations

import csv
import gzip
import io
import json
from functools import lru_cache
from pathlib import Path

import click
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from precursor_screen.cli import Cli
from precursor_screen.cli.declarations import declarations_cmd, rescreen_cmd
from precursor_screen.declarations.schema import (
    FIELDS,
    Declaration,
    InputSpec,
    load_config,
    parse_column_options,
    read_declarations,
)
from precursor_screen.declarations.verdict import OUTPUT_COLUMNS, DeclarationScreener
from precursor_screen.errors import InputError
from precursor_screen.reference import builtin_registry

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "examples" / "declarations.csv")


@lru_cache(maxsize=1)
def screener() -> DeclarationScreener:
    return DeclarationScreener.build()


def judge(**fields: str) -> object:
    return screener().judge([Declaration(0, "T", **fields)])[0]


def cli() -> click.Group:
    """The commands under the project's error-mapping group, as `precursor-screen` runs them."""
    group = Cli(context_settings={"help_option_names": ["-h", "--help"]})
    group.add_command(declarations_cmd, "declarations")
    group.add_command(rescreen_cmd, "rescreen")
    return group


def run(*args: str):  # noqa: ANN201
    return CliRunner().invoke(cli(), list(args))


# -- verdicts: real chemistry -----------------------------------------------------------------

CASES = [
    # listed substances by each route of resolution
    pytest.param(dict(cas="103-79-7"), "scheduled", "screen:scheduled", "bmk", "cas:registry", id="BMK by CAS"),
    pytest.param(dict(name="Phenylacetone"), "scheduled", "screen:scheduled", "bmk", "name:registry", id="BMK by name"),
    pytest.param(dict(smiles="CC(=O)Cc1ccccc1"), "scheduled", "screen:scheduled", "bmk", "smiles", id="BMK by SMILES"),
    pytest.param(dict(smiles="InChI=1S/C10H9NO/c1-8(12)10(7-11)9-5-3-2-4-6-9/h2-6,10H,1H3"),
                 "scheduled", "screen:scheduled", "apaan", "inchi", id="APAAN by InChI"),
    pytest.param(dict(name="EPHEDRINE HCl USP"), "scheduled", "screen:scheduled", "ephedrine", "name:registry",
                 id="ephedrine HCl by name, salt and grade words"),
    pytest.param(dict(cas="50-98-6"), "scheduled", "screen:scheduled", "ephedrine", "cas:bundled",
                 id="ephedrine HCl by the salt's CAS"),
    pytest.param(dict(cas="4433-77-6", cn_code="2924 29 70"), "scheduled", "screen:scheduled", "apaa",
                 "cas:registry", id="APAA under its shared code"),
    # designer precursors: the screen's flag makes them suspect
    pytest.param(dict(smiles="CCCCCOC(=O)C1(C)OC1c1ccccc1", cn_code="2918 99 90"), "suspect",
                 "screen:convertible", "bmk-methyl-glycidate", "smiles", id="BMK pentyl glycidate"),
    pytest.param(dict(name="PMK pentyl glycidate"), "suspect", "screen:convertible", "pmk-methyl-glycidate",
                 "name:bundled", id="PMK pentyl glycidate by name"),
    pytest.param(dict(cas="3612-20-2"), "suspect", "screen:convertible", "4-piperidone", "cas:bundled",
                 id="1-benzyl-4-piperidone by CAS"),
    # designer heading beside structure evidence
    # PMP2P (4-methoxyphenylacetone) is one reductive amination from PMA: a drug precursor
    pytest.param(dict(cas="122-84-9", cn_code="2914 50 00"), "suspect", "cn:designer-heading", "pma",
                 "cas:bundled", id="PMP2P under 2914"),
    pytest.param(dict(cas="122-84-9"), "suspect", "screen:drug-precursor", "pma", "cas:bundled",
                 id="PMP2P, no code"),
    # ordinary chemicals
    pytest.param(dict(cas="98-86-2", cn_code="2914 39 00"), "clear", "screen:none", "bmk", "cas:bundled",
                 id="acetophenone"),
    pytest.param(dict(cas="141-78-6", name="Ethyl acetate"), "clear", "screen:none", "acetic-anhydride",
                 "cas:bundled", id="ethyl acetate, CAS and name agree"),
    pytest.param(dict(description="ACETONE tech grade 99%"), "scheduled", "screen:scheduled", "acetone",
                 "description:registry", id="acetone from the description"),
    # a listed CN code names the substance even without a structure
    pytest.param(dict(cn_code="2914 31 00"), "scheduled", "cn:listed", "bmk", "", id="BMK's CN code alone"),
    pytest.param(dict(cn_code="3004 41 00"), "scheduled", "cn:listed", "cat4-ephedrine-products", "",
                 id="Category 4 medicament code"),
    # declarations that contradict themselves
    pytest.param(dict(cas="98-86-2", smiles="CC(=O)Cc1ccccc1"), "scheduled", "consistency:sources", "bmk",
                 "smiles;cas:bundled", id="acetophenone CAS, BMK structure"),
    pytest.param(dict(cas="64-17-5", name="Acetophenone"), "suspect", "consistency:sources", "",
                 "cas:bundled;name:bundled", id="ethanol CAS, acetophenone name"),
    pytest.param(dict(name="Acetone", cn_code="2926 90 70"), "scheduled", "consistency:cn-heading", "acetone",
                 "name:registry", id="acetone declared as a nitrile"),
    pytest.param(dict(cas="98-86-2", cn_code="2914 31 00"), "scheduled", "consistency:cn-substance", "bmk",
                 "cas:bundled", id="acetophenone under BMK's subheading"),
    # rows without a structure: a status, never dropped
    pytest.param(dict(cas="103-79-8"), "unresolved", "input:cas", "", "", id="wrong check digit"),
    pytest.param(dict(cas="999-99-9"), "unresolved", "input:cas", "", "", id="wrong check digit 2"),
    pytest.param(dict(cas="1234-56-6"), "unresolved", "unresolved", "", "", id="CAS no table knows"),
    pytest.param(dict(name="SEE INVOICE"), "unresolved", "unresolved", "", "", id="filler name"),
    pytest.param(dict(smiles="C1CC("), "unresolved", "input:structure", "", "", id="broken SMILES"),
    pytest.param(dict(), "unresolved", "unresolved", "", "", id="nothing declared"),
]


@pytest.mark.parametrize("fields, verdict, rule, match_id, resolved_by", CASES)
def test_verdict(fields: dict[str, str], verdict: str, rule: str, match_id: str, resolved_by: str) -> None:
    v = judge(**fields)
    assert (v.verdict, v.resolved_by) == (verdict, resolved_by), v.reason
    assert rule in v.rules, v.rules
    if match_id:
        assert v.match_id == match_id
    assert v.reason


def test_reasons_name_the_evidence() -> None:
    v = judge(cas="98-86-2", smiles="CC(=O)Cc1ccccc1")
    assert "the SMILES CC(=O)Cc1ccccc1: is 1-Phenyl-2-propanone" in v.reason
    assert ("declaration contradicts itself: CAS 98-86-2 (Acetophenone) and the SMILES "
            "CC(=O)Cc1ccccc1 are different substances") in v.reason
    assert "wrong check digit" in judge(cas="103-79-8", name="acetone").reason   # a bad CAS is a reason
    assert judge(cas="103-79-8", name="acetone").verdict == "scheduled"           # the name still resolves
    v = judge(cn_code="2914 31 00")
    assert v.reason.startswith("declared under CN 2914 31 00, the subheading for 1-Phenyl-2-propanone")
    assert "no structure could be determined" in v.reason


def test_a_mixture_of_cas_numbers_is_no_contradiction() -> None:
    v = judge(cas="108-88-3;1330-20-7;67-64-1", cn_code="3814 00 90")
    assert v.verdict == "scheduled" and "consistency" not in ";".join(v.rules)
    assert v.resolved_by == "cas:registry;cas:registry" and v.resolved_smiles == "Cc1ccccc1;CC(C)=O"


def test_malformed_row_is_unresolved_with_its_reason() -> None:
    v = screener().judge([Declaration(3, "X", cas="103-79-7", error="malformed row: 9 fields, the header has 7")])[0]
    assert (v.row, v.verdict, v.rules, v.reason) == (3, "unresolved", ("input:malformed",),
                                                      "malformed row: 9 fields, the header has 7")


def test_verdicts_do_not_depend_on_cache_state() -> None:
    rows = [Declaration(i, str(i), **f) for i, f in enumerate(p.values[0] for p in CASES)]
    warm = screener().judge(rows)
    fresh = DeclarationScreener(screener().config).judge(list(reversed(rows)))
    assert [(v.verdict, v.reason, v.rules) for v in warm] == [(v.verdict, v.reason, v.rules)
                                                              for v in reversed(fresh)]


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({f: text for f in FIELDS[1:]}), min_size=1, max_size=8))
def test_any_text_gives_one_verdict_per_row(rows: list[dict[str, str]]) -> None:
    decls = [Declaration(i, f"R{i}", **r) for i, r in enumerate(rows)]
    out = screener().judge(decls)
    assert [v.row for v in out] == [d.row for d in decls]
    assert all(v.verdict in ("scheduled", "suspect", "clear", "unresolved") and v.reason for v in out)


# -- schema and column mapping ----------------------------------------------------------------

def test_parse_column_options_rejects_unknown_fields() -> None:
    assert parse_column_options(["cas=CAS RN"]) == {"cas": "CAS RN"}
    with pytest.raises(InputError, match="unknown field 'casrn'"):
        parse_column_options(["casrn=CAS"])
    with pytest.raises(InputError, match="write FIELD=COLUMN"):
        parse_column_options(["cas"])


def _write(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)


def test_columns_mapped_by_config_file(tmp_path: Path) -> None:
    data = tmp_path / "export.csv"
    _write(data, ["Decl. no.", "CN", "CAS RN", "Goods"], [["A1", "2914 31 00", "103-79-7", "BMK"]], ";")
    mapping = tmp_path / "mine.csv"
    _write(mapping, ["cas", "name", "smiles"], [["1234-56-6", "house ketone", "CC(=O)CCc1ccccc1"]])
    config = tmp_path / "customs.toml"
    config.write_text('[columns]\ndeclaration_id = "Decl. no."\ncn_code = "CN"\ncas = "CAS RN"\n'
                      'description = "Goods"\n[input]\ndelimiter = ";"\n'
                      '[resolve]\nmap_files = ["mine.csv"]\n', encoding="utf-8")
    conf = load_config(str(config))
    assert conf["resolve"]["map_files"] == [str(mapping)]
    rows = list(read_declarations([str(data)], InputSpec(conf["columns"], ";")))
    assert rows == [Declaration(0, "A1", "2914 31 00", "103-79-7", "", "", "BMK", "")]


@pytest.mark.parametrize("body, message", [
    ('[columns]\ncasrn = "x"\n', "unknown key"),
    ('[colums]\ncas = "x"\n', "unknown table"),
    ("[columns\n", "not valid TOML"),
    ('[input]\ndelimiter = ";;"\n', "one character"),
])
def test_bad_config_files_say_what_is_wrong(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_config(str(path))


def test_csv_gz_tsv_parquet_and_a_partitioned_directory_read_alike(tmp_path: Path) -> None:
    header = ["declaration_id", "cas", "quantity_kg"]
    rows = [["A", "67-64-1", "10"], ["B", "", ""], ["C", "103-79-7", "2.5"]]
    _write(tmp_path / "a.csv", header, rows)
    _write(tmp_path / "a.tsv", header, rows, "\t")
    with gzip.open(tmp_path / "a.csv.gz", "wt", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    table = pa.table({"declaration_id": ["A", "B", "C"], "cas": ["67-64-1", None, "103-79-7"],
                      "quantity_kg": [10.0, None, 2.5]})
    pq.write_table(table, tmp_path / "a.parquet")
    (tmp_path / "parts").mkdir()
    pq.write_table(table.slice(0, 2), tmp_path / "parts" / "p0.parquet")
    pq.write_table(table.slice(2), tmp_path / "parts" / "p1.parquet")
    expected = [(r.row, r.declaration_id, r.cas, r.quantity_kg) for r in
                read_declarations([str(tmp_path / "a.csv")])]
    assert expected == [(0, "A", "67-64-1", "10"), (1, "B", "", ""), (2, "C", "103-79-7", "2.5")]
    for name in ("a.tsv", "a.csv.gz", "a.parquet", "parts"):
        got = [(r.row, r.declaration_id, r.cas, r.quantity_kg)
               for r in read_declarations([str(tmp_path / name)])]
        assert got == expected, name


def test_rows_keep_their_place_when_malformed_or_binary(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"declaration_id,cas,name\nA,67-64-1,acetone\nB,1,2,3\nC,,x\x00y\nD\nE,,,\n")
    rows = list(read_declarations([str(path)]))
    assert [r.declaration_id for r in rows] == ["A", "B", "C", "D", "E"]
    assert [bool(r.error) for r in rows] == [False, True, True, True, False]  # E: empty trailing field
    assert rows[2].name == "xy" and "NUL" in rows[2].error


def test_no_declaration_id_column_is_an_input_error(tmp_path: Path) -> None:
    _write(tmp_path / "d.csv", ["id", "cas"], [["A", "67-64-1"]])
    with pytest.raises(InputError, match="no declaration_id column"):
        list(read_declarations([str(tmp_path / "d.csv")]))


# -- the command ------------------------------------------------------------------------------

def test_declarations_example_to_stdout() -> None:
    result = run("declarations", EXAMPLE, "--jobs", "1")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    with open(EXAMPLE, encoding="utf-8", newline="") as fh:
        n_in = sum(1 for _ in csv.DictReader(fh))
    assert len(rows) == n_in and tuple(rows[0]) == OUTPUT_COLUMNS
    verdicts = {r["declaration_id"]: r["verdict"] for r in rows}
    assert verdicts["DE-EXP-2025-000105"] == "scheduled"      # phenylacetone by CAS
    assert verdicts["DE-EXP-2025-000107"] == "suspect"        # BMK pentyl glycidate by SMILES
    assert verdicts["DE-EXP-2025-000104"] == "clear"          # acetophenone
    assert verdicts["DE-EXP-2025-000121"] == "unresolved"     # wrong check digit
    assert f"{n_in} rows in, {n_in} rows out" in result.stderr
    assert all(r["reference_sha256"] == builtin_registry().filter().content_hash for r in rows)


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_output_formats_carry_deterministic_metadata(tmp_path: Path, ext: str) -> None:
    out = tmp_path / f"v.{ext}"
    result = run("declarations", EXAMPLE, "-o", str(out), "--jobs", "1", "--as-of", "2019-12-31")
    assert result.exit_code == 0, result.stderr
    if ext == "parquet":
        meta = json.loads(pq.read_schema(out).metadata[b"precursor_screen"])
        assert pq.read_table(out).num_rows == 30
    else:
        meta = json.loads((tmp_path / f"v.{ext}.meta.json").read_text(encoding="utf-8"))
    assert meta["reference_as_of"] == "2019-12-31" and "created" not in meta
    assert meta["parameters"]["as_of"] == "2019-12-31"
    assert meta["summary"]["rows"] == 30 and sum(meta["summary"]["verdicts"].values()) == 30
    assert {e["id"] for e in meta["reference_inventory"]} >= {"bmk", "apaan"}
    assert not (tmp_path / f"v.{ext}.parts").exists()


@pytest.mark.parametrize("ext", ["csv", "tsv", "parquet", "jsonl"])
def test_every_output_format_reads_back_typed(tmp_path: Path, ext: str) -> None:
    from precursor_screen.declarations.run import part_table, read_output, write_rows

    decls = [Declaration(0, "A", cas="103-79-7"), Declaration(1, "B", name='say "x",\ny\tz'),
             Declaration(2, "C")]
    rows = screener().judge_rows(decls, "v", "sha")
    out = tmp_path / f"o.{ext}"
    write_rows(str(out), ext, [part_table(rows[:2]), part_table(rows[2:])], {"k": 1})
    tables, meta = read_output(str(out))
    back = [tuple(r.values()) for t in tables for r in t.to_pylist()]
    assert back == rows
    # CSV and TSV say whether their text cells were formula-neutralised (read back undone)
    assert meta == ({"k": 1, "cells": meta["cells"]} if ext in ("csv", "tsv") else {"k": 1})


def test_cli_errors_map_to_exit_codes(tmp_path: Path) -> None:
    bad = run("declarations", EXAMPLE, "--column", "casrn=CAS")
    assert bad.exit_code == 2 and "unknown field" in bad.stderr
    _write(tmp_path / "d.csv", ["id"], [["A"]])
    missing = run("declarations", str(tmp_path / "d.csv"), "--jobs", "1")
    assert missing.exit_code == 1 and missing.stderr.startswith("Error: ") and "declaration_id" in missing.stderr
    both = run("declarations", EXAMPLE, "--workers", "2", "--jobs", "2")
    assert both.exit_code == 2


def test_commands_have_help_with_an_example() -> None:
    for cmd in (declarations_cmd, rescreen_cmd):
        assert cmd.help and "Example" in cmd.help


# -- OPSIN: optional ----------------------------------------------------------------------------

class _FakeOpsin:
    """Stands in for the Java process: records the batches it is sent."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def parse(self, names: list[str]) -> list[str]:
        self.batches.append(list(names))
        return ["CCCC(=O)Cc1ccccc1" if n == "1-phenylpentan-2-one" else "" for n in names]


def test_opsin_gets_only_unresolved_names_once_per_chunk() -> None:
    from precursor_screen.declarations.resolve import Resolver

    fake = _FakeOpsin()
    resolver = Resolver(screener().resolver.table, fake)  # type: ignore[arg-type]
    decls = [Declaration(0, "a", name="1-phenylpentan-2-one"), Declaration(1, "b", name="acetone"),
             Declaration(2, "c", name="1-phenylpentan-2-one"), Declaration(3, "d", name="zzz qqq")]
    got = resolver.resolve_all(decls)
    assert fake.batches == [["1-phenylpentan-2-one", "zzz qqq"]]
    assert [r.found[0].resolved_by if r.found else "" for r in got] == ["opsin", "name:registry", "opsin", ""]
    resolver.resolve_all(decls)
    assert len(fake.batches) == 1                                  # remembered, not asked again


def test_real_opsin_when_installed() -> None:
    from precursor_screen.declarations.resolve import Opsin

    opsin = Opsin()
    if opsin.problem():
        pytest.skip(opsin.problem())
    assert opsin.parse(["1-phenylpentan-2-one", "not a chemical name"]) == ["C1(=CC=CC=C1)CC(CCC)=O", ""]
