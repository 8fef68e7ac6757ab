"""The one table of output columns: every command's columns, their types and meaning.

Every writer (``io.writers``) takes its columns from here, and the README's column tables are
checked against it (``tests/test_docs.py``). A verdict becomes a row with :func:`verdict_row`;
:class:`Summary` counts the rows of a screen and reconciles them with the rows read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from precursor_screen.io.readers import read_rows
from precursor_screen.io.writers import TableWriter
from precursor_screen.types import FLAG_ORDER, Hit, Route, Verdict

__all__ = ["Column", "SCREEN", "COLUMNS", "DECLARATIONS", "RESCREEN_CHANGES", "DERIVATIVES",
           "GROUP_FINDINGS", "ENUMERATE", "SEARCH_SIMILAR", "SEARCH_SMARTS", "TABLES", "names",
           "route_text", "verdict_row", "iter_rows", "check_json", "Summary", "write_results",
           "read_results"]


@dataclass(frozen=True, slots=True)
class Column:
    """One output column: its name, its type (``int``, ``float`` or ``str``) and its meaning."""

    name: str
    type: type
    meaning: str


def names(columns: Iterable[Column]) -> tuple[str, ...]:
    """The column names, in order."""
    return tuple(c.name for c in columns)


_STAMPS = (
    Column("tool_version", str, "the tool version, on every row, so a row copied out of context "
                                "stays auditable"),
    Column("reference_sha256", str, "the content hash of the reference list screened against, "
                                    "on every row"),
)

_LIBRARY_ROW = (
    Column("row", int, "the library row"),
    Column("id", str, "the library compound's id"),
    Column("smiles", str, "its standardized SMILES"),
)

SCREEN: tuple[Column, ...] = (
    Column("row", int, "0-based input position (continuous across several input files)"),
    Column("id", str, "the input's id (second field of a .smi line, an id column, the SDF title), "
                      "else the row number"),
    Column("input_smiles", str, "the structure as given"),
    Column("status", str, "`ok`, or why the row could not be read or screened (`empty`, "
                          "`unparsable SMILES: ...`, `cannot sanitize: ...`, `too large: ...`, "
                          "`unreadable: binary ...`, `malformed row: ...`, `timeout: ...`, "
                          "`error: ...`); such a row has an empty flag"),
    Column("flag", str, "the strongest relation found: `scheduled` > `convertible` > "
                        "`drug-precursor` > `group` > `similar` > `none`"),
    Column("score", float, "risk score in [0, 1], rising with the strength of the evidence "
                           "(`precursor_screen.screen.SCORE_BANDS`): for ranking and ROC curves"),
    Column("match_id", str, "the listed substance (or group) behind the flag"),
    Column("match_name", str, "its name"),
    Column("similarity", float, "Morgan radius-2 (2048-bit) Tanimoto to the substance the reason "
                                "names (a listed substance, a controlled drug, the drug-family "
                                "member a route reaches, a group's first parent; for `none`, "
                                "the nearest listed substance)"),
    Column("reason", str, "one sentence a chemist can check: relation, listed substance with its "
                          "list, category, act and date, the route step by step with rule names "
                          "and what comes off"),
    Column("relation", str, "the kind of evidence (`identical`, `salt`, `stereoisomer`, "
                            "`converts`, `drug`, `group`, `contains`, `similar`, ...)"),
    Column("match_list", str, "the list the match is on (built-in, or your reference file)"),
    Column("route", str, "the route: each step as `rule -> product` (`rule (+ reagent) -> "
                         "product` for a reagent step), steps separated by a vertical bar"),
    Column("group_id", str, "the generic group, for a group member"),
    Column("standardized_smiles", str, "the parent structure compared"),
    *_STAMPS,
)
"""Columns of ``screen`` (CSV, TSV, Parquet, SDF, JSON Lines)."""

COLUMNS = names(SCREEN)

DECLARATIONS: tuple[Column, ...] = (
    Column("row", int, "0-based input row over all inputs"),
    Column("declaration_id", str, "as given"),
    Column("verdict", str, "`scheduled`, `below-threshold` (a listed substance, but the declared "
                           "quantity or concentration is below every threshold that applies), "
                           "`suspect`, `clear` or `unresolved`"),
    Column("reason", str, "the sentences, strongest first, `; `-separated"),
    Column("rules", str, "the rules that fired (docs/declarations.md)"),
    Column("flag", str, "the structure screen's strongest flag (`none` when screened and clear; "
                        "empty when nothing was screened)"),
    Column("match_id", str, "the listed substance the flag (or the listed CN code) refers to, or "
                            "the nearest one"),
    Column("match_name", str, "its name"),
    Column("similarity", float, "best Morgan radius-2 Tanimoto of a resolved structure to the "
                                "list"),
    Column("resolved_smiles", str, "the structures screened (canonical SMILES as declared, salts "
                                   "kept), `;`-separated"),
    Column("resolved_by", str, "how each was found: `smiles`, `inchi`, `cas:registry`, "
                               "`cas:bundled`, `cas:<map file>`, `name:...`, `opsin`, "
                               "`description:...`"),
    Column("cn_code", str, "the declared CN code, as read"),
    Column("cas", str, "the declared CAS numbers, as read"),
    Column("name", str, "the declared name, as read"),
    Column("smiles", str, "the declared structure, as read"),
    Column("description", str, "the declared goods description, as read"),
    Column("quantity_kg", str, "the declared net mass, as read"),
    Column("concentration_pct", str, "the declared concentration of the substance in the goods "
                                     "(percent by weight), as read"),
    *_STAMPS,
)
"""Columns of ``declarations``: the verdict, then the declared fields echoed (so ``rescreen``
needs nothing but the output), then the version stamps."""

RESCREEN_CHANGES: tuple[Column, ...] = (
    Column("row", int, "the row of the earlier output"),
    Column("declaration_id", str, "as given"),
    Column("old_verdict", str, "the verdict under the earlier list"),
    Column("verdict", str, "the verdict under the new list"),
    Column("list_change", str, "the list changes that touch the row"),
    Column("reason", str, "the new reason"),
    Column("old_reason", str, "the earlier reason"),
    *(c for c in DECLARATIONS if c.name in ("rules", "flag", "match_id", "match_name",
                                             "resolved_smiles", "resolved_by", "cn_code", "cas",
                                             "name", "smiles", "description", "quantity_kg",
                                             "concentration_pct")),
)
"""Columns of ``rescreen``: one row per declaration whose verdict or reason changes."""

DERIVATIVES: tuple[Column, ...] = (
    Column("rank", int, "1 for the strongest derivative of a substance"),
    Column("substance_id", str, "the listed substance"),
    Column("substance_name", str, "its name"),
    *_LIBRARY_ROW,
    Column("relation", str, "the strongest relation: identical, converts, group, contains, "
                            "similar, contained_in"),
    Column("relations", str, "every relation found, `;`-separated"),
    Column("similarity", float, "Morgan radius-2 Tanimoto to the substance"),
    Column("reason", str, "why, in one sentence"),
    Column("route", str, "the conversion route, for `converts`"),
    Column("group_ids", str, "the groups of the substance it belongs to"),
    Column("atoms_added", int, "heavy atoms the compound has beyond the substance"),
)
"""Columns of ``derivatives``."""

GROUP_FINDINGS: tuple[Column, ...] = (
    Column("group_id", str, "the draft group"),
    Column("set", str, "`listed`, `designer`, `library`, `legitimate` or a user file's name"),
    Column("verdict", str, "`covered`, `missed`, `captured`, `collateral` or `unreadable`"),
    Column("row", int, "the row in its set"),
    Column("id", str, "the compound's id"),
    Column("name", str, "its name"),
    Column("smiles", str, "its structure"),
    Column("reason", str, "why it is in this finding"),
)
"""Columns of ``group check`` (one row per finding)."""

ENUMERATE: tuple[Column, ...] = (
    Column("substance_id", str, "the listed substance or controlled drug"),
    Column("substance_name", str, "its name"),
    Column("registry", str, "`precursors` or `controlled drugs`"),
    Column("masks", int, "steps back from the substance"),
    Column("smiles", str, "the form, standardized"),
    Column("key", str, "its stereo-free key"),
    Column("made_by", str, "the reverse steps from the substance to the form"),
    Column("unmask_route", str, "the forward route back to the substance"),
    Column("unmask_steps", int, "its steps"),
    Column("covered", str, "`listed`, `controlled drug`, `adopted group`, `draft group` or `no`"),
    Column("covered_by", str, "what covers it"),
    Column("listed", str, "the listed substance it is, if any"),
    Column("groups", str, "the groups it belongs to"),
    Column("known_designer_precursor", str, "the known designer precursor it is, if any"),
    Column("screen_flag", str, "what `screen` flags the form today"),
)
"""Columns of ``enumerate``."""

SEARCH_SIMILAR: tuple[Column, ...] = (
    Column("query_row", int, "the query's input row"),
    Column("query_id", str, "the query's id"),
    Column("query_smiles", str, "the query as given"),
    Column("query_status", str, "`ok`, or why the query could not be read"),
    Column("rank", int, "1 for the most similar hit of a query"),
    *_LIBRARY_ROW,
    Column("similarity", float, "Morgan radius-2 Tanimoto"),
)
"""Columns of ``search --similar``."""

SEARCH_SMARTS: tuple[Column, ...] = _LIBRARY_ROW
"""Columns of ``search --smarts``."""

TABLES: dict[str, tuple[Column, ...]] = {
    "screen": SCREEN, "declarations": DECLARATIONS, "rescreen": RESCREEN_CHANGES,
    "derivatives": DERIVATIVES, "group check": GROUP_FINDINGS, "enumerate": ENUMERATE,
    "search --similar": SEARCH_SIMILAR, "search --smarts": SEARCH_SMARTS,
}
"""Every command's output columns, by command."""


