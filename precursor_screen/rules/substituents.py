"""Named substituents and their classes, as data: what a group definition may put at a position.

``rules/data/substituents.toml`` holds two tables. A *substituent* is a named group seen on a
scaffold (``*F`` fluoro, ``*C(=O)OC(C)(C)C`` tert-butoxycarbonyl); a *class* is what a legal annex
would call the family it belongs to (a halogen, a C1-C4 alkyl group, a C1-C4 alkoxycarbonyl group),
with three faces kept together: its SMARTS (starting at the scaffold atom, written ``*``), its
wording in a definition, and its members. A draft group writes each class into its SMARTS as the
recursive atom ``$(SMARTS)`` (:meth:`SubstituentClass.token`) and into its text with the class's
wording, so the two can be checked against each other.

Groups not in the table (an unusual ester, a ring) are still handled: :func:`exact_token` writes
any fragment as an exact SMARTS (every atom with its element, aromaticity, charge, heavy degree
and hydrogen count), worded by its SMILES.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rdkit import Chem

from precursor_screen.chem.parse import quiet_rdkit
from precursor_screen.errors import ShippedDataError
from precursor_screen.io.readers import read_toml
from precursor_screen.rules.files import data_file

__all__ = ["Substituent", "SubstituentClass", "SubstituentTable", "load_substituents",
           "fragment_key", "exact_token", "exact_smarts", "chain_token", "rooted_token",
           "atom_kind", "KINDS", "SUBSTITUENT_FILE"]

SUBSTITUENT_FILE = "substituents.toml"

KINDS = ("carboxyl-oxygen", "oxygen", "nitrogen", "ring", "carbon", "other")
"""Kinds of scaffold atom a class may be worded differently on (see :func:`atom_kind`)."""

_CARBONYL_O = Chem.MolFromSmarts("[OX2][CX3]=O")


@dataclass(frozen=True, slots=True)
class SubstituentClass:
    """A class of substituents: SMARTS from the scaffold atom, wording, and members."""

    id: str
    wording: str
    smarts: str
    max_atoms: int
    ring: bool = False
    broader: tuple[str, ...] = ()
    wording_on: tuple[tuple[str, str], ...] = ()
    not_members: tuple[str, ...] = ()
    attachments: int = 1
    broader_on: tuple[tuple[str, tuple[str, ...]], ...] = ()
    neighbours: int = 1       # atoms of the group bonded to the (first) scaffold atom

    def broader_for(self, kind: str) -> tuple[str, ...]:
        """The classes a broad draft adds beside this one on a scaffold atom of ``kind``."""
        return dict(self.broader_on).get(kind, self.broader)

    @property
    def single(self) -> bool:
        """One group bonded by one single bond to one scaffold atom (halogen, alkyl, ...)."""
        return self.attachments == 1 and self.neighbours == 1 and self.smarts.startswith("*-")

    def token(self) -> str:
        """The recursive SMARTS atom a definition carries for this class on a scaffold atom:
        ``$(SMARTS)``, the bond to a single group a chain bond (``-!@``: never a ring bond of the
        scaffold itself)."""
        if self.single:
            return f"$(*-!@{self.smarts[2:]})"
        return f"$({self.smarts})"

    def rooted(self) -> str:
        """The class as a recursive SMARTS rooted at the group's own first atom (for a group
        written as an atom of its own beside the scaffold); '' when not a single group."""
        return f"$({self.smarts[2:]})" if self.single else ""

    def words(self, kind: str = "other") -> str:
        """The wording of this class on a scaffold atom of ``kind`` (see :data:`KINDS`)."""
        return dict(self.wording_on).get(kind, self.wording)


@dataclass(frozen=True, slots=True)
class Substituent:
    """A named group: its name, SMILES with ``*`` attachment points, class and lookup key."""

    id: str
    name: str
    smiles: str
    cls: str
    key: str
    heavy_atoms: int
    attachments: int


@dataclass(frozen=True)
class SubstituentTable:
    """The shipped substituents and classes; look a fragment up by its key."""

    classes: Mapping[str, SubstituentClass]
    substituents: Mapping[str, Substituent]
    by_key: Mapping[str, Substituent] = field(default_factory=dict)

    def __iter__(self) -> Iterator[SubstituentClass]:
        return iter(self.classes.values())

    def named(self, key: str) -> Substituent | None:
        """The named substituent with this :func:`fragment_key`, or None."""
        return self.by_key.get(key)

    def cls(self, class_id: str) -> SubstituentClass:
        return self.classes[class_id]

    def members(self, class_id: str) -> list[Substituent]:
        """The named substituents of a class, in file order."""
        return [s for s in self.substituents.values() if s.cls == class_id]

    def ring_classes(self) -> list[SubstituentClass]:
        return [c for c in self.classes.values() if c.ring]


def atom_kind(mol: Chem.Mol, idx: int) -> str:
    """What kind of scaffold atom ``idx`` is, for wording: an ester's oxygen ("carboxyl-oxygen"),
    another oxygen, a nitrogen, a ring atom, a chain carbon, or other.

    >>> m = Chem.MolFromSmiles("CC(=O)OC")
    >>> [atom_kind(m, i) for i in (0, 3)]
    ['carbon', 'carboxyl-oxygen']
    """
    atom = mol.GetAtomWithIdx(idx)
    if atom.GetSymbol() == "O":
        if any(idx == m[0] for m in mol.GetSubstructMatches(_CARBONYL_O)):
            return "carboxyl-oxygen"
        return "oxygen"
    if atom.GetSymbol() == "N":
        return "nitrogen"
    if atom.IsInRing():
        return "ring"
    if atom.GetSymbol() == "C":
        return "carbon"
    return "other"


def fragment_key(mol: Chem.Mol) -> str:
    """Canonical SMILES of a fragment whose attachment points are dummy atoms (``*``), with
    isotopes, atom maps and stereo dropped: the key a named substituent is looked up by.

    >>> fragment_key(Chem.MolFromSmiles("[1*]C(=O)OC(C)(C)C"))
    '*C(=O)OC(C)(C)C'
    """
    m = Chem.Mol(mol)
    for atom in m.GetAtoms():
        atom.SetAtomMapNum(0)
        atom.SetIsotope(0)
    return Chem.MolToSmiles(m, isomericSmiles=False)


def _atom_smarts(atom: Chem.Atom) -> str:
    if atom.GetAtomicNum() == 0:
        return "*"
    sym = atom.GetSymbol()
    sym = sym.lower() if atom.GetIsAromatic() else sym
    if sym not in ("C", "N", "O", "S", "P", "F", "Cl", "Br", "I", "B", "c", "n", "o", "s", "p"):
        sym = f"#{atom.GetAtomicNum()}" + ("&a" if atom.GetIsAromatic() else "&A")
    charge = atom.GetFormalCharge()
    sign = f"&{'+' if charge > 0 else '-'}{abs(charge)}" if charge else "&+0"
    return f"[{sym}&D{atom.GetDegree()}&H{atom.GetTotalNumHs()}{sign}]"


def bond_smarts(bond: Chem.Bond) -> str:
    """Explicit SMARTS for a bond: ``-``, ``=``, ``#`` or ``:``."""
    if bond.GetIsAromatic():
        return ":"
    return {Chem.BondType.SINGLE: "-", Chem.BondType.DOUBLE: "=",
            Chem.BondType.TRIPLE: "#"}.get(bond.GetBondType(), "~")


