"""Gates: cheap substructure queries a molecule must match before a rule search can reach a target.

Searching every candidate with every rule to depth 2 is most of the cost of a screen, and for
nearly every molecule of a real library it finds nothing. A gate answers first, with a handful of
substructure queries, whether any route of at most two steps *could* end at a target; when none
matches, the search is skipped, and the answer is the same.

Why it is exact rests on what the rules can do, checked on the rule data by `gate_problems`:

* An unmasking rule (hydrolysis, decarboxylation, deprotection, redox) only removes atoms, changes
  bond orders and opens rings. It never makes a carbon, a non-terminal heteroatom, a new bond or
  a ring, and a carbon that bears a heteroatom in the product bore one in the substrate (the
  carbonyl of a hydrolysed ester or nitrile, the carbon of a reduced ketone). So the product's
  *refined skeleton* (its carbons and non-terminal heteroatoms, elements kept; aromatic bonds
  aromatic, ring bonds in rings, other bonds of any order; "bears a heteroatom" on each carbon that
  carried a terminal heteroatom) is found inside the substrate, and inside every earlier substrate
  of an unmasking chain.
* A forward rule (a reagent step) adds its reagent's atoms to atoms that match its substrate
  template. Run backwards on a target, it gives the part of the substrate that the target shows
  (the *substrate core*: the target less the reagent's atoms, the changed bonds as the substrate
  template has them, the leaving group's heteroatoms as "bears a heteroatom").

For routes of at most two steps (u: unmasking, f: forward) a candidate reaching target T must
contain the refined skeleton of T (routes u, u-u), or that of a substrate core of T (u-f), or match
a forward rule's substrate template itself (f, f-u, f-f). `RouteGate` holds those queries. A
forward rule that passes the unmasking rules' checks (it makes no carbon and no bond and gives
no carbon a heteroatom it did not bear: a primary alcohol oxidized to its acid, a lactone
opened, an amine put where a bromide was) keeps the skeleton as they do, so a route beginning
with it is gated by the skeletons and cores, and the forward test asks only the other rules'
templates.

Aromaticity: the skeleton's aromatic bonds are taken as the rules leave them (no rule makes or
breaks an aromatic ring in its substrate). Where `aromatic_problems` finds that no unmasking
rule can change an atom's aromaticity, the targets' skeletons also type their other atoms as
aliphatic (`Skeleton.typed`): an aroyl group is then not a masked acetyl. A substrate core then
types the atoms its forward rule's substrate template types (`Skeleton.kinds`: a cyclohexane is
not the benzo ring of methaqualone's substrate), the others not (the rule may close an aromatic
ring). The tests and
``benchmarks/verify_drug_gate.py`` compare gated and ungated screens.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import accumulate, permutations
from typing import Any

from rdkit import Chem
from rdkit.Chem import rdChemReactions

from precursor_screen.rules.fastgate import QuerySet

__all__ = ["RouteGate", "GateSet", "refined_skeleton", "substrate_cores", "gate_problems",
           "flag_floor", "rules_keep_skeletons", "skeleton_gates", "surely_aliphatic",
           "surely_aromatic", "without_recursion", "recursive_parts", "split_top", "HETERO"]

HETERO = "$(*~[!#6;!#1])"
"""Atom primitive: bears a heteroatom (any element but carbon and hydrogen)."""

POSSIBLE_KEPT = 4096
"""Answers a `QueryNeeds` remembers (`QueryNeeds.possible`) before it starts afresh."""
MERGE_SIZE = 14
"""A query for targets of at least this many heavy atoms may absorb an implied query for larger
targets: candidates of up to ~30 atoms (a screening library) must be tested against both anyway,
so one test serves. Smaller targets keep their own queries, which large candidates skip."""

_NUM = re.compile(r"Atom(?:AtomicNum|Type) (\d+) = val")


def atom_elements(atom: Chem.Atom) -> frozenset[int] | None:
    """The elements a (query) atom can match; None when it does not say (a wildcard, a negation).

    Read from RDKit's query tree: OR takes the union, AND the intersection of its parts that name
    elements; an atom that is only an OR of recursive SMARTS takes their first atoms' elements.
    """
    if not atom.HasQuery():
        return frozenset({atom.GetAtomicNum()}) if atom.GetAtomicNum() > 0 else None
    lines = atom.DescribeQuery().splitlines()
    found = _fold_query(lines, 0, _elements_node)[0] if lines else None
    if found is None:
        found = _recursive_elements(atom.GetSmarts())
    return found


def relaxed_smarts(query: Chem.Mol, degrees: bool = True) -> str:
    """SMARTS of ``query`` with each atom reduced to its elements and (``degrees``) the most
    neighbours it may have (`max_degree`; recursive SMARTS and the rest dropped) and its bonds as
    written: every match of ``query`` is a match of this, so a molecule failing it fails
    ``query``; simple enough for the C matcher (`precursor_screen.rules.fastgate`). The rule
    engine screens its reactions with these (many rules share one: the carbamate masks, the
    ester masks, tested once for all).

    The neighbour bounds hold for molecules without hydrogen atoms (a deuterium written
    ``[2H]`` is a neighbour to RDKit's ``D``): the C matcher does not answer for those, and
    RDKit is given the form without them (``degrees=False``).

    >>> relaxed_smarts(Chem.MolFromSmarts("[C&X4&H2:1]-[O&X2&H1:2]"))
    '[#6;D0,D1,D2]-[#8;D0,D1]'
    >>> relaxed_smarts(Chem.MolFromSmarts("[C&X4&H2:1]-[O&X2&H1:2]"), degrees=False)
    '[#6]-[#8]'
    """
    symbols = []
    for atom in query.GetAtoms():
        z = atom_elements(atom)
        most = max_degree(atom) if degrees else None
        degree = ";" + ",".join(f"D{k}" for k in range(most + 1)) if most is not None else ""
        if z is None or 0 in z:
            symbols.append(f"[*{degree}]" if degree else "*")
        else:
            symbols.append("[" + ",".join(f"#{n}" for n in sorted(z)) + degree + "]")
    bonds = [b.GetSmarts() or "~" for b in query.GetBonds()]
    return Chem.MolFragmentToSmiles(query, atomsToUse=list(range(query.GetNumAtoms())),
                                    atomSymbols=symbols, bondSymbols=bonds or None,
                                    isomericSmiles=False, allBondsExplicit=True)


_COUNT = re.compile(r"([XDH])(\d*)")


def max_degree(atom: Chem.Atom) -> int | None:
    """The most heavy-atom neighbours an atom matching this query atom can have (in a molecule
    without explicit hydrogens), from the primitives AND-ed into it: ``D<n>`` and ``X<n>``
    bound them by n, ``X<x>`` with ``H<h>`` by x - h, ``H<n>`` on a carbon by 4 - n (3 - n
    aromatic); None when it says nothing
    of them (ORs, negations and recursive SMARTS are not read).

    >>> [max_degree(a) for a in Chem.MolFromSmarts("[C&X4&H2][O&X2&H1][c&H1][N&X3][#6;D2]C").GetAtoms()]
    [2, 1, 2, 3, 2, None]
    """
    if not atom.HasQuery():
        return None
    text = atom.GetSmarts()
    body = re.sub(r":\d+$", "", text[1:-1] if text.startswith("[") else text)
    most: int | None = None
    hydrogens, total, carbon, aromatic = None, None, False, False
    for low in split_top(body, ";"):
        if "," in _top_level(low):
            continue                    # an OR says nothing sure
        for part in split_top(low, "&"):
            found = _COUNT.fullmatch(part)
            if found:
                n = int(found.group(2) or 1)
                if found.group(1) == "H":
                    hydrogens = n
                else:
                    most = n if most is None else min(most, n)
                    if found.group(1) == "X":
                        total = n
            elif part in ("C", "#6"):
                carbon = True
            elif part == "c":
                carbon = aromatic = True
    if hydrogens is not None and (carbon or total is not None):
        by_hydrogens = (total if total is not None else 3 if aromatic else 4) - hydrogens
        most = by_hydrogens if most is None else min(most, by_hydrogens)
    return most if most is None or most >= 0 else 0


def recursion_needs(smarts: str) -> list[list[str]]:
    """What the recursive SMARTS of a query demand of any molecule it matches: for each
    ``$(X)`` AND-ed into an atom, ``[X]`` (X is then in the molecule, at that atom); for an OR
    whose every alternative AND-s one in, ``[X1, X2, ...]`` (one of them is). Negated ones and
    ORs with a plain alternative demand nothing and are left out.

    >>> recursion_needs("[C&X3&R1&$(C1CC[N&X3]CC1):1]=[O&X1]")
    [['C1CC[N&X3]CC1']]
    >>> recursion_needs("[O&H1]-[#6;$(c1ccccc1),$(C1CCCCC1)]-[!$(*=O)]")
    [['c1ccccc1', 'C1CCCCC1']]
    """
    needs = []
    for body in _bracket_atoms(smarts):
        body = re.sub(r":\d+$", "", body)
        for low in split_top(body, ";"):
            if "$(" not in low:
                continue
            alternatives = split_top(low, ",") if "," in _top_level(low) else [low]
            inner = [[x[2:-1] for x in split_top(alternative, "&") if x.startswith("$(")]
                     for alternative in alternatives]
            if len(alternatives) == 1:
                needs.extend([x] for x in inner[0])          # each AND-ed one
            elif all(inner):
                needs.append([x[0] for x in inner])          # one of the OR's
    return needs


def bracket_segments(smarts: str) -> Iterator[tuple[bool, str]]:
    """A SMARTS cut into its outermost bracket atoms and the text between them, in order:
    ``(True, body without the brackets)`` or ``(False, text)``.

    >>> list(bracket_segments("[C;$(C=O)]-N"))
    [(True, 'C;$(C=O)'), (False, '-N')]
    """
    i = 0
    while i < len(smarts):
        if smarts[i] != "[":
            j = smarts.find("[", i)
            j = len(smarts) if j < 0 else j
            yield False, smarts[i:j]
            i = j
            continue
        depth, j = 0, i
        for j in range(i, len(smarts)):
            depth += (smarts[j] == "[") - (smarts[j] == "]")
            if depth == 0:
                break
        yield True, smarts[i + 1:j]
        i = j + 1


def _bracket_atoms(smarts: str) -> list[str]:
    """The bodies (without brackets) of a SMARTS's bracket atoms, outermost only."""
    return [text for bracket, text in bracket_segments(smarts) if bracket]


class QueryNeeds:
    """What each of a list of RDKit queries demands of a molecule, in the C matcher's simple
    terms (`precursor_screen.rules.fastgate`): the query relaxed (`relaxed_smarts`), and each
    pattern its recursive SMARTS demand (`recursion_needs`), relaxed. `found` asks them all in
    one call: a query some need of which is not in the molecule cannot match it
    (`may_match` is False), and RDKit need not be asked. RDKit works out a recursive SMARTS on
    every atom of a molecule before it tries a match, so asking it only where the needs are met
    saves most of its work."""

    def __init__(self, queries: Sequence[Chem.Mol], whole: bool = True) -> None:
        self.queries = list(queries)
        self.whole = whole
        relaxed: list[Chem.Mol] = []
        self.masks: list[list[int]] = []      # per query: per need, the bits of its alternatives
        for query in self.queries:
            needs = [[query]] if whole else []   # not whole: only what its recursion demands
            needs += [[_query(x) for x in alternatives]
                      for alternatives in recursion_needs(Chem.MolToSmarts(query))]
            masks = []
            for alternatives in needs:
                mask = 0
                for q in alternatives:
                    mask |= 1 << len(relaxed)
                    relaxed.append(_query(relaxed_smarts(q)))
                masks.append(mask)
            self.masks.append(masks)
        self.fast = QuerySet.of_queries(relaxed)
        self._possible: dict[int, tuple[int, ...]] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        return (QueryNeeds, (self.queries, self.whole))

    def found(self, mol: Chem.Mol, smiles: str | None) -> int | None:
        """The needs in ``mol`` (C matcher bits, for `may_match`); None when the C matcher
        cannot answer (off, no ``smiles``, a molecule it cannot read). ``smiles`` must be
        ``Chem.MolToSmiles(mol)``."""
        return self.fast.matches(mol, smiles)

    def may_match(self, found: int, k: int) -> bool:
        """False when query *k* cannot match the molecule whose needs are ``found``."""
        for mask in self.masks[k]:
            if not found & mask:
                return False
        return True

    def possible(self, found: int) -> tuple[int, ...]:
        """The queries that may match the molecule whose needs are ``found`` (`may_match`), in
        order; remembered by ``found``: molecules share few distinct answers (the first 5,000 MOSES
        molecules give the protecting groups' needs 56)."""
        out = self._possible.get(found)
        if out is None:
            out = tuple(k for k in range(len(self.masks)) if self.may_match(found, k))
            if len(self._possible) >= POSSIBLE_KEPT:
                self._possible.clear()
            self._possible[found] = out
        return out


class ForwardTest:
    """"Does a molecule match some forward rule's substrate template?" (`RouteGate.forward_ok`).

    RDKit asks the templates without recursive SMARTS as one bundle, and each other one only
    after its form without them (`without_recursion`), which it implies (~10-20 us for the
    ergoline and morphinan templates otherwise). When the caller gives the molecule's SMILES,
    the C matcher first answers what each template demands (`QueryNeeds`): RDKit is asked
    neither a template whose needs are not all in the molecule nor the bundle when none of its
    templates can match. Same answers: the C path only leaves out questions whose answer is no.
    """

    def __init__(self, queries: Sequence[Chem.Mol]) -> None:
        self.queries = list(queries)
        plain = [q for q in self.queries if "$(" not in Chem.MolToSmarts(q)]
        guarded = [q for q in self.queries if "$(" in Chem.MolToSmarts(q)]
        self._bundle = _bundle(plain)
        self._guarded = tuple((_query(without_recursion(Chem.MolToSmarts(q))), q)
                              for q in guarded)
        self.needs = QueryNeeds(plain + guarded)       # the plain ones, then the others
        # a plain template's only need is itself relaxed: one bit each, the first ones
        self._plain_bits = (1 << len(plain)) - 1
        self._first_guarded = len(plain)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ForwardTest, (self.queries,))

    def __call__(self, mol: Chem.Mol, smiles: str | None = None) -> bool:
        """True when ``mol`` matches some template; ``smiles``: ``Chem.MolToSmiles(mol)`` when
        the caller has it (the C path)."""
        if not self.queries:       # the listed substances' gates: no forward rule
            return False
        found = self.needs.found(mol, smiles)
        if self._bundle is not None and (found is None or found & self._plain_bits) \
                and mol.HasSubstructMatch(self._bundle):
            return True
        for k, (guard, query) in enumerate(self._guarded, self._first_guarded):
            if found is not None and not self.needs.may_match(found, k):
                continue
            if mol.HasSubstructMatch(guard) and mol.HasSubstructMatch(query):
                return True
        return False


