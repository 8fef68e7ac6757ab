"""Conversion rules: which products a candidate gives in one or two easy steps.

A designer precursor is a listed precursor with its skeleton intact behind a masking group:
an ester, an amide, a nitrile, a glycidate, a ketal, a bisulfite adduct, a protecting group. The
rules in ``data/conversions.toml`` undo such masks (hydrolysis, decarboxylation, deprotection, one
reduction or oxidation); `RuleSet.apply` runs them breadth-first and returns one `Route` per
distinct product, so the screen can look each product up in the list and give the route as reason.

Products:

* A rule that breaks a bond gives two pieces (acid and alcohol, ketone and diol, ...). Every
  organic piece is standardized and returned as a product of its own: the acid side of an ester
  and the alcohol side are both checked. Groups that merely come off (CO2, the Boc group,
  hydroxylamine) are not written into the rule's products and never appear.
* Pieces without carbon (water, ammonia, sulfite) and pieces of fewer than
  `MIN_PRODUCT_HEAVY_ATOMS` heavy atoms are dropped. The threshold is 2 so that methylamine (a
  listed substance, e.g. from N-methylformamide) survives while methane-sized scraps do not.
* Products heavier than the input by more than `MAX_ADDED_ATOMS` heavy atoms are skipped: no
  unmasking step adds that much (the forward rules add at most one or two atoms).
* The input itself (same stereo-free key) is never a product.

Cost: each rule's reactant template is tried with ``HasSubstructMatch`` before ``RunReactant``;
what remains is mostly `standardize` on each new product (one call per distinct product within a
search; nothing is kept between searches). A screen that only wants listed substances passes ``max_heavy_atoms`` to `apply`, so
large last-step products are never standardized.

Rules are data; a bad rule fails at load with `ShippedDataError` naming the file and the rule.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from rdkit import Chem
from rdkit.Chem import rdChemReactions, rdMolDescriptors

from precursor_screen.chem.parse import quiet_rdkit
from precursor_screen.chem.standardize import (
    Standardized,
    StandardizeError,
    parent_or_none,
    smiles_key,
    standardize,
)
from precursor_screen.errors import ShippedDataError
from precursor_screen.io.readers import read_toml
from precursor_screen.rules.fastgate import QuerySet
from precursor_screen.rules.files import data_file
from precursor_screen.rules.formulas import TargetFormulas
from precursor_screen.rules.gates import (
    QueryNeeds,
    atom_elements,
    atom_without_recursion,
    bracket_segments,
    relaxed_smarts,
)
from precursor_screen.types import Route, Step

__all__ = [
    "ConversionRule",
    "RuleSet",
    "load_conversion_rules",
    "KINDS",
    "MASK_KIND",
    "MAX_MASK_STEPS",
    "MIN_PRODUCT_HEAVY_ATOMS",
    "MAX_ADDED_ATOMS",
    "RULES_FILE",
    "LastStepCut",
    "search_for",
]

RULES_FILE = "conversions.toml"
"""Name of the shipped rule file in ``precursor_screen/rules/data/``."""

KINDS = ("unmask",)
"""Kinds a conversion file may give its rules. "unmask": the listed skeleton is already there;
the step changes it (decarboxylation, rearrangement) or an oxidation state (a reduction, an
oxidation) and counts against ``depth``."""

MASK_KIND = "mask"
"""The kind of a mask removal (``rules/masks.py``, ``data/masks.toml``): a group comes off a site
and leaves it as it was; it does not count against ``depth``."""

MAX_MASK_STEPS = 3
"""Mask removals allowed on one route besides its counted steps (a Cbz-protected ketal of a
beta-keto ester needs three): the hard cap that keeps the search finite."""

MIN_PRODUCT_HEAVY_ATOMS = 2
"""Product pieces smaller than this are dropped (methylamine, 2 heavy atoms, is kept)."""

MAX_ADDED_ATOMS = 5
"""`RuleSet.apply` skips products with more heavy atoms than the input plus this."""

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_REQUIRED: dict[str, type] = {
    "name": str, "smarts": str, "removes": str, "kind": str, "rationale": str,
    "examples": list, "negatives": list,
}
_OPTIONAL: dict[str, type] = {"reverse": str}

FieldType = type | tuple[type, ...]
"""What a rule table's field must be: a type, or one of several (``isinstance``'s argument)."""


@dataclass(frozen=True, slots=True)
class ConversionRule:
    """One easy step, as written in the rule file (see ``data/conversions.toml``).

    The compiled reaction is not kept here (a frozen record pickles and compares as plain data);
    `RuleSet` compiles each rule once.
    """

    id: str
    name: str
    smarts: str
    removes: str
    kind: str
    rationale: str
    examples: tuple[tuple[str, str], ...]
    negatives: tuple[str, ...]
    reverse: str = ""
    alternatives: tuple[str, ...] = ()   # further reaction SMARTS of the same step (masks)
    reverse_alternatives: tuple[str, ...] = ()  # further reverse SMARTS (for `enumerate`)
    removal: str = ""                    # a mask's removal conditions
    site: str = ""                       # the site a mask restores
    protecting_group: bool = False       # a mask that is a defined protecting group

    @property
    def is_mask(self) -> bool:
        """True for a mask removal, which does not count against ``depth``."""
        return self.kind == MASK_KIND


class _Compiled:
    """One reaction of a rule (a rule with alternatives has several) and its reactant template,
    used as a quick prefilter; ``index`` is the rule's position in its RuleSet."""

    __slots__ = ("rule", "index", "rxn", "query", "rev_rxn", "rev_query", "mask", "needs",
                 "rev_needs", "screen", "rdkit_screen", "text")

    def __init__(self, rule: ConversionRule, index: int, smarts: str | None, source: str,
                 reverse: str = "") -> None:
        self.rule = rule
        self.index = index
        self.text = (smarts or "", reverse)      # what it runs, for `_rule_pieces`' memo
        self.mask = rule.is_mask
        self.rxn: rdChemReactions.ChemicalReaction | None = None
        self.query: Chem.Mol | None = None
        if smarts is not None:   # None: a reverse-only entry (a rule's further reverse SMARTS)
            self.rxn, self.query = _compile(smarts, rule.id, "smarts", source)
        self.rev_rxn: rdChemReactions.ChemicalReaction | None = None
        self.rev_query: Chem.Mol | None = None
        if reverse:
            self.rev_rxn, self.rev_query = _compile(reverse, rule.id, "reverse", source)
        self.needs = _needed_elements(self.query)
        self.rev_needs = _needed_elements(self.rev_query)
        # relaxed substrate query: the C matcher's (neighbour counts bounded) and RDKit's
        self.screen = relaxed_smarts(self.query) if self.query is not None else ""
        self.rdkit_screen = (relaxed_smarts(self.query, degrees=False) if self.query is not None
                             else "")


