"""`group draft`: scaffolds, generalization as data, texts held against SMARTS, group files that
load everywhere, measures, bad input, the command and its report.

Families are real (``evaluation/families.tsv``: UN 2024 glycidate listings, the China 2024
phenylacetoacetate listing, DEA 4-AP and 4-piperidone class listings, COM(2025) 747 cathinone
precursors). The held-out measurement itself is ``evaluation/evaluate_drafting.py``; here each
family is drafted from its drafting half and every candidate is checked.
"""

from __future__ import annotations

import csv
import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from rdkit import Chem

from precursor_screen.chem.standardize import standardize_smiles
from precursor_screen.cli import cli
from precursor_screen.io.readers import Record
from precursor_screen.rules.groups import GroupSet, load_group_file
from precursor_screen.rules.substituents import class_matches, load_substituents
from precursor_screen.survey import LibraryIndex, build_index
from precursor_screen.survey.definition import DRAFT_LABEL, HYDROGEN
from precursor_screen.survey.draft import BUNDLED, DraftError, Knowledge, draft_groups
from precursor_screen.survey.groupcheck import library_capture
from precursor_screen.survey.scaffold import cluster, find_scaffold

ROOT = Path(__file__).resolve().parents[1]
TABLE = load_substituents()
FAMILIES: dict[str, list[dict[str, str]]] = {}
with open(ROOT / "evaluation" / "families.tsv", encoding="utf-8") as _fh:
    for _r in csv.DictReader(_fh, delimiter="\t", quoting=csv.QUOTE_NONE):
        FAMILIES.setdefault(_r["family"], []).append(_r)
TESTED = ("bmk-glycidates", "phenylacetoacetates", "anilinopiperidines", "bromopropiophenones",
          "propiophenones", "piperidones")


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return Knowledge()


@pytest.fixture(scope="module")
def drafts(knowledge: Knowledge) -> dict[str, object]:
    out = {}
    for name in TESTED:
        rows = [(r["id"], r["smiles"]) for r in FAMILIES[name] if r["half"] == "draft"]
        out[name] = draft_groups(rows, knowledge=knowledge)
    return out


def _std(smiles: str) -> Chem.Mol:
    return standardize_smiles(smiles).mol


# ---------------------------------------------------------------------- the data


def test_every_class_member_matches_and_no_outsider_does() -> None:
    for c in TABLE:
        for s in TABLE.members(c.id):
            assert class_matches(c, s.smiles), f"{s.id} ({s.smiles}) not in class {c.id}"
        for smi in c.not_members:
            assert not class_matches(c, smi), f"{smi} matches class {c.id}"
        assert TABLE.members(c.id) or c.not_members, c.id


def test_class_tokens_and_wordings_are_distinct() -> None:
    tokens = {c.id: c.token() for c in TABLE}
    for a, ta in tokens.items():
        for b, tb in tokens.items():
            assert a == b or ta not in tb, f"{a}'s SMARTS is part of {b}'s"
    words = [(c.id, w) for c in TABLE for w in {c.wording, *dict(c.wording_on).values()}]
    for a, w in words:           # no class's wording is found in another class's wording
        assert not [b for b, x in words if b != a and _mentions(x, w)], w


def test_named_substituents_are_their_class_and_keyed() -> None:
    assert TABLE.named("*C(=O)OC(C)(C)C").id == "tert-butoxycarbonyl"
    assert TABLE.named("*1OCCO1").cls == "dioxolane"
    assert TABLE.named("*OCO*").cls == "methylenedioxy"
    assert TABLE.named("*CCCCCCC") is None


# ---------------------------------------------------------------------- scaffolds


def test_ester_alkyls_leave_the_scaffold() -> None:
    mols = [_std(s) for s in ("CC1(C(=O)O)OC1c1ccccc1", "CCOC(=O)C1(C)OC1c1ccccc1",
                              "CC(C)(C)OC(=O)C1(C)OC1c1ccccc1")]
    sc, why = find_scaffold(mols)
    assert not why and sc.smiles() == "CC1(C(=O)O)OC1c1ccccc1"
    keys = [[a.key for a in atts] for atts in sc.attachments]
    assert keys == [[], ["*CC"], ["*C(C)(C)C"]]
    assert len({a.positions for atts in sc.attachments for a in atts}) == 1  # one position