def _fold_query(lines: list[str], start: int, node: Callable[[str, list[Any]], Any]
                ) -> tuple[Any, int]:
    """Fold RDKit's query description (``DescribeQuery``, one node a line, children indented)
    from the node at ``lines[start]``: ``node(head, values of its children)``; return the value
    and the next line."""
    depth = len(lines[start]) - len(lines[start].lstrip())
    head = lines[start].strip()
    children, i = [], start + 1
    while i < len(lines) and len(lines[i]) - len(lines[i].lstrip()) > depth:
        value, i = _fold_query(lines, i, node)
        children.append(value)
    return node(head, children), i


def _elements_node(head: str, children: list[frozenset[int] | None]) -> frozenset[int] | None:
    """A query node's elements (`atom_elements`) from its children's."""
    if head.startswith("AtomOr"):
        if any(c is None for c in children) or not children:
            return None
        return frozenset().union(*children)
    if head.startswith("AtomAnd"):
        named = [c for c in children if c is not None]
        if not named:
            return None
        out = named[0]
        for c in named[1:]:
            out = out & c
        return out
    m = _NUM.fullmatch(head)
    return frozenset({int(m.group(1)) % 1000}) if m else None


def recursive_parts(smarts: str) -> list[Chem.Mol] | None:
    """The patterns of an atom written ``[$(...),$(...)]`` (its atom map aside); None when the
    atom is anything else or a pattern does not parse."""
    body = smarts[1:-1] if smarts.startswith("[") and smarts.endswith("]") else ""
    out = []
    for part in split_top(re.sub(r":\d+$", "", body), ","):
        if not (part.startswith("$(") and part.endswith(")")):
            return None
        inner = Chem.MolFromSmarts(part[2:-1])
        if inner is None or inner.GetNumAtoms() == 0:
            return None
        out.append(inner)
    return out


def _recursive_elements(smarts: str) -> frozenset[int] | None:
    """Elements of ``[$(...),$(...)]`` from each recursive pattern's first atom."""
    parts = recursive_parts(smarts)
    if parts is None:
        return None
    out: set[int] = set()
    for inner in parts:
        z = atom_elements(inner.GetAtomWithIdx(0))
        if z is None:
            return None
        out |= z
    return frozenset(out)


def _surely_hetero(atom: Chem.Atom) -> bool:
    z = atom_elements(atom)
    return z is not None and not (z & {0, 1, 6})


def flag_floor(n_atoms: int, min_kept_fraction: float, max_removed_atoms: int) -> float:
    """Fewest heavy atoms a target needs for a route from a candidate of ``n_atoms`` to raise a
    flag: from a smaller one, less than ``min_kept_fraction`` of the candidate is kept after more
    than ``max_removed_atoms`` came off, and such a route scores 0."""
    return min(min_kept_fraction * n_atoms, n_atoms - max_removed_atoms)


# -- refined skeletons ---------------------------------------------------------------------------

