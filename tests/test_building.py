"""One-step building toward a listed precursor: the rules of ``building.toml`` (and the synthesis
rules that add a reagent's carbon), run backwards once on each listed substance and looked up."""

from __future__ import annotations

import pytest

from precursor_screen.chem.standardize import standardize_smiles
from precursor_screen.reference import builtin_registry
from precursor_screen.rules.building import BUILDING_FILE, BuildIndex, building_rule_set
from precursor_screen.rules.synthesis import load_synthesis_rules
from precursor_screen.rules.files import data_file
from precursor_screen.screen import Screener
from precursor_screen.types import Flag

RULES = building_rule_set()
OWN, _ = load_synthesis_rules(data_file(BUILDING_FILE))
INDEX = BuildIndex(builtin_registry().structures(), RULES)
SCREENER = Screener()


@pytest.mark.parametrize("rule", OWN, ids=lambda r: r.id)
def test_rule_examples_and_negatives(rule) -> None:  # noqa: ANN001
    assert len(rule.examples) >= 2 and len(rule.negatives) >= 2 and rule.rationale
    for substrate, product in rule.examples:
        got = {p.key for p in RULES.apply_rule(standardize_smiles(substrate), rule.id)}
        assert standardize_smiles(product).key in got, (rule.id, substrate)
    for smiles in rule.negatives:
        assert RULES.apply_rule(standardize_smiles(smiles), rule.id) == [], (rule.id, smiles)


@pytest.mark.parametrize("substrate, rule_id, listed", [
    ("CC(N)C(O)c1ccccc1", "n-methylation", "ephedrine"),
    ("CC(=O)C(O)c1ccccc1", "reductive-amination-hydroxyketone", "ephedrine"),
    ("NC1CCN(CCc2ccccc2)CC1", "n-arylation-aminopiperidine", "anpp"),
    ("O=C1CCNCC1", "n-phenethylation-piperidone", "npp"),
    ("O=C1CCN(CCc2ccccc2)CC1", "reductive-amination-aniline", "anpp"),
    ("c1ccc(NC2CCNCC2)cc1", "n-propionylation", "norfentanyl"),
    # the piperidone phenethylation's reverse reaches 4-AP from ANPP first (its proof fails);
    # each rule's products are kept apart, so the 4-AP phenethylation proves it
    ("c1ccc(NC2CCNCC2)cc1", "n-phenethylation", "anpp"),
    ("N#CCc1ccccc1", "c-acetylation-arylacetonitrile", "apaan"),
    ("Nc1ccccc1C(=O)O", "n-acetylation-anthranilic", "n-acetylanthranilic-acid"),
])
def test_the_index_knows_each_building_step(substrate: str, rule_id: str, listed: str) -> None:
    found = {(b.rule.id, b.substance.id) for b in INDEX.lookup(standardize_smiles(substrate).key)}
    assert (rule_id, listed) in found


def test_only_steps_that_add_a_reagents_carbon_build() -> None:
    assert "alcohol-oxidation-to-acid" not in RULES.forward_ids
    assert "alpha-bromination" not in RULES.forward_ids
    assert "reductive-amination-aniline" in RULES.forward_ids


@pytest.mark.parametrize("smiles, listed", [
    ("CC(=O)[C@H](O)c1ccccc1", None),            # L-PAC: flagged (BMK or ephedrine route)
    ("NC1CCN(CCc2ccccc2)CC1", "anpp"),
    ("CC(C)(C)OC(=O)N1CCC(N)CC1", "1-boc-4-ap"),
    ("N#CCc1ccccc1", "apaan"),
])
def test_the_screen_flags_building_steps(smiles: str, listed: str | None) -> None:
    v = SCREENER.check(smiles)
    assert v.flag is Flag.CONVERTIBLE, v.reason
    if listed:
        assert v.match_id == listed and "in one step: +" in v.reason, v.reason


def test_no_building_on_top_of_a_listed_substance() -> None:
    # an N-propionyl anthranilic acid hydrolyses to anthranilic acid, listed itself: "then
    # acetylate it to N-acetylanthranilic acid" adds nothing, and is not said
    v = SCREENER.check("CCC(=O)Nc1ccccc1C(=O)O")
    assert not any(h.relation == "builds" for h in v.hits), v.reason


def test_building_after_a_mask() -> None:
    # L-PAC acetate: ester hydrolysis (a mask) gives L-PAC, which methylamine makes ephedrine
    v = SCREENER.check("CC(=O)OC(C(C)=O)c1ccccc1")
    built = next(h for h in v.hits if h.relation == "builds" and h.substance_id == "ephedrine")
    assert [s.rule_id for s in built.route.steps] == [
        "ester-hydrolysis-alcohol", "reductive-amination-hydroxyketone"]
    assert "in 2 steps" in built.reason and "+ methylamine" in built.reason


def test_legitimate_lookalikes_are_not_built() -> None:
    for smiles in ("NC1CCNCC1", "c1ccc(N2CCNCC2)cc1", "CC(N)Cc1ccccc1O", "Nc1cccc(C(=O)O)c1"):
        assert not any(h.relation == "builds" for h in SCREENER.check(smiles).hits), smiles


def test_shared_prefix_screens_and_contexts_change_no_substrate() -> None:
    """The reverse queries that begin alike share a screen of their first atoms
    (`conversions.PREFIX_ATOMS`), tested once, and a one-atom rule is tried only on a listed
    substance holding its context (`building.product_context`); with both taken away the same
    substrates come back for every listed substance and every evaluation molecule."""
    import csv
    from pathlib import Path

    from rdkit import Chem

    from precursor_screen.chem.standardize import StandardizeError, standardize
    from precursor_screen.reference import builtin_registry
    from precursor_screen.rules.building import Builder

    parents = [s.parent for s in builtin_registry().structures()
               if s.parent is not None and not s.is_inorganic]
    root = Path(__file__).resolve().parent.parent / "evaluation"
    for name in ("designer_precursors.tsv", "masks.tsv", "real_cases.tsv"):
        with open(root / name, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                mol = Chem.MolFromSmiles(row["smiles"])
                try:
                    parents.append(standardize(mol))
                except StandardizeError:
                    continue
    screened, plain = Builder(), Builder()
    shared = [p for p in screened._reverse._rev_prefix if p is not None]
    assert len(shared) >= 10   # the N-acyl anilides, the aryl ketone aminations, ...
    assert len(screened._contexts) >= 6   # one-atom rules: contexts asked first
    plain._reverse._rev_prefix = tuple(None for _ in plain._reverse._rev_prefix)
    plain._contexts = {}
    found = [screened.substrates(p) for p in parents]
    assert found == [plain.substrates(p) for p in parents]
    assert sum(map(len, found)) > 50