def test_nitrile_ester_amide_are_one_position_on_the_carbon() -> None:
    mols = [_std(s) for s in ("CC(=O)C(C#N)c1ccccc1", "COC(=O)C(C(C)=O)c1ccccc1",
                              "CC(=O)C(C(N)=O)c1ccccc1")]
    sc, _ = find_scaffold(mols)
    assert sc.smiles() == "CC(=O)Cc1ccccc1"
    assert [a.key for atts in sc.attachments for a in atts] == ["*C#N", "*C(=O)OC", "*C(N)=O"]


def test_spiro_ketal_is_one_group_bonded_twice() -> None:
    mols = [_std(s) for s in ("O=C1CCNCC1", "C1CC2(CCN1)OCCO2", "COC1(OC)CCNCC1")]
    sc, _ = find_scaffold(mols)
    ketal = [a for a in sc.attachments[1]]
    assert [a.key for a in ketal] == ["*1OCCO1"] and ketal[0].neighbours == (2,)
    assert sorted(a.key for a in sc.attachments[2]) == ["*OC", "*OC"]


def test_families_are_clustered() -> None:
    smis = [r["smiles"] for f in ("bmk-glycidates", "anilinopiperidines") for r in FAMILIES[f]][::2]
    groups = cluster([_std(s) for s in smis])
    assert sorted(len(g) for g in groups) == [5, 6]


# ---------------------------------------------------------------------- candidates


def _candidates(drafts: dict) -> list:
    return [(name, c) for name, r in drafts.items() for c in r.candidates()]


def test_every_candidate_covers_its_examples_and_leaves_out_its_negatives(drafts: dict) -> None:
    for name, c in _candidates(drafts):
        gs = GroupSet([c.group])
        assert not gs.check_examples(), (name, c.group.id)
        assert c.measures.examples_covered == c.measures.examples == len(c.group.must_match)
        assert c.group.must_not_match and c.group.parents and c.group.status == "draft"


def test_best_candidate_has_no_bundled_collateral_and_ranks_first_among_those(drafts) -> None:
    for name, r in drafts.items():
        fam = r.families[0]
        best = fam.best
        assert best is not None, name
        assert best.measures.bundled_collateral == 0
        assert [c.rank for c in fam.candidates] == list(range(1, len(fam.candidates) + 1))
        assert all(c.measures.bundled_collateral > 0 for c in fam.candidates[:best.rank - 1])


@pytest.mark.parametrize("family", TESTED)
def test_best_candidate_covers_the_held_out_half(drafts: dict, family: str) -> None:
    gs = GroupSet([f.best.group for f in drafts[family].families])
    held = [r for r in FAMILIES[family] if r["half"] == "held-out"]
    covered = [r["id"] for r in held
               if any(gs.is_member(standardize_smiles(r["smiles"]), g) for g in gs)]
    assert len(covered) >= 0.8 * len(held), (family, covered)


def test_a_scaffold_neighbour_never_stands_for_a_group(knowledge: Knowledge) -> None:
    """The N-methyl of the scaffold is not 'a C1-C4 alkyl group on the nitrogen': an N-benzoyl
    methamphetamine (benzoyl is in no class) stays out of every candidate."""
    rows = [(r["id"], r["smiles"]) for r in FAMILIES["n-protected-amphetamines"]
            if r["half"] == "draft"]
    r = draft_groups(rows, knowledge=knowledge)
    benzoyl = _std("CC(Cc1ccccc1)N(C)C(=O)c1ccccc1")
    ethyl = _std("CCN(C)C(C)Cc1ccccc1")           # N-ethyl-methamphetamine: alkyl on N
    broad = next(c for c in r.candidates() if c.level == "broad")
    gs = GroupSet([broad.group])
    assert len(broad.group.smarts) > 1                  # the chain positions written out
    assert not gs.is_member(benzoyl, broad.group) and gs.is_member(ethyl, broad.group)
    for c in r.candidates():
        assert not GroupSet([c.group]).is_member(benzoyl, c.group), c.group.id


