"""The registry of controlled drug targets: ``drugs.tsv`` and its loader.

The precursor lists stop at the precursors; the drugs they serve are controlled under other acts:
the Single Convention on Narcotic Drugs of 1961 (fentanyl and its analogues, morphine, heroin,
cocaine), the Convention on Psychotropic Substances of 1971 (amphetamines, cathinones, LSD, GHB,
methaqualone) and, for new psychoactive substances the conventions have not (yet) reached, EU acts
(Council Decisions and Implementing Decisions under Decision 2005/387/JHA, Commission Delegated
Directives under Framework Decision 2004/757/JHA as amended by Directive (EU) 2017/2103).

``drugs.tsv`` is the truth, one reviewed line per drug, with the same discipline as the precursor
registry (``substances.tsv``): every row is validated on load (CAS check digit, InChIKey and
formula recomputed from the SMILES, dates, schedules) and a wrong row fails naming file and line.
The validation helpers (``validate``) are the precursor registry's own.

Format: UTF-8, tab-separated, header first, ``#`` lines are comments, ``;`` separates values inside
a field. Columns (`COLUMNS`):

* ``convention``: ``1961`` or ``1971``; empty for a drug controlled by an EU act only.
* ``un_history``: ``DATE:SCHEDULE`` items, oldest first. DATE is ``YYYY-MM-DD`` (the day the
  listing applies, e.g. a convention's entry into force) or ``YYYY`` (the year of the CND decision,
  taken as applying from 31 December of that year, as the precursor registry does). SCHEDULE is
  one of I, II, III, IV, or two joined by ``+`` (heroin: ``I+IV``). The last item is the schedule
  now.
* ``eu_act`` / ``eu_date``: the EU act that controls the drug as such and its date.
* ``controlled_from``: the first day the drug was controlled (UN or EU); it must equal the earliest
  date the other columns give, so a typo in either shows.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from scheduled_substances.errors import ShippedDataError, UnknownSubstanceError
from scheduled_substances.validate import (
    Parent,
    RecordList,
    Standardizer,
    cas_is_valid,
    check_structure,
    norm_name,
    parse_date,
    split_values,
    standardized,
)

__all__ = ["DrugTarget", "DrugRegistry", "load_drugs", "DRUGS_FILE", "COLUMNS", "CONVENTIONS",
           "SCHEDULES"]

DRUGS_FILE = "drugs.tsv"
COLUMNS = ("id", "name", "synonyms", "cas", "convention", "un_history", "un_decision", "eu_act",
           "eu_date", "controlled_from", "smiles", "inchikey", "formula", "notes")
CONVENTIONS = ("1961", "1971")
SCHEDULES = ("I", "II", "III", "IV")
_HISTORY_ITEM = re.compile(r"^(\d{4}(?:-\d{2}-\d{2})?):([IV]+(?:\+[IV]+)?)$")


@dataclass(frozen=True)
class DrugTarget:
    """One controlled drug, with the act(s) controlling it."""

    id: str
    name: str
    synonyms: tuple[str, ...] = ()
    cas: tuple[str, ...] = ()
    convention: str = ""
    un_history: tuple[tuple[dt.date, str], ...] = ()
    un_decision: str = ""
    eu_act: str = ""
    eu_date: dt.date | None = None
    controlled_from: dt.date | None = None
    smiles: str = ""
    inchikey: str = ""
    formula: str = ""
    notes: str = ""
    line: int = 0
    list_name: str = "controlled drugs"
    # derived by the loader's standardizer (see load_drugs), never stored
    parent: Any = field(default=None, compare=False, repr=False)

    def un_schedule(self, day: dt.date | None = None) -> str:
        """The convention schedule on ``day`` (now when None); empty when not UN-controlled."""
        schedule = ""
        for when, sched in self.un_history:
            if day is None or when <= day:
                schedule = sched
        return schedule

    def controlled_on(self, day: dt.date) -> bool:
        """Whether a convention or an EU act controlled the drug on ``day``."""
        return self.controlled_from is not None and self.controlled_from <= day

    def listing(self, day: dt.date | None = None) -> str:
        """The control as a phrase for reasons, e.g. '1971 Convention, Schedule II'.

        >>> reg = load_drugs()
        >>> reg.get("mephedrone").listing()
        '1971 Convention, Schedule II; EU Council Decision 2010/759/EU'
        >>> reg.get("mephedrone").listing(dt.date(2012, 1, 1))
        'EU Council Decision 2010/759/EU'
        """
        parts = []
        schedule = self.un_schedule(day)
        if schedule:
            word = "Schedules" if "+" in schedule else "Schedule"
            parts.append(f"{self.convention} Convention, {word} {schedule.replace('+', ' and ')}")
        if self.eu_act and (day is None or (self.eu_date is not None and self.eu_date <= day)):
            parts.append(f"EU {self.eu_act}")
        return "; ".join(parts) or "not yet controlled"

    def names(self) -> tuple[str, ...]:
        return (self.id, self.name, *self.synonyms, *self.cas)

    def as_row(self) -> dict[str, str]:
        """The record as flat strings, in COLUMNS order."""
        return {
            "id": self.id, "name": self.name, "synonyms": ";".join(self.synonyms),
            "cas": ";".join(self.cas), "convention": self.convention,
            "un_history": ";".join(f"{d.isoformat()}:{s}" for d, s in self.un_history),
            "un_decision": self.un_decision, "eu_act": self.eu_act,
            "eu_date": self.eu_date.isoformat() if self.eu_date else "",
            "controlled_from": self.controlled_from.isoformat() if self.controlled_from else "",
            "smiles": self.smiles, "inchikey": self.inchikey, "formula": self.formula,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class DrugRegistry(RecordList):
    """An ordered, validated list of controlled drugs; `filter` returns a new registry."""

    targets: tuple[DrugTarget, ...]
    source: str = "built-in"
    as_of: dt.date | None = None

    _field = "targets"

    def __iter__(self) -> Iterator[DrugTarget]:
        return iter(self.targets)

    def filter(self, *, as_of: dt.date | None = None, search: str | None = None) -> DrugRegistry:
        """The drugs controlled on ``as_of`` (all when None) whose names contain ``search``.

        >>> len(load_drugs().filter(as_of=dt.date(2010, 1, 1))) < len(load_drugs())
        True
        """
        out = [t for t in self.targets
               if (as_of is None or t.controlled_on(as_of))
               and (search is None or any(norm_name(search) in norm_name(n) for n in t.names()))]
        return DrugRegistry(tuple(out), self.source, as_of if as_of is not None else self.as_of)

    def get(self, ident: str) -> DrugTarget:
        """The drug with this id; KeyError otherwise."""
        for t in self.targets:
            if t.id == ident:
                return t
        raise KeyError(ident)

    def find(self, query: str) -> DrugTarget:
        """The drug named by id, name, synonym or CAS (case-insensitive).

        >>> load_drugs().find("4-MMC").id
        'mephedrone'
        """
        q = norm_name(query)
        for t in self.targets:
            if any(norm_name(n) == q for n in t.names()):
                return t
        raise UnknownSubstanceError(f"no controlled drug called {query!r}; try "
                                    "`precursor-screen list --drugs --search TEXT`")

    @cached_property
    def by_key(self) -> dict[str, tuple[DrugTarget, ...]]:
        """Stereo-free identity key -> the drugs with that structure."""
        index: dict[str, list[DrugTarget]] = {}
        for t in self.targets:
            if t.parent is not None:
                index.setdefault(t.parent.key, []).append(t)
        return {k: tuple(v) for k, v in index.items()}

    def identify(self, std: Parent) -> list[DrugTarget]:
        """The drugs this standardized structure is (salts and stereoisomers included).

        ``std`` comes from the standardizer the list was loaded with (see `load_drugs`).
        """
        return list(self.by_key.get(std.key, ()))


def _drugs_path() -> Path:
    return Path(str(resources.files("scheduled_substances") / DRUGS_FILE))


def load_drugs(path: str | os.PathLike[str] | None = None, *,
               standardizer: Standardizer | None = None) -> DrugRegistry:
    """Load and validate the built-in drug registry (or another file in its format).

    A wrong row raises ShippedDataError naming the file and line. With a ``standardizer`` every
    drug carries its parent structure (``DrugTarget.parent``), which identification uses; two
    rows with one structure (stereo ignored) are an error either way.

    >>> reg = load_drugs()
    >>> reg.get("ghb").un_schedule(), reg.get("ghb").un_schedule(dt.date(2005, 1, 1))
    ('II', 'IV')
    """
    file = Path(path) if path is not None else _drugs_path()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ShippedDataError(f"{file.name}: cannot read drug registry: {exc.strerror}") from None
    return _parse_drugs(text, file.name, standardizer)


def _parse_drugs(text: str, fname: str, standardizer: Standardizer | None) -> DrugRegistry:
    lines = text.splitlines()
    header_at = next((i for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("#")), None)
    if header_at is None:
        raise ShippedDataError(f"{fname}: empty drug registry")
    if tuple(lines[header_at].split("\t")) != COLUMNS:
        raise ShippedDataError(f"{fname}:{header_at + 1}: header must be {' '.join(COLUMNS)}")
    targets: list[DrugTarget] = []
    ids: dict[str, int] = {}
    keys: dict[str, DrugTarget] = {}
    for lineno, line in enumerate(lines[header_at + 1:], start=header_at + 2):
        if not line.strip() or line.startswith("#"):
            continue
        where = f"{fname}:{lineno}"
        fields = line.split("\t")
        if len(fields) != len(COLUMNS):
            raise ShippedDataError(f"{where}: {len(fields)} fields, expected {len(COLUMNS)}")
        t = _target(dict(zip(COLUMNS, (f.strip() for f in fields))), where, lineno, standardizer)
        if t.id in ids:
            raise ShippedDataError(f"{where}: id {t.id!r} already used on line {ids[t.id]}")
        ids[t.id] = lineno
        key = t.parent.key if t.parent is not None else t.inchikey.split("-")[0]
        other = keys.get(key)
        if other is not None:
            raise ShippedDataError(f"{where}: {t.id} has the same structure (stereo ignored) as "
                                   f"{other.id} (line {other.line}); one row per structure")
        keys[key] = t
        targets.append(t)
    return DrugRegistry(tuple(targets), "built-in")


def _target(f: dict[str, str], where: str, lineno: int,
            standardizer: Standardizer | None) -> DrugTarget:
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", f["id"]):
        raise ShippedDataError(f"{where}: id {f['id']!r} must be a lowercase slug")
    if not f["name"]:
        raise ShippedDataError(f"{where}: no name")
    for cas in split_values(f["cas"]):
        if not cas_is_valid(cas):
            raise ShippedDataError(f"{where}: CAS {cas!r} has a wrong format or check digit")
    history: list[tuple[dt.date, str]] = []
    for item in split_values(f["un_history"]):
        m = _HISTORY_ITEM.match(item)
        if not m or any(s not in SCHEDULES for s in m.group(2).split("+")):
            raise ShippedDataError(f"{where}: un_history item {item!r} is not DATE:SCHEDULE "
                                   f"(DATE YYYY or YYYY-MM-DD, SCHEDULE one of {', '.join(SCHEDULES)})")
        when = (parse_date(m.group(1), where) if "-" in m.group(1)
                else dt.date(int(m.group(1)), 12, 31))
        assert when is not None
        if history and when < history[-1][0]:
            raise ShippedDataError(f"{where}: un_history must be oldest first")
        history.append((when, m.group(2)))
    if f["convention"] and f["convention"] not in CONVENTIONS:
        raise ShippedDataError(f"{where}: convention {f['convention']!r} not one of "
                               f"{', '.join(CONVENTIONS)}")
    if bool(f["convention"]) != bool(history):
        raise ShippedDataError(f"{where}: convention and un_history go together")
    if history and not f["un_decision"]:
        raise ShippedDataError(f"{where}: un_history without un_decision")
    eu_date = parse_date(f["eu_date"], where)
    if bool(f["eu_act"]) != (eu_date is not None):
        raise ShippedDataError(f"{where}: eu_act and eu_date go together")
    if not history and eu_date is None:
        raise ShippedDataError(f"{where}: no control (un_history or eu_act)")
    first = min([d for d, _ in history[:1]] + ([eu_date] if eu_date else []))
    controlled_from = parse_date(f["controlled_from"], where)
    if controlled_from != first:
        raise ShippedDataError(f"{where}: controlled_from {f['controlled_from']!r} disagrees with "
                               f"un_history/eu_date (first control {first.isoformat()})")
    if not f["smiles"]:
        raise ShippedDataError(f"{where}: no SMILES")
    mol = check_structure(f["smiles"], f["inchikey"], f["formula"], where)
    parent = standardized(mol, standardizer, where)
    return DrugTarget(
        id=f["id"], name=f["name"], synonyms=split_values(f["synonyms"]), cas=split_values(f["cas"]),
        convention=f["convention"], un_history=tuple(history), un_decision=f["un_decision"],
        eu_act=f["eu_act"], eu_date=eu_date, controlled_from=controlled_from, smiles=f["smiles"],
        inchikey=f["inchikey"], formula=f["formula"], notes=f["notes"], line=lineno,
        parent=parent)
