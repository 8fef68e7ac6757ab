"""A library index: millions of compounds standardized and fingerprinted once, searched exactly.

On disk an index is a directory::

    DIR/manifest.json             counts, recipes, versions, inputs, and every file's sha256
    DIR/shards/<first row>/       one shard per ``shard_size`` input rows (12-digit first row)
        molecules.parquet         one row per input row, unreadable ones included:
                                  row, id, input_smiles, smiles, key, status, heavy_atoms
        similarity/               TanimotoIndex.save(): morgan2 codes (faiss's binary layout,
                                  sorted by popcount), order, bands, profiles
        substructure/             SubstructureIndex.save(): pattern-fingerprint screen and the
                                  canonical SMILES
        unreadable.npy            shard rows without fingerprints (int32, ascending)

Both indexes hold the shard's readable rows in order, so their position *p* is the shard row
``p + (unreadable rows before it)``: a few bytes per bad row instead of a row id per molecule.

``smiles`` is the standardized parent (:func:`precursor_screen.chem.standardize.standardize`, the one
standardization every comparison uses) and ``key`` its stereo-free form, the identity the list is
matched on. ``status`` is ``ok`` or why the row could not be read; such rows stay in the table
(rows out equal rows in) and have no fingerprint. Fingerprints are of the parent: they equal the
fingerprints RDKit makes from the stored ``smiles`` (checked by the tests), so "the same
fingerprints" is something anyone can recompute from the table.

Why shards. A shard is built by one task from its own rows, in a worker process or on a Dask
worker, so memory is bounded by ``shard_size`` times the workers, whatever the library's size;
searches run shard by shard (or one task per shard on Dask) and are merged by global row number.
Rows are numbered in input order across all inputs and shards, which makes every merged answer
equal to a single index's: threshold hits sorted by (score descending, row ascending), top-k the
first k in that order, substructure rows ascending.

Appending adds shards after the last one; row numbers continue. A shard is written under a
temporary name and renamed when complete, and the manifest is replaced last, so a reader sees the
old index or the new one; a fresh build is made beside the target and renamed into place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import rdkit
from rdkit import Chem

from precursor_screen.chem.fingerprint import Recipe, get_recipe
from precursor_screen.chem.parse import parse_record, parse_smiles, quiet_rdkit
from precursor_screen.chem.standardize import StandardizeError, standardize
from precursor_screen.errors import (
    InputError,
    PrecursorScreenError,
    UnknownSubstanceError,
)
from precursor_screen.io.readers import Notify, Record, read_inputs
from precursor_screen.manifest import file_sha256
from precursor_screen.parallel import (
    dask_wait_some,
    dask_workers,
    process_executor,
    windowed,
)
from precursor_screen.search.substructure import QueryError, SubstructureIndex
from precursor_screen.search.tanimoto import HitArrays, TanimotoIndex
from precursor_screen.version import __version__

__all__ = ["LibraryIndex", "LibraryIndexError", "Shard", "build_index", "build_shard",
           "FORMAT", "FORMAT_VERSION", "DEFAULT_SHARD_SIZE", "TABLE_COLUMNS", "merge_hits",
           "Query", "read_queries", "similar_rows", "smarts_rows"]

FORMAT = "precursor-screen/library-index"
FORMAT_VERSION = 1
DEFAULT_SHARD_SIZE = 100_000
"""Rows per shard: ~100 MB of RDKit molecules held by the worker building it."""
SIMILARITY_RECIPE = "morgan2"
PATTERN_RECIPE = "pattern"
TABLE_FILE = "molecules.parquet"
TABLE_COLUMNS = ("row", "id", "input_smiles", "smiles", "key", "status", "heavy_atoms")


class LibraryIndexError(PrecursorScreenError):
    """An index directory that cannot be built, appended to or read; the message names it."""


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard as the manifest records it: rows ``first_row`` .. ``first_row + rows - 1``."""

    name: str
    first_row: int
    rows: int                               # input rows (unreadable ones included)
    indexed: int                            # rows with fingerprints (status "ok")
    files: tuple[tuple[str, str], ...]      # (path relative to the index directory, sha256)
    unreadable: tuple[tuple[str, int], ...] = ()   # reason (text before ':') -> rows

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "first_row": self.first_row, "rows": self.rows,
                "indexed": self.indexed, "files": dict(self.files),
                "unreadable": dict(self.unreadable)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Shard":
        return cls(str(d["name"]), int(d["first_row"]), int(d["rows"]), int(d["indexed"]),
                   tuple(sorted(dict(d["files"]).items())),
                   tuple(sorted(dict(d.get("unreadable", {})).items())))


# ---------------------------------------------------------------------- building