@dataclass
class _Graph:
    """A small labelled graph: elements (None: any), bonds with a symbol, forced constraints."""

    elements: list[int | None]
    hetero_unknown: list[bool]                      # element unknown but surely a heteroatom
    bonds: dict[tuple[int, int], str]               # (i, j) i < j -> ":" | "!:" | "~" | "-" | "="
    bears_hetero: set[int] = field(default_factory=set)
    kinds: dict[int, str] = field(default_factory=dict)   # atom -> "a" | "A" (`Skeleton.kinds`)

    def neighbours(self, i: int) -> list[int]:
        return [b if a == i else a for a, b in self.bonds if i in (a, b)]


def _graph_of(mol: Chem.Mol) -> _Graph:
    elements: list[int | None] = []
    unknown: list[bool] = []
    for atom in mol.GetAtoms():
        z = atom_elements(atom) if atom.HasQuery() else frozenset({atom.GetAtomicNum()})
        if z is not None and len(z) == 1:
            elements.append(next(iter(z)))
            unknown.append(False)
        else:
            elements.append(None)
            unknown.append(z is not None and not (z & {0, 1, 6}))
    bonds = {}
    for b in mol.GetBonds():
        i, j = sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))
        aromatic = b.GetIsAromatic() or b.GetBondType() == Chem.BondType.AROMATIC
        bonds[(i, j)] = ":" if aromatic else "!:"
    return _Graph(elements, unknown, bonds)


def _is_hetero(g: _Graph, i: int) -> bool:
    z = g.elements[i]
    return (z is not None and z not in (0, 1, 6)) or g.hetero_unknown[i]


@dataclass(frozen=True)
class Skeleton:
    """A refined skeleton: atom labels (element or None, unknown heteroatom, bears a heteroatom)
    and bonds (ends, order symbol ``:``/``!:``/``~``/``-``/``=``/``#``, in a ring). ``typed``:
    each atom also aromatic or not as in the target (an atom is aromatic when it has an
    aromatic bond), for rules that never change an atom's aromaticity (`aromatic_problems`);
    else an atom of the target outside aromatic rings may be aromatic in the molecule."""

    atoms: tuple[tuple[int | None, bool, bool], ...]
    bonds: tuple[tuple[int, int, str, bool], ...]
    typed: bool = False
    kinds: tuple[str, ...] = ()

    def aromatic_atoms(self) -> frozenset[int]:
        """The atoms with an aromatic bond."""
        return frozenset(i for a, b, order, _ring in self.bonds if order == ":" for i in (a, b))

    def atom_kinds(self) -> tuple[str, ...]:
        """Each atom's kind: ``"a"`` aromatic, ``"A"`` aliphatic, ``""`` either. A typed
        skeleton types every atom (aromatic when it has an aromatic bond); another, only the
        atoms ``kinds`` names (a substrate core: the atoms its forward rule's template types,
        `substrate_cores`)."""
        if self.typed:
            aromatic = self.aromatic_atoms()
            return tuple("a" if i in aromatic else "A" for i in range(len(self.atoms)))
        return self.kinds or ("",) * len(self.atoms)

    def smarts(self, test: bool = False) -> str:
        """The query; ``test=True`` gives the form matched against `rep` to prune implied ones."""
        symbols = []
        kinds = self.atom_kinds()
        for i, (z, unknown, bears) in enumerate(self.atoms):
            if z is None:
                base = ("!#6;!#1;!3*" if test else "!#6;!#1") if unknown else "*"
            else:
                base = f"#{z}"
            # after the heteroatom primitive, which `_labelled` rewrites as "#6;" + HETERO; a
            # test query's typed atom matches only a typed atom of `rep` (charge 0)
            kind = (f";{kinds[i]};+0" if test else f";{kinds[i]}") if kinds[i] else ""
            if bears:
                het = "$([1#6]),$(*~[!#6;!#1;!3*])" if test else HETERO
                symbols.append(f"[{base};{het}{kind}]")
            else:
                symbols.append("*" if base == "*" and not kind else f"[{base}{kind}]")
        bond_symbols = []
        for _a, _b, order, ring in self.bonds:
            sym = {"!:": "$,-,=,#", ":": ":", "~": "~", "-": "-", "=": "=", "#": "#"}[order] \
                if test else order
            if ring:
                sym = "@" if order == "~" else f"{sym};@"
            bond_symbols.append(sym)
        mol = self._graph()
        return Chem.MolFragmentToSmiles(mol, atomsToUse=list(range(mol.GetNumAtoms())),
                                        atomSymbols=symbols, bondSymbols=bond_symbols or None,
                                        isomericSmiles=False, allBondsExplicit=True)

    def _graph(self) -> Chem.RWMol:
        rw = Chem.RWMol()
        for _ in self.atoms:
            rw.AddAtom(Chem.Atom(0))
        for a, b, _order, _ring in self.bonds:
            rw.AddBond(a, b, Chem.BondType.SINGLE)
        return rw

    def rep(self) -> Chem.Mol:
        """A stand-in molecule: a test query of another skeleton that matches it is implied by
        this one (labels coded as elements, isotopes and bond types, an untyped atom as a
        charged one, which no typed test atom matches; see `smarts(test=True)`)."""
        rw = Chem.RWMol()
        kinds = self.atom_kinds()
        for i, (z, unknown, bears) in enumerate(self.atoms):
            atom = Chem.Atom(z if z is not None else 0)
            if not kinds[i]:
                atom.SetFormalCharge(1)
            if z is None:
                atom.SetIsotope(2 if unknown else 3)
            elif bears and z == 6:
                atom.SetIsotope(1)
            atom.SetNoImplicit(True)
            if kinds[i] == "a":     # read by a typed test query
                atom.SetIsAromatic(True)
            rw.AddAtom(atom)
        kinds = {":": Chem.BondType.AROMATIC, "!:": Chem.BondType.QUADRUPLE,
                 "~": Chem.BondType.DATIVE, "-": Chem.BondType.SINGLE,
                 "=": Chem.BondType.DOUBLE, "#": Chem.BondType.TRIPLE}
        for a, b, order, _ring in self.bonds:
            rw.AddBond(a, b, kinds[order])
            if order == ":":
                bond = rw.GetBondBetweenAtoms(a, b)
                bond.SetIsAromatic(True)
        mol = rw.GetMol()
        mol.UpdatePropertyCache(False)
        Chem.FastFindRings(mol)
        return mol


def skeleton_from_smarts(smarts: str) -> Skeleton:
    """A refined skeleton written as SMARTS (elements as ``[#6]``/``c``, the `HETERO` primitive,
    bonds ``-``, ``~``, ``:`` or aromatic by default) read back into a `Skeleton`."""
    query = Chem.MolFromSmarts(smarts)
    if query is None:
        raise ValueError(f"unparsable skeleton SMARTS {smarts!r}")
    atoms = []
    for atom in query.GetAtoms():
        z = atom_elements(atom)
        elem = next(iter(z)) if z is not None and len(z) == 1 else None
        unknown = z is not None and len(z) > 1 and not z & {0, 1, 6}
        atoms.append((elem, unknown, "$(*~[!#6" in atom.GetSmarts()))
    g = _Graph([a[0] for a in atoms], [a[1] for a in atoms], {}, set())
    for b in query.GetBonds():
        text = b.GetSmarts()
        aromatic = text == ":" or (text == "" and b.GetBeginAtom().GetIsAromatic()
                                   and b.GetEndAtom().GetIsAromatic())
        order = ":" if aromatic else {"": "-", "-": "-", "~": "~", "=": "=", "#": "#",
                                      "!:": "!:"}.get(text)
        if order is None:
            raise ValueError(f"{smarts!r}: bond {text!r} is not one of - = # : !: ~")
        g.bonds[tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx())))] = order
    g.bears_hetero = {i for i, a in enumerate(atoms) if a[2]}
    sk = skeleton_of(g)
    assert sk is not None
    return sk


def refined_skeleton(g: _Graph | Chem.Mol) -> str | None:
    """SMARTS of the refined skeleton of ``g`` (see the module docstring); None when empty."""
    sk = skeleton_of(g)
    return sk.smarts() if sk is not None else None


def skeleton_of(g: _Graph | Chem.Mol, typed: bool = False) -> Skeleton | None:
    """The refined skeleton of a molecule or graph; None when nothing is left. ``typed``: its
    atoms typed aromatic or not (see `Skeleton`)."""
    if isinstance(g, Chem.Mol):
        g = _graph_of(g)
    n = len(g.elements)
    degree = [len(g.neighbours(i)) for i in range(n)]
    terminal = {i for i in range(n) if _is_hetero(g, i) and degree[i] <= 1}
    keep = [i for i in range(n) if i not in terminal]
    if not keep:
        return None
    bears = set(g.bears_hetero)
    for i in terminal:
        bears.update(j for j in g.neighbours(i) if j not in terminal)
    kept_bonds = {e: s for e, s in g.bonds.items() if e[0] not in terminal and e[1] not in terminal}
    adj: dict[int, set[int]] = {i: set() for i in keep}
    for a, b in kept_bonds:
        adj[a].add(b)
        adj[b].add(a)

    def in_cycle(a: int, b: int) -> bool:
        seen, stack = {a}, [a]
        while stack:
            x = stack.pop()
            for y in adj[x]:
                if {x, y} == {a, b} or y in seen:
                    continue
                if y == b:
                    return True
                seen.add(y)
                stack.append(y)
        return False

    index = {old: k for k, old in enumerate(keep)}
    atoms = tuple((g.elements[i], g.hetero_unknown[i], i in bears and g.elements[i] == 6)
                  for i in keep)
    bonds = tuple((index[a], index[b], s, s != ":" and in_cycle(a, b))
                  for (a, b), s in kept_bonds.items())
    kinds = () if typed else tuple(g.kinds.get(i, "") for i in keep)
    return Skeleton(atoms, bonds, typed, kinds if any(kinds) else ())


