"""The C matcher of simple queries gives RDKit's answer, exactly: the route gates' skeletons and
the rule engines' relaxed substrate screens.

Every molecule of the golden corpus (examples, every evaluation molecule, 5,000 MOSES) and the
registries, standardized as the screen does, is asked every query of the screen's three route
gates both ways, and the gates' verdicts are compared at several size floors, on the molecules
and on the intermediates of their searches, where the rule screens are compared too. ``benchmarks/verify_fastgate.py`` does the same on
MOSES.
"""

from __future__ import annotations

import pickle

import pytest
from rdkit import Chem

from precursor_screen.chem import fastpattern
from precursor_screen.rules.fastgate import QuerySet, _skeleton_query, _spec, query_parts
from precursor_screen.rules.gates import GateSet, Skeleton, flag_floor, labelled
from precursor_screen.screen import Screener


@pytest.fixture(scope="module")
def screener() -> Screener:
    return Screener()


@pytest.fixture(scope="module")
def gates(screener: Screener) -> list:
    return [gate for gate in (screener._route_gate, screener._bulk_route_gate, screener.drugs.gate)
            if gate is not None]


@pytest.fixture(scope="module")
def parents(corpus_parents: list) -> list:
    return corpus_parents


def test_the_c_matcher_is_on_where_the_extension_is_built(gates: list) -> None:
    assert len(gates) == 3
    for gate in gates:
        assert gate.fast.on == fastpattern.fast_path(2048)
        assert gate.fast.size == len(gate.queries()) == \
            len(gate._gates) + sum(len(g.dropped) for g in gate._gates)


def test_same_answer_as_rdkit_for_every_query(gates: list, parents: list) -> None:
    # off only where pip had no C compiler (test_fastpattern asserts it is built where it can be)
    assert gates[0].fast.on or fastpattern._patternfp is None
    if not gates[0].fast.on:
        pytest.skip("the C extension is not built here: the gates ask RDKit")
    tests = matched = unread = 0
    for std in parents:
        for gate in gates:
            found = gate.fast.matches(std.mol, std.smiles)
            if found is None:
                unread += 1
                continue
            with labelled(std.mol):
                for k, g in enumerate(gate.queries()):
                    slow = std.mol.HasSubstructMatch(g.query)
                    assert bool(found >> k & 1) == slow, (std.smiles, k)
                    tests += 1
                    matched += slow
    assert len(parents) > 6000 and tests > 1_000_000
    assert matched > 5_000                   # the queries do match, often (8,024 times)
    assert unread < 0.01 * len(parents) * len(gates)


def test_same_verdicts_on_molecules_and_search_intermediates(screener: Screener, gates: list,
                                                             parents: list) -> None:
    assert screener.rules._screens_fast.on == fastpattern.fast_path(2048)
    checked = screened = 0
    for std in parents[::10]:
        forms = [std]
        for rules in (screener.rules, screener.drugs.rules):
            forms += [p for r in rules.apply(std) if (p := rules.product(r.product)) is not None]
        for form in forms:
            mol, n = form.mol, form.mol.GetNumHeavyAtoms()
            for gate in gates:
                for floor in (0, flag_floor(n, 0.45, 10), 14, 20):
                    assert gate.passes(mol, floor, form.smiles) == gate.passes(mol, floor), \
                        form.smiles
                    assert gate.unmask_ok(mol, floor, form.smiles) == gate.unmask_ok(mol, floor), \
                        form.smiles
                assert gate.forward_only(mol, form.smiles) == gate.forward_only(mol)
                assert gate.forward_ok(mol, form.smiles) == gate.forward_ok(mol), form.smiles
                for floor in (0, flag_floor(n, 0.45, 10)):
                    assert gate.plan(mol, floor, form.smiles) == \
                        (gate.passes(mol, floor), gate.forward_only(mol)), form.smiles
            # the rule engines' relaxed substrate screens, asked at every step of a search
            for rules in (screener.rules, screener.drugs.rules):
                found = rules._screens_fast.matches(mol, form.smiles)
                if found is None:
                    continue
                for k, screen in enumerate(rules._fast_screens):
                    assert bool(found >> k & 1) == mol.HasSubstructMatch(screen), \
                        (form.smiles, Chem.MolToSmarts(screen))
                    screened += 1
            checked += 1
    assert checked > 2500 and screened > 250_000