def test_unsubstituted_legitimate_scaffold_is_excepted_by_name(drafts: dict) -> None:
    fam = drafts["propiophenones"].families[0]
    best = fam.best
    assert best.definition.excluded and "excluding Propiophenone (CCC(=O)c1ccccc1)" in best.text
    gs = GroupSet([best.group])
    assert not gs.is_member(_std("CCC(=O)c1ccccc1"), best.group)
    assert gs.is_member(_std("CCC(=O)c1ccc(Br)c(Cl)c1"), best.group)   # ring-substituted


def test_text_names_parent_positions_and_is_labelled_a_draft(drafts: dict) -> None:
    for name, c in _candidates(drafts):
        assert c.text.startswith(DRAFT_LABEL)
        parent = drafts[name].families[0].parents[0]
        assert f"[{parent.id}]" in c.text and parent.name in c.text
        for clause in c.definition.clauses():
            assert clause in c.text
        assert c.text.endswith("and their salts and stereoisomers.")


# Every class named in a clause is in the SMARTS, and every class in the SMARTS is named: the
# SMARTS is read back token by token (each class enters it as its recursive atom $(...), several
# groups on one atom as the branches of one), the clauses word by word.


def _tokens(smarts: str) -> list[str]:
    """Every top-level recursive atom $(...) of a SMARTS, with balanced parentheses."""
    out, i = [], 0
    while (i := smarts.find("$(", i)) >= 0:
        depth, j = 0, i + 1
        while True:
            depth += {"(": 1, ")": -1}.get(smarts[j], 0)
            if depth == 0:
                break
            j += 1
        out.append(smarts[i:j + 1])
        i = j + 1
    return out


def _branches(token: str) -> list[str]:
    """'$(*(-A)(-B)-C)' -> ['-A', '-B', '-C'] (the branches of one scaffold atom)."""
    body, out, i = token[3:-1], [], 0
    while i < len(body) and body[i] == "(":
        depth, j = 0, i
        while True:
            depth += {"(": 1, ")": -1}.get(body[j], 0)
            if depth == 0:
                break
            j += 1
        out.append(body[i + 1:j])
        i = j + 1
    return out + ([body[i:]] if body[i:] else [])


def _classes_in_smarts(smarts: str) -> set[str]:
    """Classes whose SMARTS the group SMARTS carries: as a recursive atom on a scaffold atom, as
    the explicit atom of a group beside a chain atom (rooted at the group), or as a branch of a
    scaffold atom carrying several groups."""
    by_token = {c.token(): c.id for c in TABLE} | {c.rooted(): c.id for c in TABLE if c.single}
    by_branch = {"-!@" + c.smarts[2:]: c.id for c in TABLE if c.single}
    found = set()
    for tok in _tokens(smarts):
        if tok in by_token:
            found.add(by_token[tok])
        elif tok.startswith("$(*("):
            found |= {by_branch[b] for b in _branches(tok) if b in by_branch}
    return found


def _mentions(text: str, words: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(words)}(?![\w-])", text) is not None


def _classes_in_clauses(definition) -> set[str]:  # noqa: ANN001
    found = set()
    for pos, clause in zip(definition.positions, definition.clauses()):
        for c in TABLE:
            if _mentions(clause, c.words(pos.kind)):
                found.add(c.id)
    return found


def test_classes_in_text_equal_classes_in_smarts(drafts: dict) -> None:
    checked = 0
    for name, c in _candidates(drafts):
        in_smarts = set().union(*(_classes_in_smarts(x) for x in c.group.smarts))
        in_text = _classes_in_clauses(c.definition)
        assert in_text == in_smarts, (name, c.group.id, in_text ^ in_smarts)
        checked += bool(in_smarts)
    assert checked >= 10


def _single(s) -> bool:  # noqa: ANN001
    return s.attachments == 1 and TABLE.cls(s.cls).neighbours == 1


