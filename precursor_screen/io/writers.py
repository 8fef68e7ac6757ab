"""Every output file the tool writes: rows with fixed columns in CSV, TSV, Parquet, SDF or JSON
Lines, Arrow tables, plain text; each written atomically, each with the run's metadata.

The metadata goes into Parquet's schema metadata (key ``precursor_screen``), onto every SDF record,
and beside CSV, TSV and JSON Lines files as ``<file>.meta.json``. Columns come from
``precursor_screen.results``. Readers see the old file or the whole new one, never half of it:
a write that fails (a full disk, a killed run) leaves the earlier file as it was.

What the writers guarantee, whatever the rows hold:

* CSV and TSV quote every cell that holds the delimiter, a quote, a line feed or a carriage
  return, so a file has one line per row plus the header (quoted line breaks apart);
* CSV and TSV cells a spreadsheet would run as a formula (text starting with ``=``, ``+``,
  ``-``, ``@``, a tab or a carriage return) get a leading apostrophe, as OWASP recommends; a
  cell that already starts with apostrophes before such a character gets one more, so
  :func:`restore` undoes it exactly (the tool's readers do). Numeric columns (``row``,
  ``score``, ``similarity``, ...) are numbers and never change; text columns holding numbers as
  they were read (``quantity_kg`` of declarations) show ``'-1.5`` for ``-1.5``. ``raw_cells``
  (``--raw-cells``) writes cells as they are;
* an output is never an input of the same run, nor a device, pipe or directory
  (:func:`check_output`); ``-`` is standard output;
* :class:`TableWriter` can check that it wrote as many rows as were read (``expect_rows``) and
  refuses to put a short file in place.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rdkit import Chem

from precursor_screen.errors import InputError, OutputError

__all__ = ["atomic_open", "AtomicFile", "write_text", "write_bytes", "write_metadata",
           "TableWriter", "arrow_schema", "arrow_table", "write_arrow", "render_records",
           "check_output", "neutralise", "restore", "restore_table", "FORMULA_START", "META_KEY",
           "EMPTY_MOLBLOCK"]

META_KEY = b"precursor_screen"
"""The Parquet schema-metadata key holding the run metadata (JSON)."""

EMPTY_MOLBLOCK = ("\n  precursor-screen\n\n"
                  "  0  0  0  0  0  0  0  0  0  0999 V2000\nM  END\n")
"""The molfile of an SDF record whose row has no structure (an unreadable input row)."""

FORMULA_START = "=+-@\t\r"
"""A CSV/TSV text cell starting with one of these is run as a formula by spreadsheets."""

_ARROW_TYPES = {int: pa.int64(), float: pa.float64(), str: pa.string()}
_NEUTRALISE = re.compile(r"^'*[=+\-@\t\r]")
_RESTORE = re.compile(r"^'+[=+\-@\t\r]")


def neutralise(cell: str) -> str:
    """``cell`` as a spreadsheet shows it as text: a leading apostrophe before a formula start.

    >>> neutralise("=HYPERLINK(1)"), neutralise("-1.5"), neutralise("'=x"), neutralise("CCO")
    ("'=HYPERLINK(1)", "'-1.5", "''=x", 'CCO')
    """
    return "'" + cell if _NEUTRALISE.match(cell) else cell


def restore(cell: str) -> str:
    """The cell :func:`neutralise` was given.

    >>> all(restore(neutralise(c)) == c for c in ("=1", "'=1", "''+2", "'a", "CCO", "", "'"))
    True
    """
    return cell[1:] if _RESTORE.match(cell) else cell


def _neutralise_column(col: pa.ChunkedArray) -> pa.ChunkedArray:
    mask = pc.fill_null(pc.match_substring_regex(col, _NEUTRALISE.pattern), False)
    if not pc.any(mask).as_py():
        return col
    return pc.if_else(mask, pc.binary_join_element_wise("'", col, ""), col)


def _map_strings(table: pa.Table, fn: Callable[[pa.ChunkedArray], pa.ChunkedArray]) -> pa.Table:
    for i, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            table = table.set_column(i, field, fn(table.column(i)))
    return table


def restore_table(table: pa.Table) -> pa.Table:
    """An Arrow table read from a neutralised CSV/TSV with every text cell :func:`restore`d."""
    def undo(col: pa.ChunkedArray) -> pa.ChunkedArray:
        mask = pc.fill_null(pc.match_substring_regex(col, _RESTORE.pattern), False)
        if not pc.any(mask).as_py():
            return col
        return pc.if_else(mask, pc.utf8_slice_codeunits(col, 1), col)
    return _map_strings(table, undo)


# -- where outputs may go ---------------------------------------------------------------------------

def _same_file(a: os.stat_result, path: str) -> bool:
    try:
        b = os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check_output(path: str, inputs: Iterable[str] = (), *, sidecar: bool = False,
                 what: str = "output") -> None:
    """OutputError unless ``path`` may be written: standard output (``-``), or a path that is
    not an existing device, pipe, socket or directory and is not one of ``inputs`` (nor, with
    ``sidecar``, is its ``.meta.json`` one of them). Called before a run starts, so nothing is
    screened for an output that cannot be written."""
    if path == "-":
        return
    targets = [path] + ([path + ".meta.json"] if sidecar else [])
    for target in targets:
        try:
            st = os.stat(target)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise OutputError(f"{target}: cannot write the {what}: {exc}") from None
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise OutputError(f"{target}: is {kind}; the {what} must be a file (or - for "
                              "standard output)")
        for src in inputs:
            if src != "-" and _same_file(st, src):
                raise OutputError(f"{target}: is also an input ({src}); writing the {what} "
                                  "there would destroy it")


class AtomicFile:
    """A temporary file beside ``path`` that becomes ``path`` on :meth:`commit` (flushed,
    fsynced, renamed over it) or disappears on :meth:`discard`; a link is followed, so the file
    it points to is replaced, not the link."""

    def __init__(self, path: str, mode: str = "w", **kwargs: Any) -> None:
        check_output(path)
        self.path = os.path.realpath(path)
        directory = os.path.dirname(self.path)
        os.makedirs(directory, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix="." + os.path.basename(self.path) + ".",
                                        suffix=".tmp", dir=directory)
        try:
            self.fh: IO[Any] = os.fdopen(fd, mode, **kwargs)
        except BaseException:
            os.close(fd)
            os.unlink(self.tmp)
            raise

    def commit(self) -> None:
        try:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are ordinary files
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        try:
            self.fh.close()
        except OSError:
            pass  # a full disk fails the close too; the file goes anyway
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)


@contextmanager
def atomic_open(path: str, mode: str = "w", **kwargs: object) -> Iterator[IO]:  # type: ignore[type-arg]
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.
    On any error the temporary file goes and ``path`` keeps what it held; an OSError (a full
    disk) becomes an OutputError naming ``path``."""
    out = AtomicFile(path, mode, **kwargs)
    try:
        yield out.fh
    except BaseException as exc:
        out.discard()
        if isinstance(exc, OSError) and _is_write_error(exc):
            raise OutputError(_write_failed(path, exc)) from None
        raise
    try:
        out.commit()
    except OSError as exc:
        raise OutputError(_write_failed(path, exc)) from None


