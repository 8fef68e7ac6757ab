"""Draft generic group definitions from a few example structures, each measured.

``group draft`` and :func:`draft_groups` take the structures customs or a laboratory reported (a
handful of seized members of one family) and propose definitions in the project's group format,
tight to broad, ranked best first, each with what it covers and what it would catch besides:

1. every example is read and standardized (one :class:`ExampleRow` per input row, with the reason
   when it is left out: unparsable, a duplicate, a legitimate or bulk chemical);
2. the common scaffold (:mod:`~precursor_screen.survey.scaffold`); examples of several families
   are clustered and each family gets its own proposals;
3. the listed parent: the one named (``parent``), or the listed substance (or controlled drug)
   that most examples are, convert into (the unmasking rules), give as a controlled drug (the
   drug routes), contain, or belong with through a shipped group (:class:`Knowledge`, the
   evidence ``check`` reports); its masked forms and pre-precursors (the rules run backwards,
   :mod:`~precursor_screen.survey.masks`) are the members the candidates are expected to cover;
4. the candidate definitions (:func:`~precursor_screen.survey.definition.ladder`) and for each:
   the examples covered (all, by construction), the predicted members covered, known designer
   precursors covered, legitimate chemicals caught in the bundled set and in the user's files,
   library compounds captured; a draft legal text (labelled a draft for expert review);
   must_match (the examples) and must_not_match (the nearest legitimate chemicals it leaves out);
5. ranking: candidates catching no legitimate chemical (bundled set and user files) first, the
   one covering most predicted members first among them, the broader of two that cover the same
   (it leaves less room for the next variant); then those with collateral, least first. A
   candidate whose only legitimate catch is the unsubstituted scaffold itself (propiophenone for
   ring-substituted propiophenones) gets a variant that excepts it by name, as annexes do.

The result writes as a group file (:meth:`DraftResult.toml`) that ``group check``, ``screen
--groups`` and ``enumerate --groups`` load.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rdkit import Chem, DataStructs

from precursor_screen.chem.fingerprint import get_recipe
from precursor_screen.chem.parse import parse_record, quiet_rdkit
from precursor_screen.chem.standardize import Standardized, StandardizeError, standardize
from precursor_screen.errors import PrecursorScreenError, UnknownSubstanceError
from precursor_screen.io.readers import Record
from precursor_screen.reference import builtin_registry, load_reference
from precursor_screen.rules.drug_targets import DrugTargets
from precursor_screen.rules.groups import Example, Group, GroupSet, group_file_text, load_groups
from precursor_screen.rules.masks import load_rules
from precursor_screen.rules.substituents import SubstituentTable, load_substituents
from precursor_screen.survey.definition import DRAFT_LABEL, LEVELS, Definition, ladder
from precursor_screen.survey.masks import enumerate_drug_precursors, enumerate_masked
from precursor_screen.survey.scaffold import (CLUSTER_SHARE, Scaffold, cluster, find_scaffold,
                                              relaxed_query)
from precursor_screen.survey.sets import Compound, load_designer_precursors, load_legitimate

__all__ = ["DraftError", "Knowledge", "ExampleRow", "parents_phrase", "ParentLink", "Caught",
           "Measures", "Candidate", "Family",
           "DraftResult", "draft_groups", "BUNDLED", "LEVEL_TITLES", "MAX_MUST_NOT_MATCH"]

BUNDLED = "legitimate"
"""The name of the bundled set of legitimate chemicals (``survey/data/legitimate.tsv``)."""
MAX_MUST_NOT_MATCH = 6
"""must_not_match entries per candidate: the nearest legitimate chemicals it leaves out."""
MAX_PARENTS = 4
"""Parents named on a group (the first is the one its text relates the family to)."""
MAX_PREDICTED_PARENTS = 8

LEVEL_TITLES = {
    "seen": "the groups seen in the examples, exactly",
    "classes": "the classes of the groups seen, at the positions seen",
    "ring": "the ring classes at any free position of the substituted ring",
    "broad": "broader classes, the parent's masks, heteroatom groups opened",
}
_RELATED = ("identical", "salt", "stereoisomer", "mixture", "converts", "drug", "contains",
            "group")
_STRENGTH = {"identical": 0, "salt": 0, "stereoisomer": 0, "mixture": 0, "converts": 1,
             "drug": 1, "contains": 2, "group": 3}


class DraftError(PrecursorScreenError):
    """The examples do not allow a draft (too few readable, no common scaffold)."""


@dataclass
class Knowledge:
    """What relates examples to a parent: the list (Registry), the unmasking rules, the
    controlled-drug routes and the shipped groups; built once, reused for every draft."""

    reference: Any = None
    rules: Any = None
    drugs: Any = None
    groups: Any = None
    max_depth: int = 2
    _by_key: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.reference is None:
            self.reference = load_reference(include=("proposed",))
        if self.rules is None:
            self.rules = load_rules()
        if self.drugs is None:
            self.drugs = DrugTargets(unmask=self.rules)
        if self.groups is None:
            self.groups = load_groups()
        for s in self.reference.structures():
            if s.parent is not None and not s.is_inorganic:
                self._by_key.setdefault(s.parent.key, []).append(s)

    def relations(self, std: Standardized) -> list[tuple[str, str, str, int, tuple[str, ...]]]:
        """(substance or drug id, name, relation, steps, rule names) for everything ``std`` is,
        converts into, gives as a controlled drug, contains, or belongs with through a shipped
        group: the evidence the screen's ``check`` reports, gathered here without the screen."""
        out = []
        for ident in self.reference.identify(std):
            if ident.relation != "excluded":
                out.append((ident.substance.id, ident.substance.name, "identical", 0, ()))
        largest = max((m[0].parent.mol.GetNumHeavyAtoms() for m in self._by_key.values()),
                      default=0)
        for route in self.rules.apply(std, depth=self.max_depth, max_products=500,
                                      max_heavy_atoms=largest):
            for s in self._by_key.get(_key(route.product), []):
                out.append((s.id, s.name, "converts", route.depth,
                            tuple(step.rule_name for step in route.steps)))
        for h in [*self.drugs.identify(std), *self.drugs.routes(std, depth=self.max_depth)]:
            if h.score > 0:
                out.append((h.substance_id, h.substance_name, "drug",
                            h.route.depth if h.route is not None else 0,
                            tuple(step.rule_name for step in h.route.steps)
                            if h.route is not None else ()))
        n = std.mol.GetNumHeavyAtoms()
        for key, subs in self._by_key.items():
            s = subs[0]
            size = s.parent.mol.GetNumHeavyAtoms()
            if (size >= 6 and not s.is_bulk and size < n and key != std.key
                    and std.mol.HasSubstructMatch(s.parent.mol)):
                out += [(x.id, x.name, "contains", 3, ()) for x in subs]
        for g in self.groups.match(std):
            if g.parents:
                out.append((g.parents[0], self.name(g.parents[0], g.title), "group", 3, ()))
        return out

    def name(self, sid: str, fallback: str = "") -> str:
        for reg in (self.reference, self.drugs.registry):
            try:
                return str(reg.get(sid).name)
            except KeyError:
                continue
        return fallback or sid

    def size(self, sid: str) -> int:
        for reg in (self.reference, self.drugs.registry):
            try:
                p = reg.get(sid).parent
                return p.mol.GetNumHeavyAtoms() if p is not None else 999
            except KeyError:
                continue
        return 999


