"""Masks and conversion rules: every shipped rule on its own test molecules, and the
designer-precursor routes.

The rule tables are data (``precursor_screen/rules/data/masks.toml`` and ``conversions.toml``);
each mask and rule carries its examples and negatives, and one parametrized test walks them all,
so a rule without test molecules, or one that stops doing what its examples say, fails here.
``tests/test_masks.py`` checks what is particular to masks (sites, loading, depth).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from rdkit import Chem

from precursor_screen.chem.standardize import standardize_smiles
from precursor_screen.errors import ShippedDataError
from precursor_screen.rules.conversions import (
    MIN_PRODUCT_HEAVY_ATOMS,
    ConversionRule,
    RuleSet,
    load_conversion_rules,
)
from precursor_screen.rules.masks import REMOVALS, load_rules
from precursor_screen.types import Route, Step

RULES = load_rules()


def key(smiles: str) -> str:
    return standardize_smiles(smiles).key


def mol(smiles: str) -> Chem.Mol:
    m = Chem.MolFromSmiles(smiles)
    assert m is not None, smiles
    return m


def products(smiles: str, depth: int = 2, **kwargs: int) -> dict[str, Route]:
    """Product key -> route."""
    return {key(r.product): r for r in RULES.apply(mol(smiles), depth=depth, **kwargs)}


# -- every rule on its own examples -----------------------------------------------------------

EXAMPLES = [pytest.param(rule.id, substrate, expected, id=f"{rule.id}:{substrate}")
            for rule in RULES.rules for substrate, expected in rule.examples]
NEGATIVES = [pytest.param(rule.id, smiles, id=f"{rule.id}:not:{smiles}")
             for rule in RULES.rules for smiles in rule.negatives]
REVERSES = [pytest.param(rule.id, id=rule.id) for rule in RULES.rules if rule.reverse]


@pytest.mark.parametrize("rule", RULES.rules, ids=lambda r: r.id)
def test_rule_is_complete(rule: ConversionRule) -> None:
    assert len(rule.examples) >= 2, "each rule needs at least two examples"
    assert len(rule.negatives) >= 2, "each rule needs at least two negatives"
    assert rule.kind in ("unmask", "mask")
    assert (rule.removal in REMOVALS and rule.site) if rule.is_mask else not rule.removal
    assert rule.name and rule.removes and rule.rationale


@pytest.mark.parametrize("rule_id, substrate, expected", EXAMPLES)
def test_rule_example(rule_id: str, substrate: str, expected: str) -> None:
    got = {p.key for p in RULES.apply_rule(mol(substrate), rule_id)}
    assert key(expected) in got


@pytest.mark.parametrize("rule_id, smiles", NEGATIVES)
def test_rule_negative(rule_id: str, smiles: str) -> None:
    assert RULES.apply_rule(mol(smiles), rule_id) == []


@pytest.mark.parametrize("rule_id", REVERSES)
def test_reverse_gives_back_first_example(rule_id: str) -> None:
    substrate, product = RULES.rule(rule_id).examples[0]
    got = {p.key for p in RULES.apply_rule(mol(product), rule_id, reverse=True)}
    assert key(substrate) in got


def test_reverse_route() -> None:
    routes = RULES.reverse(mol("c1ccc(NC2CCNCC2)cc1"))
    assert key("CC(C)(C)OC(=O)N1CCC(Nc2ccccc2)CC1") in {key(r.product) for r in routes}
    assert all(r.depth == 1 for r in routes)


# -- designer precursors reach their listed parent --------------------------------------------

BMK = "CC(=O)Cc1ccccc1"
PMK = "CC(=O)Cc1ccc2c(c1)OCO2"
FOUR_AP = "c1ccc(NC2CCNCC2)cc1"
NPP = "O=C1CCN(CCc2ccccc2)CC1"

PATHS = [
    pytest.param("CC(=O)C(C#N)c1ccccc1", BMK, 2, id="APAAN"),
    pytest.param("CC(=O)C(C(N)=O)c1ccccc1", BMK, 2, id="APAA"),
    pytest.param("COC(=O)C(C(C)=O)c1ccccc1", BMK, 2, id="MAPA"),
    pytest.param("CCOC(=O)C(C(C)=O)c1ccccc1", BMK, 2, id="EAPA"),
    pytest.param("COC(=O)C1(C)OC1c1ccccc1", BMK, 2, id="BMK methyl glycidate"),
    pytest.param("CCOC(=O)C1(C)OC1c1ccccc1", BMK, 2, id="BMK ethyl glycidate"),
    pytest.param("CC1(C(=O)O)OC1c1ccccc1", BMK, 2, id="BMK glycidic acid"),
    pytest.param("CC1(C(=O)[O-])OC1c1ccccc1.[Na+]", BMK, 2, id="BMK glycidate Na salt"),
    pytest.param("CC(O)(Cc1ccccc1)S(=O)(=O)[O-].[Na+]", BMK, 2, id="BMK bisulfite adduct"),
    pytest.param("CC(=Cc1ccccc1)[N+](=O)[O-]", BMK, 2, id="P2NP"),
    pytest.param("CC1(Cc2ccccc2)OCCO1", BMK, 2, id="BMK ethylene ketal"),
    pytest.param("CCOC(=O)C(C(=O)Cc1ccccc1)C(=O)OCC", BMK, 3, id="DEPAPD"),
    pytest.param("CC1(C(=O)O)OC1c1ccc2c(c1)OCO2", PMK, 2, id="PMK glycidic acid"),
    pytest.param("COC(=O)C1(C)OC1c1ccc2c(c1)OCO2", PMK, 2, id="PMK methyl glycidate"),
    pytest.param("COC(=O)C(C(C)=O)c1ccc2c(c1)OCO2", PMK, 2, id="MAMDPA"),
    pytest.param("CC1(C)OC(=O)C(C(=O)Cc2ccc3c(c2)OCO3)C(=O)O1", PMK, 2, id="IMDPAM"),
    pytest.param("CC(C)(C)OC(=O)N1CCC(Nc2ccccc2)CC1", FOUR_AP, 2, id="1-boc-4-AP"),
    pytest.param("CCC(=O)N(c1ccccc1)C1CCNCC1", FOUR_AP, 2, id="norfentanyl"),
    pytest.param("O=C(OCc1ccccc1)N1CCC(Nc2ccccc2)CC1", FOUR_AP, 2, id="1-Cbz-4-AP"),
    pytest.param("c1ccc(CN2CCC(Nc3ccccc3)CC2)cc1", FOUR_AP, 2, id="1-benzyl-4-AP"),
    pytest.param("CC(C)(C)OC(=O)N1CCC(=O)CC1", "O=C1CCNCC1", 2, id="1-boc-4-piperidone"),
    pytest.param("C1CN(CCc2ccccc2)CCC12OCCO2", NPP, 2, id="NPP ethylene ketal"),
    pytest.param("OC1CCN(CCc2ccccc2)CC1", NPP, 2, id="1-phenethylpiperidin-4-ol"),
    pytest.param("CN[C@@H](C)[C@H](Cl)c1ccccc1", "CN[C@@H](C)[C@H](O)c1ccccc1", 2,
                 id="chloroephedrine"),
    pytest.param("CCCCCOC(=O)C1(C)OC1c1ccccc1", "COC(=O)C1(C)OC1c1ccccc1", 2,
                 id="BMK pentyl glycidate"),
    pytest.param("C=CCc1ccc2c(c1)OCO2", "CC=Cc1ccc2c(c1)OCO2", 2, id="safrole"),
    pytest.param("OCc1ccc2c(c1)OCO2", "O=Cc1ccc2c(c1)OCO2", 2, id="piperonyl alcohol"),
]


@pytest.mark.parametrize("candidate, parent, depth", PATHS)
def test_designer_precursor_reaches_parent(candidate: str, parent: str, depth: int) -> None:
    found = products(candidate, depth=depth)
    assert key(parent) in found, sorted(found)
    route = found[key(parent)]
    assert route.depth <= depth
    assert all(isinstance(step, Step) and step.rule_name for step in route.steps)


def test_shortest_route_is_kept() -> None:
    route = products("CC(=O)C(C#N)c1ccccc1")[key(BMK)]
    assert [s.rule_id for s in route.steps] == ["nitrile-to-acid", "beta-keto-acid-decarboxylation"]
    assert route.steps[0].product == "CC(=O)C(C(=O)O)c1ccccc1"
    assert products("COC(=O)C1(C)OC1c1ccccc1")[key(BMK)].depth == 1


# -- products: pieces, stereo, identity --------------------------------------------------------

def test_ester_hydrolysis_returns_both_pieces() -> None:
    got = products("CN[C@@H](C)[C@H](OC(C)=O)c1ccccc1", depth=1)
    assert key("CN[C@@H](C)[C@H](O)c1ccccc1") in got  # the alcohol side, the bigger one
    assert key("CC(=O)O") in got                        # and the acid side


def test_stereo_is_kept_in_the_product() -> None:
    got = products("CN[C@@H](C)[C@H](OC(C)=O)c1ccccc1", depth=1)
    assert got[key("CNC(C)C(O)c1ccccc1")].product == "CN[C@@H](C)[C@H](O)c1ccccc1"


def test_inorganic_and_tiny_pieces_are_dropped() -> None:
    # amide hydrolysis of a primary amide leaves ammonia; Boc removal leaves nothing of its own
    for route in RULES.apply(mol("NC(=O)Cc1ccccc1"), depth=1) + RULES.apply(
            mol("CC(C)(C)OC(=O)N1CCC(=O)CC1"), depth=1):
        product = mol(route.product)
        assert product.GetNumHeavyAtoms() >= MIN_PRODUCT_HEAVY_ATOMS
        assert any(a.GetAtomicNum() == 6 for a in product.GetAtoms())
    # methylamine (2 heavy atoms, listed) is kept
    assert key("CN") in products("CNC=O", depth=1)


def test_products_are_standardized() -> None:
    for route in RULES.apply(mol("CC1(C)OC(=O)C(C(=O)Cc2ccc3c(c2)OCO3)C(=O)O1"), depth=3):
        for step in route.steps:
            assert standardize_smiles(step.product).smiles == step.product


def test_input_is_never_a_product() -> None:
    # reduction then oxidation leads back to BMK; BMK itself must not be listed
    assert key(BMK) not in products(BMK)
    assert key("CC(O)Cc1ccccc1") in products(BMK)


def test_same_answer_for_any_spelling_and_order_is_deterministic() -> None:
    a = RULES.apply(mol("CCOC(=O)C(C(C)=O)c1ccccc1"))
    b = RULES.apply(mol("c1ccccc1C(C(C)=O)C(=O)OCC.Cl"))
    assert a == b
    assert a == load_rules().apply(mol("CCOC(=O)C(C(C)=O)c1ccccc1"))


def test_accepts_standardized_input() -> None:
    std = standardize_smiles("CC(=O)C(C#N)c1ccccc1")
    assert RULES.apply(std) == RULES.apply(mol("CC(=O)C(C#N)c1ccccc1"))


def test_depth_and_limits() -> None:
    apaan = mol("CC(=O)C(C#N)c1ccccc1")
    # depth counts conversions only: at depth 0 the masks still come off (the nitrile here)
    assert {tuple(s.rule_id for s in r.steps) for r in RULES.apply(apaan, depth=0)} == {
        ("nitrile-to-acid",)}
    assert RULES.apply(apaan, depth=0, max_masks=0) == []
    assert all(r.depth - sum(RULES.rule(s.rule_id).is_mask for s in r.steps) <= 1
               for r in RULES.apply(apaan, depth=1))
    assert RULES.apply(apaan, max_products=0) == []
    with pytest.raises(ValueError):
        RULES.apply(apaan, depth=-1)


def test_max_heavy_atoms_leaves_out_large_products() -> None:
    fentanyl = mol("CCC(=O)N(c1ccccc1)C1CCN(CCc2ccccc2)CC1")
    small = RULES.apply(fentanyl, max_heavy_atoms=10)
    assert small and all(mol(r.product).GetNumHeavyAtoms() <= 10 for r in small)
    assert key("c1ccc(CCN2CCC(Nc3ccccc3)CC2)cc1") in {key(r.product) for r in RULES.apply(fentanyl)}


def test_ordinary_molecules_do_not_blow_up() -> None:
    # a 20-residue peptide and a polyol macrolide: many amides, esters and alcohols
    peptide = ("CC[C@H](C)[C@H](NC(=O)CNC(=O)[C@H](C)NC(=O)[C@H](C)NC(=O)[C@H](Cc1cnc[nH]1)"
               "NC(=O)[C@H](CC(N)=O)NC(=O)CNC(=O)[C@H](C)NC(=O)CNC(=O)[C@H](Cc1cnc[nH]1)"
               "NC(=O)[C@H](CC(C)C)NC(=O)[C@H](CC(C)C)NC(=O)[C@H](CCC(=O)O)NC(=O)[C@@H]1CCCN1)"
               "C(=O)N[C@@H](CC(C)C)C(=O)N[C@H](C(=O)N[C@@H](CC(C)C)C(N)=O)[C@@H](C)O")
    routes = RULES.apply(mol(peptide), max_products=50)
    assert len(routes) == 50
    assert len({key(r.product) for r in routes}) == 50
    assert len(RULES.apply(mol(peptide), depth=1)) <= 200
    erythromycin = ("CC[C@H]1OC(=O)[C@H](C)[C@@H](O[C@H]2C[C@@](C)(OC)[C@@H](O)[C@H](C)O2)[C@H](C)"
                    "[C@@H](O[C@@H]2O[C@H](C)C[C@H](N(C)C)[C@H]2O)[C@](C)(O)C[C@@H](C)C(=O)"
                    "[C@H](C)[C@@H](O)[C@]1(C)O")
    assert 0 < len(RULES.apply(mol(erythromycin))) <= 200


def test_masks_do_not_count_against_depth() -> None:
    # 1-Cbz-4-piperidone ethylene ketal: two masks; a ketal of NPP's beta-keto ester: two masks
    # and a decarboxylation (one counted step)
    route = products("O=C(OCc1ccccc1)N1CCC2(CC1)OCCO2", depth=0)[key("O=C1CCNCC1")]
    assert [s.rule_id for s in route.steps] == ["n-cbz-removal", "ketal-hydrolysis"]
    route = products("CCOC(=O)C1CN(CCc2ccccc2)CCC12OCCO2", depth=1)[key(NPP)]
    assert "ketal-hydrolysis" in [s.rule_id for s in route.steps]
    assert sum(not RULES.rule(s.rule_id).is_mask for s in route.steps) == 1


def test_removed_names_what_came_off() -> None:
    assert RULES.removed("CCOC(=O)Cc1ccccc1", "ester-hydrolysis", "O=C(O)Cc1ccccc1") == "CCO"
    assert RULES.removed("CC1(Cc2ccccc2)OCCO1", "ketal-hydrolysis", BMK) == "OCCO"
    assert RULES.removed("CC(=O)Nc1ccccc1C(=O)O", "amide-hydrolysis-amine",
                         "Nc1ccccc1C(=O)O") == "CC=O"
    assert RULES.removed(BMK, "ester-hydrolysis", BMK) == ""   # not a step of that rule


def test_molecules_without_handles_give_nothing() -> None:
    for smiles in ("c1ccccc1", "CCCCCC", "Clc1ccc(Cl)cc1", "CC(C)=O"):
        assert [r for r in RULES.apply(mol(smiles)) if r.steps[0].rule_id != "carbonyl-reduction"] == []


def test_ruleset_pickles() -> None:
    again = pickle.loads(pickle.dumps(RULES))
    assert isinstance(again, RuleSet)
    assert again.rules == RULES.rules
    p2np = mol("CC(=Cc1ccccc1)[N+](=O)[O-]")
    assert again.apply(p2np) == RULES.apply(p2np)


def test_unknown_rule_id_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="ester-hydrolysis"):
        RULES.rule("no-such-rule")


# -- loading fails loudly on a bad rule file ----------------------------------------------------

GOOD = """
[ester-hydrolysis]
name = "ester hydrolysis"
smarts = '[CX3;$([CX3][#6]):1](=[O:2])-!@[OX2:3]-[#6;!$([CX3]=O):4]>>[C:1](=[O:2])O.[O:3]-[*:4]'
removes = "an alcohol"
kind = "unmask"
rationale = "Textbook (March's Advanced Organic Chemistry)."
examples = [["CCOC(C)=O", "CC(=O)O"], ["COC(=O)Cc1ccccc1", "O=C(O)Cc1ccccc1"]]
negatives = ["O=C1CCCO1", "CC(=O)O"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_from_a_path(tmp_path: Path) -> None:
    rules = load_conversion_rules(write(tmp_path, GOOD))
    assert [r.id for r in rules.rules] == ["ester-hydrolysis"]
    assert key("CC(=O)O") in {key(r.product) for r in rules.apply(mol("CCOC(C)=O"))}


@pytest.mark.parametrize("broken, message", [
    pytest.param(GOOD.replace("name = \"ester hydrolysis\"\n", ""), "missing field 'name'",
                 id="missing field"),
    pytest.param(GOOD.replace("[CX3;", "[CX3;;(("), "unparsable reaction SMARTS", id="bad SMARTS"),
    pytest.param(GOOD.replace(">>", ".[OH2]>>"), "one reactant", id="two reactants"),
    pytest.param(GOOD.replace('"unmask"', '"magic"'), "unknown kind", id="unknown kind"),
    pytest.param(GOOD.replace('"O=C1CCCO1"', '"C1CC"'), "unparsable test SMILES", id="bad SMILES"),
    pytest.param(GOOD.replace("negatives", "negative"), "missing field 'negatives'",
                 id="misspelt field"),
    pytest.param(GOOD + "reverse = 'C>>'\nextra = 1\n", "unknown field", id="unknown field"),
    pytest.param(GOOD.replace("[ester-hydrolysis]", "[Ester_Hydrolysis]"), "slug", id="bad id"),
])
def test_load_fails_loudly(tmp_path: Path, broken: str, message: str) -> None:
    path = write(tmp_path, broken)
    with pytest.raises(ShippedDataError, match=message) as info:
        load_conversion_rules(path)
    assert str(path) in str(info.value)
    if "slug" not in message:
        assert "[ester-hydrolysis]" in str(info.value)


def test_load_fails_on_broken_toml(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("kind = \"unmask\"", "kind = unmask"))
    with pytest.raises(ShippedDataError, match="not valid TOML") as info:
        load_conversion_rules(path)
    assert str(path) in str(info.value)


def test_load_fails_on_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ShippedDataError, match="nope.toml: no such rule file"):
        load_conversion_rules(tmp_path / "nope.toml")