def _write_failed(path: str, exc: BaseException) -> str:
    return f"{path}: cannot write: {exc}; the earlier file, if any, is unchanged"


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


def _cells(raw: bool) -> str:
    """What the metadata says of a CSV/TSV output's cells (readers restore neutralised ones)."""
    return "raw" if raw else "formula-neutralised: a leading ' before = + - @ tab CR"


class RowCountError(OutputError):
    """A writer was handed a different number of rows than were read: the file is not put in
    place."""


_QUOTE = {",": re.compile('[",\r\n]'), "\t": re.compile('["\t\r\n]')}


def _csv_cell(value: Any, delimiter: str, raw: bool, text: bool) -> str:
    if value is None:
        return ""
    cell = value if isinstance(value, str) else str(value)
    if text and not raw:
        cell = neutralise(cell)
    if _QUOTE[delimiter].search(cell):
        return '"' + cell.replace('"', '""') + '"'
    return cell


class TableWriter:
    """Write rows with fixed ``columns`` to ``path`` (``-``: stdout) in ``fmt``: csv, tsv,
    parquet, sdf or jsonl. A context manager: the file appears whole when it closes cleanly.

    A row is a mapping holding every column; ``None`` is written as an empty cell. SDF records
    take the molfile given to :meth:`write` (else the ``standardized_smiles`` column's structure,
    else an empty molecule) with the row's id as title and every column as a data item; line
    breaks in a title or value become spaces (one line each, as the format needs).

    ``inputs``: files the output must not overwrite (:func:`check_output`). ``expect_rows``:
    called when the rows are done, returns how many were read; a different count written fails
    the write (:class:`RowCountError`) and keeps the earlier file. ``raw_cells``: CSV/TSV cells
    as they are, without formula neutralisation (see the module docstring).
    """

    def __init__(self, path: str, fmt: str, columns: Sequence[Any],
                 metadata: Mapping[str, Any], *, inputs: Iterable[str] = (),
                 expect_rows: Callable[[], int] | None = None, raw_cells: bool = False) -> None:
        self.path, self.fmt = path, fmt
        self.columns = tuple(columns)
        self.names = tuple(c.name for c in self.columns)
        self.metadata = dict(metadata)
        self.count = 0
        self.raw_cells = raw_cells
        self._expect = expect_rows
        self._file: AtomicFile | None = None
        self._fh: IO[Any] | None = None
        self._text = tuple(c.type is str for c in self.columns)
        self._delimiter = "," if fmt == "csv" else "\t"
        self._parquet: Any = None
        self._batch: list[Mapping[str, Any]] = []
        if fmt in ("csv", "tsv"):
            self.metadata["cells"] = _cells(raw_cells)
        self._meta_json = json.dumps(self.metadata, sort_keys=True, ensure_ascii=False)
        if self.fmt not in ("csv", "tsv", "parquet", "sdf", "jsonl"):
            raise InputError(f"rows cannot be written as {self.fmt}")
        if self.fmt == "parquet" and self.path == "-":
            raise InputError("Parquet output needs a file: use -o FILE.parquet")
        check_output(path, inputs, sidecar=fmt in ("csv", "tsv", "jsonl"))
        self._inputs = tuple(inputs)

    def __enter__(self) -> "TableWriter":
        if self.path == "-":
            self._fh = sys.stdout
        elif self.fmt == "parquet":
            self._file = AtomicFile(self.path, "wb")
            self._fh = self._file.fh
        else:
            self._file = AtomicFile(self.path, "w", encoding="utf-8", newline="")
            self._fh = self._file.fh
        if self.fmt in ("csv", "tsv"):
            self._fh.write(self._delimiter.join(
                _csv_cell(n, self._delimiter, True, False) for n in self.names) + "\n")
        return self

    def write(self, row: Mapping[str, Any], mol_block: str | None = None) -> None:
        """Write one row."""
        self.count += 1
        assert self._fh is not None
        if self.fmt in ("csv", "tsv"):
            d, raw = self._delimiter, self.raw_cells
            self._fh.write(d.join(_csv_cell(row[c], d, raw, t)
                                  for c, t in zip(self.names, self._text)) + "\n")
        elif self.fmt == "jsonl":
            self._fh.write(_json_line({c: row[c] for c in self.names}))
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
        lines[0] = _sdf_line(row.get("id", ""))
        self._fh.write("\n".join(lines) + "\n")
        for k in self.names:
            self._fh.write(f"> <{k}>\n{_sdf_line(row[k])}\n\n")
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

    def _finish(self) -> None:
        if self._expect is not None:
            expected = self._expect()
            if expected != self.count:
                raise RowCountError(f"{self.path}: {self.count:,} rows written for {expected:,} "
                                    "read: not written (a bug; please report it)")
        if self.fmt == "parquet":
            self._flush_parquet()
            self._parquet.close()
        if self._fh is sys.stdout:
            sys.stdout.flush()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            if self._file is not None:
                self._file.discard()
            if isinstance(exc, OSError) and _is_write_error(exc):
                raise OutputError(_write_failed(self.path, exc)) from None
            return
        try:
            self._finish()
            if self._file is not None:
                self._file.commit()
        except BaseException as err:
            if self._file is not None:
                self._file.discard()
            if isinstance(err, OSError):
                raise OutputError(_write_failed(self.path, err)) from None
            raise
        if self.path != "-" and self.fmt in ("csv", "tsv", "jsonl"):
            write_metadata(self.path, self.metadata)