def _key(smiles: str) -> str:
    std = _parent(smiles)
    return std.key if std is not None else ""


@dataclass(frozen=True, slots=True)
class ExampleRow:
    """One input row: what was given, and what became of it ("ok" when used)."""

    row: int
    id: str
    smiles: str
    status: str
    standardized: str = ""
    family: int | None = None


@dataclass(frozen=True, slots=True)
class ParentLink:
    """A listed substance (or controlled drug, or shipped group's parent) the examples relate to."""

    id: str
    name: str
    registry: str        # "precursors", "controlled drugs", "drug families", or "similar"
    relation: str        # strongest relation: identical, converts, drug, contains, group, similar
    examples: int        # examples related to it
    steps: float         # mean route steps of the related examples (0: the substance itself)
    rules: tuple[str, ...] = ()

    def phrase(self) -> str:
        """How the examples relate to it, in a sentence part."""
        where = f"{self.name} [{self.id}]"
        rules = f" by {', '.join(self.rules)}" if self.rules else ""
        return {
            "identical": (f"which are {where} or are converted into it{rules}" if rules
                          else f"which are {where}, a salt or a stereoisomer of it"),
            "converts": f"which are converted into {where}{rules}",
            "drug": (f"which give controlled drugs of the family {where}{rules}"
                     if self.registry == "drug families"
                     else f"which give the controlled drug {where}{rules}"),
            "contains": f"which contain {where}",
            "group": f"related to {where} (as members of a shipped group)",
            "named": f"relating to {where} (named by the drafter)",
            "similar": f"nearest to {where} (similarity only; no route found)",
        }.get(self.relation, f"related to {where}")


def parents_phrase(parents: Sequence[ParentLink]) -> str:
    """How the examples relate to their parents, for a draft text: the first parent's phrase,
    or, when several controlled drugs each account for some examples (ring-substituted
    2-bromopropiophenones give mephedrone, 3-CMC, 3-MMC ...), one phrase naming them all.

    >>> a = ParentLink("3-cmc", "3-CMC", "controlled drugs", "drug", 1, 1.0, ("amination",))
    >>> b = ParentLink("mephedrone", "Mephedrone", "controlled drugs", "drug", 1, 1.0,
    ...                ("amination",))
    >>> parents_phrase([a, b])
    'which give the controlled drugs 3-CMC [3-cmc] and Mephedrone [mephedrone] by amination'
    """
    first = parents[0]
    same = [p for p in parents if p.registry == first.registry and p.relation == first.relation]
    if len(same) > 1 and first.registry == "controlled drugs" and first.relation == "drug":
        names = [f"{p.name} [{p.id}]" for p in same]
        rules = tuple(dict.fromkeys(r for p in same for r in p.rules))
        joined = ", ".join(names[:-1]) + " and " + names[-1]
        return (f"which give the controlled drugs {joined}"
                + (f" by {', '.join(rules)}" if rules else ""))
    phrase = first.phrase()
    also = [p for p in parents[1:] if p.registry == first.registry]
    return phrase + ("; also " + "; ".join(f"{p.name} [{p.id}]" for p in also) if also else "")