def _needed_elements(query: Chem.Mol | None) -> tuple[frozenset[int], ...]:
    """For each atom of ``query`` that can only be a heteroatom, the elements it may be: a
    molecule with none of them cannot match, and is not tested (silyl masks on molecules
    without silicon, halide masks without a halogen, ...)."""
    if query is None:
        return ()
    needed = set()
    for atom in query.GetAtoms():
        z = atom_elements(atom)
        if z is not None and not z & {0, 1, 6}:
            needed.add(z)
    return tuple(sorted(needed, key=sorted))


def _compile(smarts: str, rule_id: str, field: str, source: str
             ) -> tuple[rdChemReactions.ChemicalReaction, Chem.Mol]:
    where = f"{source}: [{rule_id}]"
    try:
        with quiet_rdkit():
            rxn = rdChemReactions.ReactionFromSmarts(smarts)
    except ValueError as exc:
        raise ShippedDataError(f"{where}: unparsable reaction SMARTS in '{field}': {exc}") from None
    if rxn is None:
        raise ShippedDataError(f"{where}: unparsable reaction SMARTS in '{field}'")
    if rxn.GetNumReactantTemplates() != 1 or rxn.GetNumProductTemplates() < 1:
        raise ShippedDataError(
            f"{where}: '{field}' must have one reactant and at least one product template, "
            f"has {rxn.GetNumReactantTemplates()} and {rxn.GetNumProductTemplates()}")
    rxn.Initialize()
    _warnings, errors = rxn.Validate(silent=True)
    if errors:
        raise ShippedDataError(f"{where}: reaction SMARTS in '{field}' fails RDKit validation")
    query = rxn.GetReactantTemplate(0)
    Chem.FastFindRings(query)  # ring queries (!@) need ring info on the template too
    return rxn, query


