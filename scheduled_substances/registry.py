"""Load, validate and query the scheduled-substance registry (``substances.tsv`` with its
listings in ``listings.tsv``; see ``listings`` for the model).

A :class:`Registry` is a *view* of the list: the jurisdictions screened against and the day
(``as_of``; None for the latest state of every list). Each :class:`Substance` in it carries all
its listings and, derived for that view, what the rest of the code reads: ``status``, the EU
category, the UN table, the act and date, the scope, the exclusions that apply. Filtering makes a
new view; the content hash stays the one of the data loaded, whatever the view.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from rdkit import Chem

from scheduled_substances.errors import (
    ShippedDataError,
    UnknownJurisdictionError,
    UnknownSubstanceError,
)
from scheduled_substances.integrity import Integrity, canonical_hash, check_integrity
from scheduled_substances.listings import (
    Family,
    Listing,
    Vocabulary,
    load_vocabulary,
    parse_listings,
)
from scheduled_substances.validate import (
    Parent,
    RecordList,
    Standardizer,
    cas_is_valid,
    check_structure,
    content_hash,
    has_carbon,
    norm_name,
    split_values,
    standardized,
)

__all__ = ["Substance", "Registry", "load_registry", "REGISTRY_FILE", "LISTINGS_FILE", "COLUMNS",
           "STATUSES", "EU_CATEGORIES", "BULK_CATEGORIES", "DEFAULT_JURISDICTIONS", "Identity"]

REGISTRY_FILE = "substances.tsv"
LISTINGS_FILE = "listings.tsv"
COLUMNS = ("id", "name", "synonyms", "cas", "cn_code", "bulk", "smiles", "inchikey", "formula",
           "same_structure", "notes")
STATUSES = ("scheduled", "proposed", "watch")
EU_CATEGORIES = ("1", "2A", "2B", "3", "4")
BULK_CATEGORIES = frozenset({"2A", "2B", "3"})
"""EU categories of bulk solvents, acids and reagents traded by the tonne (acetone, toluene,
acetic anhydride, phenylacetic acid, piperidine): ordinary chemistry reaches them from thousands
of legitimate goods, so a route to one weighs less than a route to a Category 1 substance.
(``lists.tsv`` marks such lists of every jurisdiction; a substance row can say ``bulk`` too.)"""
DEFAULT_JURISDICTIONS = ("eu", "un")
"""The jurisdictions a screen and a filter use unless told otherwise."""
_JURISDICTION_NAMES = {"eu": "the EU", "un": "the UN", "us": "the US"}


@dataclass(frozen=True)
class Substance:
    """One listed (or proposed, or watched) substance with all its listings.

    The fields from ``status`` to ``exclusions`` describe the substance in its registry's view
    (jurisdictions and day); for an entry of a user reference list they are given directly.
    """

    id: str
    name: str
    status: str = "scheduled"
    synonyms: tuple[str, ...] = ()
    cas: tuple[str, ...] = ()
    cn_codes: tuple[str, ...] = ()
    eu_category: str = ""
    eu_act: str = ""
    eu_date: dt.date | None = None
    un_table: str = ""
    scope: str = ""
    exclusions: tuple[tuple[str, str], ...] = ()
    smiles: str = ""
    inchikey: str = ""
    formula: str = ""
    same_structure: str = ""
    notes: str = ""
    list_name: str = "built-in"
    line: int = 0
    bulk: bool = False
    listings: tuple[Listing, ...] = ()
    jurisdictions: tuple[str, ...] = ()   # the view: jurisdictions screened against
    as_of: dt.date | None = None          # the view: the day (None: the latest state)
    inorganic: bool = field(default=False, compare=False, repr=False)
    # A record of a confidential list (a user's --extra-reference): outputs may name it only
    # where it raises a flag, and only by its id.
    confidential: bool = field(default=False, compare=False, repr=False)
    # Names that find the record (``Registry.find``) but are never written anywhere: what a
    # confidential record was called in its file (its name, synonyms and CAS numbers).
    aliases: tuple[str, ...] = field(default=(), compare=False, repr=False)
    # Derived by the loader's standardizer (see load_registry), never stored: the parent
    # structure every comparison uses, and the excluded stereoisomers' parent SMILES.
    parent: Any = field(default=None, compare=False, repr=False)
    excluded_keys: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)

    @property
    def is_structure(self) -> bool:
        """False for entries that are not one structure (Category 4 medicinal products)."""
        return bool(self.smiles)

    @property
    def is_bulk(self) -> bool:
        """True for a bulk chemical: on a bulk list (EU Category 2A, 2B or 3, UN Table II, US
        List II) in any jurisdiction, or marked so in ``substances.tsv``."""
        return self.bulk or self.eu_category in BULK_CATEGORIES

    @property
    def is_inorganic(self) -> bool:
        """True for a substance without carbon (matched whole, as the salt it is)."""
        return self.inorganic

    def active(self, day: dt.date | None = None, *, status: str | None = "scheduled"
               ) -> list[Listing]:
        """The listings of the view's jurisdictions in force on ``day`` (the view's day when
        None), of ``status`` (any when None)."""
        day = self.as_of if day is None else day
        return [x for x in self.listings
                if x.jurisdiction in self.jurisdictions and x.active_on(day)
                and (status is None or x.status == status)]

    def first_listed(self) -> dt.date | None:
        """The first day a scheduled listing of the view's jurisdictions applied (None when none
        has a recorded date)."""
        dates = [x.in_force for x in self.listings if x.status == "scheduled"
                 and x.jurisdiction in self.jurisdictions and x.in_force is not None]
        return min(dates) if dates else None

    def listed_on(self, day: dt.date | None) -> bool:
        """Whether a listing of the view's jurisdictions (any status) applied on ``day``."""
        return bool(self.active(day, status=None))

    def un_table_on(self, day: dt.date | None) -> str:
        """The UN 1988 Convention table on ``day`` ('' when not on one)."""
        if self.list_name != "built-in" or not self.listings:
            return self.un_table
        tables = [x.list for x in self.listings if x.jurisdiction == "un"
                  and x.status == "scheduled" and x.list in ("I", "II") and x.active_on(day)]
        return tables[-1] if tables else ""

    def listing(self, day: dt.date | None = None) -> str:
        """The listings as a phrase for a reason: each jurisdiction of the view that lists the
        substance with list, act and date, then those that do not (when the view has several),
        e.g. 'EU category 1, <act>, from 2026-05-18 (computed); not listed by the UN'."""
        if self.list_name != "built-in":
            return f"on reference list {self.list_name}"
        if not self.listings:  # a hand-built record
            return ", ".join(x for x in (self.eu_act, str(self.eu_date or "")) if x) or "listed"
        on = self.active(day)
        if not on:
            pending = self.active(day, status=None)
            if pending:
                x = pending[0]
                what = "proposed for control" if x.status == "proposed" else "on a watch list"
                return f"{what}: {x.act}" + (f", {x.in_force}" if x.in_force else "")
            return "not listed"
        parts = list(dict.fromkeys(x.phrase() for x in on))
        listed_by = {x.jurisdiction for x in on}
        missing = [_JURISDICTION_NAMES.get(j, j.upper()) for j in self.jurisdictions
                   if j not in listed_by]
        if len(self.jurisdictions) > 1 and missing:
            parts.append(f"not listed by {' or '.join(missing)}")
        return "; ".join(parts)

    def short_listing(self) -> str:
        """E.g. 'EU category 1' or 'EU category 2B, UN Table II, US List I' for compact reasons."""
        if self.list_name != "built-in":
            return f"reference list {self.list_name}"
        if self.status != "scheduled":
            return self.status
        if not self.listings:
            return ", ".join(x for x in (f"EU category {self.eu_category}" if self.eu_category
                                         else "", f"UN Table {self.un_table}" if self.un_table
                                         else "") if x)
        return ", ".join(dict.fromkeys(x.short for x in self.active()))

    def listed_jurisdictions(self) -> tuple[str, ...]:
        """The view's jurisdictions that list the substance (scheduled) on the view's day."""
        return tuple(dict.fromkeys(x.jurisdiction for x in self.active()))

    def names(self) -> tuple[str, ...]:
        return (self.id, self.name, *self.synonyms, *self.cas)

    def identity_row(self) -> dict[str, str]:
        """The ``substances.tsv`` fields, as loaded (part of the registry's content hash)."""
        return {"id": self.id, "name": self.name, "synonyms": ";".join(self.synonyms),
                "cas": ";".join(self.cas), "cn_code": ";".join(self.cn_codes),
                "bulk": "yes" if self.bulk else "", "smiles": self.smiles,
                "inchikey": self.inchikey, "formula": self.formula,
                "same_structure": self.same_structure, "notes": self.notes}

    def as_row(self) -> dict[str, str]:
        """The record in its view as flat strings: what ``list`` writes (and a reference CSV
        reads back: name, smiles, cas, eu_category, un_table, exclusions)."""
        on = self.active()
        us = [x.list for x in on if x.jurisdiction == "us"]
        return {
            "id": self.id, "name": self.name, "status": self.status,
            "jurisdictions": ";".join(self.listed_jurisdictions()),
            "eu_category": self.eu_category, "un_table": self.un_table,
            "us_list": ";".join(dict.fromkeys(us)),
            "first_listed": str(self.first_listed() or ""),
            "listing": self.listing(), "eu_act": self.eu_act,
            "eu_date": self.eu_date.isoformat() if self.eu_date else "",
            "verified": "; ".join(f"{x.short}: " + ", ".join(f"{f} {m}" for f, m in x.verified)
                                  for x in on),
            "synonyms": ";".join(self.synonyms), "cas": ";".join(self.cas),
            "cn_code": ";".join(self.cn_codes), "scope": self.scope,
            "exclusions": ";".join(f"{n}={s}" for n, s in self.exclusions),
            "smiles": self.smiles, "inchikey": self.inchikey, "formula": self.formula,
            "same_structure": self.same_structure, "notes": self.notes, "list": self.list_name,
        }


