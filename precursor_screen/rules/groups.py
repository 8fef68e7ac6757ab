"""Generic (group) definitions of designer-precursor families, and the matcher.

A group is data: a title, the scheduled substances it relates to, SMARTS that define membership,
SMARTS that exclude, a size limit, a status ("draft" or "adopted") and the molecules it must and
must not match. The shipped groups live in ``rules/data/groups*.toml``; policy staff write their
own draft files in the same format and load them with :func:`load_group_file`.

Membership of a standardized parent (see :func:`precursor_screen.chem.standardize.standardize`):
it matches ANY of the group's SMARTS, NONE of its exclusions, and has no more heavy atoms than
``max_heavy_atoms``. The size limit is what keeps a drug that merely carries a motif deep inside
its skeleton out of a precursor family.

Compiled queries belong to a :class:`GroupSet`, never to module state; a GroupSet pickles as its
groups and recompiles on arrival, so it crosses process boundaries unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdkit import Chem

from precursor_screen.chem.fingerprint import get_recipe
from precursor_screen.chem.parse import quiet_rdkit
from precursor_screen.chem.standardize import (
    Standardized,
    StandardizeError,
    standardize_smiles,
)
from precursor_screen.errors import ReferenceFileError, ShippedDataError
from precursor_screen.io.readers import read_toml
from precursor_screen.rules.files import DATA_DIR
from precursor_screen.rules.gates import QueryNeeds, without_recursion

__all__ = ["Group", "Example", "GroupSet", "load_groups", "load_group_file", "shipped_group_files",
           "group_file_text", "GROUP_FILE", "STATUSES"]

GROUP_FILE = "groups.toml"
"""The main shipped group file; every ``groups*.toml`` in ``rules/data/`` is shipped groups."""

STATUSES = ("draft", "adopted")
"""``adopted``: a legal act itself defines the group; ``draft``: a proposal for drafting."""

_REQUIRED = ("title", "parents", "smarts", "status", "rationale", "must_match", "must_not_match")
_OPTIONAL = ("exclusions", "max_heavy_atoms", "jurisdiction", "in_force")
_JURISDICTION = re.compile(r"^[a-z]{2,12}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True, slots=True)
class Example:
    """A test molecule of a group: SMILES and a human name (the file writes ``"SMILES name"``)."""

    smiles: str
    name: str

    @classmethod
    def parse(cls, entry: str) -> Example:
        """Split ``"SMILES name ..."`` at the first whitespace; the name defaults to the SMILES.

        >>> Example.parse("CC(=O)C(C#N)c1ccccc1 APAAN (alpha-phenylacetoacetonitrile)")
        Example(smiles='CC(=O)C(C#N)c1ccccc1', name='APAAN (alpha-phenylacetoacetonitrile)')
        """
        smiles, _, name = entry.strip().partition(" ")
        return cls(smiles, name.strip() or smiles)


@dataclass(frozen=True, slots=True)
class Group:
    """One designer-precursor family, as written in its group file.

    ``source`` is the file the group came from (a name for shipped files, the path for a user's),
    so a report can say whose definition matched.
    """

    id: str
    title: str
    parents: tuple[str, ...]
    smarts: tuple[str, ...]
    exclusions: tuple[str, ...] = ()
    max_heavy_atoms: int | None = None
    status: str = "draft"
    rationale: str = ""
    must_match: tuple[Example, ...] = ()
    must_not_match: tuple[Example, ...] = ()
    source: str = ""
    jurisdiction: str = ""           # who defined it: "eu", "un", "uk", "us", ...; "" any
    in_force: dt.date | None = None  # from when (a draft: when it was drafted); None: undated

    @property
    def adopted(self) -> bool:
        """True when a legal act defines this group (not a drafting proposal)."""
        return self.status == "adopted"

    def applies(self, as_of: dt.date | None = None,
                jurisdictions: Iterable[str] | None = None) -> bool:
        """True when the group is known on ``as_of`` (in force, or drafted, by then) and was
        defined in one of ``jurisdictions`` (None: any; an undated or unattributed group
        applies everywhere)."""
        if as_of is not None and self.in_force is not None and self.in_force > as_of:
            return False
        return (jurisdictions is None or not self.jurisdiction
                or self.jurisdiction in set(jurisdictions))


@dataclass(frozen=True, slots=True)
class _Compiled:
    queries: tuple[Chem.Mol, ...]
    exclusions: tuple[Chem.Mol, ...]
    # per query, its form without recursive SMARTS (which it implies; None: it has none), asked
    # first: RDKit works out every recursive SMARTS on every atom before it tries a match
    guards: tuple[Chem.Mol | None, ...] = ()


def _compile(smarts: str) -> Chem.Mol | None:
    with quiet_rdkit():
        return Chem.MolFromSmarts(smarts)


def _compile_group(group: Group) -> _Compiled:
    queries, exclusions = [], []
    for kind, patterns, out in (("smarts", group.smarts, queries),
                                ("exclusion", group.exclusions, exclusions)):
        for i, pattern in enumerate(patterns, start=1):
            query = _compile(pattern)
            if query is None:
                raise ValueError(f"[{group.id}]: {kind} {i} does not parse: {pattern!r}")
            out.append(query)
    return _Compiled(tuple(queries), tuple(exclusions), tuple(_guard(q) for q in queries))


def _guard(query: Chem.Mol) -> Chem.Mol | None:
    """``query`` without its recursive SMARTS (`precursor_screen.rules.gates.without_recursion`):
    a weaker query that every molecule ``query`` matches also matches; None when it has none."""
    smarts = Chem.MolToSmarts(query)
    return _compile(without_recursion(smarts)) if "$(" in smarts else None


def _as_mol(mol: Chem.Mol | Standardized) -> Chem.Mol:
    return mol.mol if isinstance(mol, Standardized) else mol


class GroupSet:
    """Groups in file order with their compiled queries; match standardized parents against them.

    >>> groups = load_groups()
    >>> pentyl = standardize_smiles("CCCCCOC(=O)C1(C)OC1c1ccccc1")  # BMK pentyl glycidate
    >>> [g.id for g in groups.match(pentyl)]
    ['bmk-pmk-glycidic-derivatives', 'aryl-2-methylglycidates']
    >>> groups.match(standardize_smiles("CCOC(=O)C1OC1(C)c1ccccc1"))  # strawberry aldehyde
    []
    """

    __slots__ = ("_groups", "_by_id", "_compiled", "_screens", "_needs", "_first_query")

    def __init__(self, groups: Iterable[Group] = ()) -> None:
        self._groups: tuple[Group, ...] = tuple(groups)
        self._by_id: dict[str, Group] = {}
        for g in self._groups:
            if g.id in self._by_id:
                first = self._by_id[g.id]
                raise ValueError(f"group id {g.id!r} defined twice ({first.source or '?'} and "
                                 f"{g.source or '?'}); rename one")
            self._by_id[g.id] = g
        self._compiled: dict[str, _Compiled] = {g.id: _compile_group(g) for g in self._groups}
        self._screens: dict[str, list[Any]] | None = None  # pattern-fp words per query, lazily
        self._needs: QueryNeeds | None = None   # what every group query demands, lazily
        self._first_query: dict[str, int] = {}  # a group's first query among them

    def __reduce__(self) -> tuple[type[GroupSet], tuple[tuple[Group, ...]]]:
        # RDKit query mols are rebuilt from the SMARTS on the other side.
        return (GroupSet, (self._groups,))

    def __iter__(self) -> Iterator[Group]:
        return iter(self._groups)

    def __len__(self) -> int:
        return len(self._groups)

    def __contains__(self, group_id: object) -> bool:
        return group_id in self._by_id

    def __getitem__(self, group_id: str) -> Group:
        try:
            return self._by_id[group_id]
        except KeyError:
            raise KeyError(f"no group {group_id!r}; known: {', '.join(self._by_id)}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GroupSet) and self._groups == other._groups

    def __hash__(self) -> int:
        return hash(self._groups)

    def __repr__(self) -> str:
        return f"GroupSet({len(self._groups)} groups: {', '.join(self._by_id)})"

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._by_id)

    def applicable(self, as_of: dt.date | None = None,
                   jurisdictions: Iterable[str] | None = None) -> GroupSet:
        """The groups known on ``as_of`` and defined in ``jurisdictions`` (see `Group.applies`):
        a screen as of a date uses only what was known then, and a family a national law defines
        (the UK's generic cathinones) is not applied in a screen for another jurisdiction.

        >>> groups = load_groups()
        >>> len(groups), len(groups.applicable(dt.date(2012, 12, 31), ("eu", "un")))
        (12, 10)
        """
        return GroupSet(g for g in self._groups if g.applies(as_of, jurisdictions))

    def merged(self, *others: GroupSet) -> GroupSet:
        """Return one GroupSet with these groups followed by the others' (e.g. shipped + a draft).

        A group id defined twice is an error naming both files: a user's draft that redefines a
        shipped group must take a new id, so a report never leaves open whose definition matched.
        """
        groups = list(self._groups)
        for other in others:
            groups.extend(other)
        try:
            return GroupSet(groups)
        except ValueError as exc:
            raise ReferenceFileError(str(exc)) from None

    def is_member(self, mol: Chem.Mol | Standardized, group: Group | str) -> bool:
        """Return True when the standardized parent ``mol`` is a member of ``group``."""
        return bool(self.matching_atoms(mol, group))

    def match(self, mol: Chem.Mol | Standardized, screen: Any = None,
              only: Any = None, smiles: str | None = None) -> list[Group]:
        """Return the groups the standardized parent ``mol`` belongs to, in file order.

        ``screen``, optional, is ``mol``'s pattern fingerprint as uint64 words (see
        `precursor_screen.search.SubstructureIndex.pattern_words`): groups whose queries cannot
        match are then skipped without a substructure search. ``only``, optional, is a set of
        group ids to try (the others are skipped). ``smiles``, optional, is
        ``Chem.MolToSmiles(mol)``: the C matcher then answers what each query demands
        (`precursor_screen.rules.gates.QueryNeeds`), and RDKit is asked only the queries that
        may match.

        ``mol`` must be the parent from :func:`precursor_screen.chem.standardize.standardize` (salts
        stripped, charges neutralized); a raw salt or a charged form may not match.
        """
        mol = _as_mol(mol)
        n_heavy = mol.GetNumHeavyAtoms()
        needs = self._query_needs()
        found = needs.found(mol, smiles) if smiles is not None else None
        possible = frozenset(needs.possible(found)) if found is not None else None
        if screen is None or possible is not None:   # the C matcher's answer rules out more
            return [g for g in self._groups if (only is None or g.id in only)
                    and self._first_match(mol, g, n_heavy, possible)]
        screens = self._query_screens()
        return [g for g in self._groups if (only is None or g.id in only)
                and any(((q & screen) == q).all() for q in screens[g.id])
                and self._first_match(mol, g, n_heavy, possible)]

    def _query_needs(self) -> QueryNeeds:
        """Every group's queries, in order, as `QueryNeeds` (made on first use)."""
        if self._needs is None:
            queries: list[Chem.Mol] = []
            for g in self._groups:
                self._first_query[g.id] = len(queries)
                queries.extend(self._compiled[g.id].queries)
            self._needs = QueryNeeds(queries)
        return self._needs

    def _query_screens(self) -> dict[str, list[Any]]:
        """Each group's queries as pattern-fingerprint words (a query's bits must all be in a
        matching molecule's pattern fingerprint: a cheap necessary condition)."""
        if self._screens is None:
            recipe = get_recipe("pattern")
            screens: dict[str, list[Any]] = {}
            for g in self._groups:
                packed, _ = recipe.packed(list(self._compiled[g.id].queries))
                screens[g.id] = [row.view("<u8") for row in packed]
            self._screens = screens
        return self._screens

    def matching_atoms(self, mol: Chem.Mol | Standardized, group: Group | str) -> tuple[int, ...]:
        """Return the atom indices of the first match of ``group`` in ``mol``, for highlighting.

        Empty when ``mol`` is not a member (no SMARTS matches, an exclusion does, or it is too
        large). Indices refer to ``mol`` as given, i.e. to the standardized parent. Atoms that a
        recursive SMARTS ``$(...)`` only describes (the rest of an aryl ring, a nitrile N) are not
        part of the match.

        >>> groups = load_groups()
        >>> apaan = standardize_smiles("CC(=O)C(C#N)c1ccccc1")
        >>> groups.matching_atoms(apaan, "alpha-acetyl-arylacetic-derivatives")
        (0, 1, 2, 3, 6, 4)
        """
        g = self[group] if isinstance(group, str) else group
        if g.id not in self._by_id or self._by_id[g.id] != g:
            raise KeyError(f"group {g.id!r} is not in this GroupSet")
        mol = _as_mol(mol)
        return self._first_match(mol, g, mol.GetNumHeavyAtoms())

    def _first_match(self, mol: Chem.Mol, group: Group, n_heavy: int,
                     possible: frozenset[int] | None = None) -> tuple[int, ...]:
        """The first match of ``group``; ``possible``: the queries whose needs are all in
        ``mol`` (`QueryNeeds.possible`; another is not asked)."""
        if group.max_heavy_atoms is not None and n_heavy > group.max_heavy_atoms:
            return ()
        compiled = self._compiled[group.id]
        first = self._first_query.get(group.id, 0)
        for i, (query, guard) in enumerate(zip(compiled.queries, compiled.guards)):
            if possible is not None and first + i not in possible:
                continue   # something the query demands is not in the molecule
            if guard is not None and not mol.HasSubstructMatch(guard):
                continue   # the query, which implies its guard, cannot match either
            atoms = mol.GetSubstructMatch(query)
            if atoms:
                if any(mol.HasSubstructMatch(x) for x in compiled.exclusions):
                    return ()
                return tuple(atoms)
        return ()

    def check_examples(self) -> list[str]:
        """Return one line per example that fails: a must_match that does not match, a
        must_not_match that does, or an example that cannot be standardized. Empty when all pass.
        """
        problems: list[str] = []
        for g in self._groups:
            where = f"{g.source} [{g.id}]" if g.source else f"[{g.id}]"
            for expected, examples in ((True, g.must_match), (False, g.must_not_match)):
                kind = "must_match" if expected else "must_not_match"
                for ex in examples:
                    try:
                        parent = standardize_smiles(ex.smiles)
                    except StandardizeError as exc:
                        problems.append(f"{where}: {kind} {ex.name!r}: {exc}")
                        continue
                    if self.is_member(parent, g) != expected:
                        verb = "does not match" if expected else "matches"
                        problems.append(f"{where}: {kind} {ex.name!r} ({ex.smiles}) {verb}")
        return problems


# --- loading -------------------------------------------------------------------------------------

def shipped_group_files() -> list[Path]:
    """Return the shipped group files (``rules/data/groups*.toml``), sorted by name."""
    files = [f for f in DATA_DIR.iterdir() if f.name.startswith("groups") and f.name.endswith(".toml")]
    return sorted(files, key=lambda f: f.name)


def load_groups(path: str | Path | None = None) -> GroupSet:
    """Load and validate the shipped groups (or one file in their format).

    A wrong file raises ShippedDataError naming the file and the group: SMARTS that does not
    parse, a missing or unknown field, an unknown status. The examples are checked by the tests,
    not here, so workers rebuild the set quickly.

    >>> groups = load_groups()
    >>> groups["bmk-glycidates-un-2024"].status, "anilinopiperidines" in groups
    ('adopted', True)
    """
    if path is not None:
        file = Path(path)
        return _load_one(_read(file, file.name, ShippedDataError), file.name, ShippedDataError)
    files = shipped_group_files()
    if not files:
        raise ShippedDataError(f"no group files in {DATA_DIR}: the package is incomplete")
    sets = [_load_one(_read(f, f.name, ShippedDataError), f.name, ShippedDataError) for f in files]
    try:
        return sets[0].merged(*sets[1:])
    except ReferenceFileError as exc:
        raise ShippedDataError(str(exc)) from None


def load_group_file(path: str | Path, *, check_examples: bool = True) -> GroupSet:
    """Load a user's draft group file (same format as the shipped one).

    Errors are ReferenceFileError naming the file and group. With ``check_examples`` (the
    default) every must_match and must_not_match is standardized and tested, so a draft whose
    SMARTS does not do what its examples say fails here, with each failing example named.
    """
    file = Path(path)
    groups = _load_one(_read(file, str(file), ReferenceFileError), str(file), ReferenceFileError)
    if check_examples:
        problems = groups.check_examples()
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise ReferenceFileError("; ".join(problems[:5]) + more)
    return groups


def _read(file: Path, fname: str, error: type[Exception]) -> dict[str, Any]:
    return read_toml(file, name=fname, error=error, what="group file")


def _load_one(data: dict[str, Any], fname: str, error: type[Exception]) -> GroupSet:
    if not data:
        raise error(f"{fname}: no groups defined")
    groups = []
    for gid, table in data.items():
        where = f"{fname} [{gid}]"
        if not isinstance(table, dict):
            raise error(f"{where}: expected a table of group fields, found a {type(table).__name__}")
        groups.append(_group(gid, table, where, fname, error))
    try:
        return GroupSet(groups)
    except ValueError as exc:  # SMARTS already checked; a duplicate id cannot come from TOML
        raise error(f"{fname}: {exc}") from None


def _group(gid: str, table: Mapping[str, Any], where: str, source: str,
           error: type[Exception]) -> Group:
    def fail(problem: str) -> Exception:
        return error(f"{where}: {problem}")

    if not _SLUG.match(gid):
        raise fail("group id must be a lowercase slug (letters, digits, hyphens)")
    unknown = sorted(set(table) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise fail(f"unknown field {', '.join(unknown)} (fields: {', '.join(_REQUIRED + _OPTIONAL)})")
    missing = [k for k in _REQUIRED if k not in table]
    if missing:
        raise fail(f"missing field {', '.join(missing)}")

    def text(key: str) -> str:
        value = table[key]
        if not isinstance(value, str) or not value.strip():
            raise fail(f"{key} must be a non-empty string")
        return " ".join(value.split())

    def strings(key: str, *, single_ok: bool = False, empty_ok: bool = False) -> tuple[str, ...]:
        value = table.get(key, [])
        if single_ok and isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise fail(f"{key} must be a list of non-empty strings")
        if not value and not empty_ok:
            raise fail(f"{key} must not be empty")
        return tuple(v.strip() for v in value)

    status = text("status")
    if status not in STATUSES:
        raise fail(f"unknown status {status!r} (use {' or '.join(STATUSES)})")
    parents = strings("parents")
    bad = [p for p in parents if not _SLUG.match(p)]
    if bad:
        raise fail(f"parents must be registry ids (lowercase slugs), not {', '.join(map(repr, bad))}")
    smarts = strings("smarts", single_ok=True)
    exclusions = strings("exclusions", empty_ok=True)
    for kind, patterns in (("smarts", smarts), ("exclusion", exclusions)):
        for i, pattern in enumerate(patterns, start=1):
            if _compile(pattern) is None:
                raise fail(f"{kind} {i} does not parse: {pattern!r}")
    jurisdiction = table.get("jurisdiction", "")
    if not isinstance(jurisdiction, str) or (jurisdiction and not _JURISDICTION.match(jurisdiction)):
        raise fail("jurisdiction must be a short lowercase code such as 'eu', 'un', 'uk', 'us'")
    in_force = table.get("in_force")
    if in_force is not None and (not isinstance(in_force, dt.date)
                                 or isinstance(in_force, dt.datetime)):
        raise fail("in_force must be a date (YYYY-MM-DD, unquoted)")
    max_heavy = table.get("max_heavy_atoms")
    if max_heavy is not None and (isinstance(max_heavy, bool) or not isinstance(max_heavy, int)
                                  or max_heavy < 1):
        raise fail("max_heavy_atoms must be a positive integer")
    return Group(
        id=gid,
        title=text("title"),
        parents=parents,
        smarts=smarts,
        exclusions=exclusions,
        max_heavy_atoms=max_heavy,
        status=status,
        rationale=text("rationale"),
        must_match=tuple(Example.parse(e) for e in strings("must_match")),
        must_not_match=tuple(Example.parse(e) for e in strings("must_not_match")),
        source=source,
        jurisdiction=jurisdiction,
        in_force=in_force,
    )


# --- writing -------------------------------------------------------------------------------------


def _toml_string(text: str) -> str:
    """A TOML string: literal ('...') when it can be, else basic with JSON-style escapes (valid
    TOML escapes), so names from seized goods with quotes or backslashes survive."""
    if "'" not in text and "\n" not in text and all(ch >= " " and ch != "\x7f" for ch in text):
        return f"'{text}'"
    return json.dumps(text, ensure_ascii=False)


def _toml_list(items: Iterable[str]) -> str:
    inner = "".join(f"    {_toml_string(x)},\n" for x in items)
    return f"[\n{inner}]" if inner else "[]"


def group_file_text(groups: Iterable[Group], *, comments: Mapping[str, Sequence[str]] | None = None,
                    header: Sequence[str] = ()) -> str:
    """The groups as a group file (the shipped format, see ``rules/data/groups.toml``), each
    preceded by its ``comments`` lines; :func:`load_group_file` reads it back unchanged.

    >>> g = Group("demo", "Demo", ("bmk",), ("[CH3]C(=O)[CH2]c1ccccc1",), rationale="why",
    ...           must_match=(Example("CC(=O)Cc1ccccc1", "BMK"),),
    ...           must_not_match=(Example("CCO", "ethanol"),))
    >>> text = group_file_text([g])
    >>> import tomllib; tomllib.loads(text)["demo"]["smarts"]
    ['[CH3]C(=O)[CH2]c1ccccc1']
    """
    comments = comments or {}
    out = [f"# {line}" for line in header]
    for g in groups:
        out.append("")
        out.append(f"[{g.id}]")
        out += [f"# {line}" for line in comments.get(g.id, ())]
        out.append(f"title = {_toml_string(g.title)}")
        out.append(f"parents = {json.dumps(list(g.parents))}")
        out.append(f"smarts = {_toml_list(g.smarts)}")
        if g.exclusions:
            out.append(f"exclusions = {_toml_list(g.exclusions)}")
        if g.max_heavy_atoms is not None:
            out.append(f"max_heavy_atoms = {g.max_heavy_atoms}")
        if g.jurisdiction:
            out.append(f"jurisdiction = {_toml_string(g.jurisdiction)}")
        if g.in_force is not None:
            out.append(f"in_force = {g.in_force.isoformat()}")
        out.append(f"status = {_toml_string(g.status)}")
        out.append(f"rationale = {_toml_string(g.rationale)}")
        out.append(f"must_match = {_toml_list(f'{e.smiles} {e.name}' for e in g.must_match)}")
        out.append("must_not_match = "
                   + _toml_list(f"{e.smiles} {e.name}" for e in g.must_not_match))
    return "\n".join(out) + "\n"
