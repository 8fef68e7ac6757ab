"""The common scaffold of a few example structures, and what each example carries on it.

The first step of drafting a group (:mod:`precursor_screen.survey.draft`): RDKit's maximum common
substructure (``rdFMCS``; elements and bond orders compared, rings matched to rings and only
whole) gives the part every example shares. It is then *trimmed back to chemically meaningful
attachment points*, so that what varies is a whole group a legal text can name:

* an alkyl chain that differs between examples (methyl, ethyl, isopropyl esters) leaves the
  scaffold whole, so the variable position is the ester oxygen and the group is "C1-C4 alkyl",
  not "a CH2 carrying H or CH3";
* a terminal atom whose groups differ in kind (the nitrile carbon of APAAN against the ester
  carbon of MAPA) leaves it too, so the position is the carbon carrying "cyano" or
  "methoxycarbonyl".

Every example is then decomposed on the scaffold: for each scaffold atom, the groups attached to
it (:class:`Attachment`, with the lookup key of :func:`precursor_screen.rules.substituents.
fragment_key` and an exact SMARTS). Symmetric scaffolds (a benzene ring) are matched so that the
examples' substituents fall on as few positions as possible.

Several families mixed together are split by :func:`cluster`: pairwise common substructures,
complete linkage, each cluster's joint scaffold checked again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rdkit import Chem
from rdkit.Chem import rdFMCS

from precursor_screen.rules.substituents import bond_smarts, exact_token, fragment_key

__all__ = ["Attachment", "Scaffold", "find_scaffold", "cluster", "mcs_atoms", "scaffold_ok",
           "MCS_TIMEOUT_S", "MIN_SCAFFOLD_ATOMS", "MIN_SHARE", "CLUSTER_SHARE"]

MCS_TIMEOUT_S = 5
"""Seconds one maximum-common-substructure search may take (the answer is then the best found)."""
MIN_SCAFFOLD_ATOMS = 6
"""A scaffold smaller than this defines nothing: a benzene ring is in a third of all chemicals."""
MIN_SHARE = 0.5
"""The scaffold must be at least this share of the smallest example's heavy atoms."""
CLUSTER_SHARE = 0.6
"""Two examples are of one family when their common substructure is at least this share of the
smaller one (complete linkage: of every pair in the cluster)."""
_MAX_MATCHES = 2000


@dataclass(frozen=True, slots=True)
class Attachment:
    """One group an example carries on the scaffold: the scaffold positions it is bonded to, its
    key, an exact SMARTS from each of those positions, its size, and how many of its atoms are
    bonded to each position (2 for a spiro ketal ring on one carbon)."""

    positions: tuple[int, ...]
    key: str
    tokens: tuple[str, ...]
    heavy_atoms: int
    neighbours: tuple[int, ...]


