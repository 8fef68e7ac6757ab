"""The route gate: exact (gated and ungated searches agree), and its rule checks catch rules
that would break its argument."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest
from rdkit import Chem
from rdkit.Chem import rdChemReactions

from precursor_screen.chem.standardize import StandardizeError, standardize_smiles
from precursor_screen.rules.drug_targets import GROUP_PRECURSOR_CORES, DrugTargets
from precursor_screen.rules.gates import (
    RouteGate,
    aromatic_problems,
    atom_elements,
    flag_floor,
    gate_problems,
    refined_skeleton,
    skeleton_from_smarts,
    substrate_cores,
    surely_aliphatic,
    surely_aromatic,
    without_recursion,
)
from precursor_screen.screen import Screener

EVALUATION = Path(__file__).resolve().parents[1] / "evaluation"


def _smiles(name: str) -> list[str]:
    with open(EVALUATION / name, newline="", encoding="utf-8") as fh:
        return [row["smiles"] for row in csv.DictReader(fh, delimiter="\t")]


@pytest.fixture(scope="module")
def drugs() -> DrugTargets:
    return DrugTargets()


@pytest.fixture(scope="module")
def molecules() -> list:
    """Designer precursors, pre-precursors of drugs, legitimate chemicals: real structures."""
    out = []
    for name in ("designer_precursors.tsv", "pre_precursors.tsv", "legitimate.tsv",
                 "legitimate_extra.tsv"):
        for smi in _smiles(name):
            try:
                out.append(standardize_smiles(smi))
            except StandardizeError:
                continue
    return out


def _routes(hits: list) -> list[tuple]:
    return [(h.substance_id, h.score, h.reason) for h in hits]


def test_shipped_rules_keep_the_gate_on(drugs: DrugTargets) -> None:
    assert drugs.gate is not None, drugs.gate_off
    assert drugs.gate_off == ""
    assert 5 < len(drugs.gate) < 80


def test_gated_search_finds_the_same_routes(drugs: DrugTargets, molecules: list) -> None:
    found = 0
    for std in molecules:
        gated = drugs.routes(std)
        assert _routes(gated) == _routes(drugs.routes(std, gated=False)), std.smiles
        found += bool(gated)
    assert found > 60          # the pre-precursors and designer forms do have routes


def test_flag_only_keeps_every_flagging_route(drugs: DrugTargets, molecules: list) -> None:
    for std in molecules:
        flagging = [h for h in drugs.routes(std, gated=False) if h.score > 0]
        assert _routes(flagging) == _routes(
            [h for h in drugs.routes(std, flag_only=True) if h.score > 0]), std.smiles


def test_pruning_drops_only_implied_queries(drugs: DrugTargets, molecules: list) -> None:
    rules = drugs.rules
    forward = [(i, rxn) for i, rxn in rules.reactions() if i in rules.reagents]
    targets = [t.parent.mol for t in drugs.registry if t.parent is not None]
    cores = [(GROUP_PRECURSOR_CORES[g.id], g.max_heavy_atoms or 10_000) for g in drugs.groups]
    full = RouteGate(targets, cores, forward, prune=False, typed=drugs.gate.typed)
    assert drugs.gate.typed   # the unmasking rules keep every atom's aromaticity
    assert len(full.entries) > 2 * len(drugs.gate.entries)
    for std in molecules:
        assert drugs.gate.passes(std.mol) == full.passes(std.mol), std.smiles
        assert drugs.gate.unmask_ok(std.mol) == full.unmask_ok(std.mol), std.smiles
        # with a size floor too: a kept query standing for a larger target than its own asks
        # the dropped query of that target before it passes
        n = std.mol.GetNumHeavyAtoms()
        for floor in (min(0.45 * n, n - 10), 14, 20, 27):
            assert drugs.gate.passes(std.mol, floor) == full.passes(std.mol, floor), std.smiles
            assert drugs.gate.unmask_ok(std.mol, floor) == full.unmask_ok(std.mol, floor), \
                std.smiles


def test_most_legitimate_chemicals_skip_the_search(drugs: DrugTargets) -> None:
    legit = []
    for smi in _smiles("legitimate.tsv"):
        try:
            legit.append(standardize_smiles(smi).mol)
        except StandardizeError:
            continue
    passed = sum(drugs.gate.passes(m) for m in legit)
    assert passed < 0.6 * len(legit)


def test_forward_only_candidates_start_with_the_forward_rules(drugs: DrugTargets,
                                                               screen_drugs: tuple,
                                                               corpus_parents: list) -> None:
    """A candidate holding the substrate of a forward rule the skeletons do not gate and no
    target's skeleton or core has no route beginning with an unmasking step to any target: the
    search runs only the forward rules on it first, and finds the routes the full search finds
    (which does run the unmasking ones: their products come back as routes that end nowhere).
    The screen's drug stage (no drug families, so no family cores) on the golden corpus: the
    fentanyl and cathinone precursors (4-anilinopiperidines, 4-piperidones, propiophenones)."""
    family_gate = drugs.gate
    drugs, _loose = screen_drugs
    rules = drugs.rules
    forward = set(rules.forward_ids)
    only = [std for std in corpus_parents if drugs.gate.forward_only(std.mol)]
    assert len(only) > 20
    cut = 0
    for std in only:
        assert drugs.gate.passes(std.mol) and drugs.gate.forward_ok(std.mol)
        first = rules.apply(std, forward_first=True)
        every = rules.apply(std)
        assert all(r.steps[0].rule_id in forward for r in first), std.smiles
        cut += len(every) > len(first)
        assert {r.product for r in first} <= {r.product for r in every}, std.smiles
        assert _routes(drugs.routes(std)) == _routes(drugs.routes(std, gated=False)), std.smiles
    assert cut > 10   # the unmasking steps it skips are real work
    # a candidate holding a target's skeleton or a family's core is searched in full
    mephedrone_ketone = standardize_smiles("CCC(=O)c1ccc(C)cc1").mol
    assert drugs.gate.forward_only(mephedrone_ketone)
    assert not family_gate.forward_only(mephedrone_ketone)


@pytest.mark.parametrize("group_id", sorted(GROUP_PRECURSOR_CORES))
def test_group_cores_are_in_every_member(drugs: DrugTargets, group_id: str,
                                         molecules: list) -> None:
    group = drugs.groups[group_id]
    core = Chem.MolFromSmarts(GROUP_PRECURSOR_CORES[group_id])
    for example in group.must_match:
        assert standardize_smiles(example.smiles).mol.HasSubstructMatch(core), example.name
    members = [std for std in molecules if drugs.groups.is_member(std, group)]
    assert all(std.mol.HasSubstructMatch(core) for std in members)
    for target in drugs.registry:
        if target.parent is not None and drugs.groups.is_member(target.parent, group):
            assert target.parent.mol.HasSubstructMatch(core), target.id


def test_every_listed_drug_and_its_masked_forms_pass(drugs: DrugTargets) -> None:
    for target in drugs.registry:
        if target.parent is not None:
            assert drugs.gate.passes(target.parent.mol), target.id
    for smi in ["CC(Br)C(=O)c1ccc(C)cc1", "CC(=O)Cc1ccccc1", "O=C1CCCO1", "OCCCCO",
                "CCC(=O)N(c1ccccc1)C1CCNCC1", "c1ccc(NC2CCN(CCc3ccccc3)CC2)cc1",
                "CC(=O)Nc1ccccc1C(=O)O", "CC(=Cc1ccccc1)[N+](=O)[O-]"]:
        assert drugs.gate.passes(standardize_smiles(smi).mol), smi


def test_screen_flags_do_not_depend_on_the_gates(molecules: list) -> None:
    """The bulk screen (gated, flag-only) and `check` (everything searched) flag alike."""
    screener = Screener()
    assert screener._route_gate is not None       # the refined gate, not the plain fallback
    sample = molecules[::3]
    bulk = list(screener.screen([s.smiles for s in sample]))
    for std, verdict in zip(sample, bulk):
        full = screener.check(std.smiles)
        assert (verdict.flag, verdict.score) == (full.flag, full.score), std.smiles


# -- the rule checks --------------------------------------------------------------------------

def _rxn(smarts: str) -> rdChemReactions.ChemicalReaction:
    rxn = rdChemReactions.ReactionFromSmarts(smarts)
    rxn.Initialize()
    return rxn


@pytest.mark.parametrize("smarts, problem", [
    ("[CX4:1]-[OH]>>[C:1]-C", "makes a carbon"),
    ("[C:1]-[C:2]-[C:3]>>[C:1]1-[C:2]-[C:3]-1", "bonds atoms"),
    ("[CH3:1]-[CH2:2]>>[C:1]-[C:2]-O", "a heteroatom it did not bear"),
    ("[C:1]=[O:2]>>[C:1]-[N:2]", "changes the element"),
    ("[C:1]-[Br]>>[C:1]-O-O", "non-terminal heteroatom"),
])
def test_gate_problems_names_what_breaks_the_argument(smarts: str, problem: str) -> None:
    problems = gate_problems([("bad", _rxn(smarts))])
    assert any(problem in p for p in problems), problems


def test_a_bad_unmasking_rule_turns_the_gate_off() -> None:
    from precursor_screen.rules.conversions import ConversionRule, RuleSet
    from precursor_screen.rules.masks import load_rules
    from precursor_screen.rules.synthesis import synthesis_rule_set

    shipped = load_rules()
    bad = ConversionRule(id="methylation", name="methylation", smarts="[OH:1]>>[O:1]C",
                         removes="", kind="unmask", rationale="test",
                         examples=(("CO", "COC"),), negatives=())
    unmask = RuleSet(tuple(shipped.rules) + (bad,), "test")
    off = DrugTargets(rules=synthesis_rule_set(unmask))
    assert off.gate is None and "makes a carbon" in off.gate_off
    # still correct, only slower
    std = standardize_smiles("CC(Br)C(=O)c1ccc(C)cc1")
    assert off.routes(std)[0].substance_id == "mephedrone"


def test_query_elements_are_read_from_the_query_tree() -> None:
    def elements(smarts: str) -> frozenset[int] | None:
        return atom_elements(Chem.MolFromSmarts(smarts).GetAtomWithIdx(0))

    assert elements("[CX3;!$(C-[!#6])]") == {6}
    assert elements("[Cl,Br,I]") == {17, 35, 53}
    assert elements("[OX2H1,OX1-]") == {8}
    assert elements("[$([NX3+](=O)[O-]),$([NX3](=O)=O)]") == {7}
    assert elements("[!#6]") is None
    assert elements("*") is None
    assert elements("[C,$(N=O)]") is None


def test_refined_skeleton_of_ghb_and_of_a_core() -> None:
    ghb = standardize_smiles("OCCCC(=O)O").mol
    assert refined_skeleton(ghb) == \
        "[#6;$(*~[!#6;!#1])]!:[#6]!:[#6]!:[#6;$(*~[!#6;!#1])]"
    sk = skeleton_from_smarts(GROUP_PRECURSOR_CORES["us-fentanyl-related-substances"])
    assert len(sk.atoms) == 6 and all(ring for *_x, ring in sk.bonds)


def test_transesterification_swaps_like_for_like_but_a_methylation_does_not() -> None:
    assert gate_problems([("t", _rxn("[C:1](=[O:2])-!@[OX2]-[#6;!$([CH3])]>>[C:1](=[O:2])OC"))]) == []
    assert gate_problems([("m", _rxn("[C:1](=[O:2])-!@[OX2H1]>>[C:1](=[O:2])OC"))])


def test_screener_pickles_for_spawned_workers() -> None:
    """Worker processes started with 'spawn' (macOS, Windows) receive the Screener pickled."""
    import pickle

    screener = Screener()
    copy = pickle.loads(pickle.dumps(screener))
    smiles = ["CC(Br)C(=O)c1ccc(C)cc1", "CC(=O)C(C#N)c1ccccc1", "CCO", "c1ccc(NC2CCNCC2)cc1"]
    assert [(v.flag, v.score, v.reason) for v in copy.screen(smiles)] == \
        [(v.flag, v.score, v.reason) for v in screener.screen(smiles)]


# -- phase B of issue 20: cheaper gates, same answers ---------------------------------------------

@pytest.mark.parametrize("smarts, aliphatic", [
    ("C", True), ("[C&H2:2]", True), ("[NH1]", True), ("[#6;A]", True), ("[C;!$(C=O)]", True),
    ("[$([CH3]),$([CH2][CH3]):4]", True), ("[CX4;R1;$(C1CC[NX3]CC1):3]", True),
    ("c", False), ("[#6]", False), ("a", False), ("[!C]", False), ("[C,c]", False),
    ("[#7:3]", False), ("[!a]", False), ("[$(C),$(c)]", False), ("*", False)])
def test_surely_aliphatic_reads_the_query(smarts: str, aliphatic: bool) -> None:
    assert surely_aliphatic(Chem.MolFromSmarts(smarts).GetAtomWithIdx(0)) is aliphatic


@pytest.mark.parametrize("smarts, aromatic", [
    ("c", True), ("[c:4]", True), ("[n&H1]", True), ("[#6;a]", True), ("a", True),
    ("[c,n]", True), ("[n&$(n1ccc2ccccc12):1]", True),
    ("C", False), ("[#6]", False), ("*", False), ("[C,c]", False), ("[!C]", False),
    ("[#7:3]", False)])
def test_surely_aromatic_reads_the_query(smarts: str, aromatic: bool) -> None:
    assert surely_aromatic(Chem.MolFromSmarts(smarts).GetAtomWithIdx(0)) is aromatic


@pytest.fixture(scope="module")
def screen_drugs() -> tuple[DrugTargets, RouteGate]:
    """The screen's drug stage (EU and UN lists: no drug family) and its gate built with the
    substrate cores of before (any bond at every reaction centre)."""
    drugs = Screener().drugs
    rules = drugs.rules
    forward = [(i, rxn) for i, rxn in rules.reactions() if i in rules.reagents]
    targets = [t.parent.mol for t in drugs.registry if t.parent is not None]
    return drugs, RouteGate(targets, [], forward, aliphatic=False)


def test_aliphatic_reaction_centres_make_a_tighter_gate(screen_drugs: tuple) -> None:
    """A bond at an aliphatic template atom is non-aromatic: a biaryl whose aromatic rings held
    the looser cores of amphetamines and methaqualone is no longer searched, and had no route."""
    drugs, loose = screen_drugs
    for smiles in ("Cc1nc(N)nc(N)c1-c1ccc(Cl)c(Cl)c1", "COc1ccc(-c2nnc(C)nc2-c2ccc(OC)cc2)cc1",
                   "O=C(c1ccccc1Nc1ccncc1)N1CCCCC1"):
        std = standardize_smiles(smiles)
        n = std.mol.GetNumHeavyAtoms()
        floor = flag_floor(n, 0.45, 10)
        assert loose.passes(std.mol, floor), smiles
        assert not drugs.gate.passes(std.mol, floor), smiles
        assert not [h for h in drugs.routes(std, gated=False) if h.score > 0], smiles


@pytest.mark.parametrize("smiles, drug", [
    ("CC(=O)Cc1ccccc1", "methamphetamine"),          # one reagent step
    ("CC1(Cc2ccccc2)OCCO1", "methamphetamine"),      # ketal hydrolysis, then the reagent
    ("CC(=NO)Cc1ccccc1", "amphetamine"),             # oxime hydrolysis, then the reagent
    ("COC(C)=Cc1ccccc1", "methamphetamine"),         # enol ether hydrolysis, then the reagent
    ("CC(=O)Nc1ccccc1C(=O)O", "methaqualone"),
    ("CCC(=O)c1ccc(C)cc1", "mephedrone"),            # two reagent steps
])
def test_the_tighter_gate_lets_masked_substrates_through(screen_drugs: tuple, smiles: str,
                                                         drug: str) -> None:
    drugs, _loose = screen_drugs
    std = standardize_smiles(smiles)
    floor = flag_floor(std.mol.GetNumHeavyAtoms(), 0.45, 10)
    assert drugs.gate.passes(std.mol, floor), smiles
    assert drug in {h.substance_id for h in drugs.routes(std, flag_only=True) if h.score > 0}


def test_the_tighter_gate_passes_only_what_the_looser_one_did(screen_drugs: tuple,
                                                              molecules: list) -> None:
    drugs, loose = screen_drugs
    rejected = 0
    for std in molecules:
        n = std.mol.GetNumHeavyAtoms()
        for floor in (0.0, flag_floor(n, 0.45, 10), 14):
            now, was = drugs.gate.passes(std.mol, floor), loose.passes(std.mol, floor)
            assert was or not now, std.smiles
            rejected += was and not now
        if loose.passes(std.mol) and not drugs.gate.passes(std.mol):
            assert drugs.routes(std, gated=False) == [], std.smiles
    assert rejected > 0


_BEARS = Chem.MolFromSmarts("[#6]~[!#6;!#1]")


def _reference_passes(gate: RouteGate, mol: Chem.Mol, min_size: float, unmask_only: bool
                      ) -> bool:
    """The gate's answer worked out query by query on a labelled copy (as before phase B)."""
    labelled_copy = Chem.Mol(mol)
    for c, _x in mol.GetSubstructMatches(_BEARS, uniquify=False, maxMatches=100_000):
        labelled_copy.GetAtomWithIdx(c).SetIsotope(1)     # bears a heteroatom
    if not unmask_only and any(mol.HasSubstructMatch(q) for q in gate.opening_queries):
        return True
    for g in gate._gates:
        if g.size < min_size:
            break
        if unmask_only and not g.unmask:
            continue
        if labelled_copy.HasSubstructMatch(g.query) and (
                g.own >= min_size
                or any(d.size >= min_size and (d.unmask or not unmask_only)
                       and labelled_copy.HasSubstructMatch(d.query) for d in g.dropped)):
            return True
    return False


