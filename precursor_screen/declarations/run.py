"""Stream declaration files through the screen in chunks, resumably, on any executor.

    inputs -> chunks of N rows -> executor (inline, processes, Dask) -> part files -> output

Chunk ``k`` is rows ``[k*N, (k+1)*N)`` of the inputs read in order. Each chunk's output is written
atomically to ``<work dir>/part-<k>.parquet``; the work dir's ``manifest.json`` records the run's
identity (input hashes, column mapping, chunk size, output format, and the screen configuration's
fingerprint). A run killed at any moment and started again with the same command finds the same
identity, keeps the parts already there, screens the rest, and assembles the output from the parts
in order: byte for byte what an uninterrupted run writes, since every row's verdict is a pure
function of the row and the configuration. A different identity starts over.

Outputs carry no wall-clock time (the manifest does), so equal runs give equal files. Every
input row yields one output row; :class:`RunSummary` reconciles the counts.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from precursor_screen.chem.parse import quiet_rdkit
from precursor_screen.declarations.schema import (
    Declaration,
    InputSpec,
    count_rows,
    expand_inputs,
    read_declarations,
)
from precursor_screen.declarations.verdict import (
    VERDICTS,
    DeclarationConfig,
    DeclarationScreener,
    reference_inventory,
)
from precursor_screen.errors import InputError, PrecursorScreenError
from precursor_screen.io.formats import output_format
from precursor_screen.io.readers import read_arrow
from precursor_screen.io.text import DEFAULT_LIMITS, InputStats, Limits
from precursor_screen.io.writers import META_KEY, arrow_table, atomic_open, write_arrow
from precursor_screen.manifest import file_sha256, run_metadata
from precursor_screen.parallel import (
    dask_client,
    dask_wait_some,
    dask_workers,
    process_executor,
    windowed,
)
from precursor_screen.results import DECLARATIONS, names
from precursor_screen.version import __version__

__all__ = ["OUTPUT_FORMATS", "output_format", "RunSummary", "ChunkResult", "Executor",
           "InlineExecutor", "ProcessExecutor", "DaskExecutor", "run_declarations",
           "output_metadata", "portable_task", "judge_chunk", "part_table", "write_rows",
           "read_output", "WorkDirBusy"]

OUTPUT_FORMATS = ("csv", "tsv", "parquet", "jsonl")
DEFAULT_CHUNK_SIZE = 5000
_META_KEY = META_KEY


class WorkDirBusy(PrecursorScreenError):
    """Another run holds the work directory."""


def declarations_format(path: str, given: str | None = None) -> str:
    """The output format of a declarations run: csv, tsv, parquet or jsonl."""
    return output_format(path, given, allowed=OUTPUT_FORMATS)


# -- chunks -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChunkResult:
    """A screened chunk: its index, the part file's bytes, rows and counts per verdict."""

    index: int
    data: bytes
    rows: int
    counts: dict[str, int]


def part_table(rows: Sequence[tuple[Any, ...]], metadata: dict[bytes, bytes] | None = None) -> pa.Table:
    """Output rows (tuples in DECLARATIONS column order) as an Arrow table."""
    return arrow_table(DECLARATIONS, rows, metadata)


def judge_chunk(screener: DeclarationScreener, index: int,
                rows: Sequence[Declaration] | Sequence[tuple[Any, ...]], key: str) -> ChunkResult:
    """Screen one chunk (Declarations, or their tuples) into a part file's bytes; the unit every
    executor runs."""
    decls = [r if isinstance(r, Declaration) else Declaration(*r) for r in rows]
    with quiet_rdkit():
        out = screener.judge_rows(decls, __version__, screener.config.reference.content_hash)
    counts = Counter(r[2] for r in out)
    meta = {_META_KEY: json.dumps({"key": key, "index": index, "rows": len(out),
                                   "counts": dict(sorted(counts.items()))}).encode()}
    buf = io.BytesIO()
    pq.write_table(part_table(out, meta), buf, compression="zstd")
    return ChunkResult(index, buf.getvalue(), len(out), dict(counts))


Task = tuple[int, list[Declaration]]


def portable_task(task: Task) -> tuple[int, list[tuple[Any, ...]]]:
    """A task as plain tuples: cheaper to pickle to another process than dataclasses."""
    return task[0], [d.as_tuple() for d in task[1]]


class Executor(Protocol):
    """Runs chunks: yields a ChunkResult per task, in any order, holding few tasks at a time."""

    def run(self, tasks: Iterable[Task], key: str) -> Iterator[ChunkResult]: ...


