"""Simple substructure queries matched without RDKit when it can (the C extension).

The screen asks every candidate a few hundred substructure queries of a simple kind: the route
gates' skeletons (`precursor_screen.rules.gates.Skeleton`: atoms that are an element, any
heteroatom or any atom, some "bearing a heteroatom"; bonds aromatic, non-aromatic, any, single,
double or triple, some "in a ring"), the rule engine's relaxed substrate screens
(`precursor_screen.rules.conversions`: element lists, bonds with "in a ring" or "in no ring")
and the group gates. RDKit answers each in 2-5 us on a MOSES molecule even when it fails.
``_patternfp.c`` answers a whole set at once from the molecule's canonical SMILES (the graph its
pattern-fingerprint reader already builds, with ring bonds found as the bonds on a cycle) with a
plain backtracking match that stops at the first embedding: the same question (an injective map
of query atoms onto molecule atoms taking each query bond onto a molecule bond; extra bonds in
the molecule are allowed), so the same answer.

It is used only where it is known to agree: a `QuerySet` compares it with RDKit on
`precursor_screen.chem.fastpattern.CHECK_SMILES` when built, and is off for the process on any
difference, or when one of its queries has a feature it does not read. A SMILES the reader does
not know (a dummy atom, a dative bond) or a molecule whose RDKit rings are no full ring basis
gives None: RDKit answers. The tests and ``benchmarks/verify_fastgate.py`` compare both on every
evaluation molecule and on MOSES.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from rdkit import Chem

from precursor_screen.chem.fastpattern import CHECK_SMILES, _patternfp

__all__ = ["BOND_KINDS", "QuerySet"]

BOND_KINDS = {"~": 0, ":": 1, "!:": 2, "-": 3, "=": 4, "#": 5, "": 6}
"""Bond orders as the C matcher numbers them ("": SMARTS' implicit single-or-aromatic)."""
ANY_RING, RING, NO_RING = 0, 1, 2
HETERO_ATOM = 255
"""An atom query "any heteroatom" (not carbon, not hydrogen)."""

NO_DEGREE_LIMIT = 255
ANY_KIND, ALIPHATIC, AROMATIC = 0, 1, 2
"""What a query atom asks of the atom's aromaticity (SMARTS: nothing, ``A``, ``a``)."""
KINDS = {"": ANY_KIND, "A": ALIPHATIC, "a": AROMATIC}
# one query atom: (elements, or () for any atom, or (HETERO_ATOM,)), bears a heteroatom, most
# neighbours in the molecule (NO_DEGREE_LIMIT: any), its kind (ANY_KIND, ALIPHATIC, AROMATIC: a
# typed skeleton's atoms, `gates.Skeleton.atom_kinds`)
QueryAtom = tuple[tuple[int, ...], bool, int, int]
SKELETON_ATOM_BYTES = 8
"""Bytes a query atom takes in ``compile_skeletons``; an extension built for another layout
(an older development build) is not used."""
SKELETON_ATOM_KINDS = 3
"""Atom kinds the C matcher reads (an older build reads two: not used)."""
QueryBond = tuple[int, int, str, int]       # atom, atom, order (a BOND_KINDS key), ring


_LAST_RINGS: tuple[Any, int] = (None, 0)
"""The molecule asked last and RDKit's ring count for it (kept alive here, so the identity test
cannot meet another molecule at the same address)."""


class QuerySet:
    """Simple queries compiled for the C matcher.

    ``matches(mol, smiles)`` gives an int whose bit *k* is set when query *k* is in the
    molecule, or None when the fast path is off or cannot read the molecule (ask RDKit).
    ``rdkit(mol)`` gives the same int from RDKit, for the start-up check.
    """

    def __init__(self, queries: Sequence[tuple[Sequence[QueryAtom], Sequence[QueryBond]] | None],
                 rdkit: Callable[[Chem.Mol], int]) -> None:
        self.size = len(queries)
        specs = [None if q is None else _spec(*q) for q in queries]
        self._specs = specs if all(spec is not None for spec in specs) else None
        self._compiled: Any = None
        if self._specs is not None and _patternfp is not None \
                and getattr(_patternfp, "SKELETON_ATOM_BYTES", 0) == SKELETON_ATOM_BYTES \
                and getattr(_patternfp, "SKELETON_ATOM_KINDS", 0) == SKELETON_ATOM_KINDS:
            self._compiled = _patternfp.compile_skeletons(self._specs)
            if not self._agrees(rdkit):
                self._compiled = None

    @classmethod
    def of_skeletons(cls, skeletons: Sequence[Any], rdkit: Callable[[Chem.Mol], int]
                     ) -> QuerySet:
        """Route-gate skeletons (`gates.Skeleton`), answered as ``rdkit`` answers them."""
        return cls([_skeleton_query(sk) for sk in skeletons], rdkit)

    @classmethod
    def of_queries(cls, queries: Sequence[Chem.Mol]) -> QuerySet:
        """RDKit query molecules of the simple kind (see `query_parts`; off if one is not)."""
        def rdkit(mol: Chem.Mol) -> int:
            return sum(1 << k for k, q in enumerate(queries) if mol.HasSubstructMatch(q))
        return cls([query_parts(q) for q in queries], rdkit)

    def __getstate__(self) -> dict[str, Any]:
        return {"size": self.size, "_specs": self._specs, "on": self._compiled is not None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.size, self._specs = state["size"], state["_specs"]
        self._compiled = (_patternfp.compile_skeletons(self._specs)
                          if state["on"] and _patternfp is not None else None)

    @property
    def on(self) -> bool:
        """True when the C matcher answers (built, and agreed with RDKit on the checks)."""
        return self._compiled is not None

    def matches(self, mol: Chem.Mol, smiles: str | None, only: bytes | None = None
                ) -> int | None:
        """Bit *k*: query *k* is in ``mol``; ``smiles`` must be ``Chem.MolToSmiles(mol)``.
        None when the C matcher cannot answer. ``only`` (`mask_bytes`): the queries to match;
        the bits of the others are 0."""
        global _LAST_RINGS
        if self._compiled is None or smiles is None:
            return None
        last_mol, last_rings = _LAST_RINGS
        if last_mol is mol:     # several sets are asked of one molecule in a row
            rings = last_rings
        else:
            try:
                rings = mol.GetRingInfo().NumRings()
            except RuntimeError:   # ring information not computed (an unsanitized molecule)
                return None
            _LAST_RINGS = (mol, rings)
        found = (_patternfp.match_skeletons(self._compiled, smiles, rings) if only is None
                 else _patternfp.match_skeletons(self._compiled, smiles, rings, only))
        return None if found is None else int.from_bytes(found, "little")

    def mask_bytes(self, bits: int) -> bytes:
        """A bit mask of this set's queries as `matches` takes it (``only``)."""
        return bits.to_bytes((self.size + 7) // 8 or 1, "little")

    def _agrees(self, rdkit: Callable[[Chem.Mol], int]) -> bool:
        """The C matcher gives RDKit's answer for every query on every check molecule."""
        for smiles in CHECK_SMILES:
            mol = Chem.MolFromSmiles(smiles)
            fast = self.matches(mol, Chem.MolToSmiles(mol))
            if fast is not None and fast != rdkit(mol):
                return False
        return True


def _skeleton_query(skeleton: Any) -> tuple[list[QueryAtom], list[QueryBond]]:
    atoms: list[QueryAtom] = []
    for (z, unknown, bears), kind in zip(skeleton.atoms, skeleton.atom_kinds()):
        atoms.append(((HETERO_ATOM,) if z is None and unknown else () if z is None else (z,),
                      bool(bears), NO_DEGREE_LIMIT, KINDS[kind]))
    bonds = [(a, b, order, RING if ring else ANY_RING) for a, b, order, ring in skeleton.bonds]
    return atoms, bonds


_ATOM = re.compile(r"\[(#\d+(?:,#\d+)*)?(?:[;&]?(D\d+(?:,D\d+)*))?\]")
_BOND_ORDERS = {"-", "=", "#", ":", "~", "!:"}


def query_parts(query: Chem.Mol) -> tuple[list[QueryAtom], list[QueryBond]] | None:
    """A query molecule as (atoms, bonds) for the C matcher, or None when an atom or bond has a
    feature it does not read. Atoms: ``*``, ``[#n]`` or ``[#n,#m,...]`` (up to four), each
    (or any atom) with at most so many neighbours written ``;D0,D1,...,Dk``;
    bonds: one order (``-``, ``=``, ``#``, ``:``, ``~``, ``!:`` or none, meaning single or
    aromatic) and/or ``@`` / ``!@``, joined by ``&`` or ``;``."""
    atoms: list[QueryAtom] = []
    for atom in query.GetAtoms():
        text = atom.GetSmarts()
        if text == "*":
            atoms.append(((), False, NO_DEGREE_LIMIT, ANY_KIND))
            continue
        found = _ATOM.fullmatch(text)
        if found is None or not (found.group(1) or found.group(2)):
            return None
        zs = tuple(int(part[1:]) for part in found.group(1).split(",")) if found.group(1) else ()
        if len(zs) > 4 or not all(0 < z < 255 for z in zs):
            return None
        degree = NO_DEGREE_LIMIT
        if found.group(2):
            degrees = [int(part[1:]) for part in found.group(2).split(",")]
            if degrees != list(range(len(degrees))) or len(degrees) > 32:
                return None     # only "at most k": D0, D1, ..., Dk
            degree = len(degrees) - 1
        atoms.append((zs, False, degree, ANY_KIND))
    bonds: list[QueryBond] = []
    for bond in query.GetBonds():
        order, ring = "", ANY_RING
        for part in re.split(r"[&;]", bond.GetSmarts()) if bond.GetSmarts() else []:
            if part in _BOND_ORDERS and not order:
                order = part
            elif part == "@" and ring == ANY_RING:
                ring = RING
            elif part == "!@" and ring == ANY_RING:
                ring = NO_RING
            else:
                return None
        if not order and ring != ANY_RING:
            order = "~"      # "@" alone: any bond in a ring
        bonds.append((bond.GetBeginAtomIdx(), bond.GetEndAtomIdx(), order, ring))
    return atoms, bonds


def _spec(atoms: Sequence[QueryAtom], bonds: Sequence[QueryBond]) -> tuple[bytes, bytes] | None:
    """(atoms, bonds) for ``compile_skeletons``: atoms renumbered so that each after the first is
    bonded to an earlier one (breadth first from the rarest label: a named heteroatom, then any
    heteroatom, then an atom bearing one, then a carbon), each as (n, z1..z4, bears, most
    neighbours, kind); bonds as (atom, atom, order, ring). None for a query the matcher does
    not take (disconnected, too large)."""
    n = len(atoms)
    if not 0 < n <= 64 or len(bonds) > 96:
        return None
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for a, b, _order, _ring in bonds:
        neighbours[a].append(b)
        neighbours[b].append(a)

    def rarity(i: int) -> tuple[int, int]:
        zs, bears, _degree, _kind = atoms[i]
        named = bool(zs) and HETERO_ATOM not in zs and 6 not in zs
        return (0 if named else 1 if zs == (HETERO_ATOM,) else 2 if bears else 3 if zs else 4, i)

    order = [min(range(n), key=rarity)]
    placed = {order[0]}
    head = 0
    while head < len(order):
        for j in sorted(neighbours[order[head]], key=rarity):
            if j not in placed:
                placed.add(j)
                order.append(j)
        head += 1
    if len(order) != n:
        return None
    new = {old: k for k, old in enumerate(order)}
    atom_bytes = bytearray()
    for old in order:
        zs, bears, degree, kind = atoms[old]
        atom_bytes += bytes((len(zs), *zs, *(0,) * (4 - len(zs)), 1 if bears else 0, degree,
                             kind))
    bond_bytes = bytearray()
    for a, b, order_symbol, ring in bonds:
        bond_bytes += bytes((new[a], new[b], BOND_KINDS[order_symbol], ring))
    return bytes(atom_bytes), bytes(bond_bytes)