def exact_smarts(mol: Chem.Mol) -> str:
    """SMARTS matching exactly ``mol`` as a whole molecule (every atom with its heavy degree and
    hydrogens): how a draft writes "excluding this compound".

    >>> q = Chem.MolFromSmarts(exact_smarts(Chem.MolFromSmiles("CCC(=O)c1ccccc1")))
    >>> [Chem.MolFromSmiles(s).HasSubstructMatch(q)
    ...  for s in ("CCC(=O)c1ccccc1", "CCC(=O)c1ccc(C)cc1")]
    [True, False]
    """
    symbols = [_atom_smarts(a) for a in mol.GetAtoms()]
    bonds = [bond_smarts(b) for b in mol.GetBonds()]
    return Chem.MolFragmentToSmiles(mol, atomsToUse=list(range(mol.GetNumAtoms())),
                                    atomSymbols=symbols, bondSymbols=bonds,
                                    allBondsExplicit=True, isomericSmiles=False)


def chain_token(token: str) -> str:
    """An exact token ``$(*-...)`` of a single group with its bond to the scaffold a chain bond."""
    return "$(*-!@" + token[4:] if token.startswith("$(*-") and not token.startswith(
        "$(*-!@") else token


def rooted_token(token: str) -> str:
    """An exact token ``$(*-X...)`` rooted at the group's first atom: ``$(X...)`` ('' when the
    token is not one group bonded by a single bond)."""
    for head in ("$(*-!@", "$(*-"):
        if token.startswith(head):
            return "$(" + token[len(head):]
    return ""