def test_bundled_gates_answer_as_each_query_does(screen_drugs: tuple, molecules: list) -> None:
    """The gates ask their queries as RDKit bundles, on the molecule labelled in place: the
    same answers as each query asked in turn on a labelled copy, and the molecule unchanged."""
    drugs, _loose = screen_drugs
    screener = Screener()
    isotopes = [standardize_smiles(s) for s in ("[2H]C([2H])([2H])NC(C)Cc1ccccc1",
                                                "C[13C](=O)Cc1ccc2c(c1)OCO2")]
    for gate in (drugs.gate, screener._route_gate, screener._bulk_route_gate):
        assert gate is not None
        for std in molecules[::2] + isotopes:
            before = Chem.MolToSmiles(std.mol)
            n = std.mol.GetNumHeavyAtoms()
            for floor in (0.0, flag_floor(n, 0.45, 10), 14):
                assert gate.passes(std.mol, floor) == _reference_passes(
                    gate, std.mol, floor, False), std.smiles
                assert gate.unmask_ok(std.mol, floor) == _reference_passes(
                    gate, std.mol, floor, True), std.smiles
            assert Chem.MolToSmiles(std.mol) == before


@pytest.mark.parametrize("smarts, weaker", [
    ("[CX4;R1;$(C1CC[NX3]CC1):3]", "[CX4;R1:3]"),
    ("[N&X3&!$(N-[C,S]=[O,S,N])&!$(N-[!#6]):1]-&!@[C&X4;$([CH2]-c),$([CH1](-c)-c)]",
     "[N&X3:1]-&!@[C&X4]"),
    ("[C,$(N=O)]", "[*]"),                        # an OR holding a recursion goes whole
    ("[C,N&$(N=O)]", "[*]"),
    ("[O&X2&H1:1]-[#6;$(c1ccccc1),$(C1CCCCC1):2]", "[O&X2&H1:1]-[#6:2]"),
    ("c1ccccc1[C;!R]", "c1ccccc1[C;!R]"),        # nothing recursive: unchanged
])
def test_without_recursion_only_widens(smarts: str, weaker: str) -> None:
    assert without_recursion(smarts) == weaker
    full, loose = Chem.MolFromSmarts(smarts), Chem.MolFromSmarts(weaker)
    for smi in ("CN(Cc1ccccc1)C1CCN(C)CC1", "O=C1CCN(C)CC1", "Oc1ccccc1", "OC1CCCCC1", "CCN=O",
                "CC(=O)Nc1ccccc1", "CCCc1ccccc1C", "NCc1ccccc1"):
        mol = Chem.MolFromSmiles(smi)
        assert not mol.HasSubstructMatch(full) or mol.HasSubstructMatch(loose), smi


