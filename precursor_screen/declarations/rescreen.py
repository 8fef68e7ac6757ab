"""Re-screen a previous declarations output against a changed list, redoing only what the change needs.

    previous output + its metadata (the list it was screened against, substance by substance)
      -> list change: substances added and removed (an edited one counts as both)
      -> rows that relate to a changed substance -> redone; every other row keeps its verdict
      -> the rows whose verdict changes, with the list change that caused it

A row relates to a changed substance when it could answer differently without it or with it:

* a resolved structure has any relation to it the screen looks for (identity, salt or
  stereoisomer, containment either way, a conversion route) or a Tanimoto at least as high as
  the row's best similarity to the old list or the lowest threshold that can raise a flag (its
  nearest-substance reason and flags can change; fewer cannot). Group membership and controlled
  drugs do not depend on the list, and are not asked (whether the drug stage runs depends on a
  strong list hit, which is a relation to that substance);
* a declared CAS number, name or CN code is one of the substance's (resolution and the CN rules
  use the list's CAS numbers, names and codes).

The test suite holds this to a full run: rescreening an output written against an older list
gives byte for byte what screening the inputs afresh against the new list writes.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from precursor_screen.chem.parse import quiet_rdkit
from precursor_screen.chem.standardize import StandardizeError, standardize_smiles
from precursor_screen.declarations.cnrules import parse_cn
from precursor_screen.declarations.resolve import (
    cas_numbers_in,
    graded_name_key,
    name_key,
    normalize_cas,
    split_cas,
    stripped_name_key,
)
from precursor_screen.declarations.run import (
    declarations_format,
    part_table,
    read_output,
    write_rows,
)
from precursor_screen.declarations.schema import Declaration
from precursor_screen.declarations.verdict import (
    OUTPUT_COLUMNS,
    VERDICTS,
    DeclarationConfig,
    DeclarationScreener,
    reference_inventory,
)
from precursor_screen.errors import InputError
from precursor_screen.io.writers import TableWriter, check_output
from precursor_screen.manifest import file_sha256, run_metadata
from precursor_screen.results import RESCREEN_CHANGES, names
from precursor_screen.screen import Screener, ScreenParameters
from precursor_screen.version import __version__
from scheduled_substances import Registry, Substance

__all__ = ["ListChange", "diff_inventories", "RescreenSummary", "rescreen", "CHANGE_COLUMNS"]

CHANGE_COLUMNS = names(RESCREEN_CHANGES)
_BATCH = 20_000


@dataclass(frozen=True)
class ListChange:
    """Inventory entries (dicts, see :func:`reference_inventory`) added to and removed from a list."""

    added: tuple[dict[str, Any], ...] = ()
    removed: tuple[dict[str, Any], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)

    def text(self) -> str:
        parts = []
        if self.added:
            parts.append(f"{len(self.added)} added ({', '.join(e['name'] for e in self.added[:6])}"
                         + (", ..." if len(self.added) > 6 else "") + ")")
        if self.removed:
            parts.append(f"{len(self.removed)} removed ({', '.join(e['name'] for e in self.removed[:6])}"
                         + (", ..." if len(self.removed) > 6 else "") + ")")
        return "; ".join(parts) or "no substance added or removed"


def diff_inventories(old: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]) -> ListChange:
    """What changed between two inventories: entries keyed by list, id and digest."""
    key = lambda e: (e.get("list", ""), e["id"], e.get("digest", ""))  # noqa: E731
    old_keys = {key(e) for e in old}
    new_keys = {key(e) for e in new}
    return ListChange(tuple(e for e in new if key(e) not in old_keys),
                      tuple(e for e in old if key(e) not in new_keys))


def _describe(entry: dict[str, Any], added: bool) -> str:
    act = entry.get("eu_act", "")
    when = entry.get("eu_date", "")
    detail = ", ".join(x for x in (act, f"from {when}" if when and added else "") if x)
    return (f"{'added to' if added else 'removed from'} the list: {entry['name']}"
            + (f" ({detail})" if detail and added else ""))


@dataclass
class RescreenSummary:
    """What a rescreen did: rows read, redone and changed, and the list change."""

    rows: int = 0
    redone: int = 0
    changed: int = 0
    reason_changed: int = 0
    transitions: Counter[str] = field(default_factory=Counter)
    change: ListChange = field(default_factory=ListChange)

    def text(self) -> str:
        moves = ", ".join(f"{k} {n}" for k, n in sorted(self.transitions.items())) or "none"
        share = f" ({100 * self.redone / self.rows:.2f}%)" if self.rows else ""
        return (f"list change: {self.change.text()}; {self.rows} rows, {self.redone} redone{share}; "
                f"verdict changed in {self.changed} ({moves}); reason or match changed, verdict "
                f"not, in {self.reason_changed}")


class _Relations:
    """Which rows relate to the changed substances (see the module docstring)."""

    def __init__(self, change: ListChange, parameters: ScreenParameters, min_similarity: float) -> None:
        self.change = change
        self.threshold = min(parameters.similar_threshold, min_similarity)
        entries = [(e, True) for e in change.added] + [(e, False) for e in change.removed]
        self.cas: dict[str, list[str]] = {}
        self.names: dict[str, list[str]] = {}
        self.codes: dict[str, list[str]] = {}
        subs = []
        self.texts: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        for i, (e, added) in enumerate(entries):
            tag = f"{'+' if added else '-'}{i}"
            self.texts[tag] = _describe(e, added)
            self.ids[tag] = e["id"]
            for c in e.get("cas", []):
                self.cas.setdefault(c, []).append(tag)
            for n in (e["id"], e["name"], *e.get("synonyms", [])):
                self.names.setdefault(name_key(n), []).append(tag)
            for c in e.get("cn_codes", []):
                self.codes.setdefault("".join(ch for ch in c if ch.isdigit()), []).append(tag)
            if e.get("smiles"):
                try:
                    parent = standardize_smiles(e["smiles"])
                except StandardizeError:
                    continue
                if parent.inorganic:
                    continue
                subs.append(Substance(id=tag, name=e["name"], eu_category=e.get("eu_category", ""),
                                      smiles=e["smiles"], list_name=e.get("list", "built-in"),
                                      status=e.get("status", "scheduled"), inorganic=False,
                                      parent=parent))
        self.screener = (Screener(Registry(tuple(subs), "change"), parameters=parameters)
                         if subs else None)
        # a confidential list records no entries, only its hash: any change may touch any row
        self.everything = next((f"{'+' if added else '-'}{i}"
                                for i, (e, added) in enumerate(entries) if e.get("confidential")),
                               None)
        self._structures: dict[str, tuple[tuple[str, float], ...]] = {}
        self._caches: dict[str, dict[Any, tuple[str, ...]]] = {}
        self._rows: dict[tuple[Any, ...], list[str]] = {}

    def _structure_hits(self, smiles: str) -> tuple[tuple[str, float], ...]:
        """(changed substance, similarity or 1 for a non-similarity relation) for a structure."""
        hit = self._structures.get(smiles)
        if hit is None:
            found: dict[str, float] = {}
            if self.screener is not None:
                with quiet_rdkit():
                    v = self.screener.check(smiles)
                for h in v.hits:
                    if h.substance_id not in self.ids:
                        continue  # groups and controlled drugs: not the list's substances
                    sim = h.similarity if h.relation == "similar" else 1.0
                    found[h.substance_id] = max(found.get(h.substance_id, 0.0), sim)
            hit = tuple(sorted(found.items()))
            if len(self._structures) > 200_000:
                self._structures.clear()
            self._structures[smiles] = hit
        return hit

    def why(self, tags: Sequence[str], old_match: str, new_match: str) -> str:
        """The list change behind a changed verdict: the changed substances that are the old or
        the new match, else the most closely related one."""
        named = [t for t in tags if self.ids[t] in (old_match, new_match)] or list(tags[:1])
        return "; ".join(self.texts[t] for t in named)

    def _cached(self, kind: str, key: Any, compute: Callable[[], tuple[str, ...]]) -> tuple[str, ...]:
        cache = self._caches.setdefault(kind, {})
        hit = cache.get(key)
        if hit is None:
            if len(cache) > 200_000:
                cache.clear()
            hit = cache[key] = compute()
        return hit

    def _structures_tags(self, resolved_smiles: str, similarity: float) -> tuple[str, ...]:
        structures = [x for x in resolved_smiles.split(";") if x]
        floor = similarity if len(structures) == 1 else 0.0
        found = sorted(((sim, tag) for smi in structures for tag, sim in self._structure_hits(smi)
                        if sim >= min(floor, self.threshold) - 1e-4), key=lambda st: -st[0])
        return tuple(dict.fromkeys(t for _, t in found))

    def _cas_tags(self, text: str, in_text: bool = False) -> tuple[str, ...]:
        tokens = cas_numbers_in(text) if in_text else split_cas(text)
        tags: list[str] = []
        for token in tokens:
            number, problem = normalize_cas(token)
            if not problem:
                tags.extend(self.cas.get(number, ()))
        return tuple(tags)

    def _name_tags(self, text: str) -> tuple[str, ...]:
        if not text.strip():
            return ()
        return (*self.names.get(name_key(text), ()), *self.names.get(graded_name_key(text), ()),
                *self.names.get(stripped_name_key(text), ()))

    def _code_tags(self, text: str) -> tuple[str, ...]:
        cn = parse_cn(text)
        if cn is None or cn.problem:
            return ()
        return tuple(self.codes.get(cn.digits[:8] if len(cn.digits) >= 8 else cn.digits + "00", ()))

    def of(self, rules: str, resolved_smiles: str, similarity: float, cas: str, name: str,
           cn_code: str, resolved_by: str, description: str) -> list[str]:
        """The changed substances a previous output row relates to (tags, closest first).

        The description counts only where the row was resolved from it or not at all: elsewhere
        resolution never reads it (and a change that could make it do so names the row's CAS
        number or name).
        """
        malformed = "input:malformed" in rules.split(";")
        desc = description if not resolved_by or resolved_by.startswith("description") else ""
        key = (malformed, resolved_smiles, similarity, cas, name, cn_code, desc)
        hit = self._rows.get(key)
        if hit is not None:
            return hit
        tags: list[str] = []
        if not malformed:
            tags = [*self._cached("s", (resolved_smiles, similarity),
                                  lambda: self._structures_tags(resolved_smiles, similarity)),
                    *self._cached("c", cas, lambda: self._cas_tags(cas)),
                    *self._cached("n", name, lambda: self._name_tags(name)),
                    *self._cached("k", cn_code, lambda: self._code_tags(cn_code))]
            if desc:
                tags += self._cached("d", desc, lambda: (*self._cas_tags(desc, True),
                                                         *self._name_tags(desc)))
        tags = list(dict.fromkeys(tags))
        if not tags and self.everything is not None:
            tags = [self.everything]
        if len(self._rows) > 200_000:
            self._rows.clear()
        self._rows[key] = tags
        return tags


def previous_config(meta: dict[str, Any], reference: Any) -> DeclarationConfig:
    """The configuration of the previous run, with the new reference list."""
    params = meta.get("parameters", {})
    screen = params.get("screen")
    if "reference_inventory" not in meta or screen is None:
        raise InputError("the previous output has no declarations metadata (reference inventory "
                         "and parameters); rescreen needs an output of `precursor-screen declarations`")
    files = []
    for m in params.get("mapping_files", []):
        if file_sha256(m["path"]) != m["sha256"]:
            raise InputError(f"{m['path']}: the mapping file the previous run used is missing or "
                             "changed; rescreen needs it as it was")
        files.append(m["path"])
    return DeclarationConfig.create(reference, ScreenParameters(**screen), files,
                                    bool(params.get("opsin", False)))


def rescreen(previous: str, reference: Any, changes_output: str, *, full_output: str | None = None,
             changes_format: str = "csv", full_format: str | None = None,
             extra_parameters: dict[str, Any] | None = None, progress: Any = None,
             notify: Callable[[str], None] = lambda _m: None,
             screener: DeclarationScreener | None = None,
             raw_cells: bool = False) -> RescreenSummary:
    """Re-screen ``previous`` against ``reference``: write the changed rows (and the full output).

    ``screener`` may be one already built for the new list with the previous run's parameters
    (it is used only when its configuration is that one). ``raw_cells``: CSV/TSV cells without
    formula neutralisation (``io.writers``).
    """
    for out in (changes_output, full_output):
        if out is not None:
            check_output(out, [previous], sidecar=True)
    batches_in, meta = read_output(previous)
    config = previous_config(meta, reference)
    if meta.get("tool_version") != __version__:
        notify(f"the previous output was written by version {meta.get('tool_version')}; rows not "
               f"redone keep its verdicts")
    change = diff_inventories(meta["reference_inventory"], reference_inventory(reference))
    summary = RescreenSummary(change=change)
    relations: _Relations | None = None
    if screener is not None and screener.config.fingerprint != config.fingerprint:
        screener = None
    if change:
        screener = screener or DeclarationScreener(config)
        relations = _Relations(change, config.parameters, screener.rules.min_similarity)
    stamp = (__version__, reference.content_hash)
    changes: list[tuple[Any, ...]] = []

    def redo(table: Any) -> Any:
        """One batch: which rows relate (column-wise, cached per value), those redone and spliced
        back, the stamps renewed; untouched rows never become Python objects but for a lookup."""
        n = table.num_rows
        if "concentration_pct" not in table.schema.names:  # an output of an earlier version
            table = table.append_column("concentration_pct", pa.array([""] * n, pa.string()))
        col = lambda c: table.column(c).to_pylist()  # noqa: E731
        todo: list[tuple[int, list[str]]] = []
        if relations is not None and n:
            for i, values in enumerate(zip(col("rules"), col("resolved_smiles"), col("similarity"),
                                           col("cas"), col("name"), col("cn_code"),
                                           col("resolved_by"), col("description"))):
                tags = relations.of(*values)
                if tags:
                    todo.append((i, tags))
        columns = {c: table.column(c) for c in OUTPUT_COLUMNS[:-2]}
        if todo:
            assert screener is not None and relations is not None
            old = {c: col(c) for c in ("row", "declaration_id", "verdict", "reason", "match_id",
                                       "cn_code", "cas", "name", "smiles", "description",
                                       "quantity_kg", "concentration_pct")}
            decls = [Declaration(old["row"][i], old["declaration_id"][i], old["cn_code"][i],
                                 old["cas"][i], old["name"][i], old["smiles"][i],
                                 old["description"][i], old["quantity_kg"][i],
                                 old["concentration_pct"][i]) for i, _ in todo]
            with quiet_rdkit():
                new_rows = screener.judge_rows(decls, *stamp)
            flags = [False] * n
            for i, _ in todo:
                flags[i] = True
            mask = pa.array(flags)
            for k, c in enumerate(OUTPUT_COLUMNS[:-2]):
                current = columns[c].combine_chunks()
                columns[c] = pc.replace_with_mask(current, mask,
                                                  pa.array([r[k] for r in new_rows], current.type))
            for (i, tags), new in zip(todo, new_rows):
                verdict, reason, match_id = new[2], new[3], new[6]
                if old["verdict"][i] != verdict:
                    summary.changed += 1
                    summary.transitions[f"{old['verdict'][i]}->{verdict}"] += 1
                    why = relations.why(tags, str(old["match_id"][i] or ""), match_id)
                    changes.append((new[0], new[1], old["verdict"][i], verdict, why, reason,
                                    old["reason"][i], *new[4:8], *new[9:18]))
                elif (old["reason"][i], old["match_id"][i]) != (reason, match_id):
                    summary.reason_changed += 1
        summary.rows += n
        summary.redone += len(todo)
        if progress is not None:
            progress.update(n)
        out = part_table([])
        arrays = [columns[c] for c in OUTPUT_COLUMNS[:-2]]
        arrays += [pa.array([stamp[0]] * n, pa.string()), pa.array([stamp[1]] * n, pa.string())]
        return pa.Table.from_arrays(arrays, schema=out.schema)

    tables = (redo(b) for b in batches_in)
    if full_output is None:
        for _ in tables:
            pass
    else:
        _write_full(full_output, full_format, tables, _new_metadata(meta, config, extra_parameters),
                    raw_cells)
    _write_changes(changes_output, changes_format, changes, meta, reference, change, summary,
                   raw_cells)
    return summary


def _write_full(path: str, fmt: str | None, tables: Iterator[Any], meta: dict[str, Any],
                raw_cells: bool = False) -> None:
    """The complete new output. Its summary goes into the metadata: CSV's sidecar is written
    after the rows; Parquet fixes its metadata first, so rows go to a temporary file beside it."""
    fmt = declarations_format(path, fmt)
    counts: Counter[str] = Counter()

    def counted(ts: Any) -> Iterator[Any]:
        rows = 0
        for t in ts:
            counts.update(t.column("verdict").to_pylist())
            rows += t.num_rows
            meta["summary"] = {"rows": rows, "verdicts": {v: counts.get(v, 0) for v in VERDICTS}}
            yield t

    meta["summary"] = {"rows": 0, "verdicts": {v: 0 for v in VERDICTS}}
    if fmt != "parquet":
        write_rows(path, fmt, counted(tables), meta, raw_cells)
        return
    tmp = path + ".rescreen-tmp.parquet"
    try:
        write_rows(tmp, "parquet", counted(tables), {})
        pf = pq.ParquetFile(tmp)
        write_rows(path, "parquet", (pf.read_row_group(i) for i in range(pf.num_row_groups)), meta)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _new_metadata(meta: dict[str, Any], config: DeclarationConfig,
                  extra: dict[str, Any] | None) -> dict[str, Any]:
    params = meta.get("parameters", {})
    new = run_metadata(config.reference, {**config.parameters_dict(), "input": params.get("input", {}),
                                          **(extra or {})})
    new.pop("created", None)
    new["inputs"] = meta.get("inputs", [])
    new["columns"] = list(OUTPUT_COLUMNS)
    new["reference_inventory"] = reference_inventory(config.reference)
    return new


def _declaration(r: dict[str, Any]) -> Declaration:
    text = lambda k: "" if r.get(k) is None else str(r.get(k))  # noqa: E731
    return Declaration(int(r["row"]), text("declaration_id"), text("cn_code"), text("cas"),
                       text("name"), text("smiles"), text("description"), text("quantity_kg"),
                       text("concentration_pct"))


def _write_changes(path: str, fmt: str, rows: list[tuple[Any, ...]], meta: dict[str, Any],
                   reference: Any, change: ListChange, summary: RescreenSummary,
                   raw_cells: bool = False) -> None:
    info = {"previous_reference_sha256": meta.get("reference_sha256", ""),
            "reference_sha256": reference.content_hash, "tool_version": __version__,
            "added": [e["id"] for e in change.added], "removed": [e["id"] for e in change.removed],
            "rows": summary.rows, "redone": summary.redone, "changed": summary.changed}
    with TableWriter(path, fmt, RESCREEN_CHANGES, info, raw_cells=raw_cells) as w:
        for row in rows:
            w.write(dict(zip(CHANGE_COLUMNS, row)))
