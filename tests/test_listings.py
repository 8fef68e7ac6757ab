"""The listings model (issue 17): the 2026 EU act, UN decisions and their sources, the US lists
and their family clauses, jurisdictions on the commands, thresholds in declarations, integrity."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from precursor_screen import reference
from precursor_screen.cli import cli
from precursor_screen.reference import builtin_registry
from precursor_screen.screen import Screener, ScreenParameters
from precursor_screen.types import Flag
from scheduled_substances import ShippedDataError, load_drugs, load_registry
from scheduled_substances import drugs as drugs_module
from scheduled_substances import registry as registry_module
from scheduled_substances.registry import data_folder

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "scheduled_substances" / "SOURCES.md"
REGISTRY = builtin_registry()

ACT_2026 = "Commission Delegated Regulation (EU) 2026/314"
NINE_2026 = {  # id: SMILES, the nine substances of the 2026 act (recital 2)
    "3-chloropropiophenone": "CCC(=O)c1cccc(Cl)c1",
    "2-bromo-3-chloropropiophenone": "CC(Br)C(=O)c1cccc(Cl)c1",
    "3-methylpropiophenone": "CCC(=O)c1cccc(C)c1",
    "2-bromo-3-methylpropiophenone": "Cc1cccc(C(=O)C(C)Br)c1",
    "4-methylpropiophenone": "CCC(=O)c1ccc(C)cc1",
    "2-bromo-4-methylpropiophenone": "Cc1ccc(C(=O)C(C)Br)cc1",
    "4-chloropropiophenone": "CCC(=O)c1ccc(Cl)cc1",
    "2-bromo-4-chloropropiophenone": "CC(Br)C(=O)c1ccc(Cl)cc1",
    "phenyl-2-nitropropene": "CC(=Cc1ccccc1)[N+](=O)[O-]",
}
# what the list of 2025-12-31 made of them, and why (measured; tests/test_listings.py holds it):
# the ketones are one or two steps from the cathinone each is the precursor of (bromination,
# amination), P2NP converts to BMK (Nef reaction)
BEFORE_2026 = {
    "3-chloropropiophenone": ("drug-precursor", "3-CMC"),
    "2-bromo-3-chloropropiophenone": ("drug-precursor", "3-CMC"),
    "3-methylpropiophenone": ("drug-precursor", "3-MMC"),
    "2-bromo-3-methylpropiophenone": ("drug-precursor", "3-MMC"),
    "4-methylpropiophenone": ("drug-precursor", "Mephedrone"),
    "2-bromo-4-methylpropiophenone": ("drug-precursor", "Mephedrone"),
    "4-chloropropiophenone": ("drug-precursor", "4-CMC"),
    "2-bromo-4-chloropropiophenone": ("drug-precursor", "4-CMC"),
    "phenyl-2-nitropropene": ("convertible", "1-Phenyl-2-propanone"),
}
US_ONLY = {"benzyl-cyanide": "N#CCc1ccccc1", "propionic-anhydride": "CCC(=O)OC(=O)CC",
           "ethylamine": "CCN", "benzaldehyde": "O=Cc1ccccc1"}


@functools.cache
def _screener(*jurisdictions: str) -> Screener:
    """One screener per view, built once for the module."""
    return Screener(parameters=ScreenParameters(jurisdictions=jurisdictions))


def run(*args: str) -> "CliRunner.invoke":
    return CliRunner().invoke(cli, list(args))


def _rows(result: "CliRunner.invoke") -> list[dict[str, str]]:
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


# -- the 2026 EU act -------------------------------------------------------------------------------

def test_the_2026_act_is_encoded_with_its_marks() -> None:
    for sid in NINE_2026:
        s = REGISTRY.get(sid)
        eu = [x for x in s.listings if x.jurisdiction == "eu" and x.status == "scheduled"]
        assert len(eu) == 1 and eu[0].act == ACT_2026 and eu[0].list == "1"
        assert eu[0].in_force == dt.date(2026, 5, 18)
        assert dict(eu[0].verified) == {"listing": "verified", "act": "partial", "date": "computed"}
    # the six of COM(2025) 747 keep their proposal as history, ended by the act
    proposed = {s.id for s in REGISTRY.filter(as_of=dt.date(2026, 1, 1), include=("proposed",))}
    assert proposed == set(NINE_2026) - {"4-chloropropiophenone", "2-bromo-4-chloropropiophenone",
                                         "phenyl-2-nitropropene"}


@pytest.mark.parametrize("as_of", [None, "2026-12-06"])
def test_screen_and_check_of_the_nine_today(tmp_path: Path, as_of: str | None) -> None:
    smi = tmp_path / "nine.smi"
    smi.write_text("".join(f"{s} {i}\n" for i, s in NINE_2026.items()), encoding="utf-8")
    args = ["--as-of", as_of] if as_of else []
    rows = _rows(run("screen", str(smi), "--jobs", "1", *args))
    assert [r["id"] for r in rows] == list(NINE_2026)
    for r in rows:
        assert (r["flag"], r["match_id"]) == ("scheduled", r["id"]), r["reason"]
        assert f"EU category 1, {ACT_2026}, from 2026-05-18" in r["reason"]
    day = dt.date.fromisoformat(as_of) if as_of else None
    screener = Screener(as_of=day)
    for sid, smiles in NINE_2026.items():
        v = screener.check(smiles)
        assert v.flag is Flag.SCHEDULED and v.match_id == sid
        assert ACT_2026 in v.reason and "2026-05-18" in v.reason


def test_screen_and_check_of_the_nine_as_of_2025(tmp_path: Path) -> None:
    smi = tmp_path / "nine.smi"
    smi.write_text("".join(f"{s} {i}\n" for i, s in NINE_2026.items()), encoding="utf-8")
    rows = _rows(run("screen", str(smi), "--jobs", "1", "--as-of", "2025-12-31"))
    screener = Screener(as_of=dt.date(2025, 12, 31))
    for r in rows:
        flag, target = BEFORE_2026[r["id"]]
        assert (r["flag"], r["match_name"].split(" (")[0]) == (flag, target), r["reason"]
        assert ACT_2026 not in r["reason"]
        v = screener.check(NINE_2026[r["id"]])
        assert v.flag.value == flag and v.flag is not Flag.SCHEDULED


# -- UN decisions and the sources of every act -----------------------------------------------------

def test_every_un_listing_has_a_verified_decision_or_is_marked() -> None:
    un = [x for s in REGISTRY for x in s.listings if x.jurisdiction == "un"
          and x.status == "scheduled"]
    assert len(un) == 54  # 43 in Table I, 8 in Table II, 3 transfers from II to I
    for x in un:
        if x.mark("act") == "verified":
            assert re.search(r"CND decision \d+/\d+ |original table of the Convention", x.act), x
        else:
            assert x.mark("act") in ("partial", "unverified") and "number" in x.act, x
    numbers = {x.substance: x.act.split()[2] for x in un if x.mark("act") == "verified"
               and x.act.startswith("CND decision")}
    assert numbers == {"apaan": "57/1", "anpp": "60/12", "npp": "60/13", "mapa": "63/1",
                       "4-piperidone": "67/6", "1-boc-4-piperidone": "67/7"}


def test_un_dates_follow_the_notification_or_are_marked_estimated() -> None:
    for s in REGISTRY:
        for x in s.listings:
            if x.jurisdiction != "un" or x.status != "scheduled":
                continue
            if x.mark("date") == "verified":
                assert x.in_force in (dt.date(1990, 11, 11), dt.date(2014, 10, 6),
                                      dt.date(2020, 11, 3), dt.date(2024, 12, 3)), x
            else:  # the documented rule: 31 December of the decision year
                assert x.mark("date") == "estimated" and x.in_force is not None
                assert (x.in_force.month, x.in_force.day) == (12, 31)


def _sources_tables() -> tuple[set[str], dict[tuple[str, str], str]]:
    text = SOURCES.read_text(encoding="utf-8")
    ids = set(re.findall(r"^- \[([A-Z]\d*)\]", text, flags=re.M))
    acts = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 4 and cells[0] in ("eu", "un", "us"):
            acts[(cells[0], cells[1])] = cells[2]
    return ids, acts


@pytest.mark.parametrize("registry", ["precursors", "drugs"])
def test_every_act_and_date_has_a_source_in_SOURCES(registry: str) -> None:
    ids, acts = _sources_tables()
    reg = REGISTRY if registry == "precursors" else load_drugs()
    listings = [x for s in reg for x in s.listings]
    assert listings
    for x in listings:
        assert set(x.sources) <= ids, f"{x.substance}: source {x.sources} not in SOURCES.md"
        dates = acts.get((x.jurisdiction, x.act))
        assert dates is not None, f"{x.substance}: act {x.act!r} not in SOURCES.md's acts"
        date = x.in_force.isoformat() if x.in_force else "unknown"
        assert f"{date} ({x.mark('date')})" in dates, f"{x.substance}: {x.act} {date}"


# -- the US lists, jurisdictions on the commands ---------------------------------------------

def test_screen_with_us_schedules_us_list_i_chemicals_the_eu_does_not_list(tmp_path: Path) -> None:
    smi = tmp_path / "us.smi"
    smi.write_text("".join(f"{s} {i}\n" for i, s in US_ONLY.items()), encoding="utf-8")
    eu = {s.id for s in REGISTRY.filter(jurisdictions=("eu",))}
    assert not set(US_ONLY) & eu
    us = _rows(run("screen", str(smi), "--jobs", "1", "--jurisdiction", "us"))
    for r in us:
        assert (r["flag"], r["match_id"]) == ("scheduled", r["id"]), r["reason"]
        assert "US List I, 21 CFR 1310.02(a)" in r["reason"]
    both = _rows(run("screen", str(smi), "--jobs", "1", "--jurisdiction", "eu,un,us"))
    assert all("not listed by the EU or the UN" in r["reason"] for r in both)
    default = _rows(run("screen", str(smi), "--jobs", "1"))
    # benzyl cyanide is one C-acetylation from APAAN (EU category 1): a building step (issue 16)
    assert [r["flag"] for r in default] == ["convertible", "none", "none", "none"]
    assert default[0]["relation"] == "builds" and default[0]["match_id"] == "apaan"


def test_each_hit_names_the_jurisdictions_that_list_its_target() -> None:
    view = _screener("eu", "un", "us")
    bmk = view.check("CC(=O)Cc1ccccc1")
    assert all(w in bmk.reason for w in ("EU category 1", "UN 1988 Convention Table I",
                                         "US Schedule II"))
    apaan = view.check("CC(=O)C(C#N)c1ccccc1")
    assert "US List I, 82 FR 32457" in apaan.reason
    p2np = view.check("CC(=Cc1ccccc1)[N+](=O)[O-]")
    assert "EU category 1" in p2np.reason and "not listed by the UN or the US" in p2np.reason
    assert ScreenParameters().jurisdictions == ("eu", "un")


def _family_cases() -> list[object]:
    vocab = REGISTRY.vocabulary
    assert vocab is not None
    return [pytest.param(f.id, smi, id=f"{f.id}/{smi}") for f in vocab.families.values()
            for smi in f.must_match]


@pytest.mark.parametrize("family, smiles", _family_cases())
def test_us_family_members_are_scheduled_in_the_us_only(family: str, smiles: str) -> None:
    us = _screener("us").check(smiles)
    listed = [h for h in us.hits if h.relation in ("identical", "salt", "stereoisomer", "family")]
    assert us.flag is Flag.SCHEDULED and listed, us.reason
    owners = {s.id for s in REGISTRY for x in s.listings if family in x.families}
    assert any(h.relation == "family" and h.substance_id in owners for h in us.hits) or \
        listed[0].relation != "family", us.reason


def test_family_clause_examples() -> None:
    us = _screener("eu", "un", "us")
    ester = us.check("CCCCCOC(=O)C1(C)OC1c1ccccc1")  # a pentyl ester: US 'and its esters'
    assert ester.flag is Flag.SCHEDULED and ester.match_id == "bmk-glycidic-acid"
    assert "'and its esters' of BMK glycidic acid" in ester.reason
    assert "not covered by the EU or the UN" in ester.reason
    assert _screener("eu", "un").check("CCCCCOC(=O)C1(C)OC1c1ccccc1").flag is Flag.CONVERTIBLE
    # strawberry aldehyde is no ester of BMK glycidic acid, fentanyl no amide of 4-AP
    assert us.check("CCOC(=O)C1OC1(C)c1ccccc1").flag is Flag.NONE
    fentanyl = us.check("CCC(=O)N(c1ccccc1)C1CCN(CCc2ccccc2)CC1")
    assert not any(h.relation == "family" for h in fentanyl.hits)


def test_every_command_that_screens_or_lists_takes_jurisdiction() -> None:
    for command in ("list", "screen", "check", "report", "declarations", "rescreen",
                    "derivatives", "enumerate", "serve"):
        result = run(command, "--help")
        assert "--jurisdiction" in result.stdout, command
    group = run("group", "check", "--help")
    assert "--jurisdiction" in group.stdout
    assert run("check", "CCO", "--jurisdiction", "mars").exit_code == 2


def test_drugs_use_the_same_model() -> None:
    drugs = load_drugs()
    assert drugs.filter(jurisdictions=("us",)).get("fentanyl").listing() == "US Schedule II"
    assert drugs.filter().get("fentanyl").listing() == "1961 Convention, Schedule I"
    assert "mephedrone" not in {t.id for t in drugs.filter(jurisdictions=("us",))}
    ghb = drugs.filter().get("ghb")
    assert ghb.un_schedule(dt.date(2005, 1, 1)) == "IV" and ghb.un_schedule() == "II"


# -- quantities and mixtures in declarations -------------------------------------------------------

DECLARATIONS = (
    "declaration_id,cas,name,quantity_kg,concentration_pct\n"
    "small,108-10-1,methyl isobutyl ketone,100,\n"
    "large,108-10-1,methyl isobutyl ketone,2000,\n"
    "no-quantity,108-10-1,methyl isobutyl ketone,,\n"
    "iodine-weak,7553-56-2,iodine tincture,5,1.5\n"
    "iodine-strong,7553-56-2,iodine solution,5,7\n"
    "apaan-mixture,4468-48-8,APAAN,1,0.5\n"
    "bmk-eu,103-79-7,BMK,10,\n"
)


def test_declarations_apply_thresholds_naming_the_rule(tmp_path: Path) -> None:
    src = tmp_path / "decl.csv"
    src.write_text(DECLARATIONS, encoding="utf-8")
    out = tmp_path / "out.csv"
    result = run("declarations", str(src), "-o", str(out), "--jurisdiction", "eu,un,us",
                 "--jobs", "1")
    assert result.exit_code == 0, result.stderr
    rows = {r["declaration_id"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert rows["small"]["verdict"] == "below-threshold"
    assert rows["large"]["verdict"] == "scheduled"
    for key, words in (("small", "100 kg declared is below the threshold of 1523 kg"),
                       ("large", "2000 kg declared is at or above the threshold of 1523 kg")):
        assert words in rows[key]["reason"] and "us-mibk-quantity" in rows[key]["reason"]
        assert "21 CFR 1310.04(f)" in rows[key]["reason"]
        assert "threshold:us-mibk-quantity" in rows[key]["rules"].split(";")
    assert rows["no-quantity"]["verdict"] == "scheduled"
    assert "quantity not declared" in rows["no-quantity"]["reason"]
    assert "quantity:unknown" in rows["no-quantity"]["rules"].split(";")
    assert rows["iodine-weak"]["verdict"] == "below-threshold"
    assert rows["iodine-strong"]["verdict"] == "scheduled"
    assert all("us-iodine-mixtures" in rows[k]["reason"] for k in ("iodine-weak", "iodine-strong"))
    assert rows["apaan-mixture"]["verdict"] == "scheduled"
    assert "us-mixtures-any-concentration" in rows["apaan-mixture"]["reason"]
    # no EU threshold is encoded: the quantity changes nothing, and the reason says so
    assert rows["bmk-eu"]["verdict"] == "scheduled"
    assert "no quantity threshold is encoded for EU category 1" in rows["bmk-eu"]["reason"]
    # outside the US view MIBK is no listed substance at all
    plain = tmp_path / "plain.csv"
    assert run("declarations", str(src), "-o", str(plain), "--jobs", "1").exit_code == 0
    plain_rows = {r["declaration_id"]: r for r in csv.DictReader(plain.open(encoding="utf-8"))}
    assert plain_rows["small"]["verdict"] == plain_rows["large"]["verdict"] == "clear"


# -- integrity -----------------------------------------------------------------------------

def _edited_copy(tmp_path: Path) -> Path:
    """The shipped lists with one SMILES changed consistently (InChIKey and formula to match)."""
    folder = tmp_path / "lists"
    shutil.copytree(data_folder(), folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / "substances.tsv"
    text = path.read_text(encoding="utf-8")
    old = "CC(=O)Cc1ccccc1\tQCCDLTOVEPVEJK-UHFFFAOYSA-N\tC9H10O"
    new = "CCC(=O)Cc1ccccc1\tGKDLTXYXODKDEA-UHFFFAOYSA-N\tC10H12O"
    assert text.count(old) == 1
    path.write_text(text.replace(old, new), encoding="utf-8")
    return folder


def test_a_consistent_edit_loads_with_a_warning_naming_both_hashes(tmp_path: Path) -> None:
    shipped = load_registry()
    assert shipped.integrity is not None and shipped.integrity.ok
    edited = load_registry(_edited_copy(tmp_path))
    assert edited.integrity is not None and not edited.integrity.ok
    assert edited.content_hash != shipped.content_hash
    assert edited.content_hash in edited.integrity.problem
    assert shipped.content_hash in edited.integrity.problem


def test_every_command_prints_the_same_hash_and_the_warning(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _edited_copy(tmp_path)
    monkeypatch.setattr(registry_module, "data_folder", lambda: folder)
    monkeypatch.setattr(drugs_module, "data_folder", lambda: folder)
    reference.builtin_registry.cache_clear()
    reference.builtin_drugs.cache_clear()
    try:
        edited = load_registry(folder).content_hash
        shipped = REGISTRY.content_hash
        smi = tmp_path / "in.smi"
        smi.write_text("CC(=O)Cc1ccccc1 bmk\n", encoding="utf-8")
        decl = tmp_path / "d.csv"
        decl.write_text("declaration_id,cas\nd1,4468-48-8\n", encoding="utf-8")
        results = {
            "list": run("list", "--search", "APAAN"),
            "screen": run("screen", str(smi), "--jobs", "1", "-o", str(tmp_path / "s.csv")),
            "check": run("check", "APAAN", "--jurisdiction", "eu,un,us"),
            "declarations": run("declarations", str(decl), "-o", str(tmp_path / "d_out.csv"),
                                "--jobs", "1"),
        }
        for name, result in results.items():
            assert result.exit_code == 0, (name, result.stderr)
            assert f"sha256 {edited} was loaded, {shipped} was shipped" in result.stderr, name
            printed = set(re.findall(r"sha256 ([0-9a-f]{64})", result.stdout + result.stderr))
            assert printed == {edited}, name  # one hash, the loaded list's, everywhere
        screened = _rows_file(tmp_path / "s.csv")
        assert {r["reference_sha256"] for r in screened} == {edited}
        meta = (tmp_path / "s.csv.meta.json").read_text(encoding="utf-8")
        assert edited in meta and shipped in meta and '"warnings"' in meta
    finally:
        reference.builtin_registry.cache_clear()
        reference.builtin_drugs.cache_clear()


def _rows_file(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


def test_overlays_are_hashed_separately(tmp_path: Path) -> None:
    extra = tmp_path / "national.csv"
    extra.write_text("name,smiles\nnational thing,CCCCCCCCO\n", encoding="utf-8")
    plain = reference.load_reference()
    with_extra = reference.load_reference(extra_references=[extra])
    assert with_extra.content_hash == plain.content_hash
    (name, sha, size), = with_extra.overlays
    assert name == "national.csv" and size == 1 and sha != plain.content_hash
    assert plain.filter(as_of=dt.date(2012, 12, 31)).content_hash == plain.content_hash


# -- a bad row fails with file, line and reason --------------------------------------------

BAD_EDITS = [
    ("substances.tsv", "CC(=O)Cc1ccccc1\tQCCDLTOVEPVEJK", "CC(=O)Cc1ccccc1(\tQCCDLTOVEPVEJK",
     r"substances.tsv:\d+: SMILES .*unparsable"),
    ("substances.tsv", "CC(=O)Cc1ccccc1\tQCCDLTOVEPVEJK", "CCC(=O)Cc1ccccc1\tQCCDLTOVEPVEJK",
     r"substances.tsv:\d+: InChIKey .* does not match"),
    ("listings.tsv", "bmk\teu\t1\t", "bmk\txx\t1\t",
     r"listings.tsv:\d+: unknown jurisdiction 'xx'"),
    ("listings.tsv", "bmk\teu\t1\t", "bmk\teu\t9\t",
     r"listings.tsv:\d+: unknown list or category '9' of eu"),
    ("listings.tsv", "\t2005-08-18\t\t", "\t2005-18-08\t\t",
     r"listings.tsv:\d+: date '2005-18-08' is not YYYY-MM-DD"),
    ("listings.tsv", "\t2026-05-18\t\t", "\tsoon\t\t", r"listings.tsv:\d+: date 'soon'"),
    ("listings.tsv", "listing=verified;act=partial;date=computed",
     "listing=verified;act=partial", r"listings.tsv:\d+: verified must mark date"),
    ("listings.tsv", "us-bmk-glycidic-acid-esters", "us-bmk-esters",
     r"listings.tsv:\d+: unknown family 'us-bmk-esters'"),
    ("listings.tsv", "us-mibk-quantity", "us-mibk",
     r"listings.tsv:\d+: unknown threshold rule 'us-mibk'"),
    ("lists.tsv", "us\tList II\tprecursors", "us\tList II\tchemicals",
     r"lists.tsv:\d+: registry 'chemicals'"),
    ("thresholds.tsv", "\t1523\tkg\t", "\tmuch\tkg\t", r"thresholds.tsv:\d+: quantity 'much'"),
    ("families.toml", '"COC(=O)c1ccccc1N", ', '"COC(=O)c1ccccc1", ',
     r"families.toml \[us-anthranilic-acid-esters\]: COC\(=O\)c1ccccc1 must match"),
]


@pytest.mark.parametrize("fname, old, new, message", BAD_EDITS, ids=[m for _, _, _, m in BAD_EDITS])
def test_a_bad_row_fails_naming_file_line_and_reason(tmp_path: Path, fname: str, old: str,
                                                     new: str, message: str) -> None:
    folder = tmp_path / "lists"
    shutil.copytree(data_folder(), folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / fname
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ShippedDataError, match=message):
        load_registry(folder)