def build_shard(directory: str, name: str, first_row: int,
                records: Sequence[tuple[str, str, str | None, str]],
                recipes: tuple[Mapping[str, Any], Mapping[str, Any]]) -> Shard:
    """Standardize, fingerprint and write one shard; return what the manifest records of it.

    ``records`` are ``(id, smiles, molblock, error)``, row ``first_row + i`` each. A row that
    cannot be parsed or standardized gets its reason as status and no fingerprint. Runs in a
    worker process or on a Dask worker: everything it needs comes in its arguments, and the
    shard appears under its final name only when complete.
    """

    similarity = Recipe.from_manifest(recipes[0])
    pattern = Recipe.from_manifest(recipes[1])
    root = Path(directory)
    final = root / "shards" / name
    tmp = root / "shards" / f".{name}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    n = len(records)
    ids, inputs, smiles, keys, statuses = [], [], [], [], []
    heavy = np.zeros(n, dtype=np.int32)
    # Each molecule is fingerprinted as it is read and then let go: an RDKit molecule takes
    # ~30 kB, so holding a shard's 100,000 took ~3 GB per worker (and slowed RDKit's allocations)
    similar_bits, pattern_bits = bytearray(), bytearray()
    similar_fp, pattern_fp = similarity.packer(), pattern.packer()
    natoms: list[int] = []
    ok_smiles: list[str] = []
    with quiet_rdkit():
        for i, (ident, text, molblock, error) in enumerate(records):
            std = None
            status = error
            mol = None
            if not status:
                mol, status = parse_record(text, molblock)
            if mol is not None:
                try:
                    std = standardize(mol)
                except StandardizeError as exc:
                    status = str(exc) or "cannot standardize"
            if molblock is not None and not text and mol is not None:
                text = Chem.MolToSmiles(mol)
            ids.append(ident)
            inputs.append(text)
            if std is None:
                smiles.append("")
                keys.append("")
                statuses.append(status or "unreadable")
                continue
            parent = std.mol
            smiles.append(std.smiles)
            ok_smiles.append(std.smiles)
            keys.append(std.key)
            statuses.append("ok")
            heavy[i] = parent.GetNumHeavyAtoms()
            natoms.append(parent.GetNumAtoms())
            similar_bits += similar_fp(parent)
            pattern_bits += pattern_fp(parent, std.smiles)   # from the SMILES: ~8x faster
        rows = np.arange(first_row, first_row + n, dtype=np.int64)
        table = pa.table({"row": rows, "id": pa.array(ids, pa.string()),
                          "input_smiles": pa.array(inputs, pa.string()),
                          "smiles": pa.array(smiles, pa.string()),
                          "key": pa.array(keys, pa.string()),
                          "status": pa.array(statuses, pa.string()), "heavy_atoms": heavy})
        pq.write_table(table, tmp / TABLE_FILE, compression="zstd")
        ok = np.asarray(statuses, dtype=object) == "ok"
        unreadable = np.flatnonzero(~ok).astype(np.int32)
        np.save(tmp / "unreadable.npy", unreadable, allow_pickle=False)
        if ok_smiles:
            packed = np.frombuffer(similar_bits, dtype=np.uint8).reshape(-1, similarity.code_size)
            TanimotoIndex(packed, recipe=similarity).save(tmp / "similarity")
            del packed, similar_bits
            # the parents' canonical SMILES come from standardize: not canonicalized again
            SubstructureIndex.from_fingerprints(
                np.frombuffer(pattern_bits, dtype=np.uint8).reshape(-1, pattern.code_size),
                natoms, ok_smiles, recipe=pattern, keep_molecules=False
            ).save(tmp / "substructure")
    files = tuple(sorted((f"shards/{name}/{p.relative_to(tmp).as_posix()}",
                          file_sha256(str(p)))
                         for p in tmp.rglob("*") if p.is_file()))
    if final.exists():      # left by an interrupted append: never in the manifest
        shutil.rmtree(final)
    os.replace(tmp, final)
    bad = Counter(s.split(":", 1)[0] for s in statuses if s != "ok")
    return Shard(name, first_row, n, len(ok_smiles), files, tuple(sorted(bad.items())))


