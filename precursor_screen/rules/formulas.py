"""Heavy-atom formulas: an exact test that a rule product cannot be one of a caller's targets.

A screen searches rule routes only to look their products up: a conversion's product matters
when it is a listed substance (or a substrate one building step from one), a drug route's when it
is a listed drug (or a member of a drug family). A product at the last step of a search is taken
no further, so one that cannot be a target is made for nothing: RDKit sanitizes it, writes its
SMILES and standardizes it (~150 us of the ~220 a reaction costs) only for the lookup to fail.

`TargetFormulas` answers "could this product be a target?" from the product as the reaction gives
it, before any of that. Standardizing a connected piece keeps its heavy atoms with two
exceptions, both allowed for here: a metal comes off (a piece holding any element outside the
common organic ones is always kept) and a ketone hydrate loses one oxygen (a piece with two
oxygens is also tried with one fewer). So a
piece whose heavy-atom formula is no target's, in either form, has no target's identity key,
and leaving it out changes no lookup. The searches count what they leave out and search again
without the test when that count could have reached their product cap (see
`precursor_screen.rules.conversions.RuleSet.apply`): the routes found are the same.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from rdkit import Chem
from rdkit.Chem import rdMolDescriptors

__all__ = ["ORGANIC", "TargetFormulas", "heavy_counts", "heavy_formula"]

Formula = tuple[tuple[int, int], ...]
"""(atomic number, count) of each heavy element, by atomic number."""

_OXYGEN = 8
ORGANIC = frozenset((5, 6, 7, 8, 9, 14, 15, 16, 17, 34, 35, 53))
"""B, C, N, O, F, Si, P, S, Cl, Se, Br, I: elements standardizing never takes off a connected
piece. A piece holding any other (a metal, a dummy atom) is always kept."""


def heavy_formula(numbers: Iterable[int]) -> Formula:
    """The heavy-atom formula of atoms with these atomic numbers (hydrogens left out).

    >>> heavy_formula([6, 6, 8, 1, 1])
    ((6, 2), (8, 1))
    """
    return tuple(sorted((z, n) for z, n in Counter(numbers).items() if z != 1))


_FORMULA = re.compile(r"(?:[A-Z][a-z]?\d*)+(?:[+-]\d*)?")
_ELEMENT = re.compile(r"([A-Z][a-z]?)(\d*)")
_NUMBERS: dict[str, int] = {}


def heavy_counts(mol: Chem.Mol) -> Counter | None:
    """The heavy atoms of ``mol`` (sanitized or as a reaction gives it) counted by atomic
    number, read from RDKit's formula (a C++ call: reading each atom's number from Python costs
    ~30 us on a MOSES-sized product, this ~2); None when RDKit gives no plain formula (a dummy
    atom, an atom it cannot count): ask the atoms.

    >>> sorted(heavy_counts(Chem.MolFromSmiles("OC(=O)Cc1ccccc1Cl")).items())
    [(6, 8), (8, 2), (17, 1)]
    """
    try:
        formula = rdMolDescriptors.CalcMolFormula(mol)
    except (RuntimeError, ValueError):
        return None
    if not _FORMULA.fullmatch(formula):
        return None
    counts: Counter = Counter()
    table = Chem.GetPeriodicTable()
    for symbol, n in _ELEMENT.findall(formula):
        if symbol == "H":
            continue
        z = _NUMBERS.get(symbol)
        if z is None:
            z = _NUMBERS[symbol] = table.GetAtomicNumber(symbol)
        counts[z] += int(n) if n else 1
    return counts


class TargetFormulas:
    """The heavy-atom formulas of a set of target structures, for `could_be`.

    ``smiles``: the targets' identity keys (or any SMILES of theirs). ``any_up_to``: pieces of at
    most this many heavy atoms are always kept (targets defined by a pattern, such as a drug
    family with a size limit, have no one formula).

    >>> targets = TargetFormulas(["CC(=O)Cc1ccccc1"])        # BMK
    >>> targets.could_be([6] * 9 + [8])                      # C9..O: BMK's, or an isomer's
    True
    >>> targets.could_be([6] * 10 + [8]), targets.could_be([6] * 9 + [7])
    (False, False)
    >>> targets.could_be([6] * 9 + [8, 8])                   # BMK's hydrate, C(O)(O)
    True
    >>> targets.could_be([6] * 9 + [8, 11])                  # holds a metal: not known
    True
    """

    def __init__(self, smiles: Iterable[str], *, any_up_to: int = 0) -> None:
        formulas: set[Formula] = set()
        for s in smiles:
            mol = Chem.MolFromSmiles(s, sanitize=False)
            if mol is None:
                raise ValueError(f"target SMILES {s!r} does not parse")
            formulas.add(heavy_formula(a.GetAtomicNum() for a in mol.GetAtoms()))
        self.formulas = frozenset(formulas)
        self.any_up_to = any_up_to

    def __len__(self) -> int:
        return len(self.formulas)

    def could_be(self, numbers: list[int]) -> bool:
        """False only when a connected piece with atoms of these atomic numbers cannot
        standardize to a target."""
        counts = Counter(numbers)
        counts.pop(1, None)
        return self._could_be(counts)

    def _could_be(self, counts: Counter) -> bool:
        """`could_be` of a piece's heavy atoms counted by atomic number."""
        if sum(counts.values()) <= self.any_up_to + 1:   # + 1: a hydrate loses an oxygen
            return True
        if not ORGANIC.issuperset(counts):
            return True     # a metal that standardizing may take off, a dummy atom
        if tuple(sorted(counts.items())) in self.formulas:
            return True
        if counts.get(_OXYGEN, 0) >= 2:     # a ketone hydrate becomes the ketone
            counts[_OXYGEN] -= 1
            return tuple(sorted(counts.items())) in self.formulas
        return False

    def piece_counts(self, product: Chem.Mol) -> int:
        """0 when some connected piece of a reaction's product (not sanitized) could be a
        target; else how many pieces it has (each could have been one product)."""
        frags = Chem.GetMolFrags(product, sanitizeFrags=False)
        if len(frags) == 1:
            counts = heavy_counts(product)
            if counts is None:
                return 0 if self.could_be([a.GetAtomicNum() for a in product.GetAtoms()]) else 1
            return 0 if self._could_be(counts) else 1
        numbers = [a.GetAtomicNum() for a in product.GetAtoms()]
        for frag in frags:
            if self.could_be([numbers[i] for i in frag]):
                return 0
        return len(frags)
