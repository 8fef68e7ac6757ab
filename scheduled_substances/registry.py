"""Load, validate and query the scheduled-substance registry (``substances.tsv``)."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from rdkit import Chem

from scheduled_substances.errors import ShippedDataError, UnknownSubstanceError
from scheduled_substances.validate import (
    Parent,
    RecordList,
    Standardizer,
    cas_is_valid,
    check_structure,
    has_carbon,
    mol_from_smiles,
    norm_name,
    parse_date,
    split_values,
    standardized,
)

__all__ = ["Substance", "Registry", "load_registry", "REGISTRY_FILE", "COLUMNS", "STATUSES",
           "EU_CATEGORIES", "BULK_CATEGORIES", "Identity"]

REGISTRY_FILE = "substances.tsv"
COLUMNS = ("id", "name", "status", "synonyms", "cas", "cn_code", "eu_category", "eu_act", "eu_date",
           "un_table", "un_history", "un_decision", "scope", "exclusions", "smiles", "inchikey",
           "formula", "same_structure", "notes")
STATUSES = ("scheduled", "proposed", "watch")
EU_CATEGORIES = ("1", "2A", "2B", "3", "4")
BULK_CATEGORIES = frozenset({"2A", "2B", "3"})
"""EU categories of bulk solvents, acids and reagents traded by the tonne (acetone, toluene,
acetic anhydride, phenylacetic acid, piperidine): ordinary chemistry reaches them from thousands
of legitimate goods, so a route to one weighs less than a route to a Category 1 substance."""


@dataclass(frozen=True)
class Substance:
    """One listed (or proposed, or watched) substance with all its listings."""

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
    un_history: tuple[tuple[int, str], ...] = ()
    un_decision: str = ""
    scope: str = ""
    exclusions: tuple[tuple[str, str], ...] = ()
    smiles: str = ""
    inchikey: str = ""
    formula: str = ""
    same_structure: str = ""
    notes: str = ""
    list_name: str = "built-in"
    line: int = 0
    inorganic: bool = field(default=False, compare=False, repr=False)
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
        """True for a bulk chemical (EU Category 2A, 2B or 3)."""
        return self.eu_category in BULK_CATEGORIES

    @property
    def is_inorganic(self) -> bool:
        """True for a substance without carbon (matched whole, as the salt it is)."""
        return self.inorganic

    def un_effective(self) -> dt.date | None:
        """The first day the UN listing counts: 31 December of the CND decision year."""
        return dt.date(self.un_history[0][0], 12, 31) if self.un_history else None

    def first_listed(self) -> dt.date | None:
        dates = [d for d in (self.eu_date, self.un_effective()) if d is not None]
        return min(dates) if dates else None

    def listed_on(self, day: dt.date) -> bool:
        """Whether the substance was on the EU or UN list (or proposed/watched) on ``day``."""
        return (self.eu_date is not None and self.eu_date <= day) or (
            bool(self.un_history) and self.un_effective() <= day)  # type: ignore[operator]

    def un_table_on(self, day: dt.date | None) -> str:
        table = ""
        for year, tab in self.un_history:
            if day is None or dt.date(year, 12, 31) <= day:
                table = tab
        return table if self.un_history else self.un_table

    def listing(self, day: dt.date | None = None) -> str:
        """One phrase naming the list, category and act, e.g. for a reason sentence."""
        if self.list_name != "built-in":
            return f"on reference list {self.list_name}"
        parts = []
        if self.status != "scheduled":
            what = "proposed for control" if self.status == "proposed" else "on a watch list"
            return f"{what}: {self.eu_act}" + (f", {self.eu_date}" if self.eu_date else "")
        if self.eu_category and (day is None or (self.eu_date and self.eu_date <= day)):
            parts.append(f"EU category {self.eu_category}, {self.eu_act}"
                         + (f", from {self.eu_date.isoformat()}" if self.eu_date else ""))
        table = self.un_table_on(day)
        if table and (day is None or (self.un_effective() and self.un_effective() <= day)):  # type: ignore[operator]
            since = next((y for y, t in reversed(self.un_history) if t == table), None)
            parts.append(f"UN 1988 Convention Table {table} ({since})" if since
                         else f"UN 1988 Convention Table {table}")
        return "; ".join(parts) or "listed"

    def short_listing(self) -> str:
        """E.g. 'EU category 1' or 'EU category 2B, UN Table II' for compact reasons."""
        if self.list_name != "built-in":
            return f"reference list {self.list_name}"
        if self.status != "scheduled":
            return self.status
        bits = [f"EU category {self.eu_category}"] if self.eu_category else []
        if self.un_table:
            bits.append(f"UN Table {self.un_table}")
        return ", ".join(bits)

    def names(self) -> tuple[str, ...]:
        return (self.id, self.name, *self.synonyms, *self.cas)

    def as_row(self) -> dict[str, str]:
        """The record as flat strings, in COLUMNS order plus its list name."""
        return {
            "id": self.id, "name": self.name, "status": self.status,
            "synonyms": ";".join(self.synonyms), "cas": ";".join(self.cas),
            "cn_code": ";".join(self.cn_codes), "eu_category": self.eu_category,
            "eu_act": self.eu_act, "eu_date": self.eu_date.isoformat() if self.eu_date else "",
            "un_table": self.un_table,
            "un_history": ";".join(f"{y}:{t}" for y, t in self.un_history),
            "un_decision": self.un_decision, "scope": self.scope,
            "exclusions": ";".join(f"{n}={s}" for n, s in self.exclusions),
            "smiles": self.smiles, "inchikey": self.inchikey, "formula": self.formula,
            "same_structure": self.same_structure, "notes": self.notes,
            "list": self.list_name,
        }


@dataclass(frozen=True, slots=True)
class Identity:
    """A candidate *is* this substance: identical, a salt, a stereoisomer, or an excluded one."""

    substance: Substance
    relation: str
    note: str


@dataclass(frozen=True)
class Registry(RecordList):
    """An ordered, validated list of substances; filters return new registries."""

    substances: tuple[Substance, ...]
    source: str = "built-in"
    as_of: dt.date | None = None

    _field = "substances"

    def __iter__(self) -> Iterator[Substance]:
        return iter(self.substances)

    def filter(self, *, as_of: dt.date | None = None, include: Iterable[str] = ("scheduled",),
               category: str | None = None, un_table: str | None = None,
               search: str | None = None, added_since: dt.date | None = None) -> "Registry":
        """Return the sub-list matching every given criterion."""
        wanted = set(include)
        out = []
        for s in self.substances:
            if s.status not in wanted:
                continue
            if as_of is not None and not s.listed_on(as_of):
                continue
            if category is not None and s.eu_category.upper() != category.upper():
                continue
            if un_table is not None and s.un_table_on(as_of).upper() != un_table.upper():
                continue
            if added_since is not None and not ((s.first_listed() or dt.date.min) >= added_since):
                continue
            if search is not None and not _matches_text(s, search):
                continue
            out.append(s)
        return Registry(tuple(out), self.source, as_of if as_of is not None else self.as_of)

    def merged(self, other: "Registry") -> "Registry":
        """This list with ``other``'s records appended (each keeps the name of its list)."""
        return Registry(self.substances + other.substances, f"{self.source}+{other.source}",
                        self.as_of)

    def find(self, query: str) -> Substance:
        """Return the substance named by id, name, synonym or CAS (case-insensitive)."""
        q = norm_name(query)
        for s in self.substances:
            if any(norm_name(n) == q for n in s.names()):
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

    def identify(self, std: Parent) -> list[Identity]:
        """Return the listed substances this standardized structure *is*, best first.

        Salts and stereoisomers count as the substance (the annex covers them), except a
        stereoisomer the annex excludes (cathine from norephedrine), which comes back with
        relation "excluded". Inorganic structures match only themselves, whole. ``std`` comes
        from the standardizer the registry was loaded with; without one nothing is identified.
        """
        found: list[Identity] = []
        for s in self._by_key.get(std.key, ()):
            assert s.parent is not None
            excluded = next((name for name, smi in s.excluded_keys if smi == std.smiles), None)
            if excluded is not None:
                found.append(Identity(s, "excluded", f"{excluded} is excluded from {s.name}'s "
                                                     "stereoisomers by the annex"))
            elif s.parent.smiles == std.smiles:
                salt = any(st.startswith(("removed counter-ion", "neutralized")) for st in std.steps)
                found.append(Identity(s, "salt" if salt else "identical",
                                      "a salt of " + s.name if salt else s.name))
            elif s.parent.smiles == _mirror_image(std.mol):
                found.append(Identity(s, "stereoisomer", f"the enantiomer of {s.name}"))
            else:
                found.append(Identity(s, "stereoisomer", f"a stereoisomer of {s.name}"))
        order = {"identical": 0, "salt": 1, "stereoisomer": 2, "excluded": 3}
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