class InlineExecutor:
    """Screens chunks in this process."""

    def __init__(self, config: DeclarationConfig, screener: DeclarationScreener | None = None) -> None:
        self.config = config
        self._screener = screener

    @property
    def screener(self) -> DeclarationScreener:
        if self._screener is None:
            self._screener = DeclarationScreener(self.config)
        return self._screener

    def run(self, tasks: Iterable[Task], key: str) -> Iterator[ChunkResult]:
        for index, rows in tasks:
            yield judge_chunk(self.screener, index, rows, key)

    def close(self) -> None:
        pass


_WORKER: DeclarationScreener | None = None


def _init_worker(config: DeclarationConfig, screener: DeclarationScreener | None) -> None:
    global _WORKER
    _WORKER = screener if screener is not None else DeclarationScreener(config)


def _work(task: tuple[int, list[tuple[Any, ...]]], key: str) -> ChunkResult:
    assert _WORKER is not None
    return judge_chunk(_WORKER, task[0], task[1], key)


class ProcessExecutor:
    """Screens chunks on ``jobs`` worker processes (forked: they share the built screener)."""

    def __init__(self, config: DeclarationConfig, jobs: int) -> None:
        self.config = config
        self.jobs = max(1, jobs)

    def run(self, tasks: Iterable[Task], key: str) -> Iterator[ChunkResult]:
        screener = DeclarationScreener(self.config)  # forked workers inherit it
        with process_executor(self.jobs, _init_worker, (self.config, screener)) as pool:
            yield from windowed(lambda t: pool.submit(_work, portable_task(t), key), tasks,
                                2 * self.jobs)

    def close(self) -> None:
        pass


_SCREENERS: dict[str, DeclarationScreener] = {}
_LOCK = threading.Lock()


def _dask_screener(config: DeclarationConfig) -> DeclarationScreener:
    """The worker process's screener for ``config``, built once (threads arriving together wait
    for one build); its caches hold only answers that do not depend on who computed them."""
    with _LOCK:
        found = _SCREENERS.get(config.fingerprint)
        if found is None:
            if len(_SCREENERS) >= 4:
                _SCREENERS.clear()
            found = _SCREENERS[config.fingerprint] = DeclarationScreener(config)
    return found


def _dask_task(config: DeclarationConfig, task: tuple[int, list[tuple[Any, ...]]],
               key: str) -> ChunkResult:
    return judge_chunk(_dask_screener(config), task[0], task[1], key)


class DaskExecutor:
    """Screens chunks on Dask: ``scheduler`` is a running cluster's address, else ``workers``
    starts a LocalCluster (``processes=False`` keeps its workers as threads of this process).

    The client streams chunks to the workers and writes the parts they return, so workers need
    the package but no shared file system. Use as a context manager: the cluster (or the client)
    closes on exit.
    """

    def __init__(self, config: DeclarationConfig, scheduler: str | None = None,
                 workers: int | None = None, processes: bool = True) -> None:
        if not scheduler and not workers:
            raise PrecursorScreenError("Dask needs a scheduler address or a number of workers")
        self.config = config
        self._client_cm = dask_client(scheduler, workers, processes=processes)
        self.client: Any = None

    def __enter__(self) -> "DaskExecutor":
        self.client = self._client_cm.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._client_cm.__exit__(*exc)

    def run(self, tasks: Iterable[Task], key: str) -> Iterator[ChunkResult]:
        config = self.client.scatter(self.config, broadcast=True)
        yield from windowed(lambda t: self.client.submit(_dask_task, config, portable_task(t), key,
                                                         pure=False),
                            tasks, 3 * dask_workers(self.client), dask_wait_some)


# -- the run ----------------------------------------------------------------------------------

@dataclass
class RunSummary:
    """Counts of a finished run: rows in equal rows out, verdict counts sum to the rows."""

    rows_in: int = 0
    rows_out: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    chunks: int = 0
    chunks_resumed: int = 0
    seconds: float = 0.0
    output: str = ""
    stats: InputStats = field(default_factory=InputStats)

    def text(self) -> str:
        verdicts = ", ".join(f"{v} {self.counts.get(v, 0)}" for v in VERDICTS)
        resumed = (f"; resumed: {self.chunks_resumed} of {self.chunks} chunks already done"
                   if self.chunks_resumed else "")
        rate = f" in {self.seconds:.1f} s ({self.rows_in / self.seconds:,.0f} rows/s)" if self.seconds else ""
        notes = f"; {self.stats.text()}" if self.stats.text() else ""
        return (f"{self.rows_in} rows in, {self.rows_out} rows out: {verdicts}{resumed}{rate}"
                f"{notes}")

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows_out, "verdicts": {v: self.counts.get(v, 0) for v in VERDICTS}}


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def _sha256(path: str) -> str:
    """sha256 of a file, remembered by (path, size, mtime) so a run hashes each input once."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = file_sha256(path)
    return _SHA_CACHE[key]


def output_metadata(config: DeclarationConfig, inputs: Sequence[str], spec: InputSpec,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The metadata an output records: run_metadata without its timestamp (outputs of equal runs
    are equal), the parameters, the input hashes and the reference list's inventory."""
    meta = run_metadata(config.reference, {**config.parameters_dict(), "input": spec.as_dict(),
                                           **(extra or {})})
    meta.pop("created", None)
    meta["inputs"] = [{"path": p, "sha256": _sha256(p)} for p in expand_inputs(inputs)]
    meta["columns"] = list(names(DECLARATIONS))
    meta["reference_inventory"] = reference_inventory(config.reference)
    return meta