def test_each_position_matches_exactly_the_classes_its_clause_names(drafts: dict) -> None:
    """Put every named single-bond substituent of the table on each position of each candidate:
    a member iff its class (or the group itself) is named in that position's clause."""
    tried = 0
    for name, c in _candidates(drafts):
        d = c.definition
        if any(not p.hydrogen for p in d.positions):
            continue                      # no bare background to put one group on
        gs = GroupSet([c.group])
        for pos in d.positions:
            if pos.span != 1:
                continue
            named = {ch.id for ch in pos.choices if ch.kind in ("class", "named")}
            clause = d.clauses()[d.positions.index(pos)]
            for sub in TABLE.substituents.values():
                if not _single(sub):
                    continue
                core = Chem.MolFromSmiles(d.scaffold.smiles({pos.atoms[0]: 1}))
                frag = Chem.MolFromSmiles(sub.smiles.replace("*", "[1*]", 1))
                params = Chem.MolzipParams()
                params.label = Chem.MolzipLabel.Isotope
                try:
                    mol = Chem.molzip(core, frag, params)
                    Chem.SanitizeMol(mol)
                except (ValueError, RuntimeError):
                    continue              # valence: this group cannot sit there
                expected = sub.cls in named or sub.id in named
                got = gs.is_member(standardize_smiles(Chem.MolToSmiles(mol)), c.group)
                assert got == expected, (name, c.group.id, pos.label, sub.id, clause)
                exact = {ch.id for ch in pos.choices if ch.kind == "named"}
                assert got == (_mentions(clause, TABLE.cls(sub.cls).words(pos.kind))
                               or (sub.id in exact and _mentions(clause, sub.name))), (
                    c.group.id, sub.id, clause)
                tried += 1
    assert tried > 200


# ---------------------------------------------------------------------- group files


def test_group_file_loads_with_its_examples_checked(drafts: dict, tmp_path: Path) -> None:
    for name, r in drafts.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(r.toml(header=["test"]), encoding="utf-8")
        loaded = load_group_file(path)          # must_match / must_not_match checked here
        assert loaded.ids == tuple(c.group.id for c in r.candidates())
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for c in r.candidates():
            g = loaded[c.group.id]
            assert (g.smarts, g.exclusions, g.parents, g.max_heavy_atoms) == (
                c.group.smarts, c.group.exclusions, c.group.parents, c.group.max_heavy_atoms)
            assert DRAFT_LABEL in data[c.group.id]["rationale"]


def test_toml_strings_survive_hostile_names(knowledge: Knowledge, tmp_path: Path) -> None:
    r = draft_groups([("it's \"odd\" \\ name", "CCOC(=O)C1(C)OC1c1ccccc1"),
                      ("b", "CC1(C(=O)O)OC1c1ccccc1")], knowledge=knowledge)
    path = tmp_path / "odd.toml"
    path.write_text(r.toml(), encoding="utf-8")
    g = load_group_file(path)[r.candidates()[0].group.id]
    assert g.must_match[0].name == "it's \"odd\" \\ name"


# ---------------------------------------------------------------------- measures


def test_library_capture_equals_group_check(knowledge: Knowledge, tmp_path: Path) -> None:
    lib_rows = ["CCCCOC(=O)C1(C)OC1c1ccccc1", "CCCCCCCCOC(=O)C1(C)OC1c1ccccc1",
                "CC1(C(=O)[O-])OC1c1ccccc1.[Na+]", "CC1(C(=O)O)OC1c1ccccc1",
                "CCOC(=O)C1OC1(C)c1ccccc1", "CCO", "c1ccccc1", "C1CC", "COC(=O)C1(C)OC1c1ccccc1"]
    build_index((Record(i, f"L{i}", s) for i, s in enumerate(lib_rows)), tmp_path / "lib.idx",
                shard_size=4)
    library = LibraryIndex(tmp_path / "lib.idx")
    r = draft_groups(["CCOC(=O)C1(C)OC1c1ccccc1", "CC(C)OC(=O)C1(C)OC1c1ccccc1"],
                     knowledge=knowledge, library=library, library_examples=2)
    seen = set()
    for c in r.candidates():
        n, distinct, found = library_capture(GroupSet([c.group]), c.group, library, 2)
        assert (c.measures.library, c.measures.library_distinct) == (n, distinct)
        assert [x.row for x in c.measures.caught if x.set == "library"] == [f[0] for f in found]
        seen.add(n)
    assert len(seen) > 1 and max(seen) >= 4     # the tight and the broad candidates differ


def test_measures_count_predicted_members_and_collateral(drafts: dict) -> None:
    fam = drafts["anilinopiperidines"].families[0]
    assert fam.parents[0].id == "4-ap" and fam.predicted
    broad = next(c for c in fam.candidates if c.level == "broad")
    seen = next(c for c in fam.candidates if c.level == "seen")
    assert len(broad.measures.predicted_covered) > len(seen.measures.predicted_covered)
    assert dict(broad.measures.set_sizes)[BUNDLED] > 1000
    assert "DP070" in broad.measures.designer_covered          # 1-Cbz-4-AP, never an example


