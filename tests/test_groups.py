"""Designer-precursor groups: every shipped group against its own examples, broken files, pickling."""

from __future__ import annotations

import csv
import pickle
import tomllib
from pathlib import Path

import pytest
from rdkit import Chem

from precursor_screen.chem.standardize import standardize_smiles
from precursor_screen.errors import ReferenceFileError, ShippedDataError
from precursor_screen.rules.groups import (
    GROUP_FILE,
    STATUSES,
    Example,
    group_file_text,
    load_group_file,
    load_groups,
    shipped_group_files,
)

SHIPPED = [(f.name, load_groups(f)) for f in shipped_group_files()]  # type: ignore[arg-type]
GROUPS = load_groups()


def _example_cases() -> list[object]:
    cases = []
    for fname, groups in SHIPPED:
        for g in groups:
            for expected, examples in ((True, g.must_match), (False, g.must_not_match)):
                kind = "must_match" if expected else "must_not_match"
                for ex in examples:
                    cases.append(pytest.param(fname, g.id, ex, expected,
                                              id=f"{g.id}/{kind}/{ex.name[:60]}"))
    return cases


def test_the_main_group_file_is_shipped() -> None:
    assert GROUP_FILE in [name for name, _ in SHIPPED]
    assert len(GROUPS) == sum(len(gs) for _, gs in SHIPPED) >= 9


@pytest.mark.parametrize("fname, group_id, example, expected", _example_cases())
def test_group_examples(fname: str, group_id: str, example: Example, expected: bool) -> None:
    groups = dict(SHIPPED)[fname]
    parent = standardize_smiles(example.smiles)
    assert groups.is_member(parent, group_id) is expected
    assert (group_id in [g.id for g in groups.match(parent)]) is expected


@pytest.mark.parametrize("group_id", GROUPS.ids)
def test_every_shipped_group_is_complete(group_id: str) -> None:
    g = GROUPS[group_id]
    assert len(g.must_match) >= 4 and len(g.must_not_match) >= 4
    assert g.status in STATUSES and g.parents and g.rationale and g.title
    assert g.max_heavy_atoms is not None, "shipped groups choose a size limit"
    # the size limit must leave room for every real member
    assert all(standardize_smiles(e.smiles).mol.GetNumHeavyAtoms() <= g.max_heavy_atoms
               for e in g.must_match)


def test_parents_are_registry_ids() -> None:
    registry = pytest.importorskip("scheduled_substances")
    try:
        reg = registry.load_registry()
    except Exception as exc:  # registry file not there yet in this checkout
        pytest.skip(f"registry not loadable: {exc}")
    ids = {s.id for s in reg}
    for g in GROUPS:
        assert set(g.parents) <= ids, (g.id, sorted(set(g.parents) - ids))


def test_only_the_un_2024_families_are_adopted() -> None:
    # adopted = a legal act defines the group; the UN 2024 listings are closed enumerations
    assert {g.id for g in GROUPS if g.adopted} == {"bmk-glycidates-un-2024", "pmk-glycidates-un-2024"}


# --- matching --------------------------------------------------------------------------------------

def test_strawberry_aldehyde_is_in_no_group() -> None:
    assert GROUPS.match(standardize_smiles("CCOC(=O)C1OC1(C)c1ccccc1")) == []


def test_nested_glycidate_scopes() -> None:
    ids = lambda smi: [g.id for g in GROUPS.match(standardize_smiles(smi))]  # noqa: E731
    assert ids("CCOC(=O)C1(C)OC1c1ccccc1") == [
        "bmk-glycidates-un-2024", "bmk-pmk-glycidic-derivatives", "aryl-2-methylglycidates"]
    assert ids("CCCCCOC(=O)C1(C)OC1c1ccccc1") == ["bmk-pmk-glycidic-derivatives",
                                                  "aryl-2-methylglycidates"]
    assert ids("COC(=O)C1(C)OC1c1ccc(C)cc1") == ["aryl-2-methylglycidates"]


