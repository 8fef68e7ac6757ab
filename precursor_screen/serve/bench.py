"""The lab bench's work, apart from the web: answer one query, screen one uploaded file.

A :class:`Bench` holds what a screen needs (the :class:`~precursor_screen.screen.Screener`, the
query :class:`~precursor_screen.lookup.Lookup`) built once when the server starts, the limits an
upload must keep, and a private working folder with the last few runs (the uploaded input, its
results file and its HTML report). The web layer (:mod:`precursor_screen.serve.app`) only turns
requests into these calls and their answers or :class:`BenchError` into responses.

Bad input never reaches the screen as an exception: a query naming nothing, an empty, binary,
oversized or over-long file is a :class:`BenchError` with the HTTP status it deserves and one
line saying why; a file within the limits gets exactly one result row per input row.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import shutil
import tempfile
import threading
import weakref
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from precursor_screen.errors import InputError, PrecursorScreenError, QueryError
from precursor_screen.io.formats import content_format, input_format
from precursor_screen.io.readers import Record, read_records
from precursor_screen.io.writers import write_bytes
from precursor_screen.lookup import Interpretation, Lookup, check_query
from precursor_screen.manifest import run_metadata
from precursor_screen.report import write_html
from precursor_screen.results import check_json, verdict_row, write_results
from precursor_screen.screen import Screener
from precursor_screen.types import Verdict

__all__ = ["Bench", "BenchError", "Limits", "Run"]

_NOT_TEXT = re.compile(b"[\x00-\x08\x0e-\x1f]")


class BenchError(PrecursorScreenError):
    """A request the bench refuses: ``status`` is the HTTP status (400 malformed, 413 too large,
    415 not a supported kind of file, 422 understood but naming no structure)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Limits:
    """What one request may bring: the upload's bytes (also once decompressed) and rows."""

    max_upload_bytes: int = 20 * 1024 * 1024
    max_rows: int = 10_000

    def describe(self) -> str:
        """For the page: "files up to 20 MB and 10,000 rows"."""
        mb = self.max_upload_bytes / (1024 * 1024)
        return f"files up to {mb:g} MB and {self.max_rows:,} rows"


@dataclass
class Run:
    """One screened upload: where its files are and what it found."""

    id: str
    directory: Path
    filename: str
    rows: int
    summary: dict[str, Any]
    metadata: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # how the file was read (no id column, ...)

    @property
    def results_file(self) -> Path:
        return self.directory / "results.csv"

    @property
    def report_file(self) -> Path:
        return self.directory / "report.html"