def _registry_path() -> Path:
    return Path(str(resources.files("scheduled_substances") / REGISTRY_FILE))


def load_registry(path: str | os.PathLike[str] | None = None, *,
                  standardizer: Standardizer | None = None) -> Registry:
    """Load and validate the built-in registry (or another file in its format).

    A wrong row raises ShippedDataError naming the file and line. With a ``standardizer`` every
    substance carries its parent structure (``Substance.parent``), which identification and
    every comparison use, and two rows with one parent must say why (``same_structure``);
    without one, rows are compared by their InChIKeys' connectivity layer.

    >>> reg = load_registry()
    >>> reg.find("BMK").id, reg.find("103-79-7").name
    ('bmk', '1-Phenyl-2-propanone')
    """
    file = Path(path) if path is not None else _registry_path()
    with open(file, encoding="utf-8", newline="") as fh:
        text = fh.read()
    return _parse_registry(text, file.name, standardizer)


def _parse_registry(text: str, fname: str, standardizer: Standardizer | None) -> Registry:
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
    return Registry(tuple(substances), "built-in")


def _substance(f: dict[str, str], where: str, lineno: int,
               standardizer: Standardizer | None) -> Substance:
    f = {k: v.strip() for k, v in f.items()}
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", f["id"]):
        raise ShippedDataError(f"{where}: id {f['id']!r} must be a lowercase slug")
    if f["status"] not in STATUSES:
        raise ShippedDataError(f"{where}: status {f['status']!r} not one of {', '.join(STATUSES)}")
    if f["eu_category"] and f["eu_category"] not in EU_CATEGORIES:
        raise ShippedDataError(f"{where}: EU category {f['eu_category']!r} unknown")
    for cas in split_values(f["cas"]):
        if not cas_is_valid(cas):
            raise ShippedDataError(f"{where}: CAS {cas!r} has a wrong format or check digit")
    history: list[tuple[int, str]] = []
    for item in split_values(f["un_history"]):
        m = re.fullmatch(r"(\d{4}):(I|II)", item)
        if not m:
            raise ShippedDataError(f"{where}: un_history item {item!r} is not YEAR:I or YEAR:II")
        history.append((int(m.group(1)), m.group(2)))
    if f["un_table"] and (not history or history[-1][1] != f["un_table"]):
        raise ShippedDataError(f"{where}: un_table {f['un_table']} disagrees with un_history")
    eu_date = parse_date(f["eu_date"], where)
    if not (f["eu_act"] or f["un_decision"]):
        raise ShippedDataError(f"{where}: no legal act (eu_act or un_decision)")
    if eu_date is None and not history:
        raise ShippedDataError(f"{where}: no date (eu_date or un_history)")
    if f["status"] == "scheduled" and not (f["eu_category"] or f["un_table"]):
        raise ShippedDataError(f"{where}: scheduled but neither EU category nor UN table")
    parent = None
    inorganic = False
    excluded: list[tuple[str, str]] = []
    if f["smiles"]:
        mol = check_structure(f["smiles"], f["inchikey"], f["formula"], where)
        inorganic = not has_carbon(mol)
        parent = standardized(mol, standardizer, where)
    elif f["inchikey"]:
        raise ShippedDataError(f"{where}: InChIKey without SMILES")
    elif f["eu_category"] != "4":
        raise ShippedDataError(f"{where}: no SMILES (only Category 4 products may lack one)")
    exclusions: list[tuple[str, str]] = []
    for item in split_values(f["exclusions"]):
        name, _, smi = item.partition("=")
        mol, problem = mol_from_smiles(smi.strip())
        if not name or mol is None:
            raise ShippedDataError(f"{where}: exclusion {item!r} must be name=SMILES ({problem})")
        exclusions.append((name.strip(), smi.strip()))
        ex_parent = standardized(mol, standardizer, where)
        if ex_parent is not None:
            excluded.append((name.strip(), ex_parent.smiles))
    return Substance(
        id=f["id"], name=f["name"], status=f["status"], synonyms=split_values(f["synonyms"]),
        cas=split_values(f["cas"]), cn_codes=split_values(f["cn_code"]), eu_category=f["eu_category"],
        eu_act=f["eu_act"], eu_date=eu_date, un_table=f["un_table"], un_history=tuple(history),
        un_decision=f["un_decision"], scope=f["scope"], exclusions=tuple(exclusions),
        smiles=f["smiles"], inchikey=f["inchikey"], formula=f["formula"],
        same_structure=f["same_structure"], notes=f["notes"], line=lineno, inorganic=inorganic,
        parent=parent, excluded_keys=tuple(excluded))


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
