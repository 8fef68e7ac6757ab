"""Exact Tanimoto search over packed fingerprints, on faiss's Hamming kernels.

Tanimoto from popcounts: for a query with ``a`` bits, a row with ``b`` bits and Hamming distance
``h``, the common bits are ``c = (a + b - h) / 2`` and the union ``u = a + b - c``; the score is
``float(c) / float(u)`` (0.0 when both are empty), the very division RDKit's
``TanimotoSimilarity`` and ``BulkTanimotoSimilarity`` make, so scores are equal to RDKit's with
``==``, and ``score >= threshold`` picks the rows RDKit's values would.

Layout. Rows are stored once, as one C-contiguous uint8 array sorted by popcount (stable, so rows
of equal popcount keep their input order), with ``order`` mapping sorted position -> input row
and ``bands[b]`` the first position of popcount ``b``. No faiss index object is kept: faiss's
Hamming functions run directly on slices of that array, which is exactly IndexBinaryFlat's code
layout. Beside it, a 32-byte popcount profile per row (see ``_profiles``): memory is 292 bytes
a molecule for 2048 bits (codes, profile, 4 bytes of ``order``), and a saved index can be
memory-mapped.

Pruning. A row can reach ``T`` only if ``min(a, b) / max(a, b) >= T``; for a query of popcount
``a`` and a row of popcount ``b`` the largest Hamming distance that still gives ``T`` is worked
out with the same float division as the score (``_radii``). A threshold search sorts the queries
by popcount, cuts them into batches, and cuts the rows a batch can reach (one run of popcount
bands) into blocks: one faiss call per (batch, block) takes the Hamming distances of the
profiles, a lower bound of the real distance, and a (query, row popcount) radius table keeps the
pairs that may pass; only those get the 2048-bit distance (every pair gets it directly where the
screen lets more than 5% through). At Tanimoto 0.4 on MOSES the screen passes 0.4% of the
pairs. Top-k first takes each query's exact top k within the band of its own popcount, with
faiss's heap k-NN (``hammings_knn_hc``: within one band Hamming order is Tanimoto order); the
k-th of those scores is a floor under the final k-th score. Then come threshold searches at
falling thresholds (0.7, 0.5, 0.35, never below the floor), keeping each query's best k, until
a query has k rows at or above the threshold: those are its answer. Bands smaller than a few
thousand rows are merged into one chunk for the seeds.

Parallelism (``threads``, default faiss's OpenMP setting): threshold searches run their
(batch, block) calls on that many Python threads (faiss releases the GIL); top-k runs its seeds
side by side (or one large batch with faiss's OpenMP threads across its queries), then its
threshold blocks the same way.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import rdkit

from precursor_screen.chem.fingerprint import Recipe, _bitwise_count
from precursor_screen.chem.fingerprint import popcounts as _popcounts
from precursor_screen.errors import PrecursorScreenError
from precursor_screen.version import __version__

__all__ = ["TanimotoIndex", "HitArrays", "IndexFileError", "tanimoto", "tanimoto_from_counts"]

FORMAT = "precursor-screen/tanimoto-index"
FORMAT_VERSION = 1
_MERGE_ROWS = 4096  # consecutive popcount bands are merged into chunks of at most this many rows
# Below this many (query, row) pairs a faiss k-NN call runs on one thread: an OpenMP team costs
# more than it saves on small calls, and on a busy machine its barriers cost milliseconds per call
# (measured: top-50 of 113 queries over 4,000 rows took 30 s with 2 threads, 0.5 s with 1).
_PARALLEL_PAIRS = 1 << 20
_MAX_BATCH = 256   # queries per faiss call
_PIECE_PAIRS = 1 << 22   # (query, row) pairs per faiss.hammings call: a 16 MB distance matrix
_MIN_PIECE = 2048        # rows: smaller pieces cost more in Python than in faiss
_EXACT_FRACTION = 0.05   # above this share of pairs passing the profile screen, skip the screen
_TOP_K_STAGES = (0.7, 0.5, 0.35, 0.0)   # thresholds top-k tries, highest first


class IndexFileError(PrecursorScreenError):
    """A saved index cannot be used (missing file, wrong format, arrays that do not agree)."""


@dataclass(frozen=True, slots=True)
class HitArrays:
    """Search results for a batch of queries, as flat arrays (faiss's range-search shape).

    Hits of query ``i`` are ``rows[lims[i]:lims[i+1]]`` (input row numbers, int64) with
    ``scores`` (float64), sorted by score descending, then row ascending.
    """

    lims: np.ndarray
    rows: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.lims) - 1

    def query(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(rows, scores)`` of query ``i``."""
        lo, hi = self.lims[i], self.lims[i + 1]
        return self.rows[lo:hi], self.scores[lo:hi]

    def to_lists(self) -> list[list[tuple[int, float]]]:
        """Return ``[[(row, score), ...] per query]`` as plain Python ints and floats."""
        rows, scores, lims = self.rows.tolist(), self.scores.tolist(), self.lims.tolist()
        return [list(zip(rows[lo:hi], scores[lo:hi])) for lo, hi in zip(lims[:-1], lims[1:])]


_DENSE_PAIRS = 200_000
"""Top-k over at most this many (query, row) pairs, on an index of at most `_DENSE_ROWS` rows,
scores them all (the screen's chunks against a reference list of a few hundred): faster than the
pruned search's set-up at that size."""
_DENSE_ROWS = 40_000
"""Above this many rows the pruned search wins even for one query (measured on the NCI-derived
benchmark library: one top-10 query on 50,000 rows 1.1 ms either way, on 100,000 rows 2.3 ms
scoring all vs 1.0 ms pruned; 8 queries on 20,000 rows 5.1 vs 8.0 ms)."""


def tanimoto_from_counts(common: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return RDKit's Tanimoto ``common / (a + b - common)`` as float64, 0.0 for two empty sets.

    >>> tanimoto_from_counts(np.array([1, 0]), np.array([3, 0]), np.array([1, 0])).tolist()
    [0.3333333333333333, 0.0]
    """
    common = np.asarray(common, dtype=np.int64)
    union = np.asarray(a, dtype=np.int64) + np.asarray(b, dtype=np.int64) - common
    return np.where(union > 0, common / np.maximum(union, 1), 0.0)


def tanimoto(a_packed: np.ndarray, b_packed: np.ndarray) -> np.ndarray:
    """Return the full ``(len(a), len(b))`` Tanimoto matrix of two packed arrays (no pruning).

    For small sets (a reference list of a few hundred): every score, equal to RDKit's.

    >>> a = np.packbits([[1, 1, 0, 1] + [0] * 60], axis=1, bitorder="little")
    >>> b = np.packbits([[1, 0, 0, 1] + [0] * 60, [0] * 64], axis=1, bitorder="little")
    >>> tanimoto(a, b).tolist()
    [[0.6666666666666666, 0.0]]
    """
    a_packed = _as_codes(a_packed)
    b_packed = _as_codes(b_packed, a_packed.shape[1])
    h = _hammings(a_packed, b_packed)
    pa, pb = _popcounts(a_packed)[:, None], _popcounts(b_packed)[None, :]
    return tanimoto_from_counts((pa + pb - h) // 2, pa, pb)


class TanimotoIndex:
    """Exact Tanimoto threshold and top-k search over packed fingerprints.

    Build from :meth:`Recipe.packed` output; ``ids`` (optional, one per row) travel with the
    index and are saved with it; ``recipe`` is stamped into the saved manifest. ``threads``
    caps the threads of this index's searches (None: faiss's OpenMP setting).
    ``profile_segments`` and ``profile_cap`` set the popcount profiles that screen pairs
    before the full Hamming distance (see ``_profiles``; segments 0 turns them off). The
    default, one segment per fingerprint byte with cap 1 ("which bytes have a bit set"), is 32
    bytes a molecule for 2048 bits and lets 0.4% of the pairs through at Tanimoto 0.4 on MOSES
    (64 segments with cap 4, the format before: 5%).

    >>> from rdkit import Chem
    >>> from precursor_screen.chem.fingerprint import get_recipe
    >>> recipe = get_recipe("morgan2")
    >>> refs = [Chem.MolFromSmiles(s) for s in ("CC(=O)Cc1ccccc1", "CC(=O)Cc1ccc2OCOc2c1", "CCO")]
    >>> index = TanimotoIndex(*recipe.packed(refs), ids=["P2P", "PMK", "ethanol"], recipe=recipe)
    >>> query, _ = recipe.packed([Chem.MolFromSmiles("CCC(=O)Cc1ccccc1")])
    >>> index.similar(query, 0.4)
    [[(0, 0.6)]]
    >>> [[(str(index.ids[row]), round(score, 3)) for row, score in hits] for hits in index.top_k(query, 2)]
    [[('P2P', 0.6), ('PMK', 0.256)]]
    """

    def __init__(self, packed: np.ndarray, popcounts: np.ndarray | None = None,
                 ids: Sequence[Any] | np.ndarray | None = None, *,
                 recipe: Recipe | Mapping[str, Any] | None = None, threads: int | None = None,
                 profile_segments: int | None = None, profile_cap: int | None = None):
        codes = _as_codes(packed)
        pop = _popcounts(codes)
        if popcounts is not None and not np.array_equal(np.asarray(popcounts), pop):
            raise ValueError("popcounts do not match the packed fingerprints")
        order = np.argsort(pop, kind="stable")
        bands = np.searchsorted(pop[order], np.arange(codes.shape[1] * 8 + 2), side="left")
        index_dtype = np.int32 if len(order) < 2**31 else np.int64
        sorted_codes = np.ascontiguousarray(codes[order])
        default_cap = 1
        if profile_segments is None:
            profile_segments, default_cap = _default_profile(codes.shape[1])
        cap = default_cap if profile_cap is None else int(profile_cap)
        profile = _profiles(sorted_codes, profile_segments, cap) if profile_segments else None
        self._setup(sorted_codes, order.astype(index_dtype), bands.astype(np.int64), ids, recipe,
                    threads, profile, (profile_segments, cap))

    def _setup(self, codes: np.ndarray, order: np.ndarray, bands: np.ndarray,
               ids: Sequence[Any] | np.ndarray | None,
               recipe: Recipe | Mapping[str, Any] | None, threads: int | None,
               profile: np.ndarray | None, profile_format: tuple[int, int] = (0, 0)) -> None:
        self._codes = codes
        self._profile = profile     # (n, segments*cap/8) uint8: capped segment popcounts
        self.profile_segments, self.profile_cap = profile_format if profile is not None else (0, 0)
        self._order = order
        self._bands = bands
        self.ids: np.ndarray | None = None if ids is None else np.asarray(ids)
        if self.ids is not None and len(self.ids) != len(order):
            raise ValueError(f"{len(self.ids)} ids for {len(order)} fingerprints")
        if isinstance(recipe, Recipe):
            recipe = recipe.manifest()
        self.recipe: dict[str, Any] | None = None if recipe is None else dict(recipe)
        if self.recipe is not None and int(self.recipe.get("fp_size", self.fp_size)) != self.fp_size:
            raise ValueError(f"recipe {self.recipe.get('name')!r} makes "
                             f"{self.recipe['fp_size']}-bit fingerprints, these have {self.fp_size}")
        self.threads = threads
        self._chunks = _make_chunks(bands)
        self._chunk_starts = np.array([c.first_b for c in self._chunks], dtype=np.int64)
        self._empty_bands = np.diff(bands) == 0

    # ------------------------------------------------------------------ properties

    def __len__(self) -> int:
        return len(self._order)

    def __repr__(self) -> str:
        name = self.recipe.get("name") if self.recipe else None
        return f"TanimotoIndex({len(self)} rows, {self.fp_size} bits, recipe={name!r})"

    @property
    def code_size(self) -> int:
        """Bytes per fingerprint."""
        return int(self._codes.shape[1])

    @property
    def fp_size(self) -> int:
        """Bits per fingerprint."""
        return self.code_size * 8

    @property
    def nbytes(self) -> int:
        """Memory held by the search structures (codes, profiles, row order, band offsets).

        Ids are not counted.
        """
        profile = 0 if self._profile is None else self._profile.nbytes
        return int(self._codes.nbytes + profile + self._order.nbytes + self._bands.nbytes)

    @property
    def bytes_per_molecule(self) -> float:
        """:attr:`nbytes` per row: codes, profile and a 4-byte row number (292 for 2048 bits)."""
        return self.nbytes / max(len(self), 1)

    def packed(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the fingerprints in input order, ``(bits, popcounts)`` (a copy)."""
        inverse = np.empty_like(self._order)
        inverse[self._order] = np.arange(len(self._order), dtype=self._order.dtype)
        bits = self._codes[inverse]
        return bits, _popcounts(bits)

    # ------------------------------------------------------------------ threshold search

    def similar(self, queries: np.ndarray, threshold: float, *,
                threads: int | None = None) -> list[list[tuple[int, float]]]:
        """Return, per query row, the ``(row, score)`` pairs with ``score >= threshold``.

        Sorted by score descending, then row ascending. ``queries`` is packed like the index
        (one row, or a batch: batches are much faster per query).
        """
        return self.similar_arrays(queries, threshold, threads=threads).to_lists()

    def similar_arrays(self, queries: np.ndarray, threshold: float, *,
                       threads: int | None = None) -> HitArrays:
        """Same as :meth:`similar`, as flat arrays: no Python object per hit."""
        q = _as_codes(queries, self.code_size)
        t = float(threshold)
        if t != t:
            raise ValueError("threshold is NaN")
        qpop = _popcounts(q)
        results: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        if len(q) and len(self) and t <= 1.0:
            qprof = self._query_profiles(q)
            table = self._radius_table(qpop, np.full(len(q), t))
            with self._threads(threads, len(q)) as nthreads:
                results = _map(lambda task: self._block(q, qprof, table, *task),
                               self._blocks(qpop, table, nthreads), nthreads, omp_threads=1)
        found = [r for r in results if len(r[0])]
        return self._finish_threshold(qpop, [r[0] for r in found], [r[1] for r in found],
                                      [r[2] for r in found], t)

    def _finish_threshold(self, qpop: np.ndarray, found_q: list[np.ndarray],
                          found_pos: list[np.ndarray], found_h: list[np.ndarray],
                          t: float) -> HitArrays:
        if not found_q:
            return _empty_hits(len(qpop))
        qi = np.concatenate(found_q)
        pos = np.concatenate(found_pos)
        h = np.concatenate(found_h)
        scores = self._scores(qpop[qi], pos, h)
        keep = scores >= t
        qi, pos, scores = qi[keep], pos[keep], scores[keep]
        rows = self._order[pos].astype(np.int64)
        o = np.lexsort((rows, -scores, qi))
        return _hits(len(qpop), qi[o], rows[o], scores[o])

    def _radius_table(self, qpop: np.ndarray, cuts: np.ndarray) -> np.ndarray:
        """(queries, fp_size + 1) int32: for each query and row popcount b, the largest Hamming
        distance that still scores >= the query's cut (-1 where no row of popcount b can)."""
        table = np.empty((len(qpop), self.fp_size + 1), dtype=np.int32)
        for i, (a, t) in enumerate(zip(qpop.tolist(), cuts.tolist())):
            table[i] = _radii(int(a), float(t), self.fp_size)
        return table

    def _blocks(self, qpop: np.ndarray, table: np.ndarray, nthreads: int
                ) -> list[tuple[np.ndarray, int, int]]:
        """The work of a search: (queries, lo, hi) blocks, each one faiss call.

        Queries are sorted by popcount and cut into batches of _MAX_BATCH; the rows a batch can
        reach (one run of popcount bands) are cut into blocks of about _PIECE_PAIRS pairs (at
        least ``nthreads`` blocks), and each block is searched by every query of the batch that
        can reach one of its bands, whatever its popcount: one call, not one per popcount.
        """
        reach = (table >= 0) & ~self._empty_bands[None, :]
        tasks = []
        for batch in _batches(np.argsort(qpop, kind="stable")):
            bands = np.flatnonzero(reach[batch].any(axis=0))
            if not len(bands):
                continue
            lo, hi = int(self._bands[bands[0]]), int(self._bands[bands[-1] + 1])
            size = max(_MIN_PIECE, _PIECE_PAIRS // len(batch))
            if nthreads > 1:
                size = max(_MIN_PIECE, min(size, -(-(hi - lo) // nthreads)))
            for start in range(lo, hi, size):
                end = min(hi, start + size)
                first, last = self._popcount_at(start), self._popcount_at(end - 1)
                members = batch[reach[batch, first:last + 1].any(axis=1)]
                if len(members):
                    tasks.append((members, start, end))
        return tasks

    def _popcount_at(self, pos: int) -> int:
        """Popcount of the row at sorted position ``pos``."""
        return int(np.searchsorted(self._bands, pos, side="right")) - 1

    def _block(self, q: np.ndarray, qprof: np.ndarray, table: np.ndarray, members: np.ndarray,
               lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pairs (query, row position, Hamming) of ``members`` x rows lo:hi within the table's
        radius (for the query and the row's popcount).

        With profiles, faiss first takes the Hamming distance of the 32-byte profiles, a lower
        bound of the real one (see _profiles), and only the pairs it lets through get the full
        2048-bit distance; when more than _EXACT_FRACTION of the pairs pass, every pair gets it
        directly (low thresholds, where the screen only adds work).
        """
        first, last = self._popcount_at(lo), self._popcount_at(hi - 1)
        edges = (np.clip(self._bands[first:last + 2], lo, hi) - lo).tolist()
        limits = table[members, first:last + 1]

        def within(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            buffer, mask = _mask_buffer(h.shape)
            for j in range(last - first + 1):
                s, e = edges[j], edges[j + 1]
                if e > s:
                    np.less_equal(h[:, s:e], limits[:, j:j + 1], out=mask[:, s:e])
            return _sparse_nonzero(buffer, h.shape[1])

        qm = q[members]
        if self._profile is not None:
            qq, cc = within(_hammings(qprof[members], self._profile[lo:hi]))
            if len(qq) <= _EXACT_FRACTION * len(members) * (hi - lo):
                h = _pair_hammings(qm[qq], self._codes[lo + cc])
                band = np.searchsorted(edges, cc, side="right") - 1
                keep = h <= limits[qq, band]
                return members[qq[keep]], cc[keep] + lo, h[keep]
        h = _hammings(qm, self._codes[lo:hi])
        qq, cc = within(h)
        return members[qq], cc + lo, h[qq, cc]

    def _query_profiles(self, q: np.ndarray) -> np.ndarray:
        if self._profile is None:
            return np.zeros((len(q), 0), dtype=np.uint8)
        return _profiles(q, self.profile_segments, self.profile_cap)

    def _row_popcounts(self, lo: int, hi: int) -> np.ndarray:
        """Popcount of every row in lo:hi (rows are sorted by it)."""
        first, last = self._popcount_at(lo), self._popcount_at(hi - 1)
        edges = np.clip(self._bands[first:last + 2], lo, hi)
        return np.repeat(np.arange(first, last + 1), np.diff(edges))

    def _scores(self, a: np.ndarray, pos: np.ndarray, h: np.ndarray) -> np.ndarray:
        b = np.searchsorted(self._bands, pos, side="right") - 1   # popcount of each row
        return tanimoto_from_counts((a + b - h) // 2, a, b)

    # ------------------------------------------------------------------ top-k

    def top_k(self, queries: np.ndarray, k: int, *,
              threads: int | None = None) -> list[list[tuple[int, float]]]:
        """Return, per query row, the ``k`` best ``(row, score)`` pairs (all rows if k > len).

        Ties are broken by row ascending, so the answer is deterministic: it is the first ``k``
        of all rows sorted by (score descending, row ascending), zeros included.
        """
        return self.top_k_arrays(queries, k, threads=threads).to_lists()

    def top_k_arrays(self, queries: np.ndarray, k: int, *,
                     threads: int | None = None) -> HitArrays:
        """Same as :meth:`top_k`, as flat arrays."""
        q = _as_codes(queries, self.code_size)
        if int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, not {k!r}")
        kk = min(int(k), len(self))
        qpop = _popcounts(q)
        if not len(q) or not kk:
            return _empty_hits(len(q))
        if len(q) * len(self) <= _DENSE_PAIRS and len(self) <= _DENSE_ROWS:
            # a small problem (a screen's reference, or one query): every pair, one faiss call,
            # no pruning; row popcounts from the bands, and only the entries scoring at least
            # each query's kk-th best score are sorted (ties at it included, so still exact)
            b = self._row_popcounts(0, len(self))[None, :]
            a = qpop.astype(np.int64)[:, None]
            scores = tanimoto_from_counts((a + b - _hammings(q, self._codes)) // 2, a, b)
            if kk < scores.shape[1]:
                kth = -np.partition(-scores, kk - 1, axis=1)[:, kk - 1]
                qi, pos = np.nonzero(scores >= kth[:, None])
            else:
                qi, pos = np.indices(scores.shape).reshape(2, -1)
            qi, rows, flat = _first_k_per_query(qi, self._order[pos].astype(np.int64),
                                                scores[qi, pos], kk)
            return _hits(len(q), qi, rows, flat)
        qprof = self._query_profiles(q)
        out_q, out_r, out_s = [], [], []
        with self._threads(threads, len(q)) as nthreads:
            # 1. Each query's exact top k within the chunk holding its own popcount: the k-th of
            #    those scores is a floor under its final k-th score.
            batches = [members for g in _groups(qpop) for members in _batches(g)]
            omp = 1 if nthreads > 1 and len(batches) > 1 else nthreads
            seeds = _map(lambda m: self._seed(q[m], int(qpop[m[0]]), kk, omp), batches,
                         nthreads, omp_threads=1)
            floor = np.zeros(len(q))
            for members, (_, rows, scores, seed_floor) in zip(batches, seeds):
                floor[members] = seed_floor
                if np.isinf(seed_floor).all():   # empty queries: the first kk rows, complete
                    out_q.append(np.repeat(members, kk))
                    out_r.append(rows.ravel())
                    out_s.append(scores.ravel())
            # 2. Threshold searches at falling thresholds (never below a query's floor, where the
            #    answer is complete) until each query has k rows at or above the threshold: the
            #    profile screen makes the high thresholds cheap.
            pending = np.flatnonzero(~np.isinf(floor))
            for stage in _TOP_K_STAGES:
                if not len(pending):
                    break
                cut = np.maximum(stage, floor[pending])
                qi, rows, scores = self._best_above(q[pending], qprof[pending], qpop[pending],
                                                    cut, kk, nthreads)
                counts = np.bincount(qi, minlength=len(pending))
                done = (counts == kk) | (cut <= floor[pending])
                keep = done[qi]
                out_q.append(pending[qi[keep]])
                out_r.append(rows[keep])
                out_s.append(scores[keep])
                pending = pending[~done]
        qi, rows, scores = _first_k_per_query(np.concatenate(out_q), np.concatenate(out_r),
                                              np.concatenate(out_s), kk)
        return _hits(len(q), qi, rows, scores)

    def _best_above(self, q: np.ndarray, qprof: np.ndarray, qpop: np.ndarray, cut: np.ndarray,
                    kk: int, nthreads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each query's best kk rows among those scoring >= its ``cut``; flat, by query."""
        table = self._radius_table(qpop, cut)

        def run(task: tuple[np.ndarray, int, int]) -> tuple[np.ndarray, ...]:
            qi, pos, h = self._block(q, qprof, table, *task)
            scores = self._scores(qpop[qi], pos, h)
            keep = scores >= cut[qi]
            return _first_k_per_query(qi[keep], self._order[pos[keep]].astype(np.int64),
                                      scores[keep], kk)

        pieces = _map(run, self._blocks(qpop, table, nthreads), nthreads, omp_threads=1)
        if not pieces:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0)
        return _first_k_per_query(*(np.concatenate([p[i] for p in pieces]) for i in range(3)),
                                  kk)

    def _seed(self, q: np.ndarray, a: int, kk: int, nthreads: int
              ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """Exact top-kk of queries of popcount ``a`` within the chunk with the best bound.

        Returns (chunk, rows (nq, <=kk), scores (nq, <=kk), floor (nq,)), ``floor`` being each
        query's kk-th score there (0.0 when the chunk has fewer rows; +inf for an empty query,
        whose answer, the first kk rows at 0.0, is complete here).
        """
        nq = len(q)
        if a == 0:
            return (-1, np.tile(np.arange(kk, dtype=np.int64), (nq, 1)), np.zeros((nq, kk)),
                    np.full(nq, np.inf))
        bounds = np.where(self._empty_bands, -np.inf, _upper_bounds(a, self.fp_size))
        ci = int(np.argmax(np.maximum.reduceat(bounds, self._chunk_starts)))
        chunk = self._chunks[ci]
        codes = self._codes[chunk.lo:chunk.hi]
        m = chunk.hi - chunk.lo
        if chunk.single:   # Hamming order is Tanimoto order: faiss's heap k-NN does it
            dist, labels = _knn(q, codes, min(kk, m), nthreads)
            scores = tanimoto_from_counts((a + chunk.band_lo - dist) // 2, a, chunk.band_lo)
            rows = self._order[labels + chunk.lo].astype(np.int64)
        else:              # several small bands: every score, sorted
            b = self._row_popcounts(chunk.lo, chunk.hi)
            scores = tanimoto_from_counts((a + b - _hammings(q, codes)) // 2, a, b)
            rows = np.broadcast_to(self._order[chunk.lo:chunk.hi].astype(np.int64), scores.shape)
            take = np.lexsort((rows, -scores), axis=1)[:, :kk]
            scores = np.take_along_axis(scores, take, axis=1)
            rows = np.take_along_axis(rows, take, axis=1)
        floor = scores[:, kk - 1].copy() if m >= kk else np.zeros(nq)
        return ci, rows, scores, floor

    # ------------------------------------------------------------------ threads

    @contextlib.contextmanager
    def _threads(self, threads: int | None, nq: int) -> Iterator[int]:
        """Yield the thread count for ``nq`` queries; faiss's global setting is restored after.

        Searches of fewer than _PARALLEL_PAIRS (query, row) pairs (a reference list of 70)
        run on one thread: starting threads would cost more than the search.
        """
        before = faiss.omp_get_max_threads()
        wanted = threads if threads is not None else self.threads
        count = max(1, int(wanted)) if wanted is not None else before
        try:
            yield 1 if nq * len(self) < _PARALLEL_PAIRS else count
        finally:
            faiss.omp_set_num_threads(before)

    # ------------------------------------------------------------------ files

    def manifest(self) -> dict[str, Any]:
        """Return what :meth:`save` writes to ``manifest.json``: format, counts, recipe, versions."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "count": len(self),
                "fp_size": self.fp_size, "code_size": self.code_size,
                "profile_segments": self.profile_segments, "profile_cap": self.profile_cap,
                "has_ids": self.ids is not None, "recipe": self.recipe,
                "layout": "codes.npy: rows sorted by popcount (stable), bits little-endian within "
                          "bytes; order.npy: sorted position -> input row; bands.npy: first "
                          "position of each popcount 0..fp_size+1",
                "tool_version": __version__, "rdkit_version": rdkit.__version__,
                "faiss_version": faiss.__version__, "numpy_version": np.__version__}

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the index to a directory (replaced as a whole: readers see old or new).

        Files: ``codes.npy``, ``order.npy``, ``bands.npy``, ``profile.npy`` and ``ids.npy`` when
        there are profiles and ids, and ``manifest.json``. No faiss index file is needed: the
        codes and profiles are faiss binary codes already.
        """
        arrays = {"codes": self._codes, "order": self._order, "bands": self._bands}
        if self._profile is not None:
            arrays["profile"] = self._profile
        if self.ids is not None:
            arrays["ids"] = self.ids
        return _write_dir(Path(directory), arrays, self.manifest())

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, mmap: bool = False,
             threads: int | None = None) -> "TanimotoIndex":
        """Read an index written by :meth:`save`; ``mmap=True`` maps the codes instead of reading.

        Raises IndexFileError naming the file when something is missing or does not agree.
        """
        path = Path(directory)
        manifest = _read_manifest(path, FORMAT, FORMAT_VERSION)
        codes = _read_array(path, "codes", "r" if mmap else None)
        order, bands = _read_array(path, "order"), _read_array(path, "bands")
        ids = _read_array(path, "ids") if manifest.get("has_ids") else None
        segments = manifest.get("profile_segments", 0)
        cap = manifest.get("profile_cap", 4)   # older indexes: nibble profiles, no such key
        profile = _read_array(path, "profile", "r" if mmap else None) if segments else None
        n, code_size = manifest.get("count"), manifest.get("code_size")
        if (codes.dtype != np.uint8 or codes.shape != (n, code_size) or order.shape != (n,)
                or bands.shape != (code_size * 8 + 2,) or bands[-1] != n
                or (profile is not None and profile.shape != (n, segments * cap // 8))):
            raise IndexFileError(f"{path}: arrays do not match manifest.json "
                                 f"({n} rows of {code_size} bytes)")
        index = cls.__new__(cls)
        index._setup(codes, order, bands.astype(np.int64), ids, manifest.get("recipe"), threads,
                     profile, (segments, cap))
        return index


# ---------------------------------------------------------------------- helpers


def _as_codes(packed: np.ndarray, code_size: int | None = None) -> np.ndarray:
    codes = np.asarray(packed)
    if codes.dtype != np.uint8:
        raise ValueError(f"packed fingerprints must be uint8, not {codes.dtype}")
    if codes.ndim == 1:
        codes = codes[None, :]
    if codes.ndim != 2:
        raise ValueError(f"packed fingerprints must be 2-D (rows, bytes), not shape {codes.shape}")
    if code_size is not None and codes.shape[1] != code_size:
        raise ValueError(f"fingerprints of {codes.shape[1] * 8} bits, index has {code_size * 8}")
    if codes.shape[1] % 8:
        raise ValueError(f"fingerprint length {codes.shape[1] * 8} bits is not a multiple of 64")
    return np.ascontiguousarray(codes)


def _groups(qpop: np.ndarray) -> list[np.ndarray]:
    """Query numbers grouped by popcount (queries of one popcount share bands and radii)."""
    order = np.argsort(qpop, kind="stable")
    values, starts = np.unique(qpop[order], return_index=True)
    return np.split(order, starts[1:]) if len(values) else []


@functools.lru_cache(maxsize=1024)
def _upper_bounds(a: int, fp_size: int) -> np.ndarray:
    """Best score reachable by a row of each popcount b (0..fp_size): min(a,b)/max(a,b), exact.

    Cached (read-only): queries of one popcount share it.
    """
    b = np.arange(fp_size + 1)
    bounds = tanimoto_from_counts(np.minimum(a, b), a, b)
    bounds.flags.writeable = False
    return bounds


def _radii_uncached(a: int, t: float, fp_size: int) -> np.ndarray:
    """Per popcount b: the largest Hamming distance that still scores >= t (-1: unreachable).

    Scores fall as h grows (c = (a+b-h)/2 shrinks), so the radius comes from the smallest common
    count c with ``c / (a + b - c) >= t`` in float64, searched around its real-number value.
    """
    b = np.arange(fp_size + 1, dtype=np.int64)
    if t > 1:   # nothing reaches it (also t = inf)
        none = np.full(fp_size + 1, -1, dtype=np.int64)
        none.flags.writeable = False
        return none
    s = a + b
    m = np.minimum(a, b)
    reachable = _upper_bounds(a, fp_size) >= t
    if t <= 0:
        c_min = np.zeros_like(b)
    else:
        c0 = np.maximum(np.floor(t * s / (1.0 + t)).astype(np.int64) - 2, 0)
        c_min = np.full_like(b, -1)
        for step in range(6):
            c = np.minimum(c0 + step, m)
            ok = (c_min < 0) & (tanimoto_from_counts(c, a, b) >= t)
            c_min[ok] = c[ok]
        c_min[c_min < 0] = 0   # not found (cannot happen): radius a+b, the score filter decides
    radii = np.where(reachable, s - 2 * c_min, -1)
    radii.flags.writeable = False   # may be cached: shared by every query of popcount a
    return radii


# Searches reuse (popcount, threshold) pairs; 512 entries of 16 kB at most.
_radii = functools.lru_cache(maxsize=512)(_radii_uncached)


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Consecutive rows searched by one faiss call: one popcount band or several small ones."""

    first_b: int   # reduceat start: chunks tile popcounts 0..fp_size (empty bands included)
    lo: int        # first row (sorted position)
    hi: int        # end row
    band_lo: int   # popcount of the first row
    band_hi: int   # popcount of the last row

    @property
    def single(self) -> bool:
        """One popcount band: Hamming order is Tanimoto order."""
        return self.band_lo == self.band_hi


def _make_chunks(bands: np.ndarray) -> list[_Chunk]:
    """Merge consecutive non-empty popcount bands while a chunk stays within _MERGE_ROWS rows."""
    groups: list[list[int]] = []   # [first band, last band, lo, hi]
    for b in np.flatnonzero(np.diff(bands) > 0).tolist():
        lo, hi = int(bands[b]), int(bands[b + 1])
        if groups and hi - groups[-1][2] <= _MERGE_ROWS:
            groups[-1][1], groups[-1][3] = b, hi
        else:
            groups.append([b, b, lo, hi])
    return [_Chunk(0 if i == 0 else first, lo, hi, first, last)
            for i, (first, last, lo, hi) in enumerate(groups)]


def _batches(members: np.ndarray) -> list[np.ndarray]:
    """Split a query group so one call's distance matrix stays small (_MAX_BATCH queries)."""
    return [members[i:i + _MAX_BATCH] for i in range(0, len(members), _MAX_BATCH)]


def _map(fn: Callable[[Any], Any], tasks: Sequence[Any], nthreads: int,
         omp_threads: int | None = None) -> list[Any]:
    """``[fn(t) for t in tasks]``, on ``nthreads`` Python threads when there is more than one.

    faiss releases the GIL in its kernels, so the threads run them side by side.
    """
    if nthreads <= 1 or len(tasks) <= 1:
        return [fn(t) for t in tasks]

    def init() -> None:
        if omp_threads is not None:
            faiss.omp_set_num_threads(omp_threads)   # per-thread setting: no nested teams

    with ThreadPoolExecutor(max_workers=nthreads, initializer=init) as pool:
        return list(pool.map(fn, tasks))


def _knn(q: np.ndarray, db: np.ndarray, k: int, nthreads: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss heap k-NN by Hamming; among equal distances the lower row wins (scan order)."""
    faiss.omp_set_num_threads(max(1, min(nthreads, len(q))) if len(q) * len(db) >= _PARALLEL_PAIRS
                              else 1)
    dist, labels = faiss.knn_hamming(q, db, k)
    return dist.astype(np.int64), labels


def _default_profile(code_size: int) -> tuple[int, int]:
    """(segments, cap) of the default profile: one segment per byte, cap 1, when that makes a
    whole number of 8-byte words; else 64, 32 or 16 segments with cap 4; else none (0, 0)."""
    if code_size % 64 == 0:
        return code_size, 1
    return next(((s, 4) for s in (64, 32, 16) if code_size % s == 0), (0, 0))


def _profiles(codes: np.ndarray, segments: int, cap: int = 1) -> np.ndarray:
    """Popcount profiles: each of ``segments`` equal slices of the bits, its popcount capped at
    ``cap`` and written in unary (c -> c low bits of a ``cap``-bit field); (n, segments*cap/8).

    Their Hamming distance is sum |min(a_i, cap) - min(b_i, cap)| <= sum |a_i - b_i| <= the
    Hamming distance of the fingerprints: a lower bound faiss computes on 32 bytes instead of
    256. On sparse fingerprints (morgan2 sets ~50 of 2048 bits) bits rarely share a byte, so the
    cheapest profile is the tightest: measured on 30,000 MOSES molecules with 100 MOSES queries
    at Tanimoto 0.4, of the pairs 0.07% score >= 0.4 and the 32-byte profiles let through
    0.39% (256 segments, cap 1), 0.45% (128, cap 2) and 5.2% (64, cap 4); 64-byte ones 0.11%
    (512 segments of 4 bits, cap 1). At 0.7: 0.0007% score, all profiles let through < 0.001%.
    """
    n, code_size = codes.shape
    if (cap not in (1, 2, 4, 8) or segments <= 0 or code_size % segments
            or (segments * cap) % 64):
        raise ValueError(f"profiles of {segments} segments with cap {cap}: segments must divide "
                         f"{code_size} (bytes per fingerprint), cap be 1, 2, 4 or 8, and "
                         f"segments x cap be a multiple of 64 bits")
    if cap == 1 and segments == code_size:
        # one bit per byte, "the byte is not zero": what the general path computes, 3x faster
        return np.packbits(np.asarray(codes) != 0, axis=1, bitorder="little")
    per_byte = 8 // cap
    unary = ((1 << np.arange(cap + 1)) - 1).astype(np.uint8)   # count -> cap-bit unary code
    shifts = (np.arange(per_byte) * cap).astype(np.uint8)
    out = np.empty((n, segments * cap // 8), dtype=np.uint8)
    step = 65536
    for start in range(0, n, step):
        part = codes[start:start + step]
        counts = _bitwise_count(part.reshape(len(part), segments, -1)).sum(axis=2)
        fields = unary[np.minimum(counts, cap)].reshape(len(part), -1, per_byte) << shifts
        out[start:start + step] = np.bitwise_or.reduce(fields, axis=2)
    return out


def _mask_buffer(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(buffer, matrix): an uninitialised bool matrix of ``shape`` at the start of a flat
    buffer of whole 8-byte words, the padding False (for _sparse_nonzero)."""
    size = shape[0] * shape[1]
    buffer = np.empty(-(-size // 8) * 8, dtype=bool)
    buffer[size:] = False
    return buffer, buffer[:size].reshape(shape)


def _sparse_nonzero(buffer: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero`` of the matrix (rows of ``width``) in a _mask_buffer, fast when few are
    True: the buffer is scanned as 8-byte words and only non-zero words byte by byte (a
    search's screen lets 0.4% of the pairs through: 2-3x faster than np.nonzero)."""
    if np.count_nonzero(buffer) * 16 > len(buffer):   # dense (low thresholds): plain nonzero
        flat = np.flatnonzero(buffer)
        return flat // width, flat % width
    words = np.flatnonzero(buffer.view(np.uint64))
    word, byte = np.nonzero(buffer.reshape(-1, 8)[words])
    flat = words[word] * 8 + byte
    return flat // width, flat % width


def _pair_hammings(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distance of a[i] and b[i] for each i (equal-length packed arrays), int32."""
    if not len(a):
        return np.empty(0, dtype=np.int32)
    return _bitwise_count(a.view(np.uint64) ^ b.view(np.uint64)).sum(axis=1, dtype=np.int32)


def _hammings(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All Hamming distances between two packed sets, (len(a), len(b)) int32.

    faiss's plain loop: about twice as fast per pair as its range search on 2048 bits.
    """
    out = np.empty((len(a), len(b)), dtype=np.int32)
    if out.size:
        faiss.hammings(faiss.swig_ptr(a), faiss.swig_ptr(b), len(a), len(b), a.shape[1],
                       faiss.swig_ptr(out))
    return out


def _first_k_per_query(qi: np.ndarray, rows: np.ndarray, scores: np.ndarray,
                       k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep each query's first k by (score desc, row asc); output sorted that way by query."""
    o = np.lexsort((rows, -scores, qi))
    qi, rows, scores = qi[o], rows[o], scores[o]
    rank = np.arange(len(qi)) - np.searchsorted(qi, qi, side="left")
    keep = rank < k
    return qi[keep], rows[keep], scores[keep]


def _hits(nq: int, qi: np.ndarray, rows: np.ndarray, scores: np.ndarray) -> HitArrays:
    lims = np.zeros(nq + 1, dtype=np.int64)
    np.cumsum(np.bincount(qi, minlength=nq), out=lims[1:])
    return HitArrays(lims, rows.astype(np.int64), scores.astype(np.float64))


def _empty_hits(nq: int) -> HitArrays:
    return HitArrays(np.zeros(nq + 1, dtype=np.int64), np.empty(0, dtype=np.int64),
                     np.empty(0, dtype=np.float64))


def _replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``, replacing a previous directory there."""
    if not target.exists():
        os.replace(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.rmdir(old)
    os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def _write_dir(target: Path, arrays: Mapping[str, np.ndarray], manifest: Mapping[str, Any]) -> Path:
    """Write ``name.npy`` files and ``manifest.json`` to a fresh directory, then swap it in."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for name, array in arrays.items():
            with open(tmp / f"{name}.npy", "wb") as fh:
                np.save(fh, np.asarray(array), allow_pickle=False)
                fh.flush()
                os.fsync(fh.fileno())
        with open(tmp / "manifest.json", "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _read_manifest(path: Path, fmt: str, version: int) -> dict[str, Any]:
    """Return a saved index's manifest, checking its format; IndexFileError names the file."""
    try:
        with open(path / "manifest.json", encoding="utf-8") as fh:
            manifest: dict[str, Any] = json.load(fh)
    except FileNotFoundError:
        raise IndexFileError(f"{path}: not an index directory (no manifest.json)") from None
    except json.JSONDecodeError as exc:
        raise IndexFileError(f"{path / 'manifest.json'}: not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != fmt \
            or manifest.get("format_version") != version:
        raise IndexFileError(f"{path / 'manifest.json'}: not a {fmt} version {version} index")
    return manifest


def _read_array(path: Path, name: str, mmap_mode: str | None = None) -> np.ndarray:
    """Load ``name.npy`` (never with pickles); IndexFileError names the file."""
    try:
        array: np.ndarray = np.load(path / f"{name}.npy", mmap_mode=mmap_mode, allow_pickle=False)
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise IndexFileError(f"{path / (name + '.npy')}: {exc}") from None
    return array
