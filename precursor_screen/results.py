"""Verdict -> output row with fixed columns; output files in every format; summary counts.

Every file written records the run's metadata: Parquet in its schema metadata, SDF and JSON Lines
per record, CSV, TSV and JSON Lines in a sidecar ``<file>.meta.json``; each row also carries the tool version and the
reference list's content hash, so a single row copied out of context stays auditable.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import IO, Any

from precursor_screen.errors import InputError
from precursor_screen.io.writers import atomic_open
from precursor_screen.types import FLAG_ORDER, Hit, Route, Verdict

__all__ = ["COLUMNS", "verdict_row", "ResultWriter", "Summary", "output_format", "OUTPUT_FORMATS",
           "route_text", "read_results"]

COLUMNS = ("row", "id", "input_smiles", "status", "flag", "score", "match_id", "match_name",
           "similarity", "reason", "relation", "match_list", "route", "group_id",
           "standardized_smiles", "tool_version", "reference_sha256")
OUTPUT_FORMATS = ("csv", "tsv", "parquet", "sdf", "jsonl")


def route_text(route: Route | None) -> str:
    """A route as ``rule -> product | rule (+ reagent) -> product`` (empty for none)."""
    if route is None:
        return ""
    return " | ".join(f"{s.rule_name}{f' (+ {s.reagent})' if s.reagent else ''} -> {s.product}"
                      for s in route.steps)


def verdict_row(v: Verdict, tool_version: str, reference_sha256: str) -> dict[str, Any]:
    """The fixed output columns for one verdict."""
    best: Hit | None = v.hits[0] if v.hits else None
    return {
        "row": v.row,
        "id": v.id,
        "input_smiles": v.input_smiles,
        "status": v.status,
        "flag": "" if v.flag is None else v.flag.value,
        "score": round(v.score, 4),
        "match_id": v.match_id,
        "match_name": v.match_name,
        "similarity": round(v.similarity, 4),
        "reason": v.reason,
        "relation": best.relation if best else "",
        "match_list": best.list_name if best else "",
        "route": route_text(best.route) if best else "",
        "group_id": best.group_id if best else "",
        "standardized_smiles": v.standardized_smiles,
        "tool_version": tool_version,
        "reference_sha256": reference_sha256,
    }


def output_format(path: str, given: str | None = None) -> str:
    """The output format from ``--format`` or the extension (``-`` means CSV on stdout)."""
    if given:
        fmt = given.lower()
    elif path == "-":
        fmt = "csv"
    else:
        name = path.lower()
        fmt = {"csv": "csv", "tsv": "tsv", "parquet": "parquet", "pq": "parquet", "sdf": "sdf",
               "jsonl": "jsonl", "ndjson": "jsonl"}.get(name.rsplit(".", 1)[-1], "")
    if fmt not in OUTPUT_FORMATS:
        raise InputError(f"cannot tell the output format of {path!r}; use --format "
                         f"({', '.join(OUTPUT_FORMATS)})")
    return fmt


class Summary:
    """Counts per flag and per status, reconciled against the rows read."""

    def __init__(self) -> None:
        self.rows = 0
        self.flags: Counter[str] = Counter()
        self.unreadable: Counter[str] = Counter()

    def add(self, v: Verdict) -> None:
        self.rows += 1
        if v.status == "ok" and v.flag is not None:
            self.flags[v.flag.value] += 1
        else:
            self.unreadable[v.status.split(":", 1)[0]] += 1

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows,
                "flags": {f.value: self.flags.get(f.value, 0) for f in FLAG_ORDER},
                "unreadable": sum(self.unreadable.values()),
                "unreadable_by_reason": dict(sorted(self.unreadable.items()))}

    def text(self) -> str:
        flags = ", ".join(f"{f.value} {self.flags.get(f.value, 0)}" for f in FLAG_ORDER)
        bad = sum(self.unreadable.values())
        why = "; ".join(f"{k} {n}" for k, n in sorted(self.unreadable.items()))
        return f"{self.rows} rows: {flags}; unreadable {bad}" + (f" ({why})" if why else "")


class ResultWriter:
    """Write verdict rows to one file (or stdout) in the chosen format, atomically.

    Use as a context manager; rows appear in the target only when the writer closes cleanly.
    """

    def __init__(self, path: str, fmt: str, metadata: dict[str, Any]) -> None:
        self.path, self.fmt, self.metadata = path, fmt, metadata
        self._ctx: Any = None
        self._fh: IO[str] | None = None
        self._csv: Any = None
        self._parquet: Any = None
        self._batch: list[dict[str, Any]] = []
        self._meta_json = json.dumps(metadata, sort_keys=True, ensure_ascii=False)

    def __enter__(self) -> "ResultWriter":
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
            self._csv = csv.DictWriter(self._fh, fieldnames=COLUMNS, lineterminator="\n",
                                       delimiter="," if self.fmt == "csv" else "\t")
            self._csv.writeheader()
        return self

    def write(self, row: dict[str, Any], mol_block: str | None = None) -> None:
        if self._csv is not None:
            self._csv.writerow(row)
        elif self.fmt == "jsonl":
            assert self._fh is not None
            self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        elif self.fmt == "sdf":
            self._write_sdf(row, mol_block)
        else:
            self._batch.append(row)
            if len(self._batch) >= 50_000:
                self._flush_parquet()

    def _write_sdf(self, row: dict[str, Any], mol_block: str | None) -> None:
        assert self._fh is not None
        if mol_block is None:
            from rdkit import Chem

            mol = Chem.MolFromSmiles(row["standardized_smiles"]) if row["standardized_smiles"] else None
            mol_block = Chem.MolToMolBlock(mol) if mol is not None else "\n  precursor-screen\n\n" \
                "  0  0  0  0  0  0  0  0  0  0999 V2000\nM  END\n"
        lines = mol_block.splitlines()
        lines[0] = str(row["id"])
        self._fh.write("\n".join(lines) + "\n")
        for k in COLUMNS:
            value = str(row[k]).replace("\n", " ")
            self._fh.write(f"> <{k}>\n{value}\n\n")
        self._fh.write(f"> <run_metadata>\n{self._meta_json}\n\n$$$$\n")

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._batch and self._parquet is not None:
            return
        table = pa.Table.from_pylist(self._batch, schema=_arrow_schema(self._meta_json))
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self._fh, table.schema)
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
            with atomic_open(self.path + ".meta.json", "w", encoding="utf-8") as fh:
                fh.write(json.dumps(self.metadata, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def _arrow_schema(meta_json: str) -> Any:
    import pyarrow as pa

    types = {"row": pa.int64(), "score": pa.float64(), "similarity": pa.float64()}
    fields = [pa.field(c, types.get(c, pa.string())) for c in COLUMNS]
    return pa.schema(fields, metadata={b"precursor_screen": meta_json.encode("utf-8")})


def write_results(verdicts: Iterable[Verdict], path: str, fmt: str, metadata: dict[str, Any]) -> Summary:
    """Write all verdicts and return the summary; the library's one-call writer."""
    summary = Summary()
    with ResultWriter(path, fmt, metadata) as w:
        for v in verdicts:
            summary.add(v)
            w.write(verdict_row(v, metadata["tool_version"], metadata["reference_sha256"]))
    return summary


def read_results(path: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read a results file back (CSV/TSV with its sidecar, Parquet, JSON Lines): rows and metadata."""
    fmt = output_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(b"precursor_screen", b"{}")
        return table.to_pylist(), json.loads(raw)
    meta: dict[str, Any] = {}
    if os.path.exists(path + ".meta.json"):
        with open(path + ".meta.json", encoding="utf-8") as fh:
            meta = json.load(fh)
    if fmt == "jsonl":
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()], meta
    if fmt == "sdf":
        from precursor_screen.io.readers import _read_sdf, _sdf_properties  # noqa: F401

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
        return list(csv.DictReader(fh, delimiter="," if fmt == "csv" else "\t")), meta


def iter_rows(verdicts: Iterable[Verdict], metadata: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for v in verdicts:
        yield verdict_row(v, metadata["tool_version"], metadata["reference_sha256"])