def test_exclusion_removes_finished_fentanyls_but_not_their_precursors() -> None:
    fentanyl = standardize_smiles("CCC(=O)N(c1ccccc1)C1CCN(CCc2ccccc2)CC1")
    anpp = standardize_smiles("c1ccc(CCN2CCC(Nc3ccccc3)CC2)cc1")
    group = GROUPS["anilinopiperidines"]
    assert group.exclusions
    # the core SMARTS alone would take fentanyl: only the exclusion keeps it out
    assert fentanyl.mol.HasSubstructMatch(Chem.MolFromSmarts(group.smarts[0]))
    assert not GROUPS.is_member(fentanyl, group)
    assert GROUPS.is_member(anpp, group)


def test_matching_atoms_cover_the_motif() -> None:
    apaan = standardize_smiles("CC(=O)C(C#N)c1ccccc1.Cl")
    assert apaan.smiles == "CC(=O)C(C#N)c1ccccc1"
    atoms = GROUPS.matching_atoms(apaan, "alpha-acetyl-arylacetic-derivatives")
    # CH3, C=O, CH, the aryl's ipso carbon and the nitrile carbon: atoms inside a recursive
    # $(...) are described, not matched, so the rest of the ring and the N are not listed
    assert sorted(atoms) == [0, 1, 2, 3, 4, 6]
    # a member of another group has no atoms for this one
    assert GROUPS.matching_atoms(standardize_smiles("O=C1CCNCC1"), "anilinopiperidines") == ()
    with pytest.raises(KeyError, match="no group"):
        GROUPS.matching_atoms(apaan, "no-such-group")


def test_match_takes_a_mol_or_a_standardized() -> None:
    st = standardize_smiles("CC(=Cc1ccccc1)[N+](=O)[O-]")
    assert GROUPS.match(st) == GROUPS.match(st.mol) == [GROUPS["masked-aryl-2-propanones"]]


# --- user files, exclusions, size limits ----------------------------------------------------------

USER_GROUP = """
[aryl-propanones-draft]
title = "Aryl-2-propanones other than BMK"
parents = ["bmk"]
smarts = ['[CH3]C(=O)[CH2]c1ccccc1']
exclusions = ['[CH3]C(=O)[CH2]c1[cH][cH][cH][cH][cH]1']  # BMK itself is a registry match
max_heavy_atoms = 14
status = "draft"
rationale = "Ring-substituted phenylacetones."
must_match = ['CC(=O)Cc1ccc(C)cc1 4-methylphenylacetone', 'CC(=O)Cc1ccc(OC)cc1 4-methoxyphenylacetone']
must_not_match = ['CC(=O)Cc1ccccc1 BMK (excluded)', 'CC(=O)Cc1ccc(OCc2ccccc2)cc1 4-benzyloxyphenylacetone (too large)']
"""


