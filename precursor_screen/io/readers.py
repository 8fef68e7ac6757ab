"""Stream records from SMILES, SDF (plain or gzipped), CSV/TSV, Parquet files or standard input,
and read the tool's own outputs back.

Every physical input row becomes one :class:`Record`, also when it is empty or junk: the caller
writes exactly one output row per record. Only a file that cannot be read at all (missing, unknown
format, no SMILES column) raises :class:`InputError`.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from precursor_screen.errors import InputError
from precursor_screen.io.formats import input_format, output_format
from precursor_screen.io.text import (
    DEFAULT_LIMITS,
    CsvRecords,
    InputStats,
    CsvRecord,
    Limits,
    Line,
    input_lines,
    shown,
)
from precursor_screen.io.writers import META_KEY, arrow_schema, restore, restore_table
from precursor_screen.types import pickled_by_fields

__all__ = ["Record", "read_records", "read_inputs", "read_rows", "read_arrow", "read_toml",
           "count_output_rows", "parquet_batches", "sniff_delimiter", "csv_table",
           "SMILES_COLUMNS", "ID_COLUMNS", "DELIMITERS", "Notify", "REPLACED_ID"]

SMILES_COLUMNS = ("smiles", "canonical_smiles", "isomeric_smiles", "smi", "structure", "mol_smiles")
ID_COLUMNS = ("id", "name", "compound_id", "compound", "compound_name", "mol_id", "molecule_id",
              "molecule", "molecule_name", "identifier", "title", "label", "sample_id", "sample",
              "code", "chembl_id", "zinc_id", "cid", "pubchem_cid", "cas", "cas_number",
              "declaration_id")
"""Column names taken as the id, first found first (case, spaces and a leading BOM ignored)."""
DELIMITERS = (",", "\t", ";", "|")
"""Field delimiters a CSV/TSV input may use; the header line tells which (:func:`sniff_delimiter`)."""

Notify = Callable[[str], None]
"""Receives a note for the user about how an input was read (the CLI prints it on stderr)."""
csv.field_size_limit(2**31 - 1)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Record:
    """One input row: its 0-based position, an id, the structure text and any reading problem
    (``error``: the row's status); ``note``: something reading changed that the row keeps (bytes
    of its id that were not UTF-8, replaced)."""

    row: int
    id: str
    smiles: str
    molblock: str | None = None
    error: str = ""
    source: str = ""
    note: str = ""


REPLACED_ID = "id had bytes that are not UTF-8 or control characters (replaced by U+FFFD)"
"""The note of a record whose id had undecodable bytes (the structure is still screened)."""

_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffd]")
"""Control characters other than tab and line ends, or the replacement character: not text."""


def sniff_delimiter(header: str, default: str) -> str:
    r"""The delimiter of a CSV/TSV file, from its header line: the one of :data:`DELIMITERS`
    that splits it into the most fields (quotes respected), ``default`` (the extension's) when
    none splits it more than that one does.

    >>> sniff_delimiter("id;smiles;name", ","), sniff_delimiter("smiles\tid", ",")
    (';', '\t')
    >>> sniff_delimiter("smiles", "\t"), sniff_delimiter('"a,b";smiles', ",")
    ('\t', ';')
    """
    def fields(delimiter: str) -> int:
        return len(next(csv.reader([header], delimiter=delimiter), []))

    best = max(DELIMITERS, key=lambda d: (fields(d), d == default))
    return best if fields(best) > fields(default) else default


def csv_table(lines: Iterator[Line], path: str, default: str, limits: Limits = DEFAULT_LIMITS,
              stats: InputStats | None = None, *, delimiter: str | None = None,
              notify: Notify | None = None) -> tuple[list[str], Iterator[CsvRecord]] | None:
    """The header of a CSV/TSV file's ``lines`` and its records after it (None for an empty
    file), as every table reader starts: the delimiter is ``delimiter``, else the one the header
    line shows, else ``default`` (the extension's; ``notify`` hears when it is another). An
    unreadable header is an InputError naming the line."""
    head = next(lines, None)
    if head is None:
        return None
    if not delimiter:
        delimiter = sniff_delimiter(head.text, default)
        if delimiter != default and notify is not None:
            notify(f"note: {path}: fields separated by {delimiter!r}")
    records = CsvRecords(itertools.chain([head], lines), delimiter, limits, stats)
    found = iter(records)
    first = next(found, None)
    if first is None:
        return None
    if first.problem:
        raise InputError(f"{path}: line {first.line}: the header is unreadable: {first.problem}")
    if stats is not None:
        stats.headers += 1
    header = [h.lstrip("\ufeff") for h in first.fields]
    records.width = len(header)
    return header, found


def read_records(path: str, *, fmt: str | None = None, smiles_column: str | None = None,
                 id_column: str | None = None, start_row: int = 0,
                 notify: Notify | None = None, limits: Limits = DEFAULT_LIMITS,
                 stats: InputStats | None = None) -> Iterator[Record]:
    """Yield one Record per input row of ``path`` (``-`` is standard input).

    ``start_row`` offsets the row numbers, so several files read in turn number their rows
    continuously. ``notify`` hears how a table was read when it matters: a delimiter other than
    the extension's, no id column found (the ids are then row numbers). ``limits`` bound what
    one row, record or file may cost (``io.text.Limits``); ``stats`` counts what reading saw
    (lines, rows, malformed and oversized records).
    """
    kind = input_format(path, fmt)
    if kind == "smi":
        rows = _read_smi(path, start_row, limits, stats)
    elif kind == "sdf":
        rows = _read_sdf(path, start_row, limits, stats)
    elif kind in ("csv", "tsv"):
        rows = _read_csv(path, "\t" if kind == "tsv" else ",", smiles_column, id_column,
                         start_row, limits, stats, notify)
    else:
        rows = _read_parquet(path, smiles_column, id_column, start_row, notify)
    for rec in rows:
        if stats is not None:
            stats.rows += 1
            if rec.note:
                stats.undecodable += 1
            if rec.error.startswith("too large"):
                stats.too_large += 1
        yield rec


def read_inputs(paths: Sequence[str], *, fmt: str | None = None,
                smiles_column: str | None = None, id_column: str | None = None,
                notify: Notify | None = None, limits: Limits = DEFAULT_LIMITS,
                stats: InputStats | None = None) -> Iterator[Record]:
    """Yield one Record per input row of every file in ``paths``, rows numbered on across files."""
    start = 0
    for path in paths:
        for rec in read_records(path, fmt=fmt, smiles_column=smiles_column, id_column=id_column,
                                start_row=start, notify=notify, limits=limits, stats=stats):
            yield rec
            start = rec.row + 1


def _clean_id(ident: str) -> tuple[str, str]:
    """An id with control characters and undecodable bytes replaced, and the note to record."""
    if _NOT_TEXT.search(ident) is None:
        return ident, ""
    return _NOT_TEXT.sub("\ufffd", ident), REPLACED_ID


def _row(row: int, smiles: str, ident: str, path: str, error: str = "") -> Record:
    """A record from a structure and an id as read: a structure that is not text makes the row
    unreadable (echoed cut short); an id that is not text is cleaned and noted."""
    ident, note = _clean_id(ident) if ident else (str(row), "")
    if not error and _NOT_TEXT.search(smiles):
        error = "unreadable: binary or non-text data"
    if error:
        return Record(row, ident, shown(_NOT_TEXT.sub("\ufffd", smiles), 80), error=error,
                      source=path, note=note)
    return Record(row, ident, smiles, source=path, note=note)


def _read_smi(path: str, start_row: int, limits: Limits,
              stats: InputStats | None) -> Iterator[Record]:
    with input_lines(path, limits, stats) as lines:
        row = start_row
        for line in lines:
            if line.problem:
                yield _row(row, line.text, "", path, line.problem)
                row += 1
                continue
            parts = line.text.strip().split(None, 1)
            if line.number == 1 and parts and parts[0].lower() in SMILES_COLUMNS:
                if stats is not None:
                    stats.headers += 1
                continue  # a header line, not a molecule
            smiles = parts[0] if parts else ""
            ident = parts[1].strip() if len(parts) > 1 else ""
            yield _row(row, smiles, ident, path)
            row += 1


def _read_sdf(path: str, start_row: int, limits: Limits,
              stats: InputStats | None) -> Iterator[Record]:
    cap = limits.max_record_bytes
    with input_lines(path, limits, stats) as lines:
        row = start_row
        block: list[str] = []
        size = 0
        problem = ""
        title = ""
        for line in lines:
            if line.text.strip() == "$$$$" and not line.problem:
                yield _sdf_record(block, row, path, problem, title)
                row += 1
                block, size, problem, title = [], 0, "", ""
                continue
            if not size:
                title = line.text
            size += line.size
            if problem:
                continue
            if line.problem:
                problem = line.problem
            elif size > cap:
                problem = f"too large: SDF record of over {cap:,} bytes (--max-record-bytes)"
            if problem:
                block = []
            else:
                block.append(line.text)
        if size and (problem or any(s.strip() for s in block)):  # no $$$$ after the last record
            yield _sdf_record(block, row, path, problem, title)


def _sdf_record(lines: list[str], row: int, path: str, problem: str = "",
                title: str = "") -> Record:
    title = (lines[0] if lines else title).strip()
    ident, note = _clean_id(title) if title else ("", "")
    if problem:
        return Record(row, shown(ident, 200) or str(row), "", error=problem, source=path,
                      note=note)
    end = next((i for i, s in enumerate(lines) if s.startswith("M  END")), None)
    if end is None:
        return Record(row, ident or str(row), "", error="broken SDF record: no 'M  END' line",
                      source=path, note=note)
    block = "\n".join(lines[: end + 1]) + "\n"
    props = _sdf_properties(lines[end + 1:])
    if not ident:
        ident, note = _clean_id(next((props[k] for k in props if k.lower() in ID_COLUMNS), ""))
    return Record(row, ident or str(row), props.get("SMILES", ""), molblock=block, source=path,
                  note=note)


def _sdf_properties(lines: Sequence[str]) -> dict[str, str]:
    props: dict[str, str] = {}
    name = None
    for line in lines:
        if line.startswith(">"):
            start, end = line.find("<"), line.find(">", line.find("<"))
            name = line[start + 1:end] if 0 <= start < end else None
            if name is not None:
                props[name] = ""
        elif name is not None and line.strip():
            props[name] = (props[name] + "\n" + line) if props[name] else line
    return props


def _pick_column(columns: Sequence[str], given: str | None, candidates: Sequence[str],
                 what: str, path: str, required: bool, notify: Notify | None = None) -> str | None:
    if given:
        if given not in columns:
            raise InputError(f"{path}: no column {given!r} (columns: {', '.join(columns)})")
        return given
    lowered = {c.lower().strip().replace(" ", "_"): c for c in columns}
    for cand in candidates:
        if cand in lowered:
            return lowered[cand]
    if required:
        raise InputError(f"{path}: no {what} column found among {', '.join(columns) or 'none'}; "
                         f"name it with --{what}-column")
    if notify is not None:
        notify(f"warning: {path}: no {what} column among {', '.join(columns)}; the row numbers are the "
               f"ids (name the column with --{what}-column)")
    return None


def _read_csv(path: str, default: str, smiles_column: str | None, id_column: str | None,
              start_row: int, limits: Limits, stats: InputStats | None,
              notify: Notify | None = None) -> Iterator[Record]:
    with input_lines(path, limits, stats) as lines:
        table = csv_table(lines, path, default, limits, stats, notify=notify)
        if table is None:
            return
        header, found = table
        s_col = _pick_column(header, smiles_column, SMILES_COLUMNS, "smiles", path, True)
        i_col = _pick_column(header, id_column, ID_COLUMNS, "id", path, False, notify)
        s_idx = header.index(s_col)  # type: ignore[arg-type]
        i_idx = header.index(i_col) if i_col else None
        row = start_row
        for rec in found:
            fields = rec.fields
            if rec.problem:
                yield _row(row, fields[0] if fields else "", "", path, rec.problem)
                row += 1
                continue
            smiles = fields[s_idx] if s_idx < len(fields) else ""
            ident = fields[i_idx] if i_idx is not None and i_idx < len(fields) else ""
            error = ""
            if len(fields) != len(header) and fields:
                error = (f"malformed row: line {rec.line} has {len(fields)} fields, the header "
                         f"has {len(header)}")
            yield _row(row, smiles, ident, path, error)
            row += 1


def _read_parquet(path: str, smiles_column: str | None, id_column: str | None,
                  start_row: int, notify: Notify | None = None) -> Iterator[Record]:
    if path == "-":
        raise InputError("Parquet cannot be read from standard input; give a file")
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    columns = pf.schema_arrow.names
    s_col = _pick_column(columns, smiles_column, SMILES_COLUMNS, "smiles", path, True)
    i_col = _pick_column(columns, id_column, ID_COLUMNS, "id", path, False, notify)
    wanted = [c for c in (s_col, i_col) if c]
    row = start_row
    for batch in parquet_batches(pf, wanted, path):
        smiles_values = batch.column(wanted.index(s_col)).to_pylist()  # type: ignore[arg-type]
        ids = batch.column(wanted.index(i_col)).to_pylist() if i_col else [None] * len(smiles_values)
        for smi, ident in zip(smiles_values, ids):
            yield _row(row, "" if smi is None else str(smi),
                       "" if ident is None else str(ident), path)
            row += 1


def parquet_batches(pf: pq.ParquetFile, columns: Sequence[str], path: str,
                    batch_size: int = 65536) -> Iterator[pa.RecordBatch]:
    """The batches of ``columns`` of an open Parquet file; a file that breaks off or is corrupt
    part way raises InputError naming it and the rows read before."""
    done = 0
    batches = pf.iter_batches(columns=list(columns), batch_size=batch_size)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types
            raise InputError(f"{path}: cannot read after row {done}: {exc}") from None
        done += batch.num_rows
        yield batch


def count_output_rows(path: str) -> int:
    """Rows of an output the tool wrote (Parquet from its metadata, CSV/TSV/JSON Lines counted
    by Arrow's reader): a progress bar's total."""
    fmt = output_format(path, allowed=("csv", "tsv", "parquet", "jsonl"))
    if fmt == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    if fmt == "jsonl":
        with open(path, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    reader = pacsv.open_csv(path, parse_options=pacsv.ParseOptions(
        delimiter="\t" if fmt == "tsv" else ",", newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types={}, strings_can_be_null=False))
    return sum(batch.num_rows for batch in reader)


def read_rows(path: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read a results file back (CSV/TSV with its sidecar, Parquet, JSON Lines, SDF): its rows as
    dicts, and its run metadata."""
    fmt = output_format(path)
    if fmt == "parquet":
        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(META_KEY, b"{}")
        return table.to_pylist(), json.loads(raw)
    meta: dict[str, Any] = {}
    if os.path.exists(path + ".meta.json"):
        with open(path + ".meta.json", encoding="utf-8") as fh:
            meta = json.load(fh)
    if fmt == "jsonl":
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()], meta
    if fmt == "sdf":
        rows: list[dict[str, Any]] = []
        with open(path, encoding="utf-8") as fh:
            for block in fh.read().split("$$$$\n"):
                if not block.strip():
                    continue
                lines = block.splitlines()
                end = next(i for i, s in enumerate(lines) if s.startswith("M  END"))
                props = _sdf_properties(lines[end + 1:])
                meta = json.loads(props.pop("run_metadata", "{}")) or meta
                rows.append(props)
        return rows, meta
    with open(path, encoding="utf-8", newline="") as fh:
        found = list(csv.DictReader(fh, delimiter="," if fmt == "csv" else "\t"))
    if meta.get("cells") == "raw":
        return found, meta
    return [{k: restore(v) if isinstance(v, str) else v for k, v in r.items()} for r in found], meta


def read_arrow(path: str, columns: Sequence[Any]) -> tuple[Iterator[pa.Table], dict[str, Any]]:
    """Stream an output written by ``io.writers.write_arrow`` back as Arrow tables of ``columns``
    (typed as written), with its metadata. Parquet comes back row group by row group, so a
    rewrite keeps its layout; CSV and TSV through Arrow's reader (quoted newlines allowed)."""
    fmt = output_format(path, allowed=("csv", "tsv", "parquet", "jsonl"))
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    names = [c.name for c in columns]
    schema = arrow_schema(columns)
    if fmt == "parquet":
        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
        meta = json.loads((pf.schema_arrow.metadata or {}).get(META_KEY, b"{}"))
        return (pf.read_row_group(i, columns=names).cast(schema)
                for i in range(pf.num_row_groups)), meta
    meta = {}
    if os.path.exists(path + ".meta.json"):
        with open(path + ".meta.json", encoding="utf-8") as fh:
            meta = json.load(fh)

    def tables() -> Iterator[pa.Table]:
        if fmt == "jsonl":
            t = pajson.read_json(path, parse_options=pajson.ParseOptions(explicit_schema=schema))
            yield t.select(names)
            return
        reader = pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",",
                                             newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=schema, strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False))
        raw = meta.get("cells") == "raw"
        for batch in reader:
            table = pa.Table.from_batches([batch]).select(names).cast(schema)
            yield table if raw else restore_table(table)

    return tables(), meta


def read_toml(path: str | os.PathLike[str], *, name: str | None = None,
              error: type[Exception] = InputError, what: str = "file") -> dict[str, Any]:
    """The tables of a TOML file. A missing, unreadable or invalid file raises ``error`` with
    one line naming the file (``name``, default the path) and what is wrong with it."""
    name = name or str(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise error(f"{name}: no such {what}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{name}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{name}: cannot read {what}: {exc}") from None
