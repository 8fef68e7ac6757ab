"""Exact Tanimoto search over packed fingerprints, on faiss's Hamming kernels.

Tanimoto from popcounts: for a query with ``a`` bits, a row with ``b`` bits and Hamming distance
``h``, the common bits are ``c = (a + b - h) / 2`` and the union ``u = a + b - c``; the score is
``float(c) / float(u)`` (0.0 when both are empty), the very division RDKit's
``TanimotoSimilarity`` and ``BulkTanimotoSimilarity`` make, so scores are equal to RDKit's with
``==``, and ``score >= threshold`` picks the rows RDKit's values would.

Layout. Rows are stored once, as one C-contiguous uint8 array sorted by popcount (stable, so rows
of equal popcount keep their input order), with ``order`` mapping sorted position -> input row
and ``bands[b]`` the first position of popcount ``b``. No faiss index object is kept: faiss's
Hamming functions (``hamming_range_search``, ``hammings_knn_hc``, ``hammings``) run directly on
slices of that array, which is exactly IndexBinaryFlat's code layout, so memory is the codes plus
4 bytes of ``order`` per molecule (260 bytes for 2048 bits), and a saved index can be memory-mapped.

Pruning. A row can reach ``T`` only if ``min(a, b) / max(a, b) >= T``; threshold searches run
faiss's range search on the bands that pass, with the largest Hamming radius that still gives
``T`` (computed with the same float division as the score), then keep ``score >= T``. Top-k
visits bands in decreasing order of that bound and stops when the bound falls below a query's
k-th score. Bands smaller than a few thousand rows are merged into one chunk to keep the number of
faiss calls down.

Parallelism: faiss's OpenMP threads work across queries, so batches of many queries (grouped by
popcount) use all threads; a single query runs on one.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import rdkit

from precursor_screen.errors import PrecursorScreenError
from precursor_screen.fingerprint import Recipe
from precursor_screen.fingerprint import popcounts as _popcounts

__all__ = ["TanimotoIndex", "HitArrays", "IndexFileError", "tanimoto", "tanimoto_from_counts"]

FORMAT = "precursor-screen/tanimoto-index"
FORMAT_VERSION = 1
_MERGE_ROWS = 4096  # consecutive popcount bands are merged into chunks of at most this many rows
# Below this many (query, row) pairs a faiss call runs on one thread: an OpenMP team costs more
# than it saves on small calls, and on a busy machine its barriers cost milliseconds per call
# (measured: top-50 of 113 queries over 4,000 rows took 30 s with 2 threads, 0.5 s with 1).
_PARALLEL_PAIRS = 1 << 20


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
    caps faiss's OpenMP threads for this index's searches (None: leave faiss's setting).

    >>> from rdkit import Chem
    >>> from precursor_screen.fingerprint import get_recipe
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
                 recipe: Recipe | Mapping[str, Any] | None = None, threads: int | None = None):
        codes = _as_codes(packed)
        pop = _popcounts(codes)
        if popcounts is not None and not np.array_equal(np.asarray(popcounts), pop):
            raise ValueError("popcounts do not match the packed fingerprints")
        order = np.argsort(pop, kind="stable")
        bands = np.searchsorted(pop[order], np.arange(codes.shape[1] * 8 + 2), side="left")
        index_dtype = np.int32 if len(order) < 2**31 else np.int64
        self._setup(np.ascontiguousarray(codes[order]), order.astype(index_dtype),
                    bands.astype(np.int64), ids, recipe, threads)

    def _setup(self, codes: np.ndarray, order: np.ndarray, bands: np.ndarray,
               ids: Sequence[Any] | np.ndarray | None,
               recipe: Recipe | Mapping[str, Any] | None, threads: int | None) -> None:
        self._codes = codes
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
        """Memory held by the search structures (codes, row order, band offsets), without ids."""
        return int(self._codes.nbytes + self._order.nbytes + self._bands.nbytes)

    @property
    def bytes_per_molecule(self) -> float:
        """:attr:`nbytes` per row: ``fp_size / 8 + 4`` plus a constant, e.g. 260 for 2048 bits."""
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
        found_q: list[np.ndarray] = []
        found_pos: list[np.ndarray] = []
        found_h: list[np.ndarray] = []
        if len(q) and self._chunks and t <= 1.0:
            groups = _groups(qpop)
            radii = np.stack([_radii(int(qpop[g[0]]), t, self.fp_size) for g in groups])
            radii[:, self._empty_bands] = -1          # empty bands set no radius
            # Largest radius per (group, chunk); -1 where no band of the chunk can reach t.
            chunk_r = np.maximum.reduceat(radii, self._chunk_starts, axis=1)
            group_q = [np.ascontiguousarray(q[g]) for g in groups]
            with self._threads(threads) as nthreads:
                # chunk-major, so a chunk stays in cache while every group that needs it runs
                for ci, gi in np.argwhere(chunk_r.T >= 0).tolist():
                    chunk, members = self._chunks[ci], groups[gi]
                    lims, labels, dist = _range_search(
                        group_q[gi], self._codes[chunk.lo:chunk.hi], int(chunk_r[gi, ci]) + 1,
                        nthreads)
                    if len(labels):
                        found_q.append(np.repeat(members, np.diff(lims)))
                        found_pos.append(labels + chunk.lo)
                        found_h.append(dist)
        return self._finish_threshold(qpop, found_q, found_pos, found_h, t)

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
        out_q, out_r, out_s = [], [], []
        with self._threads(threads) as nthreads:
            for members in _groups(qpop):
                got_q, got_r, got_s = self._top_k_group(q[members], int(qpop[members[0]]), kk,
                                                        nthreads)
                out_q.append(members[got_q])
                out_r.append(got_r)
                out_s.append(got_s)
        qi, rows, scores = np.concatenate(out_q), np.concatenate(out_r), np.concatenate(out_s)
        o = np.lexsort((rows, -scores, qi))
        return _hits(len(q), qi[o], rows[o], scores[o])

    def _top_k_group(self, q: np.ndarray, a: int, kk: int,
                     nthreads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-kk for queries sharing popcount ``a``; local query numbers, rows, scores."""
        nq = len(q)
        if a == 0:   # every score is 0.0: the first kk rows
            rows = np.tile(np.arange(kk, dtype=np.int64), nq)
            return np.repeat(np.arange(nq), kk), rows, np.zeros(nq * kk)
        bounds = np.where(self._empty_bands, -np.inf, _upper_bounds(a, self.fp_size))
        chunk_ub = np.maximum.reduceat(bounds, self._chunk_starts)
        best_q = np.empty(0, dtype=np.int64)
        best_r = np.empty(0, dtype=np.int64)
        best_s = np.empty(0, dtype=np.float64)
        kth = np.full(nq, -np.inf)   # k-th best so far; -inf until kk rows are found
        for ci in np.lexsort((np.arange(len(chunk_ub)), -chunk_ub)).tolist():
            active = np.flatnonzero(kth <= chunk_ub[ci])
            if not len(active):
                break
            lo, hi = self._chunks[ci].lo, self._chunks[ci].hi
            if self._chunks[ci].single:   # Hamming order is Tanimoto order: faiss's heap k-NN
                dist, labels = _knn(q[active], self._codes[lo:hi], min(kk, hi - lo), nthreads)
                cand_q = np.repeat(active, dist.shape[1])
                pos = labels.ravel() + lo
                scores = self._scores(a, pos, dist.ravel())
            else:   # several small bands: every score, then each query's best kk (ties kept)
                pos_all = np.arange(lo, hi)
                s2 = self._scores(a, pos_all[None, :], _hammings(q[active], self._codes[lo:hi]))
                m = hi - lo
                cut = np.partition(s2, m - min(kk, m), axis=1)[:, m - min(kk, m)]
                qq, cc = np.nonzero(s2 >= cut[:, None])
                cand_q, pos, scores = active[qq], pos_all[cc], s2[qq, cc]
            best_q = np.concatenate([best_q, cand_q])
            best_r = np.concatenate([best_r, self._order[pos].astype(np.int64)])
            best_s = np.concatenate([best_s, scores])
            best_q, best_r, best_s = _first_k_per_query(best_q, best_r, best_s, kk)
            counts = np.bincount(best_q, minlength=nq)
            full = np.flatnonzero(counts == kk)
            ends = np.cumsum(counts)
            kth[full] = best_s[ends[full] - 1]
        return best_q, best_r, best_s

    # ------------------------------------------------------------------ threads

    @contextlib.contextmanager
    def _threads(self, threads: int | None) -> Iterator[int]:
        """Yield the thread count to use; faiss's global setting is restored afterwards."""
        before = faiss.omp_get_max_threads()
        wanted = threads if threads is not None else self.threads
        try:
            yield max(1, int(wanted)) if wanted is not None else before
        finally:
            faiss.omp_set_num_threads(before)

    # ------------------------------------------------------------------ files

    def manifest(self) -> dict[str, Any]:
        """Return what :meth:`save` writes to ``manifest.json``: format, counts, recipe, versions."""
        from precursor_screen import __version__
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "count": len(self),
                "fp_size": self.fp_size, "code_size": self.code_size,
                "has_ids": self.ids is not None, "recipe": self.recipe,
                "layout": "codes.npy: rows sorted by popcount (stable), bits little-endian within "
                          "bytes; order.npy: sorted position -> input row; bands.npy: first "
                          "position of each popcount 0..fp_size+1",
                "tool_version": __version__, "rdkit_version": rdkit.__version__,
                "faiss_version": faiss.__version__, "numpy_version": np.__version__}

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the index to a directory (replaced as a whole: readers see old or new).

        Files: ``codes.npy``, ``order.npy``, ``bands.npy``, ``ids.npy`` when there are ids, and
        ``manifest.json``. No faiss index file is needed: the codes are faiss's binary layout.
        """
        arrays = {"codes": self._codes, "order": self._order, "bands": self._bands}
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
        n, code_size = manifest.get("count"), manifest.get("code_size")
        if (codes.dtype != np.uint8 or codes.shape != (n, code_size) or order.shape != (n,)
                or bands.shape != (code_size * 8 + 2,) or bands[-1] != n):
            raise IndexFileError(f"{path}: arrays do not match manifest.json "
                                 f"({n} rows of {code_size} bytes)")
        index = cls.__new__(cls)
        index._setup(codes, order, bands.astype(np.int64), ids, manifest.get("recipe"), threads)
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


@functools.lru_cache(maxsize=4096)
def _upper_bounds(a: int, fp_size: int) -> np.ndarray:
    """Best score reachable by a row of each popcount b (0..fp_size): min(a,b)/max(a,b), exact.

    Cached (read-only): queries of one popcount share it.
    """
    b = np.arange(fp_size + 1)
    bounds = tanimoto_from_counts(np.minimum(a, b), a, b)
    bounds.flags.writeable = False
    return bounds


@functools.lru_cache(maxsize=4096)
def _radii(a: int, t: float, fp_size: int) -> np.ndarray:
    """Per popcount b: the largest Hamming distance that still scores >= t (-1: unreachable).

    Scores fall as h grows (c = (a+b-h)/2 shrinks), so the radius comes from the smallest common
    count c with ``c / (a + b - c) >= t`` in float64, searched around its real-number value.
    """
    b = np.arange(fp_size + 1, dtype=np.int64)
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
    radii.flags.writeable = False   # cached: shared by every query of popcount a
    return radii


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Consecutive rows searched by one faiss call: one popcount band or several small ones."""

    first_b: int   # reduceat start: chunks tile popcounts 0..fp_size (empty bands included)
    lo: int        # first row (sorted position)
    hi: int        # end row
    single: bool   # one non-empty band: Hamming order is Tanimoto order


