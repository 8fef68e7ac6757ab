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

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdkit import Chem
from rdkit.Chem import rdChemReactions

from precursor_screen.chem.parse import quiet_rdkit
from precursor_screen.chem.standardize import (
    Standardized,
    StandardizeError,
    standardize,
)
from precursor_screen.errors import ShippedDataError
from precursor_screen.io.readers import read_toml
from precursor_screen.rules.files import data_file
from precursor_screen.types import Route, Step

__all__ = [
    "ConversionRule",
    "RuleSet",
    "load_conversion_rules",
    "KINDS",
    "MIN_PRODUCT_HEAVY_ATOMS",
    "MAX_ADDED_ATOMS",
    "RULES_FILE",
]

RULES_FILE = "conversions.toml"
"""Name of the shipped rule file in ``precursor_screen/rules/data/``."""

KINDS = ("unmask",)
"""Allowed rule kinds. "unmask": the listed skeleton is already there, a small group comes off."""

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


class _Compiled:
    """A rule's reaction(s) and the reactant templates used as a quick prefilter."""

    __slots__ = ("rule", "rxn", "query", "rev_rxn", "rev_query")

    def __init__(self, rule: ConversionRule, source: str) -> None:
        self.rule = rule
        self.rxn, self.query = _compile(rule.smarts, rule.id, "smarts", source)
        self.rev_rxn: rdChemReactions.ChemicalReaction | None = None
        self.rev_query: Chem.Mol | None = None
        if rule.reverse:
            self.rev_rxn, self.rev_query = _compile(rule.reverse, rule.id, "reverse", source)


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

    __slots__ = ("rules", "source", "_compiled", "_by_id", "_same", "_rev_same", "_products")

    def __init__(self, rules: Iterable[ConversionRule], source: str = "<rules>") -> None:
        self.rules: tuple[ConversionRule, ...] = tuple(rules)
        self.source = source
        ids = [r.id for r in self.rules]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ShippedDataError(f"{source}: duplicate rule id(s): {', '.join(duplicates)}")
        self._compiled = tuple(_Compiled(r, source) for r in self.rules)
        self._by_id = {r.id: i for i, r in enumerate(self.rules)}
        self._products: dict[str, Standardized] = {}   # the latest search's products, by SMILES
        # index of the first rule with the same substrate template (one match test serves all)
        self._same = _first_same([c.query for c in self._compiled])
        self._rev_same = _first_same([c.rev_query for c in self._compiled])

    def __reduce__(self) -> tuple[Any, ...]:
        return (RuleSet, (self.rules, self.source))

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet({len(self.rules)} rules from {self.source})"

    def reactions(self) -> list[tuple[str, rdChemReactions.ChemicalReaction]]:
        """(rule id, compiled forward reaction) of every rule, in file order."""
        return [(r.id, c.rxn) for r, c in zip(self.rules, self._compiled)]

    def rule(self, rule_id: str) -> ConversionRule:
        """Return the rule with this id; KeyError names the known ids."""
        try:
            return self.rules[self._by_id[rule_id]]
        except KeyError:
            raise KeyError(f"no conversion rule {rule_id!r}; known: {', '.join(self._by_id)}") from None

    # -- public application -------------------------------------------------------------------

    def apply(self, mol: Chem.Mol | Standardized, *, depth: int = 2, max_products: int = 200,
              max_heavy_atoms: int | None = None,
              last_step_gate: Callable[[Chem.Mol], bool] | None = None) -> list[Route]:
        """Return one shortest `Route` per distinct product reachable in up to ``depth`` steps.

        The input is standardized first (a `Standardized` is taken as it is). Order is
        deterministic: by depth, then parent, rule order and product SMILES. At most
        ``max_products`` routes come back; the input itself is never among them.

        ``max_heavy_atoms`` (optional) leaves out products larger than that: a screen looking for
        listed substances passes the size of the largest one. Larger intermediates are still
        expanded, but large products of the last step are never standardized, which is most of
        the cost on large molecules. Raises `StandardizeError` when ``mol`` cannot be
        standardized (a screen standardizes first and passes the `Standardized`).

        ``last_step_gate`` (optional): an intermediate one step from the end is expanded only
        when it passes (a screen passes its skeleton gate: no product of an intermediate without
        a target's skeleton can be that target).

        >>> from precursor_screen.chem.parse import parse_smiles
        >>> rules = load_conversion_rules()
        >>> apaan = parse_smiles("CC(=O)C(C#N)c1ccccc1")[0]
        >>> route = next(r for r in rules.apply(apaan) if r.product == "CC(=O)Cc1ccccc1")
        >>> [step.rule_id for step in route.steps]
        ['nitrile-to-acid', 'beta-keto-acid-decarboxylation']
        """
        return self._expand(mol, depth, max_products, reverse=False, max_added=MAX_ADDED_ATOMS,
                            max_heavy_atoms=max_heavy_atoms,
                            last_step=None if last_step_gate is None
                            else (last_step_gate, frozenset(), None))

    def reverse(self, mol: Chem.Mol | Standardized, depth: int = 1,
                max_products: int = 200) -> list[Route]:
        """Return routes running the rules' ``reverse`` SMARTS (masked forms of ``mol``).

        Best effort, for enumerating candidate designer precursors of a listed substance; rules
        without a reverse SMARTS are skipped. Same ordering and return type as `apply`.

        >>> from precursor_screen.chem.parse import parse_smiles
        >>> bmk = parse_smiles("CC(=O)Cc1ccccc1")[0]
        >>> "CC1(C(=O)O)OC1c1ccccc1" in {r.product for r in load_conversion_rules().reverse(bmk)}
        True
        """
        return self._expand(mol, depth, max_products, reverse=True, max_added=12 * depth,
                            max_heavy_atoms=None)

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
            for _raw, piece in _rule_pieces(self._compiled[index], start.mol, reverse):
                product = _standardize_piece(piece)
                if product is not None and product.key not in by_key:
                    by_key[product.key] = product
        return sorted(by_key.values(), key=lambda p: p.smiles)

    def product(self, smiles: str) -> Standardized | None:
        """A product of the latest search (by its SMILES, as in `Step.product`) as
        standardized, so callers judging its routes need not parse it again; None otherwise."""
        return self._products.get(smiles)

    # -- machinery ----------------------------------------------------------------------------

    def _expand(self, mol: Chem.Mol | Standardized, depth: int, max_products: int, *,
                reverse: bool, max_added: int, max_heavy_atoms: int | None,
                last_step: tuple[Callable[[Chem.Mol], bool], frozenset[int],
                                 Callable[[Chem.Mol], bool] | None] | None = None
                ) -> list[Route]:
        """Breadth-first search. ``last_step`` = (test, rule indices, prefilter): an
        intermediate whose last step is next and that fails the test is tried with those rules
        only, and not at all when it fails the prefilter (a gate that knows no other rule can
        reach a target from it; see `precursor_screen.rules.gates`)."""
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        start = mol if isinstance(mol, Standardized) else standardize(mol)
        routes: list[Route] = []
        self._products.clear()      # remembered for this search's routes only
        if max_products <= 0:
            return routes
        limit = start.mol.GetNumHeavyAtoms() + max_added
        shown = limit if max_heavy_atoms is None else min(limit, max_heavy_atoms)
        seen = {start.key}          # product identities (stereo-free keys)
        seen_raw = {start.smiles}   # raw product SMILES already handled: skip re-standardizing
        frontier: list[tuple[Standardized, tuple[Step, ...]]] = [(start, ())]
        with quiet_rdkit():
            for level in range(1, depth + 1):
                # products over ``shown`` are kept only as intermediates, so not at the last step
                cap = shown if level == depth else limit
                following: list[tuple[Standardized, tuple[Step, ...]]] = []
                for parent, path in frontier:
                    only = None
                    if last_step is not None and level == depth and path \
                            and not last_step[0](parent.mol):
                        only = last_step[1]
                        if not only or (last_step[2] is not None
                                        and not last_step[2](parent.mol)):
                            continue
                    for index, raw, piece in self._one_step(parent, reverse, only):
                        if raw in seen_raw or piece.GetNumHeavyAtoms() > cap:
                            continue
                        seen_raw.add(raw)
                        product = _standardize_piece(piece)
                        if product is None or product.key in seen:
                            continue
                        seen.add(product.key)
                        seen_raw.add(product.smiles)
                        self._products[product.smiles] = product
                        rule = self.rules[index]
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

    def _one_step(self, std: Standardized, reverse: bool, only: frozenset[int] | None = None
                  ) -> tuple[tuple[int, str, Chem.Mol], ...]:
        """Every rule (or those in ``only``) applied once: (rule index, raw piece SMILES, piece),
        in rule then SMILES order. Rules with the same substrate template are tested with one
        match."""
        mol = std.mol
        found: list[tuple[int, str, Chem.Mol]] = []
        matched: dict[int, bool] = {}
        shared = self._rev_same if reverse else self._same
        for index, compiled in enumerate(self._compiled):
            if only is not None and index not in only:
                continue
            query = compiled.rev_query if reverse else compiled.query
            if query is None:
                continue
            first = shared[index]
            hit = matched.get(first)
            if hit is None:
                hit = matched[first] = mol.HasSubstructMatch(query)
            if hit:
                found.extend((index, raw, piece)
                             for raw, piece in _rule_pieces(compiled, mol, reverse))
        return tuple(found)


