"""`enumerate`: masked forms of a listed substance, proven by the forward rules, marked covered."""

from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner

from precursor_screen.chem.standardize import match_key, standardize_smiles
from precursor_screen.cli import cli
from precursor_screen.reference import builtin_registry
from precursor_screen.rules.masks import load_rules
from precursor_screen.rules.groups import load_groups
from precursor_screen.survey.masks import enumerate_masked
from precursor_screen.survey.sets import load_designer_precursors

BMK_DEPTH_1 = [  # the list: (SMILES, what the list says)
    pytest.param("CC(=O)C(C#N)c1ccccc1", "listed", id="APAAN"),
    pytest.param("CC(=O)C(C(N)=O)c1ccccc1", "listed", id="APAA"),
    pytest.param("COC(=O)C(C(C)=O)c1ccccc1", "listed", id="MAPA"),
    pytest.param("COC(=O)C1(C)OC1c1ccccc1", "listed", id="BMK methyl glycidate"),
    pytest.param("CCOC(=O)C1(C)OC1c1ccccc1", "listed", id="BMK ethyl glycidate"),
    pytest.param("CC1(C(=O)O)OC1c1ccccc1", "listed", id="BMK glycidic acid"),
    pytest.param("CC(O)(Cc1ccccc1)S(=O)(=O)O", "draft group", id="bisulfite adduct"),
    pytest.param("CC(=Cc1ccccc1)[N+](=O)[O-]", "listed", id="P2NP"),  # EU category 1 since 2026
]


@pytest.fixture(scope="module")
def bmk_forms():  # noqa: ANN201
    reg = builtin_registry().filter()
    forms, stats = enumerate_masked(reg.find("BMK"), rules=load_rules(),
                                    groups=load_groups(), reference=reg, depth=1,
                                    known=load_designer_precursors())
    return {f.key: f for f in forms}, stats


@pytest.mark.parametrize("smiles, covered", BMK_DEPTH_1)
def test_bmk_depth_1_includes_and_marks(bmk_forms, smiles: str, covered: str) -> None:  # noqa: ANN001
    forms, _ = bmk_forms
    form = forms[standardize_smiles(smiles).key]
    assert form.masks == 1
    assert form.covered == covered
    assert form.known   # every one of them is a documented designer precursor


def test_every_form_is_proven_valid_and_distinct(bmk_forms) -> None:  # noqa: ANN001
    forms, stats = bmk_forms
    assert stats["proven"] == len(forms) and stats["generated"] >= len(forms)
    bmk = standardize_smiles("CC(=O)Cc1ccccc1").key
    from rdkit import Chem

    for key, f in forms.items():
        assert standardize_smiles(f.smiles).key == key != bmk
        assert match_key(Chem.MolFromSmiles(f.unmask.product)) == bmk
        assert f.made_by[0].rule_id


def test_depth_2_extends_depth_1(bmk_forms) -> None:  # noqa: ANN001
    reg = builtin_registry().filter()
    deeper, _ = enumerate_masked(reg.find("BMK"), rules=load_rules(),
                                 groups=load_groups(), reference=reg, depth=2)
    keys = {f.key for f in deeper}
    assert set(bmk_forms[0]) <= keys and len(keys) > len(bmk_forms[0])
    assert {f.masks for f in deeper} == {1, 2}


def test_as_of_changes_what_is_covered() -> None:
    reg = builtin_registry().filter(as_of=__import__("datetime").date(2012, 12, 31))
    forms, _ = enumerate_masked(builtin_registry().find("BMK"), rules=load_rules(),
                                groups=load_groups(), reference=reg, depth=1)
    by_key = {f.key: f for f in forms}
    apaan = by_key[standardize_smiles("CC(=O)C(C#N)c1ccccc1").key]
    assert not apaan.listed   # APAAN was listed in the EU from 30 December 2013


def test_cli() -> None:
    result = CliRunner().invoke(cli, ["enumerate", "P-2-P", "--depth", "1"])
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["substance_id"] for r in rows} == {"bmk"}
    apaan = next(r for r in rows if r["smiles"] == "CC(=O)C(C#N)c1ccccc1")
    assert apaan["covered"] == "listed" and apaan["unmask_steps"] == "2"
    assert "masked forms" in result.stderr
    result = CliRunner().invoke(cli, ["enumerate", "BMK", "--depth", "9"])
    assert result.exit_code == 2


# ---------------------------------------------------------------------- controlled drugs


_DRUG_FORMS: dict[tuple[str, int], list] = {}


@pytest.fixture(scope="module")
def screener():  # noqa: ANN201
    from precursor_screen.screen import Screener

    return Screener()


