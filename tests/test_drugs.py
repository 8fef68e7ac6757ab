"""Controlled-drug targets: the drug registry, the generic drug families, the drug-precursor stage
and its evaluation sets (pre-precursors of drugs; extra legitimate chemicals)."""

from __future__ import annotations

import csv
import re
import datetime as dt
import pickle
from functools import lru_cache
from pathlib import Path

import pytest
from rdkit import Chem, RDLogger

from precursor_screen.chem.standardize import standardize_smiles
from precursor_screen.errors import ShippedDataError, UnknownSubstanceError
from precursor_screen.reference import builtin_drugs
from precursor_screen.rules.drug_targets import (
    DRUG_LIST,
    GROUP_LIST,
    SCORE_GROUP,
    SCORE_LISTED,
    DrugTargets,
    load_drug_groups,
)
from precursor_screen.rules.groups import STATUSES
from precursor_screen.rules.synthesis import load_synthesis_rules
import shutil

from scheduled_substances.drugs import DRUG_LISTINGS_FILE, DRUGS_FILE, load_drugs
from scheduled_substances.registry import data_folder

RDLogger.DisableLog("rdApp.*")

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "evaluation"
REGISTRY = builtin_drugs().filter()  # the UN and EU controls, as the screen sees them
GROUPS = load_drug_groups()
DRUGS = DrugTargets()


# -- the registry ------------------------------------------------------------------------------

def test_registry_loads_and_covers_the_issue() -> None:
    ids = {t.id for t in REGISTRY}
    for wanted in ("amphetamine", "methamphetamine", "mda", "mdma", "pma", "pmma", "methcathinone",
                   "mephedrone", "methylone", "mdpv", "alpha-pvp", "3-cmc", "4-cmc", "fentanyl",
                   "carfentanil", "ghb", "lsd", "cocaine", "heroin", "morphine", "methaqualone"):
        assert wanted in ids
    assert len(REGISTRY) == len(ids) >= 50


@pytest.mark.parametrize("target", REGISTRY.targets, ids=lambda t: t.id)
def test_every_row_is_consistent(target: object) -> None:
    t = target
    assert t.parent is not None and t.listings  # type: ignore[attr-defined]
    assert t.controlled_from is not None  # type: ignore[attr-defined]
    mol = Chem.MolFromSmiles(t.smiles)  # type: ignore[attr-defined]
    assert Chem.MolToInchiKey(mol) == t.inchikey  # type: ignore[attr-defined]
    assert t.listing() != "not yet controlled"  # type: ignore[attr-defined]
    assert t.convention in ("", "1961", "1971")  # type: ignore[attr-defined]
    assert t.notes  # type: ignore[attr-defined]


def test_list_name_is_the_stage_s() -> None:
    assert {t.list_name for t in REGISTRY} == {DRUG_LIST}


def test_listing_and_as_of() -> None:
    meph = REGISTRY.get("mephedrone")
    assert meph.listing() == "1971 Convention, Schedule II; EU Council Decision 2010/759/EU"
    assert meph.listing(dt.date(2009, 1, 1)) == "not yet controlled"
    assert REGISTRY.get("ghb").un_schedule(dt.date(2005, 1, 1)) == "IV"
    assert REGISTRY.get("heroin").listing() == "1961 Convention, Schedules I and IV"
    old = REGISTRY.filter(as_of=dt.date(2009, 12, 31))
    assert "mephedrone" not in {t.id for t in old} and "amphetamine" in {t.id for t in old}
    assert all(t.controlled_on(dt.date(2009, 12, 31)) for t in old)


def test_find_and_identify() -> None:
    assert REGISTRY.find("4-MMC").id == "mephedrone"
    assert REGISTRY.find("1189805-46-6").id == "mephedrone"
    with pytest.raises(UnknownSubstanceError, match="list --drugs"):
        REGISTRY.find("no such drug")
    # salts and stereoisomers are the drug
    assert [t.id for t in REGISTRY.identify(standardize_smiles("C[C@H](NC)Cc1ccccc1.Cl"))] == [
        "methamphetamine"]


DRUG = "x\tX\t\t\tCNC(C)C(=O)c1ccc(C)cc1\tYELGFTGWJGBAQU-UHFFFAOYSA-N\t\tnote"
CONTROL = ("x\tun\t1971 II\tscheduled\tCND decision\t2015-12-31\t\t\t\t\t\t"
           "listing=unverified;act=unverified;date=estimated\tM\t")