def _viewed(s: Substance, jurisdictions: tuple[str, ...], day: dt.date | None) -> Substance:
    """``s`` as seen in a view: the fields the rest of the code reads, from the listings of
    ``jurisdictions`` in force on ``day``."""
    if not s.listings:
        return s
    v = replace(s, jurisdictions=jurisdictions, as_of=day)
    on = v.active(None, status=None)
    scheduled = [x for x in on if x.status == "scheduled"]
    status = ("scheduled" if scheduled else "proposed" if any(x.status == "proposed" for x in on)
              else "watch" if on else "")
    shown = scheduled or on
    eu = next((x for x in shown if x.jurisdiction == "eu"), None)
    un = next((x for x in reversed(scheduled) if x.jurisdiction == "un"
               and x.list in ("I", "II")), None)
    scope = "; ".join(f"{x.short}: {x.scope}" for x in shown if x.scope)
    # an exclusion applies when every listing in view leaves it out (the EU and UN leave
    # cathine out of norephedrine; the US lists norpseudoephedrine, cathine included)
    excl = [set(x.exclusions) for x in shown]
    keys = [set(x.excluded_keys) for x in shown]
    exclusions = tuple(sorted(set.intersection(*excl))) if excl else ()
    excluded = tuple(sorted(set.intersection(*keys))) if keys else ()
    return replace(
        v, status=status, eu_category=eu.list if eu and eu.status == "scheduled" else "",
        eu_act=eu.act if eu else (shown[0].act if shown and status != "scheduled" else ""),
        eu_date=eu.in_force if eu else (shown[0].in_force if shown and status != "scheduled"
                                         else None),
        un_table=un.list if un else "", scope=scope, exclusions=exclusions,
        excluded_keys=excluded)