def exact_token(mol: Chem.Mol, root: int) -> str:
    """The recursive SMARTS ``$(...)`` matching exactly the fragment in ``mol`` (attachment points
    as dummy atoms; the dummies stand for scaffold atoms), seen from the dummy ``root``.

    >>> exact_token(Chem.MolFromSmiles("*CC"), 0)
    '$(*-[C&D2&H2&+0]-[C&D1&H3&+0])'
    """
    symbols = [_atom_smarts(a) for a in mol.GetAtoms()]
    bonds = [bond_smarts(b) for b in mol.GetBonds()]
    smi = Chem.MolFragmentToSmiles(mol, atomsToUse=list(range(mol.GetNumAtoms())),
                                   atomSymbols=symbols, bondSymbols=bonds, allBondsExplicit=True,
                                   canonical=False, rootedAtAtom=root, isomericSmiles=False)
    return f"$({smi})"


@lru_cache(maxsize=1)
def load_substituents() -> SubstituentTable:
    """Load and check the shipped substituent table (``rules/data/substituents.toml``).

    A wrong entry raises ShippedDataError naming the file and table: SMARTS or SMILES that do not
    parse, an unknown class, a key defined twice.

    >>> table = load_substituents()
    >>> table.named("*Cl").name, table.cls("halogen").token()
    ('chloro', '$(*-!@[F,Cl,Br,I])')
    """
    data = read_toml(data_file(SUBSTITUENT_FILE), name=SUBSTITUENT_FILE, error=ShippedDataError,
                     what="substituent file")
    unknown = sorted(set(data) - {"class", "substituent"})
    if unknown:
        raise ShippedDataError(f"{SUBSTITUENT_FILE}: unknown table(s) {', '.join(unknown)}")
    classes = {cid: _class(cid, t) for cid, t in dict(data.get("class", {})).items()}
    for c in classes.values():
        for b in (*c.broader, *(x for _, v in c.broader_on for x in v)):
            if b not in classes:
                raise ShippedDataError(f"{SUBSTITUENT_FILE} [class.{c.id}]: broader names "
                                       f"unknown class {b!r}")
    subs: dict[str, Substituent] = {}
    by_key: dict[str, Substituent] = {}
    for sid, t in dict(data.get("substituent", {})).items():
        s = _substituent(sid, t, classes)
        if s.key in by_key:
            raise ShippedDataError(f"{SUBSTITUENT_FILE} [substituent.{sid}]: same group as "
                                   f"[substituent.{by_key[s.key].id}]")
        subs[sid] = by_key[s.key] = s
    return SubstituentTable(classes, subs, by_key)


def _fail(where: str, problem: str) -> ShippedDataError:
    return ShippedDataError(f"{SUBSTITUENT_FILE} [{where}]: {problem}")


def _str(t: Mapping[str, Any], key: str, where: str) -> str:
    v = t.get(key)
    if not isinstance(v, str) or not v.strip():
        raise _fail(where, f"{key} must be a non-empty string")
    return v.strip()


