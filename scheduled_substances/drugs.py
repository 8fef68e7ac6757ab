"""The registry of controlled drug targets: ``drugs.tsv`` (one row per drug) with its listings in
``drug_listings.tsv``, and the loader.

The precursor lists stop at the precursors; the drugs they serve are controlled under other acts:
the Single Convention on Narcotic Drugs of 1961 (fentanyl and its analogues, morphine, heroin,
cocaine), the Convention on Psychotropic Substances of 1971 (amphetamines, cathinones, LSD, GHB,
methaqualone), EU acts for new psychoactive substances the conventions have not (yet) reached
(Council Decisions and Implementing Decisions under Decision 2005/387/JHA, Commission Delegated
Directives under Framework Decision 2004/757/JHA as amended by Directive (EU) 2017/2103), and
national schedules (the US Controlled Substances Act, 21 CFR 1308).

The model is the precursor registry's (``scheduled_substances.listings``): a drug is one row of
``drugs.tsv`` (names, CAS, structure); each control is a row of ``drug_listings.tsv``
(jurisdiction, list, act, date in force, until, verified marks, sources); the lists come from
``lists.tsv`` (registry ``drugs``: "1971 II", "1961 I", EU "NPS", US "Schedule I"). Every row is
validated on load (CAS check digit, InChIKey and formula recomputed from the SMILES, dates, lists)
and a wrong row fails naming file and line. A :class:`DrugRegistry` is a view (jurisdictions and
day), like the precursor registry.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from scheduled_substances.errors import ShippedDataError, UnknownSubstanceError
from scheduled_substances.integrity import Integrity, canonical_hash, check_integrity
from scheduled_substances.listings import Listing, Vocabulary, load_vocabulary, parse_listings
from scheduled_substances.registry import DEFAULT_JURISDICTIONS, data_folder
from scheduled_substances.validate import (
    Parent,
    RecordList,
    Standardizer,
    cas_is_valid,
    check_structure,
    norm_name,
    split_values,
    standardized,
)

__all__ = ["DrugTarget", "DrugRegistry", "load_drugs", "DRUGS_FILE", "DRUG_LISTINGS_FILE",
           "COLUMNS", "CONVENTIONS"]

DRUGS_FILE = "drugs.tsv"
DRUG_LISTINGS_FILE = "drug_listings.tsv"
COLUMNS = ("id", "name", "synonyms", "cas", "smiles", "inchikey", "formula", "notes")
CONVENTIONS = ("1961", "1971")


@dataclass(frozen=True)
class DrugTarget:
    """One controlled drug with its listings, seen in its registry's view (jurisdictions, day)."""

    id: str
    name: str
    synonyms: tuple[str, ...] = ()
    cas: tuple[str, ...] = ()
    smiles: str = ""
    inchikey: str = ""
    formula: str = ""
    notes: str = ""
    line: int = 0
    list_name: str = "controlled drugs"
    listings: tuple[Listing, ...] = ()
    jurisdictions: tuple[str, ...] = ()
    as_of: dt.date | None = None
    # derived by the loader's standardizer (see load_drugs), never stored
    parent: Any = field(default=None, compare=False, repr=False)

    def active(self, day: dt.date | None = None) -> list[Listing]:
        """The scheduled listings of the view's jurisdictions on ``day`` (the view's day when
        None; the latest state when that is None too)."""
        day = self.as_of if day is None else day
        return [x for x in self.listings if x.jurisdiction in self.jurisdictions
                and x.status == "scheduled" and x.active_on(day)]

    @property
    def convention(self) -> str:
        """'1961' or '1971' for a drug on a convention's schedule in the view, else ''."""
        return next((x.list.split()[0] for x in self.active() if x.jurisdiction == "un"), "")

    @property
    def controlled_from(self) -> dt.date | None:
        """The first recorded day a listing of the view's jurisdictions applied."""
        dates = [x.in_force for x in self.listings if x.jurisdiction in self.jurisdictions
                 and x.status == "scheduled" and x.in_force is not None]
        return min(dates) if dates else None

    def un_schedule(self, day: dt.date | None = None) -> str:
        """The convention schedule on ``day`` ('I', 'II', or two joined: 'I+IV'); empty when not
        UN-controlled then (or the UN is not in the view)."""
        return "+".join(x.list.split()[1] for x in self.active(day) if x.jurisdiction == "un")

    def controlled_on(self, day: dt.date) -> bool:
        """Whether a listing of the view's jurisdictions controlled the drug on ``day``."""
        return bool(self.active(day))

    def listing(self, day: dt.date | None = None) -> str:
        """The control as a phrase for reasons, e.g. '1971 Convention, Schedule II'.

        >>> reg = load_drugs().filter()
        >>> reg.get("mephedrone").listing()
        '1971 Convention, Schedule II; EU Council Decision 2010/759/EU'
        >>> reg.get("mephedrone").listing(dt.date(2009, 1, 1))
        'not yet controlled'
        """
        on = self.active(day)
        parts = []
        un = [x for x in on if x.jurisdiction == "un"]
        if un:
            schedules = [x.list.split()[1] for x in un]
            word = "Schedules" if len(schedules) > 1 else "Schedule"
            parts.append(f"{un[0].list.split()[0]} Convention, {word} {' and '.join(schedules)}")
        for x in on:
            if x.jurisdiction == "eu":
                parts.append(f"EU {x.act}")
            elif x.jurisdiction != "un":
                parts.append(x.short)
        return "; ".join(dict.fromkeys(parts)) or "not yet controlled"

    def names(self) -> tuple[str, ...]:
        return (self.id, self.name, *self.synonyms, *self.cas)

    def identity_row(self) -> dict[str, str]:
        """The ``drugs.tsv`` fields, as loaded (part of the registry's content hash)."""
        return {"id": self.id, "name": self.name, "synonyms": ";".join(self.synonyms),
                "cas": ";".join(self.cas), "smiles": self.smiles, "inchikey": self.inchikey,
                "formula": self.formula, "notes": self.notes}

    def as_row(self) -> dict[str, str]:
        """The drug in its view as flat strings (what ``list --drugs`` writes)."""
        on = self.active()
        eu = next((x for x in on if x.jurisdiction == "eu"), None)
        return {
            "id": self.id, "name": self.name, "synonyms": ";".join(self.synonyms),
            "cas": ";".join(self.cas), "convention": self.convention,
            "jurisdictions": ";".join(dict.fromkeys(x.jurisdiction for x in on)),
            "listing": self.listing(), "acts": "; ".join(dict.fromkeys(x.act for x in on)),
            "eu_act": eu.act if eu else "",
            "eu_date": eu.in_force.isoformat() if eu and eu.in_force else "",
            "controlled_from": self.controlled_from.isoformat() if self.controlled_from else "",
            "smiles": self.smiles, "inchikey": self.inchikey, "formula": self.formula,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class DrugRegistry(RecordList):
    """An ordered, validated list of controlled drugs in one view; `filter` returns a new one."""

    targets: tuple[DrugTarget, ...]
    source: str = "built-in"
    as_of: dt.date | None = None
    jurisdictions: tuple[str, ...] = ()
    data_sha256: str = ""
    integrity: Integrity | None = None
    vocabulary: Vocabulary | None = field(default=None, compare=False, repr=False)

    _field = "targets"

    def __iter__(self) -> Iterator[DrugTarget]:
        return iter(self.targets)

    @cached_property
    def content_hash(self) -> str:
        """sha256 of the drug list's data, whatever the view."""
        return self.data_sha256

    def filter(self, *, as_of: dt.date | None = None, search: str | None = None,
               jurisdictions: Sequence[str] | None = None) -> DrugRegistry:
        """The drugs controlled in ``jurisdictions`` (default: DEFAULT_JURISDICTIONS) on
        ``as_of`` (None: the latest state) whose names contain ``search``.

        >>> len(load_drugs().filter(as_of=dt.date(2010, 1, 1))) < len(load_drugs().filter())
        True
        """
        juris = tuple(jurisdictions) if jurisdictions is not None else DEFAULT_JURISDICTIONS
        out = []
        for t in self.targets:
            v = replace(t, jurisdictions=juris, as_of=as_of)
            if not v.active():
                continue
            if search is not None and not any(norm_name(search) in norm_name(n) for n in t.names()):
                continue
            out.append(v)
        return replace(self, targets=tuple(out), as_of=as_of, jurisdictions=juris)

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


def load_drugs(path: str | os.PathLike[str] | None = None, *,
               standardizer: Standardizer | None = None) -> DrugRegistry:
    """Load and validate the built-in drug registry, or the one in a folder holding the same files
    (``path`` a folder, or its ``drugs.tsv``).

    A wrong row raises ShippedDataError naming the file and line. With a ``standardizer`` every
    drug carries its parent structure (``DrugTarget.parent``), which identification uses; two
    rows with one structure (stereo ignored) are an error either way. The registry comes in the
    view of every jurisdiction, in the latest state; ``filter`` makes other views.

    >>> reg = load_drugs()
    >>> reg.get("ghb").un_schedule(), reg.get("ghb").un_schedule(dt.date(2005, 1, 1))
    ('II', 'IV')
    """
    given = Path(path) if path is not None else data_folder()
    folder = given if given.is_dir() else given.parent
    file = folder / DRUGS_FILE if given.is_dir() else given
    vocabulary = load_vocabulary(folder)
    try:
        text = file.read_text(encoding="utf-8")
        listings_text = (folder / DRUG_LISTINGS_FILE).read_text(encoding="utf-8")
    except OSError as exc:
        raise ShippedDataError(f"{Path(exc.filename or file).name}: cannot read drug registry: "
                               f"{exc.strerror}") from None
    return _parse_drugs(text, file.name, listings_text, vocabulary, folder, standardizer)


def _parse_drugs(text: str, fname: str, listings_text: str, vocabulary: Vocabulary, folder: Path,
                 standardizer: Standardizer | None) -> DrugRegistry:
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
    listings = parse_listings(listings_text, DRUG_LISTINGS_FILE, "drugs", vocabulary, ids,
                              standardizer)
    out = []
    for t in targets:
        mine = tuple(listings.get(t.id, ()))
        if not mine:
            raise ShippedDataError(f"{fname}:{t.line}: {t.id} has no control in "
                                   f"{DRUG_LISTINGS_FILE}")
        out.append(replace(t, listings=mine, jurisdictions=vocabulary.jurisdictions))
    sha = canonical_hash({"drugs": [t.identity_row() for t in out],
                          "listings": [x.as_row() for t in out for x in t.listings],
                          **vocabulary.rows()})
    return DrugRegistry(tuple(out), "built-in", None, vocabulary.jurisdictions, sha,
                        check_integrity("drugs", sha, folder), vocabulary)


def _target(f: dict[str, str], where: str, lineno: int,
            standardizer: Standardizer | None) -> DrugTarget:
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", f["id"]):
        raise ShippedDataError(f"{where}: id {f['id']!r} must be a lowercase slug")
    if not f["name"]:
        raise ShippedDataError(f"{where}: no name")
    for cas in split_values(f["cas"]):
        if not cas_is_valid(cas):
            raise ShippedDataError(f"{where}: CAS {cas!r} has a wrong format or check digit")
    if not f["smiles"]:
        raise ShippedDataError(f"{where}: no SMILES")
    mol = check_structure(f["smiles"], f["inchikey"], f["formula"], where)
    parent = standardized(mol, standardizer, where)
    return DrugTarget(
        id=f["id"], name=f["name"], synonyms=split_values(f["synonyms"]), cas=split_values(f["cas"]),
        smiles=f["smiles"], inchikey=f["inchikey"], formula=f["formula"], notes=f["notes"],
        line=lineno, parent=parent)