def test_forward_templates_ask_rdkit_only_what_their_needs_allow(screener: Screener,
                                                                 parents: list) -> None:
    """The drug gate's forward test (`gates.ForwardTest`): the C matcher answers what each
    recursive template implies, RDKit is asked only the templates all of whose needs are met,
    with the same answers."""
    forward = screener.drugs.gate._forward
    assert forward.needs.fast.on == fastpattern.fast_path(2048)
    guarded = len(forward._guarded)
    assert guarded >= 5      # the templates with recursive SMARTS
    asked = read = matched = 0
    for std in parents:
        found = forward.needs.found(std.mol, std.smiles)
        answer = forward(std.mol, std.smiles)
        assert answer == forward(std.mol), std.smiles
        matched += answer
        if found is not None:
            read += 1
            asked += sum(forward.needs.may_match(found, k)
                         for k in range(forward._first_guarded, len(forward.needs.masks)))
    assert matched > 300
    if forward.needs.fast.on:
        assert read > 0.99 * len(parents)
        assert asked < 0.25 * read * guarded      # most are never asked of RDKit
    copy = pickle.loads(pickle.dumps(forward))
    assert copy.needs.fast.on == forward.needs.fast.on and copy.needs.masks == forward.needs.masks


def test_a_query_matches_only_where_its_needs_are_found(screener: Screener,
                                                       parents: list) -> None:
    """`gates.QueryNeeds` is sound: wherever RDKit finds a query (a rule's template, a
    protecting group's, a forward template, a group definition), the C matcher found every
    need of it (its relaxed form with neighbour counts, the patterns its recursive SMARTS
    demand); so leaving out the queries whose needs are missing leaves out no match."""
    sets = [screener.rules._recursion_needs, screener.rules._protecting_needs,
            screener.drugs.gate._forward.needs, screener.groups._query_needs()]
    assert all(needs.fast.on == fastpattern.fast_path(2048) for needs in sets)
    matches = skipped = 0
    for std in parents[::2]:
        for needs in sets:
            found = needs.found(std.mol, std.smiles)
            if found is None:
                continue
            for k, query in enumerate(needs.queries):
                if std.mol.HasSubstructMatch(query):
                    assert needs.may_match(found, k), (std.smiles, Chem.MolToSmarts(query))
                    matches += 1
                else:
                    skipped += not needs.may_match(found, k)
    assert matches > 2000 and skipped > 100_000


def test_protecting_groups_counted_alike_with_and_without_the_c_path(screener: Screener,
                                                                     parents: list) -> None:
    rules = screener.rules
    assert rules._protecting_needs.fast.on == fastpattern.fast_path(2048)
    counted = 0
    for std in parents:
        n = rules.protecting_group_atoms(std.mol, std.smiles)
        assert n == rules.protecting_group_atoms(std.mol), std.smiles
        # whether one comes off now, without running the reactions (the drug stage's question)
        assert rules.has_protecting_groups(std.mol, std.smiles) == (n > 0), std.smiles
        counted += n > 0
    assert counted > 50       # Boc, Cbz, trityl, silyl ... forms in the corpus (97)
    assert rules._protecting_deletes     # every mask's template deletes a heavy atom


def test_what_the_reader_does_not_know_goes_to_rdkit(gates: list) -> None:
    gate = gates[-1]
    for smiles in ("*CCc1ccccc1", "C1CC2CC1C2"):
        mol = Chem.MolFromSmiles(smiles)
        written = Chem.MolToSmiles(mol)
        if smiles.startswith("*"):
            assert gate.fast.matches(mol, written) is None
        assert gate.passes(mol, 0, written) == gate.passes(mol, 0)
    assert gate.fast.matches(Chem.MolFromSmiles("CCO"), None) is None   # no SMILES: RDKit


def test_a_pickled_gate_keeps_its_c_matcher(gates: list, parents: list) -> None:
    gate = gates[-1]
    copy = pickle.loads(pickle.dumps(gate))
    assert copy.fast.on == gate.fast.on
    for std in parents[:300]:
        assert copy.fast.matches(std.mol, std.smiles) == gate.fast.matches(std.mol, std.smiles)
        assert copy.passes(std.mol, 0, std.smiles) == gate.passes(std.mol, 0)