# -- substrate cores of a forward rule -----------------------------------------------------------

def _relaxed_template(template: Chem.Mol) -> tuple[Chem.Mol, list[int]]:
    """The template as an element-only, any-bond query, and query atom -> template atom."""
    plain = Chem.RWMol()
    symbols = []
    for atom in template.GetAtoms():
        plain.AddAtom(Chem.Atom(0))
        z = atom_elements(atom)
        symbols.append(f"[#{next(iter(z))}]" if z is not None and len(z) == 1 else "*")
    for b in template.GetBonds():
        plain.AddBond(b.GetBeginAtomIdx(), b.GetEndAtomIdx(), Chem.BondType.SINGLE)
    mol = plain.GetMol()
    smarts = Chem.MolFragmentToSmiles(mol, atomsToUse=list(range(mol.GetNumAtoms())),
                                      atomSymbols=symbols,
                                      bondSymbols=["~"] * mol.GetNumBonds() or None,
                                      allBondsExplicit=True, canonical=False)
    order = [int(x) for x in mol.GetProp("_smilesAtomOutputOrder").strip("[],").split(",") if x]
    return Chem.MolFromSmarts(smarts), order


def _bond_symbol(bond: Chem.Bond, aliphatic: bool = True) -> str:
    """A substrate template bond as a skeleton bond: its order when the SMARTS gives one; else
    (``aliphatic``) "!:" (non-aromatic, any order) when an end is surely aliphatic, as a bond
    there (an implicit one: single or aromatic) cannot be aromatic; else any bond."""
    smarts = bond.GetSmarts()
    symbol = {"-": "-", "=": "=", "#": "#", ":": ":"}.get(smarts, "~")
    if symbol == "~" and aliphatic and (surely_aliphatic(bond.GetBeginAtom())
                                        or surely_aliphatic(bond.GetEndAtom())):
        return "!:"
    return symbol


_ALIPHATIC = re.compile(r"AtomType (\d+) = val|AtomIsAliphatic 1 = val|AtomIsAromatic 1 = val")


def surely_aliphatic(atom: Chem.Atom) -> bool:
    """True when a (query) atom can match only aliphatic atoms: its query says so (``C``,
    ``[N&H1]``, ``[#6;A]``: an AND with such a part, an OR of such parts), or it is an OR of
    recursive SMARTS whose first atoms all do. Every bond of such an atom is non-aromatic."""
    if not atom.HasQuery():
        return not atom.GetIsAromatic()
    lines = atom.DescribeQuery().splitlines()
    if lines and _fold_query(lines, 0, partial(_kind_node, aromatic=False))[0]:
        return True
    return _recursive_all(atom.GetSmarts(), surely_aliphatic)


def surely_aromatic(atom: Chem.Atom) -> bool:
    """True when a (query) atom can match only aromatic atoms: its query says so (``c``,
    ``[n&H1]``, ``[#6;a]``: an AND with such a part, an OR of such parts)."""
    if not atom.HasQuery():
        return atom.GetIsAromatic()
    lines = atom.DescribeQuery().splitlines()
    return bool(lines) and bool(_fold_query(lines, 0, partial(_kind_node, aromatic=True))[0])


def _kind_node(head: str, children: list[bool], aromatic: bool) -> bool:
    """Whether a query node surely needs an aromatic (``aromatic``) or an aliphatic atom, from
    its children."""
    if head.startswith("AtomOr"):
        return bool(children) and all(children)
    if head.startswith("AtomAnd"):
        return any(children)
    m = _ALIPHATIC.fullmatch(head)
    if m is None:
        return False
    if m.group(1) is not None:            # AtomType: atomic number, +1000 when aromatic
        return (int(m.group(1)) >= 1000) == aromatic
    return head.startswith("AtomIsAromatic" if aromatic else "AtomIsAliphatic")


def _recursive_all(smarts: str, test: Any) -> bool:
    """True when ``smarts`` is ``[$(...),$(...)]`` and ``test`` holds for each recursive
    pattern's first atom."""
    parts = recursive_parts(smarts)
    return parts is not None and all(test(inner.GetAtomWithIdx(0)) for inner in parts)


@dataclass(frozen=True)
class _Template:
    """What `substrate_cores` reads of a one-product forward rule, worked out once per rule."""

    reactant: Chem.Mol
    product: Chem.Mol
    query: Chem.Mol                      # the product template, elements only, any bonds
    order: list[int]                     # query atom -> product template atom
    r_by_map: dict[int, Chem.Atom]       # map number -> substrate template atom
    mapped: list[int]                    # product template atoms from the substrate
    reagent: list[int]                   # product template atoms the reagent brings

    @classmethod
    def of(cls, rxn: rdChemReactions.ChemicalReaction) -> _Template:
        reactant, product = rxn.GetReactantTemplate(0), rxn.GetProductTemplate(0)
        query, order = _relaxed_template(product)
        r_by_map = {a.GetAtomMapNum(): a for a in reactant.GetAtoms() if a.GetAtomMapNum()}
        mapped = [a.GetIdx() for a in product.GetAtoms() if a.GetAtomMapNum() in r_by_map]
        reagent = [a.GetIdx() for a in product.GetAtoms() if a.GetAtomMapNum() not in r_by_map]
        return cls(reactant, product, query, order, r_by_map, mapped, reagent)


def substrate_cores(target: Chem.Mol,
                    rxn: rdChemReactions.ChemicalReaction | _Template, *,
                    aliphatic: bool = True, typed: bool = False) -> set[Skeleton]:
    """Refined skeletons of the substrates a one-product forward rule turns into ``target``.

    Each match of the product template on the target (elements only, any bonds; the reagent's
    atoms may have no neighbours beyond the template's) gives one substrate core: the target less
    the reagent atoms, bonds between template atoms as the substrate template has them (absent
    ones dropped), and "bears a heteroatom" on template atoms the substrate template gives a
    heteroatom that the product no longer shows (the leaving group).

    A bond at the reaction centre (from a template atom to the rest) is any bond, except at a
    template atom that is surely aliphatic (`surely_aliphatic`: ``C``, ``[NH1]``): an aliphatic
    atom has no aromatic bond, so there the bond is non-aromatic (``!:``), and so is a template
    bond the SMARTS leaves implicit (single or aromatic) at such an atom. ``aliphatic=False``
    leaves both any bond (the looser cores of before, for the tests and
    ``benchmarks/verify_drug_gate.py``).

    ``typed``: each template atom the substrate template types (`surely_aliphatic`,
    `surely_aromatic`) is typed so in the core (`Skeleton.kinds`), the others not. Sound for
    routes whose steps before this one change no atom's aromaticity (`aromatic_problems`): the
    candidate's atoms then have the substrate's aromaticity, which its template fixes.
    """
    tpl = rxn if isinstance(rxn, _Template) else _Template.of(rxn)
    reactant, product, order, r_by_map = tpl.reactant, tpl.product, tpl.order, tpl.r_by_map
    mapped, reagent = tpl.mapped, tpl.reagent
    cores: set[Skeleton] = set()
    base: _Graph | None = None
    for match in target.GetSubstructMatches(tpl.query, uniquify=False, maxMatches=2000,
                                            useChirality=False):
        base = base if base is not None else _graph_of(target)
        at = {order[q]: t for q, t in enumerate(match)}     # template atom -> target atom
        if any(target.GetAtomWithIdx(at[i]).GetDegree() != product.GetAtomWithIdx(i).GetDegree()
               for i in reagent):
            continue
        gone = {at[i] for i in reagent}
        map_of = {at[i]: product.GetAtomWithIdx(i).GetAtomMapNum() for i in mapped}
        keep = [i for i in range(target.GetNumAtoms()) if i not in gone]
        new = {old: k for k, old in enumerate(keep)}
        g = _Graph([base.elements[i] for i in keep], [base.hetero_unknown[i] for i in keep], {})
        for (a, b), s in base.bonds.items():
            if a in gone or b in gone:
                continue
            if a in map_of and b in map_of:
                continue                                    # taken from the substrate template
            touched = a in map_of or b in map_of              # a bond at the reaction centre
            if touched:   # non-aromatic in the substrate when its template atom is aliphatic
                end = a if a in map_of else b
                s = "!:" if aliphatic and surely_aliphatic(r_by_map[map_of[end]]) else "~"
            g.bonds[tuple(sorted((new[a], new[b])))] = s
        for a in map_of:
            for b in map_of:
                if a >= b:
                    continue
                ra, rb = r_by_map[map_of[a]], r_by_map[map_of[b]]
                bond = reactant.GetBondBetweenAtoms(ra.GetIdx(), rb.GetIdx())
                if bond is not None:
                    g.bonds[tuple(sorted((new[a], new[b])))] = _bond_symbol(bond, aliphatic)
        for a, m in map_of.items():
            ra = r_by_map[m]
            if any(nb.GetAtomMapNum() not in r_by_map or not nb.GetAtomMapNum()
                   for nb in ra.GetNeighbors() if _surely_hetero(nb)):
                g.bears_hetero.add(new[a])
            if typed:
                kind = "A" if surely_aliphatic(ra) else "a" if surely_aromatic(ra) else ""
                if kind:
                    g.kinds[new[a]] = kind
        sk = skeleton_of(g)
        if sk is not None:
            cores.add(sk)
    return cores