def route_text(route: Route | None) -> str:
    """A route as ``rule -> product | rule (+ reagent) -> product`` (empty for none)."""
    if route is None:
        return ""
    return " | ".join(f"{s.rule_name}{f' (+ {s.reagent})' if s.reagent else ''} -> {s.product}"
                      for s in route.steps)


def verdict_row(v: Verdict, tool_version: str, reference_sha256: str) -> dict[str, Any]:
    """The :data:`SCREEN` columns of one verdict."""
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


def check_json(query: str, v: Verdict, reference_sha256: str,
               interpretation: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One compound's full answer as data (what ``check --json`` prints and the lab bench's
    ``POST /check`` returns): how the query was read (``interpretation``, see
    :class:`precursor_screen.lookup.Interpretation`), the verdict and every hit with its relation,
    listed substance, score, similarity, reason and route."""
    return {"query": query, "interpretation": dict(interpretation or {}),
            "standardized_smiles": v.standardized_smiles,
            "flag": v.flag.value if v.flag is not None else "", "score": v.score,
            "reason": v.reason, "similarity": v.similarity, "reference_sha256": reference_sha256,
            "hits": [{"relation": h.relation, "substance_id": h.substance_id,
                      "substance_name": h.substance_name, "list": h.list_name, "score": h.score,
                      "similarity": h.similarity, "reason": h.reason,
                      "route": route_text(h.route), "group_id": h.group_id} for h in v.hits]}


def iter_rows(verdicts: Iterable[Verdict], metadata: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Rows of verdicts, stamped with the run's tool version and reference hash."""
    for v in verdicts:
        yield verdict_row(v, metadata["tool_version"], metadata["reference_sha256"])


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


def write_results(verdicts: Iterable[Verdict], path: str, fmt: str,
                  metadata: dict[str, Any]) -> Summary:
    """Write every verdict as a :data:`SCREEN` row to ``path`` (``-``: stdout) and return the
    summary: the library's one-call writer."""
    summary = Summary()
    with TableWriter(path, fmt, SCREEN, metadata) as w:
        for v in verdicts:
            summary.add(v)
            w.write(verdict_row(v, metadata["tool_version"], metadata["reference_sha256"]))
    return summary


def read_results(path: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read a screen's results file back: its rows (dicts of :data:`SCREEN` columns; text for
    CSV, TSV and SDF) and its run metadata."""
    return read_rows(path)