@dataclass(frozen=True, slots=True)
class Identity:
    """A candidate *is* this substance: identical, a salt, a stereoisomer, a member of a family
    clause of one of its listings ("its esters"), or an excluded stereoisomer."""

    substance: Substance
    relation: str
    note: str


@dataclass(frozen=True)
class Registry(RecordList):
    """An ordered, validated list of substances in one view; filters return new registries.

    ``content_hash`` names the data loaded (the built-in list's files, or a user list's records),
    the same in every view; ``overlays`` are lists added on top (``--extra-reference``), each with
    its own hash; ``integrity`` compares the built-in list with the one shipped.
    """

    substances: tuple[Substance, ...]
    source: str = "built-in"
    as_of: dt.date | None = None
    jurisdictions: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    data_sha256: str = ""
    overlays: tuple[tuple[str, str, int], ...] = ()
    integrity: Integrity | None = None
    vocabulary: Vocabulary | None = field(default=None, compare=False, repr=False)

    _field = "substances"

    def __iter__(self) -> Iterator[Substance]:
        return iter(self.substances)

    @cached_property
    def content_hash(self) -> str:
        """sha256 of the list's data (see ``integrity.canonical_hash``), whatever the view."""
        return self.data_sha256 or content_hash(self.substances)

    def version(self) -> dict[str, Any]:
        """What identifies the list screened against: its hash and view, each overlay's hash."""
        return {"sha256": self.content_hash, "source": self.source,
                "as_of": self.as_of.isoformat() if self.as_of else "",
                "jurisdictions": list(self.jurisdictions), "include": list(self.include),
                "size": len(self),
                "overlays": [{"name": n, "sha256": h, "size": k} for n, h, k in self.overlays]}

    def filter(self, *, as_of: dt.date | None = None, include: Iterable[str] = ("scheduled",),
               category: str | None = None, un_table: str | None = None,
               search: str | None = None, added_since: dt.date | None = None,
               jurisdictions: Sequence[str] | None = None) -> "Registry":
        """The sub-list in the view of ``jurisdictions`` (default: DEFAULT_JURISDICTIONS) on
        ``as_of`` (None: the latest state), with a status in ``include``, matching every other
        criterion. ``added_since`` keeps substances first listed in one of those jurisdictions
        on or after the date (a listing whose date is not recorded counts as older).
        Entries of user reference lists have no listings: only ``include``, ``category``,
        ``search`` apply to them."""
        juris = tuple(jurisdictions) if jurisdictions is not None else DEFAULT_JURISDICTIONS
        self.check_jurisdictions(juris)
        wanted = set(include)
        out = []
        for s in self.substances:
            v = _viewed(s, juris, as_of)
            if v.status not in wanted:
                continue
            if category is not None and v.eu_category.upper() != category.upper():
                continue
            if un_table is not None and v.un_table_on(as_of).upper() != un_table.upper():
                continue
            if added_since is not None and v.listings:
                dated = [x.in_force for x in v.listings if x.status == "scheduled"
                         and x.jurisdiction in juris]
                if not dated or any(d is None or d < added_since for d in dated):
                    continue
            if search is not None and not _matches_text(v, search):
                continue
            out.append(v)
        return replace(self, substances=tuple(out), as_of=as_of, jurisdictions=juris,
                       include=tuple(include))

    def check_jurisdictions(self, jurisdictions: Iterable[str]) -> None:
        """UnknownJurisdictionError for a jurisdiction no list file names."""
        if self.vocabulary is None:
            return
        known = self.vocabulary.jurisdictions
        bad = [j for j in jurisdictions if j not in known]
        if bad:
            raise UnknownJurisdictionError(f"unknown jurisdiction {', '.join(bad)}; the lists know "
                                        f"{', '.join(known)}")

    def merged(self, other: "Registry") -> "Registry":
        """This list with ``other``'s records appended (each keeps the name of its list); the
        content hash stays this list's, ``other`` is recorded as an overlay with its own."""
        return replace(self, substances=self.substances + other.substances,
                       source=f"{self.source}+{other.source}", data_sha256=self.content_hash,
                       overlays=self.overlays + ((other.source, other.content_hash, len(other)),))

    def find(self, query: str) -> Substance:
        """Return the substance named by id, name, synonym or CAS (case-insensitive)."""
        q = norm_name(query)
        for s in self.substances:
            if any(norm_name(n) == q for n in (*s.names(), *s.aliases)):
                return s
        raise UnknownSubstanceError(f"no listed substance called {query!r}; try "
                                    "`precursor-screen list --search TEXT`")

    def get(self, ident: str) -> Substance:
        for s in self.substances:
            if s.id == ident:
                return s
        raise KeyError(ident)

    def structures(self) -> tuple[Substance, ...]:
        return tuple(s for s in self.substances if s.is_structure)

    @cached_property
    def _by_key(self) -> dict[str, tuple[Substance, ...]]:
        index: dict[str, list[Substance]] = {}
        for s in self.substances:
            if s.parent is not None:
                index.setdefault(s.parent.key, []).append(s)
        return {k: tuple(v) for k, v in index.items()}

    @cached_property
    def _families(self) -> tuple[tuple[Substance, Listing, Family], ...]:
        """(substance, listing, family) for every family clause of a scheduled listing in view."""
        if self.vocabulary is None:
            return ()
        return tuple((s, x, self.vocabulary.families[f]) for s in self.substances
                     if s.parent is not None for x in s.active() for f in x.families)

    def identify(self, std: Parent) -> list[Identity]:
        """Return the listed substances this standardized structure *is*, best first.

        Salts and stereoisomers count as the substance (the annex covers them), except a
        stereoisomer the listings exclude (cathine from norephedrine in the EU and UN), which
        comes back with relation "excluded"; a member of a listing's family clause ("its esters")
        comes back with relation "family". Inorganic structures match only themselves, whole.
        ``std`` comes from the standardizer the registry was loaded with; without one nothing is
        identified.
        """
        found: list[Identity] = []
        for s in self._by_key.get(std.key, ()):
            assert s.parent is not None
            excluded = next((name for name, smi in s.excluded_keys if smi == std.smiles), None)
            if excluded is not None:
                found.append(Identity(s, "excluded", f"{excluded} is excluded from {s.name}'s "
                                                     "stereoisomers by the annex"))
                continue
            # listings of the view that exclude this stereoisomer while others cover it (the EU
            # and UN leave cathine out of norephedrine, the US lists it): named by the others
            by = [x for x in s.active() if any(smi == std.smiles for _, smi in x.excluded_keys)]
            if by:
                name = next(n for x in by for n, smi in x.excluded_keys if smi == std.smiles)
                covering = replace(s, listings=tuple(x for x in s.listings if x not in by))
                which = " and ".join(dict.fromkeys(x.short for x in by))
                found.append(Identity(covering, "stereoisomer", f"a stereoisomer of {s.name} "
                                      f"({name}, which {which} exclude)"))
            elif s.parent.smiles == std.smiles:
                salt = any(st.startswith(("removed counter-ion", "neutralized")) for st in std.steps)
                found.append(Identity(s, "salt" if salt else "identical",
                                      "a salt of " + s.name if salt else s.name))
            elif s.parent.smiles == _mirror_image(std.mol):
                found.append(Identity(s, "stereoisomer", f"the enantiomer of {s.name}"))
            else:
                found.append(Identity(s, "stereoisomer", f"a stereoisomer of {s.name}"))
        members: dict[str, list[tuple[Substance, Listing, Family]]] = {}
        for s, listing, fam in self._families:
            if s.parent.key != std.key and fam.matches(std.mol):
                members.setdefault(s.id, []).append((s, listing, fam))
        for matched in members.values():
            s = matched[0][0]
            covered = "; ".join(f"{x.phrase()} ('{f.clause}' of {s.name})" for _, x, f in matched)
            others = [_JURISDICTION_NAMES.get(j, j.upper()) for j in s.jurisdictions
                      if j not in {x.jurisdiction for _, x, _ in matched}]
            found.append(Identity(s, "family", f"one of the {matched[0][2].title}, covered by "
                                               f"{covered}" + (f"; not covered by "
                                                               f"{' or '.join(others)}"
                                                               if others else "")))
        order = {"identical": 0, "salt": 1, "stereoisomer": 2, "family": 3, "excluded": 4}
        found.sort(key=lambda i: (order[i.relation], not i.note.startswith("the enantiomer"),
                                  i.substance.line))
        return found