# -- checking the rules ---------------------------------------------------------------------------

def rules_keep_skeletons(rules: Any) -> bool:
    """True when ``rules`` (a RuleSet; anything else is not checked and gives False), taken as
    unmasking rules, pass `gate_problems`: refined skeletons then gate their routes of any
    length (the screen's conversion stage, `derivatives`' conversion candidates)."""
    reactions = getattr(rules, "reactions", None)
    return reactions is not None and not gate_problems(reactions())


def gate_problems(unmasking: Iterable[tuple[str, rdChemReactions.ChemicalReaction]],
                  forward: Iterable[tuple[str, rdChemReactions.ChemicalReaction]] = ()
                  ) -> list[str]:
    """Reasons the gate's argument fails for these rules (empty: it holds).

    Unmasking rules must not make a carbon or a non-terminal heteroatom, bond two substrate atoms
    that were not bonded, change an atom's element, or give a carbon a heteroatom it did not bear.
    Forward rules must have one product template.
    """
    problems = []
    for rule_id, rxn in unmasking:
        reactant = rxn.GetReactantTemplate(0)
        r_by_map = {a.GetAtomMapNum(): a for a in reactant.GetAtoms() if a.GetAtomMapNum()}
        for p in range(rxn.GetNumProductTemplates()):
            product = rxn.GetProductTemplate(p)
            swapped = _swapped_group(reactant, product, r_by_map)
            for atom in product.GetAtoms():
                m = atom.GetAtomMapNum()
                z = atom_elements(atom)
                if m not in r_by_map:
                    if atom.GetIdx() in swapped:
                        continue
                    if z is None or 6 in z:
                        problems.append(f"{rule_id}: makes a carbon (unmapped product atom "
                                        f"{atom.GetSmarts()})")
                    elif atom.GetDegree() > 1:
                        problems.append(f"{rule_id}: makes a non-terminal heteroatom")
                    continue
                rz = atom_elements(r_by_map[m])
                if z is not None and rz is not None and not z <= rz and atom.GetAtomicNum():
                    problems.append(f"{rule_id}: changes the element of atom :{m}")
                if any(nb.GetAtomMapNum() not in r_by_map and _surely_hetero(nb)
                       for nb in atom.GetNeighbors()):
                    if not any(_surely_hetero(nb) for nb in r_by_map[m].GetNeighbors()):
                        problems.append(f"{rule_id}: gives atom :{m} a heteroatom it did not bear")
            for bond in product.GetBonds():
                a, b = bond.GetBeginAtom().GetAtomMapNum(), bond.GetEndAtom().GetAtomMapNum()
                if a in r_by_map and b in r_by_map and reactant.GetBondBetweenAtoms(
                        r_by_map[a].GetIdx(), r_by_map[b].GetIdx()) is None:
                    problems.append(f"{rule_id}: bonds atoms :{a} and :{b}, not bonded before")
    for rule_id, rxn in forward:
        if rxn.GetNumProductTemplates() != 1:
            n = rxn.GetNumProductTemplates()
            problems.append(f"{rule_id}: a forward rule with {n} products")
    return problems


_AROMATIC_PROBES = tuple(Chem.MolFromSmiles(smiles) for smiles in (
    "c1ccccc1", "c1ccncc1", "C[n+]1ccccc1", "[O-][n+]1ccccc1", "c1cc[nH]c1", "Cn1cccc1",
    "c1ccoc1", "c1ccsc1", "c1cc[se]c1", "c1c[nH]cn1", "c1nn[nH]n1", "O=c1cccc[nH]1",
    "O=c1ccc2ccccc2o1", "c1ccc2[nH]ccc2c1", "c1ccc2occc2c1", "O=c1[nH]cnc2ccccc12"))
"""Aromatic rings of each aromatic atom kind the rules' templates could meet (benzene,
pyridine(ium), N-oxide, pyrrole, furan, thiophene, selenophene, azoles, pyridone, coumarin,
indole, benzofuran, quinazolinone)."""


def _may_be_aromatic(atom: Chem.Atom) -> bool:
    """True when a template atom's query matches an aromatic atom of some probe ring."""
    query = Chem.MolFromSmarts(atom.GetSmarts())
    if query is None or query.GetNumAtoms() != 1:
        return True     # not read alone: assume it may
    return any(probe.GetAtomWithIdx(i).GetIsAromatic()
               for probe in _AROMATIC_PROBES for (i,) in probe.GetSubstructMatches(query))


def _may_be_aromatic_bond(bond: Chem.Bond) -> bool:
    """True when a template bond's query may match an aromatic bond (``:``, ``~``, ``@``, or
    none, which SMARTS reads as single or aromatic)."""
    parts = set(re.split(r"[&;,]", bond.GetSmarts()))
    return not parts & {"-", "=", "#", "!:", "!@"} or ":" in parts


def rules_keep_aromaticity(rules: Any) -> bool:
    """True when no rule of ``rules`` (a RuleSet) can change an atom's aromaticity
    (`aromatic_problems`): route gates may then type their targets' atoms (`Skeleton`)."""
    reactions = getattr(rules, "reactions", None)
    return reactions is not None and not aromatic_problems(reactions())


def aromatic_problems(reactions: Iterable[tuple[str, rdChemReactions.ChemicalReaction]]
                      ) -> list[str]:
    """Reasons a rule may make an aromatic atom aliphatic or an aliphatic one aromatic (empty:
    none can). The only change a rule may make at a template atom that can be aromatic (one
    that matches an aromatic atom of `_AROMATIC_PROBES`) is to take off a neighbour bonded by
    a bond that cannot be aromatic (a Boc off an indole nitrogen): it may not be written
    aliphatic in a product (``[c:1]>>[C:1]``), lose or change a
    bond to another template atom, or gain a neighbour by a bond that is not single, and may be
    deleted only beyond a bond in no ring (``!@``) from every mapped atom: such a bond is a
    bridge, so the deleted atom's rings go with the piece that comes off, whose atoms are not
    kept (the ester's aryl group, the amide's N-heteroaryl). Standardization between steps (`precursor_screen.chem.standardize`) neutralizes and
    strips fragments but makes no tautomers, so it changes no atom's aromaticity either."""
    problems = []
    for rule_id, rxn in reactions:
        reactant = rxn.GetReactantTemplate(0)
        bonds: dict[frozenset[int], Chem.Bond] = {}
        added: dict[int, list[Chem.Bond]] = {}
        mapped = {a.GetAtomMapNum() for a in reactant.GetAtoms() if a.GetAtomMapNum()}
        made_aliphatic: set[int] = set()
        for p in range(rxn.GetNumProductTemplates()):
            product = rxn.GetProductTemplate(p)
            made_aliphatic |= {a.GetAtomMapNum() for a in product.GetAtoms()
                               if a.GetAtomMapNum() in mapped and surely_aliphatic(a)}
            for bond in product.GetBonds():
                a, b = bond.GetBeginAtom(), bond.GetEndAtom()
                ma, mb = a.GetAtomMapNum(), b.GetAtomMapNum()
                if ma in mapped and mb in mapped:
                    bonds[frozenset((ma, mb))] = bond
                elif ma in mapped or mb in mapped:
                    added.setdefault(ma if ma in mapped else mb, []).append(bond)
        for atom in reactant.GetAtoms():
            if not _may_be_aromatic(atom):
                continue
            m = atom.GetAtomMapNum()
            where = f"{rule_id}: atom {atom.GetSmarts()}"
            if m not in mapped:
                if _reaches_mapped(reactant, atom.GetIdx(), mapped):
                    problems.append(f"{where} may be aromatic and is deleted")
                continue
            if m in made_aliphatic:
                problems.append(f"{where} may be aromatic and is made aliphatic")
            for bond in atom.GetBonds():
                other = bond.GetOtherAtom(atom).GetAtomMapNum()
                if other not in mapped:
                    if _may_be_aromatic_bond(bond):
                        problems.append(f"{where} may lose a neighbour by an aromatic bond")
                    continue
                after = bonds.get(frozenset((m, other)))
                if after is None or after.GetSmarts() != bond.GetSmarts():
                    problems.append(f"{where} may be aromatic and its bond to :{other} changes")
            if any(b.GetSmarts() not in ("-", "") or b.GetBondType() != Chem.BondType.SINGLE
                   for b in added.get(m, ())):
                problems.append(f"{where} may be aromatic and gains a neighbour by a bond "
                                "that is not single")
    return problems


