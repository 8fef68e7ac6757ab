"""The last-step cut (`precursor_screen.rules.formulas`): a search told its caller's targets
leaves out the last-step products that cannot be one, and finds the same routes to them.

Compared on the golden corpus (examples, every evaluation molecule, 5,000 MOSES) and the
registry, standardized as the screen does: the conversion search with the screen's targets
(listed substances and building substrates) and the drug search with the drug stage's, each
with and without the cut, at the screen's product cap and at caps small enough that the pieces
left out could have filled them (the search is then run again in full).
"""

from __future__ import annotations

import pytest
from rdkit import Chem

from precursor_screen.chem.standardize import standardize_smiles
from precursor_screen.rules.conversions import LastStepCut, search_for
from precursor_screen.rules.formulas import TargetFormulas, heavy_counts, heavy_formula
from precursor_screen.screen import Screener


@pytest.fixture(scope="module")
def screener() -> Screener:
    return Screener()


@pytest.fixture(scope="module")
def parents(corpus_parents: list) -> list:
    return corpus_parents


def _formula(smiles: str) -> tuple:
    mol = Chem.MolFromSmiles(smiles)
    return heavy_formula(a.GetAtomicNum() for a in mol.GetAtoms())


def test_formulas_keep_what_standardizing_could_turn_into_a_target() -> None:
    targets = TargetFormulas(["CC(=O)Cc1ccccc1", "CNC(C)Cc1ccccc1"])   # BMK, methamphetamine
    assert len(targets) == 2
    number = {"C": 6, "N": 7, "O": 8, "Na": 11, "Cl": 17}

    def atoms(**counts: int) -> list[int]:
        return [number[k] for k, n in counts.items() for _ in range(n)] + [1, 1]

    assert targets.could_be(atoms(C=9, O=1))            # BMK's formula (hydrogens ignored)
    assert targets.could_be(atoms(C=10, N=1))           # methamphetamine's
    assert not targets.could_be(atoms(C=9, O=2, N=1))
    assert not targets.could_be(atoms(C=10, O=1))
    assert targets.could_be(atoms(C=9, O=2))            # a ketone hydrate of BMK's formula
    assert targets.could_be(atoms(C=9, O=1, Na=1))      # a metal standardizing may take off
    assert not targets.could_be(atoms(C=9, O=1, Cl=1))  # chlorine stays on
    # the standardized parent of each such piece: the formula test is right about it
    for smiles in ("CC(O)(O)Cc1ccccc1", "CC(O[Na])=Cc1ccccc1"):
        parent = standardize_smiles(smiles)
        assert _formula(parent.smiles) in targets.formulas
    families = TargetFormulas([], any_up_to=12)
    assert families.could_be(atoms(C=12, O=1)) and not families.could_be(atoms(C=14, O=1))
    with pytest.raises(ValueError, match="does not parse"):
        TargetFormulas(["C1CC"])


def test_a_product_is_cut_only_when_no_piece_could_be_a_target() -> None:
    targets = TargetFormulas(["CC(=O)Cc1ccccc1"])
    cut = LastStepCut(targets)
    two = Chem.MolFromSmiles("CC(=O)Cc1ccccc1.OCC", sanitize=False)
    assert not cut.skips(two) and cut.skipped == 0      # one piece is BMK's formula
    none = Chem.MolFromSmiles("CCC(=O)Cc1ccccc1.OCC", sanitize=False)
    assert cut.skips(none) and cut.skipped == 2         # two pieces, either could have counted


def test_heavy_counts_from_the_formula_are_the_atoms(screener: Screener, parents: list) -> None:
    """RDKit's formula, read for a one-piece product, counts what the atoms count: on every
    corpus parent, and on the unsanitized products of every conversion rule run on the first
    500 (as `LastStepCut.skips` meets them); a dummy atom gives None (the atoms are asked)."""
    def by_atoms(mol: Chem.Mol) -> dict:
        return dict(heavy_formula(a.GetAtomicNum() for a in mol.GetAtoms()))

    products = 0
    for std in parents:
        assert dict(heavy_counts(std.mol)) == by_atoms(std.mol), std.smiles
    for std in parents[:500]:
        for compiled in screener.rules._compiled:
            if compiled.rxn is None or not std.mol.HasSubstructMatch(compiled.query):
                continue
            for outcome in compiled.rxn.RunReactant(std.mol, 0):
                for product in outcome:
                    counts = heavy_counts(product)
                    assert counts is not None and dict(counts) == by_atoms(product), std.smiles
                    products += 1
    assert products > 300
    assert heavy_counts(Chem.MolFromSmiles("*CC(=O)O")) is None