def _mirror_image(mol: Chem.Mol) -> str:
    """Canonical SMILES of the enantiomer (every tetrahedral centre inverted)."""
    mirror = Chem.Mol(mol)
    for atom in mirror.GetAtoms():
        tag = atom.GetChiralTag()
        if tag == Chem.ChiralType.CHI_TETRAHEDRAL_CW:
            atom.SetChiralTag(Chem.ChiralType.CHI_TETRAHEDRAL_CCW)
        elif tag == Chem.ChiralType.CHI_TETRAHEDRAL_CCW:
            atom.SetChiralTag(Chem.ChiralType.CHI_TETRAHEDRAL_CW)
    return Chem.MolToSmiles(mirror)


def _matches_text(s: Substance, text: str) -> bool:
    q = norm_name(text)
    return any(q in norm_name(n) for n in s.names())


def data_folder() -> Path:
    """The folder of the shipped lists (inside the installed package)."""
    return Path(str(resources.files("scheduled_substances")))


def _registry_path() -> Path:
    return data_folder() / REGISTRY_FILE


def load_registry(path: str | os.PathLike[str] | None = None, *,
                  standardizer: Standardizer | None = None) -> Registry:
    """Load and validate the built-in registry, or the one in a folder holding the same files
    (``path`` a folder, or its ``substances.tsv``).

    Every file is read and every row checked before anything is returned; a wrong row raises
    ShippedDataError naming the file and line. With a ``standardizer`` every substance carries
    its parent structure (``Substance.parent``), which identification and every comparison use,
    and two rows with one parent must say why (``same_structure``); without one, rows are
    compared by their InChIKeys' connectivity layer. The registry comes in the view of every
    jurisdiction, in the latest state of each list; ``Registry.filter`` makes other views.

    >>> reg = load_registry()
    >>> reg.find("BMK").id, reg.find("103-79-7").name
    ('bmk', '1-Phenyl-2-propanone')
    """
    given = Path(path) if path is not None else data_folder()
    folder = given if given.is_dir() else given.parent
    file = folder / REGISTRY_FILE if given.is_dir() else given
    vocabulary = load_vocabulary(folder)
    text = _read(file)
    listings_text = _read(folder / LISTINGS_FILE)
    return _parse_registry(text, file.name, listings_text, vocabulary, folder, standardizer)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ShippedDataError(f"{path.name}: cannot read: {exc.strerror}") from None