class RuleSet:
    """Compiled conversion rules, applied breadth-first.

    Built once (by `load_conversion_rules`) and passed in; it pickles as its rules and recompiles
    on unpickling, so worker processes get their own copy.

    Nothing is cached across searches: caches of one-step results and standardized pieces (RDKit
    molecules, up to 20,000 each) saved ~3% early in a long screen and cost ~20% after 150,000
    MOSES molecules (allocation-heavy RDKit calls slowed as the heap filled with them; README,
    Speed).
    """

    __slots__ = ("rules", "source", "_compiled", "_by_id", "_same", "_rev_same", "_products",
                 "_screen_groups", "_screens_fast", "_protecting", "_freed", "_protecting_deletes",
                 "_rev_by_elements", "_rev_prefix", "_screens_of", "_wanted", "_of_kind",
                 "_protecting_needs", "_recursion_needs", "_fast_screens")

    def __init__(self, rules: Iterable[ConversionRule], source: str = "<rules>") -> None:
        self.rules: tuple[ConversionRule, ...] = tuple(rules)
        self.source = source
        ids = [r.id for r in self.rules]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ShippedDataError(f"{source}: duplicate rule id(s): {', '.join(duplicates)}")
        self._compiled = tuple(
            [_Compiled(r, i, smarts, source, r.reverse if k == 0 else "")
             for i, r in enumerate(self.rules)
             for k, smarts in enumerate((r.smarts, *r.alternatives))]
            + [_Compiled(r, i, None, source, rev) for i, r in enumerate(self.rules)
               for rev in r.reverse_alternatives])
        self._by_id = {r.id: i for i, r in enumerate(self.rules)}
        self._products: dict[str, Standardized] = {}   # the latest search's products, by SMILES
        # index of the first rule with the same substrate template (one match test serves all)
        self._same = _first_same([c.query for c in self._compiled])
        self._rev_same = _first_same([c.rev_query for c in self._compiled])
        # the reverse reactions a molecule's elements allow, by element set (few sets occur)
        self._rev_by_elements: dict[frozenset[int], list[tuple[int, _Compiled]]] = {}
        self._rev_prefix = _shared_prefixes([c.rev_query for c in self._compiled])
        # the reactions grouped by relaxed substrate query (see `relaxed_smarts`): (RDKit's
        # query, elements it needs, positions of its reactions); the C matcher's, by group
        groups: dict[str, list[int]] = {}
        for position, c in enumerate(self._compiled):
            if c.query is not None:
                groups.setdefault(c.screen, []).append(position)
        self._screen_groups = tuple(
            (query, _needed_elements(query), tuple(members))
            for query, members in ((Chem.MolFromSmarts(self._compiled[members[0]].rdkit_screen),
                                    members) for members in groups.values()))
        self._fast_screens = tuple(Chem.MolFromSmarts(smarts) for smarts in groups)
        self._screens_fast = QuerySet.of_queries(self._fast_screens)
        # what each reaction's recursive SMARTS demand (its screen is the rest), by position
        self._recursion_needs = QueryNeeds(
            [c.query if c.query is not None else _EMPTY for c in self._compiled], whole=False)
        # the protecting-group masks, each with its relaxed substrate query (tested first: it
        # has no recursive SMARTS, and most molecules fail it)
        self._protecting = tuple((self._compiled[p], self._screen_groups[g][0])
                                 for g, (_, _, members) in enumerate(self._screen_groups)
                                 for p in members if self._compiled[p].rule.protecting_group)
        # what each of them demands, asked of the C matcher in one call (`QueryNeeds`)
        self._protecting_needs = QueryNeeds([c.query for c, _ in self._protecting])
        # each of them without the conditions on its attachment atom that another mask's
        # removal can lift (`_lifted`): by position in `_protecting`, (query, reaction)
        self._freed = {k: lifted for k, (c, _) in enumerate(self._protecting)
                       if (lifted := _lifted(c)) is not None}
        # every one takes a heavy atom off wherever its template matches (`has_protecting_groups`)
        self._protecting_deletes = all(c.rxn is not None and _deletes_heavy_atom(c.rxn)
                                       for c, _ in self._protecting)
        # for each rule, the screen groups holding one of its reactions (`_one_step`'s ``only``)
        screens_of: dict[int, list[int]] = {}
        for g, (_, _, members) in enumerate(self._screen_groups):
            for p in members:
                screens_of.setdefault(self._compiled[p].index, []).append(g)
        self._screens_of = {i: tuple(gs) for i, gs in screens_of.items()}
        self._wanted: dict[frozenset[int] | None, tuple[list[int], int]] = {}  # `_screens_for`
        # the rules of each kind (mask removals, counted steps), for a step allowing one kind
        self._of_kind = {mask: frozenset(i for i, r in enumerate(self.rules) if r.is_mask == mask)
                         for mask in (True, False)}

    def __reduce__(self) -> tuple[Any, ...]:
        return (RuleSet, (self.rules, self.source))

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet({len(self.rules)} rules from {self.source})"

    def reactions(self) -> list[tuple[str, rdChemReactions.ChemicalReaction]]:
        """(rule id, compiled forward reaction) of every rule (every alternative of a mask), in
        file order."""
        return [(c.rule.id, c.rxn) for c in self._compiled if c.rxn is not None]

    @property
    def has_masks(self) -> bool:
        """True when some rule is a mask removal (free against ``depth``)."""
        return any(r.is_mask for r in self.rules)

    def rule(self, rule_id: str) -> ConversionRule:
        """Return the rule with this id; KeyError names the known ids."""
        try:
            return self.rules[self._by_id[rule_id]]
        except KeyError:
            raise KeyError(f"no conversion rule {rule_id!r}; known: {', '.join(self._by_id)}") from None

    # -- public application -------------------------------------------------------------------

    def apply(self, mol: Chem.Mol | Standardized, *, depth: int = 2, max_products: int = 200,
              max_heavy_atoms: int | None = None,
              last_step_gate: Callable[[Standardized], bool] | None = None,
              max_masks: int = MAX_MASK_STEPS,
              targets: TargetFormulas | None = None) -> list[Route]:
        """Return one shortest `Route` per distinct product reachable in up to ``depth`` counted
        steps, with up to ``max_masks`` mask removals besides (a mask does not count).

        The input is standardized first (a `Standardized` is taken as it is). Routes come in
        order of counted steps, then of all steps (first found, by rule order and product
        SMILES, among equals): deterministic. At most ``max_products`` routes come back; the
        input itself is never among them.

        ``max_heavy_atoms`` (optional) leaves out products larger than that: a screen looking for
        listed substances passes the size of the largest one. Larger intermediates are still
        expanded, but large products that cannot be taken further are never standardized, which
        is most of the cost on large molecules. Raises `StandardizeError` when ``mol`` cannot be
        standardized (a screen standardizes first and passes the `Standardized`).

        ``last_step_gate`` (optional): an intermediate (standardized) is expanded only when it
        passes (a screen passes its skeleton gate: masks and conversions never build a carbon or
        a ring, so no product of an intermediate without a target's skeleton can be that
        target).

        ``targets`` (optional): the caller looks routes up only to find these (its listed
        substances): a product that can be taken no further and cannot be one of them (by its
        heavy-atom formula, `precursor_screen.rules.formulas`) is not made, nor returned. The
        routes to the targets are the same as without it (see `search_for`).

        >>> from precursor_screen.chem.parse import parse_smiles
        >>> from precursor_screen.rules.masks import load_rules
        >>> rules = load_rules()
        >>> apaan = parse_smiles("CC(=O)C(C#N)c1ccccc1")[0]
        >>> route = next(r for r in rules.apply(apaan) if r.product == "CC(=O)Cc1ccccc1")
        >>> [step.rule_id for step in route.steps]
        ['nitrile-to-acid', 'beta-keto-acid-decarboxylation']
        >>> ketal = parse_smiles("O=C(OCc1ccccc1)N1CCC2(CC1)OCCO2")[0]  # two masks, no count
        >>> [s.rule_id for s in next(r for r in rules.apply(ketal, depth=0)
        ...                          if r.product == "O=C1CCNCC1").steps]
        ['n-cbz-removal', 'ketal-hydrolysis']
        """
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        return search_for(targets, max_products, partial(
            self._search, mol, depth, max_products, max_added=MAX_ADDED_ATOMS,
            max_heavy_atoms=max_heavy_atoms, prune=last_step_gate, max_masks=max_masks))

    def reverse(self, mol: Chem.Mol | Standardized, depth: int = 1,
                max_products: int = 200, *, admit: Callable[[int], bool] | None = None,
                per_rule: bool = False) -> list[Route]:
        """Return routes running the rules' ``reverse`` SMARTS (masked forms of ``mol``).

        Best effort, for enumerating candidate designer precursors of a listed substance; rules
        without a reverse SMARTS are skipped, and every step counts. Same ordering and return
        type as `apply`.

        >>> from precursor_screen.chem.parse import parse_smiles
        >>> bmk = parse_smiles("CC(=O)Cc1ccccc1")[0]
        >>> "CC1(C(=O)O)OC1c1ccccc1" in {r.product for r in load_conversion_rules().reverse(bmk)}
        True
        """
        return self._expand(mol, depth, max_products, reverse=True, max_added=12 * depth,
                            max_heavy_atoms=None, admit=admit, per_rule=per_rule)

    def apply_rule(self, mol: Chem.Mol | Standardized, rule_id: str, *,
                   reverse: bool = False) -> list[Standardized]:
        """Return the standardized products of one rule applied once, sorted by SMILES.

        Used by the rule tests; no cache, no size limit, the input may come back.
        """
        index = self._by_id.get(rule_id)
        if index is None:
            self.rule(rule_id)  # raises with the known ids
            raise AssertionError  # pragma: no cover
        start = mol if isinstance(mol, Standardized) else standardize(mol)
        by_key: dict[str, Standardized] = {}
        with quiet_rdkit():
            for compiled in self._compiled:
                if compiled.index != index or (compiled.rev_rxn if reverse else compiled.rxn) is None:
                    continue
                for _raw, piece in _rule_pieces(compiled, start.mol, reverse):
                    product = _standardize_piece(piece)
                    if product is not None and product.key not in by_key:
                        by_key[product.key] = product
        return sorted(by_key.values(), key=lambda p: p.smiles)

    def removed(self, parent: str, rule_id: str, product: str) -> str:
        """The SMILES of what came off when ``rule_id`` turned ``parent`` into ``product`` (both
        SMILES as in a route's steps): the atoms of ``parent`` not in ``product``, as molecules
        with their hydrogens (a mask's leaving group: the alcohol of an ester, the amine of an
        amide, the diol of a ketal); '' when nothing heavy came off or the step is not found.

        For reasons, which say what a route actually removed.

        >>> from precursor_screen.rules.masks import load_rules
        >>> load_rules().removed("CCOC(=O)Cc1ccccc1", "ester-hydrolysis", "O=C(O)Cc1ccccc1")
        'CCO'
        """
        index = self._by_id.get(rule_id)
        start = parent_or_none(parent)
        want = smiles_key(product)
        if index is None or start is None or not want:
            return ""
        with quiet_rdkit():
            for compiled in self._compiled:
                if compiled.index != index or compiled.rxn is None:
                    continue
                for outcome in compiled.rxn.RunReactant(start.mol, 0):
                    for piece in outcome:
                        kept = _kept_atoms(piece)
                        if kept is None:
                            continue
                        fixed = Chem.Mol(piece)
                        _fix_hydrogens(fixed, start.mol, fixed.GetNumAtoms())
                        try:
                            Chem.SanitizeMol(fixed)
                        except Exception:  # noqa: BLE001 - RDKit raises several types
                            continue
                        for frag in Chem.GetMolFrags(fixed, asMols=True, sanitizeFrags=False):
                            p = _standardize_piece(frag)
                            if p is not None and p.key == want:
                                return _leaving(start.mol, _kept_atoms(frag) or set())
        return ""

    def protecting_group_atoms(self, mol: Chem.Mol, smiles: str | None = None, *,
                               freed: bool = False) -> int:
        """Heavy atoms of ``mol`` in the defined protecting groups the masks remove (Boc, Cbz,
        trityl, silyl groups ...: masks with ``protecting_group``): what a route may take off
        whatever its size. A screen leaves them out of the candidate's size when it weighs how
        much of the candidate a product keeps. ``smiles``: ``Chem.MolToSmiles(mol)`` when the
        caller has it: the C matcher then answers what each mask's template demands first, and
        RDKit is asked only the templates that may match (`QueryNeeds`).

        ``freed``: also the groups a route may take off once another mask is gone (an N-benzyl
        of a sulfonamide, once the sulfonyl is off): those whose attachment atom meets the
        template but for conditions another removal can lift (`_lifted`). A screen's size
        floors need these: a route's product is weighed against what is left of the candidate
        after every group the route took off."""
        return _removed_atoms(mol, list(self._protecting_matches(mol, smiles, freed)))

    def has_protecting_groups(self, mol: Chem.Mol, smiles: str | None = None) -> bool:
        """True when a protecting group can come off ``mol`` now: ``protecting_group_atoms(mol,
        smiles) > 0``, answered without running the reactions where every protecting-group
        mask deletes a heavy atom of its template (then a template that matches takes one
        off)."""
        if not self._protecting_deletes:
            return self.protecting_group_atoms(mol, smiles) > 0
        return next(self._protecting_matches(mol, smiles, False), None) is not None

    def _protecting_matches(self, mol: Chem.Mol, smiles: str | None, freed: bool
                            ) -> Iterator[rdChemReactions.ChemicalReaction]:
        """The reaction of each protecting-group mask whose template (``freed``: lifted, where
        `_lifted` lifts it) matches ``mol``, in order. With the C matcher's answer, only the
        masks whose relaxed form and recursive parts are all in the molecule are asked; without
        it, those whose elements and relaxed screen are."""
        needs = self._protecting_needs
        found = needs.found(mol, smiles)
        elements = _elements(mol) if found is None else frozenset()
        screened: dict[int, bool] = {}
        for k in range(len(self._protecting)) if found is None else needs.possible(found):
            compiled, screen = self._protecting[k]
            if found is None:
                if not all(z & elements for z in compiled.needs):
                    continue
                ok = screened.get(id(screen))
                if ok is None:
                    ok = screened[id(screen)] = mol.HasSubstructMatch(screen)
                if not ok:
                    continue
            query, rxn = (self._freed[k] if freed and k in self._freed
                          else (compiled.query, compiled.rxn))
            if mol.HasSubstructMatch(query):
                yield rxn

    def step_text(self, parent: str, step: Step) -> tuple[str, str]:
        """How a reason names one step from ``parent`` (SMILES): ("rule name (removes what came
        off)", the SMILES of what came off). A mask says what it is and how it comes off;
        ``{piece}`` in a rule's ``removes`` is the piece the route actually removed.

        >>> from precursor_screen.rules.masks import load_rules
        >>> load_rules().step_text("CCOC(=O)Cc1ccccc1",
        ...                        Step("ester-hydrolysis", "ester hydrolysis", "O=C(O)Cc1ccccc1"))
        ('ester hydrolysis (mask, by hydrolysis: removes the alcohol CCO)', 'CCO')
        """
        try:
            rule = self.rule(step.rule_id)
        except KeyError:
            return step.rule_name, ""
        piece = self.removed(parent, rule.id, step.product)
        removes = rule.removes
        if "{piece}" in removes:
            removes = " ".join(removes.replace("{piece}", piece.replace(".", " and ")).split())
        how = f"mask, by {rule.removal}: " if rule.is_mask else ""
        if not removes:
            return (f"{rule.name} ({how.rstrip(': ')})" if how else rule.name), piece
        if removes.startswith("nothing (") and removes.endswith(")"):
            return f"{rule.name} ({how}{removes[9:-1]})", piece
        return f"{rule.name} ({how}removes {removes})", piece

    def product(self, smiles: str) -> Standardized | None:
        """A product of the latest search (by its SMILES, as in `Step.product`) as
        standardized, so callers judging its routes need not parse it again; None otherwise."""
        return self._products.get(smiles)

    # -- machinery ----------------------------------------------------------------------------

    def _begin(self, mol: Chem.Mol | Standardized, max_added: int,
               max_heavy_atoms: int | None) -> tuple[Standardized, int, int]:
        """A search's start, standardized, with the heavy atoms a product may have (``limit``)
        and a returned one (``shown``); forgets the products of the search before."""
        start = mol if isinstance(mol, Standardized) else standardize(mol)
        self._products.clear()      # remembered for this search's routes only
        limit = start.mol.GetNumHeavyAtoms() + max_added
        return start, limit, limit if max_heavy_atoms is None else min(limit, max_heavy_atoms)

    def _search(self, mol: Chem.Mol | Standardized, depth: int, max_products: int, *,
                max_added: int, max_heavy_atoms: int | None,
                prune: Callable[[Standardized], bool] | None, max_masks: int,
                cut: LastStepCut | None = None) -> list[Route]:
        """Cheapest-first search: (counted steps, all steps). A mask removal costs no counted
        step; a product is settled (its route kept) when first taken from the queue, so each
        product keeps its cheapest route. ``prune``: an intermediate failing it is not expanded.
        ``cut``: the test of products that can be taken no further (see `search_for`).

        Every entry that can be taken further sorts before every one that cannot (those have
        both counts at their maximum), so leaving some of the latter out changes neither which
        intermediates are expanded nor the order of the routes kept.
        """
        start, limit, shown = self._begin(mol, max_added, max_heavy_atoms)
        routes: list[Route] = []
        if max_products <= 0:
            return routes
        settled = {start.key}
        pieces: dict[str, Standardized | None] = {start.smiles: start}  # raw SMILES -> parent
        queue: list[tuple[int, int, int, Standardized, tuple[Step, ...]]] = [(0, 0, 0, start, ())]
        order = 0
        with quiet_rdkit():
            while queue:
                counted, total, _, parent, path = heapq.heappop(queue)
                if path:
                    if parent.key in settled:
                        continue
                    settled.add(parent.key)
                    self._products[parent.smiles] = parent
                    if parent.mol.GetNumHeavyAtoms() <= shown:
                        routes.append(Route(path))
                        if len(routes) >= max_products:
                            return routes
                can_count = counted < depth
                can_mask = total - counted < max_masks
                if not (can_count or can_mask):
                    continue
                if path and prune is not None and not prune(parent):
                    continue
                # one kind of step left: the other kind's rules are not run; one step left in
                # all: every product is a last one, made only when it could be a target
                only = None if can_count and can_mask else self._of_kind[can_mask]
                final = (depth - counted) + (max_masks - total + counted) == 1
                for compiled, raw, piece in self._one_step(parent, False, only,
                                                           cut=cut if final else None):
                    size = piece.GetNumHeavyAtoms()
                    c = counted + (0 if compiled.mask else 1)
                    last = c == depth and total + 1 - c == max_masks   # cannot be taken further
                    if size > limit or (last and size > shown):
                        continue
                    if raw in pieces:
                        product = pieces[raw]
                    else:
                        product = pieces[raw] = _standardize_piece(piece, raw)
                        if product is not None:
                            pieces.setdefault(product.smiles, product)
                    if product is None or product.key in settled:
                        continue
                    rule = compiled.rule
                    order += 1
                    heapq.heappush(queue, (c, total + 1, order, product,
                                           path + (Step(rule.id, rule.name, product.smiles),)))
        return routes

    def _expand(self, mol: Chem.Mol | Standardized, depth: int, max_products: int, *,
                reverse: bool, max_added: int, max_heavy_atoms: int | None,
                last_step: tuple[Callable[[Standardized], bool], frozenset[int],
                                 Callable[[Standardized], bool] | None] | None = None,
                admit: Callable[[int], bool] | None = None, per_rule: bool = False,
                first: frozenset[int] | None = None,
                cut: LastStepCut | None = None) -> list[Route]:
        """Breadth-first search in which every step counts (masks too): the reverse rules, and
        the drug stage, whose gate argument is made for routes of at most two steps of any kind.
        ``last_step`` = (test, rule indices, prefilter): an intermediate whose last step is next
        and that fails the test (both asked of the standardized intermediate) is tried with
        those rules only, and not at all when it fails
        the prefilter (a gate that knows no other rule can reach a target from it; see
        `precursor_screen.rules.gates`). ``admit``: asked of a rule (its index) whose template
        matched, before the first step runs it; False skips it. ``per_rule``: a product reached
        by several rules is kept once per rule (else once, by the first rule), for a caller
        that checks each rule's step. ``first``: the rules (indices) run on ``mol`` itself
        (all when None). ``cut``: the test of the last level's products (see `search_for`;
        not with ``per_rule``)."""
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        if per_rule and cut is not None:
            raise ValueError("a search keeping each rule's products makes them all: no cut")
        start, limit, shown = self._begin(mol, max_added, max_heavy_atoms)
        routes: list[Route] = []
        if max_products <= 0:
            return routes
        seen = {start.key}          # product identities (stereo-free keys)
        seen_raw = {start.smiles}   # raw product SMILES already handled: skip re-standardizing
        # per_rule: each rule's products apart (one product reached by two rules, twice)
        by_rule: dict[str, tuple[set[str], set[str]]] | None = {} if per_rule else None
        frontier: list[tuple[Standardized, tuple[Step, ...]]] = [(start, ())]
        with quiet_rdkit():
            for level in range(1, depth + 1):
                # products over ``shown`` are kept only as intermediates, so not at the last step
                cap = shown if level == depth else limit
                following: list[tuple[Standardized, tuple[Step, ...]]] = []
                for parent, path in frontier:
                    only = first if level == 1 else None
                    if last_step is not None and level == depth and path \
                            and not last_step[0](parent):
                        only = last_step[1]
                        if not only or (last_step[2] is not None
                                        and not last_step[2](parent)):
                            continue
                    for compiled, raw, piece in self._one_step(
                            parent, reverse, only, admit if level == 1 else None,
                            cut if level == depth else None):
                        if by_rule is not None:
                            seen, seen_raw = by_rule.setdefault(
                                compiled.rule.id, ({start.key}, {start.smiles}))
                        if raw in seen_raw or piece.GetNumHeavyAtoms() > cap:
                            continue
                        seen_raw.add(raw)
                        product = _standardize_piece(piece, raw)
                        if product is None or product.key in seen:
                            continue
                        seen.add(product.key)
                        seen_raw.add(product.smiles)
                        self._products[product.smiles] = product
                        rule = compiled.rule
                        steps = path + (Step(rule.id, rule.name, product.smiles),)
                        if product.mol.GetNumHeavyAtoms() <= shown:
                            routes.append(Route(steps))
                            if len(routes) >= max_products:
                                return routes
                        following.append((product, steps))
                if not following:
                    break
                frontier = following
        return routes

    def _screens_for(self, only: frozenset[int] | None) -> tuple[list[int], int]:
        """The screen groups of the rules whose indices are in ``only`` (all when None), as a
        list and as a bit mask (remembered)."""
        found = self._wanted.get(only)
        if found is None:
            groups = (range(len(self._screen_groups)) if only is None else
                      {g for i in only for g in self._screens_of.get(i, ())})
            wanted = sorted(groups)
            found = self._wanted[only] = (wanted, sum(1 << g for g in wanted))
        return found

    def _one_step(self, std: Standardized, reverse: bool, only: frozenset[int] | None = None,
                  admit: Callable[[int], bool] | None = None, cut: LastStepCut | None = None
                  ) -> tuple[tuple[_Compiled, str, Chem.Mol], ...]:
        """Every rule (or those whose index is in ``only``; of those whose template matches,
        those ``admit`` lets through) applied once: (compiled reaction, raw piece SMILES,
        piece), in rule then SMILES order; with ``cut``, a reaction's product none of whose
        pieces could be a target is left out (and counted).

        Cheap tests first: the elements a reaction needs (from the formula), then its relaxed
        substrate query (`relaxed_smarts`), shared by the reactions written alike and tested once,
        then the substrate template itself (shared by identical ones)."""
        mol = std.mol
        found: list[tuple[int, list[tuple[_Compiled, str, Chem.Mol]]]] = []
        matched: dict[int, bool] = {}
        recursion, demanded = self._recursion_needs, None   # C bits: templates' recursion
        if reverse:
            elements = _elements(mol)
            candidates = self._rev_by_elements.get(elements)  # type: ignore[assignment]
            if candidates is None:
                candidates = self._rev_by_elements[elements] = [
                    (p, c) for p, c in enumerate(self._compiled)
                    if c.rev_query is not None and all(z & elements for z in c.rev_needs)]
            shared = self._rev_same
        else:
            candidates = []
            wanted, wanted_bits = self._screens_for(only)
            # every screen at once by the C matcher, and then what the templates' recursive
            # SMARTS demand; a screen keeps each template atom's elements, so one that matched
            # leaves no element test to make
            passed = self._screens_fast.matches(mol, std.smiles)
            if passed is not None:
                demanded = recursion.found(mol, std.smiles)
                bits = passed & wanted_bits
                while bits:
                    low = bits & -bits
                    bits ^= low
                    candidates.extend((p, self._compiled[p])
                                      for p in self._screen_groups[low.bit_length() - 1][2])
            else:   # RDKit asks each screen the molecule's elements allow
                elements = _elements(mol)
                for g in wanted:
                    screen, needs, members = self._screen_groups[g]
                    if not all(z & elements for z in needs) or not mol.HasSubstructMatch(screen):
                        continue
                    candidates.extend((p, self._compiled[p]) for p in members
                                      if all(z & elements for z in self._compiled[p].needs))
            candidates.sort(key=lambda pc: pc[0])
            shared = self._same
        prefixes: dict[int, bool] = {}
        for position, compiled in candidates:
            if only is not None and compiled.index not in only:
                continue
            first = shared[position]
            hit = matched.get(first)
            if hit is None and reverse and (prefix := self._rev_prefix[position]) is not None:
                ok = prefixes.get(id(prefix))
                if ok is None:
                    ok = prefixes[id(prefix)] = mol.HasSubstructMatch(prefix)
                if not ok:
                    hit = matched[first] = False
            if hit is None and demanded is not None \
                    and not recursion.may_match(demanded, position):
                hit = False     # (not remembered: a template written alike needs the same)
            if hit is None:
                hit = matched[first] = mol.HasSubstructMatch(
                    compiled.rev_query if reverse else compiled.query)
            if hit and (admit is None or admit(compiled.index)):
                found.append((position, [(compiled, raw, piece) for raw, piece
                                         in _rule_pieces(compiled, mol, reverse, cut)]))
        return tuple(x for _, pieces in found for x in pieces)