# ---------------------------------------------------------------------- bad input


def test_fewer_than_two_usable_examples(knowledge: Knowledge) -> None:
    with pytest.raises(DraftError, match="at least two usable examples, got 1.*unparsable"):
        draft_groups(["CCOC(=O)C1(C)OC1c1ccccc1", "C1CC"], knowledge=knowledge)
    with pytest.raises(DraftError, match="got 0.*bulk chemical on the list"):
        draft_groups(["Cc1ccccc1", "CC(C)=O"], knowledge=knowledge)


def test_no_common_scaffold(knowledge: Knowledge) -> None:
    with pytest.raises(DraftError, match="no common scaffold"):
        draft_groups(["CCCCCCCCCC(=O)NCCO", "c1ccc2c(c1)[nH]c1ccccc12"], knowledge=knowledge)


def test_every_row_is_accounted_for(knowledge: Knowledge) -> None:
    given = ["CCOC(=O)C1(C)OC1c1ccccc1", "not smiles", "CC(=O)Oc1ccccc1C(=O)O",
             "CCOC(=O)C1(C)OC1c1ccccc1", "CC1(C(=O)O)OC1c1ccccc1", "CCCCCCCCCC(=O)NCCO",
             "c1ccc(NC2CCNCC2)cc1", "Fc1ccc(NC2CCNCC2)cc1", ""]
    r = draft_groups(given, knowledge=knowledge)
    assert [e.row for e in r.examples] == list(range(len(given)))
    status = {e.row: e.status for e in r.examples}
    assert status[1].startswith("unparsable") and "legitimate chemical" in status[2]
    assert status[3] == "left out: the same structure as row 0"
    assert "shares no scaffold" in status[5] and status[8]
    assert len(r.families) == 2                                 # glycidates and 4-APs
    assert {e.family for e in r.examples if e.status == "ok"} == {1, 2}
    ids = [c.group.id for c in r.candidates()]
    assert len(set(ids)) == len(ids) and any("-f2-" in i for i in ids)


def test_named_parent(knowledge: Knowledge) -> None:
    r = draft_groups(["CCOC(=O)C1(C)OC1c1ccccc1", "CC1(C(=O)O)OC1c1ccccc1"], parent="BMK",
                     knowledge=knowledge)
    assert r.families[0].parents[0].id == "bmk"
    assert all(c.group.parents == ("bmk",) for c in r.candidates())
    with pytest.raises(Exception, match="neither a listed substance nor a controlled drug"):
        draft_groups(["CCOC(=O)C1(C)OC1c1ccccc1", "CC1(C(=O)O)OC1c1ccccc1"], parent="nothing",
                     knowledge=knowledge)


# ---------------------------------------------------------------------- the command


def test_cli_draft_check_screen_enumerate(tmp_path: Path) -> None:
    ex = tmp_path / "seized.smi"
    ex.write_text("CC(Br)C(=O)c1ccc(C)cc1 s1\nCC(Br)C(=O)c1cccc(Cl)c1 s2\nC1CC broken\n"
                  "CC(Br)C(=O)c1ccc(F)cc1 s3\n", encoding="utf-8")
    out, report = tmp_path / "draft.toml", tmp_path / "draft.html"
    runner = CliRunner()
    res = runner.invoke(cli, ["group", "draft", str(ex), "COc1ccc(C(=O)C(C)Br)cc1",
                              "-o", str(out), "--report", str(report)])
    assert res.exit_code == 0, res.stderr
    assert "4 of 5 example rows used" in res.stderr and "row 2 (broken): unparsable" in res.stderr
    groups = load_group_file(out)
    best = groups.ids[0]
    html = report.read_text(encoding="utf-8")
    assert "default-src 'none'" in html and "<script" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert html.count('class="chart"') == len(groups) and "not legal advice" in html
    assert ">R1<" in html or "R1" in html
    res = runner.invoke(cli, ["group", "check", str(out), "--no-default-legit"])
    assert res.exit_code == 0, res.stderr
    member = tmp_path / "m.smi"
    member.write_text("CC(Br)C(=O)c1ccc(I)cc1 iodo\nCCO ethanol\n", encoding="utf-8")
    res = runner.invoke(cli, ["screen", str(member), "--no-groups", "--groups", str(out)])
    assert res.exit_code == 0, res.stderr
    rows = list(csv.DictReader(res.stdout.splitlines()))
    assert len(rows) == 2
    res = runner.invoke(cli, ["check", "CC(Br)C(=O)c1ccc(I)cc1", "--groups", str(out),
                              "--no-groups", "--json"])
    assert res.exit_code == 0 and best in res.stdout
    res = runner.invoke(cli, ["check", "CC(Br)C(=O)c1ccc(I)cc1", "--no-groups", "--json"])
    assert res.exit_code == 0 and best not in res.stdout
    res = runner.invoke(cli, ["enumerate", "mephedrone", "--groups", str(out)])
    assert res.exit_code == 0, res.stderr
    assert "draft-" in res.stdout           # the draft covers some of the pre-precursors