def test_a_query_it_cannot_take_turns_the_set_off() -> None:
    """A disconnected skeleton has no matching order, a recursive SMARTS is not read: the whole
    set is left to RDKit."""
    apart = Skeleton(((6, False, False), (7, False, False)), ())
    assert _spec(*_skeleton_query(apart)) is None
    assert not QuerySet.of_skeletons([apart], lambda mol: 0).on
    assert query_parts(Chem.MolFromSmarts("[C;$(C=O)]N")) is None
    assert not QuerySet.of_queries([Chem.MolFromSmarts("CN"),
                                    Chem.MolFromSmarts("[#6;R2]~[#7]")]).on
    joined = Skeleton(((6, False, True), (7, False, False)), ((0, 1, "!:", False),))
    atoms, bonds = _spec(*_skeleton_query(joined))
    assert atoms[:8] == bytes((1, 7, 0, 0, 0, 0, 255, 0))   # the nitrogen first: the rarer label
    assert atoms[8:] == bytes((1, 6, 0, 0, 0, 1, 255, 0))   # then the carbon bearing a heteroatom
    # typed (`gates.Skeleton`): an atom with no aromatic bond must not be aromatic
    typed = Skeleton(joined.atoms, joined.bonds, typed=True)
    atoms, _bonds = _spec(*_skeleton_query(typed))
    assert atoms[7] == atoms[15] == 1
    # a substrate core types atoms one by one (`Skeleton.kinds`): aromatic 2, aliphatic 1
    cored = Skeleton(joined.atoms, joined.bonds, kinds=("a", "A"))
    atoms, _bonds = _spec(*_skeleton_query(cored))
    assert (atoms[7], atoms[15]) == (1, 2)
    core_query = Chem.MolFromSmarts(cored.smarts())
    assert QuerySet.of_skeletons([cored], lambda mol: int(mol.HasSubstructMatch(core_query))).on \
        == fastpattern.fast_path(2048)
    # at most so many neighbours: "D0,...,Dk" as the C matcher reads it
    atoms, _bonds = query_parts(Chem.MolFromSmarts("[#6;D0,D1,D2]-[#8;D0,D1]"))
    assert [a[2] for a in atoms] == [2, 1]
    assert query_parts(Chem.MolFromSmarts("[#6;D2,D3]")) is None     # not "at most"
    assert len(bonds) == 4
    # the start-up check: a set is on only where it gives RDKit's answers on the check molecules
    query = Chem.MolFromSmarts(joined.smarts())
    assert QuerySet.of_skeletons([joined], lambda mol: int(mol.HasSubstructMatch(query))).on == \
        fastpattern.fast_path(2048)
    assert not QuerySet.of_skeletons([joined], lambda mol: 2).on      # a difference: off


@pytest.mark.parametrize("smarts", [
    "[#6]-&!@[#7]", "[#8]=[#6]-&!@[#8]", "[#17,#35,#53]-[#6]-[#6]-[#8]", "[#8]1-[#6]~[#6]-1",
    "[#6](-&@[#8])-&@[#8]", "*-&!@[#6]=[#8]", "[#6]1:[#6]:[#6]:[#6]:[#6]:[#6]:1", "[#6][#7]",
    "[#6]@[#6]!:[#8]", "[#7]#[#6]-[#6]-[#8]", "[#9,#17,#35,#53]-[#6]"])
def test_simple_queries_as_rdkit_reads_them(smarts: str, parents: list) -> None:
    """query_parts reads the rule screens' and group gates' kinds of SMARTS; the answers are
    RDKit's on the corpus."""
    query = Chem.MolFromSmarts(smarts)
    assert query_parts(query) is not None, smarts
    fast = QuerySet.of_queries([query])
    assert fast.on == fastpattern.fast_path(2048)
    hits = 0
    for std in parents[::3]:
        found = fast.matches(std.mol, std.smiles)
        if found is not None:
            assert bool(found) == std.mol.HasSubstructMatch(query), (smarts, std.smiles)
            hits += bool(found)
    assert hits > 0