def _strings(t: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    v = t.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise _fail(where, f"{key} must be a list of strings")
    return tuple(x.strip() for x in v)


def _class(cid: str, t: Mapping[str, Any]) -> SubstituentClass:
    where = f"class.{cid}"
    known = {"wording", "wording_on", "smarts", "max_atoms", "ring", "broader", "broader_on",
             "not_members"}
    extra = sorted(set(t) - known)
    if extra:
        raise _fail(where, f"unknown field {', '.join(extra)}")
    smarts = _str(t, "smarts", where)
    with quiet_rdkit():
        query = Chem.MolFromSmarts(smarts)
    if query is None or not smarts.startswith("*"):
        raise _fail(where, f"smarts must parse and start at the scaffold atom '*': {smarts!r}")
    wording_on = t.get("wording_on", {})
    if not isinstance(wording_on, dict) or not all(
            k in KINDS and isinstance(v, str) and v.strip() for k, v in wording_on.items()):
        raise _fail(where, f"wording_on must map kinds ({', '.join(KINDS)}) to wordings")
    max_atoms = t.get("max_atoms")
    if not isinstance(max_atoms, int) or isinstance(max_atoms, bool) or max_atoms < 1:
        raise _fail(where, "max_atoms must be a positive integer")
    stars = sum(1 for a in query.GetAtoms() if a.GetSmarts() == "*")
    first = query.GetAtomWithIdx(0)
    bonded = sum(1 for n in first.GetNeighbors() if n.GetSmarts() != "*")
    broader_on = t.get("broader_on", {})
    if not isinstance(broader_on, dict) or not all(
            k in KINDS and isinstance(v, list) and all(isinstance(x, str) for x in v)
            for k, v in broader_on.items()):
        raise _fail(where, f"broader_on must map kinds ({', '.join(KINDS)}) to lists of classes")
    return SubstituentClass(cid, _str(t, "wording", where), smarts, max_atoms,
                            bool(t.get("ring", False)), _strings(t, "broader", where),
                            tuple(sorted(wording_on.items())), _strings(t, "not_members", where),
                            attachments=max(1, stars), neighbours=max(1, bonded),
                            broader_on=tuple(sorted((k, tuple(v)) for k, v in broader_on.items())))


def _substituent(sid: str, t: Mapping[str, Any], classes: Mapping[str, SubstituentClass]
                 ) -> Substituent:
    where = f"substituent.{sid}"
    extra = sorted(set(t) - {"name", "smiles", "class"})
    if extra:
        raise _fail(where, f"unknown field {', '.join(extra)}")
    smiles = _str(t, "smiles", where)
    with quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None or not any(a.GetAtomicNum() == 0 for a in mol.GetAtoms()):
        raise _fail(where, f"smiles must parse and mark its attachment with '*': {smiles!r}")
    cls = _str(t, "class", where)
    if cls not in classes:
        raise _fail(where, f"unknown class {cls!r}")
    dummies = sum(1 for a in mol.GetAtoms() if a.GetAtomicNum() == 0)
    return Substituent(sid, _str(t, "name", where), smiles, cls, fragment_key(mol),
                       mol.GetNumAtoms() - dummies, dummies)


def class_matches(cls: SubstituentClass, smiles: str) -> bool:
    """True when the substituent ``smiles`` (attachment points ``*``) matches the class's SMARTS
    at its first attachment point: the check the data tests run on members and not_members."""
    mol = Chem.MolFromSmiles(smiles)
    dummies = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
    if len(dummies) == 2 and cls.attachments == 2:
        # two adjacent scaffold atoms: the test joins them by an aromatic bond, as in a ring
        rw = Chem.RWMol(mol)
        rw.AddBond(dummies[0], dummies[1], Chem.BondType.AROMATIC)
        mol = rw.GetMol()
        mol.UpdatePropertyCache(strict=False)
    query = Chem.MolFromSmarts(f"[{cls.token()}]")
    hit = any(m[0] == dummies[0] for m in mol.GetSubstructMatches(query, useChirality=False))
    if cls.single:   # the rooted form says the same of the group's first atom
        rooted = Chem.MolFromSmarts(f"[{cls.rooted()}]")
        first = mol.GetAtomWithIdx(dummies[0]).GetNeighbors()[0].GetIdx()
        assert hit == any(m[0] == first for m in mol.GetSubstructMatches(rooted)), cls.id
    return hit


def class_members(table: SubstituentTable, ids: Sequence[str]) -> list[str]:
    """SMILES of the named members of the classes ``ids``."""
    return [s.smiles for cid in ids for s in table.members(cid)]