@dataclass(frozen=True, slots=True)
class Caught:
    """A compound a candidate catches besides its family: legitimate (a set) or a library row."""

    set: str
    id: str
    name: str
    smiles: str
    row: int | None = None


@dataclass(frozen=True)
class Measures:
    """What one candidate covers and what it catches besides."""

    examples: int
    examples_covered: int
    predicted: int                  # predicted members (the parents' masks) in all
    predicted_scaffold: int         # ... holding the scaffold
    predicted_covered: tuple[str, ...]
    designer_covered: tuple[str, ...]   # ids of known designer precursors (bundled) covered
    set_sizes: tuple[tuple[str, int], ...]
    caught: tuple[Caught, ...]      # legitimate chemicals caught, then library examples
    library: int | None = None      # library compounds captured (None: no library given)
    library_distinct: int | None = None

    def collateral(self, set_name: str | None = None) -> int:
        """Legitimate chemicals caught: in one set, or in all (not the library)."""
        return sum(1 for c in self.caught if c.set != "library"
                   and (set_name is None or c.set == set_name))

    @property
    def bundled_collateral(self) -> int:
        return self.collateral(BUNDLED)


@dataclass(frozen=True)
class Candidate:
    """One proposed definition: its family, rank, the definition, the group, text, measures."""

    family: int
    rank: int
    definition: Definition
    group: Group
    text: str
    measures: Measures

    @property
    def level(self) -> str:
        return self.definition.level


@dataclass(frozen=True)
class Family:
    """A cluster of examples with one scaffold, its parents and its candidates (best first)."""

    number: int
    examples: tuple[ExampleRow, ...]
    scaffold: Scaffold
    parents: tuple[ParentLink, ...]      # named on the groups, the first in their text
    predicted: tuple[str, ...]
    candidates: tuple[Candidate, ...]
    related: tuple[ParentLink, ...] = ()  # everything the examples relate to, most first

    @property
    def best(self) -> Candidate | None:
        """The top-ranked candidate that catches no legitimate chemical in the bundled set."""
        return next((c for c in self.candidates if c.measures.bundled_collateral == 0), None)


