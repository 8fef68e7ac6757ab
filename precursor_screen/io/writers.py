"""Every output file the tool writes: rows with fixed columns in CSV, TSV, Parquet, SDF or JSON
Lines, Arrow tables, plain text; each written atomically, each with the run's metadata.

The metadata goes into Parquet's schema metadata (key ``precursor_screen``), onto every SDF record,
and beside CSV, TSV and JSON Lines files as ``<file>.meta.json``. Columns come from
``precursor_screen.results``. Readers see the old file or the whole new one, never half of it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rdkit import Chem

from precursor_screen.errors import InputError

__all__ = ["atomic_open", "write_text", "write_bytes", "write_metadata", "TableWriter", "arrow_schema",
           "arrow_table", "write_arrow", "render_records", "META_KEY", "EMPTY_MOLBLOCK"]

META_KEY = b"precursor_screen"
"""The Parquet schema-metadata key holding the run metadata (JSON)."""

EMPTY_MOLBLOCK = ("\n  precursor-screen\n\n"
                  "  0  0  0  0  0  0  0  0  0  0999 V2000\nM  END\n")
"""The molfile of an SDF record whose row has no structure (an unreadable input row)."""

_ARROW_TYPES = {int: pa.int64(), float: pa.float64(), str: pa.string()}


@contextmanager
def atomic_open(path: str, mode: str = "w", **kwargs: object) -> Iterator[IO]:  # type: ignore[type-arg]
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:  # type: ignore[call-overload]
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are ordinary files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically, or to stdout for ``-``."""
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (an uploaded input kept beside its results)."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_metadata(path: str, metadata: Mapping[str, Any]) -> None:
    """The sidecar ``<path>.meta.json`` of a CSV, TSV or JSON Lines output."""
    with atomic_open(path + ".meta.json", "w", encoding="utf-8") as fh:
        fh.write(json.dumps(metadata, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def arrow_schema(columns: Sequence[Any], metadata: Mapping[bytes, bytes] | None = None) -> pa.Schema:
    """The Arrow schema of ``columns`` (``results.Column``: int, float or str)."""
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.type]) for c in columns],
                     metadata=dict(metadata) if metadata else None)


def arrow_table(columns: Sequence[Any], rows: Sequence[tuple[Any, ...]],
                metadata: Mapping[bytes, bytes] | None = None) -> pa.Table:
    """Rows (tuples in column order) as an Arrow table."""
    schema = arrow_schema(columns, metadata)
    values = list(zip(*rows)) if rows else [[] for _ in columns]
    return pa.Table.from_arrays([pa.array(list(v), type=f.type) for v, f in zip(values, schema)],
                                schema=schema)


class TableWriter:
    """Write rows with fixed ``columns`` to ``path`` (``-``: stdout) in ``fmt``: csv, tsv,
    parquet, sdf or jsonl. A context manager: the file appears whole when it closes cleanly.

    A row is a mapping holding every column; ``None`` is written as an empty cell. SDF records
    take the molfile given to :meth:`write` (else the ``standardized_smiles`` column's structure,
    else an empty molecule) with the row's id as title and every column as a data item.
    """

    def __init__(self, path: str, fmt: str, columns: Sequence[Any],
                 metadata: Mapping[str, Any]) -> None:
        self.path, self.fmt = path, fmt
        self.columns = tuple(columns)
        self.names = tuple(c.name for c in self.columns)
        self.metadata = dict(metadata)
        self.count = 0
        self._ctx: Any = None
        self._fh: IO[Any] | None = None
        self._csv: Any = None
        self._parquet: Any = None
        self._batch: list[Mapping[str, Any]] = []
        self._meta_json = json.dumps(self.metadata, sort_keys=True, ensure_ascii=False)

    def __enter__(self) -> "TableWriter":
        if self.fmt not in ("csv", "tsv", "parquet", "sdf", "jsonl"):
            raise InputError(f"rows cannot be written as {self.fmt}")
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
        if self.fmt in ("csv", "tsv"):
            self._csv = csv.writer(self._fh, lineterminator="\n",
                                   delimiter="," if self.fmt == "csv" else "\t")
            self._csv.writerow(self.names)
        return self

    def write(self, row: Mapping[str, Any], mol_block: str | None = None) -> None:
        """Write one row."""
        self.count += 1
        if self._csv is not None:
            self._csv.writerow(["" if row[c] is None else row[c] for c in self.names])
        elif self.fmt == "jsonl":
            assert self._fh is not None
            self._fh.write(json.dumps({c: row[c] for c in self.names}, ensure_ascii=False) + "\n")
        elif self.fmt == "sdf":
            self._write_sdf(row, mol_block)
        else:
            self._batch.append(row)
            if len(self._batch) >= 50_000:
                self._flush_parquet()

    def _write_sdf(self, row: Mapping[str, Any], mol_block: str | None) -> None:
        assert self._fh is not None
        if mol_block is None:
            smiles = row.get("standardized_smiles") or ""
            mol = Chem.MolFromSmiles(smiles) if smiles else None
            mol_block = Chem.MolToMolBlock(mol) if mol is not None else EMPTY_MOLBLOCK
        lines = mol_block.splitlines()
        lines[0] = str(row.get("id", ""))
        self._fh.write("\n".join(lines) + "\n")
        for k in self.names:
            value = str(row[k]).replace("\n", " ")
            self._fh.write(f"> <{k}>\n{value}\n\n")
        self._fh.write(f"> <run_metadata>\n{self._meta_json}\n\n$$$$\n")

    def _flush_parquet(self) -> None:
        if not self._batch and self._parquet is not None:
            return
        schema = arrow_schema(self.columns, {META_KEY: self._meta_json.encode("utf-8")})
        table = pa.Table.from_pylist([{c: r[c] for c in self.names} for r in self._batch],
                                     schema=schema)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self._fh, schema)
        self._parquet.write_table(table)
        self._batch = []

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None and self.fmt == "parquet":
                self._flush_parquet()
                self._parquet.close()
            if self._fh is sys.stdout:
                sys.stdout.flush()
        finally:
            if self._ctx is not None:
                self._ctx.__exit__(exc_type, exc, tb)
        if exc_type is None and self.path != "-" and self.fmt in ("csv", "tsv", "jsonl"):
            write_metadata(self.path, self.metadata)