def _write(tmp_path: Path, text: str, name: str = "my_groups.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_user_group_file_with_exclusion_and_size_limit(tmp_path: Path) -> None:
    groups = load_group_file(_write(tmp_path, USER_GROUP))
    g = groups["aryl-propanones-draft"]
    assert g.source.endswith("my_groups.toml") and g.exclusions and g.max_heavy_atoms == 14
    assert groups.is_member(standardize_smiles("CC(=O)Cc1ccc(F)cc1"), g)
    assert not groups.is_member(standardize_smiles("CC(=O)Cc1ccccc1"), g)  # exclusion
    big = standardize_smiles("CC(=O)Cc1ccc(OCc2ccccc2)cc1")
    assert big.mol.HasSubstructMatch(Chem.MolFromSmarts(g.smarts[0]))
    assert not groups.is_member(big, g)  # size limit
    merged = GROUPS.merged(groups)
    assert len(merged) == len(GROUPS) + 1 and merged.ids[-1] == "aryl-propanones-draft"


def test_user_file_whose_examples_fail_names_group_and_example(tmp_path: Path) -> None:
    text = USER_GROUP.replace("'CC(=O)Cc1ccccc1 BMK (excluded)'", "'CC(=O)Cc1ccc(Cl)cc1 4-chloro'")
    path = _write(tmp_path, text)
    with pytest.raises(ReferenceFileError, match=r"my_groups\.toml \[aryl-propanones-draft\]: "
                                                 r"must_not_match '4-chloro'"):
        load_group_file(path)
    assert len(load_group_file(path, check_examples=False)) == 1


def test_user_file_cannot_reuse_a_shipped_id(tmp_path: Path) -> None:
    text = USER_GROUP.replace("[aryl-propanones-draft]", "[anilinopiperidines]")
    user = load_group_file(_write(tmp_path, text), check_examples=False)
    with pytest.raises(ReferenceFileError, match=r"anilinopiperidines.*groups\.toml.*my_groups\.toml"):
        GROUPS.merged(user)


BROKEN = [
    pytest.param("smarts = ['[CH3]C(=O)[CH2]c1ccccc1']", "smarts = ['[CH3]C(=O']", "smarts 1 does not parse",
                 id="bad SMARTS"),
    pytest.param("exclusions = ['[CH3]C(=O)[CH2]c1[cH][cH][cH][cH][cH]1']", "exclusions = ['c1cc']",
                 "exclusion 1 does not parse", id="bad exclusion"),
    pytest.param('rationale = "Ring-substituted phenylacetones."\n', "", "missing field rationale",
                 id="missing field"),
    pytest.param('status = "draft"', 'status = "final"', "unknown status 'final'", id="unknown status"),
    pytest.param('status = "draft"', 'status = "draft"\nsmart = "C"', "unknown field smart",
                 id="unknown field"),
    pytest.param("max_heavy_atoms = 14", 'max_heavy_atoms = "14"', "max_heavy_atoms must be",
                 id="bad max_heavy_atoms"),
    pytest.param('parents = ["bmk"]', 'parents = ["BMK"]', "parents must be registry ids",
                 id="parent not a slug"),
    pytest.param('parents = ["bmk"]', "parents = []", "parents must not be empty", id="no parents"),
    pytest.param("must_match = [", "must_match = 3 #[", "must_match must be a list", id="bad examples"),
]


@pytest.mark.parametrize("old, new, message", BROKEN)
def test_broken_group_file_fails_loudly_naming_file_and_group(tmp_path: Path, old: str, new: str,
                                                               message: str) -> None:
    assert old in USER_GROUP
    text = USER_GROUP.replace(old, new, 1)
    if new.startswith("must_match = 3"):  # drop the rest of the original list line
        text = "\n".join(ln if not ln.startswith("must_match = 3") else "must_match = 3"
                         for ln in text.splitlines())
    path = _write(tmp_path, text, "groups_broken.toml")
    with pytest.raises(ShippedDataError) as shipped:
        load_groups(path)
    assert str(shipped.value).startswith("groups_broken.toml [aryl-propanones-draft]: ")
    assert message in str(shipped.value)
    with pytest.raises(ReferenceFileError) as user:
        load_group_file(path)
    assert str(path) in str(user.value) and "[aryl-propanones-draft]" in str(user.value)


@pytest.mark.parametrize("text, message", [
    pytest.param("[a-group\ntitle = 1", "not valid TOML", id="bad TOML"),
    pytest.param("", "no groups defined", id="empty"),
    pytest.param('title = "no table"', "[title]: expected a table", id="not a table"),
    pytest.param(USER_GROUP.replace("[aryl-propanones-draft]", '["Aryl Propanones"]'),
                 "[Aryl Propanones]: group id must be a lowercase slug", id="bad id"),
])
def test_broken_file_structure(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ShippedDataError, match="groups_broken.toml") as exc:
        load_groups(_write(tmp_path, text, "groups_broken.toml"))
    assert message in str(exc.value)


def test_missing_user_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ReferenceFileError, match="nope.toml: no such group file"):
        load_group_file(tmp_path / "nope.toml")