def test_shipped_unmasking_rules_keep_every_atoms_aromaticity(drugs: DrugTargets) -> None:
    """The route gates type their targets' atoms aromatic or not (`gates.Skeleton`) only where
    no unmasking rule can change an atom's aromaticity; a forward rule that closes an aromatic
    ring (the quinazolinone of methaqualone) is found, and its substrate cores type only the
    atoms its template types (`test_substrate_cores_type_what_the_template_types`)."""
    screener = Screener()
    assert aromatic_problems(screener.rules.reactions()) == []
    assert screener._route_gate.typed and screener._bulk_route_gate.typed and drugs.gate.typed
    forward = [(i, rxn) for i, rxn in drugs.rules.reactions() if i in drugs.rules.reagents]
    assert any(p.startswith("benzoxazinone-o-toluidine") for p in aromatic_problems(forward))
    cores = {skeleton_from_smarts(GROUP_PRECURSOR_CORES[g.id]) for g in drugs.groups}
    assert not any(core.typed for core in cores)
    assert any(g.skeleton in cores for g in drugs.gate.queries())   # kept as they are
    assert any(g.skeleton.typed for g in drugs.gate.queries())      # the drugs' own: typed


@pytest.mark.parametrize("smarts, problem", [
    ("[c:1]1[c:2][c:3][c:4][c:5][c:6]1>>[C:1]1[C:2][C:3][C:4][C:5][C:6]1", "made aliphatic"),
    ("[c:1]1[c:2][c:3][c:4]o1>>[C:1](=O)[C:2]=[C:3][C:4]=O", "by an aromatic bond"),
    ("[C:1](=O)-[n]1cccc1>>[C:1](=O)O", "is deleted"),          # no bridge to the kept part
    ("[C:1](=O)-!@[O]-c1ccccc1>>[C:1](=O)O", ""),               # the phenol comes off whole
    ("[n:1]-!@C(=O)C>>[n:1]", ""),                              # an N-acetyl off an indole
])
def test_aromatic_problems_find_rules_that_change_an_atoms_aromaticity(smarts: str,
                                                                      problem: str) -> None:
    found = aromatic_problems([("rule", _rxn(smarts))])
    assert (problem in " ".join(found)) if problem else found == []
    assert bool(found) == bool(problem)