_LINE_BREAKING = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def _json_line(row: Mapping[str, Any]) -> str:
    """One JSON Lines row: UTF-8, with the characters some readers take for line ends (U+2028,
    U+2029, NEL) escaped, so the file splits into its rows whichever way it is read."""
    text = json.dumps(row, ensure_ascii=False)
    if any(c in text for c in _LINE_BREAKING):
        for c, escaped in _LINE_BREAKING.items():
            text = text.replace(c, escaped)
    return text + "\n"


def _sdf_line(value: Any) -> str:
    """A title or data value on one line (an SDF item ends at a blank line, a record at $$$$)."""
    text = "" if value is None else str(value)
    if "\n" in text or "\r" in text:
        text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return " $$$$" if text.strip() == "$$$$" else text


def _is_write_error(exc: OSError) -> bool:
    """An OSError writing an output (full disk, quota, file too large, read-only, I/O)."""
    return exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EIO)


def write_arrow(output: str, fmt: str, columns: Sequence[Any], tables: Iterable[pa.Table],
                meta: Mapping[str, Any], *, raw_cells: bool = False) -> None:
    """Write Arrow tables of rows to ``output`` atomically (stdout for '-'), with metadata.

    For outputs assembled from Arrow part files (declarations). Parquet (zstd) keeps the metadata
    in its schema; CSV, TSV (Arrow's writer: strings quoted, floats in shortest form, formula
    cells neutralised unless ``raw_cells``) and JSON Lines in ``<output>.meta.json``.
    """
    cells: dict[str, str] = {}
    if fmt in ("csv", "tsv"):
        cells["cells"] = _cells(raw_cells)
        if not raw_cells:
            tables = (_map_strings(t, _neutralise_column) for t in tables)
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
    write_metadata(output, {**meta, **cells})  # after the rows: ``meta`` may count them


def _write_arrow_text(fh: IO[bytes], fmt: str, columns: Sequence[Any],
                      tables: Iterable[pa.Table]) -> None:
    """CSV and TSV through Arrow's writer, JSON Lines row by row; UTF-8, and the header (CSV,
    TSV) even for no rows."""
    if fmt == "jsonl":
        for t in tables:
            fh.write("".join(_json_line(row) for row in t.to_pylist()).encode("utf-8"))
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