def _parse_registry(text: str, fname: str, listings_text: str, vocabulary: Vocabulary,
                    folder: Path, standardizer: Standardizer | None) -> Registry:
    lines = text.splitlines()
    header_at = next((i for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("#")), None)
    if header_at is None:
        raise ShippedDataError(f"{fname}: empty registry")
    header = lines[header_at].split("\t")
    if tuple(header) != COLUMNS:
        raise ShippedDataError(f"{fname}:{header_at + 1}: header must be {' '.join(COLUMNS)}")
    substances: list[Substance] = []
    for lineno, line in enumerate(lines[header_at + 1:], start=header_at + 2):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        where = f"{fname}:{lineno}"
        if len(fields) != len(COLUMNS):
            raise ShippedDataError(f"{where}: {len(fields)} fields, expected {len(COLUMNS)}")
        substances.append(_substance(dict(zip(COLUMNS, fields)), where, lineno, standardizer))
    _check_registry(substances, fname)
    listings = parse_listings(listings_text, LISTINGS_FILE, "precursors", vocabulary,
                              (s.id for s in substances), standardizer)
    out = []
    for s in substances:
        mine = tuple(listings.get(s.id, ()))
        where = f"{fname}:{s.line}"
        if not mine:
            raise ShippedDataError(f"{where}: {s.id} has no listing in {LISTINGS_FILE}")
        if not s.smiles and any(x.list != "4" for x in mine):
            raise ShippedDataError(f"{where}: no SMILES (only EU Category 4 products may lack one)")
        out.append(replace(s, listings=mine, bulk=s.bulk or any(x.bulk for x in mine)))
    data = {"substances": [s.identity_row() for s in out],
            "listings": [x.as_row() for s in out for x in s.listings], **vocabulary.rows()}
    sha = canonical_hash(data)
    everything = vocabulary.jurisdictions
    return Registry(tuple(_viewed(s, everything, None) for s in out), "built-in", None,
                    everything, STATUSES, sha, (), check_integrity("registry", sha, folder),
                    vocabulary)