def test_typed_gate_skips_an_aroyl_where_the_target_has_an_alkyl() -> None:
    """N-benzoylanthranilic acid holds N-acetylanthranilic acid's untyped skeleton (its phenyl
    carbon where the acetyl's methyl is) but no rule turns an aromatic carbon into a methyl:
    the typed gate skips it, the untyped one does not, and `check`, which searches everything,
    finds no conversion to flag."""
    screener = Screener()
    listed = [s.parent.mol for s in screener._organic if not screener._bulk(s)]
    untyped = RouteGate(listed, [], [], typed=False)
    for smiles in ("O=C(Nc1ccccc1C(=O)O)c1ccccc1", "O=C(Nc1ccccc1C(=O)OC)c1ccccc1"):
        std = standardize_smiles(smiles)
        assert untyped.passes(std.mol) and not screener._route_gate.passes(std.mol)
        assert screener._route_gate.passes(std.mol) == screener._route_gate.passes(
            std.mol, 0, std.smiles)
        assert screener.check(smiles).flag.value == "none"
    acetyl = standardize_smiles("CC(=O)Nc1ccccc1C(=O)OC")     # the methyl ester: searched
    assert screener._route_gate.passes(acetyl.mol, 0, acetyl.smiles)


def test_forward_rules_that_keep_the_skeleton_open_no_routes_of_their_own(
        screen_drugs: tuple) -> None:
    """A forward rule passing the unmasking rules' checks (an alcohol oxidized to its acid, a
    lactone opened, an indole's N-acyl off) keeps the skeleton, so a route beginning with it is
    gated by the drugs' skeletons: 1,4-butanediol and gamma-butyrolactone still reach GHB, and
    an alcohol holding no drug's skeleton is no longer searched (nor has an ungated route)."""
    drugs, _loose = screen_drugs
    gate = drugs.gate
    assert len(gate.opening_queries) < len(gate.forward_queries)
    for smiles in ("OCCCCO", "O=C1CCCO1"):
        std = standardize_smiles(smiles)
        assert gate.passes(std.mol) and not gate.opening_ok(std.mol)
        assert [h.substance_id for h in drugs.routes(std)] == ["ghb"]
    for smiles in ("OCCc1ccccc1", "OCc1ccc(Cl)cc1", "CCCCCCO", "CC(=O)n1ccc2ccccc21"):
        std = standardize_smiles(smiles)
        assert gate.forward_ok(std.mol) and not gate.passes(std.mol), smiles
        assert drugs.routes(std, gated=False) == [], smiles
    every = RouteGate([t.parent.mol for t in drugs.registry if t.parent is not None], [],
                      [(i, rxn) for i, rxn in drugs.rules.reactions()
                       if i in drugs.rules.reagents], typed=True, every_forward_opens=True)
    assert every.passes(standardize_smiles("OCCc1ccccc1").mol)


