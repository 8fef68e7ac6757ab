"""What a person typed, as a structure: a SMILES, a molfile, an InChI, an InChIKey, a CAS number
or a name, and which of these it was taken for.

``check`` and the lab bench (``serve``) answer one compound given any way a chemist or a customs
officer would give it. The lookup tables are those of the declarations resolver
(:mod:`precursor_screen.declarations.resolve`): the full built-in registry (every substance,
whatever its date or status: what a name means does not depend on when it was listed), the
controlled drugs, user reference lists, then the bundled table of traded chemicals
(``declarations/data/chemicals.tsv``). Systematic names nothing else knows go to OPSIN when
py2opsin and a Java runtime are present (the ``names`` extra).

The order is fixed and said in the answer (:class:`Interpretation`): a molfile, an InChI, an
InChIKey, a CAS number, a name or id on a table, a SMILES, then OPSIN. Names come before SMILES
because some abbreviations parse as SMILES too ("NPP" is N-phenethyl-4-piperidone, and also
``N-P-P``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from rdkit import Chem

from precursor_screen.chem.parse import parse_molblock, parse_smiles, quiet_rdkit
from precursor_screen.declarations.resolve import (
    ChemicalTable,
    Entry,
    Opsin,
    build_table,
    load_bundled_table,
    normalize_cas,
    opsin_name,
)
from precursor_screen.errors import QueryError
from precursor_screen.reference import builtin_drugs, builtin_registry
from precursor_screen.types import Verdict

__all__ = ["Interpretation", "Lookup", "check_query", "MAX_QUERY_LENGTH"]

MAX_QUERY_LENGTH = 100_000
"""Longer queries are refused (a molfile of a large molecule is ~100 bytes an atom)."""

_INCHIKEY = re.compile(r"^[A-Z]{14}-[A-Z]{8}[SN][A-Z]-[A-Z]$")
_CAS_LIKE = re.compile(r"^\s*(?:CAS\s*(?:RN|No\.?|number)?\s*[:.]?\s*)?\d{2,7}-\d{2}-\d\s*$", re.I)
_TABLE_NAMES = {"registry": "the built-in list", "drugs": "the controlled drugs",
                "bundled": "the bundled table of traded chemicals"}


@dataclass(frozen=True, slots=True)
class Interpretation:
    """How a query was read: the structure found (SMILES, '' when none) and where it came from.

    ``kind`` is what the query was taken for: ``smiles``, ``molfile``, ``inchi``, ``inchikey``,
    ``cas``, ``name`` or ``opsin`` (a systematic name parsed by OPSIN). ``table`` names the lookup
    table that knew it (``registry``, ``drugs``, ``bundled`` or a user list's name); ``name`` and
    ``id`` are that table's name and id for it. ``problem`` says why nothing was found.
    """

    query: str
    smiles: str
    kind: str
    table: str = ""
    name: str = ""
    id: str = ""
    problem: str = ""

    @property
    def found(self) -> bool:
        return bool(self.smiles)

    def text(self) -> str:
        """One line for people: "CAS 121-33-5: Vanillin (the bundled table of traded chemicals)".

        >>> Interpretation("CCO", "CCO", "smiles").text()
        'SMILES as given'
        """
        if not self.found:
            return self.problem
        where = _TABLE_NAMES.get(self.table, self.table)
        named = f"{self.name}{f' [{self.id}]' if self.id else ''}"
        if self.kind == "smiles":
            return "SMILES as given"
        if self.kind in ("molfile", "inchi"):
            return f"{'molfile' if self.kind == 'molfile' else 'InChI'} as given"
        if self.kind == "opsin":
            return f"systematic name parsed by OPSIN: {self.smiles}"
        label = {"cas": f"CAS {_shown(self.query)}", "inchikey": f"InChIKey {self.query.strip()}",
                 "name": f"name {_shown(self.query)!r}"}[self.kind]
        return f"{label}: {named} ({where})"

    def as_dict(self) -> dict[str, str]:
        """The interpretation as data (``check --json``'s ``interpretation``)."""
        return {"kind": self.kind, "table": self.table, "name": self.name, "id": self.id,
                "smiles": self.smiles, "text": self.text()}


class Lookup:
    """Reads queries into structures with the declarations resolver's tables (and OPSIN).

    Built once per command or server; ``references`` are user lists (Registries) looked up after
    the built-in ones. ``opsin``: True to use OPSIN when it can run, False never; a missing
    py2opsin or Java is then said in the answer to an unknown name.

    >>> Lookup(opsin=False).interpret("121-33-5").text()
    'CAS 121-33-5: Vanillin (the bundled table of traded chemicals)'
    >>> Lookup(opsin=False).interpret("APAAN").id
    'apaan'
    """

    def __init__(self, references: Iterable[object] = (), *, opsin: bool = True) -> None:
        self.table: ChemicalTable = build_table([builtin_registry(), *references], bundled=False)
        for t in builtin_drugs():
            if t.smiles:
                self.table.add(Entry(t.name, t.smiles, "drugs", t.id), t.cas,
                               (t.id, t.name, *t.synonyms))
        for entry, cas, names in load_bundled_table():
            self.table.add(entry, cas, names)
        self._inchikeys: dict[str, Entry] = {}
        for reg in (builtin_registry(), builtin_drugs(), *references):
            for s in reg:  # type: ignore[attr-defined]
                if s.smiles and s.inchikey:
                    table = ("registry" if s.list_name == "built-in" else
                             "drugs" if s.list_name == "controlled drugs" else s.list_name)
                    self._inchikeys.setdefault(s.inchikey, Entry(s.name, s.smiles, table, s.id))
        self._opsin = Opsin() if opsin else None
        self._opsin_lock = threading.Lock()

    def opsin_problem(self) -> str:
        """Why OPSIN is not used here ('' when it is)."""
        if self._opsin is None:
            return "OPSIN is switched off"
        return self._opsin.problem()

    def interpret(self, query: str) -> Interpretation:
        """The structure ``query`` names, and how it was read (see the module's docstring)."""
        text = query.strip()
        if not text:
            return Interpretation(query, "", "", problem="empty query: give a SMILES, name, CAS "
                                                         "number, InChI or InChIKey")
        if len(query) > MAX_QUERY_LENGTH:
            return Interpretation(query, "", "", problem=f"query too long: {len(query)} characters "
                                                         f"(limit {MAX_QUERY_LENGTH})")
        if "M  END" in query:
            return self._molfile(query)
        if text.startswith("InChI="):
            return self._inchi(query, text)
        if _INCHIKEY.match(text):
            return self._entry(query, "inchikey", self._inchikeys.get(text), (
                f"InChIKey {text} is not that of a listed substance or controlled drug (an "
                "InChIKey cannot be turned back into a structure: give a SMILES or name)"))
        if _CAS_LIKE.match(text):
            cas, problem = normalize_cas(re.sub(r"(?i)^CAS\s*(?:RN|No\.?|number)?\s*[:.]?", "",
                                                text))
            if problem:
                return Interpretation(query, "", "cas", problem=problem)
            return self._entry(query, "cas", self.table.cas(cas), (
                f"CAS {cas} is in no lookup table (the built-in list, the controlled drugs, "
                "the bundled table of traded chemicals): give the structure as SMILES"))
        if "\n" not in text:
            entry, _stripped = self.table.name(text)
            if entry is not None:
                return self._entry(query, "name", entry)
        mol, problem = parse_smiles(text)
        if mol is not None:
            return Interpretation(query, Chem.MolToSmiles(mol), "smiles")
        return self._opsin_name(query, text, problem)

    # -- the kinds ---------------------------------------------------------------------------

    @staticmethod
    def _entry(query: str, kind: str, entry: Entry | None, unknown: str = "") -> Interpretation:
        """What a lookup table's ``entry`` says ``query`` is; when none, why not (``unknown``)."""
        if entry is None:
            return Interpretation(query, "", kind, problem=unknown)
        return Interpretation(query, entry.smiles, kind, entry.table, entry.name, entry.id)

    @staticmethod
    def _molfile(query: str) -> Interpretation:
        block = query.split("$$$$", 1)[0]
        mol, problem = parse_molblock(block)
        if mol is None:
            return Interpretation(query, "", "molfile", problem=problem)
        return Interpretation(query, Chem.MolToSmiles(Chem.RemoveHs(mol, sanitize=False)),
                              "molfile")

    @staticmethod
    def _inchi(query: str, text: str) -> Interpretation:
        with quiet_rdkit():
            mol = Chem.MolFromInchi(text)
        if mol is None or not mol.GetNumAtoms():
            return Interpretation(query, "", "inchi", problem=f"unparsable InChI: {_shown(text)}")
        return Interpretation(query, Chem.MolToSmiles(mol), "inchi")

    def _opsin_name(self, query: str, text: str, smiles_problem: str) -> Interpretation:
        name = opsin_name(text)
        why = (f"not a SMILES ({smiles_problem}), CAS number, InChI, or a name on the built-in "
               "list, the controlled drugs or the bundled table of traded chemicals")
        if not name:
            return Interpretation(query, "", "smiles", problem=smiles_problem)
        problem = self.opsin_problem()
        if problem:
            return Interpretation(query, "", "name", problem=f"{_shown(text)!r}: {why}; for "
                                                             f"systematic names, {problem}")
        assert self._opsin is not None
        with self._opsin_lock:  # one OPSIN process, one conversation at a time
            smiles = self._opsin.parse([name])[0]
        if not smiles:
            return Interpretation(query, "", "name", problem=f"{_shown(text)!r}: {why}, and OPSIN "
                                                             "cannot parse it as a systematic name")
        mol, problem = parse_smiles(smiles)
        if mol is None:
            return Interpretation(query, "", "opsin", problem=f"OPSIN's structure for "
                                                              f"{_shown(text)!r}: {problem}")
        return Interpretation(query, Chem.MolToSmiles(mol), "opsin", "opsin", name)

    def close(self) -> None:
        """Stop the OPSIN process, if one was started."""
        if self._opsin is not None:
            self._opsin.close()


def check_query(lookup: Lookup, screener: object, query: str) -> tuple[Interpretation, Verdict]:
    """Read ``query`` with ``lookup`` and answer it in full with ``screener.check``: what ``check``
    and the lab bench print. A query naming no structure, or a structure the screen cannot read,
    raises :class:`~precursor_screen.errors.QueryError` saying why.
    """
    meant = lookup.interpret(query)
    if not meant.found:
        raise QueryError(meant.problem)
    verdict = screener.check(meant.smiles, id=query.strip())  # type: ignore[attr-defined]
    if verdict.status != "ok" or verdict.flag is None:
        raise QueryError(f"{_shown(query)}: {verdict.status}")
    return meant, verdict


def _shown(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."