_SYMBOL = re.compile(r"[A-Z][a-z]?")
_ATOMIC_NUMBER: dict[str, int] = {}


def _elements(mol: Chem.Mol) -> frozenset[int]:
    """The elements of ``mol``, read from its formula (a C++ call: iterating over the atoms in
    Python costs twenty times as much)."""
    out = set()
    for symbol in _SYMBOL.findall(rdMolDescriptors.CalcMolFormula(mol)):
        z = _ATOMIC_NUMBER.get(symbol)
        if z is None:
            z = _ATOMIC_NUMBER[symbol] = Chem.GetPeriodicTable().GetAtomicNumber(symbol)
        out.add(z)
    return frozenset(out)


def _first_same(queries: Sequence[Chem.Mol | None]) -> tuple[int, ...]:
    """For each query, the index of the first one written the same (itself when unique)."""
    first: dict[str, int] = {}
    out = []
    for i, q in enumerate(queries):
        out.append(first.setdefault(Chem.MolToSmarts(q), i) if q is not None else i)
    return tuple(out)


_CARBON = Chem.MolFromSmarts("[#6]")
_EMPTY = Chem.MolFromSmarts("*")
PREFIX_ATOMS = 4
"""Reverse queries whose first this many atoms (a connected part of each) are written alike
share that part as a screen, tested once: the eight N-acyl anilide templates, the four aryl
ketone aminations."""