def _target_routes(rules, routes: list, keys: set[str]) -> list[tuple]:
    """(product, steps) of the routes whose product is a target, in order; read right after the
    search (its products are remembered for that search only)."""
    out = []
    for route in routes:
        product = rules.product(route.product)
        assert product is not None
        if product.key in keys:
            out.append((route.product, tuple((s.rule_id, s.product) for s in route.steps)))
    return out


def test_conversion_search_finds_the_same_routes_to_listed_substances(
        screener: Screener, parents: list) -> None:
    rules, targets = screener.rules, screener._product_targets
    keys = set(screener._by_key) | set(screener._builds.keys())
    assert all(_formula(k) in targets.formulas for k in keys)
    found = fewer = 0
    for std in parents[::3]:
        kwargs = {"depth": 2, "max_products": 200, "max_heavy_atoms": screener._max_target_atoms}
        full = rules.apply(std, **kwargs)
        want = _target_routes(rules, full, keys)
        cut = rules.apply(std, targets=targets, **kwargs)
        assert _target_routes(rules, cut, keys) == want, std.smiles
        found += len(want)
        fewer += len(cut) < len(full)
    assert found > 80         # routes to listed substances (the evaluation's masked forms)
    assert fewer > 0          # the cut left products out (rarely here: a product whose
    # counted steps are spent may still lose masks, so few are last)


def test_drug_search_finds_the_same_routes_to_listed_drugs(
        screener: Screener, parents: list) -> None:
    drugs = screener.drugs
    keys = set(drugs._by_key)
    found = fewer = 0
    for std in parents[::3]:
        if not drugs.gate.passes(std.mol, 0, std.smiles):
            continue
        kwargs = {"depth": 2, "max_products": 200, "max_heavy_atoms": drugs._max_atoms}
        full = drugs.rules.apply(std, **kwargs)
        want = _target_routes(drugs.rules, full, keys)
        cut = drugs.rules.apply(std, targets=drugs._targets, **kwargs)
        assert _target_routes(drugs.rules, cut, keys) == want, std.smiles
        found += len(want)
        fewer += len(cut) < len(full)
    assert found > 20 and fewer > 100


def test_a_cap_the_left_out_pieces_could_fill_runs_the_search_in_full(screener: Screener) -> None:
    drugs = screener.drugs
    rules, targets, keys = drugs.rules, drugs._targets, set(drugs._by_key)
    std = standardize_smiles("CCC(=O)c1ccc(C)cc1")   # 4-methylpropiophenone: mephedrone's
    full_all = rules.apply(std, depth=2, max_products=200, max_heavy_atoms=drugs._max_atoms)
    assert len(full_all) > 6 and _target_routes(rules, full_all, keys)
    runs: list = []
    again = 0
    for cap in range(1, len(full_all) + 3):
        def search(cut=None, cap: int = cap) -> list:
            runs.append(cut)
            return rules._expand(std, 2, cap, reverse=False, max_added=rules.max_added,
                                 max_heavy_atoms=drugs._max_atoms, cut=cut)

        runs.clear()
        full = rules._expand(std, 2, cap, reverse=False, max_added=rules.max_added,
                             max_heavy_atoms=drugs._max_atoms)
        want = _target_routes(rules, full, keys)
        got = search_for(targets, cap, search)
        assert _target_routes(rules, got, keys) == want, cap
        assert runs[0] is not None
        if len(runs) == 2:      # the pieces left out could have filled the cap: run in full
            assert runs[1] is None and len(got) == len(full)
            again += 1
        else:
            assert len(runs) == 1 and (not runs[0].skipped
                                       or len(got) + runs[0].skipped < cap)
    assert again > 0
