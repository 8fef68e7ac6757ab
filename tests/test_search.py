"""Every substructure answer of SubstructureIndex against a full RDKit HasSubstructMatch scan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rdkit import Chem

from precursor_screen.chem.fingerprint import get_recipe
from precursor_screen.search import substructure as search_module
from precursor_screen.search.substructure import (
    QueryError,
    SubstructureIndex,
    atom_difference,
)
from precursor_screen.search.tanimoto import IndexFileError

DATA = Path(__file__).parent / "data" / "molecules.smi"

SMARTS = [
    pytest.param("[CH3]C(=O)[CH2]a", id="methyl benzyl ketone"),
    pytest.param("c1ccc2OCOc2c1", id="methylenedioxyphenyl"),
    pytest.param("[CH3]C1(C(=O)[OX2])OC1c1ccccc1", id="glycidate"),
    pytest.param("[NX3;H2,H1;!$(NC=O)]C(C)Cc1ccccc1", id="amphetamine amine"),
    pytest.param("O=C1CCNCC1", id="4-piperidone"),
    pytest.param("[N+](=O)[O-]", id="nitro"),
    pytest.param("C#N", id="nitrile"),
    pytest.param("[OH]c", id="phenol"),
    pytest.param("[C;$(C(=O)[OH])]", id="recursive acid carbon"),
    pytest.param("[Cl,Br,I]", id="atom list"),
    pytest.param("[r5]", id="ring size"),
    pytest.param("[R2]", id="ring count"),
    pytest.param("C@C", id="ring bond"),
    pytest.param("C-,=C", id="bond list"),
    pytest.param("[#6]1~[#6]~[#6]~[#6]~[#6]~[#6]~1", id="any six-ring"),
    pytest.param("c:c", id="aromatic bond"),
    pytest.param("*", id="any atom"),
    pytest.param("[!#6;!#1]", id="heteroatom"),
    pytest.param("[#6]~[#6]~[#6]~[#6]~[#6]~[#6]~[#6]~[#6]~[#6]", id="long chain"),
    pytest.param("[C@H](N)(C)Cc1ccccc1", id="chiral query, chirality ignored"),
    pytest.param("[Na+]", id="ion"),
    pytest.param("[U]", id="matches nothing"),
    pytest.param("[#1]", id="explicit hydrogen"),
]

EXTRA_QUERIES = ["c1ccccc1", "C(=O)O", "N", "CCN", "c1ccc2OCOc2c1", "C", "O", "[Na+]",
                 "C[C@H](N)Cc1ccccc1", "CC(=O)Cc1ccccc1", "Clc1ccccc1", "[O-][N+](=O)C"]


@pytest.fixture(scope="module")
def mols():
    return [Chem.MolFromSmiles(line.split("\t")[0]) for line in DATA.read_text().splitlines()]


@pytest.fixture(scope="module", params=[("rows", True), ("slices", False), ("rows", False),
                                        ("slices", True)],
                ids=["rows-kept", "slices-trusted", "rows-trusted", "slices-kept"])
def index(request, mols):
    """Both screen layouts: packed rows (a reference list) and bit slices (a large library);
    molecules kept in memory, or matched from trusted SMILES by RDKit's SubstructLibrary."""
    layout, keep = request.param
    before = search_module.BIT_SLICE_ROWS
    search_module.BIT_SLICE_ROWS = 0 if layout == "slices" else 10**9
    try:
        built = SubstructureIndex(mols, keep_molecules=keep)
    finally:
        search_module.BIT_SLICE_ROWS = before
    assert built.layout == layout
    return built


@pytest.fixture(scope="module")
def queries(mols):
    """Query molecules with the full-scan answers: (query, containing, contained_in)."""
    chosen = mols[::4] + [Chem.MolFromSmiles(s) for s in EXTRA_QUERIES]
    return [(q, scan_containing(mols, q), scan_contained_in(mols, q)) for q in chosen]


def scan_containing(mols, query):
    return [i for i, m in enumerate(mols) if m.HasSubstructMatch(query, useChirality=False)]


def scan_contained_in(mols, query):
    return [i for i, m in enumerate(mols) if query.HasSubstructMatch(m, useChirality=False)]


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def threads(request):
    return request.param


@pytest.fixture(params=[8, 10**9], ids=["gather-late", "gather-at-once"])
def gather(request, monkeypatch):
    monkeypatch.setattr(search_module, "_GATHER_BELOW", request.param)


@pytest.mark.parametrize("pattern", SMARTS)
def test_smarts_equals_full_scan(mols, index, pattern):
    index.threads = 2   # SubstructLibrary's threads, where the index matches through it
    query = Chem.MolFromSmarts(pattern)
    expected = scan_containing(mols, query)
    assert index.smarts(pattern) == expected
    assert set(expected) <= set(index.screen_containing(query).tolist())