def test_shipped_file_is_valid_toml_with_literal_chemistry_strings() -> None:
    # every example and SMARTS round-trips through TOML unchanged (no escape sequences eaten)
    for f in shipped_group_files():
        data = tomllib.loads(f.read_text(encoding="utf-8"))
        for gid, table in data.items():
            g = GROUPS[gid]
            smarts = table["smarts"] if isinstance(table["smarts"], list) else [table["smarts"]]
            assert tuple(s.strip() for s in smarts) == g.smarts


# --- pickling ---------------------------------------------------------------------------------------

def test_pickle_round_trip() -> None:
    clone = pickle.loads(pickle.dumps(GROUPS))
    assert clone == GROUPS and clone.ids == GROUPS.ids
    for g in GROUPS:
        assert pickle.loads(pickle.dumps(g)) == g
        for ex in g.must_match:
            parent = standardize_smiles(ex.smiles)
            assert clone.match(parent) == GROUPS.match(parent)
            assert clone.matching_atoms(parent, g.id) == GROUPS.matching_atoms(parent, g.id)


def test_groupset_in_a_worker_process() -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # a fresh interpreter: the GroupSet really crosses over
    mols = [standardize_smiles(s).mol for s in ("c1ccc(NC2CCNCC2)cc1", "CCOC(=O)CC(C)=O")]
    with ctx.Pool(1) as pool:
        got = pool.map(GROUPS.match, mols)
    assert [[g.id for g in gs] for gs in got] == [["anilinopiperidines"], []]


def test_a_written_group_file_keeps_jurisdiction_and_date(tmp_path: Path) -> None:
    """Adopted groups written back as a group file (as `group draft` writes) keep who defined them
    and from when, so a screen filters them as it filters the shipped ones."""
    adopted = [g for g in load_groups() if g.in_force is not None]
    assert adopted
    path = tmp_path / "adopted.toml"
    path.write_text(group_file_text(adopted), encoding="utf-8")
    back = list(load_group_file(path))
    assert [(g.id, g.jurisdiction, g.in_force) for g in back] == \
        [(g.id, g.jurisdiction, g.in_force) for g in adopted]


def test_guarded_queries_match_as_the_queries_do() -> None:
    """Each group query holding a recursive SMARTS is asked only when its form without them
    matches (issue 20, phase B): the same members and the same matched atoms as asking every
    query, on every example of every shipped group and on the evaluation sets."""
    groups = load_groups()
    smiles = [ex.smiles for g in groups for ex in (*g.must_match, *g.must_not_match)]
    evaluation = Path(__file__).resolve().parents[1] / "evaluation"
    for name in ("designer_precursors.tsv", "near_misses.tsv", "legitimate.tsv", "masks.tsv"):
        with open(evaluation / name, newline="", encoding="utf-8") as fh:
            smiles += [row["smiles"] for row in csv.DictReader(fh, delimiter="\t")]
    guarded = 0
    for g in groups:
        compiled = groups._compiled[g.id]
        guarded += sum(x is not None for x in compiled.guards)
    assert guarded > 0
    members = 0
    for smi in smiles:
        try:
            mol = standardize_smiles(smi).mol
        except Exception:  # noqa: BLE001 - an example that cannot be standardized is skipped
            continue
        for g in groups:
            compiled = groups._compiled[g.id]
            expected: tuple[int, ...] = ()
            if g.max_heavy_atoms is None or mol.GetNumHeavyAtoms() <= g.max_heavy_atoms:
                for query in compiled.queries:
                    atoms = mol.GetSubstructMatch(query)
                    if atoms:
                        if not any(mol.HasSubstructMatch(x) for x in compiled.exclusions):
                            expected = tuple(atoms)
                        break
            assert groups.matching_atoms(mol, g) == expected, (smi, g.id)
            members += bool(expected)
    assert members > 50
