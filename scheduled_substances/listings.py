"""The listings model: which jurisdiction lists a substance, on which list, by which act, from when.

A substance (``substances.tsv``, ``drugs.tsv``) is one row: its names, numbers and structure. Each
listing is a row of ``listings.tsv`` (``drug_listings.tsv`` for the drugs): jurisdiction, list,
status, act, date in force (and until, for a listing a later act replaced), the scope clauses,
structure families, exclusions, threshold rules, a verified mark for each fact and its sources.
The vocabulary is data too: ``lists.tsv`` names each jurisdiction's lists, ``thresholds.tsv`` the
quantity and mixture rules, ``families.toml`` the family clauses ("its esters") as SMARTS with
test molecules. A new jurisdiction is rows in these files, not code (``SOURCES.md`` says how).

Every row is checked on load; a bad one raises ShippedDataError naming the file, line and reason,
and nothing is half-loaded (the loader returns only after every file passed).
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdkit import Chem

from scheduled_substances.errors import ShippedDataError
from scheduled_substances.validate import (
    Standardizer,
    mol_from_smiles,
    parse_date,
    split_values,
    standardized,
)

__all__ = ["ListDef", "Listing", "ThresholdRule", "Family", "Vocabulary", "load_vocabulary",
           "parse_listings", "LISTS_FILE", "THRESHOLDS_FILE", "FAMILIES_FILE", "LISTING_COLUMNS",
           "STATUSES", "MARKS", "FACTS", "THRESHOLD_KINDS", "active_on"]

LISTS_FILE = "lists.tsv"
THRESHOLDS_FILE = "thresholds.tsv"
FAMILIES_FILE = "families.toml"
LIST_COLUMNS = ("jurisdiction", "list", "registry", "label", "short", "bulk", "description")
LISTING_COLUMNS = ("substance", "jurisdiction", "list", "status", "act", "in_force", "until",
                   "scope", "families", "exclusions", "thresholds", "verified", "sources", "notes")
THRESHOLD_COLUMNS = ("rule", "jurisdiction", "kind", "quantity", "unit", "concentration_pct",
                     "text", "verified", "sources")
STATUSES = ("scheduled", "proposed", "watch")
"""A listing's status: a control measure in force, a proposal, or a watch list."""
FACTS = ("listing", "act", "date")
"""The facts every listing marks: that the substance is on the list, the act, the date."""
MARKS = ("verified", "partial", "unverified", "computed", "estimated", "unknown")
"""verified: read in a source; partial: part of it read (the rest says what); unverified: from
memory or one weak source; computed: derived from verified facts by a stated rule; estimated: a
stated rule where the fact was not found (SOURCES.md); unknown: the date is not recorded."""
THRESHOLD_KINDS = ("none", "quantity", "mixture-any", "mixture-above", "mixture-clause")
"""none: every quantity is controlled; quantity: controlled from ``quantity`` ``unit``;
mixture-any: mixtures are controlled at any concentration; mixture-above: mixtures are controlled
above ``concentration_pct``; mixture-clause: a qualitative mixture rule (its text)."""
REGISTRIES = ("precursors", "drugs")
_SOURCE = re.compile(r"^[A-Z]\d*$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")


@dataclass(frozen=True, slots=True)
class ListDef:
    """One list a jurisdiction keeps (a row of ``lists.tsv``)."""

    jurisdiction: str
    list: str
    registry: str
    label: str          # in reasons: "EU category 1", "UN 1988 Convention Table I"
    short: str          # in compact reasons: "UN Table I"
    bulk: bool          # bulk solvents, acids and reagents traded by the tonne
    description: str = ""


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """A quantity threshold or mixture rule (a row of ``thresholds.tsv``)."""

    rule: str
    jurisdiction: str
    kind: str
    quantity: float | None
    unit: str
    concentration_pct: float | None
    text: str
    verified: str
    sources: tuple[str, ...]

    def as_row(self) -> dict[str, str]:
        return {"rule": self.rule, "jurisdiction": self.jurisdiction, "kind": self.kind,
                "quantity": "" if self.quantity is None else f"{self.quantity:g}",
                "unit": self.unit,
                "concentration_pct": ("" if self.concentration_pct is None
                                      else f"{self.concentration_pct:g}"),
                "text": self.text, "verified": self.verified, "sources": ";".join(self.sources)}


