"""Every hit and score of TanimotoIndex against RDKit's BulkTanimotoSimilarity, compared with ==."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rdkit import Chem, DataStructs

from precursor_screen.chem.fingerprint import get_recipe, pack_bitvects
from precursor_screen.search import tanimoto as index_module
from precursor_screen.search.tanimoto import IndexFileError, TanimotoIndex, tanimoto

DATA = Path(__file__).parent / "data" / "molecules.smi"


def rdkit_ranked(query_fps, fps):
    """The oracle: per query, every (row, RDKit score), sorted by score desc then row."""
    return [sorted(enumerate(DataStructs.BulkTanimotoSimilarity(q, fps)),
                   key=lambda hit: (-hit[1], hit[0])) for q in query_fps]


def above(ranked, threshold):
    return [[hit for hit in hits if hit[1] >= threshold] for hits in ranked]


def first(ranked, k):
    return [hits[:k] for hits in ranked]


def rdkit_similar(query_fps, fps, threshold):
    return above(rdkit_ranked(query_fps, fps), threshold)


def rdkit_top_k(query_fps, fps, k):
    return first(rdkit_ranked(query_fps, fps), k)


@pytest.fixture(scope="module")
def mols():
    return [Chem.MolFromSmiles(line.split("\t")[0]) for line in DATA.read_text().splitlines()]


@pytest.fixture(scope="module", params=["morgan2", "featmorgan2", "atompair"])
def fixture_set(request, mols):
    recipe = get_recipe(request.param)
    packed, counts = recipe.packed(mols)
    fps = [recipe.bitvect(m) for m in mols]
    return recipe, packed, counts, rdkit_ranked(fps, fps)


@pytest.fixture(scope="module")
def morgan(mols):
    recipe = get_recipe("morgan2")
    packed, counts = recipe.packed(mols)
    return recipe, packed, counts, [recipe.bitvect(m) for m in mols]


@pytest.fixture(scope="module")
def big(morgan):
    """12 copies of the fixture in shuffled order: ~4,000 rows, bands of 100+ rows, many ties.

    Returns the packed rows, their fingerprints, the query rows and RDKit's ranking for them.
    """
    _, packed, _, fps = morgan
    rng = np.random.default_rng(7)
    rows = rng.permutation(np.tile(np.arange(len(fps)), 12))
    big_fps = [fps[i] for i in rows]
    queries = np.arange(0, len(fps), 4)
    return packed[rows], big_fps, queries, rdkit_ranked([fps[i] for i in queries], big_fps)


THRESHOLDS = [0.0, 0.3, 0.4, 0.7, 1.0]


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_similar_equals_rdkit(fixture_set, threshold):
    _, packed, counts, ranked = fixture_set
    index = TanimotoIndex(packed, counts)
    assert index.similar(packed, threshold) == above(ranked, threshold)


@pytest.mark.parametrize("dense_pairs", [0, 10**9], ids=["pruned", "dense"])
@pytest.mark.parametrize("k", [1, 7, 40, 41])
def test_top_k_ties_keep_the_lowest_rows(mols, k, dense_pairs, monkeypatch):
    """Forty copies of each molecule: the k-th best score is shared by many rows, and the answer
    is still the first k by (score desc, row asc), on both paths (the all-pairs one sorts only the
    pairs at or above each query's k-th score)."""
    monkeypatch.setattr(index_module, "_DENSE_PAIRS", dense_pairs)
    gen = get_recipe("morgan2")
    packed, counts = gen.packed(mols[:20])
    rows = np.repeat(np.arange(len(packed)), 40)
    index = TanimotoIndex(packed[rows], counts[rows])
    fps = [gen.bitvect(m) for m in mols[:20]]
    all_fps = [fps[r] for r in rows]
    assert index.top_k(packed[:5], k) == rdkit_top_k(fps[:5], all_fps, k)


@pytest.mark.parametrize("dense_pairs", [0, 10**9], ids=["pruned", "dense"])
@pytest.mark.parametrize("k", [1, 5, 50, 10_000])
def test_top_k_equals_rdkit(fixture_set, k, dense_pairs, monkeypatch):
    monkeypatch.setattr(index_module, "_DENSE_PAIRS", dense_pairs)
    _, packed, counts, ranked = fixture_set
    index = TanimotoIndex(packed, counts)
    assert index.top_k(packed, k) == first(ranked, k)


# How rows are cut into faiss calls (top-k seeds on one band or merged bands; threshold pieces of
# a few rows or everything at once), and whether the profile screen runs and how survivors get
# their exact distance, must not change the answer.
GRANULARITY = [pytest.param((0, 16, 256, (64, 4), 1.0, 8), id="fine-nibble-profile-pairs"),
               pytest.param((300, 64, 1 << 12, (32, 4), 0.0, 256), id="medium-profile-full"),
               pytest.param((0, 64, 1 << 14, (128, 2), 0.02, 3), id="two-bit-profile"),
               pytest.param((4096, 2048, 1 << 22, (0, 0), 0.05, 256), id="default-no-profile"),
               pytest.param((4096, 2048, 1 << 22, (256, 1), 0.05, 256), id="default")]


@pytest.fixture(params=GRANULARITY)
def granularity(request, monkeypatch):
    merge_rows, min_piece, piece_pairs, segments, exact_fraction, batch = request.param
    monkeypatch.setattr(index_module, "_MAX_BATCH", batch)  # queries of mixed popcounts per call
    monkeypatch.setattr(index_module, "_DENSE_PAIRS", 0)    # the pruned search, at every setting
    monkeypatch.setattr(index_module, "_MERGE_ROWS", merge_rows)
    monkeypatch.setattr(index_module, "_MIN_PIECE", min_piece)
    monkeypatch.setattr(index_module, "_PIECE_PAIRS", piece_pairs)
    monkeypatch.setattr(index_module, "_EXACT_FRACTION", exact_fraction)
    return segments


@pytest.mark.parametrize("threshold", [0.3, 0.7])
def test_similar_big_with_ties(big, morgan, granularity, threshold):
    packed, _, queries, ranked = big
    index = TanimotoIndex(packed, profile_segments=granularity[0], profile_cap=granularity[1])
    assert index.similar(morgan[1][queries], threshold) == above(ranked, threshold)


@pytest.mark.parametrize("k", [1, 50])
def test_top_k_big_with_ties(big, morgan, granularity, k):
    packed, _, queries, ranked = big
    index = TanimotoIndex(packed, profile_segments=granularity[0], profile_cap=granularity[1])
    assert index.top_k(morgan[1][queries], k) == first(ranked, k)


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_do_not_change_answers(big, morgan, threads, monkeypatch):
    import faiss

    before = faiss.omp_get_max_threads()
    packed, _, queries, ranked = big
    index = TanimotoIndex(packed, threads=threads)
    monkeypatch.setattr(index_module, "_PARALLEL_PAIRS", 0)   # even small calls use the threads
    assert index.similar(morgan[1][queries], 0.4) == above(ranked, 0.4)
    assert index.top_k(morgan[1][queries], 5) == first(ranked, 5)
    assert faiss.omp_get_max_threads() == before   # faiss's global setting is restored


def test_scores_are_rdkit_floats(morgan):
    _, packed, _, fps = morgan
    matrix = tanimoto(packed[:40], packed)
    for i in range(40):
        assert matrix[i].tolist() == DataStructs.BulkTanimotoSimilarity(fps[i], fps)


def test_single_query_row_and_arrays(morgan):
    _, packed, _, fps = morgan
    index = TanimotoIndex(packed)
    assert index.similar(packed[5], 0.3) == rdkit_similar([fps[5]], fps, 0.3)
    hits = index.similar_arrays(packed[:3], 0.3)
    assert len(hits) == 3
    rows, scores = hits.query(1)
    assert list(zip(rows.tolist(), scores.tolist())) == rdkit_similar([fps[1]], fps, 0.3)[0]


def _bitvect(size, on):
    bv = DataStructs.ExplicitBitVect(size)
    bv.SetBitsFromList(sorted(set(on)))
    return bv


def test_empty_fingerprints_score_zero():
    # RDKit: Tanimoto of two empty vectors is 0.0, and of empty vs anything 0.0.
    fps = [_bitvect(64, []), _bitvect(64, [1, 2]), _bitvect(64, []), _bitvect(64, [2, 3])]
    assert DataStructs.BulkTanimotoSimilarity(fps[0], fps) == [0.0, 0.0, 0.0, 0.0]
    packed, _ = pack_bitvects(fps)
    index = TanimotoIndex(packed)
    for t in (0.0, 1e-9, 0.3, 1.0):
        assert index.similar(packed, t) == rdkit_similar(fps, fps, t)
    for k in (1, 2, 4, 9):
        assert index.top_k(packed, k) == rdkit_top_k(fps, fps, k)


def test_thresholds_outside_zero_one():
    fps = [_bitvect(64, [1, 2]), _bitvect(64, [])]
    packed, _ = pack_bitvects(fps)
    index = TanimotoIndex(packed)
    assert index.similar(packed, -0.5) == rdkit_similar(fps, fps, -0.5)
    assert index.similar(packed, 1.01) == [[], []]
    with pytest.raises(ValueError, match="NaN"):
        index.similar(packed, float("nan"))


def test_bad_input_is_refused(morgan):
    _, packed, counts, _ = morgan
    with pytest.raises(ValueError, match="popcounts do not match"):
        TanimotoIndex(packed, counts + 1)
    index = TanimotoIndex(packed)
    with pytest.raises(ValueError, match="index has 2048"):
        index.similar(packed[:, :128], 0.5)
    with pytest.raises(ValueError, match="uint8"):
        index.similar(packed.astype(np.int64), 0.5)
    with pytest.raises(ValueError, match="positive integer"):
        index.top_k(packed, 0)
    with pytest.raises(ValueError, match="ids for"):
        TanimotoIndex(packed, ids=["a"])


def test_empty_index_and_no_queries(morgan):
    _, packed, _, _ = morgan
    empty = TanimotoIndex(np.zeros((0, 256), dtype=np.uint8))
    assert empty.similar(packed[:2], 0.0) == [[], []]
    assert empty.top_k(packed[:2], 3) == [[], []]
    assert TanimotoIndex(packed).similar(packed[:0], 0.5) == []


@pytest.mark.parametrize("segments, cap, per_molecule",
                         [(None, None, 292), (256, 1, 292), (64, 4, 292), (32, 4, 276),
                          (0, None, 260)])
def test_memory_per_molecule(morgan, segments, cap, per_molecule):
    _, packed, _, _ = morgan
    index = TanimotoIndex(np.tile(packed, (30, 1)), profile_segments=segments, profile_cap=cap)
    # one copy of the codes, the profile, a 4-byte row number; the band table is a constant 16 kB
    assert index.nbytes == len(index) * per_molecule + 2050 * 8
    assert np.array_equal(index.packed()[0], np.tile(packed, (30, 1)))


def test_profile_is_a_lower_bound(morgan):
    _, packed, _, _ = morgan
    for segments, cap in ((16, 4), (32, 4), (64, 4), (128, 2), (256, 1), (32, 8)):
        profiles = index_module._profiles(packed, segments, cap)
        assert profiles.shape == (len(packed), segments * cap // 8)
        lower = index_module._hammings(profiles, profiles)
        assert (lower <= index_module._hammings(packed, packed)).all()


@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(tmp_path, morgan, mmap):
    recipe, packed, counts, fps = morgan
    ids = [f"mol{i}" for i in range(len(fps))]
    index = TanimotoIndex(packed, counts, ids, recipe=recipe)
    target = index.save(tmp_path / "refs")
    index.save(tmp_path / "refs")   # replacing an existing index works too
    assert sorted(p.name for p in target.iterdir()) == [
        "bands.npy", "codes.npy", "ids.npy", "manifest.json", "order.npy", "profile.npy"]
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["count"] == len(fps) and manifest["recipe"]["name"] == "morgan2"
    assert manifest["rdkit_version"] and manifest["faiss_version"]
    loaded = TanimotoIndex.load(target, mmap=mmap)
    assert loaded.recipe == recipe.manifest()
    assert loaded.ids.tolist() == ids
    assert loaded.similar(packed, 0.4) == index.similar(packed, 0.4)
    assert loaded.top_k(packed, 3) == index.top_k(packed, 3)
    assert not list(tmp_path.glob(".refs*"))   # no temporary directories left behind


def test_index_saved_with_nibble_profiles_still_loads(tmp_path, morgan):
    # indexes written before profile_cap existed have 64-segment cap-4 profiles and no such key
    recipe, packed, counts, _ = morgan
    old = TanimotoIndex(packed, counts, recipe=recipe, profile_segments=64, profile_cap=4)
    target = old.save(tmp_path / "old")
    manifest = json.loads((target / "manifest.json").read_text())
    del manifest["profile_cap"]
    (target / "manifest.json").write_text(json.dumps(manifest))
    loaded = TanimotoIndex.load(target)
    assert (loaded.profile_segments, loaded.profile_cap) == (64, 4)
    new = TanimotoIndex(packed, counts, recipe=recipe)
    assert (new.profile_segments, new.profile_cap) == (256, 1)
    assert loaded.similar(packed, 0.35) == new.similar(packed, 0.35)


@given(st.integers(0, 40), st.integers(0, 70), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_sparse_nonzero_is_nonzero(rows, width, density, seed):
    buffer, mask = index_module._mask_buffer((rows, width))
    mask[...] = np.random.default_rng(seed).random((rows, width)) < density
    got = index_module._sparse_nonzero(buffer, width)
    expected = np.nonzero(mask)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_load_errors(tmp_path, morgan):
    with pytest.raises(IndexFileError, match="no manifest.json"):
        TanimotoIndex.load(tmp_path)
    target = TanimotoIndex(morgan[1]).save(tmp_path / "x")
    (target / "order.npy").unlink()
    with pytest.raises(IndexFileError, match="order.npy"):
        TanimotoIndex.load(target)
    (target / "manifest.json").write_text('{"format": "something else"}')
    with pytest.raises(IndexFileError, match="not a precursor-screen/tanimoto-index"):
        TanimotoIndex.load(target)


def test_recipe_size_must_match(morgan):
    _, packed, _, _ = morgan
    with pytest.raises(ValueError, match="1024-bit"):
        TanimotoIndex(packed, recipe={"name": "m", "fp_size": 1024})


# ---------------------------------------------------------------------- property tests

bit_sets = st.lists(st.integers(0, 255), max_size=120)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(bit_sets, min_size=1, max_size=25), queries=st.lists(bit_sets, min_size=1,
       max_size=5), threshold=st.floats(0.0, 1.0), k=st.integers(1, 30))
def test_packed_tanimoto_equals_rdkit_on_random_vectors(rows, queries, threshold, k):
    fps = [_bitvect(256, on) for on in rows]
    qfps = [_bitvect(256, on) for on in queries]
    packed, _ = pack_bitvects(fps)
    qpacked, _ = pack_bitvects(qfps)
    matrix = tanimoto(qpacked, packed)
    for i, q in enumerate(qfps):
        assert matrix[i].tolist() == DataStructs.BulkTanimotoSimilarity(q, fps)
    index = TanimotoIndex(packed)
    assert index.similar(qpacked, threshold) == rdkit_similar(qfps, fps, threshold)
    assert index.top_k(qpacked, k) == rdkit_top_k(qfps, fps, k)


@settings(max_examples=40, deadline=None)
@given(a=st.integers(0, 256), b=st.integers(0, 256), data=st.data())
def test_radius_is_exact(a, b, data):
    """The Hamming radius for (a, b, t) is the largest h whose RDKit score is still >= t."""
    t = data.draw(st.floats(0.0, 1.0))
    radius = index_module._radii(a, t, 256)[b]
    scores = {h: index_module.tanimoto_from_counts((a + b - h) // 2, a, b).item()
              for h in range(abs(a - b), a + b + 1, 2)}
    passing = [h for h, s in scores.items() if s >= t]
    assert radius == (max(passing) if passing else -1)