def drug_forms(screener, name: str, depth: int) -> dict:  # noqa: ANN001
    """Pre-precursors of a drug, by key (cached per module: the searches take a while)."""
    from precursor_screen.survey.masks import enumerate_drug_precursors

    if (name, depth) not in _DRUG_FORMS:
        forms, stats = enumerate_drug_precursors(
            screener.drugs.registry.find(name), targets=screener.drugs, unmask=screener.rules,
            groups=load_groups(), reference=screener.reference, depth=depth,
            known=load_designer_precursors())
        assert stats["proven"] == len(forms) and stats["generated"] >= len(forms)
        _DRUG_FORMS[name, depth] = forms
    return {f.key: f for f in _DRUG_FORMS[name, depth]}


def _key(smiles: str) -> str:
    return standardize_smiles(smiles).key


def test_reverse_synthesis_rules_give_back_the_substrates() -> None:
    from precursor_screen.rules.synthesis import (
        load_reverse_templates,
        load_synthesis_rules,
        reverse_synthesis_rule_set,
    )

    rev = reverse_synthesis_rule_set()
    written = load_reverse_templates()
    rules, _ = load_synthesis_rules()
    assert len(rev.rules) == len(rules) and all(r.reverse for r in rev.rules)
    for rule in rules:
        pairs = (written[rule.id][1] if rule.id in written
                 else tuple((product, substrate) for substrate, product in rule.examples))
        assert pairs, rule.id
        for product, substrate in pairs:
            out = {p.key for p in rev.apply_rule(standardize_smiles(product), rule.id,
                                                 reverse=True)}
            if rule.id.startswith("amination-"):   # '[Br,Cl]' comes back as the bromide
                substrate = substrate.replace("(Cl)", "(Br)")
            assert _key(substrate) in out, (rule.id, product)


def test_reverse_takes_off_the_reagent_only() -> None:
    from precursor_screen.rules.synthesis import reverse_synthesis_rule_set

    rev = reverse_synthesis_rule_set()
    fentanyl = standardize_smiles("CCC(=O)N(c1ccccc1)C1CCN(CCc2ccccc2)CC1")
    # the aniline step does not run back from fentanyl (its nitrogen carries the propionyl group)
    assert rev.apply_rule(fentanyl, "reductive-amination-aniline", reverse=True) == []
    # methylamine comes off mephedrone, not off an N,N-dimethyl cathinone
    dimethyl = standardize_smiles("CN(C)C(C)C(=O)c1ccc(C)cc1")
    assert rev.apply_rule(dimethyl, "amination-methylamine", reverse=True) == []


def test_mephedrone(screener) -> None:  # noqa: ANN001
    one = drug_forms(screener, "mephedrone", 1)
    bromo = one[_key("CC(Br)C(=O)c1ccc(C)cc1")]   # 2-bromo-4'-methylpropiophenone
    assert bromo.masks == 1 and bromo.registry == "controlled drugs"
    assert [(s.rule_id, s.reagent) for s in bromo.made_by] == [("amination-methylamine",
                                                                 "methylamine")]
    assert [s.rule_id for s in bromo.unmask.steps] == ["amination-methylamine"]
    ketone = _key("CCC(=O)c1ccc(C)cc1")               # 4'-methylpropiophenone
    assert ketone not in one
    two = drug_forms(screener, "4-MMC", 2)             # a synonym
    assert set(one) < set(two)
    form = two[ketone]
    assert form.masks == 2
    assert [s.rule_id for s in form.made_by] == ["amination-methylamine", "alpha-bromination"]
    assert [(s.rule_id, s.reagent) for s in form.unmask.steps] == [
        ("alpha-bromination", "a brominating agent"), ("amination-methylamine", "methylamine")]


def test_methamphetamine_and_amphetamine(screener) -> None:  # noqa: ANN001
    forms = drug_forms(screener, "methamphetamine", 2)
    bmk = forms[_key("CC(=O)Cc1ccccc1")]
    assert bmk.masks == 1 and bmk.covered == "listed"
    assert "bmk" in {i for i, _ in bmk.listed}
    apaan = forms[_key("CC(=O)C(C#N)c1ccccc1")]
    assert apaan.masks == 2 and apaan.covered == "listed" and apaan.known
    assert [s.rule_id for s in apaan.unmask.steps] == [
        "nitrile-to-acid", "beta-keto-acid-decarboxylation", "reductive-amination-methylamine"]
    assert _key("CC(=Cc1ccccc1)[N+](=O)[O-]") in forms   # P2NP, through BMK
    amph = drug_forms(screener, "amphetamine", 1)
    p2np = amph[_key("CC(=Cc1ccccc1)[N+](=O)[O-]")]     # P2NP reduces to amphetamine directly
    assert p2np.masks == 1 and p2np.unmask.depth == 1