@dataclass(frozen=True)
class Scaffold:
    """The scaffold as atoms of the first example (``template``), each example's match and the
    groups each carries. Position ``p`` is template atom ``atoms[p]``."""

    template: Chem.Mol
    atoms: tuple[int, ...]
    matches: tuple[tuple[int, ...], ...]
    attachments: tuple[tuple[Attachment, ...], ...]
    mcs_atoms: int
    mols: tuple[Chem.Mol, ...] = ()

    @property
    def size(self) -> int:
        return len(self.atoms)

    def position(self, template_atom: int) -> int:
        return self.atoms.index(template_atom)

    def at(self, example: int, position: int) -> tuple[Attachment, ...]:
        """The groups example ``example`` carries at scaffold ``position``."""
        return tuple(a for a in self.attachments[example] if position in a.positions)

    def bonds(self) -> list[Chem.Bond]:
        """The template's bonds between scaffold atoms."""
        inside = set(self.atoms)
        return [b for b in self.template.GetBonds()
                if b.GetBeginAtomIdx() in inside and b.GetEndAtomIdx() in inside]

    def neighbours(self, position: int) -> list[int]:
        """Scaffold positions bonded to ``position``."""
        atom = self.template.GetAtomWithIdx(self.atoms[position])
        inside = {a: p for p, a in enumerate(self.atoms)}
        return [inside[n.GetIdx()] for n in atom.GetNeighbors() if n.GetIdx() in inside]

    def hydrogens(self, position: int) -> int:
        """Hydrogens on ``position`` when nothing is attached to it (the template's hydrogens
        plus the bond orders of the groups the template carries there)."""
        a = self.atoms[position]
        atom = self.template.GetAtomWithIdx(a)
        inside = set(self.atoms)
        extra = sum(int(b.GetBondTypeAsDouble()) for b in atom.GetBonds()
                    if b.GetOtherAtomIdx(a) not in inside)
        return atom.GetTotalNumHs() + extra

    def written_order(self, labels: dict[int, int] | None = None) -> dict[int, int]:
        """Position -> atom index in the molecule parsed back from :meth:`smiles` (``labels``
        as given there)."""
        _, written = self._write(labels)
        return {p: written.index(p) for p in range(self.size) if p in written}

    def smiles(self, labels: dict[int, int] | None = None) -> str:
        """The scaffold as SMILES, unsubstituted; ``labels`` puts a dummy ``[n*]`` on positions."""
        return self._write(labels)[0]

    def _write(self, labels: dict[int, int] | None = None) -> tuple[str, list[int]]:
        labels = labels or {}
        rw = Chem.RWMol()
        index = {}
        for p, a in enumerate(self.atoms):
            src = self.template.GetAtomWithIdx(a)
            atom = Chem.Atom(src.GetAtomicNum())
            atom.SetFormalCharge(src.GetFormalCharge())
            atom.SetIsAromatic(src.GetIsAromatic())
            atom.SetNumExplicitHs(max(0, self.hydrogens(p) - (1 if p in labels else 0)))
            atom.SetNoImplicit(True)
            index[a] = rw.AddAtom(atom)
        for b in self.bonds():
            i, j = index[b.GetBeginAtomIdx()], index[b.GetEndAtomIdx()]
            rw.AddBond(i, j, b.GetBondType())
            if b.GetIsAromatic():
                rw.GetBondBetweenAtoms(i, j).SetIsAromatic(True)
        for p, n in sorted(labels.items()):
            d = Chem.Atom(0)
            d.SetIsotope(n)
            rw.AddBond(index[self.atoms[p]], rw.AddAtom(d), Chem.BondType.SINGLE)
        mol = rw.GetMol()
        mol.UpdatePropertyCache(strict=False)
        smi = Chem.MolToSmiles(mol)
        return smi, ast_order(mol)   # atom i of ``mol`` is position i (dummies come after)


def typed(mol: Chem.Mol) -> Chem.Mol:
    """A copy of ``mol`` whose isotope labels type its atoms for the MCS: the element, and for a
    chain carbon its hybridization, so that a ketone carbon never stands for a CH (the carbonyl
    of a propiophenone is not the benzylic CH of APAAN). Carbons of saturated rings are not
    typed: the ring carbon of 4-piperidone is the same position in its ketals. Atom indices are
    kept."""
    copy = Chem.Mol(mol)
    hyb = {Chem.HybridizationType.SP3: 0, Chem.HybridizationType.SP2: 1,
           Chem.HybridizationType.SP: 2}
    for atom in copy.GetAtoms():
        typed_carbon = atom.GetAtomicNum() == 6 and (atom.GetIsAromatic() or not atom.IsInRing())
        code = hyb.get(atom.GetHybridization(), 3) if typed_carbon else 0
        atom.SetIsotope(atom.GetAtomicNum() * 4 + code)
    return copy


