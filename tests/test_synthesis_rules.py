"""Forward synthesis rules: every shipped rule on its own test molecules, the engine they share
with the unmasking rules, and broken rule files."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from rdkit import Chem

from precursor_screen.chem.standardize import standardize_smiles
from precursor_screen.errors import ShippedDataError
from precursor_screen.rules.conversions import ConversionRule
from precursor_screen.rules.masks import load_rules
from precursor_screen.rules.synthesis import (
    MAX_FORWARD_ADDED_ATOMS,
    SYNTHESIS_KIND,
    SynthesisRuleSet,
    load_synthesis_rules,
    synthesis_rule_set,
)

FORWARD = synthesis_rule_set()
COMBINED = synthesis_rule_set(load_rules())
RULES, REAGENTS = load_synthesis_rules()


def key(smiles: str) -> str:
    return standardize_smiles(smiles).key


EXAMPLES = [pytest.param(r.id, s, p, id=f"{r.id}:{s}") for r in RULES for s, p in r.examples]
NEGATIVES = [pytest.param(r.id, s, id=f"{r.id}:not:{s}") for r in RULES for s in r.negatives]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_is_complete(rule: ConversionRule) -> None:
    assert len(rule.examples) >= 2, "each rule needs at least two examples"
    assert len(rule.negatives) >= 2, "each rule needs at least two negatives"
    assert rule.kind == SYNTHESIS_KIND and rule.name and rule.rationale
    assert REAGENTS[rule.id], "each forward rule names its reagent"


@pytest.mark.parametrize("rule_id, substrate, expected", EXAMPLES)
def test_rule_example(rule_id: str, substrate: str, expected: str) -> None:
    got = {p.key for p in FORWARD.apply_rule(standardize_smiles(substrate), rule_id)}
    assert key(expected) in got


@pytest.mark.parametrize("rule_id, smiles", NEGATIVES)
def test_rule_negative(rule_id: str, smiles: str) -> None:
    assert FORWARD.apply_rule(standardize_smiles(smiles), rule_id) == []


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rationale_names_no_procedure(rule: ConversionRule) -> None:
    # transformations and reagent classes only: no temperatures, times or amounts
    text = f"{rule.rationale} {REAGENTS[rule.id]}".lower()
    for word in ("°c", " degrees", " hours", " minutes", " grams", " ml ", " mmol", " equiv",
                 "reflux", "stir"):
        assert word not in text, (rule.id, word)


# -- the engine they share with the unmasking rules --------------------------------------------

def test_combined_set_keeps_both_kinds_in_order() -> None:
    unmask = load_rules()
    assert COMBINED.rules[: len(unmask)] == unmask.rules
    assert COMBINED.forward_ids == tuple(r.id for r in RULES)
    assert {COMBINED.rule(i).kind for i in COMBINED.forward_ids} == {SYNTHESIS_KIND}
    assert COMBINED.reagent("ester-hydrolysis") == ""
    assert COMBINED.reagent("amination-methylamine") == "methylamine"


def test_two_forward_steps_carry_their_reagents() -> None:
    routes = {r.product: r for r in FORWARD.apply(standardize_smiles("CCC(=O)c1ccc(C)cc1"))}
    route = routes[standardize_smiles("CNC(C)C(=O)c1ccc(C)cc1").smiles]
    assert [(s.rule_id, s.reagent) for s in route.steps] == [
        ("alpha-bromination", "a brominating agent"), ("amination-methylamine", "methylamine")]


def test_unmasking_then_forward_in_one_search() -> None:
    # methyl N-acetylanthranilate: ester hydrolysis (no reagent), then o-toluidine
    methaqualone = standardize_smiles("Cc1ccccc1-n1c(C)nc2ccccc2c1=O").smiles
    routes = {r.product: r for r in COMBINED.apply(standardize_smiles("COC(=O)c1ccccc1NC(C)=O"))}
    steps = routes[methaqualone].steps
    assert [s.rule_id for s in steps] == ["ester-hydrolysis", "quinazolinone-o-toluidine"]
    assert [s.reagent for s in steps] == ["", "o-toluidine"]
    # the forward rules alone cannot hydrolyse the ester first
    assert methaqualone not in {r.product for r in FORWARD.apply(
        standardize_smiles("COC(=O)c1ccccc1NC(C)=O"))}


def test_products_may_grow_by_the_reagents() -> None:
    # 4-AP (13 heavy atoms) to fentanyl (25): phenethyl (+8) then propionyl (+4)
    fentanyl = standardize_smiles("CCC(=O)N(c1ccccc1)C1CCN(CCc2ccccc2)CC1").smiles
    products = {r.product for r in FORWARD.apply(standardize_smiles("c1ccc(NC2CCNCC2)cc1"))}
    assert fentanyl in products
    assert MAX_FORWARD_ADDED_ATOMS >= 12


def test_depth_and_product_cap() -> None:
    ketone = standardize_smiles("CCC(=O)c1ccc(C)cc1")
    assert FORWARD.apply(ketone, depth=0) == []
    one = FORWARD.apply(ketone, depth=1)
    assert [r.depth for r in one] == [1]  # only the bromide
    assert len(FORWARD.apply(ketone, depth=2, max_products=3)) == 3


def test_pickles_with_reagents() -> None:
    back = pickle.loads(pickle.dumps(COMBINED))
    assert isinstance(back, SynthesisRuleSet)
    assert back.rules == COMBINED.rules and back.reagents == COMBINED.reagents
    ketone = standardize_smiles("CC(Br)C(=O)c1ccc(C)cc1")
    assert back.apply(ketone) == COMBINED.apply(ketone)


# -- broken files -------------------------------------------------------------------------------

GOOD = """
[amination-methylamine]
name = "amination"
reagent = "methylamine"
smarts = '[c:1][CX3:2](=[OX1:3])[CX4H1:4](-[Br,Cl])[CX4:5]>>[c:1][C:2](=[O:3])[C:4](NC)[C:5]'
rationale = "why"
examples = [["CC(Br)C(=O)c1ccccc1", "CNC(C)C(=O)c1ccccc1"]]
negatives = ["CC(=O)c1ccccc1"]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace('reagent = "methylamine"\n', ""), "missing field 'reagent'"),
    (lambda t: t.replace('reagent = "methylamine"', 'reagent = "  "'), "field 'reagent' is empty"),
    (lambda t: t.replace('name = "amination"', 'name = "amination"\nremoves = "x"'),
     "unknown field"),
    (lambda t: t.replace('"CC(=O)c1ccccc1"', '"C1CC"'), "unparsable test SMILES"),
    (lambda t: t.replace("[amination-methylamine]", "[Amination]"), "lower-case slug"),
    (lambda t: t.replace(">>", ">>>"), "SMARTS"),
    (lambda t: t + "[x\n", "not valid TOML"),
])
def test_broken_file_names_file_and_rule(tmp_path: Path, change: object, message: str) -> None:
    path = _write(tmp_path, change(GOOD))  # type: ignore[operator]
    with pytest.raises(ShippedDataError, match=message) as err:
        synthesis_rule_set(path=path)
    assert str(path) in str(err.value)


def test_good_user_file_loads(tmp_path: Path) -> None:
    rules = synthesis_rule_set(path=_write(tmp_path, GOOD))
    assert rules.forward_ids == ("amination-methylamine",)
    got = rules.apply(standardize_smiles("CC(Br)C(=O)c1ccccc1"))
    assert [r.steps[0].reagent for r in got] == ["methylamine"]


def test_id_in_both_files_is_refused(tmp_path: Path) -> None:
    clash = GOOD.replace("[amination-methylamine]", "[ester-hydrolysis]")
    with pytest.raises(ShippedDataError, match="duplicate rule id"):
        synthesis_rule_set(load_rules(), path=_write(tmp_path, clash))


def test_reagent_for_unknown_rule_is_refused() -> None:
    with pytest.raises(ShippedDataError, match="unknown rule"):
        SynthesisRuleSet(RULES, "x", {"no-such-rule": "water"})


def test_shipped_file_is_valid_smarts() -> None:
    for rule in RULES:
        assert Chem.MolFromSmiles(rule.examples[0][0]) is not None