def run_identity(inputs: Sequence[str], spec: InputSpec, config: DeclarationConfig,
                 chunk_size: int, fmt: str) -> dict[str, Any]:
    """What makes two runs the same run (and lets one resume the other)."""
    return {"tool_version": __version__,
            "inputs": [{"name": os.path.basename(p), "sha256": _sha256(p)} for p in expand_inputs(inputs)],
            "input": spec.as_dict(), "chunk_size": chunk_size, "format": fmt,
            "config": config.fingerprint}


def run_declarations(inputs: Sequence[str], output: str, config: DeclarationConfig, *,
                     spec: InputSpec | None = None, fmt: str | None = None,
                     chunk_size: int = DEFAULT_CHUNK_SIZE, executor: Executor | None = None,
                     work_dir: str | None = None, keep_parts: bool = False,
                     metadata: dict[str, Any] | None = None, progress: Any = None,
                     notify: Callable[[str], None] = lambda _msg: None,
                     limits: Limits = DEFAULT_LIMITS, raw_cells: bool = False) -> RunSummary:
    """Screen declaration files into ``output``; resumes an interrupted run of the same identity.

    ``metadata`` is the run metadata recorded in the output (deterministic: no timestamps);
    ``progress`` a tqdm-like bar (``update``, ``total``); ``notify`` receives notes for the user;
    ``limits`` bound what a line or a gzip stream may cost; ``raw_cells`` writes CSV/TSV cells
    without formula neutralisation (``io.writers``).
    """
    start = time.perf_counter()
    spec = spec or InputSpec()
    out_fmt = declarations_format(output, fmt)
    if chunk_size < 1:
        raise InputError("--chunk-size must be at least 1")
    identity = run_identity(inputs, spec, config, chunk_size, out_fmt)
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    temporary = output == "-" and work_dir is None
    work = work_dir or (tempfile.mkdtemp(prefix="precursor-screen-") if temporary
                        else output + ".parts")
    os.makedirs(work, exist_ok=True)
    executor = executor or InlineExecutor(config)
    summary = RunSummary(output=output)
    with _locked(work):
        done = _prepare_work_dir(work, key, identity, notify)
        summary.chunks_resumed = len(done)
        total = count_rows(inputs, spec)
        if progress is not None and total is not None:
            progress.total = total
        rows_in = [0]

        def tasks() -> Iterator[Task]:
            for index, chunk in _chunks(read_declarations(inputs, spec, limits=limits,
                                                          stats=summary.stats),
                                        chunk_size, rows_in):
                if index in done:
                    if progress is not None:
                        progress.update(done[index])
                    continue
                yield index, chunk

        for result in executor.run(tasks(), key):
            with atomic_open(_part_path(work, result.index), "wb") as fh:
                fh.write(result.data)
            done[result.index] = result.rows
            if progress is not None:
                progress.update(result.rows)
        summary.rows_in = rows_in[0]
        summary.chunks = -(-summary.rows_in // chunk_size)
        meta = dict(metadata or {})
        if summary.stats.rows != summary.rows_in:  # pragma: no cover - the reader counts both
            raise PrecursorScreenError(f"{summary.stats.rows} rows read, {summary.rows_in} "
                                       "chunked: not written (a bug; please report it)")
        summary.rows_out, summary.counts = _assemble(work, output, out_fmt, summary.chunks,
                                                     chunk_size, summary.rows_in, key, meta,
                                                     raw_cells)
    if not keep_parts or temporary:
        shutil.rmtree(work, ignore_errors=True)
    summary.seconds = time.perf_counter() - start
    return summary


def _chunks(decls: Iterable[Declaration], size: int, counter: list[int]
            ) -> Iterator[tuple[int, list[Declaration]]]:
    chunk: list[Declaration] = []
    index = 0
    for d in decls:
        chunk.append(d)
        counter[0] += 1
        if len(chunk) == size:
            yield index, chunk
            index += 1
            chunk = []
    if chunk:
        yield index, chunk


def _part_path(work: str, index: int) -> str:
    return os.path.join(work, f"part-{index:06d}.parquet")


class _locked:
    """An exclusive lock on the work dir, released by the OS when this process dies.

    A POSIX record lock (``lockf``), not ``flock``: worker processes forked while it is held do
    not inherit it, so a killed run's orphans (if any outlived it) cannot keep the next run
    out. The lock file names the holder's process id for the message."""

    def __init__(self, work: str) -> None:
        self.path = os.path.join(work, ".lock")
        self.fd: int | None = None

    def __enter__(self) -> "_locked":
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self.fd, 32, 0).decode("ascii", "replace").strip()
            os.close(self.fd)
            raise WorkDirBusy(f"{os.path.dirname(self.path)}: another run (process "
                              f"{holder or 'unknown'}) is using this work directory") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.fd is not None
        fcntl.lockf(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _prepare_work_dir(work: str, key: str, identity: dict[str, Any],
                      notify: Callable[[str], None]) -> dict[int, int]:
    """Parts of this run already done (index -> rows); stale files of other runs removed."""
    for tmp in glob.glob(os.path.join(work, ".*.tmp")):
        os.unlink(tmp)  # a temp file left by a killed run: never complete
    manifest_path = os.path.join(work, "manifest.json")
    previous = None
    if os.path.exists(manifest_path):
        try:
            with open(manifest_path, encoding="utf-8") as fh:
                previous = json.load(fh).get("key")
        except (OSError, ValueError):
            previous = None
    parts = sorted(glob.glob(os.path.join(work, "part-*.parquet")))
    done: dict[int, int] = {}
    if previous == key:
        for path in parts:
            try:
                info = json.loads(pq.read_schema(path).metadata[_META_KEY])
            except Exception:  # noqa: BLE001 - an unreadable part is redone
                info = {}
            if info.get("key") == key:
                done[int(info["index"])] = int(info["rows"])
            else:
                os.unlink(path)
        if done:
            notify(f"resuming: {len(done)} chunks already screened in {work}")
        return done
    if parts:
        notify(f"{work} holds parts of a different run (other inputs or parameters): starting over")
    for path in parts:
        os.unlink(path)
    with atomic_open(manifest_path, "w", encoding="utf-8") as fh:
        json.dump({"key": key, "identity": identity,
                   "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, fh, indent=1, sort_keys=True)
    return done


def _assemble(work: str, output: str, fmt: str, chunks: int, chunk_size: int, rows_in: int,
              key: str, meta: dict[str, Any], raw_cells: bool = False) -> tuple[int, dict[str, int]]:
    """Write the output from the parts in order; return rows written and verdict counts."""
    paths = [_part_path(work, k) for k in range(chunks)]
    counts: Counter[str] = Counter()
    rows = 0
    for k, path in enumerate(paths):
        if not os.path.exists(path):
            raise PrecursorScreenError(f"{path}: part missing after the run (rerun to redo it)")
        info = json.loads(pq.read_schema(path).metadata[_META_KEY])
        expected = min(chunk_size, rows_in - k * chunk_size)
        if info.get("key") != key or info.get("rows") != expected:
            raise PrecursorScreenError(f"{path}: holds {info.get('rows')} rows, expected {expected}")
        counts.update(info["counts"])
        rows += expected
    if rows != rows_in:
        raise PrecursorScreenError(f"{rows} rows screened for {rows_in} read")
    meta["summary"] = {"rows": rows, "verdicts": {v: counts.get(v, 0) for v in VERDICTS}}
    tables = (pq.read_table(p) for p in paths)
    write_rows(output, fmt, tables, meta, raw_cells)
    return rows, {v: counts.get(v, 0) for v in VERDICTS}


def write_rows(output: str, fmt: str, tables: Iterable[pa.Table], meta: dict[str, Any],
               raw_cells: bool = False) -> None:
    """Write Arrow tables of DECLARATIONS rows to ``output`` atomically, with metadata."""
    write_arrow(output, fmt, DECLARATIONS, tables, meta, raw_cells=raw_cells)


def read_output(path: str) -> tuple[Iterator[pa.Table], dict[str, Any]]:
    """Stream a declarations output back as Arrow tables of DECLARATIONS, with its metadata."""
    return read_arrow(path, DECLARATIONS)