def mcs_atoms(mols: Sequence[Chem.Mol], timeout: float = MCS_TIMEOUT_S) -> tuple[int, str]:
    """Heavy atoms and SMARTS of the maximum common substructure of ``mols`` (atoms compared by
    element and, for carbon, hybridization (:func:`typed`); bond orders compared, rings matched
    only to rings and only whole). The SMARTS matches the :func:`typed` copies."""
    res = rdFMCS.FindMCS([typed(m) for m in mols], atomCompare=rdFMCS.AtomCompare.CompareIsotopes,
                         bondCompare=rdFMCS.BondCompare.CompareOrder, ringMatchesRingOnly=True,
                         completeRingsOnly=True, matchValences=False, timeout=max(1, int(timeout)))
    return res.numAtoms, res.smartsString


def scaffold_ok(size: int, sizes: Sequence[int], mol: Chem.Mol | None = None,
                atoms: Sequence[int] = ()) -> str:
    """Why a common part of ``size`` atoms cannot be a family's scaffold ('' when it can): too
    small, too small a share of the smallest example, or nothing but one all-carbon ring."""
    if size < MIN_SCAFFOLD_ATOMS:
        return f"only {size} heavy atoms in common (at least {MIN_SCAFFOLD_ATOMS} needed)"
    if size < MIN_SHARE * min(sizes):
        return (f"the common part ({size} heavy atoms) is less than half of the smallest "
                f"example ({min(sizes)})")
    if mol is not None and atoms:
        inside = set(atoms)
        ri = mol.GetRingInfo()
        carbocyclic = {a for ring in ri.AtomRings() if set(ring) <= inside
                       and all(mol.GetAtomWithIdx(i).GetSymbol() == "C" for i in ring)
                       for a in ring}
        informative = [a for a in atoms if a not in carbocyclic]
        if len(informative) < 2:
            return "the common part is little more than one carbocyclic ring"
    return ""


def find_scaffold(mols: Sequence[Chem.Mol], timeout: float = MCS_TIMEOUT_S
                  ) -> tuple[Scaffold | None, str]:
    """The trimmed common scaffold of ``mols`` (standardized parents, at least two), or None and
    the reason there is none."""
    if len(mols) < 2:
        return None, "fewer than two examples"
    n, smarts = mcs_atoms(mols, timeout)
    sizes = [m.GetNumHeavyAtoms() for m in mols]
    why = scaffold_ok(n, sizes)
    if why:
        return None, why
    query = Chem.MolFromSmarts(smarts)
    template = mols[0]
    first = typed(template).GetSubstructMatch(query)
    if not first:
        return None, "the common substructure does not map back onto the first example"
    core = set(first)
    matches = _matches(mols, query, first)
    core, matches = _trim(mols, core, matches, first)
    atoms = tuple(a for a in first if a in core)
    order = [first.index(a) for a in atoms]
    maps = tuple(tuple(m[i] for i in order) for m in matches)
    why = scaffold_ok(len(atoms), sizes, template, atoms)
    if why:
        return None, why
    attachments = tuple(_decompose(m, maps[k]) for k, m in enumerate(mols))
    scaffold = _collapse_pendants(Scaffold(template, atoms, maps, attachments, n, tuple(mols)))
    return scaffold, ""


def varying(scaffold: Scaffold) -> set[int]:
    """Positions where the examples carry different groups (or some carry none)."""
    out = set()
    for p in range(scaffold.size):
        keys = {tuple(sorted(a.key for a in scaffold.at(k, p))) for k in range(len(scaffold.mols))}
        if len(keys) > 1:
            out.add(p)
    return out


_MAX_PENDANT = 6


