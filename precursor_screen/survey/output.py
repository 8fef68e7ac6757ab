"""Rows out of the survey commands: CSV (file or stdout), Parquet or JSON Lines, with run metadata.

Each command has fixed columns (a tuple of ``(name, type)``). The run's metadata (tool version,
reference list hash, index manifest hash, parameters) goes where results.py puts the screen's:
Parquet schema metadata, and a ``<file>.meta.json`` sidecar beside CSV and JSON Lines files.
Files are written atomically (:func:`precursor_screen.io.writers.atomic_open`).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import platform
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

import rdkit

from precursor_screen.errors import InputError
from precursor_screen.io.writers import atomic_open

__all__ = ["RowWriter", "row_format", "survey_metadata", "ROW_FORMATS"]

ROW_FORMATS = ("csv", "parquet", "jsonl")
_EXTENSIONS = {"csv": "csv", "parquet": "parquet", "pq": "parquet", "jsonl": "jsonl",
               "ndjson": "jsonl", "html": "html", "htm": "html", "json": "json", "txt": "txt",
               "text": "txt", "md": "txt"}


def row_format(path: str, allowed: Sequence[str] = ROW_FORMATS) -> str:
    """The output format from ``-o``'s extension (``-``: CSV on stdout); InputError otherwise.

    >>> row_format("-"), row_format("hits.parquet"), row_format("x.JSONL")
    ('csv', 'parquet', 'jsonl')
    """
    if path == "-":
        return "csv"
    fmt = _EXTENSIONS.get(path.rsplit(".", 1)[-1].lower() if "." in path else "", "")
    if fmt not in allowed:
        raise InputError(f"cannot tell the output format of {path!r} from its extension; use "
                         + ", ".join(f".{f}" for f in allowed) + " (or - for CSV on stdout)")
    return fmt


def survey_metadata(command: str, parameters: Mapping[str, Any], *, index: Any = None,
                    reference: Any = None, inputs: Sequence[str] = ()) -> dict[str, Any]:
    """The metadata block every survey output records.

    ``index`` is a :class:`~precursor_screen.survey.library.LibraryIndex` (its manifest hash
    identifies the exact library version searched), ``reference`` the Registry used, if any.
    """
    from precursor_screen import __version__
    from precursor_screen.manifest import file_sha256

    meta: dict[str, Any] = {
        "tool": "precursor-screen", "tool_version": __version__, "command": command,
        "rdkit_version": rdkit.__version__, "python_version": platform.python_version(),
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "parameters": dict(parameters),
        "reference_source": getattr(reference, "source", "") if reference is not None else "",
        "reference_sha256": getattr(reference, "content_hash", "") if reference is not None else "",
        "index": index.describe() if index is not None else None,
        "index_manifest_sha256": index.manifest_sha256 if index is not None else "",
    }
    if inputs:
        meta["inputs"] = [{"path": p, "sha256": file_sha256(p)} for p in inputs]
    return meta


class RowWriter:
    """Write rows with fixed columns to ``path`` (``-``: stdout, CSV) as CSV, Parquet or JSONL.

    A context manager: the file appears whole when it closes cleanly, never half-written.
    ``columns`` are ``(name, type)`` with type ``int``, ``float`` or ``str`` (Parquet types).
    """

    def __init__(self, path: str, columns: Sequence[tuple[str, type]], metadata: Mapping[str, Any],
                 fmt: str | None = None) -> None:
        self.path = path
        self.fmt = fmt or row_format(path)
        self.columns = tuple(columns)
        self.names = tuple(c for c, _ in self.columns)
        self.metadata = dict(metadata)
        self.count = 0
        self._ctx: Any = None
        self._fh: IO[Any] | None = None
        self._csv: Any = None
        self._parquet: Any = None
        self._batch: list[Mapping[str, Any]] = []

    def __enter__(self) -> "RowWriter":
        if self.fmt not in ROW_FORMATS:
            raise InputError(f"row output must be one of {', '.join(ROW_FORMATS)}, not {self.fmt}")
        if self.fmt == "parquet":
            if self.path == "-":
                raise InputError("Parquet output needs a file: use -o FILE.parquet")
            self._ctx = atomic_open(self.path, "wb")
            self._fh = self._ctx.__enter__()
        elif self.path == "-":
            self._fh = sys.stdout
        else:
            self._ctx = atomic_open(self.path, "w", encoding="utf-8", newline="")
            self._fh = self._ctx.__enter__()
        if self.fmt == "csv":
            self._csv = csv.writer(self._fh, lineterminator="\n")
            self._csv.writerow(self.names)
        return self

    def write(self, row: Mapping[str, Any]) -> None:
        """Write one row (a mapping with every column)."""
        self.count += 1
        if self._csv is not None:
            self._csv.writerow(["" if row[c] is None else row[c] for c in self.names])
        elif self.fmt == "jsonl":
            assert self._fh is not None
            self._fh.write(json.dumps({c: row[c] for c in self.names}, ensure_ascii=False) + "\n")
        else:
            self._batch.append(row)
            if len(self._batch) >= 50_000:
                self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        types = {int: pa.int64(), float: pa.float64(), str: pa.string()}
        schema = pa.schema([pa.field(c, types[t]) for c, t in self.columns],
                           metadata={b"precursor_screen": json.dumps(
                               self.metadata, sort_keys=True, ensure_ascii=False).encode("utf-8")})
        table = pa.Table.from_pylist([{c: r[c] for c in self.names} for r in self._batch],
                                     schema=schema)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self._fh, schema)
        self._parquet.write_table(table)
        self._batch = []

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None and self.fmt == "parquet":
                self._flush()
                self._parquet.close()
            if self._fh is sys.stdout:
                sys.stdout.flush()
        finally:
            if self._ctx is not None:
                self._ctx.__exit__(exc_type, exc, tb)
        if exc_type is None and self.path != "-" and self.fmt in ("csv", "jsonl"):
            with atomic_open(self.path + ".meta.json", "w", encoding="utf-8") as fh:
                fh.write(json.dumps(self.metadata, indent=1, sort_keys=True, ensure_ascii=False)
                         + "\n")