def test_screen_verdicts_are_the_same_with_every_c_query_off(monkeypatch: pytest.MonkeyPatch,
                                                             parents: list) -> None:
    """End to end: the screen's verdicts (flag, score, reason, every kept hit) on the corpus
    with the C matcher answering its query sets, and with RDKit answering everything (each
    `QuerySet` then says it cannot: the gates, rule screens and needs fall back)."""
    from precursor_screen.io.readers import Record

    sample = [Record(i, str(i), std.smiles) for i, std in enumerate(parents[::4])]
    assert len(sample) > 1500
    fast = Screener(repeats=0)
    with_c = list(fast.screen(sample))
    assert fast._route_gate.fast.on == fastpattern.fast_path(2048)
    monkeypatch.setattr(QuerySet, "matches", lambda self, mol, smiles, only=None: None)
    without_c = list(Screener(repeats=0).screen(sample))
    flagged = 0
    for a, b in zip(with_c, without_c, strict=True):
        assert (a.status, a.flag, a.score, a.reason, a.hits) == \
            (b.status, b.flag, b.score, b.reason, b.hits), a.input_smiles
        flagged += a.flag.value != "none"
    assert flagged > 40       # flagged rows among them (65)


def test_neighbour_bounds_are_not_applied_to_molecules_with_hydrogen_atoms(
        screener: Screener, monkeypatch: pytest.MonkeyPatch) -> None:
    """RDKit counts a deuterium written [2H] among an atom's neighbours (D) and its hydrogens
    (H): ``[C&X4&H2]`` matches a CD2 group that "at most two neighbours" would miss. A query set
    with such bounds leaves those molecules to RDKit; one without (the gates) still answers."""
    from precursor_screen.chem.standardize import standardize_smiles

    d2 = standardize_smiles("[2H]C([2H])(O)c1ccc(CC(C)=O)cc1")
    assert d2.mol.HasSubstructMatch(Chem.MolFromSmarts("[C&X4&H2]-[O&X2&H1]"))
    assert not d2.mol.HasSubstructMatch(Chem.MolFromSmarts("[#6;D0,D1,D2]-[#8;D0,D1]"))
    rules = screener.rules
    assert rules._screens_fast.matches(d2.mol, d2.smiles) is None
    assert rules._recursion_needs.found(d2.mol, d2.smiles) is None
    assert (screener._route_gate.fast.matches(d2.mol, d2.smiles) is not None) == \
        screener._route_gate.fast.on
    plain = standardize_smiles("OCc1ccc(CC(C)=O)cc1")
    assert (rules._screens_fast.matches(plain.mol, plain.smiles) is not None) == \
        rules._screens_fast.on
    routes = [r.product for r in rules.apply(d2)]
    assert routes
    monkeypatch.setattr(QuerySet, "matches", lambda self, mol, smiles, only=None: None)
    assert [r.product for r in rules.apply(d2)] == routes


def test_the_listed_substances_gates_in_one_call_answer_as_each_does(screener: Screener,
                                                                    parents: list) -> None:
    """`GateSet`: the screen's typed gate, its untyped one (containment) and its bulk one in
    one call of the C matcher give each gate's own answer, at the screen's floors and others;
    a gate with forward rules (the drugs') is refused, and where the C matcher cannot answer
    (no SMILES) the screen asks each gate."""
    trio = screener._gate_set
    assert trio is not None and trio.fast.on == fastpattern.fast_path(2048)
    if not trio.fast.on:
        pytest.skip("the C extension is not built here: each gate asks RDKit")
    passed, unread = [0, 0, 0], 0
    for std in parents[:3000]:
        own = std.mol.GetNumHeavyAtoms()
        bulk = screener._bulk_floor(own)
        for floor in (flag_floor(own, 0.45, 10), 0.0, 14.0):
            answers = trio.holds(std.mol, std.smiles, (floor, floor, bulk))
            if answers is None:        # a SMILES the reader does not know: RDKit answers
                unread += 1
                continue
            assert answers == tuple(g.passes(std.mol, f, std.smiles) for g, f in
                                    zip(trio.gates, (floor, floor, bulk))), std.smiles
            passed = [p + a for p, a in zip(passed, answers)]
    assert all(passed) and passed[0] < passed[1]      # the untyped gate passes more
    assert unread < 0.01 * 3 * 3000
    assert trio.holds(parents[0].mol, None, (0.0, 0.0, 0.0)) is None
    with pytest.raises(ValueError):
        GateSet([screener.drugs.gate])
