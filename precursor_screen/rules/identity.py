"""Identity modulo what does not change the substance: isotopes, keto-enol tautomers, the
counter-ion of an inorganic's active ion; and acylating agents that stand in for a listed
anhydride.

* A deuterated (or otherwise isotope-labelled) listed substance is that substance: `unlabelled`
  gives the parent without its labels, which the screen identifies and searches.
* An enol is its ketone: `keto_forms` gives the keto tautomers of a candidate's enols (the
  ``enol-tautomer`` mask of ``data/masks.toml``, applied once).
* An inorganic substance acts through its active ion: potassium permanganate oxidises as
  permanganate, whatever the cation. `active_ion` names the ion of a listed salt whose other ions
  are ordinary counter-cations; another salt of that ion is the same reagent. The salts of
  hydrochloric and sulphuric acid are not salts of a listed salt (the acids are listed as acids,
  and the annex excludes their salts), so only listed salts have an active ion.
* An acyl halide or a mixed anhydride carries the acyl group a listed anhydride delivers:
  acetyl chloride and acetyl bromide acetylate as acetic anhydride does (and give it with an
  acetate salt), and mixed acetic anhydrides disproportionate to it. `symmetric_anhydrides` gives
  the symmetric anhydride of each acyl group such a candidate carries.
"""

from __future__ import annotations

import functools
import re

from rdkit import Chem

from precursor_screen.chem.standardize import Standardized, StandardizeError, standardize
from precursor_screen.rules.gates import QueryNeeds

__all__ = ["unlabelled", "has_isotopes", "keto_forms", "active_ion", "counter_ions_only",
           "symmetric_anhydrides", "COUNTER_CATIONS"]

COUNTER_CATIONS = frozenset({"[Li+]", "[Na+]", "[K+]", "[Rb+]", "[Cs+]", "[NH4+]", "[Mg+2]",
                             "[Ca+2]", "[Sr+2]", "[Ba+2]", "[Zn+2]"})
"""Ordinary counter-cations (canonical SMILES): a salt of a listed salt's anion with these is
the same reagent."""

_ISOTOPE = re.compile(r"\[\d+[A-Za-z]")
_ENOL = Chem.MolFromSmarts("[CX3;!$(C(-[!#6])-[!#6])](-[OX2H1])=[CX3;!$(C-[!#6])]")
_ANY_ENOL = Chem.MolFromSmarts("[OX2H1]-[CX3]=[CX3]")   # no recursion: the quick test first
_ACYL_HALIDE = Chem.MolFromSmarts("[CX3;$(C-[#6]),$([CH1])](=O)-[F,Cl,Br,I]")
_ANHYDRIDE = Chem.MolFromSmarts("[CX3;$(C-[#6]),$([CH1])](=O)-!@[OX2]-[CX3;$(C-[#6]),$([CH1])]=O")
_ACYL_X = Chem.MolFromSmarts("[CX3](=O)-[F,Cl,Br,I]")
_ACYL_O_ACYL = Chem.MolFromSmarts("[CX3](=O)-[OX2]-[CX3]=O")


@functools.cache
def _quick_tests() -> QueryNeeds:
    """The enol and acylating-agent tests as the C matcher asks them (a candidate without what
    they demand has neither: RDKit is not asked)."""
    return QueryNeeds([_ANY_ENOL, _ACYL_X, _ACYL_O_ACYL])


_LAST: tuple[Standardized | None, int | None] = (None, None)
"""The candidate asked last and the C matcher's answer for it (the screen asks both tests of
one candidate in a row; kept alive here, so no other one meets it at the same identity)."""


def _may_hold(std: Standardized, *tests: int) -> bool:
    """False when every quick test of ``tests`` (indices in `_quick_tests`) surely fails on
    ``std``."""
    global _LAST
    needs = _quick_tests()
    last, found = _LAST
    if last is not std:
        found = needs.found(std.mol, std.smiles)
        _LAST = (std, found)
    return found is None or any(needs.may_match(found, k) for k in tests)


def has_isotopes(std: Standardized) -> bool:
    """True when the parent carries isotope labels ([2H], [13C], ...)."""
    return bool(_ISOTOPE.search(std.smiles))


def unlabelled(std: Standardized) -> Standardized | None:
    """The parent with its isotope labels set to natural abundance (labelled hydrogens become
    implicit); None when it cannot be standardized.

    >>> from precursor_screen.chem.standardize import standardize_smiles
    >>> unlabelled(standardize_smiles("[2H]C([2H])([2H])C(=O)Cc1ccccc1")).smiles
    'CC(=O)Cc1ccccc1'
    """
    mol = Chem.Mol(std.mol)
    for atom in mol.GetAtoms():
        atom.SetIsotope(0)
    try:
        mol = Chem.RemoveHs(mol)
        return standardize(mol)
    except (StandardizeError, ValueError, RuntimeError):
        return None


