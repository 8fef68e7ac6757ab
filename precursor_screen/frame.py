"""Screen a table in a notebook: a DataFrame in, the same kind of DataFrame out, with the
screen's columns added.

pandas is not a dependency: any table pyarrow can read is accepted (a ``pyarrow.Table``, a pandas
or polars DataFrame, anything with ``__arrow_c_stream__``). A pandas DataFrame comes back as a
pandas DataFrame (its index and columns untouched, the new columns added), a polars one as
polars, anything else as a ``pyarrow.Table``. The run's metadata (tool and RDKit versions, the
list's hash, the parameters) goes into ``DataFrame.attrs`` or the Arrow schema's metadata.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from precursor_screen.errors import InputError
from precursor_screen.io.readers import Record
from precursor_screen.io.writers import META_KEY
from precursor_screen.manifest import run_metadata
from precursor_screen.results import SCREEN, verdict_row
from precursor_screen.screen import Screener

__all__ = ["screen_frame", "FRAME_COLUMNS"]

FRAME_COLUMNS = tuple(c for c in SCREEN if c.name not in ("row", "id", "input_smiles",
                                                           "tool_version", "reference_sha256"))
"""The columns added (the screen's, less those the table already has in its own way: the row,
the id and the SMILES given; the version stamps go to the metadata)."""

_ARROW = {int: pa.int64(), float: pa.float64(), str: pa.string()}


def screen_frame(frame: Any, smiles: str = "smiles", *, id: str | None = None,
                 screener: Screener | None = None, jobs: int = 1, prefix: str = "",
                 **screener_options: Any) -> Any:
    """Return ``frame`` with the screen's columns (:data:`FRAME_COLUMNS`) added, one verdict per
    row, in row order; a missing or unreadable SMILES gets a ``status`` saying why.

    ``smiles`` names the structure column; ``id`` a column whose values name the rows in the
    reasons (default: the row number); ``screener`` a Screener already built, else one is built
    from ``screener_options`` (``as_of=``, ``reference=``, ...); ``prefix`` goes before every
    added column's name (a clash with an existing column is an error naming it).

    >>> import pyarrow as pa
    >>> out = screen_frame(pa.table({"smiles": ["CC(=O)Cc1ccccc1", "CCO", "C1CC"]}))
    >>> out.column("flag").to_pylist(), out.column("status").to_pylist()[2]
    (['scheduled', 'none', ''], 'unparsable SMILES: C1CC')
    """
    table = _as_table(frame)
    if smiles not in table.column_names:
        raise InputError(f"no column {smiles!r} (columns: {', '.join(table.column_names)}); "
                         "name the SMILES column with smiles=")
    if id is not None and id not in table.column_names:
        raise InputError(f"no column {id!r} for id= (columns: {', '.join(table.column_names)})")
    names = [prefix + c.name for c in FRAME_COLUMNS]
    clash = [n for n in names if n in table.column_names]
    if clash:
        raise InputError(f"the table already has column(s) {', '.join(clash)}; give prefix= "
                         "(e.g. prefix='screen_')")
    screener = screener or Screener(**screener_options)
    values = table.column(smiles).to_pylist()
    ids = table.column(id).to_pylist() if id is not None else range(len(values))
    records = [Record(i, str(ident), "" if v is None else str(v))
               for i, (ident, v) in enumerate(zip(ids, values))]
    meta = run_metadata(screener.reference, {**screener.metadata(), "jobs": jobs,
                                             "smiles_column": smiles})
    rows = [verdict_row(v, meta["tool_version"], meta["reference_sha256"])
            for v in screener.screen(records, jobs=jobs)]
    if len(rows) != len(records):  # the screen's promise, checked where it matters
        raise InputError(f"{len(records)} rows given but {len(rows)} screened")
    added = [(prefix + c.name, _ARROW[c.type], [r[c.name] for r in rows]) for c in FRAME_COLUMNS]
    return _like(frame, table, added, meta)


def _as_table(frame: Any) -> pa.Table:
    if isinstance(frame, pa.Table):
        return frame
    if isinstance(frame, pa.RecordBatch):
        return pa.Table.from_batches([frame])
    if _is_pandas(frame):
        return pa.Table.from_pandas(frame, preserve_index=False)
    try:
        return pa.table(frame)
    except (TypeError, ValueError, pa.ArrowException) as exc:
        raise InputError(f"cannot read a {type(frame).__name__} as a table (give a pandas or "
                         f"polars DataFrame or a pyarrow Table): {exc}") from None


def _is_pandas(frame: Any) -> bool:
    return type(frame).__module__.split(".")[0] == "pandas"


def _like(frame: Any, table: pa.Table, added: list[tuple[str, pa.DataType, list[Any]]],
          meta: dict[str, Any]) -> Any:
    """``frame``'s kind with the ``added`` columns: pandas via ``assign`` (its index kept),
    polars through its constructor from Arrow, else a pyarrow Table."""
    if _is_pandas(frame):
        out = frame.assign(**{name: values for name, _, values in added})
        out.attrs["precursor_screen"] = meta
        return out
    for name, kind, values in added:
        table = table.append_column(name, pa.array(values, type=kind))
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[META_KEY] = json.dumps(meta, sort_keys=True).encode()
    table = table.replace_schema_metadata(schema_meta)
    if type(frame).__module__.split(".")[0] == "polars":
        return type(frame)(table)
    return table