def _reaches_mapped(template: Chem.Mol, start: int, mapped: set[int]) -> bool:
    """True when a mapped atom of ``template`` is reached from atom ``start`` by bonds that may
    lie in a ring (those not written ``!@``)."""
    seen, stack = {start}, [start]
    while stack:
        atom = template.GetAtomWithIdx(stack.pop())
        if atom.GetAtomMapNum() in mapped:
            return True
        for bond in atom.GetBonds():
            other = bond.GetOtherAtomIdx(atom.GetIdx())
            if other not in seen and "!@" not in bond.GetSmarts():
                seen.add(other)
                stack.append(other)
    return False


def _swapped_group(reactant: Chem.Mol, product: Chem.Mol, r_by_map: dict[int, Chem.Atom]
                   ) -> set[int]:
    """Product atoms that only replace like for like: the unmapped product atoms, when they
    match unmapped substrate atoms one to one with the same elements, bonds and attachments to
    mapped atoms (a transesterification puts a methoxy where an alkoxy was). Else empty."""
    p_new = [a for a in product.GetAtoms() if a.GetAtomMapNum() not in r_by_map]
    r_new = [a for a in reactant.GetAtoms() if not a.GetAtomMapNum()]
    if not p_new or len(p_new) > len(r_new) or len(r_new) > 6:
        return set()

    def attachments(atom: Chem.Atom) -> set[int]:
        return {nb.GetAtomMapNum() for nb in atom.GetNeighbors() if nb.GetAtomMapNum() in r_by_map}

    for chosen in permutations(r_new, len(p_new)):
        pairs = dict(zip((a.GetIdx() for a in p_new), chosen))
        ok = True
        for pa, ra in zip(p_new, chosen):
            pz, rz = atom_elements(pa), atom_elements(ra)
            if pz is None or rz is None or len(rz) != 1 or pz != rz \
                    or attachments(pa) != attachments(ra):
                ok = False
                break
            for nb in pa.GetNeighbors():
                if nb.GetIdx() in pairs and reactant.GetBondBetweenAtoms(
                        ra.GetIdx(), pairs[nb.GetIdx()].GetIdx()) is None:
                    ok = False
        if ok:
            return set(pairs)
    return set()


# -- the gate -----------------------------------------------------------------------------------

def _skeleton(mol: Chem.Mol) -> Chem.Mol:
    """``mol`` without its terminal heteroatoms, ring info recomputed (not sanitized)."""
    rw = Chem.RWMol(mol)
    for i in sorted((a.GetIdx() for a in rw.GetAtoms() if a.GetAtomicNum() != 6 and a.GetDegree() <= 1),
                    reverse=True):
        rw.RemoveAtom(i)
    out = rw.GetMol()
    out.UpdatePropertyCache(False)
    Chem.FastFindRings(out)
    return out


def skeleton_gates(targets: Sequence[Chem.Mol]) -> tuple[Chem.Mol, ...]:
    """Queries a candidate must match for any unmasking route to reach one of ``targets``.

    The unmasking rules only remove atoms, change bond orders outside aromatic rings, open rings
    and swap terminal heteroatoms (C=O, OH, NH2, Cl); they never make a ring, a carbon or a
    non-terminal heteroatom. So a route's product keeps, inside the candidate, its skeleton: its
    carbons and non-terminal heteroatoms, aromatic bonds aromatic, ring bonds in rings. Each
    target gives that skeleton as a query (elements kept, non-aromatic bonds of any order); the
    queries implied by smaller ones are dropped, leaving a handful (for the built-in list: a
    piperidine ring, aryl-C-C-C, an N-acyl-aniline skeleton, a benzodioxole-C).
    """
    found: dict[str, tuple[Chem.Mol, Chem.Mol]] = {}
    for mol in targets:
        sk = _skeleton(mol)
        if sk.GetNumAtoms() == 0:
            continue
        symbols = [f"[#{a.GetAtomicNum()}]" for a in sk.GetAtoms()]
        bonds = [":" if b.GetIsAromatic() else ("!:;@" if b.IsInRing() else "!:") for b in sk.GetBonds()]
        smarts = Chem.MolFragmentToSmiles(sk, atomsToUse=list(range(sk.GetNumAtoms())),
                                          atomSymbols=symbols, bondSymbols=bonds or None,
                                          isomericSmiles=False, allBondsExplicit=True)
        query = Chem.MolFromSmarts(smarts)
        if query is not None:
            found.setdefault(smarts, (sk, query))
    minimal: list[Chem.Mol] = []
    for sk, query in sorted(found.values(), key=lambda sq: sq[0].GetNumAtoms()):
        if not any(sk.HasSubstructMatch(q) for q in minimal):
            minimal.append(query)
    return tuple(minimal)