def write_arrow(output: str, fmt: str, columns: Sequence[Any], tables: Iterable[pa.Table],
                meta: Mapping[str, Any]) -> None:
    """Write Arrow tables of rows to ``output`` atomically (stdout for '-'), with metadata.

    For outputs assembled from Arrow part files (declarations). Parquet (zstd) keeps the metadata
    in its schema; CSV, TSV (Arrow's writer: strings quoted where needed, floats in shortest
    form) and JSON Lines in ``<output>.meta.json``.
    """
    meta_json = json.dumps(meta, sort_keys=True, ensure_ascii=False)
    if fmt == "parquet":
        schema = arrow_schema(columns, {META_KEY: meta_json.encode()})
        with atomic_open(output, "wb") as fh:
            writer = pq.ParquetWriter(fh, schema, compression="zstd")
            wrote = False
            for t in tables:
                writer.write_table(t.replace_schema_metadata(schema.metadata))
                wrote = True
            if not wrote:
                writer.write_table(arrow_table(columns, [], schema.metadata))
            writer.close()
        return
    if output == "-":
        sys.stdout.flush()
        _write_arrow_text(sys.stdout.buffer, fmt, columns, tables)
        sys.stdout.buffer.flush()
        return
    with atomic_open(output, "wb") as fh:
        _write_arrow_text(fh, fmt, columns, tables)
    write_metadata(output, meta)


def _write_arrow_text(fh: IO[bytes], fmt: str, columns: Sequence[Any],
                      tables: Iterable[pa.Table]) -> None:
    """CSV and TSV through Arrow's writer, JSON Lines row by row; UTF-8, and the header (CSV,
    TSV) even for no rows."""
    if fmt == "jsonl":
        for t in tables:
            fh.write("".join(json.dumps(row, ensure_ascii=False) + "\n"
                             for row in t.to_pylist()).encode("utf-8"))
        return
    names = [c.name for c in columns]
    sep = "\t" if fmt == "tsv" else ","
    options = pacsv.WriteOptions(include_header=False, delimiter=sep, quoting_style="needed")
    fh.write((sep.join(f'"{c}"' for c in names) + "\n").encode("utf-8"))
    for t in tables:
        pacsv.write_csv(t.select(names), fh, options)


def render_records(rows: Sequence[Mapping[str, str]], fmt: str, *, key: str,
                   metadata: Mapping[str, Any], table: Sequence[tuple[str, int]] = (),
                   title: str = "") -> str:
    """A list of records (the registry, the drugs: flat string fields) as text: ``json``
    (``{"metadata": ..., key: rows}``), ``csv``, ``sdf`` (one record per row with a ``smiles``,
    titled by ``name``, every field and the registry hash as data items) or ``table`` (``title``
    then the ``table`` columns at fixed widths)."""
    if fmt == "json":
        return json.dumps({"metadata": metadata, key: list(rows)}, indent=1,
                          ensure_ascii=False) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["id"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()
    if fmt == "sdf":
        buf = io.StringIO()
        hash_key = "drugs_sha256" if key == "drugs" else "registry_sha256"
        stamp = (hash_key, metadata[hash_key])
        for row in rows:
            if not row.get("smiles"):
                continue
            mol = Chem.MolFromSmiles(row["smiles"])
            mol.SetProp("_Name", row["name"])
            buf.write(Chem.MolToMolBlock(mol))
            buf.write("".join(f"> <{k}>\n{v}\n\n" for k, v in (*row.items(), stamp)))
            buf.write("$$$$\n")
        return buf.getvalue()
    out = [title, "  ".join(c[:w].ljust(w) for c, w in table)]
    for r in rows:
        out.append("  ".join(str(r[c])[:w].ljust(w) for c, w in table).rstrip())
    return "\n".join(out) + "\n"
