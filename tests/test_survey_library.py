"""The library index: every row kept, every search answer equal to a plain RDKit scan.

The library is small and generated (the shipped designer precursors and legitimate chemicals,
the list's structures, analogues with one substituent, and junk rows), cut into several shards so
every merge across shards is exercised. Oracles: BulkTanimotoSimilarity on fingerprints RDKit
makes from the stored SMILES, HasSubstructMatch over every stored molecule.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from rdkit import Chem, DataStructs

from precursor_screen.chem.fingerprint import get_recipe
from precursor_screen.io.readers import Record, read_records
from precursor_screen.reference import builtin_registry
from precursor_screen.search.substructure import QueryError
from precursor_screen.survey import LibraryIndex, LibraryIndexError, build_index
from precursor_screen.survey.sets import load_designer_precursors, load_legitimate

JUNK = ["C1CC", "", "c1ccccc1N(=O)=O=O", "[Xx]", "C" * 300, "CC(=O)Cc1ccccc1.[Na+].[Cl-]"]
SUBSTITUENTS = ["C", "F", "Cl", "OC", "C(=O)O", "N"]
SMARTS = ["[CH3]C(=O)[CH2]c", "c1ccc2OCOc2c1", "[CH3]C1(C(=O)[OX2])OC1c1ccccc1", "C#N",
          "[r5]", "[NX3;H2,H1;!$(NC=O)]C(C)Cc1ccccc1", "[U]", "[N+](=O)[O-]"]


def library_smiles() -> list[str]:
    """~1,000 molecules plus junk, in a fixed order."""
    base = [c.smiles for c in load_designer_precursors()]
    base += [c.smiles for c in load_legitimate()[::3]]
    base += [s.smiles for s in builtin_registry().structures()]
    out = list(base)
    for smi in base[:150]:
        mol = Chem.MolFromSmiles(smi)
        if mol is None or mol.GetNumHeavyAtoms() > 30:
            continue
        for i, sub in enumerate(SUBSTITUENTS[:2]):
            site = next((a.GetIdx() for a in mol.GetAtoms()
                         if a.GetIsAromatic() and a.GetTotalNumHs() and a.GetIdx() % 2 == i), None)
            if site is None:
                continue
            rw = Chem.RWMol(Chem.CombineMols(mol, Chem.MolFromSmiles(sub)))
            rw.AddBond(site, mol.GetNumAtoms(), Chem.BondType.SINGLE)
            try:
                Chem.SanitizeMol(rw)
            except Exception:  # noqa: BLE001 - an analogue RDKit refuses: skip it
                continue
            out.append(Chem.MolToSmiles(rw))
    return out[:700] + JUNK + out[700:]


def write_smi(path: Path, smiles: list[str], prefix: str = "M") -> Path:
    """A .smi file; an empty SMILES is an empty line (its id is then its row number)."""
    path.write_text("smiles id\n" + "".join(f"{s} {prefix}{i}\n" if s else "\n"
                                            for i, s in enumerate(smiles)), encoding="utf-8")
    return path


def records(path: Path) -> list[Record]:
    return list(read_records(str(path)))


@pytest.fixture(scope="module")
def smiles() -> list[str]:
    return library_smiles()


@pytest.fixture(scope="module")
def smi_file(tmp_path_factory: pytest.TempPathFactory, smiles: list[str]) -> Path:
    return write_smi(tmp_path_factory.mktemp("lib") / "library.smi", smiles)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, smi_file: Path) -> Path:
    out = tmp_path_factory.mktemp("idx") / "library.idx"
    build_index(records(smi_file), out, shard_size=256, inputs=[str(smi_file)])
    return out


@pytest.fixture(scope="module")
def library(index_dir: Path) -> LibraryIndex:
    return LibraryIndex(index_dir)


@pytest.fixture(scope="module")
def table(library: LibraryIndex) -> dict[str, list]:
    import pyarrow as pa

    return pa.concat_tables(list(library.iter_tables())).to_pydict()


@pytest.fixture(scope="module")
def rdkit_fps(table: dict[str, list]) -> dict[int, DataStructs.ExplicitBitVect]:
    recipe = get_recipe("morgan2")
    return {row: recipe.bitvect(Chem.MolFromSmiles(smi))
            for row, smi, status in zip(table["row"], table["smiles"], table["status"])
            if status == "ok"}


# -- building ------------------------------------------------------------------------------------


def test_rows_out_equal_rows_in(library: LibraryIndex, table: dict[str, list],
                                smiles: list[str]) -> None:
    assert len(library) == len(smiles) == len(table["row"])
    assert table["row"] == list(range(len(smiles)))
    assert table["id"] == [f"M{i}" if s else str(i) for i, s in enumerate(smiles)]
    assert table["input_smiles"] == smiles
    assert len(library.shards) == -(-len(smiles) // 256)
    assert library.indexed == sum(s == "ok" for s in table["status"])


def test_bad_rows_are_recorded_with_their_reason(table: dict[str, list]) -> None:
    status = dict(zip(table["input_smiles"], table["status"]))
    assert status["C1CC"].startswith("unparsable SMILES")
    assert status[""].startswith("empty")
    assert status["[Xx]"].startswith("unparsable SMILES")
    assert status["c1ccccc1N(=O)=O=O"].startswith("cannot sanitize")
    assert status["C" * 300].startswith("too large")
    # a salt is not a bad row: it is stored as its parent
    i = table["input_smiles"].index("CC(=O)Cc1ccccc1.[Na+].[Cl-]")
    assert table["status"][i] == "ok" and table["smiles"][i] == "CC(=O)Cc1ccccc1"


def test_manifest_counts_recipe_and_hashes(library: LibraryIndex, index_dir: Path,
                                           smi_file: Path) -> None:
    m = json.loads((index_dir / "manifest.json").read_text())
    assert m["counts"]["rows"] == len(library)
    assert m["counts"]["unreadable"] == 5 and sum(m["unreadable_by_reason"].values()) == 5
    assert m["recipes"]["similarity"]["params"] == {"fpSize": 2048, "radius": 2}
    assert m["recipes"]["substructure"]["kind"] == "pattern"
    assert m["inputs"][0]["path"] == str(smi_file) and m["inputs"][0]["rows"] == len(library)
    assert len(m["inputs"][0]["sha256"]) == 64 and m["tool_version"]
    assert library.verify() == []
    victim = next(index_dir.glob("shards/*/molecules.parquet"))
    original = victim.read_bytes()
    try:
        victim.write_bytes(original + b"x")
        assert any("sha256 differs" in p for p in LibraryIndex(index_dir).verify())
    finally:
        victim.write_bytes(original)


def test_stored_fingerprints_are_rdkits_of_the_stored_smiles(library: LibraryIndex,
                                                             rdkit_fps: dict) -> None:
    for shard in library.shards:
        index = library.similarity(shard)
        bits, counts = index.packed()
        rows = library.global_rows(shard, np.arange(len(index)))
        assert library.positions(shard, rows).tolist() == list(range(len(index)))
        for row, fp_bits in zip(rows.tolist(), bits):
            expected = np.zeros(2048, dtype=np.uint8)
            expected[list(rdkit_fps[row].GetOnBits())] = 1
            assert np.array_equal(np.unpackbits(fp_bits, bitorder="little"), expected)


def test_existing_directory_is_not_overwritten(index_dir: Path, smi_file: Path) -> None:
    with pytest.raises(LibraryIndexError, match="--append"):
        build_index(records(smi_file), index_dir)


def test_append_to_something_else_fails(tmp_path: Path, smi_file: Path) -> None:
    with pytest.raises(LibraryIndexError, match="no manifest.json"):
        build_index(records(smi_file), tmp_path, append=True)


def test_append_equals_one_build(tmp_path: Path, smiles: list[str]) -> None:
    a = write_smi(tmp_path / "a.smi", smiles[:300])
    b = write_smi(tmp_path / "b.smi", smiles[680:760], prefix="B")   # the junk rows too
    whole = tmp_path / "whole.smi"
    whole.write_text(a.read_text() + "".join(b.read_text().splitlines(True)[1:]))
    build_index(records(whole), tmp_path / "one", shard_size=200)
    build_index(records(a), tmp_path / "two", shard_size=200, inputs=[str(a)])
    m = build_index(records(b), tmp_path / "two", shard_size=200, append=True, inputs=[str(b)])
    assert [i["first_row"] for i in m["inputs"]] == [0, 300]
    one, two = LibraryIndex(tmp_path / "one"), LibraryIndex(tmp_path / "two")
    cols = ("row", "smiles", "key", "status")
    t1 = [t.select(cols).to_pylist() for t in one.iter_tables()]
    t2 = [t.select(cols).to_pylist() for t in two.iter_tables()]
    assert sum(t1, []) == sum(t2, [])
    q = one.fingerprints([Chem.MolFromSmiles("CC(=O)Cc1ccccc1"), Chem.MolFromSmiles("CCO")])
    assert one.similar(q, 0.3).to_lists() == two.similar(q, 0.3).to_lists()
    assert one.top_k(q, 7).to_lists() == two.top_k(q, 7).to_lists()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, smiles: list[str]) -> tuple[Path, LibraryIndex]:
    """300 rows (the junk among them) in 3 shards, built in this process."""
    d = tmp_path_factory.mktemp("small")
    path = write_smi(d / "small.smi", smiles[550:850])
    build_index(records(path), d / "small.idx", shard_size=100)
    return path, LibraryIndex(d / "small.idx")


def test_process_pool_build_is_the_same(tmp_path: Path, small: tuple[Path, LibraryIndex]) -> None:
    path, one = small
    build_index(records(path), tmp_path / "p", shard_size=100, jobs=2)
    other = LibraryIndex(tmp_path / "p")
    assert other.manifest["content_sha256"] == one.manifest["content_sha256"]


# -- exact searches ------------------------------------------------------------------------------


def bulk(query: DataStructs.ExplicitBitVect, fps: dict) -> tuple[list[int], np.ndarray]:
    rows = sorted(fps)
    return rows, np.array(DataStructs.BulkTanimotoSimilarity(query, [fps[r] for r in rows]))


QUERIES = ["CC(=O)Cc1ccccc1", "CC(=O)Cc1ccc2c(c1)OCO2", "CC(=O)C(C#N)c1ccccc1", "CCO",
           "c1ccc(NC2CCNCC2)cc1", "O=C(O)c1ccccc1O"]


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.45, 0.7, 1.0])
def test_threshold_hits_equal_bulk_tanimoto(library: LibraryIndex, rdkit_fps: dict,
                                            threshold: float) -> None:
    recipe = get_recipe("morgan2")
    mols = [Chem.MolFromSmiles(s) for s in QUERIES]
    got = library.similar(library.fingerprints(mols), threshold).to_lists()
    for mol, hits in zip(mols, got):
        rows, scores = bulk(recipe.bitvect(mol), rdkit_fps)
        expected = sorted(((r, s) for r, s in zip(rows, scores.tolist()) if s >= threshold),
                          key=lambda rs: (-rs[1], rs[0]))
        assert hits == expected


@pytest.mark.parametrize("k", [1, 10, 5000])
def test_top_k_equals_bulk_tanimoto(library: LibraryIndex, rdkit_fps: dict, k: int) -> None:
    recipe = get_recipe("morgan2")
    mols = [Chem.MolFromSmiles(s) for s in QUERIES]
    got = library.top_k(library.fingerprints(mols), k).to_lists()
    for mol, hits in zip(mols, got):
        rows, scores = bulk(recipe.bitvect(mol), rdkit_fps)
        expected = sorted(zip(rows, scores.tolist()), key=lambda rs: (-rs[1], rs[0]))[:k]
        assert hits == expected


def test_scores_of_given_rows(library: LibraryIndex, rdkit_fps: dict) -> None:
    recipe = get_recipe("morgan2")
    mol = Chem.MolFromSmiles(QUERIES[0])
    rows = sorted(rdkit_fps)[::7]
    expected = DataStructs.BulkTanimotoSimilarity(recipe.bitvect(mol), [rdkit_fps[r] for r in rows])
    assert library.scores(library.fingerprints([mol])[0], rows).tolist() == expected


@pytest.mark.parametrize("pattern", SMARTS)
def test_smarts_hits_equal_full_scan(library: LibraryIndex, table: dict, pattern: str) -> None:
    query = Chem.MolFromSmarts(pattern)
    expected = [row for row, smi, status in zip(table["row"], table["smiles"], table["status"])
                if status == "ok"
                and Chem.MolFromSmiles(smi).HasSubstructMatch(query, useChirality=False)]
    assert library.smarts(pattern).tolist() == expected


@pytest.mark.parametrize("query", ["CC(=O)Cc1ccccc1", "c1ccc2OCOc2c1", "CC(C)(C)OC(=O)N"])
def test_containment_equals_full_scan(library: LibraryIndex, table: dict, query: str) -> None:
    q = Chem.MolFromSmiles(query)
    mols = {row: Chem.MolFromSmiles(smi) for row, smi, status
            in zip(table["row"], table["smiles"], table["status"]) if status == "ok"}
    assert library.containing(q).tolist() == [r for r, m in mols.items()
                                              if m.HasSubstructMatch(q, useChirality=False)]
    assert library.contained_in(q).tolist() == [r for r, m in mols.items()
                                                if q.HasSubstructMatch(m, useChirality=False)]


def test_shards_on_threads_give_the_same_answer(index_dir: Path, library: LibraryIndex) -> None:
    threaded = LibraryIndex(index_dir, threads=3)
    q = library.fingerprints([Chem.MolFromSmiles(s) for s in QUERIES])
    assert threaded.similar(q, 0.3).to_lists() == library.similar(q, 0.3).to_lists()
    assert threaded.top_k(q, 9).to_lists() == library.top_k(q, 9).to_lists()
    assert threaded.smarts(SMARTS[1]).tolist() == library.smarts(SMARTS[1]).tolist()


def test_rows_lookup_and_errors(library: LibraryIndex, table: dict) -> None:
    got = library.rows([5, 0, 300, 5], ("id", "smiles"))
    assert got["id"] == ["M5", "M0", "M300", "M5"]
    assert got["smiles"] == [table["smiles"][i] for i in (5, 0, 300, 5)]
    with pytest.raises(QueryError):
        library.smarts("C(")
    with pytest.raises(ValueError, match="k must be"):
        library.top_k(library.fingerprints([Chem.MolFromSmiles("C")]), 0)


def test_not_an_index(tmp_path: Path) -> None:
    with pytest.raises(LibraryIndexError, match="not a library index"):
        LibraryIndex(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "other"}')
    with pytest.raises(LibraryIndexError, match="not a precursor-screen/library-index"):
        LibraryIndex(tmp_path)


# -- Dask ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():  # noqa: ANN201
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def test_dask_build_and_search_equal_one_process(tmp_path: Path, small: tuple[Path, LibraryIndex],
                                                 client) -> None:  # noqa: ANN001
    path, library = small
    out = tmp_path / "dask.idx"
    build_index(records(path), out, shard_size=100, client=client)
    other = LibraryIndex(out)
    assert other.manifest["content_sha256"] == library.manifest["content_sha256"]
    assert [s.as_dict() for s in other.shards] == [s.as_dict() for s in library.shards]
    mols = [Chem.MolFromSmiles(s) for s in QUERIES]
    q = library.fingerprints(mols)
    assert other.similar(q, 0.35, client=client).to_lists() == library.similar(q, 0.35).to_lists()
    assert other.top_k(q, 12, client=client).to_lists() == library.top_k(q, 12).to_lists()
    assert other.smarts(SMARTS[0], client=client).tolist() == library.smarts(SMARTS[0]).tolist()
    bmk = Chem.MolFromSmiles("CC(=O)Cc1ccccc1")
    assert (other.contained_in(bmk, client=client).tolist()
            == library.contained_in(bmk).tolist())


def test_table_is_parquet_with_fixed_columns(index_dir: Path) -> None:
    shard = sorted(index_dir.glob("shards/*"))[0]
    schema = pq.read_schema(shard / "molecules.parquet")
    assert schema.names == ["row", "id", "input_smiles", "smiles", "key", "status",
                            "heavy_atoms"]