def _folder(tmp_path: Path, drugs: str, listings: str) -> Path:
    folder = tmp_path / "lists"
    shutil.copytree(data_folder(), folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    header = lambda name: next(ln for ln in (data_folder() / name).read_text(  # noqa: E731
        encoding="utf-8").splitlines() if ln.startswith(("id\t", "substance\t")))
    (folder / DRUGS_FILE).write_text(f"{header(DRUGS_FILE)}\n# a comment\n{drugs}\n",
                                     encoding="utf-8")
    (folder / DRUG_LISTINGS_FILE).write_text(f"{header(DRUG_LISTINGS_FILE)}\n{listings}\n",
                                             encoding="utf-8")
    return folder


@pytest.mark.parametrize("drug, control, message", [
    (DRUG.replace("YELGFTGWJGBAQU", "AAAAAAAAAAAAAA"), CONTROL, f"{DRUGS_FILE}:3: InChIKey"),
    (DRUG, CONTROL.replace("2015-12-31", "2015-31-12"), f"{DRUG_LISTINGS_FILE}:2: date"),
    (DRUG, CONTROL.replace("1971 II", "1971 V"),
     f"{DRUG_LISTINGS_FILE}:2: unknown list or category '1971 V' of un"),
    (DRUG, CONTROL.replace("\tun\t", "\tmars\t"),
     f"{DRUG_LISTINGS_FILE}:2: unknown jurisdiction 'mars'"),
    (DRUG.replace("x\tX\t\t", "x\tX\t\t103-79-8"), CONTROL, f"{DRUGS_FILE}:3: CAS"),
    (DRUG.replace("CNC(C)C(=O)c1ccc(C)cc1", "C1CC"), CONTROL, f"{DRUGS_FILE}:3: SMILES"),
    (DRUG, CONTROL.replace("x\t", "y\t", 1), f"{DRUG_LISTINGS_FILE}:2: unknown substance 'y'"),
    (DRUG, "", f"{DRUGS_FILE}:3: x has no control"),
    (DRUG + "\n" + DRUG, CONTROL, "already used"),
    (DRUG + "\n" + DRUG.replace("x\tX", "y\tY"), CONTROL, "same structure"),
])
def test_bad_rows_fail_naming_file_and_line(tmp_path: Path, drug: str, control: str,
                                            message: str) -> None:
    with pytest.raises(ShippedDataError, match=re.escape(message)):
        load_drugs(_folder(tmp_path, drug, control))


def test_good_row_loads(tmp_path: Path) -> None:
    reg = load_drugs(_folder(tmp_path, DRUG, CONTROL))
    assert reg.get("x").un_schedule() == "II" and reg.get("x").listing() == (
        "1971 Convention, Schedule II")
    assert reg.filter(as_of=dt.date(2015, 12, 30)).targets == ()


# -- the generic drug families -----------------------------------------------------------------

def _group_cases() -> list[object]:
    return [pytest.param(g.id, ex.smiles, expected, id=f"{g.id}/{ex.name[:50]}")
            for g in GROUPS for expected, exs in ((True, g.must_match), (False, g.must_not_match))
            for ex in exs]


@pytest.mark.parametrize("group_id, smiles, expected", _group_cases())
def test_drug_group_examples(group_id: str, smiles: str, expected: bool) -> None:
    assert GROUPS.is_member(standardize_smiles(smiles), group_id) is expected


@pytest.mark.parametrize("group_id", GROUPS.ids)
def test_drug_groups_are_complete_and_their_parents_are_drugs(group_id: str) -> None:
    g = GROUPS[group_id]
    assert len(g.must_match) >= 4 and len(g.must_not_match) >= 4
    assert g.status in STATUSES and g.max_heavy_atoms is not None and g.rationale
    assert set(g.parents) <= {t.id for t in REGISTRY}
    # every listed parent is itself a member: the definition covers what it generalises
    for pid in g.parents:
        assert GROUPS.is_member(REGISTRY.get(pid).parent, g), (group_id, pid)


def test_drug_groups_are_not_precursor_groups() -> None:
    from precursor_screen.rules.groups import load_groups

    assert not set(GROUPS.ids) & set(load_groups().ids)


# -- the stage ---------------------------------------------------------------------------------

ROUTES = [
    pytest.param("CC(Br)C(=O)c1ccc(C)cc1", "mephedrone", 1, ["methylamine"], id="2-bromo-4-MPP"),
    pytest.param("CCC(=O)c1ccc(C)cc1", "mephedrone", 2, ["a brominating agent", "methylamine"],
                 id="4-MPP"),
    pytest.param("O=C1CCCO1", "ghb", 1, ["water or an alkali hydroxide (hydrolysis)"], id="GBL"),
    pytest.param("OCCCCO", "ghb", 1, ["an oxidising agent"], id="1,4-BD"),
    pytest.param("CCC(=O)N(c1ccccc1)C1CCNCC1", "fentanyl", 1,
                 ["a 2-phenylethyl halide (or phenylacetaldehyde, by reductive amination)"],
                 id="norfentanyl"),
    pytest.param("c1ccc(CCN2CCC(Nc3ccccc3)CC2)cc1", "fentanyl", 1,
                 ["propionyl chloride or propionic anhydride"], id="ANPP"),
    pytest.param("CC(=O)Nc1ccccc1C(=O)O", "methaqualone", 1, ["o-toluidine"], id="N-acetylanthranilic"),
    pytest.param("CC(=Cc1ccccc1)[N+](=O)[O-]", "amphetamine", 1, [""], id="P2NP"),
    pytest.param("CC(=O)Cc1ccccc1", "methamphetamine", 1,
                 ["methylamine (or N-methylformamide, Leuckart)"], id="BMK"),
    pytest.param("CCCC(Br)C(=O)c1ccccc1", "alpha-pvp", 1, ["pyrrolidine"], id="2-bromovalerophenone"),
]


@pytest.mark.parametrize("smiles, drug, depth, reagents", ROUTES)
def test_routes_name_drug_control_and_reagents(smiles: str, drug: str, depth: int,
                                              reagents: list[str]) -> None:
    hits = {h.substance_id: h for h in DRUGS.routes(standardize_smiles(smiles))}
    hit = hits[drug]
    target = REGISTRY.get(drug)
    assert hit.relation == "drug" and hit.list_name == DRUG_LIST
    assert hit.score == SCORE_LISTED[depth - 1]
    assert hit.route is not None and hit.route.depth == depth
    assert [s.reagent for s in hit.route.steps] == reagents
    assert target.name in hit.reason and target.listing() in hit.reason
    for reagent in filter(None, reagents):
        assert f"+ {reagent} (" in hit.reason
    assert hit.reason.startswith(("one step to", "two steps to"))


def test_group_member_products_count() -> None:
    # butyrophenone: bromination and methylamine give buphedrone, a UK-generic cathinone
    hits = DRUGS.routes(standardize_smiles("CCCC(=O)c1ccccc1"))
    assert hits and hits[0].list_name == GROUP_LIST
    assert hits[0].group_id == "uk-generic-cathinones" and hits[0].score == SCORE_GROUP[1]
    assert "generic family" in hits[0].reason


@pytest.mark.parametrize("smiles", [
    "CC(=O)c1ccccc1",                   # acetophenone
    "CC(=O)CCc1ccccc1",                 # benzylacetone
    "CCCCCCC1CCC(=O)O1",                # gamma-decalactone
    "OCCCCCO",                          # 1,5-pentanediol
    "CCC(=O)c1ccc(O)cc1",               # paroxypropione
    "O=C(CCc1ccccc1)c1ccccc1",          # dihydrochalcone
    "O=C(CCCN1CCC(O)(c2ccc(Cl)cc2)CC1)c1ccc(F)cc1",  # haloperidol
    "COc1ccc(CCN)cc1O",                 # a hydroxy-methoxy phenethylamine... not reached by a route
])
def test_ordinary_chemicals_reach_no_drug(smiles: str) -> None:
    assert [h for h in DRUGS.routes(standardize_smiles(smiles)) if h.score > 0] == []


def test_small_drug_cut_from_a_large_molecule_is_not_flagged() -> None:
    # an amide of GHB's precursor alcohol with a large acid: the drug keeps little of the candidate
    big = "OCCCCOC(=O)c1ccc(-c2ccc(-c3ccc(C(=O)NCCCCCCCC)cc3)cc2)cc1"
    hits = DRUGS.routes(standardize_smiles(big))
    ghb = [h for h in hits if h.substance_id == "ghb"]
    assert ghb and ghb[0].score == 0.0 and "not flagged" in ghb[0].reason


def test_identify() -> None:
    hits = DRUGS.identify(standardize_smiles("CNC(C)C(=O)c1ccc(C)cc1.Cl"))
    assert [h.substance_id for h in hits] == ["mephedrone"]
    assert "itself a controlled drug" in hits[0].reason
    assert DRUGS.identify(standardize_smiles("CCC(=O)c1ccc(C)cc1")) == []


def test_as_of_hides_later_drugs() -> None:
    old = DrugTargets(as_of=dt.date(2009, 12, 31))
    ids = {h.substance_id for h in old.routes(standardize_smiles("CC(Br)C(=O)c1ccc(C)cc1"))}
    assert "mephedrone" not in ids
    # still a UK-generic cathinone product (the groups do not follow the as-of date)
    assert "uk-generic-cathinones" in ids
    assert old.metadata()["drugs_as_of"] == "2009-12-31"


def test_pickles() -> None:
    back = pickle.loads(pickle.dumps(DRUGS))
    std = standardize_smiles("CCC(=O)c1ccc(C)cc1")
    assert back.routes(std) == DRUGS.routes(std)
    assert back.metadata() == DRUGS.metadata()


def test_the_search_leaves_transesterification_out() -> None:
    ids = {r.id for r in DRUGS.rules.rules}
    assert "transesterification" not in ids and "ester-hydrolysis" in ids


def test_depth_one_misses_two_step_routes() -> None:
    assert DRUGS.routes(standardize_smiles("CCC(=O)c1ccc(C)cc1"), depth=1) == []


# -- evaluation sets ---------------------------------------------------------------------------

DESIGNER_COLUMNS = ["id", "name", "smiles", "inchikey", "parent_id", "relation", "steps",
                    "scheduled_from", "source", "confidence", "notes"]
LEGIT_COLUMNS = ["id", "name", "smiles", "inchikey", "category", "source", "notes"]


@lru_cache(maxsize=None)
def _read(name: str) -> tuple[tuple[str, ...], tuple[dict[str, str], ...]]:
    with (EVAL / name).open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        rows = tuple(reader)
        return tuple(reader.fieldnames or ()), rows


def _block(smiles: str) -> str:
    mol = Chem.MolFromSmiles(smiles)
    big = max(Chem.GetMolFrags(mol, asMols=True), key=lambda m: m.GetNumHeavyAtoms())
    return Chem.MolToInchiKey(big)[:14]


@pytest.mark.parametrize("name, columns", [("pre_precursors.tsv", DESIGNER_COLUMNS),
                                           ("legitimate_extra.tsv", LEGIT_COLUMNS)])
def test_eval_file_integrity(name: str, columns: list[str]) -> None:
    fields, rows = _read(name)
    assert list(fields) == columns
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    for r in rows:
        assert None not in r.values() and None not in r
        mol = Chem.MolFromSmiles(r["smiles"])
        assert mol is not None and Chem.MolToInchiKey(mol) == r["inchikey"], r["id"]


def test_pre_precursor_vocabulary() -> None:
    drug_ids = {t.id for t in REGISTRY}
    for r in _read("pre_precursors.tsv")[1]:
        assert r["parent_id"] in drug_ids, r["id"]
        assert r["relation"] in {"pre-precursor", "masked"} and r["steps"] in {"1", "2"}
        assert r["confidence"] in {"high", "medium"} and r["source"]


def test_eval_files_share_no_structure() -> None:
    names = ["designer_precursors.tsv", "legitimate.tsv", "pre_precursors.tsv",
             "legitimate_extra.tsv"]
    seen: dict[str, tuple[str, str]] = {}
    for name in names:
        for r in _read(name)[1]:
            block = _block(r["smiles"])
            other = seen.setdefault(block, (name, r["id"]))
            assert other[0] == name, (r["id"], other)  # salts within one file are fine


def test_legitimate_extra_holds_no_controlled_drug() -> None:
    for r in _read("legitimate_extra.tsv")[1]:
        std = standardize_smiles(r["smiles"])
        assert not REGISTRY.identify(std) and not GROUPS.match(std), r["id"]


def test_pre_precursors_are_held_out_from_the_rule_and_group_examples() -> None:
    rules, _ = load_synthesis_rules()
    examples = {standardize_smiles(s).key for r in rules for pair in r.examples for s in pair}
    examples |= {standardize_smiles(e.smiles).key for g in GROUPS
                 for e in (*g.must_match, *g.must_not_match)}
    for r in _read("pre_precursors.tsv")[1]:
        assert standardize_smiles(r["smiles"]).key not in examples, r["id"]


def test_stage_recall_and_false_alarms_on_the_new_sets() -> None:
    pre = _read("pre_precursors.tsv")[1]
    hit = sum(any(h.score >= 0.45 for h in DRUGS.routes(standardize_smiles(r["smiles"])))
              for r in pre)
    assert hit / len(pre) >= 0.8
    extra = _read("legitimate_extra.tsv")[1]
    alarms = [r["id"] for r in extra
              if any(h.score >= 0.45 for h in DRUGS.routes(standardize_smiles(r["smiles"])))]
    assert len(alarms) <= 2, alarms