def _substance(f: dict[str, str], where: str, lineno: int,
               standardizer: Standardizer | None) -> Substance:
    f = {k: v.strip() for k, v in f.items()}
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", f["id"]):
        raise ShippedDataError(f"{where}: id {f['id']!r} must be a lowercase slug")
    if not f["name"]:
        raise ShippedDataError(f"{where}: no name")
    if f["bulk"] not in ("", "yes"):
        raise ShippedDataError(f"{where}: bulk must be 'yes' or empty")
    for cas in split_values(f["cas"]):
        if not cas_is_valid(cas):
            raise ShippedDataError(f"{where}: CAS {cas!r} has a wrong format or check digit")
    parent = None
    inorganic = False
    if f["smiles"]:
        mol = check_structure(f["smiles"], f["inchikey"], f["formula"], where)
        inorganic = not has_carbon(mol)
        parent = standardized(mol, standardizer, where)
    elif f["inchikey"]:
        raise ShippedDataError(f"{where}: InChIKey without SMILES")
    return Substance(
        id=f["id"], name=f["name"], synonyms=split_values(f["synonyms"]),
        cas=split_values(f["cas"]), cn_codes=split_values(f["cn_code"]), smiles=f["smiles"],
        inchikey=f["inchikey"], formula=f["formula"], same_structure=f["same_structure"],
        notes=f["notes"], line=lineno, bulk=f["bulk"] == "yes", inorganic=inorganic,
        parent=parent)


def _check_registry(substances: list[Substance], fname: str) -> None:
    seen_ids: dict[str, int] = {}
    by_key: dict[str, Substance] = {}
    for s in substances:
        if s.id in seen_ids:
            raise ShippedDataError(f"{fname}:{s.line}: id {s.id!r} already used on line {seen_ids[s.id]}")
        seen_ids[s.id] = s.line
        if not s.smiles:
            continue
        key = s.parent.key if s.parent is not None else s.inchikey.split("-")[0]
        other = by_key.get(key)
        if other is not None:
            explained = other.id in s.same_structure or s.id in other.same_structure
            if not explained:
                raise ShippedDataError(
                    f"{fname}:{s.line}: {s.id} has the same structure (stereo ignored) as {other.id} "
                    f"(line {other.line}); say why in same_structure")
        else:
            by_key[key] = s