def _shared_prefixes(queries: Sequence[Chem.Mol | None]) -> tuple[Chem.Mol | None, ...]:
    """For each query, the query of its first `PREFIX_ATOMS` atoms when at least one other
    query begins the same way, else None. A part of a query matches wherever the whole does, so
    a molecule failing it fails every query that shares it."""
    keys: list[str | None] = []
    for q in queries:
        key = None
        if q is not None and q.GetNumAtoms() > PREFIX_ATOMS:
            plain = Chem.Mol(q)
            for atom in plain.GetAtoms():
                atom.SetAtomMapNum(0)
            key = Chem.MolFragmentToSmarts(plain, atomsToUse=list(range(PREFIX_ATOMS)))
            key = None if "." in key else key
        keys.append(key)
    compiled = {k: Chem.MolFromSmarts(k) for k in set(keys) if k and keys.count(k) > 1}
    return tuple(compiled.get(k) if k else None for k in keys)


_STEPS: dict[tuple[int, tuple[str, str], bool], tuple[Chem.Mol, list[tuple[str, Chem.Mol]]]] = {}
"""`_rule_pieces` of the latest molecules, by (the molecule's id, the reaction's SMARTS, reverse):
a screen searches one candidate twice (for listed substances, then for drugs), and both searches
begin with the same unmasking reactions on the same molecule object. The molecule is kept with
its pieces, so its id cannot come back for another one while the entry lives."""
STEPS_KEPT = 64
"""Entries `_STEPS` keeps before it starts afresh (one candidate's first steps, not a cache that
grows with the run: RDKit molecules kept by the thousand slow the allocator, README Speed)."""