def test_substrate_cores_type_what_the_template_types(screen_drugs: tuple) -> None:
    """Methaqualone's substrate cores: the quinazolinone rule's template types every atom it
    names (the benzo ring aromatic, the methyl, both carbonyl carbons and the amide nitrogen
    aliphatic), the benzoxazinone rule's leaves its ring atoms untyped; the atoms outside the
    template stay untyped. 2-Acetamidocyclohexanecarboxylic acid holds the untyped core but
    not the typed one: skipped, and with no route ungated; N-acetylanthranilic acid, its methyl
    ester and 2-methylbenzoxazinone still pass and reach methaqualone."""
    drugs, _loose = screen_drugs
    methaqualone = next(t.parent.mol for t in drugs.registry if t.id == "methaqualone")
    rules = dict(drugs.rules.reactions())
    (quinazolinone,) = substrate_cores(methaqualone, rules["quinazolinone-o-toluidine"],
                                       typed=True)
    assert quinazolinone.atom_kinds().count("a") == 6
    assert set(quinazolinone.atom_kinds()) == {"a", "A"} and not quinazolinone.typed
    (benzoxazinone,) = substrate_cores(methaqualone, rules["benzoxazinone-o-toluidine"],
                                       typed=True)
    assert benzoxazinone.atom_kinds().count("a") == 6 and "" in benzoxazinone.atom_kinds()
    assert not any(core.kinds for core in substrate_cores(
        methaqualone, rules["quinazolinone-o-toluidine"]))       # typed=False: as before
    forward = [(i, rxn) for i, rxn in drugs.rules.reactions() if i in drugs.rules.reagents]
    targets = [t.parent.mol for t in drugs.registry if t.parent is not None]
    untyped = RouteGate(targets, [], forward, typed=False)
    for smiles in ("CC(=O)NC1CCCCC1C(=O)O", "CC(=O)NC1CCCCC1C(=O)OC"):
        std = standardize_smiles(smiles)
        assert untyped.passes(std.mol) and not drugs.gate.passes(std.mol)
        assert not drugs.gate.passes(std.mol, 0, std.smiles)       # the C matcher agrees
        assert drugs.routes(std, gated=False) == []
    for smiles in ("CC(=O)Nc1ccccc1C(=O)O", "CC(=O)Nc1ccccc1C(=O)OC", "CC1=Nc2ccccc2C(=O)O1"):
        std = standardize_smiles(smiles)
        assert drugs.gate.passes(std.mol, 0, std.smiles)
        assert "methaqualone" in {h.substance_id for h in drugs.routes(std) if h.score > 0}