def _make_chunks(bands: np.ndarray) -> list[_Chunk]:
    """Merge consecutive non-empty popcount bands while a chunk stays within _MERGE_ROWS rows."""
    groups: list[list[int]] = []   # [first band, last band, lo, hi]
    for b in np.flatnonzero(np.diff(bands) > 0).tolist():
        lo, hi = int(bands[b]), int(bands[b + 1])
        if groups and hi - groups[-1][2] <= _MERGE_ROWS:
            groups[-1][1], groups[-1][3] = b, hi
        else:
            groups.append([b, b, lo, hi])
    return [_Chunk(0 if i == 0 else first, lo, hi, first == last)
            for i, (first, last, lo, hi) in enumerate(groups)]


def _set_threads(nthreads: int, nq: int, rows: int) -> None:
    """faiss parallelises over queries: use threads only for calls big enough to gain."""
    faiss.omp_set_num_threads(max(1, min(nthreads, nq)) if nq * rows >= _PARALLEL_PAIRS else 1)


def _range_search(q: np.ndarray, db: np.ndarray, radius: int,
                  nthreads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """faiss Hamming range search: rows of ``db`` with distance < radius, per query."""
    nq = len(q)
    res = faiss.RangeSearchResult(nq)
    _set_threads(nthreads, nq, len(db))
    faiss.hamming_range_search(faiss.swig_ptr(q), faiss.swig_ptr(db), nq, len(db), radius,
                               db.shape[1], res)
    lims = faiss.rev_swig_ptr(res.lims, nq + 1).astype(np.int64)
    n = int(lims[-1])
    if not n:
        return lims, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    labels = faiss.rev_swig_ptr(res.labels, n).astype(np.int64)
    dist = faiss.rev_swig_ptr(res.distances, n).astype(np.int64)
    return lims, labels, dist


def _knn(q: np.ndarray, db: np.ndarray, k: int, nthreads: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss heap k-NN by Hamming; among equal distances the lower row wins (scan order)."""
    _set_threads(nthreads, len(q), len(db))
    dist, labels = faiss.knn_hamming(q, db, k)
    return dist.astype(np.int64), labels


def _hammings(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All Hamming distances between two packed sets, (len(a), len(b)) int64."""
    out = np.empty((len(a), len(b)), dtype=np.int32)
    if out.size:
        faiss.hammings(faiss.swig_ptr(a), faiss.swig_ptr(b), len(a), len(b), a.shape[1],
                       faiss.swig_ptr(out))
    return out.astype(np.int64)


def _first_k_per_query(qi: np.ndarray, rows: np.ndarray, scores: np.ndarray,
                       k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep each query's first k by (score desc, row asc); output sorted by query."""
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