def _rule_pieces(compiled: _Compiled, mol: Chem.Mol, reverse: bool,
                 cut: LastStepCut | None = None) -> list[tuple[str, Chem.Mol]]:
    """Run one rule once; return its distinct organic product pieces as (raw SMILES, mol).

    Each product template gives one product; a product is split into its connected pieces, and
    pieces without carbon or under `MIN_PRODUCT_HEAVY_ATOMS` heavy atoms are dropped, and so are
    pieces holding none of the reaction's mapped atoms: what hung on a deleted atom of the
    template (the alkyl of an ester's oxygen, the ring of a morpholine amide, the rest of a
    mask) is the group coming off, not a product. With ``cut``, a product none of whose pieces
    could be one of its targets is not sanitized or written (`LastStepCut.skips`). Without, the
    answer for the same molecule object and reaction is remembered (`_STEPS`); the pieces are
    shared, and no caller changes them.
    """
    rxn = compiled.rev_rxn if reverse else compiled.rxn
    if rxn is None:
        return []
    key = (id(mol), compiled.text, reverse)
    if cut is None:
        kept = _STEPS.get(key)
        if kept is not None and kept[0] is mol:
            return kept[1]
    sizes = [rxn.GetProductTemplate(i).GetNumAtoms() for i in range(rxn.GetNumProductTemplates())]
    pieces: dict[str, Chem.Mol] = {}
    for outcome in rxn.RunReactant(mol, 0):
        for product, size in zip(outcome, sizes):
            if cut is not None and cut.skips(product):
                continue
            _fix_hydrogens(product, mol, size)
            try:
                Chem.SanitizeMol(product)
            except Exception:  # noqa: BLE001 - RDKit raises several types; skip the impossible
                continue
            frags = ((product,) if len(Chem.GetMolFrags(product)) == 1
                     else Chem.GetMolFrags(product, asMols=True, sanitizeFrags=False))
            for frag in frags:
                if frag.GetNumHeavyAtoms() < MIN_PRODUCT_HEAVY_ATOMS:
                    continue
                if not any(a.HasProp("old_mapno") for a in frag.GetAtoms()):
                    continue
                if not frag.HasSubstructMatch(_CARBON):
                    continue
                raw = Chem.MolToSmiles(frag)
                if raw not in pieces:
                    pieces[raw] = frag
    out = sorted(pieces.items())
    if cut is None:
        if len(_STEPS) >= STEPS_KEPT:
            _STEPS.clear()
        _STEPS[key] = (mol, out)
    return out


