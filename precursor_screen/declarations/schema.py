"""The declaration input schema: fields, column mapping (options or a TOML file), and readers.

A declaration row has up to eight fields (``FIELDS``); only ``declaration_id`` must exist as a
column, every other may be absent or empty. Input files are CSV, TSV (plain or gzipped) or Parquet;
a directory stands for the Parquet files under it (a partitioned data set), in sorted path order.

Every physical row becomes one :class:`Declaration`, also when it is malformed or binary junk: the
caller writes exactly one output row per declaration. Only a file that cannot be read at all
raises :class:`InputError` (missing, unknown format, no ``declaration_id`` column).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import pyarrow.parquet as pq

from precursor_screen.errors import InputError
from precursor_screen.io import formats
from precursor_screen.io.readers import parquet_batches, read_toml, sniff_delimiter
from precursor_screen.io.text import (DEFAULT_LIMITS, CsvRecords, InputStats, Limits, open_input,
                                      physical_lines, shown)

__all__ = ["FIELDS", "Declaration", "InputSpec", "load_config", "parse_column_options",
           "read_declarations", "expand_inputs", "count_rows"]

FIELDS = ("declaration_id", "cn_code", "cas", "name", "smiles", "description", "quantity_kg",
          "concentration_pct")
"""The default column names, which are also the field names of :class:`Declaration`."""

FORMATS = ("csv", "tsv", "parquet")


@dataclass(frozen=True, slots=True)
class Declaration:
    """One input row: its 0-based position over all inputs, the fields as text, any read problem."""

    row: int
    declaration_id: str
    cn_code: str = ""
    cas: str = ""
    name: str = ""
    smiles: str = ""
    description: str = ""
    quantity_kg: str = ""
    concentration_pct: str = ""
    error: str = ""

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.row, self.declaration_id, self.cn_code, self.cas, self.name, self.smiles,
                self.description, self.quantity_kg, self.concentration_pct, self.error)


@dataclass(frozen=True)
class InputSpec:
    """How to read the inputs: field -> column name, delimiter and format overrides.

    ``columns`` maps a field of ``FIELDS`` to the input's column name; fields not named fall back
    to a column called like the field (case-insensitive).
    """

    columns: Mapping[str, str] = field(default_factory=dict)
    delimiter: str | None = None
    fmt: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"columns": dict(sorted(self.columns.items())), "delimiter": self.delimiter or "",
                "format": self.fmt or ""}


def parse_column_options(items: Sequence[str]) -> dict[str, str]:
    """Parse ``FIELD=COLUMN`` strings (the ``--column`` option) into a mapping.

    >>> parse_column_options(["cas=CAS RN", "declaration_id=Decl. no."])
    {'cas': 'CAS RN', 'declaration_id': 'Decl. no.'}
    """
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not value.strip():
            raise InputError(f"--column {item!r}: write FIELD=COLUMN, e.g. cas='CAS RN'")
        if key not in FIELDS:
            raise InputError(f"--column {item!r}: unknown field {key!r}; fields are {', '.join(FIELDS)}")
        out[key] = value.strip()
    return out


def load_config(path: str) -> dict[str, Any]:
    """Read a declarations config file (TOML) and check it; see docs/declarations.md.

    Tables: ``[columns]`` (field = "input column"), ``[input]`` (``delimiter``, ``format``),
    ``[resolve]`` (``map_files``: CAS/name mapping files, relative to the config file;
    ``opsin``: bool). Unknown keys are errors, so a typo does not pass silently.
    """
    data = read_toml(path, what="config file")
    allowed = {"columns": set(FIELDS), "input": {"delimiter", "format"},
               "resolve": {"map_files", "opsin"}}
    for table, value in data.items():
        if table not in allowed:
            raise InputError(f"{path}: unknown table [{table}]; expected {', '.join(allowed)}")
        if not isinstance(value, dict):
            raise InputError(f"{path}: {table} must be a table")
        for key, item in value.items():
            if key not in allowed[table]:
                raise InputError(f"{path}: [{table}] {key}: unknown key; expected "
                                 f"{', '.join(sorted(allowed[table]))}")
            if table == "columns" and not (isinstance(item, str) and item):
                raise InputError(f"{path}: [columns] {key} must be a column name")
    base = os.path.dirname(os.path.abspath(path))
    resolve = dict(data.get("resolve", {}))
    files = resolve.get("map_files", [])
    if isinstance(files, str):
        files = [files]
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise InputError(f"{path}: [resolve] map_files must be a list of file names")
    resolve["map_files"] = [f if os.path.isabs(f) else os.path.join(base, f) for f in files]
    if "opsin" in resolve and not isinstance(resolve["opsin"], bool):
        raise InputError(f"{path}: [resolve] opsin must be true or false")
    fmt = data.get("input", {}).get("format")
    delimiter = data.get("input", {}).get("delimiter")
    if delimiter is not None and not (isinstance(delimiter, str) and len(delimiter) == 1):
        raise InputError(f"{path}: [input] delimiter must be one character")
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"{path}: [input] format must be one of {', '.join(FORMATS)}")
    return {"columns": dict(data.get("columns", {})), "input": dict(data.get("input", {})),
            "resolve": resolve}


def input_format(path: str, given: str | None = None) -> str:
    """The format of a declarations input: csv, tsv or parquet (``.txt`` is CSV, a directory a
    folder of Parquet files).

    >>> input_format("decl.csv.gz"), input_format("d.TSV"), input_format("part.parquet")
    ('csv', 'tsv', 'parquet')
    """
    return formats.input_format(path, given, allowed=FORMATS, text="csv", stdin="csv",
                                folder="parquet")


def expand_inputs(paths: Sequence[str]) -> list[str]:
    """The input files in reading order: a directory becomes its Parquet files, sorted."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            found = sorted(os.path.join(root, f) for root, _, files in os.walk(p) for f in files
                           if f.endswith((".parquet", ".pq")) and not f.startswith((".", "_")))
            if not found:
                raise InputError(f"{p}: directory without Parquet files")
            out.extend(found)
        elif not os.path.exists(p):
            raise InputError(f"{p}: no such file")
        else:
            out.append(p)
    return out


