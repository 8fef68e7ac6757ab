"""Forward synthesis rules: which products a candidate gives with one common reagent.

The unmasking rules (`conversions`) take atoms off a listed skeleton; a controlled drug is often one
reagent away from an unlisted chemical instead: methylamine on an alpha-bromo ketone, bromine on a
propiophenone, propionyl chloride on an anilinopiperidine. The rules in ``data/synthesis.toml`` write
the reagent's atoms into the product template, name the reagent class, and carry examples and
negatives like the unmasking rules.

They run on the conversion engine itself: each forward rule becomes a `ConversionRule` (kind
``"synthesis"``) and `SynthesisRuleSet` is a `RuleSet` that also knows each rule's reagent, puts
it on every `Step` of the routes it returns, and allows products to grow by the reagents' atoms
(`MAX_FORWARD_ADDED_ATOMS` instead of the unmasking engine's `MAX_ADDED_ATOMS`). Built with the
unmasking rules (`synthesis_rule_set(unmask=...)`), one breadth-first search runs both kinds
together, so "hydrolyse, then aminate" and "brominate, then aminate" are found the same way.

Rules are data; a bad rule fails at load with `ShippedDataError` naming the file and the rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from rdkit import Chem

from precursor_screen.chem.standardize import Standardized
from precursor_screen.errors import ShippedDataError
from precursor_screen.rules.conversions import (
    ConversionRule,
    RuleSet,
    check_fields,
    read_rule_file,
    rule_examples,
    search_for,
)
from precursor_screen.rules.formulas import TargetFormulas
from precursor_screen.types import Route

__all__ = ["SynthesisRuleSet", "load_synthesis_rules", "synthesis_rule_set", "SYNTHESIS_FILE",
           "SYNTHESIS_KIND", "MAX_FORWARD_ADDED_ATOMS"]

SYNTHESIS_FILE = "synthesis.toml"
"""Name of the shipped forward-rule file in ``precursor_screen/rules/data/``."""

SYNTHESIS_KIND = "synthesis"
"""The `ConversionRule.kind` of a forward rule (the unmasking rules are ``"unmask"``)."""

MAX_FORWARD_ADDED_ATOMS = 12
"""Products may have at most this many heavy atoms more than the candidate: two reagent steps (a
phenethyl group is 8 atoms, a propionyl 4; 4-AP to fentanyl adds 12)."""

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_REQUIRED: dict[str, type] = {"name": str, "reagent": str, "smarts": str, "rationale": str,
                              "examples": list, "negatives": list}


class SynthesisRuleSet(RuleSet):
    """A `RuleSet` whose rules may add a reagent's atoms; routes name the reagent of each step.

    Pickles as its rules and reagents (recompiled on arrival), like `RuleSet`.
    """

    __slots__ = ("reagents", "max_added")

    def __init__(self, rules: Iterable[ConversionRule], source: str = "<rules>",
                 reagents: Mapping[str, str] | None = None,
                 max_added: int = MAX_FORWARD_ADDED_ATOMS) -> None:
        super().__init__(rules, source)
        self.reagents: dict[str, str] = dict(reagents or {})
        unknown = sorted(set(self.reagents) - {r.id for r in self.rules})
        if unknown:
            raise ShippedDataError(f"{source}: reagent for unknown rule(s): {', '.join(unknown)}")
        self.max_added = max_added

    def __reduce__(self) -> tuple[Any, ...]:
        return (SynthesisRuleSet, (self.rules, self.source, self.reagents, self.max_added))

    def __repr__(self) -> str:
        return (f"SynthesisRuleSet({len(self.reagents)} forward and "
                f"{len(self.rules) - len(self.reagents)} unmasking rules from {self.source})")

    def reagent(self, rule_id: str) -> str:
        """The reagent class a rule needs; empty for an unmasking rule."""
        return self.reagents.get(rule_id, "")

    @property
    def forward_ids(self) -> tuple[str, ...]:
        """Ids of the forward (reagent-adding) rules, in file order."""
        return tuple(r.id for r in self.rules if r.id in self.reagents)

    def apply(self, mol: Chem.Mol | Standardized, *, depth: int = 2, max_products: int = 200,
              max_heavy_atoms: int | None = None,
              unmask_gate: Callable[[Standardized], bool] | None = None,
              forward_gate: Callable[[Standardized], bool] | None = None,
              forward_first: bool = False,
              targets: TargetFormulas | None = None) -> list[Route]:
        """Like `RuleSet.apply`, products up to `max_added` atoms larger, steps with reagents.

        ``unmask_gate`` (optional, asked of the standardized intermediate): an intermediate one
        step from the end that fails it is tried
        with the forward rules only (`precursor_screen.rules.gates.RouteGate.unmask_ok`), and not
        at all when it fails ``forward_gate`` (no forward rule's substrate in it).
        ``forward_first``: only the forward rules are run on ``mol`` itself (its gate found that
        no route beginning with an unmasking step reaches a target,
        `precursor_screen.rules.gates.RouteGate.forward_only`).
        ``targets``: the caller wants only routes to these (see `RuleSet.apply`): a last-step
        product that cannot be one is not made.

        >>> rules = synthesis_rule_set()
        >>> from precursor_screen.chem.parse import parse_smiles
        >>> ketone = parse_smiles("CCC(=O)c1ccc(C)cc1")[0]
        >>> route = next(r for r in rules.apply(ketone) if r.product == "CNC(C)C(=O)c1ccc(C)cc1")
        >>> [(s.rule_id, s.reagent) for s in route.steps]
        [('alpha-bromination', 'a brominating agent'), ('amination-methylamine', 'methylamine')]
        """
        last_step = None
        forward = frozenset(i for i, r in enumerate(self.rules) if r.id in self.reagents)
        if unmask_gate is not None:
            last_step = (unmask_gate, forward, forward_gate)
        routes = search_for(targets, max_products, partial(
            self._expand, mol, depth, max_products, reverse=False, max_added=self.max_added,
            max_heavy_atoms=max_heavy_atoms, last_step=last_step,
            first=forward if forward_first else None))
        return [Route(tuple(replace(s, reagent=self.reagents[s.rule_id])
                            if s.rule_id in self.reagents else s for s in r.steps))
                for r in routes]


# -- loading ----------------------------------------------------------------------------------

def load_synthesis_rules(path: str | Path | None = None) -> tuple[tuple[ConversionRule, ...],
                                                                 dict[str, str]]:
    """Return the forward rules from ``path`` (or the shipped ``synthesis.toml``) and reagents.

    Each rule comes back as a `ConversionRule` of kind ``"synthesis"`` (``removes`` empty: a
    forward step adds a reagent instead); the dict maps rule id to reagent class. Raises
    `ShippedDataError` naming the file and rule for a missing, unknown or empty field or a test
    SMILES RDKit cannot parse (the SMARTS are compiled by the `SynthesisRuleSet`).

    >>> rules, reagents = load_synthesis_rules()
    >>> reagents["amination-methylamine"]
    'methylamine'
    """
    data, source = read_rule_file(path, SYNTHESIS_FILE)
    if not data:
        raise ShippedDataError(f"{source}: no rules")
    rules, reagents = [], {}
    for rule_id, table in data.items():
        rule, reagent = _parse_rule(rule_id, table, source)
        rules.append(rule)
        reagents[rule_id] = reagent
    return tuple(rules), reagents


def synthesis_rule_set(unmask: RuleSet | None = None, path: str | Path | None = None
                       ) -> SynthesisRuleSet:
    """The shipped forward rules (or those in ``path``) compiled, after ``unmask``'s rules if given.

    ``synthesis_rule_set(load_rules())`` (masks and conversions) is the combined set the drug stage searches:
    unmasking rules first (file order decides which route a product keeps at equal depth), then
    the forward rules. Raises `ShippedDataError` when a SMARTS does not compile or an id is used
    in both files.
    """
    rules, reagents = load_synthesis_rules(path)
    source = SYNTHESIS_FILE if path is None else str(path)
    if unmask is not None:
        source = f"{unmask.source}+{source}"
        rules = tuple(unmask.rules) + rules
    return SynthesisRuleSet(rules, source, reagents)


def _parse_rule(rule_id: str, table: object, source: str) -> tuple[ConversionRule, str]:
    where = f"{source}: [{rule_id}]"
    if not isinstance(table, dict):
        raise ShippedDataError(f"{where}: expected a table, got {type(table).__name__}")
    if not _SLUG.fullmatch(rule_id):
        raise ShippedDataError(f"{where}: rule id must be a lower-case slug like 'alpha-bromination'")
    check_fields(table, _REQUIRED, where, nonempty=("name", "reagent", "smarts", "rationale"))
    examples, negatives = rule_examples(table, where)
    rule = ConversionRule(
        id=rule_id, name=table["name"].strip(), smarts=table["smarts"], removes="",
        kind=SYNTHESIS_KIND, rationale=" ".join(table["rationale"].split()),
        examples=tuple(examples), negatives=tuple(negatives))
    return rule, table["reagent"].strip()


# -- the forward rules run backwards (``enumerate`` on a controlled drug) ---------------------

REVERSE_FILE = "synthesis_reverse.toml"
"""Hand-written reverse templates, for the forward rules whose template cannot simply be turned
round (``precursor_screen/rules/data/``)."""

from rdkit.Chem import rdqueries  # noqa: E402 - used by the reverse rules only

_EITHER_OR = re.compile(r"\[([A-Z][a-z]?),[A-Za-z,]+\]")  # unmapped '[Br,Cl]': no single element
_REVERSE_FIELDS: dict[str, type] = {"reverse": str, "why": str, "examples": list}


def reverse_smarts(rule: ConversionRule) -> str:
    """A forward rule turned round: product template ``>>`` reactant template.

    The reagent's atoms are unmapped in the forward product, so in the reverse they are matched
    and come off (mephedrone gives 2-bromo-4'-methylpropiophenone, the methylamine is dropped);
    `lock_reagent_atoms` makes them match the reagent only. An unmapped either-or atom of the
    forward reactant (``[Br,Cl]``) is written as its first element, the one a reverse product can
    carry.

    >>> rules, _ = load_synthesis_rules()
    >>> reverse_smarts(next(r for r in rules if r.id == "amination-methylamine"))
    '[c:1][C:2](=[O:3])[C:4]([N&D2][C&D1])[C:5]>>[c:1][CX3:2](=[OX1:3])[CX4H1;!R:4](-Br)[CX4:5]'
    """
    reactant, product = rule.smarts.split(">>")
    return lock_reagent_atoms(product + ">>" + _EITHER_OR.sub(r"\1", reactant))


def lock_reagent_atoms(reaction: str) -> str:
    """``reaction`` with each unmapped atom of its reactant template held to its template degree.

    Unmapped reactant atoms are deleted by the reaction. Held to the neighbours the template
    gives them, they match the reagent's atoms only: the reverse aniline step then takes the
    aniline off ANPP but not the N-phenylpropanamide off fentanyl (which would leave the propionyl
    group behind as a loose piece and skip a step).

    >>> lock_reagent_atoms("[C:1]NC>>[C:1]")
    '[C:1][N&D2][C&D1]>>[C:1]'
    """
    reactant, product = reaction.split(">>")
    mol = Chem.MolFromSmarts(reactant)
    if mol is None:
        raise ShippedDataError(f"unparsable reactant template {reactant!r}")
    for atom in mol.GetAtoms():
        if not atom.GetAtomMapNum():
            atom.ExpandQuery(rdqueries.ExplicitDegreeEqualsQueryAtom(atom.GetDegree()))
    return Chem.MolToSmarts(mol) + ">>" + product


def load_reverse_templates(path: str | Path | None = None
                           ) -> dict[str, tuple[str, tuple[tuple[str, str], ...]]]:
    """The hand-written reverse templates: rule id -> (reverse SMARTS, [drug, precursor] examples).

    Raises `ShippedDataError` naming the file and rule for a missing or unknown field or an
    unparsable example (the SMARTS compile in `reverse_synthesis_rule_set`).
    """
    data, source = read_rule_file(path, REVERSE_FILE)
    out = {}
    for rule_id, table in data.items():
        where = f"{source}: [{rule_id}]"
        if not isinstance(table, dict):
            raise ShippedDataError(f"{where}: expected a table, got {type(table).__name__}")
        for field, kind in _REVERSE_FIELDS.items():
            if not isinstance(table.get(field), kind):
                raise ShippedDataError(f"{where}: field '{field}' missing or not a {kind.__name__}")
        unknown = sorted(set(table) - set(_REVERSE_FIELDS))
        if unknown:
            raise ShippedDataError(f"{where}: unknown field(s): {', '.join(unknown)}")
        examples = []
        for pair in table["examples"]:
            if not (isinstance(pair, list) and len(pair) == 2
                    and all(isinstance(s, str) and Chem.MolFromSmiles(s) is not None
                            for s in pair)):
                raise ShippedDataError(f"{where}: each example must be [product, substrate] SMILES")
            examples.append((pair[0], pair[1]))
        out[rule_id] = (table["reverse"], tuple(examples))
    return out


def reverse_synthesis_rule_set(rules: SynthesisRuleSet | None = None,
                               path: str | Path | None = None) -> SynthesisRuleSet:
    """The forward rules of ``rules`` (default: the shipped ones), each with a reverse SMARTS.

    `RuleSet.reverse` on the result gives the chemicals one reagent step before a drug; the
    reverse comes from ``synthesis_reverse.toml`` (or ``path``) where one is written there, else
    from `reverse_smarts`. Unmasking rules in ``rules`` are left out (they carry their own
    reverse). Raises `ShippedDataError` for a hand-written template of an unknown rule.

    >>> from precursor_screen.chem.standardize import standardize_smiles
    >>> rev = reverse_synthesis_rule_set()
    >>> sorted({r.product for r in rev.reverse(standardize_smiles("OCCCC(=O)O"))})
    ['O=C1CCCO1', 'OCCCCO']
    """
    rules = rules if rules is not None else synthesis_rule_set()
    written = load_reverse_templates(path)
    unknown = sorted(set(written) - set(rules.forward_ids))
    if unknown:
        raise ShippedDataError(f"{path or REVERSE_FILE}: reverse for unknown forward rule(s): "
                               f"{', '.join(unknown)}")
    forward = [replace(r, reverse=lock_reagent_atoms(written[r.id][0]) if r.id in written
                       else reverse_smarts(r))
               for r in rules.rules if r.id in rules.reagents]
    return SynthesisRuleSet(forward, f"{rules.source} (reversed)",
                            {r.id: rules.reagents[r.id] for r in forward}, rules.max_added)


__all__ += ["reverse_smarts", "lock_reagent_atoms", "load_reverse_templates",
            "reverse_synthesis_rule_set", "REVERSE_FILE"]