class LastStepCut:
    """One search's test of the products it can take no further: a reaction's product none of
    whose pieces could be one of ``targets`` (`TargetFormulas`) is left out; ``skipped`` counts
    the pieces left out, each of which could have been one route."""

    __slots__ = ("targets", "skipped")

    def __init__(self, targets: TargetFormulas) -> None:
        self.targets = targets
        self.skipped = 0

    def skips(self, product: Chem.Mol) -> bool:
        """True (and counted) when no piece of ``product`` could be a target."""
        left = self.targets.piece_counts(product)
        self.skipped += left
        return left > 0


def search_for(targets: TargetFormulas | None, max_products: int,
               search: Callable[..., list[Route]]) -> list[Route]:
    """Run ``search`` (a rule search taking ``cut=``) for a caller that wants only routes to
    ``targets``: first leaving out the last-step products that cannot be one, then, when the
    pieces left out could have filled ``max_products`` (the complete search would then have
    stopped sooner), again making them all. The routes to targets are those of the complete
    search, in its order; the other routes it would have returned are fewer."""
    if targets is None:
        return search()
    cut = LastStepCut(targets)
    routes = search(cut=cut)
    if not cut.skipped or len(routes) + cut.skipped < max_products:
        return routes
    return search()


def _removed_atoms(mol: Chem.Mol, reactions: Sequence[rdChemReactions.ChemicalReaction]) -> int:
    """Heavy atoms of ``mol`` that some run of one of ``reactions`` takes off (in no product
    piece that keeps a mapped atom)."""
    if not reactions:
        return 0
    gone: set[int] = set()
    with quiet_rdkit():
        for rxn in reactions:
            for outcome in rxn.RunReactant(mol, 0):
                for piece in outcome:
                    kept = _kept_atoms(piece)
                    if kept is not None:
                        gone |= set(range(mol.GetNumAtoms())) - kept
    return sum(1 for i in gone if mol.GetAtomWithIdx(i).GetAtomicNum() > 1)


def _lifted(compiled: _Compiled) -> tuple[Chem.Mol, rdChemReactions.ChemicalReaction] | None:
    """A protecting-group mask's (query, reaction) without the negated recursive conditions
    (``!$(...)``) on its mapped atoms, None when it has none: "not on a sulfonamide nitrogen"
    holds once the sulfonyl is off, so the group may come off on a route where the template
    does not match the candidate itself. Conditions on the group's own atoms stay (no mask
    makes a benzyl of what is not one)."""
    if compiled.rxn is None or compiled.query is None:
        return None
    reactants, products = compiled.text[0].split(">>")
    lifted = "".join(f"[{atom_without_recursion(text, negated_only=True)}]"
                     if bracket and re.search(r":\d+$", text)
                     else f"[{text}]" if bracket else text
                     for bracket, text in bracket_segments(reactants))
    if lifted == reactants:
        return None
    rxn = rdChemReactions.ReactionFromSmarts(f"{lifted}>>{products}")
    rxn.Initialize()
    return rxn.GetReactantTemplate(0), rxn


def _deletes_heavy_atom(rxn: rdChemReactions.ChemicalReaction) -> bool:
    """True when the reaction's (first) reactant template has a heavy atom that no product
    template keeps (an unmapped one, or one whose map number no product has)."""
    kept = {a.GetAtomMapNum() for i in range(rxn.GetNumProductTemplates())
            for a in rxn.GetProductTemplate(i).GetAtoms() if a.GetAtomMapNum()}
    return any(a.GetAtomicNum() != 1 and (not a.GetAtomMapNum() or a.GetAtomMapNum() not in kept)
               for a in rxn.GetReactantTemplate(0).GetAtoms())


def _kept_atoms(piece: Chem.Mol) -> set[int] | None:
    """Indices (in the reactant) of the reactant atoms a product piece kept; None when the
    piece kept none of the reaction's mapped atoms."""
    if not any(a.HasProp("old_mapno") for a in piece.GetAtoms()):
        return None
    return {a.GetIntProp("react_atom_idx") for a in piece.GetAtoms() if a.HasProp("react_atom_idx")}


def _leaving(reactant: Chem.Mol, kept: set[int]) -> str:
    """SMILES of the reactant's atoms outside ``kept``, each piece with its hydrogens (the bonds
    to the kept part become hydrogens: the leaving group as the molecule that comes off, less
    the water or hydrogen the step adds)."""
    rw = Chem.RWMol(reactant)
    for i in sorted(kept, reverse=True):
        rw.RemoveAtom(i)
    out = rw.GetMol()
    for atom in out.GetAtoms():
        atom.SetNoImplicit(False)
        if not atom.GetIsAromatic():
            atom.SetNumExplicitHs(0)
    try:
        Chem.SanitizeMol(out)
    except Exception:  # noqa: BLE001 - a leaving piece RDKit cannot sanitize: say nothing
        return ""
    # water is what a hydrolysis adds (the template's new oxygen replaces a deleted one), not
    # what comes off
    pieces = [p for p in Chem.MolToSmiles(out).split(".") if p and p != "O"]
    return ".".join(pieces)