@dataclass(frozen=True)
class DraftResult:
    """Everything ``group draft`` found: one ExampleRow per input row, the families, notes."""

    examples: tuple[ExampleRow, ...]
    families: tuple[Family, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def candidates(self) -> list[Candidate]:
        """All candidates, family by family, best first within each."""
        return [c for f in self.families for c in f.candidates]

    def group_set(self) -> GroupSet:
        return GroupSet(c.group for c in self.candidates())

    def toml(self, header: Sequence[str] = ()) -> str:
        """The candidates as one group file (every group loadable by ``group check``), with a
        comment per group giving its rank and measures."""
        comments = {c.group.id: _comment(c) for c in self.candidates()}
        head = [*header, f"{DRAFT_LABEL} Candidates in rank order, best first, per family."]
        for f in self.families:
            head.append(f"family {f.number}: {len(f.examples)} examples, scaffold "
                        f"{f.scaffold.smiles()}, parents "
                        f"{', '.join(p.id for p in f.parents) or '-'}")
        return group_file_text(self.group_set(), comments=comments, header=head)

    def summary(self) -> list[str]:
        """One line per family and candidate (what the command prints on stderr)."""
        lines = [f"{sum(1 for e in self.examples if e.status == 'ok')} of {len(self.examples)} "
                 f"example rows used; {len(self.families)} "
                 f"famil{'y' if len(self.families) == 1 else 'ies'}"]
        lines += [f"  row {e.row} ({e.id}): {e.status}" for e in self.examples
                  if e.status != "ok"]
        for f in self.families:
            lines.append(f"family {f.number}: {len(f.examples)} examples, scaffold "
                         f"{f.scaffold.smiles()}; parent "
                         f"{parents_phrase(f.parents) if f.parents else '-'}")
            for c in f.candidates:
                m = c.measures
                lib = f", library {m.library}" if m.library is not None else ""
                sets = ", ".join(f"{name} {m.collateral(name)}/{size}"
                                 for name, size in m.set_sizes)
                lines.append(f"  #{c.rank} {c.group.id} ({c.level}): examples "
                             f"{m.examples_covered}/{m.examples}, predicted members "
                             f"{len(m.predicted_covered)}/{m.predicted_scaffold}; collateral "
                             f"{sets}{lib}")
        lines += list(self.notes)
        return lines


# ---------------------------------------------------------------------------------- the work


def draft_groups(examples: Iterable[Record | str | tuple[str, str]], *,
                 parent: str | None = None,
                 legitimate: Mapping[str, Sequence[Compound]] | None = None,
                 library: Any = None, knowledge: Knowledge | None = None,
                 predict_depth: int = 1, library_examples: int = 20, client: Any = None,
                 id_prefix: str = "draft", table: SubstituentTable | None = None) -> DraftResult:
    """Propose group definitions from ``examples`` and measure each.

    ``examples``: SMILES, (id, SMILES) pairs or input Records (any input format's rows).
    ``parent``: a listed substance or controlled drug (id, name, synonym, CAS) to relate the
    definitions to; found from the examples when None. ``legitimate``: named sets of legitimate
    chemicals for collateral (default: the bundled set as ``"legitimate"``; pass it along with
    your own). ``library``: a LibraryIndex (captured compounds are counted and listed).
    ``predict_depth``: masks (steps back) of the parents enumerated as predicted
    members. Raises DraftError when fewer than two examples are usable or none share a scaffold.

    >>> r = draft_groups(["CCOC(=O)C1(C)OC1c1ccccc1", "CC(C)OC(=O)C1(C)OC1c1ccccc1",
    ...                   "CC1(C(=O)O)OC1c1ccccc1"])
    >>> best = r.families[0].best
    >>> best.measures.examples_covered, best.measures.bundled_collateral
    (3, 0)
    >>> r.families[0].parents[0].id
    'bmk-glycidic-acid'
    """
    table = table or load_substituents()
    knowledge = knowledge or Knowledge()
    if legitimate is None:
        legitimate = {BUNDLED: load_legitimate()}
    legit = _prepare_sets(legitimate)
    rows, parents = _read(examples, legit)
    usable = [r for r in rows if r.status == "ok"]
    if len(usable) < 2:
        why = "; ".join(f"row {r.row} ({r.id}): {r.status}" for r in rows if r.status != "ok")
        raise DraftError(f"group draft needs at least two usable examples, got {len(usable)}"
                         + (f" ({why})" if why else ""))
    mols = {r.row: parents[r.row].mol for r in usable}
    families, notes, left = _families(usable, mols)
    if not families:
        raise DraftError("the examples share no common scaffold that could define a group: "
                         + "; ".join(notes))
    designer = _designer()
    fps: dict[int, Any] = {}     # fingerprints of the legitimate chemicals, made once
    out_families = []
    for number, (members, scaffold) in enumerate(families, start=1):
        fam_rows = tuple(_with_family(r, number) for r in members)
        stds = [parents[r.row] for r in members]
        links = (_named_parent(parent, knowledge, stds) if parent
                 else _find_parents(knowledge, stds))
        predicted = _predicted(links, knowledge, predict_depth)
        tag = f"f{number}-" if len(families) > 1 else ""
        cands = _candidates(number, fam_rows, scaffold, links, predicted, table, legit,
                            designer, library, library_examples, client,
                            f"{id_prefix}-{tag}{links[0].id}", fps)
        out_families.append(Family(number, fam_rows, scaffold, tuple(_group_parents(links)),
                                   tuple(Chem.MolToSmiles(m) for m in predicted), tuple(cands),
                                   tuple(links)))
    rows = [_with_family(r, _family_of(r.row, out_families)) if r.status == "ok" else r
            for r in rows]
    rows = [ExampleRow(r.row, r.id, r.smiles, left[r.row], r.standardized) if r.row in left
            else r for r in rows]
    return DraftResult(tuple(rows), tuple(out_families), tuple(notes))


def _with_family(r: ExampleRow, number: int | None) -> ExampleRow:
    return ExampleRow(r.row, r.id, r.smiles, r.status, r.standardized, number)


def _family_of(row: int, families: Sequence[Family]) -> int | None:
    return next((f.number for f in families for e in f.examples if e.row == row), None)


# -- reading ----------------------------------------------------------------------------------


def _records(examples: Iterable[Record | str | tuple[str, str]]) -> list[Record]:
    out = []
    for i, ex in enumerate(examples):
        if isinstance(ex, Record):
            out.append(ex)
        elif isinstance(ex, tuple):
            out.append(Record(i, str(ex[0]), str(ex[1])))
        else:
            out.append(Record(i, f"example {i + 1}", str(ex)))
    return out


def _read(examples: Iterable[Record | str | tuple[str, str]],
          legit: Mapping[str, list[tuple[Compound, Standardized | None]]]
          ) -> tuple[list[ExampleRow], dict[int, Standardized]]:
    """One ExampleRow per example, and the standardized parents of the usable ones."""
    legit_keys = {std.key: f"{c.name} ({c.note or name})" for name, comps in legit.items()
                  for c, std in comps if std is not None}
    bulk = {s.parent.key: s for s in builtin_registry().structures()
            if s.is_bulk and s.parent is not None}
    rows: list[ExampleRow] = []
    parents: dict[int, Standardized] = {}
    seen: dict[str, int] = {}
    with quiet_rdkit():
        for rec in _records(examples):
            if rec.error:
                rows.append(ExampleRow(rec.row, rec.id, rec.smiles, rec.error))
                continue
            mol, problem = parse_record(rec.smiles, rec.molblock)
            if mol is None:
                rows.append(ExampleRow(rec.row, rec.id, rec.smiles, problem or "unreadable"))
                continue
            smiles = rec.smiles or Chem.MolToSmiles(mol)
            try:
                std = standardize(mol)
            except StandardizeError as exc:
                rows.append(ExampleRow(rec.row, rec.id, smiles, str(exc)))
                continue
            if std.inorganic:
                status = "left out: an inorganic substance (no scaffold to generalize)"
            elif std.key in bulk:
                s = bulk[std.key]
                status = (f"left out: {s.name}, a bulk chemical on the list ({s.short_listing()});"
                          " a group around it would catch legitimate trade")
            elif std.key in legit_keys:
                status = (f"left out: a legitimate chemical ({legit_keys[std.key]}); a group "
                          "covering it would catch legitimate trade")
            elif std.key in seen:
                status = f"left out: the same structure as row {seen[std.key]}"
            else:
                status = "ok"
                seen[std.key] = rec.row
                parents[rec.row] = std
            rows.append(ExampleRow(rec.row, rec.id, smiles, status, std.smiles))
    return rows, parents


def _prepare_sets(sets: Mapping[str, Sequence[Compound]]
                  ) -> dict[str, list[tuple[Compound, Standardized | None]]]:
    out = {}
    with quiet_rdkit():
        for name, comps in sets.items():
            out[name] = [(c, _parent(c.smiles) if c.status == "ok" else None) for c in comps]
    return out


def _parent(smiles: str) -> Standardized | None:
    try:
        mol, _ = parse_record(smiles)
        return standardize(mol) if mol is not None else None
    except StandardizeError:
        return None


def _designer() -> list[tuple[Compound, Standardized | None]]:
    with quiet_rdkit():
        return [(c, _parent(c.smiles)) for c in load_designer_precursors()]


# -- families ---------------------------------------------------------------------------------


def _families(usable: Sequence[ExampleRow], mols: Mapping[int, Chem.Mol]
              ) -> tuple[list[tuple[list[ExampleRow], Scaffold]], list[str], dict[int, str]]:
    """Families of at least two examples with their scaffolds; notes; rows left out (why)."""
    rows = list(usable)
    scaffold, why = find_scaffold([mols[r.row] for r in rows])
    if scaffold is not None:
        return [(rows, scaffold)], [], {}
    notes = [f"all {len(rows)} examples together: {why}; clustered into families"]
    out: list[tuple[list[ExampleRow], Scaffold]] = []
    left: dict[int, str] = {}
    todo = [(rows, CLUSTER_SHARE)]
    while todo:
        group, share = todo.pop(0)
        for idx in cluster([mols[r.row] for r in group], share=share):
            members = [group[i] for i in idx]
            if len(members) < 2:
                left[members[0].row] = ("left out: shares no scaffold with the other examples "
                                        "(a family needs at least two)")
                continue
            sc, why = find_scaffold([mols[r.row] for r in members])
            if sc is not None:
                out.append((members, sc))
            elif share < 0.95:
                todo.append((members, share + 0.1))
            else:
                for r in members:
                    left[r.row] = f"left out: no scaffold with its nearest examples ({why})"
    out.sort(key=lambda f: (-len(f[0]), f[0][0].row))
    return out, notes, left


# -- parents ----------------------------------------------------------------------------------


def _find_parents(knowledge: Knowledge, stds: Sequence[Standardized]) -> list[ParentLink]:
    """The listed substances and controlled drugs the examples are, convert into, contain or (via
    a shipped group) belong with, most examples first, then the strongest relation, fewest
    steps, the smaller substance."""
    tally: dict[str, list[tuple[int, str, tuple[str, ...]]]] = {}
    names: dict[str, str] = {}
    for std in stds:
        best: dict[str, tuple[int, int, str, tuple[str, ...]]] = {}
        for sid, name, relation, steps, rules in knowledge.relations(std):
            cand = (_STRENGTH[relation], steps, relation, rules)
            if sid not in best or cand[:2] < best[sid][:2]:
                best[sid] = cand
                names.setdefault(sid, name)
        for sid, (_, steps, relation, rules) in best.items():
            tally.setdefault(sid, []).append((steps, relation, rules))
    links = []
    for sid, hits in tally.items():
        relation = min((h[1] for h in hits), key=lambda r: _STRENGTH[r])
        rules = tuple(dict.fromkeys(r for h in hits for r in h[2]))
        registry = ("precursors" if _known(knowledge.reference, sid)
                    else "drug families" if sid in knowledge.drugs.groups
                    else "controlled drugs")
        links.append(ParentLink(sid, knowledge.name(sid, names[sid]), registry, relation,
                                len(hits), sum(h[0] for h in hits) / len(hits), rules))
    links.sort(key=lambda p: (-p.examples, _STRENGTH.get(p.relation, 9), p.steps,
                              knowledge.size(p.id), p.id))
    if not links:
        return [_nearest_parent(knowledge, stds)]
    return links


def _known(reg: Any, sid: str) -> bool:
    try:
        reg.get(sid)
        return True
    except KeyError:
        return False


def _nearest_parent(knowledge: Knowledge, stds: Sequence[Standardized]) -> ParentLink:
    """No route or relation at all: the listed substance nearest by similarity (said so)."""
    best: tuple[float, Any] = (-1.0, None)
    recipe = get_recipe("morgan2")
    for s in knowledge.reference.structures():
        if s.parent is None or s.is_inorganic or s.is_bulk:
            continue
        fp = recipe.bitvect(s.parent.mol)
        sim = max(DataStructs.TanimotoSimilarity(fp, recipe.bitvect(x.mol)) for x in stds)
        if sim > best[0]:
            best = (sim, s)
    if best[1] is None:
        raise DraftError("no listed substance to relate the examples to; name one with --parent")
    s = best[1]
    return ParentLink(s.id, s.name, "similar", "similar", 0, 0.0)


def _named_parent(query: str, knowledge: Knowledge, stds: Sequence[Standardized]
                  ) -> list[ParentLink]:
    """The parent the drafter named (a listed substance or controlled drug), and how many
    examples relate to it."""
    target: Any = None
    registry = "precursors"
    try:
        target = knowledge.reference.find(query)
    except (UnknownSubstanceError, KeyError):
        try:
            target = knowledge.drugs.registry.find(query)
            registry = "controlled drugs"
        except (UnknownSubstanceError, KeyError):
            raise UnknownSubstanceError(
                f"--parent {query!r} is neither a listed substance nor a controlled drug; try "
                "`precursor-screen list --search TEXT` or `list --drugs --search TEXT`") from None
    related = [p for p in _find_parents(knowledge, stds) if p.id == target.id]
    if related:
        p = related[0]
        return [ParentLink(p.id, p.name, registry, p.relation, p.examples, p.steps, p.rules)]
    return [ParentLink(target.id, target.name, registry, "named", 0, 0.0)]


def _predicted(links: Sequence[ParentLink], knowledge: Knowledge, depth: int
               ) -> list[Chem.Mol]:
    """The parents' masked forms (listed substances) and pre-precursors (controlled drugs): the
    members a definition is expected to cover. Every parent with a structure that relates to
    an example counts, up to MAX_PREDICTED_PARENTS of them."""
    out: dict[str, Chem.Mol] = {}
    for link in [p for p in links if p.registry != "similar"][:MAX_PREDICTED_PARENTS]:
        try:
            if link.registry == "precursors":
                sub = knowledge.reference.get(link.id)
                if sub.parent is None or sub.is_inorganic:
                    continue
                forms, _ = enumerate_masked(sub, rules=knowledge.rules, groups=knowledge.groups,
                                            reference=knowledge.reference, depth=depth)
            else:
                drug = knowledge.drugs.registry.get(link.id)
                if drug.parent is None:
                    continue
                forms, _ = enumerate_drug_precursors(drug, targets=knowledge.drugs,
                                                     unmask=knowledge.rules,
                                                     groups=knowledge.groups,
                                                     reference=knowledge.reference, depth=depth)
        except (KeyError, ValueError):
            continue
        for f in forms:
            if f.key not in out:
                mol = Chem.MolFromSmiles(f.smiles)
                if mol is not None:
                    out[f.key] = mol
    return list(out.values())


# -- candidates -------------------------------------------------------------------------------


def _candidates(number: int, rows: Sequence[ExampleRow], scaffold: Scaffold,
                links: Sequence[ParentLink], predicted: Sequence[Chem.Mol],
                table: SubstituentTable, legit: Mapping[str, list[tuple[Compound, Any]]],
                designer: Sequence[tuple[Compound, Any]], library: Any, library_examples: int,
                client: Any, id_base: str, fps: dict[int, Any]) -> list[Candidate]:
    recipe = get_recipe("morgan2")
    example_fps = [recipe.bitvect(m) for m in scaffold.mols]
    relaxed, _ = relaxed_query(scaffold)
    near = _nearness(legit, example_fps, relaxed, recipe, fps)
    parent_phrase = parents_phrase(_group_parents(links))
    drafted = []
    lib_rows = _LibraryRows(library, client)
    for definition in ladder(scaffold, table, predicted):
        drafted.append(_draft_one(definition, f"{id_base}-{definition.level}", rows, links,
                                  parent_phrase, scaffold, predicted, legit, designer, lib_rows,
                                  library_examples, near))
        d, _, _, m = drafted[-1]
        caught = [x for x in m.caught if x.set != "library"]
        bare = _parent(scaffold.smiles())   # the family scaffold, nothing on it
        if caught and bare is not None and all(_key(x.smiles) == bare.key for x in caught):
            # only the unsubstituted compound is legitimate: "ring-substituted X", as annexes
            # word it, i.e. X itself excepted by name
            excepted = d.excepting([(caught[0].name, bare.mol)])
            drafted.append(_draft_one(excepted, f"{id_base}-{d.level}-except", rows, links,
                                      parent_phrase, scaffold, predicted, legit, designer,
                                      lib_rows, library_examples, near))
    ranked = sorted(drafted, key=lambda d: _rank_key(d[0], d[3]))
    return [Candidate(number, i, d, g, t, m) for i, (d, g, t, m) in enumerate(ranked, start=1)]


def _draft_one(definition: Definition, gid: str, rows: Sequence[ExampleRow],
               links: Sequence[ParentLink], parent_phrase: str, scaffold: Scaffold,
               predicted: Sequence[Chem.Mol], legit: Mapping[str, list[tuple[Compound, Any]]],
               designer: Sequence[tuple[Compound, Any]], library: _LibraryRows,
               library_examples: int, near: Sequence[tuple[Any, ...]]
               ) -> tuple[Definition, Group, str, Measures]:
    text = definition.text(parent_phrase)
    provisional = _group(gid, definition, rows, links, text, ())
    gs = GroupSet([provisional])
    # positions that always carry a group (a ketone's carbon): the library rows searched must
    # carry one there too
    substituted = [p.atoms[0] for p in definition.positions if not p.hydrogen and p.span == 1
                   and not p.any_of]
    measures = _measure(gs, provisional, definition.scaffold, rows, predicted, legit, designer,
                        library, library_examples, substituted)
    keep_out = _nearest_outside(gs, provisional, near)
    return definition, _group(gid, definition, rows, links, text, keep_out, measures), text, \
        measures


def _group_parents(links: Sequence[ParentLink]) -> list[ParentLink]:
    """The parents a group names: those related to at least half as many examples as the
    first, at most MAX_PARENTS."""
    top = links[0].examples
    return [p for p in links if p.examples * 2 >= top][:MAX_PARENTS]


def _rank_key(definition: Definition, m: Measures) -> tuple[Any, ...]:
    """No collateral first; then more predicted members covered; then the broader kind; then
    without an exception before with."""
    collateral = m.collateral()
    return (collateral > 0, collateral, -len(m.predicted_covered),
            -LEVELS.index(definition.level), bool(definition.excluded))


def _group(gid: str, definition: Definition, rows: Sequence[ExampleRow],
           links: Sequence[ParentLink], text: str, keep_out: Sequence[Example],
           measures: Measures | None = None) -> Group:
    ids = ", ".join(r.id for r in rows)
    measured = ""
    if measures is not None:
        sets = ", ".join(f"{measures.collateral(n)} of {s} in {n}" for n, s in measures.set_sizes)
        lib = (f"; library: {measures.library} captured" if measures.library is not None else "")
        measured = (f" Measured when drafted: examples covered {measures.examples_covered} of "
                    f"{measures.examples}; predicted members covered "
                    f"{len(measures.predicted_covered)} of {measures.predicted_scaffold} with "
                    f"the scaffold ({measures.predicted} predicted); legitimate chemicals "
                    f"caught: {sets}{lib}.")
    rationale = (f"{text} Drafted by precursor-screen group draft from {len(rows)} examples "
                 f"({ids}); scaffold {definition.scaffold.smiles()} "
                 f"({definition.scaffold.size} heavy atoms, the maximum common substructure "
                 f"trimmed to whole groups); candidate kind '{definition.level}': "
                 f"{LEVEL_TITLES[definition.level]}.{measured}")
    parents = tuple(dict.fromkeys(p.id for p in _group_parents(links)))
    title = (f"{links[0].name} family, {LEVEL_TITLES[definition.level]}: "
             f"{definition.scaffold_text()}")
    return Group(id=gid, title=title, parents=parents, smarts=definition.smarts(),
                 exclusions=definition.exclusions(),
                 max_heavy_atoms=definition.max_heavy_atoms, status="draft",
                 rationale=rationale,
                 must_match=tuple(Example(r.standardized, r.id) for r in rows),
                 must_not_match=tuple(keep_out), source="group draft")


class _LibraryRows:
    """Library rows holding a scaffold (any substitution), searched once per scaffold and parsed
    once (the index stores each row's standardized parent): every candidate of a family is a
    subset of its scaffold's rows, so each is judged on those rows alone
    (:meth:`GroupSet.is_member`, exclusions and size limit included), which gives the same
    members as searching the library with each candidate's SMARTS."""

    def __init__(self, library: Any, client: Any = None) -> None:
        self.library = library
        self.client = client
        self._cache: dict[str, list[tuple[int, str, str, str, Chem.Mol]]] = {}

    def __bool__(self) -> bool:
        return self.library is not None

    def holding(self, scaffold: Scaffold, substituted: Sequence[int] = ()
                ) -> list[tuple[int, str, str, str, Chem.Mol]]:
        query, _ = relaxed_query(scaffold, substituted)
        smarts = Chem.MolToSmarts(query)
        if smarts not in self._cache:
            rows = sorted(self.library.smarts(smarts, client=self.client).tolist())
            info = self.library.rows(rows, ("id", "smiles", "key"))
            found = []
            with quiet_rdkit():
                for row, ident, smi, key in zip(rows, info["id"], info["smiles"], info["key"]):
                    mol = Chem.MolFromSmiles(smi)    # stored as the standardized parent
                    if mol is not None:
                        found.append((row, str(ident), smi, key, mol))
            self._cache[smarts] = found
        return self._cache[smarts]


def _measure(gs: GroupSet, group: Group, scaffold: Scaffold, rows: Sequence[ExampleRow],
             predicted: Sequence[Chem.Mol], legit: Mapping[str, list[tuple[Compound, Any]]],
             designer: Sequence[tuple[Compound, Any]], library: _LibraryRows,
             library_examples: int, substituted: Sequence[int] = ()) -> Measures:
    covered = sum(1 for m in scaffold.mols if gs.is_member(m, group))
    relaxed, _ = relaxed_query(scaffold)
    with_scaffold = [m for m in predicted if m.HasSubstructMatch(relaxed)]
    predicted_covered = tuple(Chem.MolToSmiles(m) for m in with_scaffold
                              if gs.is_member(m, group))
    designer_covered = tuple(c.id for c, std in designer
                             if std is not None and gs.is_member(std, group))
    caught = [Caught(name, c.id, c.name, std.smiles) for name, comps in legit.items()
              for c, std in comps if std is not None and gs.is_member(std, group)]
    lib = distinct = None
    if library:
        members = [(row, ident, smi, key) for row, ident, smi, key, std in
                   library.holding(scaffold, substituted) if gs.is_member(std, group)]
        lib, distinct = len(members), len({m[3] for m in members})
        caught += [Caught("library", ident, ident, smi, row)
                   for row, ident, smi, _ in members[:library_examples]]
    return Measures(len(scaffold.mols), covered, len(predicted), len(with_scaffold),
                    predicted_covered, designer_covered,
                    tuple((name, len(comps)) for name, comps in legit.items()), tuple(caught),
                    lib, distinct)


def _nearness(legit: Mapping[str, list[tuple[Compound, Any]]], example_fps: list[Any],
              relaxed: Chem.Mol, recipe: Any, fps: dict[int, Any]) -> list[tuple[Any, ...]]:
    """The legitimate chemicals, nearest to the family first: those holding the scaffold before
    those merely similar, then by Tanimoto to the nearest example (fingerprints cached in
    ``fps`` for the whole draft)."""
    out = []
    for comps in legit.values():
        for c, std in comps:
            if std is None:
                continue
            if id(std) not in fps:
                fps[id(std)] = recipe.bitvect(std.mol)
            sim = max(DataStructs.BulkTanimotoSimilarity(fps[id(std)], example_fps))
            out.append((not std.mol.HasSubstructMatch(relaxed), -sim, c.id, c, std))
    out.sort(key=lambda x: x[:3])
    return out


def _nearest_outside(gs: GroupSet, group: Group, near: Sequence[tuple[Any, ...]]
                     ) -> list[Example]:
    """must_not_match: the nearest legitimate chemicals the definition leaves out."""
    out = []
    for _, _, _, c, std in near:
        if gs.is_member(std, group):
            continue
        note = f" ({c.note})" if c.note else ""
        out.append(Example(std.smiles, f"{c.name}{note}"))
        if len(out) == MAX_MUST_NOT_MATCH:
            break
    return out


def _comment(c: Candidate) -> list[str]:
    m = c.measures
    lines = [f"family {c.family}, rank {c.rank} ({c.level}): {LEVEL_TITLES[c.level]}",
             f"examples covered {m.examples_covered}/{m.examples}; predicted members covered "
             f"{len(m.predicted_covered)}/{m.predicted_scaffold} with the scaffold "
             f"({m.predicted} predicted); known designer precursors covered "
             f"{len(m.designer_covered)}"]
    for name, size in m.set_sizes:
        found = [x for x in m.caught if x.set == name]
        lines.append(f"collateral in {name} ({size}): {len(found)}"
                     + (": " + "; ".join(f"{x.id} {x.name}" for x in found[:5]) if found else ""))
    if m.library is not None:
        lines.append(f"library compounds captured: {m.library} ({m.library_distinct} distinct)")
    return lines
