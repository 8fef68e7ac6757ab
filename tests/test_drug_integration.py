"""The drug-precursor stage inside the screen and the CLI: flags, reasons, `list --drugs`, `check`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

from click.testing import CliRunner

from precursor_screen.cli import cli
from precursor_screen.reference import builtin_drugs as load_drugs
from precursor_screen.rules.drug_targets import DrugTargets
from precursor_screen.screen import Screener
from precursor_screen.types import Flag

SCREENER = Screener()
BEFORE_2026 = Screener(as_of=dt.date(2025, 12, 31))
"""The list before Commission Delegated Regulation (EU) 2026/314 scheduled the cathinone ketones:
they were drug precursors then (and are scheduled now, see tests/test_listings.py)."""


def run(*args: str) -> "CliRunner.invoke":
    return CliRunner().invoke(cli, list(args))


def test_screen_flags_drug_precursors_with_drug_control_and_reagents() -> None:
    rows = ["O=C1CCCO1", "CC(Br)C(=O)c1ccc(C)cc1", "CC(=O)c1ccccc1", "CC(=O)Cc1ccccc1"]
    got = list(BEFORE_2026.screen(rows))
    assert [v.flag for v in got] == [Flag.DRUG_PRECURSOR, Flag.DRUG_PRECURSOR, Flag.NONE,
                                     Flag.SCHEDULED]
    gbl, bromo = got[0], got[1]
    assert gbl.match_id == "ghb" and "1971 Convention, Schedule II" in gbl.reason
    assert "+ water or an alkali hydroxide" in gbl.reason
    assert bromo.match_id == "mephedrone" and "+ methylamine (amination" in bromo.reason
    assert 0.8 <= bromo.score < 0.85
    # the stronger precursor flag wins: BMK stays scheduled although methylamine makes a drug of it
    assert got[3].match_id == "bmk"


def test_check_keeps_drug_routes_under_stronger_flags() -> None:
    v = SCREENER.check("CC(=O)Cc1ccccc1")
    assert v.flag is Flag.SCHEDULED
    assert {h.substance_id for h in v.hits if h.relation == "drug"} >= {"amphetamine",
                                                                        "methamphetamine"}


def test_check_takes_a_drug_name() -> None:
    v = SCREENER.check("mephedrone")
    assert v.standardized_smiles == "CNC(C)C(=O)c1ccc(C)cc1"
    assert v.flag is Flag.DRUG_PRECURSOR and "itself a controlled drug" in v.reason


def test_as_of_reaches_the_drug_targets() -> None:
    old = Screener(as_of=dt.date(2009, 12, 31))
    assert old.drugs.as_of == dt.date(2009, 12, 31)
    v = old.check("CC(Br)C(=O)c1ccc(C)cc1")
    assert "mephedrone" not in {h.substance_id for h in v.hits}


def test_parallel_screen_equals_serial() -> None:
    rows = ["CCC(=O)c1ccc(C)cc1", "OCCCCO", "CCO", "CC(=O)N(c1ccccc1)C1CCNCC1"] * 3
    serial = [(v.flag, v.reason) for v in SCREENER.screen(rows)]
    assert [(v.flag, v.reason) for v in SCREENER.screen(rows, jobs=2, chunk_size=2)] == serial


def test_metadata_names_the_drug_registry() -> None:
    meta = SCREENER.metadata()["drug_targets"]
    assert meta["drugs_sha256"] == load_drugs().content_hash and meta["synthesis_rules"] > 10


def test_drug_stage_can_be_switched_off() -> None:
    from precursor_screen.screen import ScreenParameters

    off = Screener(as_of=dt.date(2025, 12, 31), parameters=ScreenParameters(drug_targets=False))
    assert off.check("CC(Br)C(=O)c1ccc(C)cc1").flag is Flag.NONE


def test_screener_takes_a_drug_stage() -> None:
    only_ghb = DrugTargets(load_drugs().filter(search="GHB"))
    v = Screener(as_of=dt.date(2025, 12, 31), drugs=only_ghb).check("CC(Br)C(=O)c1ccc(C)cc1")
    assert not any(h.substance_id == "mephedrone" for h in v.hits)


def test_list_drugs_formats_and_as_of() -> None:
    table = run("list", "--drugs")
    assert table.exit_code == 0 and "drug registry sha256" in table.stdout
    assert "Mephedrone" in table.stdout and "controlled drugs" in table.stderr
    rows = list(csv.DictReader(io.StringIO(run("list", "--drugs", "--format", "csv",
                                               "--as-of", "2009-12-31").stdout)))
    ids = {r["id"] for r in rows}
    assert "amphetamine" in ids and "mephedrone" not in ids
    data = json.loads(run("list", "--drugs", "--format", "json", "--search", "fentanyl").stdout)
    assert data["metadata"]["drugs_sha256"] == load_drugs().content_hash
    assert {d["id"] for d in data["drugs"]} >= {"fentanyl", "acetylfentanyl", "carfentanil"}


def test_list_drugs_refuses_precursor_filters() -> None:
    result = run("list", "--drugs", "--category", "1")
    assert result.exit_code == 2 and "do not apply to --drugs" in result.stderr


def test_check_prints_drug_routes() -> None:
    result = run("check", "CCC(=O)c1ccc(C)cc1", "--as-of", "2025-12-31")
    assert result.exit_code == 0, result.output
    assert "flag:         drug-precursor" in result.stdout
    assert "[drug] two steps to Mephedrone" in result.stdout
    now = run("check", "CCC(=O)c1ccc(C)cc1")  # scheduled since 2026, the routes still shown
    assert "flag:         scheduled" in now.stdout
    assert "[drug] two steps to Mephedrone" in now.stdout
    data = json.loads(run("check", "CCC(=O)c1ccc(C)cc1", "--json").stdout)
    drug = next(h for h in data["hits"] if h["relation"] == "drug")
    assert "(+ a brominating agent)" in drug["route"] and "(+ methylamine)" in drug["route"]