@dataclass(frozen=True)
class Family:
    """A family clause ("its esters") as SMARTS queries, with the molecules that test it."""

    id: str
    title: str
    clause: str
    smarts: tuple[str, ...]
    must_match: tuple[str, ...]
    must_not_match: tuple[str, ...]
    queries: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    def matches(self, mol: Chem.Mol) -> bool:
        """True when ``mol`` (a standardized parent) is a member."""
        return any(mol.HasSubstructMatch(q) for q in self.queries)

    def as_row(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "clause": self.clause,
                "smarts": list(self.smarts), "must_match": list(self.must_match),
                "must_not_match": list(self.must_not_match)}


@dataclass(frozen=True)
class Listing:
    """One listing: a substance on one list of one jurisdiction, for one period."""

    substance: str
    jurisdiction: str
    list: str
    status: str
    act: str
    in_force: dt.date | None        # None: not recorded ("unknown"), counted as always in force
    until: dt.date | None = None    # the first day it no longer applies (a later act replaced it)
    scope: str = ""
    families: tuple[str, ...] = ()
    exclusions: tuple[tuple[str, str], ...] = ()   # (name, SMILES) the listing leaves out
    thresholds: tuple[str, ...] = ()
    verified: tuple[tuple[str, str], ...] = ()     # (fact, mark)
    sources: tuple[str, ...] = ()
    notes: str = ""
    line: int = 0
    label: str = ""
    short: str = ""
    bulk: bool = False
    # derived at load with the registry's standardizer, never stored
    excluded_keys: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)

    def mark(self, fact: str) -> str:
        """The verified mark of ``fact`` ("listing", "act" or "date")."""
        return dict(self.verified).get(fact, "")

    def active_on(self, day: dt.date | None) -> bool:
        """In force on ``day``; with ``day`` None, in the latest state of the list (not ended).

        A listing whose date in force is not recorded counts as in force on every day."""
        return active_on(self.in_force, self.until, day)

    def date_text(self) -> str:
        """", from 2026-05-18 (computed)", or what is known of the date."""
        if self.in_force is None:
            return ", date first listed not recorded"
        mark = self.mark("date")
        note = f" ({mark})" if mark in ("computed", "estimated") else ""
        return f", from {self.in_force.isoformat()}{note}"

    def phrase(self) -> str:
        """The listing for a reason: 'EU category 1, <act>, from <date>'."""
        return f"{self.label}, {self.act}{self.date_text()}"

    def as_row(self) -> dict[str, str]:
        """The row as flat strings (LISTING_COLUMNS), for the content hash and outputs."""
        return {
            "substance": self.substance, "jurisdiction": self.jurisdiction, "list": self.list,
            "status": self.status, "act": self.act,
            "in_force": self.in_force.isoformat() if self.in_force else "unknown",
            "until": self.until.isoformat() if self.until else "", "scope": self.scope,
            "families": ";".join(self.families),
            "exclusions": ";".join(f"{n}={s}" for n, s in self.exclusions),
            "thresholds": ";".join(self.thresholds),
            "verified": ";".join(f"{f}={m}" for f, m in self.verified),
            "sources": ";".join(self.sources), "notes": self.notes,
        }


def active_on(start: dt.date | None, until: dt.date | None, day: dt.date | None) -> bool:
    """Whether a period [start, until) covers ``day`` (None: the latest state, i.e. not ended;
    a start of None means not recorded and counts as always)."""
    if day is None:
        return until is None
    return (start is None or start <= day) and (until is None or day < until)


