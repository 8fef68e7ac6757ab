"""Checks every list row goes through: CAS check digits, dates, and the structure against its
recorded InChIKey and formula (RDKit). Shared by the precursor and the drug registries."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from typing import Any, Generic, Protocol, TypeVar

from rdkit import Chem, rdBase
from rdkit.Chem import rdMolDescriptors

from scheduled_substances.errors import ShippedDataError

__all__ = ["Identified", "Parent", "RecordList", "Standardizer", "cas_is_valid", "check_structure",
           "content_hash", "mol_from_smiles", "norm_name", "parse_date", "split_values"]

_CAS = re.compile(r"^(\d{2,7})-(\d{2})-(\d)$")
_CARBON = Chem.MolFromSmarts("[#6]")


class Parent(Protocol):
    """The standardized parent structure a screen compares: what a ``Standardizer`` returns.

    ``key`` is the stereo-free identity key, ``smiles`` the parent with its stereo, ``steps``
    what standardizing did (a step starting "removed counter-ion" or "neutralized" marks a salt).
    """

    mol: Chem.Mol
    smiles: str
    key: str
    steps: tuple[str, ...]


Standardizer = Callable[[Chem.Mol], Parent]
"""Turns a listed structure into its parent; passed in by the screening package, so that the
registry and the candidates are standardized by one and the same function."""


def cas_is_valid(cas: str) -> bool:
    """Return True when ``cas`` is a well-formed CAS RN with a correct check digit.

    >>> cas_is_valid("103-79-7"), cas_is_valid("103-79-8"), cas_is_valid("10379-7")
    (True, False, False)
    """
    m = _CAS.match(cas.strip())
    if not m:
        return False
    digits = (m.group(1) + m.group(2))[::-1]
    return sum((i + 1) * int(d) for i, d in enumerate(digits)) % 10 == int(m.group(3))


def split_values(value: str) -> tuple[str, ...]:
    """The ``;``-separated values of a field, stripped, empty ones left out."""
    return tuple(v.strip() for v in value.split(";") if v.strip())


def norm_name(text: str) -> str:
    """A name folded for lookup: lower case, no spaces, dashes, commas, brackets or quotes."""
    return re.sub(r"[\s\-_,()'\"]+", "", text.lower())


def parse_date(value: str, where: str) -> dt.date | None:
    """A YYYY-MM-DD field (None when empty); ShippedDataError naming ``where`` otherwise."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ShippedDataError(f"{where}: date {value!r} is not YYYY-MM-DD") from None


def mol_from_smiles(smiles: str) -> tuple[Chem.Mol | None, str]:
    """``(mol, "")`` for a SMILES RDKit parses and sanitizes, else ``(None, reason)``."""
    block = rdBase.BlockLogs()
    try:
        mol = Chem.MolFromSmiles(smiles)
        if mol is not None:
            return mol, ""
        raw = Chem.MolFromSmiles(smiles, sanitize=False)
        if raw is None:
            return None, f"unparsable SMILES: {smiles}"
        problems = Chem.DetectChemistryProblems(raw)
        return None, "cannot sanitize: " + (problems[0].Message() if problems
                                             else "RDKit rejected the structure")
    finally:
        del block


def check_structure(smiles: str, inchikey: str, formula: str, where: str) -> Chem.Mol:
    """The molecule of a row whose SMILES parses and matches its recorded InChIKey and formula."""
    mol, problem = mol_from_smiles(smiles)
    if mol is None:
        raise ShippedDataError(f"{where}: SMILES {smiles!r}: {problem}")
    block = rdBase.BlockLogs()
    key = Chem.MolToInchiKey(mol)
    del block
    if key != inchikey:
        raise ShippedDataError(f"{where}: InChIKey {inchikey!r} does not match SMILES "
                               f"(computed {key})")
    computed = rdMolDescriptors.CalcMolFormula(mol)
    if formula and computed != formula:
        raise ShippedDataError(f"{where}: formula {formula} does not match SMILES ({computed})")
    return mol


def has_carbon(mol: Chem.Mol) -> bool:
    """False for an inorganic substance: matched as the substance it is, never salt-stripped."""
    return mol.HasSubstructMatch(_CARBON)


def standardized(mol: Chem.Mol, standardizer: Standardizer | None, where: str) -> Any:
    """The parent of a listed structure (None without a standardizer); errors name the row."""
    if standardizer is None:
        return None
    try:
        return standardizer(mol)
    except ValueError as exc:  # the standardizer's own error type derives from ValueError
        raise ShippedDataError(f"{where}: {exc}") from None


class Identified(Protocol):
    """A record that may carry its parent structure (None without one, or unstandardized)."""

    @property
    def parent(self) -> Parent | None: ...


R = TypeVar("R", bound=Identified)
"""The record type of a :class:`RecordList`."""


class RecordList(Generic[R]):
    """What every list of records shares: iteration in file order, length, the content hash.
    A subclass names its records' attribute in ``_field``; one loaded from files keeps their
    hash in ``data_sha256``."""

    _field = "records"
    data_sha256: str = ""

    def _records(self) -> tuple[R, ...]:
        return getattr(self, self._field)  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[R]:
        return iter(self._records())

    def __len__(self) -> int:
        return len(self._records())

    @cached_property
    def content_hash(self) -> str:
        """sha256 of the data loaded (``data_sha256``, see ``integrity.canonical_hash``), else of
        the records' canonical form (as sorted JSON): the list's version, whatever the view."""
        return self.data_sha256 or content_hash(self._records())

    @cached_property
    def by_key(self) -> dict[str, tuple[R, ...]]:
        """Stereo-free identity key -> the records with that structure, in list order (what
        identification looks up)."""
        index: dict[str, list[R]] = {}
        for r in self._records():
            if r.parent is not None:
                index.setdefault(r.parent.key, []).append(r)
        return {k: tuple(v) for k, v in index.items()}


def content_hash(records: Iterable[Any]) -> str:
    """sha256 of a list's canonical form (each record's ``as_row()``, as sorted compact JSON):
    the version of the list, whatever order its fields were written in."""
    rows = [r.as_row() for r in records]
    blob = json.dumps(rows, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