def _collapse_pendants(scaffold: Scaffold) -> Scaffold:
    """Move out of the scaffold a small acyclic part hanging on a heteroatom by a single bond when
    the examples vary inside it: the acyl of an N-acyl or the alkoxycarbonyl of a carbamate is
    then one group on the nitrogen (a C1-C4 alkanoyl group, a C1-C4 alkoxycarbonyl group), as
    legal texts word it, not a carbonyl carrying H, ethyl or cyclopropyl."""
    mol = scaffold.template
    while True:
        vary = varying(scaffold)
        inside = {a: p for p, a in enumerate(scaffold.atoms)}
        drop: set[int] = set()
        for p, a in enumerate(scaffold.atoms):
            atom = mol.GetAtomWithIdx(a)
            if atom.GetSymbol() not in ("N", "O", "S"):
                continue
            for b in atom.GetBonds():
                c = b.GetOtherAtomIdx(a)
                if c not in inside or b.IsInRing() or b.GetBondType() != Chem.BondType.SINGLE:
                    continue
                side = _side(mol, c, set(range(mol.GetNumAtoms())) - set(inside) | {a})
                side &= set(inside)
                if (a in side or len(side) > _MAX_PENDANT
                        or any(mol.GetAtomWithIdx(i).IsInRing() for i in side)
                        or not any(inside[i] in vary for i in side)):
                    continue
                drop |= side
        if not drop:
            return scaffold
        keep = [p for p, a in enumerate(scaffold.atoms) if a not in drop]
        sizes = [m.GetNumHeavyAtoms() for m in scaffold.mols]
        if scaffold_ok(len(keep), sizes, mol, [scaffold.atoms[p] for p in keep]):
            return scaffold
        scaffold = rescaffold(scaffold, keep)


def rescaffold(scaffold: Scaffold, keep: Sequence[int]) -> Scaffold:
    """The scaffold reduced to the positions ``keep`` (in order), the examples decomposed again."""
    atoms = tuple(scaffold.atoms[p] for p in keep)
    maps = tuple(tuple(m[p] for p in keep) for m in scaffold.matches)
    attachments = tuple(_decompose(mol, maps[k]) for k, mol in enumerate(scaffold.mols))
    return Scaffold(scaffold.template, atoms, maps, attachments, scaffold.mcs_atoms,
                    scaffold.mols)


def relaxed_query(scaffold: Scaffold, substituted: Sequence[int] = ()
                  ) -> tuple[Chem.Mol, list[int]]:
    """The scaffold as a query that allows anything on any atom (elements, aromaticity, charges
    and bonds kept): where a molecule carries the scaffold at all; the positions in
    ``substituted`` must carry something. Also, per scaffold position, the query atom standing
    for it."""
    mol = scaffold.template
    symbols = []
    more = {scaffold.atoms[p]: len(scaffold.neighbours(p)) for p in substituted}
    for atom in mol.GetAtoms():
        charge = atom.GetFormalCharge()
        degree = (f"&!D{more[atom.GetIdx()]}&!D{more[atom.GetIdx()] - 1}"
                  if atom.GetIdx() in more else "")
        symbols.append(f"[#{atom.GetAtomicNum()}&{'a' if atom.GetIsAromatic() else 'A'}"
                       f"&{'+' if charge >= 0 else '-'}{abs(charge)}{degree}]")
    bonds = [bond_smarts(b) for b in mol.GetBonds()]
    smarts = Chem.MolFragmentToSmiles(mol, atomsToUse=list(scaffold.atoms),
                                      bondsToUse=[b.GetIdx() for b in scaffold.bonds()] or None,
                                      atomSymbols=symbols, bondSymbols=bonds,
                                      allBondsExplicit=True, canonical=False,
                                      rootedAtAtom=scaffold.atoms[0], isomericSmiles=False)
    written = list(ast_order(mol))
    return Chem.MolFromSmarts(smarts), [written.index(a) for a in scaffold.atoms]


def ast_order(mol: Chem.Mol) -> list[int]:
    """The atoms in the order the last SMILES written from ``mol`` lists them."""
    return [int(x) for x in mol.GetProp("_smilesAtomOutputOrder").strip("[],").split(",") if x]


def decompose_on(scaffold: Scaffold, mol: Chem.Mol) -> tuple[Attachment, ...]:
    """The groups ``mol`` carries on the scaffold (positions as in ``scaffold``), or () when it
    does not hold the scaffold."""
    query, order = relaxed_query(scaffold)
    hit = mol.GetSubstructMatch(query)
    if not hit:
        return ()
    match = tuple(hit[order[p]] for p in range(scaffold.size))
    return _decompose(mol, match)