def keto_forms(std: Standardized, rules: object) -> list[Standardized]:
    """The keto tautomers of the candidate's enols (one enol at a time), by the
    ``enol-tautomer`` mask of ``rules``; [] when it has no enol or the rules lack the mask.

    >>> from precursor_screen.chem.standardize import standardize_smiles
    >>> from precursor_screen.rules.masks import load_rules
    >>> [k.smiles for k in keto_forms(standardize_smiles("CC(O)=Cc1ccccc1"), load_rules())]
    ['CC(=O)Cc1ccccc1']
    """
    if not _may_hold(std, 0) or not std.mol.HasSubstructMatch(_ANY_ENOL) \
            or not std.mol.HasSubstructMatch(_ENOL):
        return []
    try:
        return list(rules.apply_rule(std, "enol-tautomer"))  # type: ignore[attr-defined]
    except KeyError:
        return []


def active_ion(std: Standardized) -> str | None:
    """The active ion of an inorganic salt made of one kind of other ion and ordinary
    counter-cations (`COUNTER_CATIONS`): potassium permanganate gives permanganate. None for
    anything else (an acid, an element, a salt of two other ions).

    >>> from precursor_screen.chem.standardize import standardize_smiles
    >>> active_ion(standardize_smiles("[K+].[O-][Mn](=O)(=O)=O"))
    '[O]=[Mn](=[O])(=[O])[O-]'
    >>> active_ion(standardize_smiles("Cl")) is None
    True
    """
    pieces = _pieces(std)
    others = {p for p in pieces if p not in COUNTER_CATIONS}
    if len(others) != 1 or len(others) == len(set(pieces)):
        return None
    return next(iter(others))


def counter_ions_only(std: Standardized, ion: str) -> bool:
    """True when the candidate is ``ion`` with ordinary counter-cations only (another salt of
    the same active ion)."""
    pieces = set(_pieces(std))
    return ion in pieces and pieces - {ion} <= COUNTER_CATIONS and len(pieces) > 1


def _pieces(std: Standardized) -> list[str]:
    """Canonical SMILES of each ion of an inorganic parent, as the standardizer writes it (the
    listed salt and the candidate pass through the same standardizer)."""
    return [Chem.MolToSmiles(frag)
            for frag in Chem.GetMolFrags(std.mol, asMols=True, sanitizeFrags=False)]


def symmetric_anhydrides(mol: Chem.Mol | Standardized) -> list[str]:
    """SMILES of the symmetric anhydride of each acyl group the molecule carries as an acyl
    halide or in an open-chain anhydride: acetyl chloride and acetic benzoic anhydride give
    acetic anhydride.

    >>> symmetric_anhydrides(Chem.MolFromSmiles("CC(=O)Cl"))
    ['CC(=O)OC(C)=O']
    >>> sorted(symmetric_anhydrides(Chem.MolFromSmiles("CC(=O)OC(=O)c1ccccc1")))
    ['CC(=O)OC(C)=O', 'O=C(OC(=O)c1ccccc1)c1ccccc1']

    A `Standardized` is first asked of the C matcher (`_quick_tests`).
    """
    if isinstance(mol, Standardized):
        if not _may_hold(mol, 1, 2):
            return []
        mol = mol.mol
    if not (mol.HasSubstructMatch(_ACYL_X) or mol.HasSubstructMatch(_ACYL_O_ACYL)):
        return []
    cuts: list[tuple[int, int]] = []          # (acyl carbon, the atom it leaves)
    for c, _o, x in mol.GetSubstructMatches(_ACYL_HALIDE):
        cuts.append((c, x))
    for c1, _o1, o, c2, _o2 in mol.GetSubstructMatches(_ANHYDRIDE):
        cuts.extend([(c1, o), (c2, o)])
    out: list[str] = []
    for carbon, leaving in cuts:
        bond = mol.GetBondBetweenAtoms(carbon, leaving)
        pieces = Chem.FragmentOnBonds(mol, [bond.GetIdx()], addDummies=True,
                                      dummyLabels=[(1, 1)])
        members = next(m for m in Chem.GetMolFrags(pieces) if carbon in m)
        text = Chem.MolFragmentToSmiles(pieces, atomsToUse=list(members)).replace("[1*]", "[*:1]")
        linked = Chem.MolFromSmiles(f"{text}.[*:1]O[*:2].{text.replace('[*:1]', '[*:2]')}")
        if linked is None:
            continue
        smiles = Chem.MolToSmiles(Chem.molzip(linked))
        if smiles not in out:
            out.append(smiles)
    return out