def _resolve_columns(header: Sequence[str], spec: InputSpec, path: str) -> list[int | None]:
    lowered: dict[str, int] = {}
    for i, h in enumerate(header):
        lowered.setdefault(h.strip().lower(), i)
    exact = {h: i for i, h in enumerate(header)}
    idx: list[int | None] = []
    for f in FIELDS:
        wanted = spec.columns.get(f)
        if wanted is not None:
            i = exact.get(wanted, lowered.get(wanted.strip().lower()))
            if i is None:
                raise InputError(f"{path}: no column {wanted!r} for {f} "
                                 f"(columns: {', '.join(header) or 'none'})")
        else:
            i = lowered.get(f)
        idx.append(i)
    if idx[0] is None:
        raise InputError(f"{path}: no declaration_id column among {', '.join(header) or 'none'}; "
                         "name it with --column declaration_id=COLUMN")
    return idx


def read_declarations(paths: Sequence[str], spec: InputSpec | None = None,
                      start_row: int = 0, *, limits: Limits = DEFAULT_LIMITS,
                      stats: InputStats | None = None) -> Iterator[Declaration]:
    """Yield one Declaration per input row of every file in ``paths``, rows numbered on.

    ``limits`` bound what a line or a gzip stream may cost (``io.text.Limits``); ``stats``
    counts what reading saw (rows, lines, malformed records)."""
    spec = spec or InputSpec()
    row = start_row
    for path in expand_inputs(paths):
        kind = input_format(path, spec.fmt)
        rows = (_read_parquet(path, spec, row, stats) if kind == "parquet"
                else _read_csv(path, spec, "\t" if kind == "tsv" else ",", row, limits, stats))
        for decl in rows:
            yield decl
            row = decl.row + 1


