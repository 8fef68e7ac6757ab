"""A draft group definition as data: a scaffold, its variable positions and what each may carry;
the SMARTS and the annex-style wording are both written from it.

A :class:`Definition` holds the scaffold (:class:`precursor_screen.survey.scaffold.Scaffold`) and
its :class:`Position` s. A position is one scaffold atom (or two, for a group bonded to both, such
as methylenedioxy; or every free atom of a ring, for "ring-substituted at any position") with the
:class:`Choice` s allowed there: classes of ``rules/data/substituents.toml`` (a halogen, a C1-C4
alkyl group), named groups, or exact fragments. Every other scaffold atom is fixed: its element,
aromaticity, charge, number of heavy neighbours and hydrogens are written into the SMARTS, so the
definition matches the scaffold carrying exactly the allowed groups and nothing else.

Each choice enters the SMARTS as one recursive atom (the class's ``$(SMARTS)``) and the text as
one wording; :meth:`Definition.clauses` and :meth:`Definition.smarts` read the same positions,
which is what lets a test hold the text against the SMARTS.

:func:`ladder` builds the candidates from tight to broad:

``seen``
    each varying position allows what the examples carry there, exactly (a closed enumeration);
``classes``
    ... the class of each group instead (fluoro -> a halogen, ethyl -> a C1-C4 alkyl group);
``ring``
    ... and on a ring substituted in the examples, every free position may carry the ring's
    classes, one or more ("ring-substituted by halogen or C1-C4 alkyl");
``broad``
    ... plus each class's broader neighbours from the table, the classes the listed parent's
    masked forms (the rules run backwards) carry at the same positions, and the groups every
    example carries on a heteroatom (an ester's ethyl, an N-Boc) opened to their class, with
    hydrogen (the acid, the free amine).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from rdkit import Chem

from precursor_screen.rules.substituents import (SubstituentTable, atom_kind, bond_smarts,
                                                 chain_token, exact_smarts, fragment_key,
                                                 rooted_token)
from precursor_screen.survey.scaffold import Attachment, Scaffold, decompose_on, rescaffold

__all__ = ["Choice", "Position", "Definition", "ladder", "LEVELS", "DRAFT_LABEL"]

LEVELS = ("seen", "classes", "ring", "broad")
"""The candidate kinds, tight to broad (see the module docstring)."""

DRAFT_LABEL = "Draft for expert review, not legal advice."
"""Every draft text starts with this."""

HYDROGEN = "hydrogen"
MAX_EXPLICIT = 4
"""Chain positions written with an explicit group atom (2**n SMARTS); further ones keep their
recursive atoms."""


@dataclass(frozen=True, slots=True)
class Choice:
    """One thing a position may carry: a class, a named group or an exact fragment (or several
    on one atom: two methoxy groups of a dimethyl ketal)."""

    kind: str                 # "class", "named", "exact" or "several"
    id: str                   # class id, substituent id, fragment key; ids joined by "+"
    wording: str
    tokens: tuple[str, ...]   # the recursive SMARTS, one per atom of the position it spans
    max_atoms: int
    attachments: int = 1      # scaffold atoms it is bonded to
    neighbours: tuple[int, ...] = (1,)   # its atoms bonded to each of those scaffold atoms
    classes: tuple[str, ...] = ()        # the classes it names (for the text/SMARTS check)
    rooted: str = ""   # as a recursive atom of the group's first atom ('' if not a single group)

    def token(self, i: int = 0) -> str:
        return self.tokens[min(i, len(self.tokens) - 1)]

    def bonded(self, i: int = 0) -> int:
        return self.neighbours[min(i, len(self.neighbours) - 1)]


@dataclass(frozen=True, slots=True)
class Position:
    """A variable position: scaffold atoms, where it is (in words), the atom kind (for wording),
    whether it may stay unsubstituted (hydrogen), and its choices. ``span`` > 1: one group bonded
    to all the atoms together (methylenedioxy); ``any_of``: each atom may carry a choice on its
    own (every free position of a ring)."""

    label: str
    atoms: tuple[int, ...]
    where: str
    kind: str
    hydrogen: bool
    choices: tuple[Choice, ...]
    span: int = 1
    any_of: bool = False

    def words(self) -> list[str]:
        """The wordings of what this position may carry, hydrogen first."""
        return ([HYDROGEN] if self.hydrogen else []) + [c.wording for c in self.choices]


@dataclass(frozen=True)
class Definition:
    """One candidate definition: a level, the scaffold and its positions."""

    level: str
    scaffold: Scaffold
    positions: tuple[Position, ...]
    excluded: tuple[tuple[str, str, str], ...] = field(default_factory=tuple)
    """(name, SMILES, exact SMARTS) of single compounds carved out ("excluding ...")."""

    def excepting(self, compounds: Sequence[tuple[str, Chem.Mol]]) -> Definition:
        """This definition with the given compounds (name, standardized parent) carved out."""
        more = tuple((name, Chem.MolToSmiles(mol), exact_smarts(mol)) for name, mol in compounds)
        return replace(self, excluded=self.excluded + more)

    def exclusions(self) -> tuple[str, ...]:
        return tuple(x[2] for x in self.excluded)

    # -- SMARTS ------------------------------------------------------------------------------

    def explicit_positions(self) -> list[int]:
        """Positions on a chain atom whose single groups are written as atoms of their own.

        A recursive atom ``$(*-X)`` on a scaffold atom asks for *a* neighbour matching X, and a
        chain atom's scaffold neighbour can be that neighbour (the N-methyl of methamphetamine
        is "a C1-C4 alkyl group on the nitrogen" as far as the nitrogen alone can tell, and an
        N-benzoyl would then pass). On ring atoms the scaffold's neighbours are bonded by ring
        bonds and the groups by chain bonds (``-!@``), which tells them apart; on a chain atom
        the group becomes an atom of the SMARTS itself, which a match maps to an atom of its own.
        """
        out = []
        for i, pos in enumerate(self.positions):
            atom = self.scaffold.template.GetAtomWithIdx(self.scaffold.atoms[pos.atoms[0]])
            if (pos.span == 1 and not pos.any_of and not atom.IsInRing()
                    and any(c.rooted for c in pos.choices)):
                out.append(i)
        return out[:MAX_EXPLICIT]

    def smarts(self) -> tuple[str, ...]:
        """The group SMARTS (a member matches any): the scaffold with each atom's allowed states
        written in; one SMARTS per combination of the explicit positions being unsubstituted (or
        carrying another kind of group) or carrying one group (:meth:`explicit_positions`)."""
        explicit = [self.positions[i] for i in self.explicit_positions()]
        states: list[list[bool]] = [[]]
        for pos in explicit:
            options = [False] if (pos.hydrogen or any(not c.rooted for c in pos.choices)) else []
            options.append(True)
            states = [st + [o] for st in states for o in options]
        return tuple(self._write({pos.atoms[0]: on for pos, on in zip(explicit, st)})
                     for st in states)

    def _write(self, substituted: dict[int, bool]) -> str:
        sc = self.scaffold
        rw = Chem.RWMol(sc.template)
        symbols = {a: self._atom_smarts(p, substituted) for p, a in enumerate(sc.atoms)}
        extra: dict[int, str] = {}
        for p, on in substituted.items():
            if on:
                pos = next(x for x in self.positions if x.atoms == (p,))
                rooted = list(dict.fromkeys(c.rooted for c in pos.choices if c.rooted))
                i = rw.AddAtom(Chem.Atom(0))
                rw.AddBond(sc.atoms[p], i, Chem.BondType.SINGLE)
                extra[i] = "[" + ",".join(rooted) + "]"
        mol = rw.GetMol()
        atom_symbols = [symbols.get(i, extra.get(i, "*")) for i in range(mol.GetNumAtoms())]
        bond_symbols = []
        for b in mol.GetBonds():
            if b.GetBeginAtomIdx() in extra or b.GetEndAtomIdx() in extra:
                bond_symbols.append("-!@")
                continue
            s = bond_smarts(b)
            bond_symbols.append(s if b.GetIsAromatic() else s + ("@" if b.IsInRing() else "!@"))
        atoms = [*sc.atoms, *extra]
        inside = set(atoms)
        bonds = [b.GetIdx() for b in mol.GetBonds()
                 if b.GetBeginAtomIdx() in inside and b.GetEndAtomIdx() in inside]
        return Chem.MolFragmentToSmiles(mol, atomsToUse=atoms, bondsToUse=bonds or None,
                                        atomSymbols=atom_symbols, bondSymbols=bond_symbols,
                                        allBondsExplicit=True, canonical=False,
                                        rootedAtAtom=sc.atoms[0], isomericSmiles=False)

    def _atom_smarts(self, p: int, substituted: dict[int, bool]) -> str:
        sc = self.scaffold
        atom = sc.template.GetAtomWithIdx(sc.atoms[p])
        sym = atom.GetSymbol()
        prim = sym.lower() if atom.GetIsAromatic() else sym
        if len(prim) > 2 or prim not in ("C", "N", "O", "S", "P", "F", "Cl", "Br", "I", "B", "c",
                                         "n", "o", "s", "p", "Si", "Se"):
            prim = f"#{atom.GetAtomicNum()}&{'a' if atom.GetIsAromatic() else 'A'}"
        charge = atom.GetFormalCharge()
        parts = [prim + (f"&{'+' if charge > 0 else '-'}{abs(charge)}" if charge else "&+0")]
        if not atom.IsInRing():
            parts.append("!R")
        degree = len(sc.neighbours(p))
        if substituted.get(p):
            # the group is the explicit atom bonded to it
            parts.append(f"D{degree + 1}")
            return "[" + ";".join(parts) + "]"
        covering = [pos for pos in self.positions if p in pos.atoms]
        alts = []
        if all(pos.hydrogen for pos in covering):
            alts.append(f"D{degree}&H{sc.hydrogens(p)}")
        seen: set[str] = set()
        for pos in covering:
            where = pos.atoms.index(p) if pos.span > 1 else 0
            for c in pos.choices:
                if p in substituted and c.rooted:
                    continue  # written as an explicit atom in the other SMARTS
                tok = c.token(where)
                if tok not in seen:
                    seen.add(tok)
                    alts.append(f"D{degree + c.bonded(where)}&{tok}")
        if not alts:
            alts.append("!*")   # no state left for this atom: this SMARTS matches nothing
        parts.append(",".join(alts))
        return "[" + ";".join(parts) + "]"

    # -- size --------------------------------------------------------------------------------

    @property
    def max_heavy_atoms(self) -> int:
        """The largest member's heavy atoms: the scaffold plus the largest choice on every atom
        (a group spanning two atoms counted once)."""
        extra = 0.0
        for p in range(self.scaffold.size):
            best = 0.0
            for pos in self.positions:
                if p in pos.atoms:
                    for c in pos.choices:
                        best = max(best, c.max_atoms / max(1, c.attachments))
            extra += best
        return self.scaffold.size + math.ceil(extra)

    # -- words -------------------------------------------------------------------------------

    def scaffold_text(self) -> str:
        """The scaffold as SMILES with ``[R1]``... where the positions are (the first atom of a
        ring position)."""
        labels: dict[int, int] = {}
        for n, pos in enumerate(self.positions, start=1):
            labels.setdefault(pos.atoms[0], n)
        smi = self.scaffold.smiles(labels)
        for n in range(len(self.positions), 0, -1):
            smi = smi.replace(f"[{n}*]", f"[R{n}]")
        return smi

    def depiction(self) -> tuple[str, tuple[int, ...]]:
        """SMILES of the scaffold with a dummy ``[n*]`` on each position's first atom, and the
        atoms (of that SMILES) to highlight: every atom of a ring position ("any free
        position") and every position atom."""
        labels: dict[int, int] = {}
        for n, pos in enumerate(self.positions, start=1):
            labels.setdefault(pos.atoms[0], n)
        smi = self.scaffold.smiles(labels)
        mol = Chem.MolFromSmiles(smi, sanitize=False)
        if mol is None:
            return smi, ()
        marked = {p for pos in self.positions for p in pos.atoms}
        # the SMILES lists the scaffold's atoms in its own order: find them back by matching
        order = self.scaffold.written_order(labels)
        highlight = tuple(sorted(order[p] for p in marked if p in order))
        return smi, highlight

    def clauses(self) -> list[str]:
        """One clause per position: "R1 (on the carboxyl oxygen) is hydrogen or a C1-C4 alkyl
        group (esters with C1-C4 alcohols)"."""
        out = []
        for pos in self.positions:
            words = pos.words()
            listed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
            out.append(f"{pos.label} ({pos.where}) is {listed}")
        return out

    def text(self, parent: str, size_note: bool = False) -> str:
        """The draft legal text: the scaffold, the parent, each position and its classes, salts
        and stereoisomers; labelled as a draft for expert review."""
        clauses = self.clauses()
        body = ("; ".join(clauses) + "; all other positions as shown") if clauses else (
            "no other substitution")
        size = (f", with not more than {self.max_heavy_atoms} non-hydrogen atoms"
                if size_note else "")
        except_ = ("; excluding " + ", ".join(f"{name} ({smi})" for name, smi, _ in self.excluded)
                   if self.excluded else "")
        return (f"{DRAFT_LABEL} Compounds of the structure {self.scaffold_text()}{size}, "
                f"{parent}, in which {body}{except_}; and their salts and stereoisomers.")


# ---------------------------------------------------------------------------------- the ladder


def ladder(scaffold: Scaffold, table: SubstituentTable,
           predicted: Sequence[Chem.Mol] = ()) -> list[Definition]:
    """The candidate definitions from tight to broad (:data:`LEVELS`), identical ones dropped.

    ``predicted`` are further members the parent's masks predict (standardized parents): the
    broad level adds the classes they carry at the scaffold's positions.
    """
    seen = _positions(scaffold, table, exact=True)
    classes = _positions(scaffold, table, exact=False)
    ring = _ring_positions(scaffold, table, classes)
    broad_scaffold, opened = _open_heteroatom_groups(scaffold, table)
    broad = _broaden(broad_scaffold, table, _ring_positions(
        broad_scaffold, table, _positions(broad_scaffold, table, exact=False)), predicted, opened)
    out: list[Definition] = []
    smarts: set[str] = set()
    for level, sc, positions in (("seen", scaffold, seen), ("classes", scaffold, classes),
                                 ("ring", scaffold, ring), ("broad", broad_scaffold, broad)):
        d = Definition(level, sc, tuple(_label(positions)))
        s = "\n".join(d.smarts())
        if s not in smarts:
            smarts.add(s)
            out.append(d)
    return out


def _label(positions: Sequence[Position]) -> list[Position]:
    return [replace(p, label=f"R{n}") for n, p in enumerate(positions, start=1)]


def _choice_named(table: SubstituentTable, att: Attachment) -> Choice:
    """The exact choice for a group seen in an example (named when the table knows it)."""
    named = table.named(att.key)
    single = len(att.positions) == 1 and att.neighbours == (1,)
    tokens = tuple(chain_token(t) for t in att.tokens) if single else att.tokens
    rooted = rooted_token(att.tokens[0]) if single else ""
    if named is not None:
        return Choice("named", named.id, named.name, tokens, att.heavy_atoms,
                      len(att.positions), att.neighbours, rooted=rooted)
    return Choice("exact", att.key, f"the group {att.key}", tokens, att.heavy_atoms,
                  len(att.positions), att.neighbours, rooted=rooted)


def _choice_class(table: SubstituentTable, class_id: str, kind: str) -> Choice:
    c = table.cls(class_id)
    return Choice("class", c.id, c.words(kind), (c.token(),) * c.attachments, c.max_atoms,
                  c.attachments, (c.neighbours,) * c.attachments, (c.id,), c.rooted())


def _several(choices: Sequence[Choice]) -> Choice:
    """Several single-atom choices on one scaffold atom as one: their recursive SMARTS joined as
    branches of one atom (so two methoxy groups need two distinct neighbours)."""
    if len(choices) == 1:
        return choices[0]
    inner = [c.tokens[0][2:-1] for c in choices]       # "*-!@[...]"
    token = "$(*" + "".join(f"({x[1:]})" for x in inner[:-1]) + inner[-1][1:] + ")"
    counts: dict[str, int] = {}
    for c in choices:
        counts[c.wording] = counts.get(c.wording, 0) + 1
    words = " and ".join(w if n == 1 else f"{n} times {w}" for w, n in counts.items())
    return Choice("several", "+".join(c.id for c in choices), f"together {words}", (token,),
                  sum(c.max_atoms for c in choices), 1, (sum(c.bonded() for c in choices),),
                  tuple(x for c in choices for x in c.classes))


def _observed(scaffold: Scaffold) -> dict[tuple[int, ...], list[tuple[Attachment, ...]]]:
    """Scaffold atoms (one, or several for a group bonded to several) -> per example, the groups
    there."""
    spans: dict[tuple[int, ...], list[tuple[Attachment, ...]]] = {}
    n = len(scaffold.attachments)
    keys = {tuple(a.positions) for atts in scaffold.attachments for a in atts}
    for span in sorted(keys, key=lambda s: (len(s), s)):
        spans[span] = [tuple(a for a in scaffold.attachments[k] if tuple(a.positions) == span)
                       for k in range(n)]
    return spans


def _where(scaffold: Scaffold, atoms: Sequence[int], any_of: bool = False) -> str:
    mol = scaffold.template
    first = scaffold.atoms[atoms[0]]
    atom = mol.GetAtomWithIdx(first)
    ring = _ring_of(scaffold, atoms[0])
    if any_of and ring:
        return f"at any free position of the {_ring_name(scaffold, ring)}, one or more"
    if len(atoms) > 1:
        if ring and all(q in ring for q in atoms):
            locants = [_locant(scaffold, ring, q).split(" ")[0] for q in atoms]
            if all(locants):
                return (f"on the {'- and '.join(sorted(x.rstrip('-') for x in locants))}"
                        f"-positions of the {_ring_name(scaffold, ring)} together")
            return f"on two adjacent positions of the {_ring_name(scaffold, ring)} together"
        return "bonded to " + " and ".join(_where(scaffold, [a]) for a in atoms)
    kind = atom_kind(mol, first)
    if ring is not None:
        name = _ring_name(scaffold, ring)
        locant = _locant(scaffold, ring, atoms[0])
        if locant and atom.GetSymbol() == "C":
            return f"{locant}position of the {name}"
        return f"on the {_element(atom)} of the {name}"
    return {"carboxyl-oxygen": "on the carboxyl oxygen", "oxygen": "on the oxygen",
            "nitrogen": "on the nitrogen",
            "carbon": f"on the carbon {_carbon_note(scaffold, atoms[0])}".strip()
            }.get(kind, f"on the {_element(atom)}")


def _element(atom: Chem.Atom) -> str:
    return {"C": "carbon", "N": "nitrogen", "O": "oxygen", "S": "sulfur", "P": "phosphorus",
            "Si": "silicon"}.get(atom.GetSymbol(), atom.GetSymbol())


def _carbon_note(scaffold: Scaffold, p: int) -> str:
    """'next to the carbonyl', 'next to the benzene ring' ... for a chain carbon position."""
    mol = scaffold.template
    for q in scaffold.neighbours(p):
        a = mol.GetAtomWithIdx(scaffold.atoms[q])
        if a.GetIsAromatic():
            return f"next to the {_ring_name(scaffold, _ring_of(scaffold, q) or [q])}"
        if a.GetSymbol() == "C" and any(b.GetBondType() == Chem.BondType.DOUBLE
                                        and b.GetOtherAtom(a).GetSymbol() == "O"
                                        for b in a.GetBonds()):
            return "next to the carbonyl"
    return ""


def _rings(scaffold: Scaffold) -> list[list[int]]:
    """The scaffold's rings as positions."""
    inside = {a: p for p, a in enumerate(scaffold.atoms)}
    return [[inside[a] for a in ring] for ring in scaffold.template.GetRingInfo().AtomRings()
            if all(a in inside for a in ring)]


def _ring_of(scaffold: Scaffold, p: int) -> list[int] | None:
    rings = [r for r in _rings(scaffold) if p in r]
    aromatic = [r for r in rings if all(scaffold.template.GetAtomWithIdx(
        scaffold.atoms[q]).GetIsAromatic() for q in r)]
    return (aromatic or rings or [None])[0]


def _ring_name(scaffold: Scaffold, ring: Sequence[int]) -> str:
    mol = scaffold.template
    atoms = [mol.GetAtomWithIdx(scaffold.atoms[q]) for q in ring]
    elements = sorted(a.GetSymbol() for a in atoms)
    if len(atoms) == 6 and all(a.GetIsAromatic() for a in atoms):
        name = "benzene ring" if elements == ["C"] * 6 else "aromatic six-membered ring"
    elif all(a.GetIsAromatic() for a in atoms):
        name = "aromatic five-membered ring" if len(atoms) == 5 else "aromatic ring"
    elif elements.count("N") == 1 and len(atoms) == 6 and elements.count("C") == 5:
        name = "piperidine ring"
    else:
        name = f"{len(atoms)}-membered ring"
    same = [r for r in _rings(scaffold) if _ring_label_base(scaffold, r) == _ring_label_base(
        scaffold, ring)]
    if len(same) > 1:
        anchor = _ring_anchor(scaffold, ring)
        if anchor:
            name += f" bonded to the {anchor}"
    return name


def _ring_label_base(scaffold: Scaffold, ring: Sequence[int]) -> tuple[int, bool, tuple[str, ...]]:
    mol = scaffold.template
    atoms = [mol.GetAtomWithIdx(scaffold.atoms[q]) for q in ring]
    return (len(atoms), all(a.GetIsAromatic() for a in atoms),
            tuple(sorted(a.GetSymbol() for a in atoms)))


def _ring_anchor(scaffold: Scaffold, ring: Sequence[int]) -> str:
    """What a ring hangs on: 'nitrogen', 'carbonyl carbon', 'oxirane ring' ..."""
    mol = scaffold.template
    for q in ring:
        for r in scaffold.neighbours(q):
            if r in ring:
                continue
            a = mol.GetAtomWithIdx(scaffold.atoms[r])
            if a.IsInRing():
                other = _ring_of(scaffold, r)
                return (f"{len(other)}-membered ring" if other else "ring")
            if a.GetSymbol() == "N":
                return "nitrogen"
            if a.GetSymbol() == "O":
                return "oxygen"
            return "carbonyl carbon" if _carbon_note(scaffold, r) == "next to the carbonyl" or any(
                b.GetBondType() == Chem.BondType.DOUBLE for b in a.GetBonds()) else "chain carbon"
    return ""


def _locant(scaffold: Scaffold, ring: Sequence[int], p: int) -> str:
    """'2-', '3-' or '4-' for a benzene-ring position counted from where the ring is bonded to the
    rest of the scaffold (when it is bonded at one atom), else ''."""
    if len(ring) != 6:
        return ""
    anchors = [q for q in ring if any(r not in ring for r in scaffold.neighbours(q))]
    if len(anchors) != 1:
        return ""
    dist = _ring_distance(scaffold, ring, anchors[0], p)
    return {1: "2- (ortho) ", 2: "3- (meta) ", 3: "4- (para) "}.get(dist, "")


def _ring_distance(scaffold: Scaffold, ring: Sequence[int], a: int, b: int) -> int:
    i, j = ring.index(a), ring.index(b)
    d = abs(i - j)
    return min(d, len(ring) - d)


def _positions(scaffold: Scaffold, table: SubstituentTable, *, exact: bool) -> list[Position]:
    """The varying positions: each with hydrogen where an example has nothing there, and the
    groups seen (``exact``) or their classes; several groups on one atom make one choice."""
    out = []
    for span, per_example in _observed(scaffold).items():
        hydrogen = any(not atts for atts in per_example)
        kind = atom_kind(scaffold.template, scaffold.atoms[span[0]])
        choices: dict[str, Choice] = {}
        for atts in per_example:
            if not atts:
                continue
            parts = []
            for att in sorted(atts, key=lambda a: a.key):
                named = table.named(att.key)
                if exact or named is None or named.attachments != len(att.positions):
                    parts.append(_choice_named(table, att))
                else:
                    parts.append(_choice_class(table, named.cls, kind))
            c = _several(parts) if len(span) == 1 else parts[0]
            choices.setdefault(c.tokens[0], c)
        out.append(Position("", span, _where(scaffold, span), kind, hydrogen,
                            tuple(choices.values()), span=len(span)))
    return out


def _ring_positions(scaffold: Scaffold, table: SubstituentTable,
                    positions: Sequence[Position]) -> list[Position]:
    """``positions`` with every aromatic ring that carries a ring class opened: each free atom of
    it may carry any of the ring's classes, or hydrogen."""
    out = list(positions)
    for ring in _rings(scaffold):
        atoms = [scaffold.template.GetAtomWithIdx(scaffold.atoms[q]) for q in ring]
        if not all(a.GetIsAromatic() for a in atoms):
            continue
        ring_choices: dict[str, Choice] = {}
        used = []
        for pos in positions:
            if not set(pos.atoms) <= set(ring):
                continue
            ring_here = [c for c in pos.choices if c.kind == "class" and table.cls(c.id).ring
                         and pos.span == c.attachments]
            for c in ring_here:
                ring_choices.setdefault(c.id, c)
            if ring_here:
                used.append(pos)
        if not ring_choices:
            continue
        free = tuple(q for q in ring if scaffold.hydrogens(q) > 0)
        kept = []
        for pos in out:
            if pos in used:
                rest = tuple(c for c in pos.choices if c.id not in ring_choices)
                if rest:
                    kept.append(replace(pos, choices=rest, hydrogen=True))
            else:
                kept.append(pos)
        out = kept + [Position("", free, _where(scaffold, (free[0],), any_of=True), "ring", True,
                               tuple(ring_choices.values()), any_of=True)]
    return out


def _open_heteroatom_groups(scaffold: Scaffold, table: SubstituentTable
                            ) -> tuple[Scaffold, dict[int, bool]]:
    """The scaffold less the named groups every example carries on a heteroatom (an ester's
    alkyl, an N-Boc) and the oxygen of a ketone every example keeps (its masks: ketals), and the
    positions (of the new scaffold) those were on, each with whether it may then carry nothing
    (the free acid or amine: yes; the ketone's carbon: no, the carbonyl or a mask stays)."""
    mol = scaffold.template
    inside = set(scaffold.atoms)
    drop: set[int] = set()
    hosts: dict[int, bool] = {}
    for p, a in enumerate(scaffold.atoms):
        atom = mol.GetAtomWithIdx(a)
        if atom.GetSymbol() == "O" and atom.GetDegree() == 1:
            b = atom.GetBonds()[0]
            host = b.GetOtherAtom(atom)
            if (b.GetBondType() == Chem.BondType.DOUBLE and host.GetSymbol() == "C"
                    and host.GetIdx() in inside and not host.GetIsAromatic()
                    and all(n.GetSymbol() == "C" for n in host.GetNeighbors()
                            if n.GetIdx() != a)):
                drop.add(a)
                hosts.setdefault(host.GetIdx(), False)
    for p, a in enumerate(scaffold.atoms):
        atom = mol.GetAtomWithIdx(a)
        if atom.GetSymbol() not in ("O", "N", "S") or atom.GetIsAromatic():
            continue
        for b in atom.GetBonds():
            other = b.GetOtherAtomIdx(a)
            if other not in inside or b.IsInRing() or b.GetBondType() != Chem.BondType.SINGLE:
                continue
            side = _side_within(mol, other, inside - {a}, block=a)
            if a in side or len(side) >= len(inside) - 3:
                continue
            key = _key_with_dummy(mol, side, other)
            named = table.named(key)
            if named is None or named.attachments != 1:
                continue
            if table.cls(named.cls).ring and atom.GetSymbol() != "O":
                continue
            drop |= side
            hosts[a] = True
    keep = [p for p, a in enumerate(scaffold.atoms) if a not in drop]
    if not drop or len(keep) < 4:
        return scaffold, {}
    smaller = rescaffold(scaffold, keep)
    return smaller, {smaller.atoms.index(a): h for a, h in hosts.items()}


def _side_within(mol: Chem.Mol, start: int, allowed: set[int], block: int) -> set[int]:
    seen, todo = {start}, [start]
    while todo:
        x = todo.pop()
        for n in mol.GetAtomWithIdx(x).GetNeighbors():
            i = n.GetIdx()
            if i == block and x != start:
                seen.add(i)  # a ring back to the host: not a pendant group
            if i in allowed and i not in seen:
                seen.add(i)
                todo.append(i)
    return seen


def _key_with_dummy(mol: Chem.Mol, side: set[int], root: int) -> str:
    rw = Chem.RWMol()
    index = {}
    for i in sorted(side):
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
            rw.AddBond(index[i], index[j], b.GetBondType())
            if b.GetIsAromatic():
                rw.GetBondBetweenAtoms(index[i], index[j]).SetIsAromatic(True)
    d = rw.AddAtom(Chem.Atom(0))
    rw.AddBond(index[root], d, Chem.BondType.SINGLE)
    m = rw.GetMol()
    m.UpdatePropertyCache(strict=False)
    return fragment_key(m)


def _broaden(scaffold: Scaffold, table: SubstituentTable, positions: Sequence[Position],
             predicted: Sequence[Chem.Mol], opened: dict[int, bool]) -> list[Position]:
    """The broad level: broader classes, the classes of the predicted members, opened groups."""
    extra = _predicted_classes(scaffold, table, predicted)
    out = []
    covered: set[int] = set()
    for pos in positions:
        choices = {c.tokens[0]: c for c in pos.choices}
        kind = pos.kind
        for c in pos.choices:
            if c.kind == "class":
                for b in table.cls(c.id).broader_for(kind):
                    bc = table.cls(b)
                    if pos.any_of and not bc.ring:
                        continue
                    nc = _choice_class(table, b, kind)
                    choices.setdefault(nc.tokens[0], nc)
        if pos.span == 1 and not pos.any_of:
            for cid in extra.get(pos.atoms[0], ()):
                nc = _choice_class(table, cid, kind)
                choices.setdefault(nc.tokens[0], nc)
        # "two C1-C4 alkoxy groups" (a class) says what "together 2 times a C1-C4 alkoxy
        # group" (two groups seen) says: keep the class
        classes = {c.id for c in choices.values() if c.kind == "class"}
        choices = {t: c for t, c in choices.items()
                   if not (c.kind == "several" and len(set(c.classes)) == 1
                           and len(c.classes) == 2 and f"di-{c.classes[0]}" in classes)}
        covered |= set(pos.atoms)
        # on a heteroatom, what every example carries is a mask: the unmasked form belongs too
        hetero = pos.span == 1 and pos.kind in ("carboxyl-oxygen", "oxygen", "nitrogen")
        out.append(replace(pos, choices=tuple(choices.values()),
                           hydrogen=pos.hydrogen or opened.get(pos.atoms[0], hetero)))
    for p in sorted((set(opened) | set(extra)) - covered):
        kind = atom_kind(scaffold.template, scaffold.atoms[p])
        cids = list(extra.get(p, ()))
        if p in opened:
            for att in (a for atts in scaffold.attachments for a in atts if a.positions == (p,)):
                named = table.named(att.key)
                if named is not None:
                    cids.append(named.cls)
        choices: dict[str, Choice] = {}
        for cid in cids:
            for x in (cid, *table.cls(cid).broader_for(kind)):
                nc = _choice_class(table, x, kind)
                choices.setdefault(nc.tokens[0], nc)
        if choices:
            out.append(Position("", (p,), _where(scaffold, (p,)), kind, True,
                                tuple(choices.values())))
    return out


def _predicted_classes(scaffold: Scaffold, table: SubstituentTable,
                       predicted: Sequence[Chem.Mol]) -> dict[int, list[str]]:
    """Scaffold position -> classes the predicted members carry there, one group on one atom
    (two methoxy groups of a ketal are not "a methoxy group"; the ketal classes say those)."""
    out: dict[int, list[str]] = {}
    for mol in predicted:
        atts = decompose_on(scaffold, mol)
        for att in atts:
            if len(att.positions) != 1 or sum(1 for a in atts if a.positions == att.positions) > 1:
                continue
            named = table.named(att.key)
            if named is None:
                continue
            cids = out.setdefault(att.positions[0], [])
            if named.cls not in cids:
                cids.append(named.cls)
    return out