@dataclass(frozen=True)
class Vocabulary:
    """The lists, threshold rules and families every listing row is checked against."""

    lists: tuple[ListDef, ...]
    thresholds: Mapping[str, ThresholdRule]
    families: Mapping[str, Family]

    @property
    def jurisdictions(self) -> tuple[str, ...]:
        """Every jurisdiction with a list, in file order."""
        return tuple(dict.fromkeys(d.jurisdiction for d in self.lists))

    def list_def(self, registry: str, jurisdiction: str, name: str) -> ListDef | None:
        for d in self.lists:
            if (d.registry, d.jurisdiction, d.list) == (registry, jurisdiction, name):
                return d
        return None

    def rows(self) -> dict[str, Any]:
        """Everything as plain data (part of a registry's content hash)."""
        return {"lists": [{"jurisdiction": d.jurisdiction, "list": d.list, "registry": d.registry,
                           "label": d.label, "short": d.short, "bulk": d.bulk,
                           "description": d.description} for d in self.lists],
                "thresholds": [r.as_row() for r in self.thresholds.values()],
                "families": [f.as_row() for f in self.families.values()]}


def _table(text: str, fname: str, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """The rows of a tab-separated file with a fixed header; '#' lines are comments."""
    lines = text.splitlines()
    header_at = next((i for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("#")),
                     None)
    if header_at is None:
        raise ShippedDataError(f"{fname}: empty file")
    if tuple(lines[header_at].split("\t")) != tuple(columns):
        raise ShippedDataError(f"{fname}:{header_at + 1}: header must be {' '.join(columns)}")
    out = []
    for lineno, line in enumerate(lines[header_at + 1:], start=header_at + 2):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != len(columns):
            raise ShippedDataError(f"{fname}:{lineno}: {len(fields)} fields, expected "
                                   f"{len(columns)}")
        out.append((lineno, {k: v.strip() for k, v in zip(columns, fields)}))
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ShippedDataError(f"{path.name}: cannot read: {exc.strerror}") from None


def _sources(value: str, where: str) -> tuple[str, ...]:
    items = split_values(value)
    if not items:
        raise ShippedDataError(f"{where}: no source (ids of SOURCES.md, e.g. S21)")
    for s in items:
        if not _SOURCE.match(s):
            raise ShippedDataError(f"{where}: source {s!r} is not an id of SOURCES.md (S21, M, D1)")
    return items


def _number(value: str, what: str, where: str) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise ShippedDataError(f"{where}: {what} {value!r} is not a number") from None
    if number < 0:
        raise ShippedDataError(f"{where}: {what} {value!r} is negative")
    return number


def load_vocabulary(folder: Path) -> Vocabulary:
    """Read and check ``lists.tsv``, ``thresholds.tsv`` and ``families.toml`` in ``folder``."""
    lists: list[ListDef] = []
    seen: dict[tuple[str, str, str], int] = {}
    for lineno, f in _table(_read(folder / LISTS_FILE), LISTS_FILE, LIST_COLUMNS):
        where = f"{LISTS_FILE}:{lineno}"
        if not re.fullmatch(r"[a-z]{2,8}", f["jurisdiction"]):
            raise ShippedDataError(f"{where}: jurisdiction {f['jurisdiction']!r} must be a short "
                                   "lowercase code (eu, un, us)")
        if f["registry"] not in REGISTRIES:
            raise ShippedDataError(f"{where}: registry {f['registry']!r} not one of "
                                   f"{', '.join(REGISTRIES)}")
        if not f["list"] or not f["label"] or not f["short"]:
            raise ShippedDataError(f"{where}: list, label and short are required")
        if f["bulk"] not in ("", "yes"):
            raise ShippedDataError(f"{where}: bulk must be 'yes' or empty")
        key = (f["registry"], f["jurisdiction"], f["list"])
        if key in seen:
            raise ShippedDataError(f"{where}: list {f['list']!r} of {f['jurisdiction']} already "
                                   f"defined on line {seen[key]}")
        seen[key] = lineno
        lists.append(ListDef(f["jurisdiction"], f["list"], f["registry"], f["label"], f["short"],
                             f["bulk"] == "yes", f["description"]))
    jurisdictions = {d.jurisdiction for d in lists}
    rules: dict[str, ThresholdRule] = {}
    for lineno, f in _table(_read(folder / THRESHOLDS_FILE), THRESHOLDS_FILE, THRESHOLD_COLUMNS):
        where = f"{THRESHOLDS_FILE}:{lineno}"
        if not _SLUG.match(f["rule"]) or f["rule"] in rules:
            raise ShippedDataError(f"{where}: rule {f['rule']!r} must be a new lowercase slug")
        if f["jurisdiction"] not in jurisdictions:
            raise ShippedDataError(f"{where}: unknown jurisdiction {f['jurisdiction']!r} (not in "
                                   f"{LISTS_FILE})")
        if f["kind"] not in THRESHOLD_KINDS:
            raise ShippedDataError(f"{where}: kind {f['kind']!r} not one of "
                                   f"{', '.join(THRESHOLD_KINDS)}")
        quantity = _number(f["quantity"], "quantity", where)
        concentration = _number(f["concentration_pct"], "concentration_pct", where)
        if (f["kind"] == "quantity") != (quantity is not None) or (
                quantity is not None and f["unit"] not in ("kg", "l")):
            raise ShippedDataError(f"{where}: a quantity rule needs a quantity and a unit (kg or "
                                   "l), and only a quantity rule has them")
        if (f["kind"] == "mixture-above") != (concentration is not None) or (
                concentration is not None and concentration > 100):
            raise ShippedDataError(f"{where}: a mixture-above rule needs concentration_pct "
                                   "(0-100), and only it has one")
        if f["verified"] not in ("verified", "partial", "unverified"):
            raise ShippedDataError(f"{where}: verified must be verified, partial or unverified")
        if not f["text"]:
            raise ShippedDataError(f"{where}: no text")
        rules[f["rule"]] = ThresholdRule(f["rule"], f["jurisdiction"], f["kind"], quantity,
                                         f["unit"], concentration, f["text"], f["verified"],
                                         _sources(f["sources"], where))
    return Vocabulary(tuple(lists), rules, _load_families(folder / FAMILIES_FILE))


def _load_families(path: Path) -> dict[str, Family]:
    try:
        data = tomllib.loads(_read(path))
    except tomllib.TOMLDecodeError as exc:
        raise ShippedDataError(f"{path.name}: {exc}") from None
    out: dict[str, Family] = {}
    for fid, entry in data.items():
        where = f"{path.name} [{fid}]"
        if not isinstance(entry, dict) or not _SLUG.match(fid):
            raise ShippedDataError(f"{where}: a family is a table with a lowercase slug name")
        unknown = set(entry) - {"title", "clause", "smarts", "must_match", "must_not_match"}
        if unknown:
            raise ShippedDataError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        smarts = tuple(entry.get("smarts", ()))
        must = tuple(entry.get("must_match", ()))
        must_not = tuple(entry.get("must_not_match", ()))
        if not smarts or not must or not must_not or not entry.get("title") \
                or not entry.get("clause"):
            raise ShippedDataError(f"{where}: title, clause, smarts, must_match and "
                                   "must_not_match are all required")
        queries = []
        for s in smarts:
            q = Chem.MolFromSmarts(s)
            if q is None:
                raise ShippedDataError(f"{where}: SMARTS {s!r} does not parse")
            queries.append(q)
        fam = Family(fid, entry["title"], entry["clause"], smarts, must, must_not, tuple(queries))
        for expected, examples in ((True, must), (False, must_not)):
            for smi in examples:
                mol, problem = mol_from_smiles(smi)
                if mol is None:
                    raise ShippedDataError(f"{where}: test molecule {smi!r}: {problem}")
                if fam.matches(mol) is not expected:
                    raise ShippedDataError(f"{where}: {smi} {'must' if expected else 'must not'} "
                                           "match")
        out[fid] = fam
    return out


def _marks(value: str, in_force: dt.date | None, where: str) -> tuple[tuple[str, str], ...]:
    marks: dict[str, str] = {}
    for item in split_values(value):
        fact, sep, mark = item.partition("=")
        if not sep or fact not in FACTS or mark not in MARKS:
            raise ShippedDataError(f"{where}: verified item {item!r} is not FACT=MARK (facts "
                                   f"{', '.join(FACTS)}; marks {', '.join(MARKS)})")
        marks[fact] = mark
    missing = [f for f in FACTS if f not in marks]
    if missing:
        raise ShippedDataError(f"{where}: verified must mark {', '.join(missing)}")
    if (marks["date"] == "unknown") != (in_force is None):
        raise ShippedDataError(f"{where}: in_force 'unknown' and date=unknown go together")
    return tuple((f, marks[f]) for f in FACTS)


def parse_listings(text: str, fname: str, registry: str, vocabulary: Vocabulary,
                   substance_ids: Iterable[str],
                   standardizer: Standardizer | None) -> dict[str, list[Listing]]:
    """The listings of a listings file, by substance id, each row checked (file:line: reason)."""
    ids = set(substance_ids)
    out: dict[str, list[Listing]] = {}
    for lineno, f in _table(text, fname, LISTING_COLUMNS):
        where = f"{fname}:{lineno}"
        if f["substance"] not in ids:
            raise ShippedDataError(f"{where}: unknown substance {f['substance']!r}")
        if f["jurisdiction"] not in vocabulary.jurisdictions:
            raise ShippedDataError(f"{where}: unknown jurisdiction {f['jurisdiction']!r} (add it "
                                   f"to {LISTS_FILE})")
        ldef = vocabulary.list_def(registry, f["jurisdiction"], f["list"])
        if ldef is None:
            known = [d.list for d in vocabulary.lists
                     if (d.registry, d.jurisdiction) == (registry, f["jurisdiction"])]
            raise ShippedDataError(f"{where}: unknown list or category {f['list']!r} of "
                                   f"{f['jurisdiction']} (known: {', '.join(known)})")
        if f["status"] not in STATUSES:
            raise ShippedDataError(f"{where}: status {f['status']!r} not one of "
                                   f"{', '.join(STATUSES)}")
        if not f["act"]:
            raise ShippedDataError(f"{where}: no act")
        if not f["in_force"]:
            raise ShippedDataError(f"{where}: no in_force date (YYYY-MM-DD, or 'unknown')")
        in_force = None if f["in_force"] == "unknown" else parse_date(f["in_force"], where)
        until = parse_date(f["until"], where)
        if until is not None and in_force is not None and until <= in_force:
            raise ShippedDataError(f"{where}: until {until} is not after in_force {in_force}")
        for fam in split_values(f["families"]):
            if fam not in vocabulary.families:
                raise ShippedDataError(f"{where}: unknown family {fam!r} (not in {FAMILIES_FILE})")
        for rule in split_values(f["thresholds"]):
            r = vocabulary.thresholds.get(rule)
            if r is None:
                raise ShippedDataError(f"{where}: unknown threshold rule {rule!r} (not in "
                                       f"{THRESHOLDS_FILE})")
            if r.jurisdiction != f["jurisdiction"]:
                raise ShippedDataError(f"{where}: threshold rule {rule} is of {r.jurisdiction}, "
                                       f"the listing of {f['jurisdiction']}")
        exclusions, excluded = [], []
        for item in split_values(f["exclusions"]):
            name, _, smi = item.partition("=")
            mol, problem = mol_from_smiles(smi.strip())
            if not name.strip() or mol is None:
                raise ShippedDataError(f"{where}: exclusion {item!r} must be name=SMILES "
                                       f"({problem})")
            exclusions.append((name.strip(), smi.strip()))
            parent = standardized(mol, standardizer, where)
            if parent is not None:
                excluded.append((name.strip(), parent.smiles))
        listing = Listing(
            substance=f["substance"], jurisdiction=f["jurisdiction"], list=f["list"],
            status=f["status"], act=f["act"], in_force=in_force, until=until, scope=f["scope"],
            families=split_values(f["families"]), exclusions=tuple(exclusions),
            thresholds=split_values(f["thresholds"]),
            verified=_marks(f["verified"], in_force, where),
            sources=_sources(f["sources"], where), notes=f["notes"], line=lineno,
            label=ldef.label, short=ldef.short, bulk=ldef.bulk, excluded_keys=tuple(excluded))
        out.setdefault(listing.substance, []).append(listing)
    return out