def _standardize_piece(piece: Chem.Mol, raw: str | None = None) -> Standardized | None:
    """The parent of a product piece (None when it has none); ``raw``: the piece's SMILES as
    `_rule_pieces` wrote it (``Chem.MolToSmiles(piece)``), not written again."""
    try:
        return standardize(piece, smiles=raw)
    except StandardizeError:
        return None


def _fix_hydrogens(product: Chem.Mol, reactant: Chem.Mol, n_template_atoms: int) -> None:
    """Let RDKit recount hydrogens on the atoms a rule changed.

    Bracket atoms (``[C@H]``, ``[nH]``) carry explicit hydrogen counts that RunReactants copies
    unchanged, so a ``[C@H]-O`` oxidized to C=O would have five bonds. Neutral aliphatic atoms get
    their hydrogens recomputed; an aromatic atom that lost a substituent (a Boc off an indole
    nitrogen) gets one explicit hydrogen per lost bond, as ``[nH]`` needs. RDKit puts the product
    template's atoms first, so only those are looked at.
    """
    for i in range(min(n_template_atoms, product.GetNumAtoms())):
        atom = product.GetAtomWithIdx(i)
        if not atom.HasProp("old_mapno") or atom.GetFormalCharge():
            continue
        if not atom.GetIsAromatic():
            atom.SetNumExplicitHs(0)
            atom.SetNoImplicit(False)
        elif atom.HasProp("react_atom_idx"):
            before = reactant.GetAtomWithIdx(atom.GetIntProp("react_atom_idx")).GetDegree()
            lost = before - atom.GetDegree()
            if lost > 0:
                atom.SetNumExplicitHs(atom.GetNumExplicitHs() + lost)


# -- loading ----------------------------------------------------------------------------------

def load_conversion_rules(path: str | Path | None = None) -> RuleSet:
    """Return the compiled conversions from ``path``, or the shipped ``conversions.toml`` (the
    masks are not among them: `precursor_screen.rules.masks.load_rules` gives both).

    Raises `ShippedDataError` naming the file and the rule id when a rule lacks a field, has a
    field of the wrong type, an unknown kind, a SMARTS RDKit cannot compile or a test SMILES it
    cannot parse.

    >>> rules = load_conversion_rules()
    >>> rules.rule("beta-keto-acid-decarboxylation").name
    'beta-keto acid decarboxylation'
    """
    data, source = read_rule_file(path, RULES_FILE)
    return RuleSet((_parse_rule(rule_id, table, source) for rule_id, table in data.items()),
                   source)


def read_rule_file(path: str | Path | None, shipped: str) -> tuple[dict[str, Any], str]:
    """The TOML tables of a rule file and its name for messages: ``path``, or the shipped
    ``precursor_screen/rules/data/<shipped>`` when None. Raises `ShippedDataError` when the file
    is missing or unreadable, or not valid TOML."""
    file, source = (data_file(shipped), shipped) if path is None else (Path(path), str(path))
    return read_toml(file, name=source, error=ShippedDataError, what="rule file"), source


def check_fields(table: dict[str, Any], required: Mapping[str, FieldType], where: str,
                 optional: Mapping[str, FieldType] | None = None, *,
                 nonempty: Iterable[str] = ()) -> None:
    """A rule table's fields, as every rule file checks them: each required one present, none
    unknown, each of its type, the ``nonempty`` ones not blank; ShippedDataError naming
    ``where`` and the field otherwise."""
    optional = optional or {}
    for field in required:
        if field not in table:
            raise ShippedDataError(f"{where}: missing field '{field}'")
    unknown = sorted(set(table) - set(required) - set(optional))
    if unknown:
        raise ShippedDataError(f"{where}: unknown field(s): {', '.join(unknown)}")
    for field, kind in {**required, **optional}.items():
        if field in table and not isinstance(table[field], kind):
            raise ShippedDataError(f"{where}: field '{field}' must be a {_type_names(kind)}")
    for field in nonempty:
        if not table[field].strip():
            raise ShippedDataError(f"{where}: field '{field}' is empty")


def _type_names(kind: FieldType) -> str:
    """``str``, or ``str or list`` for a field that may be either."""
    return " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))


def rule_examples(table: dict[str, Any], where: str
                  ) -> tuple[list[tuple[str, str]], list[str]]:
    """A rule's test molecules: ``examples`` as (substrate, product) SMILES pairs and the
    ``negatives`` it must leave alone; ShippedDataError naming ``where`` when one is malformed or
    does not parse."""
    examples = []
    for pair in table["examples"]:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
            raise ShippedDataError(f"{where}: each example must be [substrate, product] SMILES")
        examples.append((pair[0], pair[1]))
    negatives = table["negatives"]
    if not all(isinstance(s, str) for s in negatives):
        raise ShippedDataError(f"{where}: negatives must be SMILES strings")
    with quiet_rdkit():
        for smiles in [s for pair in examples for s in pair] + negatives:
            if Chem.MolFromSmiles(smiles) is None:
                raise ShippedDataError(f"{where}: unparsable test SMILES {smiles!r}")
    return examples, negatives


def _parse_rule(rule_id: str, table: object, source: str) -> ConversionRule:
    where = f"{source}: [{rule_id}]"
    if not isinstance(table, dict):
        raise ShippedDataError(f"{where}: expected a table, got {type(table).__name__}")
    if not _SLUG.fullmatch(rule_id):
        raise ShippedDataError(f"{where}: rule id must be a lower-case slug like 'ester-hydrolysis'")
    check_fields(table, _REQUIRED, where, _OPTIONAL,
                 nonempty=("name", "smarts", "removes", "rationale"))
    if table["kind"] not in KINDS:
        raise ShippedDataError(f"{where}: unknown kind {table['kind']!r} (known: {', '.join(KINDS)})")
    examples, negatives = rule_examples(table, where)
    return ConversionRule(
        id=rule_id, name=table["name"], smarts=table["smarts"], removes=table["removes"],
        kind=table["kind"], rationale=table["rationale"], examples=tuple(examples),
        negatives=tuple(negatives), reverse=table.get("reverse", ""),
    )