class RouteGate:
    """Queries a molecule must match to reach one of the targets in at most two rule steps.

    ``targets``: molecules (listed drugs); ``cores``: (SMARTS, largest member) for target
    families, in refined-skeleton form, that every member contains and no forward rule adds
    (`drugs.GROUP_PRECURSOR_CORES`); ``forward``: the forward rules as (id, reaction).

    ``passes(mol)`` is the test for a candidate, ``unmask_ok(mol)`` the one for an intermediate
    one step from the end before unmasking rules are run on it (forward rules are always tried).
    Each query remembers the largest target it stands for, so ``min_size`` (targets smaller than
    this cannot matter) skips the queries of small targets. Queries implied by a kept one (for
    targets at least as large) are dropped when built (``prune=False`` keeps them all, for
    the tests): a few dozen substructure tests remain. ``aliphatic=False`` builds the substrate
    cores as before they knew aliphatic template atoms (`substrate_cores`), for the tests.
    ``typed``: the targets' skeletons with their atoms typed aromatic or not (`Skeleton`), for
    rules none of which can change an atom's aromaticity (`aromatic_problems` finds nothing);
    the substrate cores then type the atoms their forward rule's substrate template types (the
    rule may close an aromatic ring: its substrate's other atoms stay untyped), the family
    cores none.
    ``every_forward_opens=True`` asks the forward test of every forward rule, as before the
    gate knew the ones that keep the skeleton (for ``benchmarks/verify_drug_gate.py``).
    """

    def __init__(self, targets: Sequence[Chem.Mol], cores: Sequence[tuple[str, int]],
                 forward: Sequence[tuple[str, rdChemReactions.ChemicalReaction]],
                 prune: bool = True, aliphatic: bool = True, typed: bool = False,
                 every_forward_opens: bool = False) -> None:
        self.typed = typed
        found: dict[Skeleton, list[Any]] = {}       # skeleton -> [largest target, unmasking?]

        def add(sk: Skeleton | None, size: int, unmask: bool) -> None:
            if sk is None:
                return
            entry = found.setdefault(sk, [size, unmask])
            entry[0] = max(entry[0], size)
            entry[1] = entry[1] or unmask

        for target in targets:
            add(skeleton_of(target, typed=typed), target.GetNumHeavyAtoms(), True)
        for smarts, size in cores:
            add(skeleton_from_smarts(smarts), size, True)
        for _rule_id, rxn in forward:
            template = _Template.of(rxn)
            for target in targets:
                for sk in substrate_cores(target, template, aliphatic=aliphatic, typed=typed):
                    add(sk, target.GetNumHeavyAtoms(), False)
        # Drop a query implied by a kept one (it can pass nothing the kept one does not) for
        # targets at least as large (or both over MERGE_SIZE); the kept one then stands for the
        # larger of the two targets, and keeps the dropped query of a larger target as a second
        # test, asked only when the kept one matches and its own targets are too small: the
        # gate passes exactly what the unpruned one does, at every size floor.
        kept: list[list[Any]] = []   # [skeleton, size, unmasking?, test query, own size, dropped]
        for sk, (size, unmask) in sorted(found.items(),
                                         key=lambda kv: (len(kv[0].atoms), len(kv[0].bonds),
                                                         not kv[1][1], -kv[1][0])):
            rep = sk.rep()
            # (a query's typed atom is implied only by one typed alike: `Skeleton.rep`)
            cover = next((k for k in kept if prune and (k[2] or not unmask)
                          and k[1] >= min(size, MERGE_SIZE) and rep.HasSubstructMatch(k[3])),
                         None)
            if cover is not None:
                cover[1] = max(cover[1], size)
                if size > cover[4]:
                    cover[5].append(_Gate(_query(_labelled(sk.smarts())), size, size, unmask, (),
                                          sk))
                continue
            kept.append([sk, size, unmask, _query(sk.smarts(test=True)), size, []])
        kept.sort(key=lambda k: -k[1])
        self.entries: tuple[tuple[str, int, bool], ...] = tuple(
            (k[0].smarts(), k[1], k[2]) for k in kept)
        # matched on `labelled` molecules: "bears a heteroatom" read from the isotope label, one
        # substructure search per molecule instead of a recursive query per atom and query
        self._gates = [_Gate(_query(_labelled(k[0].smarts())), k[1], k[4], k[2],
                             tuple(sorted(k[5], key=lambda g: -g.size)), k[0]) for k in kept]
        self.forward_queries = _templates(forward)
        # the forward rules a route to a target may begin with that the skeletons do not gate:
        # those failing the unmasking rules' checks (see the module docstring)
        self.opening_queries = _templates(
            [(rule_id, rxn) for rule_id, rxn in forward
             if every_forward_opens or gate_problems([(rule_id, rxn)])
             or (typed and aromatic_problems([(rule_id, rxn)]))])
        # one RDKit call instead of many: the queries for targets of MERGE_SIZE atoms or more
        # (tested for any candidate of up to ~30 atoms) and the forward substrates.
        # A query stands for larger targets only from MERGE_SIZE on, so the big ones come first.
        big = [i for i, g in enumerate(self._gates) if g.own >= MERGE_SIZE]
        self._rest = [g for g in self._gates if g.own < MERGE_SIZE]
        self._big_own = min((self._gates[i].own for i in big), default=0)
        # as bundles: RDKit tries the queries in turn and stops at the first that matches (one
        # query OR-ing them as recursive SMARTS found every match of each: a quarter slower)
        self._big_bundle = _bundle([self._gates[i].query for i in big])
        self._forward = ForwardTest(self.forward_queries)
        self._opening = ForwardTest(self.opening_queries)
        self._bundles: dict[tuple[bool, float, bool], Any] = {}   # see `_plan`
        # every gate query and every dropped one, each with its bit in `fast`'s answers
        self._bit = {id(g): k for k, g in enumerate(self.queries())}
        self.fast = QuerySet.of_skeletons([g.skeleton for g in self.queries()], self._rdkit_bits)
        self._masks: dict[tuple[float, bool], tuple[int, tuple[tuple[int, int], ...], bytes]] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the RDKit bundles (rebuilt from the queries on arrival)."""
        return {k: v for k, v in self.__dict__.items()
                if k not in ("_big_bundle", "_forward", "_opening", "_bundles",
                             "_bit", "_masks")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._big_bundle = _bundle([g.query for g in self._gates if g.own >= MERGE_SIZE])
        self._forward = ForwardTest(self.forward_queries)
        self._opening = ForwardTest(self.opening_queries)
        self._bundles = {}
        self._bit = {id(g): k for k, g in enumerate(self.queries())}
        self._masks = {}

    def queries(self) -> list["_Gate"]:
        """Every gate query, then every dropped one: the order of `fast`'s answer bits."""
        return self._gates + [d for g in self._gates for d in g.dropped]

    def __len__(self) -> int:
        return len(self._gates) + len(self.forward_queries)

    def passes(self, mol: Chem.Mol, min_size: float = 0, smiles: str | None = None) -> bool:
        """False only when no route of at most two steps from ``mol`` reaches a target of at
        least ``min_size`` heavy atoms. ``smiles``, when the caller has it, is
        ``Chem.MolToSmiles(mol)`` (a standardized parent's): the skeleton queries are then
        matched by the C extension (`fastgate`), the same answers without RDKit."""
        return self._opening(mol, smiles) or self._holds(mol, min_size, smiles)

    def _holds(self, mol: Chem.Mol, min_size: float, smiles: str | None) -> bool:
        """True when ``mol`` holds a target's skeleton or a substrate core (of targets of at
        least ``min_size`` atoms): a route beginning with an unmasking step may reach one."""
        plan = self._bit_plan(min_size, False)
        found = self.fast.matches(mol, smiles, plan[2])
        if found is not None:
            return self._match_bits(found, plan)
        with labelled(mol):
            gates = self._gates
            if self._big_bundle is not None:
                hit = mol.HasSubstructMatch(self._big_bundle)
                if hit and min_size <= self._big_own:   # each of them passes on its own
                    return True
                if not hit:                             # none of them matches: skip them
                    gates = self._rest
            return self._match(mol, gates, min_size, False)

    def plan(self, mol: Chem.Mol, min_size: float = 0, smiles: str | None = None
             ) -> tuple[bool, bool]:
        """(`passes`, `forward_only` for targets of at least ``min_size`` atoms) from one forward
        test and one set of skeleton answers: a route beginning with an unmasking step ends in
        a target whose skeleton or substrate core ``mol`` holds, so where it holds none of a
        target that large, such routes reach only smaller targets (which a caller passing
        ``min_size`` does not want) and the search may begin with the forward rules alone."""
        if not self._opening(mol, smiles):
            return self._holds(mol, min_size, smiles), False
        return True, not self._holds(mol, min_size, smiles)

    def forward_only(self, mol: Chem.Mol, smiles: str | None = None) -> bool:
        """True when every route of at most two steps from ``mol`` to a target of any size
        begins with a forward step the skeletons do not gate: ``mol`` matches such a rule's
        substrate (`opening_ok`) and holds no target's skeleton and no substrate core (a route
        beginning with an unmasking step, or a forward one that keeps the skeleton as they do,
        would end in a target whose skeleton or core ``mol`` holds). A search may then run only
        the forward rules on ``mol`` itself."""
        return self._opening(mol, smiles) and not self._holds(mol, 0, smiles)

    def unmask_ok(self, mol: Chem.Mol, min_size: float = 0, smiles: str | None = None) -> bool:
        """True when one unmasking step from ``mol`` could give a target of ``min_size`` atoms
        (``smiles`` as for `passes`)."""
        plan = self._bit_plan(min_size, True)
        found = self.fast.matches(mol, smiles, plan[2])
        if found is not None:
            return self._match_bits(found, plan)
        with labelled(mol):
            return self._match(mol, self._gates, min_size, True)

    def _rdkit_bits(self, mol: Chem.Mol) -> int:
        """RDKit's answers to every gate query and dropped one, bit per query as `fast` gives
        them (its start-up check)."""
        with labelled(mol):
            return sum(1 << k for k, g in enumerate(self.queries())
                       if mol.HasSubstructMatch(g.query))

    def _match_bits(self, found: int, plan: tuple[int, tuple[tuple[int, int], ...], bytes]
                    ) -> bool:
        """`_match` over all the gates from the C matcher's answers (bit per query) and a
        `_bit_plan`."""
        whole, partial, _ = plan
        return bool(found & whole) or any(found >> bit & 1 and found & dropped
                                          for bit, dropped in partial)

    def _bit_plan(self, min_size: float, unmask_only: bool
                  ) -> tuple[int, tuple[tuple[int, int], ...], bytes]:
        """`_plan` as bit masks: (the gates whose own targets reach ``min_size``, for each gate
        standing for such targets only through its dropped queries: (its bit, theirs), and
        every query either asks, for the C matcher's ``only``: the rest are not matched)."""
        key = (min_size, unmask_only)
        plan = self._masks.get(key)
        if plan is not None:
            return plan
        whole, partial = 0, []
        for g in self._gates:
            if g.size < min_size:
                break
            if unmask_only and not g.unmask:
                continue
            if g.own >= min_size:
                whole |= 1 << self._bit[id(g)]
            else:
                dropped = 0
                for d in g.dropped:
                    if d.size >= min_size and (d.unmask or not unmask_only):
                        dropped |= 1 << self._bit[id(d)]
                if dropped:
                    partial.append((self._bit[id(g)], dropped))
        if len(self._masks) > 4096:
            self._masks.clear()
        used = whole
        for bit, dropped in partial:
            used |= 1 << bit | dropped
        plan = self._masks[key] = (whole, tuple(partial), self.fast.mask_bytes(used))
        return plan

    def _match(self, mol: Chem.Mol, gates: Sequence["_Gate"], min_size: float,
               unmask_only: bool) -> bool:
        """True when some gate of ``gates`` (largest first) for targets of ``min_size`` atoms or
        more matches (with ``unmask_only``: a gate for unmasking routes), and either its own
        targets are that large or one of its dropped queries for larger targets matches too.

        The gates whose own targets are large enough are asked as one bundle (one RDKit call);
        the others, each with its second tests, one by one. Which is which is worked out once
        per list of gates, size floor and kind (`_plan`)."""
        bundle, partial = self._plan(gates, min_size, unmask_only)
        if bundle is not None and mol.HasSubstructMatch(bundle):
            return True
        return any(mol.HasSubstructMatch(g.query)
                   and any(d.size >= min_size and (d.unmask or not unmask_only)
                           and mol.HasSubstructMatch(d.query) for d in g.dropped)
                   for g in partial)

    def _plan(self, gates: Sequence["_Gate"], min_size: float, unmask_only: bool
              ) -> tuple[Chem.MolBundle | None, tuple["_Gate", ...]]:
        """(bundle of the gates whose own targets reach ``min_size``, the gates that stand for
        such targets only through their dropped queries), for `_match`; remembered."""
        key = (gates is self._rest, min_size, unmask_only)
        plan = self._bundles.get(key)
        if plan is not None:
            return plan
        whole: list[Chem.Mol] = []
        partial: list[_Gate] = []
        for g in gates:
            if g.size < min_size:
                break
            if unmask_only and not g.unmask:
                continue
            if g.own >= min_size:
                whole.append(g.query)
            else:
                partial.append(g)
        if len(self._bundles) > 4096:
            self._bundles.clear()
        plan = self._bundles[key] = (_bundle(whole), tuple(partial))
        return plan

    def forward_ok(self, mol: Chem.Mol, smiles: str | None = None) -> bool:
        """True when ``mol`` matches some forward rule's substrate template (`ForwardTest`;
        ``smiles`` as for `passes`)."""
        return self._forward(mol, smiles)

    def opening_ok(self, mol: Chem.Mol, smiles: str | None = None) -> bool:
        """True when ``mol`` matches the substrate template of a forward rule that a route
        may begin with and the skeletons do not gate (`opening_queries`); `passes` asks it."""
        return self._opening(mol, smiles)


