"""The route gates' skeleton queries, matched without RDKit when it can (the C extension).

A route gate (`precursor_screen.rules.gates.RouteGate`) asks a candidate a few dozen
skeleton queries: atoms that are an element, any heteroatom or any atom, some of them "bearing
a heteroatom"; bonds aromatic, non-aromatic, any, single, double or triple, some "in a ring".
RDKit answers each in 2-5 us on a MOSES molecule even when it fails, ~150 us a molecule for the
gates of a screen. ``_patternfp.c`` answers all of them at once from the molecule's canonical
SMILES (the graph its pattern-fingerprint reader already builds, with ring bonds found as the
bonds on a cycle) with a plain backtracking match that stops at the first embedding: the same
question (an injective map of query atoms onto molecule atoms taking each query bond onto a
molecule bond; extra bonds in the molecule are allowed), so the same answer.

It is used only where it is known to agree: a `SkeletonSet` compares it with RDKit on
`precursor_screen.chem.fastpattern.CHECK_SMILES` and its own queries' test molecules when built,
and is off for the process on any difference. A SMILES the reader does not know (a dummy atom, a
dative bond) or a molecule whose RDKit rings are no full ring basis gives None: RDKit answers.
The tests and ``benchmarks/verify_fastgate.py`` compare both on every evaluation molecule and on
MOSES.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rdkit import Chem

from precursor_screen.chem.fastpattern import CHECK_SMILES, _patternfp

__all__ = ["SkeletonSet", "BOND_KINDS"]

BOND_KINDS = {"~": 0, ":": 1, "!:": 2, "-": 3, "=": 4, "#": 5}
"""Bond orders of a skeleton (`Skeleton.bonds`) as the C matcher numbers them."""
Z_ANY, Z_HETERO = 0, 255


class SkeletonSet:
    """Skeletons (`precursor_screen.rules.gates.Skeleton`) compiled for the C matcher.

    ``matches(mol, smiles)`` gives an int whose bit *k* is set when skeleton *k* is in the
    molecule, or None when the fast path is off or cannot read the molecule (ask RDKit).
    ``rdkit(mol)`` gives the same int from RDKit (the gate's own queries), for the start-up check.
    """

    def __init__(self, skeletons: Sequence[Any], rdkit: Callable[[Chem.Mol], int]) -> None:
        self.size = len(skeletons)
        self._specs = [_spec(sk) for sk in skeletons]
        self._compiled: Any = None
        if _patternfp is not None and hasattr(_patternfp, "compile_skeletons") and \
                all(spec is not None for spec in self._specs):
            self._compiled = _patternfp.compile_skeletons(self._specs)
            if not self._agrees(rdkit):
                self._compiled = None

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

    def matches(self, mol: Chem.Mol, smiles: str | None) -> int | None:
        """Bit *k*: skeleton *k* is in ``mol``; ``smiles`` must be ``Chem.MolToSmiles(mol)``.
        None when the C matcher cannot answer."""
        if self._compiled is None or smiles is None:
            return None
        try:
            rings = mol.GetRingInfo().NumRings()
        except RuntimeError:   # ring information not computed (an unsanitized molecule)
            return None
        found = _patternfp.match_skeletons(self._compiled, smiles, rings)
        return None if found is None else int.from_bytes(found, "little")

    def _agrees(self, rdkit: Callable[[Chem.Mol], int]) -> bool:
        """The C matcher gives RDKit's answer for every query on every check molecule."""
        for smiles in CHECK_SMILES:
            mol = Chem.MolFromSmiles(smiles)
            fast = self.matches(mol, Chem.MolToSmiles(mol))
            if fast is not None and fast != rdkit(mol):
                return False
        return True


def _spec(skeleton: Any) -> tuple[bytes, bytes] | None:
    """(atoms, bonds) for ``compile_skeletons``: atoms renumbered so that each after the first is
    bonded to an earlier one (breadth first from the rarest label: a named heteroatom, then any
    heteroatom, then a carbon bearing one), as (element, bears) pairs; bonds as (atom, atom,
    kind, ring). None for a skeleton the matcher does not take (disconnected, too large)."""
    atoms, bonds = skeleton.atoms, skeleton.bonds
    n = len(atoms)
    if not 0 < n <= 64 or len(bonds) > 96:
        return None
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for a, b, _order, _ring in bonds:
        neighbours[a].append(b)
        neighbours[b].append(a)

    def rarity(i: int) -> tuple[int, int]:
        z, unknown, bears = atoms[i]
        return (0 if z not in (None, 6) else 1 if unknown else 2 if bears else 3, i)

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
        z, unknown, bears = atoms[old]
        code = Z_HETERO if z is None and unknown else Z_ANY if z is None else z
        if not 0 < code <= 255 and code != Z_ANY:
            return None
        atom_bytes += bytes((code, 1 if bears else 0))
    bond_bytes = bytearray()
    for a, b, order_symbol, ring in bonds:
        bond_bytes += bytes((new[a], new[b], BOND_KINDS[order_symbol], 1 if ring else 0))
    return bytes(atom_bytes), bytes(bond_bytes)