def _matches(mols: Sequence[Chem.Mol], query: Chem.Mol, first: tuple[int, ...]
             ) -> list[tuple[int, ...]]:
    """One match of ``query`` per molecule, chosen so substituted query atoms coincide with those
    of the examples before (symmetric rings: the 4-fluoro and the 4-chloro on one position)."""
    used: set[int] = set()
    out = []
    for k, mol in enumerate(mols):
        options = (first,) if k == 0 else typed(mol).GetSubstructMatches(
            query, uniquify=False, useChirality=False, maxMatches=_MAX_MATCHES)
        best, best_score = None, None
        for m in options:
            inside = set(m)
            subst = {q for q, a in enumerate(m)
                     if any(n.GetIdx() not in inside for n in mol.GetAtomWithIdx(a).GetNeighbors())}
            score = (len(subst - used), sorted(subst))
            if best_score is None or score < best_score:
                best, best_score = m, score
        assert best is not None
        used |= {q for q, a in enumerate(best)
                 if any(n.GetIdx() not in set(best) for n in mol.GetAtomWithIdx(a).GetNeighbors())}
        out.append(tuple(best))
    return out


def _side(mol: Chem.Mol, start: int, blocked: set[int]) -> set[int]:
    """Atoms reachable from ``start`` without entering ``blocked``."""
    seen, todo = {start}, [start]
    while todo:
        a = todo.pop()
        for n in mol.GetAtomWithIdx(a).GetNeighbors():
            i = n.GetIdx()
            if i not in seen and i not in blocked:
                seen.add(i)
                todo.append(i)
    return seen


def _branch_key(mol: Chem.Mol, atom: int, core: set[int]) -> str:
    """Key of everything hanging off scaffold atom ``atom`` outside the scaffold, with the atom."""
    side = _side(mol, atom, core - {atom})
    return Chem.MolFragmentToSmiles(mol, atomsToUse=sorted(side), rootedAtAtom=atom,
                                    isomericSmiles=False, canonical=True)


def _trim(mols: Sequence[Chem.Mol], core: set[int], matches: list[tuple[int, ...]],
          first: tuple[int, ...]) -> tuple[set[int], list[tuple[int, ...]]]:
    """Move varying leaves out of the scaffold (see the module docstring): query positions are
    indices into ``first``; ``core`` holds template atoms."""
    qcore = set(range(len(first)))
    changed = True
    while changed:
        changed = False
        for q in sorted(qcore):
            if len(qcore) <= MIN_SCAFFOLD_ATOMS:
                break
            nbrs = [p for p in qcore if p != q and mols[0].GetBondBetweenAtoms(first[q], first[p])]
            if len(nbrs) != 1:
                continue
            links = [mols[k].GetBondBetweenAtoms(matches[k][q], matches[k][nbrs[0]])
                     for k in range(len(mols))]
            if any(b is None or b.IsInRing() or b.GetBondType() != Chem.BondType.SINGLE
                   for b in links):
                continue
            in_core = [{matches[k][p] for p in qcore} for k in range(len(mols))]
            keys = {_branch_key(mols[k], matches[k][q], in_core[k]) for k in range(len(mols))}
            if len(keys) < 2:
                continue  # the same in every example: stays in the scaffold
            if _alkyl_everywhere(mols, matches, q, in_core) or _differs_in_kind(
                    mols, matches, q, in_core):
                qcore.discard(q)
                changed = True
        if not changed:
            side = _pendant_differing(mols, matches, first, qcore)
            if side:
                qcore -= side
                changed = True
    return {first[q] for q in qcore}, matches


_MAX_PENDANT_TRIM = 4