def build_index(records: Iterable[Record], directory: str | os.PathLike[str], *,
                append: bool = False, shard_size: int = DEFAULT_SHARD_SIZE, jobs: int = 1,
                client: Any = None, on_shard: Callable[[Shard], None] | None = None,
                inputs: Sequence[str] = ()) -> dict[str, Any]:
    """Build (or with ``append`` extend) the index at ``directory``; return its manifest.

    Every record becomes one table row, numbered from 0 (or from the rows already there) in
    stream order. Shards are built by ``jobs`` worker processes, or by the Dask ``client``'s
    workers (which must see ``directory``); at most a few shards of raw records are in flight,
    so memory stays bounded on any library size. ``on_shard`` is called as each shard is done
    (progress). ``inputs`` are the file names, recorded in the manifest with their sha256.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be positive, not {shard_size}")
    target = Path(directory)
    recipes = (get_recipe(SIMILARITY_RECIPE).manifest(), get_recipe(PATTERN_RECIPE).manifest())
    if append:
        manifest = _read_manifest(target)
        for old, new, what in zip(manifest["recipes"].values(), recipes, ("similarity", "pattern")):
            if _recipe_params(old) != _recipe_params(new):
                raise LibraryIndexError(f"{target}: built with {what} recipe {old.get('name')} "
                                        f"{old.get('params')}; this version makes "
                                        f"{new.get('params')}: build a new index")
        work = target
        base = int(manifest["counts"]["rows"])
        shards = [Shard.from_dict(d) for d in manifest["shards"]]
    else:
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise LibraryIndexError(f"{target} exists: use --append to add molecules to it, or "
                                    "remove it to build anew")
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.building.", dir=target.parent))
        (work / "shards").mkdir()
        manifest = {"created": _now(), "inputs": []}
        base, shards = 0, []
    try:
        per_input: Counter[str] = Counter()
        new = _run_shards(_batches(records, shard_size, base, per_input), str(work), recipes,
                          jobs, client, on_shard)
        shards = sorted(shards + new, key=lambda s: s.first_row)
        start = base
        for path in inputs:   # rows of each input, in the order they were read
            count = per_input.get(path, 0)
            manifest["inputs"].append({"path": str(path), "sha256": file_sha256(path),
                                       "first_row": start, "rows": count, "added": _now()})
            start += count
        manifest = _manifest(manifest, recipes, shard_size, shards)
        _write_json(work / "manifest.json", manifest)
        if not append:
            if target.exists():
                target.rmdir()
            os.replace(work, target)
    except BaseException:
        if not append:
            shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def _batches(records: Iterable[Record], size: int, base: int, per_input: Counter[str]
             ) -> Iterator[tuple[str, int, list[tuple[str, str, str | None, str]]]]:
    batch: list[tuple[str, str, str | None, str]] = []
    first = base
    for rec in records:
        batch.append((rec.id, rec.smiles, rec.molblock, rec.error))
        per_input[rec.source] += 1
        if len(batch) >= size:
            yield f"{first:012d}", first, batch
            first += len(batch)
            batch = []
    if batch:
        yield f"{first:012d}", first, batch


def _run_shards(batches: Iterator[tuple[str, int, list[Any]]], directory: str,
                recipes: tuple[Mapping[str, Any], Mapping[str, Any]], jobs: int, client: Any,
                on_shard: Callable[[Shard], None] | None) -> list[Shard]:
    """Build every batch's shard: inline, on a process pool, or on Dask; few in flight."""
    done: list[Shard] = []

    def finished(shard: Shard) -> None:
        done.append(shard)
        if on_shard is not None:
            on_shard(shard)

    if client is None and jobs <= 1:
        for name, first, batch in batches:
            finished(build_shard(directory, name, first, batch, recipes))
        return done
    if client is not None:
        def submit(item: tuple[str, int, list[Any]]) -> Any:
            name, first, batch = item
            data = client.scatter([batch], hash=False)[0]   # straight to a worker, not the graph
            return client.submit(build_shard, directory, name, first, data, recipes, pure=False)

        for shard in windowed(submit, batches, 2 * dask_workers(client), dask_wait_some):
            finished(shard)
        return done
    with process_executor(jobs) as pool:
        for shard in windowed(lambda item: pool.submit(build_shard, directory, *item, recipes),
                              batches, 2 * max(jobs, 1)):
            finished(shard)
    return done


def _manifest(previous: Mapping[str, Any], recipes: tuple[Mapping[str, Any], Mapping[str, Any]],
              shard_size: int, shards: Sequence[Shard]) -> dict[str, Any]:

    unreadable: Counter[str] = Counter()
    for s in shards:
        unreadable.update(dict(s.unreadable))
    rows = sum(s.rows for s in shards)
    indexed = sum(s.indexed for s in shards)
    content = hashlib.sha256()
    for s in shards:
        for path, digest in s.files:
            content.update(f"{path}\t{digest}\n".encode())
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "tool": "precursor-screen", "tool_version": __version__,
        "rdkit_version": rdkit.__version__, "numpy_version": np.__version__,
        "faiss_version": faiss.__version__, "pyarrow_version": pa.__version__,
        "created": previous.get("created", _now()), "updated": _now(),
        "standardization": "precursor_screen.chem.standardize.standardize: parent structure (salts, "
                           "solvents and charges removed); key = stereo-free canonical SMILES",
        "recipes": {"similarity": dict(recipes[0]), "substructure": dict(recipes[1])},
        "shard_size": shard_size,
        "counts": {"rows": rows, "indexed": indexed, "unreadable": rows - indexed,
                   "shards": len(shards)},
        "unreadable_by_reason": dict(sorted(unreadable.items())),
        "content_sha256": content.hexdigest(),
        "inputs": list(previous.get("inputs", [])),
        "layout": "shards/<first row>/molecules.parquet (columns " + ", ".join(TABLE_COLUMNS)
                  + "), similarity/ (TanimotoIndex), substructure/ (SubstructureIndex); "
                  "index position p = shard row p + (unreadable.npy rows before it)",
        "shards": [s.as_dict() for s in shards],
    }