def test_a_typed_test_atom_is_implied_only_by_one_typed_alike() -> None:
    """Pruning reads a skeleton's `rep` with a typed query's test form: an untyped atom (charged
    in `rep`) is matched by no typed test atom, a typed one only by its own kind."""
    plain = skeleton_from_smarts("[#6]~[#6]1~[#6]~[#6]~[#6]~[#6]~[#6]~1")
    aromatic = replace(plain, kinds=("",) + ("a",) * 6)
    aliphatic = replace(plain, kinds=("",) + ("A",) * 6)
    test = {sk: Chem.MolFromSmarts(sk.smarts(test=True)) for sk in (plain, aromatic, aliphatic)}
    assert plain.rep().HasSubstructMatch(test[plain])
    assert not plain.rep().HasSubstructMatch(test[aromatic])
    assert aromatic.rep().HasSubstructMatch(test[aromatic])
    assert aromatic.rep().HasSubstructMatch(test[plain])
    assert not aromatic.rep().HasSubstructMatch(test[aliphatic])
    assert not aliphatic.rep().HasSubstructMatch(test[aromatic])


def test_forward_first_at_the_size_floor(screen_drugs: tuple) -> None:
    """Where a candidate matches a forward rule's substrate and holds the skeleton or substrate
    core only of drugs too small to flag from it, the bulk screen's search begins with the
    forward rules alone (`RouteGate.plan` at the floor): a route beginning with an unmasking
    step can reach only those small drugs. The flagging routes are the full search's."""
    drugs, _loose = screen_drugs
    benzyl = standardize_smiles("O=C(CCC(=O)c1ccccc1)OCc1ccccc1")
    floor = flag_floor(benzyl.mol.GetNumHeavyAtoms(), 0.45, 10)
    assert drugs.gate.plan(benzyl.mol, floor, benzyl.smiles) == (True, True)
    assert drugs.gate.plan(benzyl.mol, 0, benzyl.smiles) == (True, False)
    for smiles in ("O=C(CCC(=O)c1ccccc1)OCc1ccccc1", "CCC(=O)c1ccc(C)cc1",
                   "CCCC(=O)c1ccc(N2CCN(C(=O)CC)CC2)c(F)c1", "CC(=O)OCCCC(=O)c1ccccc1"):
        std = standardize_smiles(smiles)
        flagging = [(h.substance_id, h.score, h.reason)
                    for h in drugs.routes(std, flag_only=True) if h.score > 0]
        assert flagging == [(h.substance_id, h.score, h.reason)
                            for h in drugs.routes(std, gated=False) if h.score > 0], smiles
    assert {h.substance_id for h in drugs.routes(standardize_smiles("CCC(=O)c1ccc(C)cc1"),
                                                  flag_only=True)} >= {"mephedrone"}