def _pendant_differing(mols: Sequence[Chem.Mol], matches: list[tuple[int, ...]],
                       first: tuple[int, ...], qcore: set[int]) -> set[int]:
    """A small acyclic part of the scaffold hanging by a single bond from a carbon, on whose first
    atom the examples carry groups of different kinds (an amide's N against an ester's O on one
    carbonyl carbon): the whole part then leaves the scaffold, so the position is where it hangs
    (a carbamoyl or an alkoxycarbonyl group on the carbon). Empty when there is none."""
    template = mols[0]
    for a in sorted(qcore):
        for q in sorted(qcore):
            bond = template.GetBondBetweenAtoms(first[a], first[q])
            if (bond is None or bond.IsInRing() or bond.GetBondType() != Chem.BondType.SINGLE
                    or template.GetAtomWithIdx(first[q]).GetSymbol() != "C"):
                continue  # a heteroatom stays: it is the position its groups are named on
            side, todo = {q}, [q]
            while todo:
                x = todo.pop()
                for y in qcore:
                    if y not in side and y != a and template.GetBondBetweenAtoms(first[x],
                                                                                 first[y]):
                        side.add(y)
                        todo.append(y)
            if (a in side or len(side) > _MAX_PENDANT_TRIM
                    or len(qcore) - len(side) < MIN_SCAFFOLD_ATOMS
                    or any(template.GetAtomWithIdx(first[x]).IsInRing() for x in side)):
                continue
            kinds = set()
            beyond = False
            for k, mol in enumerate(mols):
                inside = {matches[k][p] for p in qcore}
                sig = []
                for x in side:
                    atom = mol.GetAtomWithIdx(matches[k][x])
                    for b in atom.GetBonds():
                        o = b.GetOtherAtomIdx(atom.GetIdx())
                        if o not in inside:
                            beyond |= x != q     # groups further out: not this rule's case
                            sig.append((mol.GetAtomWithIdx(o).GetSymbol(), str(b.GetBondType())))
                if sig:
                    kinds.add(tuple(sorted(sig)))
            if len(kinds) > 1 and not beyond:
                return side
    return set()


def _alkyl_everywhere(mols: Sequence[Chem.Mol], matches: list[tuple[int, ...]], q: int,
                      in_core: list[set[int]]) -> bool:
    """Scaffold atom ``q`` and all it carries: a saturated acyclic hydrocarbon in every example."""
    for k, mol in enumerate(mols):
        a = matches[k][q]
        for i in _side(mol, a, in_core[k] - {a}):
            atom = mol.GetAtomWithIdx(i)
            if (atom.GetSymbol() != "C" or atom.IsInRing() or atom.GetIsAromatic()
                    or atom.GetFormalCharge()
                    or any(b.GetBondType() != Chem.BondType.SINGLE for b in atom.GetBonds())):
                return False
    return True


def _differs_in_kind(mols: Sequence[Chem.Mol], matches: list[tuple[int, ...]], q: int,
                     in_core: list[set[int]]) -> bool:
    """The groups on scaffold atom ``q`` differ in kind between examples: one is bonded by a
    double or triple bond, or an example carries more than one group there."""
    for k, mol in enumerate(mols):
        a = mol.GetAtomWithIdx(matches[k][q])
        outside = [b for b in a.GetBonds() if b.GetOtherAtomIdx(a.GetIdx()) not in in_core[k]]
        if len(outside) > 1 or any(b.GetBondType() != Chem.BondType.SINGLE for b in outside):
            return True
    return False


def _decompose(mol: Chem.Mol, match: tuple[int, ...]) -> tuple[Attachment, ...]:
    """The groups ``mol`` carries on the scaffold atoms ``match`` (position p = match[p])."""
    inside = {a: p for p, a in enumerate(match)}
    seen: set[int] = set()
    out = []
    for p, a in enumerate(match):
        for n in mol.GetAtomWithIdx(a).GetNeighbors():
            start = n.GetIdx()
            if start in inside or start in seen:
                continue
            frag = _side(mol, start, set(inside))
            seen |= frag
            out.append(_attachment(mol, frag, inside))
    return tuple(out)