def test_a_molecule_searched_twice_reuses_its_rule_steps() -> None:
    """The screen searches a candidate for listed substances and then for drugs; the second
    search takes the first's reaction results for the same molecule object (`_STEPS`), and
    finds what a search of a fresh copy finds."""
    from precursor_screen.rules import conversions

    rules = load_rules()
    smiles = "CCOC(=O)C(C(C)=O)c1ccc2c(c1)OCO2"
    std = standardize_smiles(smiles)
    conversions._STEPS.clear()
    first = [(r.product, r.steps) for r in rules.apply(std)]
    remembered = dict(conversions._STEPS)
    assert any(kept[0] is std.mol for kept in remembered.values())
    again = [(r.product, r.steps) for r in rules.apply(std)]
    assert again == first
    for key, kept in conversions._STEPS.items():   # the candidate's steps were not run again
        if kept[0] is std.mol:
            assert remembered[key][1] is kept[1]
    conversions._STEPS.clear()
    assert [(r.product, r.steps) for r in rules.apply(standardize_smiles(smiles))] == first
    for _ in range(conversions.STEPS_KEPT + 5):     # it stays small
        rules.apply(standardize_smiles("CCOC(=O)Cc1ccccc1"))
    assert len(conversions._STEPS) <= conversions.STEPS_KEPT