def count_rows(paths: Sequence[str], spec: InputSpec | None = None, *,
               exact: bool = False) -> int | None:
    """Rows in the inputs when cheap to know (Parquet metadata), else None; ``exact`` counts
    CSV/TSV rows too (a pass over the text, as they will be read)."""
    spec = spec or InputSpec()
    total = 0
    for path in expand_inputs(paths):
        kind = input_format(path, spec.fmt)
        if kind != "parquet":
            if not exact:
                return None
            total += sum(1 for _ in _read_csv(path, spec, "\t" if kind == "tsv" else ",", 0))
            continue
        try:
            total += pq.ParquetFile(path).metadata.num_rows
        except Exception:  # noqa: BLE001 - an unreadable file is reported when read
            return None
    return total


def _read_csv(path: str, spec: InputSpec, delimiter: str, start_row: int,
              limits: Limits = DEFAULT_LIMITS, stats: InputStats | None = None
              ) -> Iterator[Declaration]:
    stream = open_input(path, limits)
    try:
        if stats is not None:
            stats.files += 1
            if stream.encoding:
                stats.note_encoding(stream.encoding)
        lines = physical_lines(stream, path, limits, stats)
        head = next(lines, None)
        if head is None:
            return
        # --delimiter, else the one the header line shows (',' ';' tab '|'), else the extension's
        delimiter = spec.delimiter or sniff_delimiter(head.text, delimiter)
        records = CsvRecords(itertools.chain([head], lines), delimiter, limits, stats)
        found = iter(records)
        first = next(found, None)
        if first is None:
            return
        if first.problem:
            raise InputError(f"{path}: line {first.line}: the header is unreadable: "
                             f"{first.problem}")
        if stats is not None:
            stats.headers += 1
        header = [h.lstrip("\ufeff") for h in first.fields]
        idx = _resolve_columns(header, spec, path)
        width = len(header)
        records.width = width
        present = [i for i in idx if i is not None]
        pick = itemgetter(*present) if len(present) > 1 else (lambda f: (f[present[0]],))
        slots = [k for k, i in enumerate(idx) if i is not None]
        full = len(present) == len(FIELDS)
        row = start_row
        for rec in found:
            fields = rec.fields
            error = rec.problem
            n = len(fields)
            if error:  # an unbalanced quote or an oversized line: the line, cut, as description
                values = [""] * len(FIELDS)
                values[FIELDS.index("declaration_id")] = f"line {rec.line}"
                values[FIELDS.index("description")] = shown(fields[0] if fields else "", 200)
            elif n == width:
                got = pick(fields)
                values = list(got) if full else _spread(got, slots)
            else:
                if not (n > width and not any(f.strip() for f in fields[width:])):
                    error = (f"malformed row: line {rec.line} has {n} fields, the header has "
                             f"{width}")
                values = [fields[i] if i is not None and i < n else "" for i in idx]
            if rec.undecodable and stats is not None:
                stats.undecodable += 1
            if "\x00" in "\x1f".join(values):
                error = error or "unreadable: binary data (NUL bytes)"
                values = [v.replace("\x00", "") for v in values]
            if stats is not None:
                stats.rows += 1
            yield Declaration(row, *values, error)  # type: ignore[arg-type]
            row += 1
    finally:
        stream.close()


def _spread(got: tuple[str, ...], slots: list[int]) -> list[str]:
    values = [""] * len(FIELDS)
    for k, v in zip(slots, got):
        values[k] = v
    return values


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_parquet(path: str, spec: InputSpec, start_row: int,
                  stats: InputStats | None = None) -> Iterator[Declaration]:
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    header = pf.schema_arrow.names
    idx = _resolve_columns(header, spec, path)
    wanted = sorted({i for i in idx if i is not None})
    names = [header[i] for i in wanted]
    row = start_row
    for batch in parquet_batches(pf, names, path):
        cols = {i: batch.column(k).to_pylist() for k, i in enumerate(wanted)}
        empty = [None] * batch.num_rows
        lists = [cols[i] if i is not None else empty for i in idx]
        if stats is not None:
            stats.rows += batch.num_rows
        for values in zip(*lists):
            yield Declaration(row, *(_text(v) for v in values))  # type: ignore[arg-type]
            row += 1