def _attachment(mol: Chem.Mol, frag: set[int], inside: dict[int, int]) -> Attachment:
    """The fragment ``frag`` as an Attachment: one dummy per scaffold atom it is bonded to (bonded
    twice to one atom, as a spiro ketal ring: one dummy closing the ring)."""
    rw = Chem.RWMol()
    index: dict[int, int] = {}
    for i in sorted(frag):
        src = mol.GetAtomWithIdx(i)
        atom = Chem.Atom(src.GetAtomicNum())
        atom.SetFormalCharge(src.GetFormalCharge())
        atom.SetIsAromatic(src.GetIsAromatic())
        atom.SetNumExplicitHs(src.GetTotalNumHs())
        atom.SetNoImplicit(True)
        index[i] = rw.AddAtom(atom)
    for b in mol.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        if i in index and j in index:
            _copy_bond(rw, index[i], index[j], b)
    dummies: dict[int, int] = {}  # scaffold position -> dummy
    counts: dict[int, int] = {}
    for i in sorted(frag):
        for n in mol.GetAtomWithIdx(i).GetNeighbors():
            j = n.GetIdx()
            if j in inside:
                p = inside[j]
                if p not in dummies:
                    dummies[p] = rw.AddAtom(Chem.Atom(0))
                _copy_bond(rw, index[i], dummies[p], mol.GetBondBetweenAtoms(i, j))
                counts[p] = counts.get(p, 0) + 1
    keymol = rw.GetMol()
    keymol.UpdatePropertyCache(strict=False)
    key = fragment_key(keymol)
    # the exact SMARTS joins dummies standing for bonded scaffold atoms, as they are in the ring
    order = list(dummies)
    for x, p1 in enumerate(order):
        for p2 in order[x + 1:]:
            b = mol.GetBondBetweenAtoms(_atom_of(inside, p1), _atom_of(inside, p2))
            if b is not None:
                _copy_bond(rw, dummies[p1], dummies[p2], b)
    tokmol = rw.GetMol()
    tokmol.UpdatePropertyCache(strict=False)
    tokens = tuple(exact_token(tokmol, dummies[p]) for p in order)
    return Attachment(tuple(order), key, tokens, len(frag), tuple(counts[p] for p in order))


def _copy_bond(rw: Chem.RWMol, i: int, j: int, bond: Chem.Bond) -> None:
    rw.AddBond(i, j, bond.GetBondType())
    if bond.GetIsAromatic():
        rw.GetBondBetweenAtoms(i, j).SetIsAromatic(True)


def _atom_of(inside: dict[int, int], position: int) -> int:
    for a, p in inside.items():
        if p == position:
            return a
    raise KeyError(position)


def cluster(mols: Sequence[Chem.Mol], timeout: float = 1.0,
            share: float = CLUSTER_SHARE) -> list[list[int]]:
    """Split ``mols`` into families: complete-linkage clusters of the pairwise common-substructure
    share (heavy atoms in common / heavy atoms of the smaller one), largest first."""
    n = len(mols)
    sizes = [m.GetNumHeavyAtoms() for m in mols]
    sim = [[1.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            common, _ = mcs_atoms([mols[i], mols[j]], timeout)
            sim[i][j] = sim[j][i] = common / max(1, min(sizes[i], sizes[j]))
    groups = [[i] for i in range(n)]
    while True:
        best, pair = share, None
        for x in range(len(groups)):
            for y in range(x + 1, len(groups)):
                link = min(sim[i][j] for i in groups[x] for j in groups[y])
                if link >= best and (pair is None or link > best):
                    best, pair = link, (x, y)
        if pair is None:
            break
        x, y = pair
        groups[x] = sorted(groups[x] + groups[y])
        del groups[y]
    return sorted(groups, key=lambda g: (-len(g), g[0]))
