"""Containment with its attachment atoms checked: does a candidate contain a listed substance, or
only its skeleton with something else at the atoms where the rest attaches?

A candidate "contains" a listed substance when the substance sits in it unchanged: every atom of
the substance has, in the candidate, the same element, the same oxidation state and no extra
carbon. Where the rest of the candidate attaches to an atom of the substance (an attachment atom),
that attachment must leave the atom as the listing names it: a heteroatom on a carbon changes the
carbon's oxidation state (phenylpyruvic acid holds BMK's skeleton, but BMK's methyl carbon is a
carboxylic acid carbon there), a carbon on any atom makes a homologue, a branch or an N- or
O-alkyl derivative (benzyl ethyl ketone, N-methylephedrine), and an oxygen, nitrogen or halogen on
a nitrogen changes its oxidation state (an N-oxide). What may hang on the substance is a
non-carbon group on one of its heteroatoms (an O-silyl or O-sulfonyl group), which leaves the
atoms it names as they are. A group that comes off and restores the site (an ester, an amide, a
carbamate) is a *mask*, and the conversion search (``rules/masks.py``) finds it with its route.

`attachment_differences` says what differs, atom by atom, in words a chemist can check, so that a
screen calls such a candidate similar and says why it is not the substance.
"""

from __future__ import annotations

from rdkit import Chem

__all__ = ["attachment_differences", "atom_label"]

MAX_EMBEDDINGS = 20
"""Embeddings of the substance tried; the first with no difference makes the candidate contain
it."""

_NAMES = {7: "nitrogen", 8: "oxygen", 16: "sulfur", 9: "fluorine", 17: "chlorine",
          35: "bromine", 53: "iodine", 15: "phosphorus", 14: "silicon"}


def attachment_differences(mol: Chem.Mol, part: Chem.Mol) -> tuple[str, ...] | None:
    """What differs at the attachment atoms of ``part`` inside ``mol``: () when ``mol`` contains
    ``part`` unchanged (some embedding whose attachments all leave ``part``'s atoms as they
    are), the differences of the embedding with the fewest otherwise, None when ``part`` is not
    a substructure at all.

    >>> bmk = Chem.MolFromSmiles("CC(=O)Cc1ccccc1")
    >>> attachment_differences(Chem.MolFromSmiles("O=C(O)C(=O)Cc1ccccc1"), bmk)
    ('its methyl carbon carries an oxygen (another oxidation state)',)
    >>> attachment_differences(Chem.MolFromSmiles("CCC(=O)Cc1ccccc1"), bmk)
    ('its methyl carbon carries one more carbon (a homologue or a branch)',)
    >>> attachment_differences(Chem.MolFromSmiles("CC(=O)Cc1ccccc1"), bmk)
    ()
    """
    best: tuple[str, ...] | None = None
    mol = _canonical_order(mol)  # the embeddings tried, and so the answer, whatever the input order
    for match in mol.GetSubstructMatches(part, maxMatches=MAX_EMBEDDINGS, useChirality=False):
        inside = set(match)
        found: list[str] = []
        for part_idx, mol_idx in enumerate(match):
            atom = mol.GetAtomWithIdx(mol_idx)
            extra = [nb for nb in atom.GetNeighbors() if nb.GetIdx() not in inside]
            for nb in extra:
                what = _difference(part.GetAtomWithIdx(part_idx), nb)
                if what:
                    found.append(f"its {atom_label(part, part_idx)} carries {what}")
        if not found:
            return ()
        unique = tuple(dict.fromkeys(found))
        if best is None or len(unique) < len(best):
            best = unique
    return best


def _canonical_order(mol: Chem.Mol) -> Chem.Mol:
    """``mol`` with its atoms and bonds in canonical order (read back from its canonical SMILES):
    one molecule written two ways gets the same embeddings in the same order, so the same
    differences in the same words."""
    again = Chem.MolFromSmiles(Chem.MolToSmiles(mol))
    return again if again is not None else mol


def _difference(atom: Chem.Atom, extra: Chem.Atom) -> str:
    """How an extra neighbour changes a substance's atom ('' when it leaves it as named)."""
    z = extra.GetAtomicNum()
    name = _a(_NAMES.get(z, "carbon" if z == 6 else extra.GetSymbol()))
    if atom.GetAtomicNum() == 6:
        if atom.GetIsAromatic():
            return f"a ring substituent ({name})"
        if z == 6:
            return "one more carbon (a homologue or a branch)"
        return f"{name} (another oxidation state)"
    if z == 6:
        return "a carbon substituent (an N-, O- or S-alkyl or aryl derivative)"
    if atom.GetAtomicNum() == 7 and z in (7, 8, 9, 17, 35, 53):
        return f"{name} (another oxidation state of the nitrogen)"
    return ""


def _a(name: str) -> str:
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def atom_label(mol: Chem.Mol, idx: int) -> str:
    """A chemist's name for an atom of a listed substance: 'methyl carbon', 'carbonyl carbon',
    'aromatic carbon', 'NH nitrogen', 'hydroxyl oxygen', ...

    >>> atom_label(Chem.MolFromSmiles("CC(=O)Cc1ccccc1"), 3)
    'benzylic methylene carbon'
    """
    atom = mol.GetAtomWithIdx(idx)
    z = atom.GetAtomicNum()
    hs = atom.GetTotalNumHs()
    if z == 6:
        if atom.GetIsAromatic():
            return "aromatic carbon"
        hetero = [nb for nb in atom.GetNeighbors() if nb.GetAtomicNum() not in (1, 6)]
        double_o = any(b.GetBondType() == Chem.BondType.DOUBLE
                       and b.GetOtherAtom(atom).GetAtomicNum() == 8 for b in atom.GetBonds())
        if double_o:
            return "aldehyde carbon" if hs == 1 else "carbonyl carbon"
        if any(b.GetBondType() == Chem.BondType.DOUBLE for b in atom.GetBonds()):
            return "alkene carbon"
        if hetero:
            return f"carbon bearing the {_NAMES.get(hetero[0].GetAtomicNum(), 'heteroatom')}"
        benzylic = any(nb.GetIsAromatic() for nb in atom.GetNeighbors())
        kind = {3: "methyl", 2: "methylene", 1: "methine"}.get(hs, "quaternary")
        return f"{'benzylic ' if benzylic else ''}{kind} carbon"
    name = _NAMES.get(z, atom.GetSymbol())
    if z == 8:
        if any(b.GetBondType() == Chem.BondType.DOUBLE for b in atom.GetBonds()):
            return "carbonyl oxygen"
        return "hydroxyl oxygen" if hs else ("ring oxygen" if atom.IsInRing() else "ether oxygen")
    if z == 7:
        return f"{'NH' if hs == 1 else 'NH2' if hs == 2 else 'tertiary'} nitrogen"
    return name