class GateSet:
    """Route gates without forward rules (skeletons only: the listed substances' gates) asked of
    one molecule in one call of the C matcher, their queries side by side: `holds` gives each
    gate's `RouteGate.passes` at its own size floor. The screen asks three of every candidate
    (the typed gate, the untyped one for containment, the bulk one); one call instead of three
    saves the calls' own cost, not the matching."""

    PLANS_KEPT = 4096
    """Floor combinations whose query masks are remembered before starting afresh."""

    def __init__(self, gates: Sequence[RouteGate]) -> None:
        self.gates = tuple(gates)
        if any(g.opening_queries for g in self.gates):
            raise ValueError("a gate with forward rules is not a skeletons-only gate")
        sizes = [g.fast.size for g in self.gates]
        self._shifts = tuple(accumulate(sizes[:-1], initial=0))
        self.fast = QuerySet.of_skeletons(
            [q.skeleton for g in self.gates for q in g.queries()], self._rdkit_bits)
        self._plans: dict[tuple[float, ...], tuple[bytes, tuple[Any, ...]]] = {}

    def _rdkit_bits(self, mol: Chem.Mol) -> int:
        return sum(g._rdkit_bits(mol) << shift for g, shift in zip(self.gates, self._shifts))

    def holds(self, mol: Chem.Mol, smiles: str | None, floors: Sequence[float]
              ) -> tuple[bool, ...] | None:
        """Each gate's `RouteGate.passes` of ``mol`` at its floor in ``floors`` (``smiles``:
        ``Chem.MolToSmiles(mol)``); None when the C matcher cannot answer (ask each gate)."""
        if not self.fast.on or smiles is None:
            return None
        key = tuple(floors)
        plans = self._plans.get(key)
        if plans is None:
            each = tuple(g._bit_plan(f, False) for g, f in zip(self.gates, key))
            only = 0
            for plan, shift in zip(each, self._shifts):
                only |= int.from_bytes(plan[2], "little") << shift
            if len(self._plans) >= self.PLANS_KEPT:
                self._plans.clear()
            plans = self._plans[key] = (self.fast.mask_bytes(only), each)
        found = self.fast.matches(mol, smiles, plans[0])
        if found is None:
            return None
        return tuple(g._match_bits(found >> shift, plan)
                     for g, shift, plan in zip(self.gates, self._shifts, plans[1]))


def _templates(rules: Sequence[tuple[str, rdChemReactions.ChemicalReaction]]) -> list[Chem.Mol]:
    """The rules' substrate templates, each written alike once."""
    seen: set[str] = set()
    out: list[Chem.Mol] = []
    for _rule_id, rxn in rules:
        query = rxn.GetReactantTemplate(0)
        key = Chem.MolToSmarts(query)
        if key not in seen:
            seen.add(key)
            out.append(query)
    return out

@dataclass(frozen=True)
class _Gate:
    """One compiled gate query: it stands for targets of up to ``size`` heavy atoms, its own
    skeleton's of ``own``; ``dropped``: queries it implies, for larger targets (second tests)."""

    query: Chem.Mol
    size: int
    own: int
    unmask: bool
    dropped: tuple["_Gate", ...]
    skeleton: Skeleton | None = None


_BEARS = Chem.MolFromSmarts("[#6]~[!#6;!#1]")


_LAST_BEARING: tuple[Any, tuple[Any, ...]] = (None, ())   # (molecule, its atoms to label)


def labelled(mol: Chem.Mol) -> _Labelled:
    """``mol`` itself while the block (``with labelled(mol):``) runs, its carbons bearing a
    heteroatom carrying isotope 1 (what the gate's compiled queries read as `HETERO`); they get
    their own isotopes back after it. Labelling a copy instead cost ~20 us a molecule for the
    copy alone. The carbons are remembered for the last molecule: the screen's gates ask about
    the same candidate in turn."""
    global _LAST_BEARING
    last_mol, atoms = _LAST_BEARING
    if last_mol is not mol:
        atoms = tuple(mol.GetAtomWithIdx(i) for i in sorted({c for c, _x in mol.GetSubstructMatches(
            _BEARS, uniquify=False, maxMatches=100_000)}))
        _LAST_BEARING = (mol, atoms)
    return _Labelled(mol, atoms)


class _Labelled:
    """The context `labelled` returns: sets the labels on entry, puts the isotopes back on exit."""

    __slots__ = ("mol", "_atoms", "_before")

    def __init__(self, mol: Chem.Mol, atoms: tuple[Any, ...]) -> None:
        self.mol, self._atoms, self._before = mol, atoms, [0] * len(atoms)

    def __enter__(self) -> Chem.Mol:
        self._before = [atom.GetIsotope() for atom in self._atoms]
        for atom in self._atoms:
            atom.SetIsotope(1)
        return self.mol

    def __exit__(self, *exc: object) -> None:
        for atom, isotope in zip(self._atoms, self._before):
            atom.SetIsotope(isotope)


def _labelled(smarts: str) -> str:
    """A gate query reading "bears a heteroatom" from `labelled`'s isotope instead of
    recursion."""
    return smarts.replace(f"#6;{HETERO}", "1#6")


def without_recursion(smarts: str) -> str:
    """``smarts`` without the recursive SMARTS (``$(...)``, ``!$(...)``) its atoms AND with the
    rest: a weaker query, which every molecule the full one matches also matches (dropping a
    conjunct only widens an atom; an atom left with nothing becomes ``*``). An OR that holds a
    recursive SMARTS goes as a whole where it is AND-ed (``;``) with the rest.

    >>> without_recursion("[C&X3&R1&$(C1CC[N&X3]CC1):1]=[O&X1]")
    '[C&X3&R1:1]=[O&X1]'
    >>> without_recursion("[O&X2&H1:1]-[#6;$(c1ccccc1),$(C1CCCCC1):2]")
    '[O&X2&H1:1]-[#6:2]'
    >>> without_recursion("[$([CH3]),$([CH2][CH3])]")
    '[*]'
    """
    return "".join(f"[{atom_without_recursion(text)}]" if bracket else text
                   for bracket, text in bracket_segments(smarts))


def atom_without_recursion(body: str, negated_only: bool = False) -> str:
    """One bracket atom's primitives (without the brackets; its map number kept) less its AND-ed
    recursive SMARTS; ``negated_only``: less its AND-ed ``!$(...)`` only (a weaker atom too).

    >>> atom_without_recursion("N&X3&!$(N-[C,S]=O)&$(N-a):1")
    'N&X3:1'
    >>> atom_without_recursion("N&X3&!$(N-[C,S]=O)&$(N-a):1", negated_only=True)
    'N&X3&$(N-a):1'
    """
    found = re.search(r":\d+$", body)
    map_number = found.group(0) if found else ""
    body = body[:found.start()] if found else body
    kept = []
    for low in split_top(body, ";"):              # ';': AND, lowest precedence
        if not negated_only and "$(" in low and "," in _top_level(low):
            continue                               # an OR holding a recursion: dropped whole
        items = [x for x in split_top(low, "&")   # '&': AND, highest precedence
                 if not (x.startswith("!$(") or (not negated_only and x.startswith("$(")))]
        if items:
            kept.append("&".join(items))
    return (";".join(kept) or "*") + map_number


def split_top(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` outside parentheses (a SMARTS atom's primitives)."""
    parts, level, current = [], 0, ""
    for ch in text:
        if ch == separator and level == 0:
            parts.append(current)
            current = ""
            continue
        level += (ch == "(") - (ch == ")")
        current += ch
    parts.append(current)
    return parts


def _top_level(text: str) -> str:
    """The characters of ``text`` outside parentheses."""
    out, level = [], 0
    for ch in text:
        if ch == "(":
            level += 1
        elif ch == ")":
            level -= 1
        elif level == 0:
            out.append(ch)
    return "".join(out)


def _bundle(queries: Sequence[Chem.Mol]) -> Chem.MolBundle | None:
    """The queries as one RDKit bundle: a molecule matches it when it matches any of them
    (RDKit tries them in turn and stops at the first match); None for none."""
    if not queries:
        return None
    bundle = Chem.MolBundle()
    for query in queries:
        bundle.AddMol(query)
    return bundle


def _query(smarts: str) -> Chem.Mol:
    q = Chem.MolFromSmarts(smarts)
    if q is None:  # pragma: no cover - built from our own SMARTS
        raise ValueError(f"gate query does not parse: {smarts}")
    return q