def test_containing_equals_full_scan(index, queries, threads, gather):
    index.threads = threads
    for query, expected, _ in queries:
        assert index.containing(query) == expected, Chem.MolToSmiles(query)


def test_contained_in_equals_full_scan(index, queries, gather):
    for query, _, expected in queries:
        assert index.contained_in(query) == expected, Chem.MolToSmiles(query)


def test_relations_is_both(index, queries):
    for query, containing, contained_in in queries[::5]:
        assert index.relations(query) == (containing, contained_in)
        # the screen's pattern words can be computed once and reused by the caller
        words = index.pattern_words(query)
        assert index.relations(query, words) == (containing, contained_in)


def test_screen_prunes(mols, index):
    # The screen is the point: a specific query leaves few rows to match.
    query = Chem.MolFromSmiles("CC(=O)Cc1ccc2OCOc2c1")
    assert len(index.screen_containing(query)) < len(mols) // 10
    assert len(index.screen_contained_in(query)) < len(mols) // 4


def test_built_from_smiles_equals_built_from_mols(mols, index):
    smiles = [Chem.MolToSmiles(m) for m in mols[:50]]
    by_smiles = SubstructureIndex(smiles)
    for pattern in ("c1ccccc1", "[#7]", "C=O"):
        assert by_smiles.smarts(pattern) == [r for r in index.smarts(pattern) if r < 50]
    assert Chem.MolToSmiles(by_smiles.mol(7)) == smiles[7]


def test_bad_inputs():
    with pytest.raises(ValueError, match="row 1: unparsable SMILES"):
        SubstructureIndex(["CCO", "C1CC"])
    with pytest.raises(ValueError, match="row 0: no molecule"):
        SubstructureIndex([None])
    index = SubstructureIndex(["CCO"])
    with pytest.raises(QueryError, match="unparsable SMARTS"):
        index.smarts("C(")
    with pytest.raises(QueryError, match="RDKit molecule"):
        index.containing(None)
    with pytest.raises(ValueError, match="needs a pattern fingerprint"):
        SubstructureIndex(["CCO"], recipe=get_recipe("morgan2"))
    with pytest.raises(ValueError, match="ids for"):
        SubstructureIndex(["CCO"], ids=["a", "b"])


@pytest.mark.parametrize("slice_from", [0, 10**9])
def test_empty_index(monkeypatch, slice_from):
    monkeypatch.setattr(search_module, "BIT_SLICE_ROWS", slice_from)
    index = SubstructureIndex([])
    assert index.smarts("C") == []
    assert index.contained_in(Chem.MolFromSmiles("CCO")) == []


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("slice_from", [0, 10**9])
def test_save_load_round_trip(tmp_path, mols, monkeypatch, mmap, slice_from):
    monkeypatch.setattr(search_module, "BIT_SLICE_ROWS", slice_from)
    named = SubstructureIndex(mols[:60], ids=[f"m{i}" for i in range(60)])
    target = named.save(tmp_path / "sub")
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["count"] == 60 and manifest["recipe"]["kind"] == "pattern"
    loaded = SubstructureIndex.load(target, mmap=mmap)
    assert loaded.ids.tolist() == [f"m{i}" for i in range(60)]
    for pattern in ("c1ccccc1", "[#7]", "C=O", "*"):
        assert loaded.smarts(pattern) == named.smarts(pattern)
    query = Chem.MolFromSmiles("CNC(C)Cc1ccc2OCOc2c1")
    assert loaded.contained_in(query) == named.contained_in(query)
    (target / "natoms.npy").unlink()
    with pytest.raises(IndexFileError, match="natoms.npy"):
        SubstructureIndex.load(target)


def test_memory(index, mols):
    # 256 bytes of pattern bits per molecule, its atom count, its SMILES and their offset
    smiles_bytes = sum(len(Chem.MolToSmiles(m)) for m in mols)
    screen_rows = len(mols) if index.layout == "rows" else -(-len(mols) // 64) * 64  # padded
    assert index.nbytes == screen_rows * 256 + len(mols) * (4 + 8) + 8 + smiles_bytes


ATOM_DIFFERENCES = [
    pytest.param("CCC(=O)Cc1ccccc1", "CC(=O)Cc1ccccc1", 1, id="ethyl for methyl"),
    pytest.param("CC(=O)Cc1ccccc1.Cl", "CC(=O)Cc1ccccc1", 1, id="counts every fragment"),
    pytest.param("CC(=O)Cc1ccccc1", "CC(=O)Cc1ccccc1", 0, id="same"),
    pytest.param("[2H]C([2H])([2H])C(=O)Cc1ccccc1", "CC(=O)Cc1ccccc1", 0,
                 id="deuterium is not a heavy atom"),
]


@pytest.mark.parametrize("big, small, added", ATOM_DIFFERENCES)
def test_atom_difference(big, small, added):
    assert atom_difference(Chem.MolFromSmiles(big), Chem.MolFromSmiles(small)) == added