def _first_same(queries: Sequence[Chem.Mol | None]) -> tuple[int, ...]:
    """For each query, the index of the first one written the same (itself when unique)."""
    first: dict[str, int] = {}
    out = []
    for i, q in enumerate(queries):
        out.append(first.setdefault(Chem.MolToSmarts(q), i) if q is not None else i)
    return tuple(out)
_CARBON = Chem.MolFromSmarts("[#6]")


def _rule_pieces(compiled: _Compiled, mol: Chem.Mol, reverse: bool) -> list[tuple[str, Chem.Mol]]:
    """Run one rule once; return its distinct organic product pieces as (raw SMILES, mol).

    Each product template gives one product; a product is split into its connected pieces, and
    pieces without carbon or under `MIN_PRODUCT_HEAVY_ATOMS` heavy atoms are dropped.
    """
    rxn = compiled.rev_rxn if reverse else compiled.rxn
    if rxn is None:
        return []
    sizes = [rxn.GetProductTemplate(i).GetNumAtoms() for i in range(rxn.GetNumProductTemplates())]
    pieces: dict[str, Chem.Mol] = {}
    for outcome in rxn.RunReactant(mol, 0):
        for product, size in zip(outcome, sizes):
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
                if not frag.HasSubstructMatch(_CARBON):
                    continue
                raw = Chem.MolToSmiles(frag)
                if raw not in pieces:
                    pieces[raw] = frag
    return sorted(pieces.items())