def test_screen_flags_group_only_with_the_draft(knowledge: Knowledge, tmp_path: Path) -> None:
    # a family nothing else flags (cyclohexylmethyl 4-halobenzoates): only the draft can
    draft = tmp_path / "d.toml"
    r = draft_groups(["O=C(OCC1CCCCC1)c1ccc(F)cc1", "O=C(OCC1CCCCC1)c1ccc(Cl)cc1"],
                     knowledge=knowledge)
    assert r.families[0].parents[0].relation == "similar"     # no route: said so
    draft.write_text(r.toml(), encoding="utf-8")
    smi = tmp_path / "x.smi"
    smi.write_text("O=C(OCC1CCCCC1)c1ccc(Br)cc1 bromo\nCCO ethanol\n", encoding="utf-8")
    runner = CliRunner()
    without = runner.invoke(cli, ["screen", str(smi), "--no-groups"])
    with_ = runner.invoke(cli, ["screen", str(smi), "--no-groups", "--groups", str(draft)])
    shipped_too = runner.invoke(cli, ["screen", str(smi), "--groups", str(draft)])
    assert without.exit_code == with_.exit_code == shipped_too.exit_code == 0
    a, b, c = (list(csv.DictReader(x.stdout.splitlines())) for x in (without, with_,
                                                                     shipped_too))
    assert len(a) == len(b) == len(c) == 2
    assert a[0]["flag"] == "none" and b[0]["flag"] == c[0]["flag"] == "group"
    assert b[0]["group_id"] == r.candidates()[0].group.id
    assert b[1]["flag"] == "none"


def test_cli_usage_and_runtime_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["group", "draft", "missing.smi", "CCO"])
    assert res.exit_code == 2 and "does not exist" in res.stderr
    res = runner.invoke(cli, ["group", "draft", "CCOC(=O)C1(C)OC1c1ccccc1"])
    assert res.exit_code == 1 and "at least two usable examples" in res.stderr
    res = runner.invoke(cli, ["group", "draft", "CCOC(=O)C1(C)OC1c1ccccc1", "CCC",
                              "--id-prefix", "Bad Prefix"])
    assert res.exit_code == 2


def test_text_uses_hydrogen_word_only_where_allowed(drafts: dict) -> None:
    for _, c in _candidates(drafts):
        for pos, clause in zip(c.definition.positions, c.definition.clauses()):
            assert (f" is {HYDROGEN}" in clause) == pos.hydrogen


# ---------------------------------------------------------------------- evaluation data


@pytest.mark.parametrize("name", ["families.tsv", "legitimate_hard.tsv"])
def test_evaluation_structures_match_their_inchikeys(name: str) -> None:
    with open(ROOT / "evaluation" / name, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows
    keys = set()
    for r in rows:
        mol = Chem.MolFromSmiles(r["smiles"])
        assert mol is not None and Chem.MolToInchiKey(mol) == r["inchikey"], r["id"]
        assert r["source"] and r["inchikey"] not in keys, r["id"]
        keys.add(r["inchikey"])
    if name == "families.tsv":
        for family, members in FAMILIES.items():
            halves = [m["half"] for m in members]
            assert halves == ["draft" if i % 2 == 0 else "held-out" for i in range(len(halves))]
            assert len(members) >= 8, family