def test_ghb(screener) -> None:  # noqa: ANN001
    forms = drug_forms(screener, "GHB", 1)
    gbl, bdo = forms[_key("O=C1CCCO1")], forms[_key("OCCCCO")]
    assert [s.rule_id for s in gbl.made_by] == ["lactone-hydrolysis"]
    assert [s.rule_id for s in bdo.made_by] == ["alcohol-oxidation-to-acid"]
    assert gbl.masks == bdo.masks == 1


def test_fentanyl(screener) -> None:  # noqa: ANN001
    one = drug_forms(screener, "fentanyl", 1)
    anpp, norfentanyl = (one[_key("c1ccc(CCN2CCC(Nc3ccccc3)CC2)cc1")],
                         one[_key("CCC(=O)N(c1ccccc1)C1CCNCC1")])
    assert anpp.covered == norfentanyl.covered == "listed"
    assert _key("O=C1CCN(CCc2ccccc2)CC1") not in one     # NPP is two steps back, not one
    two = drug_forms(screener, "fentanyl", 2)
    for smiles in ("O=C1CCN(CCc2ccccc2)CC1", "c1ccc(NC2CCNCC2)cc1"):   # NPP, 4-AP
        assert two[_key(smiles)].masks == 2 and two[_key(smiles)].covered == "listed"
    boc = two[_key("CCC(=O)N(c1ccccc1)C1CCN(C(=O)OC(C)(C)C)CC1")]   # Boc-norfentanyl
    assert boc.covered == "draft group"
    acetyl = two[_key("CC(=O)N(c1ccccc1)C1CCN(CCc2ccccc2)CC1")]
    assert acetyl.covered == "controlled drug"     # acetylfentanyl, through ANPP


@pytest.mark.parametrize("name", ["mephedrone", "methamphetamine", "GHB", "fentanyl",
                                  "alpha-PVP", "methaqualone"])
def test_every_drug_form_is_proven_and_flagged(screener, name: str) -> None:  # noqa: ANN001
    import re

    from precursor_screen.survey.masks import masked_row

    forms = drug_forms(screener, name, 2)
    assert forms
    drug = screener.drugs.registry.find(name)
    for key, f in forms.items():
        assert _key(f.smiles) == key != drug.parent.key
        assert _key(f.unmask.product) == drug.parent.key
        hits = screener.drugs.routes(standardize_smiles(f.smiles), depth=f.unmask.depth,
                                     max_products=2000)
        assert any(h.substance_id == drug.id and h.score > 0 for h in hits), f.smiles
        verdict = screener.check(f.smiles)
        assert verdict.flag is not None and verdict.flag.value != "none", f.smiles
        row = masked_row(f)
        text = row["made_by"] + row["unmask_route"]
        assert not re.search(r"\d\s*(°|mL\b|mg\b|g\b|mol\b|%|h\b|min\b)", text), text


def test_cli_drug_and_registry_choice(tmp_path) -> None:  # noqa: ANN001
    result = CliRunner().invoke(cli, ["enumerate", "mephedrone", "--depth", "1"])
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["registry"] for r in rows} == {"controlled drugs"}
    assert {r["substance_id"] for r in rows} == {"mephedrone"}
    bromo = next(r for r in rows if r["smiles"] == "Cc1ccc(C(=O)C(C)Br)cc1")
    assert "reagent: methylamine" in bromo["made_by"]
    assert "(+ methylamine)" in bromo["unmask_route"]
    assert bromo["screen_flag"] == "scheduled"  # EU category 1 since 2026, a drug precursor before
    assert all(r["screen_flag"] not in ("", "none") for r in rows)
    assert "(controlled drugs)" in result.stderr
    result = CliRunner().invoke(cli, ["enumerate", "mephedrone", "--registry", "precursors"])
    assert result.exit_code == 1 and "no listed substance" in result.stderr
    result = CliRunner().invoke(cli, ["enumerate", "no such thing"])
    assert result.exit_code == 1 and "neither" in result.stderr
    # a national list naming GHB itself: the name is on both lists
    ref = tmp_path / "national.smi"
    ref.write_text("OCCCC(=O)O GHB\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["enumerate", "GHB", "--extra-reference", str(ref)])
    assert result.exit_code == 0, result.stderr
    assert "names the listed substance" in result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["registry"] for r in rows} == {"precursors"}
    result = CliRunner().invoke(cli, ["enumerate", "GHB", "--extra-reference", str(ref),
                                      "--registry", "drugs"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["registry"] for r in rows} == {"controlled drugs"}
    assert "OCCCCO" in {r["smiles"] for r in rows}