class Bench:
    """The screener, lookup, limits and recent runs of one lab-bench server.

    Calls may come from several threads: the screener is used by one at a time (a lock), and
    the OPSIN process behind the lookup has its own lock.
    """

    def __init__(self, screener: Screener, lookup: Lookup, limits: Limits = Limits(), *,
                 keep_runs: int = 20) -> None:
        self.screener, self.lookup, self.limits = screener, lookup, limits
        self.keep_runs = keep_runs
        self.workdir = Path(tempfile.mkdtemp(prefix="precursor-screen-bench-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.workdir), True)
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._lock = threading.Lock()

    # -- one query -------------------------------------------------------------------------

    def check(self, query: str) -> tuple[Interpretation, Verdict]:
        """How ``query`` was read and the full verdict; BenchError 422 when it names nothing."""
        if not isinstance(query, str):
            raise BenchError(400, 'expected {"query": "<SMILES, name or CAS number>"}')
        try:
            with self._lock:
                return check_query(self.lookup, self.screener, query)
        except QueryError as exc:
            raise BenchError(422, str(exc)) from None

    def check_json(self, query: str) -> dict[str, Any]:
        """What ``precursor-screen check QUERY --json`` prints."""
        meant, verdict = self.check(query)
        shown = query.strip() if "\n" not in query.strip() else "(molfile)"
        return check_json(shown, verdict, self.screener.reference.content_hash, meant.as_dict())

    # -- one file ----------------------------------------------------------------------------

    def screen_upload(self, filename: str, data: bytes, *, fmt: str | None = None,
                      smiles_column: str | None = None, id_column: str | None = None) -> Run:
        """Screen an uploaded file: one result row per input row, a results file and a report.

        Refused (BenchError) before anything is screened: an empty file (400), one over the
        byte limit, also once decompressed, or the row limit (413), a binary file other than
        Parquet, an unknown format or a table without a SMILES column (415, 422).
        """
        name = os.path.basename(filename or "") or "upload"
        limit = self.limits.max_upload_bytes
        if len(data) > limit:
            raise BenchError(413, f"{name}: {len(data):,} bytes; the bench takes "
                                  f"{self.limits.describe()} (serve --max-upload-mb)")
        if data[:2] == b"\x1f\x8b":
            data = _gunzip(name, data, limit)
            name = name[:-3] if name.lower().endswith(".gz") else name
        if not data.strip():
            raise BenchError(400, f"{name}: the file is empty")
        kind = self._format(name, data, fmt)
        if kind != "parquet" and _looks_binary(data):
            raise BenchError(415, f"{name}: not a text file (binary data); the bench reads "
                                  "SMILES, SDF, CSV or TSV text and Parquet")
        run_id = secrets.token_urlsafe(9)
        directory = self.workdir / run_id
        directory.mkdir()
        source = directory / f"input.{kind}"
        write_bytes(str(source), data)
        notes: list[str] = []
        try:
            records = self._records(name, str(source), kind, smiles_column, id_column,
                                    lambda msg: notes.append(msg.replace(str(source), name)))
            run = self._screen(run_id, directory, name, source, records)
            run.notes = notes
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        self._remember(dataclasses.replace(run, results=[]))  # its rows are in its files
        return run

    def run(self, run_id: str) -> Run | None:
        """A recent run by its id (None when unknown or already dropped)."""
        return self._runs.get(run_id)

    def close(self) -> None:
        """Remove the working folder and stop OPSIN."""
        self.lookup.close()
        self._cleanup()

    # -- steps -------------------------------------------------------------------------------

    @staticmethod
    def _format(name: str, data: bytes, fmt: str | None) -> str:
        try:
            if fmt:
                return input_format(name, fmt)
            return input_format(name)
        except InputError as exc:
            if fmt:
                raise BenchError(415, str(exc)) from None
        return content_format(data[:65536])

    def _records(self, name: str, path: str, kind: str, smiles_column: str | None,
                 id_column: str | None, notify: Any) -> list[Record]:
        """Every record of the file, or BenchError when it cannot be read or has too many."""
        records: list[Record] = []
        try:
            for rec in read_records(path, fmt=kind, smiles_column=smiles_column,
                                    id_column=id_column, notify=notify):
                if len(records) >= self.limits.max_rows:
                    raise BenchError(413, f"{name}: more than {self.limits.max_rows:,} rows; the "
                                          f"bench takes {self.limits.describe()} (serve "
                                          "--max-rows); screen larger files with `precursor-screen "
                                          "screen`")
                records.append(rec)
        except InputError as exc:
            raise BenchError(422, str(exc).replace(path, name)) from None
        if not records:
            raise BenchError(422, f"{name}: no rows to screen")
        return records

    def _screen(self, run_id: str, directory: Path, name: str, source: Path,
                records: list[Record]) -> Run:
        with self._lock:
            verdicts = list(self.screener.screen(records))
        if len(verdicts) != len(records):  # the screen's promise, checked where it matters
            raise PrecursorScreenError(f"{name}: {len(records)} rows read but {len(verdicts)} "
                                       "screened")
        meta = run_metadata(self.screener.reference,
                            {**self.screener.metadata(), "jobs": 1, "bench": True},
                            [str(source)])
        meta["inputs"][0]["path"] = name
        summary = write_results(verdicts, str(directory / "results.csv"), "csv", meta)
        meta["summary"] = summary.as_dict()
        write_html(str(directory / "report.html"), verdicts, meta, self.screener)
        rows = [verdict_row(v, meta["tool_version"], meta["reference_sha256"]) for v in verdicts]
        return Run(run_id, directory, name, len(rows), summary.as_dict(), meta, rows)

    def _remember(self, run: Run) -> None:
        self._runs[run.id] = run
        while len(self._runs) > self.keep_runs:
            _, old = self._runs.popitem(last=False)
            shutil.rmtree(old.directory, ignore_errors=True)


def _gunzip(name: str, data: bytes, limit: int) -> bytes:
    """The decompressed bytes, refusing more than ``limit`` of them (a gzip bomb)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise BenchError(415, f"{name}: broken gzip data ({exc})") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise BenchError(413, f"{name}: more than {limit:,} bytes once decompressed; the bench "
                              "takes files up to that size")
    return out


def _looks_binary(data: bytes) -> bool:
    """NUL or other control bytes, or text that is not UTF-8 in more than a few places."""
    head = data[:1 << 20]
    if _NOT_TEXT.search(head):
        return True
    text = head.decode("utf-8", errors="replace")
    return text.count("\ufffd") > max(8, len(text) // 1000)