def _standardize_piece(piece: Chem.Mol) -> Standardized | None:
    try:
        return standardize(piece)
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
    """Return the compiled rules from ``path``, or the shipped ``conversions.toml``.

    Raises `ShippedDataError` naming the file and the rule id when a rule lacks a field, has a
    field of the wrong type, an unknown kind, a SMARTS RDKit cannot compile or a test SMILES it
    cannot parse.

    >>> rules = load_conversion_rules()
    >>> rules.rule("ester-hydrolysis").name
    'ester hydrolysis'
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
    for field, kind in _REQUIRED.items():
        if field not in table:
            raise ShippedDataError(f"{where}: missing field '{field}'")
    unknown = sorted(set(table) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise ShippedDataError(f"{where}: unknown field(s): {', '.join(unknown)}")
    for field, kind in {**_REQUIRED, **_OPTIONAL}.items():
        if field in table and not isinstance(table[field], kind):
            raise ShippedDataError(f"{where}: field '{field}' must be a {kind.__name__}")
    for field in ("name", "smarts", "removes", "rationale"):
        if not table[field].strip():
            raise ShippedDataError(f"{where}: field '{field}' is empty")
    if table["kind"] not in KINDS:
        raise ShippedDataError(f"{where}: unknown kind {table['kind']!r} (known: {', '.join(KINDS)})")
    examples, negatives = rule_examples(table, where)
    return ConversionRule(
        id=rule_id, name=table["name"], smarts=table["smarts"], removes=table["removes"],
        kind=table["kind"], rationale=table["rationale"], examples=tuple(examples),
        negatives=tuple(negatives), reverse=table.get("reverse", ""),
    )