# ---------------------------------------------------------------------- reading and searching


class LibraryIndex:
    """An index directory opened for searching; shards are loaded on first use and kept.

    Searches take packed query fingerprints (:meth:`fingerprints`) or RDKit query molecules and
    answer with global row numbers; :meth:`rows` gives ids and SMILES for them. With a Dask
    ``client`` a search runs one task per shard (each worker loads its shard from the shared
    directory); the merged answer is the same as in one process.

    ``threads`` searches that many shards at a time, on threads (faiss and RDKit release the
    GIL); each shard's own search runs on one thread, so the answer never depends on it.
    """

    def __init__(self, directory: str | os.PathLike[str], *, mmap: bool = False,
                 threads: int = 1) -> None:
        self.path = Path(directory)
        raw = _read_manifest_bytes(self.path)
        self.manifest: dict[str, Any] = _parse_manifest(self.path, raw)
        self.manifest_sha256 = hashlib.sha256(raw).hexdigest()
        self.shards = tuple(Shard.from_dict(d) for d in self.manifest["shards"])
        self.mmap = mmap
        self.threads = threads
        self.recipe = Recipe.from_manifest(self.manifest["recipes"]["similarity"])
        self.pattern_recipe = Recipe.from_manifest(self.manifest["recipes"]["substructure"])
        self._similarity: dict[str, TanimotoIndex] = {}
        self._substructure: dict[str, SubstructureIndex] = {}
        self._tables: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._maps: dict[str, _RowMap] = {}
        self._starts = np.array([s.first_row for s in self.shards], dtype=np.int64)

    def __len__(self) -> int:
        return int(self.manifest["counts"]["rows"])

    def __repr__(self) -> str:
        return (f"LibraryIndex({self.path}: {len(self)} rows, {self.indexed} indexed, "
                f"{len(self.shards)} shards)")

    @property
    def indexed(self) -> int:
        """Rows with fingerprints (status ok)."""
        return int(self.manifest["counts"]["indexed"])

    def describe(self) -> dict[str, Any]:
        """What an output records of the index it searched: path, manifest hash, counts."""
        return {"path": str(self.path), "manifest_sha256": self.manifest_sha256,
                "content_sha256": self.manifest["content_sha256"],
                "rows": len(self), "indexed": self.indexed, "shards": len(self.shards),
                "fingerprint": self.manifest["recipes"]["similarity"]}

    def verify(self) -> list[str]:
        """Return one line per file whose sha256 differs from the manifest's (or is missing)."""
        problems = []
        for shard in self.shards:
            for rel, digest in shard.files:
                path = self.path / rel
                if not path.is_file():
                    problems.append(f"{rel}: missing")
                elif file_sha256(str(path)) != digest:
                    problems.append(f"{rel}: sha256 differs from manifest.json")
        return problems

    # -- shards

    def similarity(self, shard: Shard) -> TanimotoIndex | None:
        """The shard's TanimotoIndex (None when no row of it could be read)."""
        return self._shard_index(self._similarity, _load_similarity, shard)

    def substructure(self, shard: Shard) -> SubstructureIndex | None:
        """The shard's SubstructureIndex (None when no row of it could be read)."""
        return self._shard_index(self._substructure, _load_substructure, shard)

    def _shard_index(self, cache: dict[str, Any], load: Callable[..., Any], shard: Shard) -> Any:
        """A shard's index, loaded once (and the shard's row map with it)."""
        if not shard.indexed:
            return None
        if shard.name not in cache:
            cache[shard.name] = load(self.path, shard, self.mmap, 1)
            self._rows_of(shard)
        return cache[shard.name]

    def table(self, shard: Shard, columns: Sequence[str] = TABLE_COLUMNS) -> Any:
        """The shard's Parquet table (pyarrow), read once per column set."""

        key = (shard.name, tuple(columns))
        if key not in self._tables:
            self._tables[key] = pq.read_table(self.path / "shards" / shard.name / TABLE_FILE,
                                              columns=list(columns))
        return self._tables[key]

    def iter_tables(self, columns: Sequence[str] = TABLE_COLUMNS) -> Iterator[Any]:
        """Each shard's table in row order, read one at a time (not kept)."""

        for shard in self.shards:
            yield pq.read_table(self.path / "shards" / shard.name / TABLE_FILE,
                                columns=list(columns))

    @property
    def nbytes(self) -> dict[str, int]:
        """Memory of what is loaded (bytes): the similarity indexes (codes, profiles, order,
        bands) and the substructure indexes (screens, SMILES), each with the row maps."""
        maps = sum(m.nbytes for m in self._maps.values())
        sim = sum(ix.nbytes for ix in self._similarity.values())
        sub = sum(ix.nbytes for ix in self._substructure.values())
        return {"similarity": int(sim + maps), "substructure": int(sub + maps)}

    def _rows_of(self, shard: Shard) -> "_RowMap":
        """The shard's map from index positions to global rows (loaded once)."""
        if shard.name not in self._maps:
            self._maps[shard.name] = _RowMap.load(self.path, shard)
        return self._maps[shard.name]

    def global_rows(self, shard: Shard, positions: np.ndarray) -> np.ndarray:
        """Global rows of ``shard``'s index positions (what its indexes number 0, 1, ...)."""
        return self._rows_of(shard).rows(np.asarray(positions, dtype=np.int64))

    def positions(self, shard: Shard, rows: np.ndarray) -> np.ndarray:
        """Index positions of global ``rows`` of ``shard`` (-1 for an unreadable row)."""
        return self._rows_of(shard).positions(np.asarray(rows, dtype=np.int64))

    # -- queries

    def fingerprints(self, mols: Sequence[Chem.Mol]) -> np.ndarray:
        """Packed query fingerprints made with the index's own recipe."""
        packed, _ = self.recipe.packed(list(mols))
        return packed

    def similar(self, queries: np.ndarray, threshold: float, *, client: Any = None) -> HitArrays:
        """Rows with Tanimoto >= ``threshold`` per query: (score desc, row asc), global rows."""
        q = _as_queries(queries, self.recipe.code_size)
        parts = self._map("similar", (q, float(threshold)), client)
        return merge_hits(parts, len(q))

    def top_k(self, queries: np.ndarray, k: int, *, client: Any = None) -> HitArrays:
        """The ``k`` best rows per query (ties: lower row first), as one index would give."""
        if int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, not {k!r}")
        q = _as_queries(queries, self.recipe.code_size)
        if client is not None:
            return merge_hits(self._map("top_k", (q, int(k)), client), len(q), int(k))
        return self._top_k_local(q, int(k))

    def _top_k_local(self, q: np.ndarray, k: int) -> HitArrays:
        """Top-k shard by shard, each shard after the first searched above the k-th score so far.

        The first ``threads`` shards give each query its exact top k there; its k-th score is a
        floor. A later shard can only add rows scoring strictly above the floor (its rows come
        after, so a tie loses to the row already held), so it gets a threshold search at the
        floor instead of a top-k of its own: queries are bucketed by floor (0.05 wide) so one
        call serves a bucket, and each query keeps its hits above its own floor. Floors only
        rise as shards are merged in. Exact, and the same answer as one index: see the tests.
        """
        nq = len(q)
        pairs = [(self.similarity(s), self._rows_of(s)) for s in self.shards if s.indexed]
        if not pairs or not nq:
            return merge_hits([], nq, k)
        width = max(1, self.threads)
        best = merge_hits(self._run(lambda p: _search("top_k", (q, k), *p), pairs[:width]), nq, k)
        for start in range(width, len(pairs), width):
            counts = np.diff(best.lims)
            kth = best.scores[np.maximum(best.lims[1:] - 1, 0)] if len(best.scores) else \
                np.zeros(nq)
            floors = np.where(counts >= k, kth, -1.0)    # -1: fewer than k so far, take all
            buckets = np.where(floors < 0, -1, np.floor(floors / _FLOOR_BUCKET)).astype(np.int64)
            tasks = []
            for b in np.unique(buckets).tolist():
                members = np.flatnonzero(buckets == b)
                low = float(floors[members].min())
                t = 0.0 if low < 0 else float(np.nextafter(low, 2.0))
                tasks += [(pair, members, t) for pair in pairs[start:start + width]]

            def above(task: tuple[Any, np.ndarray, float]) -> HitArrays:
                (index, rowmap), members, t = task
                hits = index.similar_arrays(q[members], t)
                qi = members[np.repeat(np.arange(len(members)), np.diff(hits.lims))]
                keep = (floors[qi] < 0) | (hits.scores > floors[qi])
                return _from_triples(nq, qi[keep], rowmap.rows(hits.rows[keep]),
                                     hits.scores[keep])

            best = merge_hits([best, *self._run(above, tasks)], nq, k)
        return best

    def _run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list[Any]:
        """``[fn(t) for t in tasks]``, on ``threads`` threads when there are more than one."""
        if self.threads <= 1 or len(tasks) <= 1:
            return [fn(t) for t in tasks]
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            return list(pool.map(fn, tasks))

    def smarts(self, pattern: str, *, client: Any = None) -> np.ndarray:
        """Global rows matching a SMARTS pattern (stereo ignored), ascending."""
        query = Chem.MolFromSmarts(pattern) if isinstance(pattern, str) else None
        if query is None:
            raise QueryError(f"unparsable SMARTS: {pattern!r}")
        return self._rows("smarts", pattern, client)

    def containing(self, query: Chem.Mol, *, client: Any = None) -> np.ndarray:
        """Global rows that contain ``query`` (a molecule or a SMARTS query), ascending."""
        return self._rows("containing", Chem.Mol(query), client)

    def contained_in(self, query: Chem.Mol, *, client: Any = None) -> np.ndarray:
        """Global rows that are substructures of ``query``, ascending."""
        return self._rows("contained_in", Chem.Mol(query), client)

    def scores(self, query: np.ndarray, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Exact Tanimoto of one packed query to each of the global ``rows`` (0.0: unreadable).

        The same arithmetic as the searches (an all-rows threshold search at 0.0 of each shard
        holding some of the rows), so a score here equals the score a search reports.
        """
        q = _as_queries(query, self.recipe.code_size)[:1]
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(len(rows), dtype=np.float64)
        if not len(rows):
            return out
        which = np.searchsorted(self._starts, rows, side="right") - 1
        for si in np.unique(which).tolist():
            index = self.similarity(self.shards[si])
            if index is None:
                continue
            hits = index.similar_arrays(q, 0.0)
            by_position = np.zeros(len(index), dtype=np.float64)
            by_position[hits.rows] = hits.scores
            at = np.flatnonzero(which == si)
            pos = self.positions(self.shards[si], rows[at])
            out[at[pos >= 0]] = by_position[pos[pos >= 0]]
        return out

    def rows(self, rows: Sequence[int] | np.ndarray,
             columns: Sequence[str] = ("id", "smiles")) -> dict[str, list[Any]]:
        """Column values for global ``rows`` (any order, repeats allowed), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        out: dict[str, list[Any]] = {c: [None] * len(rows) for c in columns}
        if not len(rows):
            return out
        if rows.min() < 0 or rows.max() >= len(self):
            raise IndexError(f"row out of range (index has {len(self)} rows)")
        which = np.searchsorted(self._starts, rows, side="right") - 1
        for si in np.unique(which).tolist():
            shard = self.shards[si]
            at = np.flatnonzero(which == si)
            local = rows[at] - shard.first_row
            table = self.table(shard, tuple(columns))
            for c in columns:
                values = table.column(c).take(local).to_pylist()
                for i, v in zip(at.tolist(), values):
                    out[c][i] = v
        return out

    def _rows(self, kind: str, arg: Any, client: Any) -> np.ndarray:
        parts = self._map(kind, arg, client)
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def _map(self, kind: str, arg: Any, client: Any) -> list[Any]:
        shards = [s for s in self.shards if s.indexed]
        if client is None:
            indexes = [self.similarity(s) if kind in _SIMILARITY_KINDS else self.substructure(s)
                       for s in shards]
            maps = [self._rows_of(s) for s in shards]
            # shards side by side: faiss and RDKit's matching release the GIL
            return self._run(lambda im: _search(kind, arg, *im), list(zip(indexes, maps)))
        futures = [client.submit(_search_shard, str(self.path), s, kind, arg, pure=False)
                   for s in shards]
        return client.gather(futures)


_SIMILARITY_KINDS = ("similar", "top_k")


@dataclass(frozen=True)
class _RowMap:
    """Index position <-> global row for one shard, from its unreadable rows."""

    first_row: int
    unreadable: np.ndarray   # shard rows without fingerprints, ascending
    gaps: np.ndarray         # unreadable[i] - i: readable rows before the i-th unreadable one

    @classmethod
    def load(cls, root: Path, shard: Shard) -> "_RowMap":
        try:
            bad = np.load(root / "shards" / shard.name / "unreadable.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise LibraryIndexError(f"{root / 'shards' / shard.name}: {exc}") from None
        bad = bad.astype(np.int64)
        return cls(shard.first_row, bad, bad - np.arange(len(bad)))

    @property
    def nbytes(self) -> int:
        return int(self.unreadable.nbytes + self.gaps.nbytes)

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """Global rows of index positions.

        >>> m = _RowMap(100, np.array([1, 2, 5]), np.array([1, 1, 3]))
        >>> m.rows(np.array([0, 1, 2, 3, 4])).tolist()
        [100, 103, 104, 106, 107]
        """
        p = np.asarray(positions, dtype=np.int64)
        return self.first_row + p + np.searchsorted(self.gaps, p, side="right")

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """Index positions of global rows (-1 for an unreadable row).

        >>> m = _RowMap(100, np.array([1, 2, 5]), np.array([1, 1, 3]))
        >>> m.positions(np.array([100, 101, 103, 107])).tolist()
        [0, -1, 1, 4]
        """
        local = np.asarray(rows, dtype=np.int64) - self.first_row
        before = np.searchsorted(self.unreadable, local, side="left")
        return np.where(np.isin(local, self.unreadable), -1, local - before)


def _search(kind: str, arg: Any, index: Any, rowmap: _RowMap) -> Any:
    """One shard's answer, with the shard's index positions turned into global rows."""
    if kind == "similar":
        q, t = arg
        hits = index.similar_arrays(q, t)
        return HitArrays(hits.lims, rowmap.rows(hits.rows), hits.scores)
    if kind == "top_k":
        q, k = arg
        hits = index.top_k_arrays(q, k)
        return HitArrays(hits.lims, rowmap.rows(hits.rows), hits.scores)
    if kind == "smarts":
        rows = index.smarts(arg)
    elif kind == "containing":
        rows = index.containing(arg)
    elif kind == "contained_in":
        rows = index.contained_in(arg)
    else:  # pragma: no cover - internal
        raise ValueError(kind)
    return rowmap.rows(np.asarray(rows, dtype=np.int64))


def _search_shard(directory: str, shard: Shard, kind: str, arg: Any) -> Any:
    """A Dask task: load one shard (memory-mapped) and answer one search on it."""
    root = Path(directory)
    rowmap = _RowMap.load(root, shard)
    with quiet_rdkit():
        if kind in _SIMILARITY_KINDS:
            return _search(kind, arg, _load_similarity(root, shard, True, 1), rowmap)
        return _search(kind, arg, _load_substructure(root, shard, True, 1), rowmap)


_FLOOR_BUCKET = 0.05   # top-k: queries whose floors fall in one such interval share a search


def _from_triples(nq: int, qi: np.ndarray, rows: np.ndarray, scores: np.ndarray) -> HitArrays:
    """HitArrays from (query, row, score) triples, sorted by query, score desc, row asc."""
    o = np.lexsort((rows, -scores, qi))
    lims = np.zeros(nq + 1, dtype=np.int64)
    np.cumsum(np.bincount(qi, minlength=nq), out=lims[1:])
    return HitArrays(lims, rows[o].astype(np.int64), scores[o].astype(np.float64))


def merge_hits(parts: Sequence[HitArrays], nq: int, k: int | None = None) -> HitArrays:
    """Merge per-shard hits (global rows) per query: score descending, row ascending; first k.

    >>> a = HitArrays(np.array([0, 1, 2]), np.array([3, 1]), np.array([0.5, 0.9]))
    >>> b = HitArrays(np.array([0, 1, 1]), np.array([7]), np.array([0.5]))
    >>> merge_hits([a, b], 2).to_lists()
    [[(3, 0.5), (7, 0.5)], [(1, 0.9)]]
    >>> merge_hits([a, b], 2, k=1).to_lists()
    [[(3, 0.5)], [(1, 0.9)]]
    """
    qs, rows, scores = [], [], []
    for p in parts:
        counts = np.diff(p.lims)
        qs.append(np.repeat(np.arange(nq), counts))
        rows.append(p.rows)
        scores.append(p.scores)
    if not qs or not sum(len(r) for r in rows):
        return HitArrays(np.zeros(nq + 1, dtype=np.int64), np.empty(0, dtype=np.int64),
                         np.empty(0, dtype=np.float64))
    qi, r, s = np.concatenate(qs), np.concatenate(rows), np.concatenate(scores)
    o = np.lexsort((r, -s, qi))
    qi, r, s = qi[o], r[o], s[o]
    if k is not None:
        rank = np.arange(len(qi)) - np.searchsorted(qi, qi, side="left")
        keep = rank < k
        qi, r, s = qi[keep], r[keep], s[keep]
    lims = np.zeros(nq + 1, dtype=np.int64)
    np.cumsum(np.bincount(qi, minlength=nq), out=lims[1:])
    return HitArrays(lims, r.astype(np.int64), s.astype(np.float64))


def _load_similarity(root: Path, shard: Shard, mmap: bool, threads: int) -> TanimotoIndex:
    return TanimotoIndex.load(root / "shards" / shard.name / "similarity", mmap=mmap,
                              threads=threads)


def _load_substructure(root: Path, shard: Shard, mmap: bool, threads: int) -> SubstructureIndex:
    return SubstructureIndex.load(root / "shards" / shard.name / "substructure", mmap=mmap,
                                  threads=threads)


def _as_queries(queries: np.ndarray, code_size: int) -> np.ndarray:
    q = np.asarray(queries)
    if q.ndim == 1:
        q = q[None, :]
    if q.dtype != np.uint8 or q.ndim != 2 or q.shape[1] != code_size:
        raise ValueError(f"queries must be packed uint8 fingerprints of {code_size * 8} bits "
                         "(use LibraryIndex.fingerprints)")
    return np.ascontiguousarray(q)


# ---------------------------------------------------------------------- files


def _read_manifest_bytes(path: Path) -> bytes:
    try:
        return (path / "manifest.json").read_bytes()
    except FileNotFoundError:
        raise LibraryIndexError(f"{path}: not a library index (no manifest.json); build one with "
                                "`precursor-screen index build`") from None
    except OSError as exc:
        raise LibraryIndexError(f"{path}: cannot read manifest.json: {exc}") from None


def _parse_manifest(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise LibraryIndexError(f"{path / 'manifest.json'}: not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise LibraryIndexError(f"{path / 'manifest.json'}: not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise LibraryIndexError(f"{path / 'manifest.json'}: format version "
                                f"{manifest.get('format_version')}; this tool reads "
                                f"{FORMAT_VERSION}: rebuild the index")
    return manifest


def _read_manifest(path: Path) -> dict[str, Any]:
    return _parse_manifest(path, _read_manifest_bytes(path))


def _recipe_params(recipe: Mapping[str, Any]) -> tuple[Any, ...]:
    return (recipe.get("kind"), json.dumps(recipe.get("params"), sort_keys=True),
            recipe.get("fp_size"), recipe.get("bit_order"))


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


# ---------------------------------------------------------------------- queries


Query = tuple[int, str, str, "Chem.Mol | None", str]
"""(row, id, the query as given, its standardized parent or None, status)."""


def read_queries(text: str, registry: Any, *, fmt: str | None = None,
                 smiles_column: str | None = None, id_column: str | None = None,
                 notify: Notify | None = None) -> tuple[list[Query], list[str]]:
    """The queries ``text`` stands for, and the files read: a file of molecules (or ``-``), one
    SMILES, or the name, id or CAS number of a substance on ``registry``. A query that cannot be
    read keeps its row with the reason as status; text that is none of these raises InputError."""

    def one(row: int, ident: str, smiles: str, molblock: str | None = None,
            error: str = "") -> Query:
        if error:
            return row, ident, smiles, None, error
        mol, problem = parse_record(smiles, molblock)
        if mol is None:
            return row, ident, smiles, None, problem
        try:
            return row, ident, smiles, standardize(mol).mol, "ok"
        except StandardizeError as exc:
            return row, ident, smiles, None, str(exc)

    if text == "-" or os.path.isfile(text):
        return ([one(r.row, r.id, r.smiles, r.molblock, r.error)
                 for r in read_inputs((text,), fmt=fmt, smiles_column=smiles_column,
                                      id_column=id_column, notify=notify)], [text])
    mol, _ = parse_smiles(text)
    if mol is not None:
        return [one(0, text, text)], []
    try:
        s = registry.find(text)
    except UnknownSubstanceError:
        raise InputError(f"{text!r} is not a file, a SMILES RDKit can read, or a listed "
                         "substance's name, id or CAS") from None
    if not s.smiles:
        raise InputError(f"{s.name} has no single structure")
    return [one(0, s.id, s.smiles)], []


def similar_rows(index: LibraryIndex, queries: Sequence[Query], *, threshold: float | None = None,
                 top: int | None = None, client: Any = None, batch: int = 1024,
                 on_batch: Callable[[int], None] = lambda n: None) -> Iterator[dict[str, Any]]:
    """``search --similar`` rows (results.SEARCH_SIMILAR): for each query its hits, best first
    (``top`` most similar, else every row at or above ``threshold``); an unreadable query gives
    one row with its status. Queries are searched ``batch`` at a time; ``on_batch`` gets each
    batch's size when it is done."""
    for lo in range(0, len(queries), batch):
        part = queries[lo:lo + batch]
        good = [q for q in part if q[3] is not None]
        for q in part:
            if q[3] is None:
                yield {"query_row": q[0], "query_id": q[1], "query_smiles": q[2],
                       "query_status": q[4], "rank": None, "row": None, "id": None,
                       "smiles": None, "similarity": None}
        if good:
            packed = index.fingerprints([q[3] for q in good])
            hits = (index.top_k(packed, top, client=client) if top
                    else index.similar(packed, float(threshold or 0), client=client))
            info = index.rows(hits.rows, ("id", "smiles"))
            ids, smis = info["id"], info["smiles"]
            for qi, q in enumerate(good):
                lo_hit, hi_hit = int(hits.lims[qi]), int(hits.lims[qi + 1])
                for rank, h in enumerate(range(lo_hit, hi_hit), start=1):
                    yield {"query_row": q[0], "query_id": q[1], "query_smiles": q[2],
                           "query_status": "ok", "rank": rank, "row": int(hits.rows[h]),
                           "id": ids[h], "smiles": smis[h], "similarity": float(hits.scores[h])}
        on_batch(len(part))


def smarts_rows(index: LibraryIndex, pattern: str, *, client: Any = None
                ) -> list[dict[str, Any]]:
    """``search --smarts`` rows (results.SEARCH_SMARTS): every library row matching ``pattern``,
    ascending."""
    rows = index.smarts(pattern, client=client)
    info = index.rows(rows, ("id", "smiles"))
    return [{"row": row, "id": ident, "smiles": smi}
            for row, ident, smi in zip(rows.tolist(), info["id"], info["smiles"])]