@pytest.mark.parametrize("smiles, now, on_some_route", [
    ("CN(C)Cc1ccccc1", 7, 7),                              # an N-benzyl amine: off now
    ("CC(C)(C)OC(=O)NC", 7, 7),                            # a Boc carbamate
    ("CC(=O)N(C)Cc1ccccc1", 0, 7),                         # the benzyl once the acetyl is off
    ("COC(=O)c1ccccc1N(Cc1ccccc1)S(C)(=O)=O", 0, 7),       # ... once the mesyl is off
    ("O=C(c1ccccc1)N(Cc1ccccc1)Cc1ccccc1", 0, 14),         # two of them
    ("CCN(CC)CC", 0, 0),
])
def test_protecting_groups_another_removal_frees_are_counted(smiles: str, now: int,
                                                            on_some_route: int) -> None:
    """`RuleSet.protecting_group_atoms`: the groups that come off now, and (``freed``) those a
    route may take off once another mask is gone (an N-benzyl's template excludes an acylated
    or sulfonylated nitrogen, a condition the first removal lifts); with and without the C
    matcher's answers."""
    rules = load_rules()
    std = standardize_smiles(smiles)
    for given in (std.smiles, None):
        assert rules.protecting_group_atoms(std.mol, given) == now
        assert rules.protecting_group_atoms(std.mol, given, freed=True) == on_some_route
