"""The drug-precursor stage: chemicals one or two easy steps from a controlled drug.

`DrugTargets` is built once from the drug registry (``scheduled_substances/drugs.tsv``), the
forward synthesis rules (``rules/data/synthesis.toml``), the unmasking rules
(``rules/data/conversions.toml``) and the generic drug families (``rules/data/drug_groups.toml``).
`DrugTargets.routes` runs both kinds of rule together in one breadth-first, depth-limited search
(the conversion engine's own, see `precursor_screen.rules.synthesis`) and keeps a route only when
its product is a listed drug (by stereo-free key) or a member of a drug family: reductive amination
of every ketone with methylamine makes an amine of every ketone, and nearly all are nothing.

Each kept route becomes a `Hit` of relation ``"drug"`` whose reason names the drug, its control
and the route step by step with the reagent class of each forward step, e.g. ::

    one step to Mephedrone (4-MMC) (1971 Convention, Schedule II; EU Council Decision
    2010/759/EU): Cc1ccc(C(=O)C(C)Br)cc1 + methylamine (amination of an alpha-bromo ketone)
    gives Mephedrone (4-MMC)

Transformations and reagent classes only, as control documents name them: never procedures,
conditions or quantities. As in the conversion stage, a route that hydrolyses a small drug out of
a large molecule (a product keeping less than ``min_kept_fraction`` of the candidate after more
than ``max_removed_atoms`` heavy atoms came off) is reported with score 0: it raises no flag.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from rdkit import Chem

from precursor_screen.chem.standardize import Standardized, match_key
from precursor_screen.reference import builtin_drugs
from precursor_screen.rules.conversions import RuleSet
from precursor_screen.rules.files import data_file
from precursor_screen.rules.formulas import TargetFormulas
from precursor_screen.rules.gates import RouteGate, aromatic_problems, flag_floor, gate_problems
from precursor_screen.rules.groups import Group, GroupSet, load_groups
from precursor_screen.rules.masks import load_rules
from precursor_screen.rules.synthesis import SynthesisRuleSet, synthesis_rule_set
from precursor_screen.types import Hit, Route, Step
from scheduled_substances.drugs import DrugRegistry
from scheduled_substances.listings import load_vocabulary
from scheduled_substances.registry import data_folder

__all__ = ["DrugTargets", "DRUG_GROUPS_FILE", "DRUG_LIST", "GROUP_LIST", "SCORE_LISTED",
           "SCORE_GROUP", "family_jurisdictions", "list_jurisdictions", "load_drug_groups"]

DRUG_GROUPS_FILE = "drug_groups.toml"
DRUG_LIST = "controlled drugs"
"""``Hit.list_name`` of a route to a listed drug."""
GROUP_LIST = "drug groups"
"""``Hit.list_name`` of a route to a member of a generic drug family."""

SCORE_LISTED = (0.84, 0.82)
"""Hit score of a route to a listed drug in one and in two steps: below a conversion to a listed
precursor (0.85-0.95), above membership of a precursor group (0.75-0.8)."""
SCORE_GROUP = (0.81, 0.80)
"""Hit score of a route to a member of a generic drug family (national law, not UN or EU)."""

GROUP_PRECURSOR_CORES = {
    # the ring, the carbonyl and the alpha carbon with its alkyl: the aminations add only the
    # nitrogen and its alkyls, the bromination only the bromine
    "uk-generic-cathinones": "c1ccccc1!:[#6;$(*~[!#6;!#1])]!:[#6]!:[#6]",
    # ring-CH2-C bearing a heteroatom (the amine N, or the ketone O that a reductive amination
    # replaces); every way to a member keeps the benzylic carbon and that heteroatom's carbon
    "uk-generic-phenethylamines": "c1ccccc1!:[#6]!:[#6;$(*~[!#6;!#1])]",
    # the piperidine with its 4-carbon bearing a heteroatom (the anilide N, or the ketone O that
    # the reductive amination with aniline replaces); acyl, aniline and phenethyl are reagents
    "us-fentanyl-related-substances": "[#6;$(*~[!#6;!#1])]1!:[#6]!:[#6]!:[#7]!:[#6]!:[#6]!:1",
}
"""For each shipped drug family, a refined-skeleton SMARTS (see `precursor_screen.rules.gates`)
that every member contains, that no forward rule adds and that unmasking keeps: a candidate
without it has no route of two steps to a member. A family without an entry here turns the
drug stage's gate off."""

_STEP_WORDS = {1: "one step", 2: "two steps", 3: "three steps", 4: "four steps"}

LEFT_OUT_UNMASKING = ("transesterification", "alpha-halo-carbonyl-reduction")
"""Unmasking rules the drug search does without. Exchanging an ester's alcohol for methanol adds
nothing for drugs: a route that drops the new methyl again is found without it, and the drugs that
keep it (cocaine, carfentanil, remifentanil) are controlled with their esters anyway (the 1961
Convention's ecgonine clause, the fentanyl-related class definitions). It fires on every ester,
so leaving it out saves a sixth of the search. Reducing an alpha-halo ketone back undoes the
alpha-bromination the cathinone rules start with: it would double the search on every
bromoketone and add nothing a drug route needs."""


def load_drug_groups(path: str | Path | None = None) -> GroupSet:
    """The shipped generic drug families (or a file in the group format).

    >>> load_drug_groups().ids
    ('uk-generic-cathinones', 'uk-generic-phenethylamines', 'us-fentanyl-related-substances')
    """
    if path is None:
        path = data_file(DRUG_GROUPS_FILE)
    return load_groups(path)


@functools.cache
def family_jurisdictions() -> tuple[str, ...]:
    """Jurisdictions whose drug families ship here but which keep no list in the registry (the
    UK): a screen may name them (``--jurisdiction eu,un,uk``) to apply those families.

    >>> family_jurisdictions()
    ('uk',)
    """
    known = set(load_vocabulary(data_folder()).jurisdictions)
    return tuple(dict.fromkeys(g.jurisdiction for g in load_drug_groups()
                               if g.jurisdiction and g.jurisdiction not in known))


def list_jurisdictions(jurisdictions: Sequence[str]) -> tuple[str, ...]:
    """The jurisdictions of ``jurisdictions`` whose lists the registries keep (a family-only
    jurisdiction such as the UK set aside; any other unknown one kept, for the registry to
    refuse by name)."""
    families = set(family_jurisdictions())
    kept = tuple(j for j in jurisdictions if j not in families)
    return kept or tuple(jurisdictions)


class DrugTargets:
    """Routes from a candidate to controlled drugs, through unmasking and forward rules.

    Built once and reused; it pickles (registry, rules and groups are rebuilt or recompiled on
    arrival), so screen workers get their own copy.

    >>> drugs = DrugTargets()
    >>> from precursor_screen.chem.standardize import standardize_smiles
    >>> hit = drugs.routes(standardize_smiles("CC(Br)C(=O)c1ccc(C)cc1"))[0]
    >>> hit.relation, hit.substance_id, hit.score
    ('drug', 'mephedrone', 0.84)
    >>> print(hit.reason)
    one step to Mephedrone (4-MMC) (1971 Convention, Schedule II; EU Council Decision 2010/759/EU): Cc1ccc(C(=O)C(C)Br)cc1 + methylamine (amination of an alpha-bromo ketone) gives Mephedrone (4-MMC)
    """

    def __init__(self, registry: Any = None, *, as_of: dt.date | None = None,
                 rules: SynthesisRuleSet | None = None, unmask: RuleSet | None = None,
                 groups: GroupSet | None = None,
                 jurisdictions: Sequence[str] | None = None) -> None:
        lists = list_jurisdictions(jurisdictions) if jurisdictions is not None else None
        if registry is None:  # the built-in drugs controlled in these jurisdictions
            registry = builtin_drugs().filter(as_of=as_of, jurisdictions=lists)
        if not isinstance(registry, DrugRegistry):
            raise TypeError(f"registry must be a DrugRegistry, not {type(registry).__name__}")
        if as_of is not None and registry.as_of != as_of:
            registry = registry.filter(as_of=as_of, jurisdictions=lists
                                       if lists is not None else registry.jurisdictions)
        self.registry = registry
        self.as_of = as_of if as_of is not None else registry.as_of
        if rules is None:
            unmask = unmask if unmask is not None else load_rules()
            unmask = RuleSet((r for r in unmask.rules if r.id not in LEFT_OUT_UNMASKING),
                             unmask.source)
            rules = synthesis_rule_set(unmask)
        self.rules = rules
        if groups is None:  # the families defined in these jurisdictions (all when None)
            groups = load_drug_groups()
            if jurisdictions is not None:
                groups = groups.applicable(self.as_of, jurisdictions)
        self.groups = groups
        self._by_key = registry.by_key
        sizes = [t.parent.mol.GetNumHeavyAtoms() for t in registry if t.parent is not None]
        sizes += [g.max_heavy_atoms or 0 for g in self.groups]
        self._max_atoms = max(sizes, default=0)
        self._product_cache: dict[str, tuple[Any, Group | None, int]] = {}
        # what a route's product must be to count: a listed drug (by its formula) or, up to
        # its size limit, a family member (a family without a limit keeps every product)
        self._targets = TargetFormulas(
            self._by_key, any_up_to=max((g.max_heavy_atoms or 10**9 for g in self.groups),
                                        default=0))
        self.gate, self.gate_off = self._build_gate()
        self._core_queries = (None if self.gate is None else
                              [(g.id, Chem.MolFromSmarts(GROUP_PRECURSOR_CORES[g.id]))
                               for g in self.groups])

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.registry, self.as_of, self.rules, self.groups))

    def __repr__(self) -> str:
        return (f"DrugTargets({len(self.registry)} drugs, {len(self.groups)} drug groups, "
                f"{self.rules!r})")

    def metadata(self) -> dict[str, Any]:
        """Sizes and version of what this stage searches, for a run's metadata."""
        integrity = getattr(self.registry, "integrity", None)
        shipped = {"drugs_shipped_sha256": integrity.expected} if integrity is not None else {}
        return {"drugs": len(self.registry), "drugs_sha256": self.registry.content_hash, **shipped,
                "drug_groups": len(self.groups), "drug_group_ids": list(self.groups.ids),
                "synthesis_rules": len(self.rules.forward_ids),
                "drugs_as_of": self.as_of.isoformat() if self.as_of else ""}

    # -- public API ----------------------------------------------------------------------------

    def identify(self, std: Standardized) -> list[Hit]:
        """Hits for the controlled drugs the candidate *is* (salts and stereoisomers included).

        >>> from precursor_screen.chem.standardize import standardize_smiles
        >>> print(DrugTargets().identify(standardize_smiles("O=C(O)CCCO.[Na]"))[0].reason)
        is GHB (4-hydroxybutanoic acid), itself a controlled drug (1971 Convention, Schedule II)
        """
        return [Hit("drug", t.id, t.name, DRUG_LIST, SCORE_LISTED[0],
                    f"is {t.name}, itself a controlled drug ({t.listing(self.as_of)})",
                    similarity=1.0)
                for t in self.registry.identify(std)]

    def routes(self, std: Standardized, *, depth: int = 2, max_products: int = 200,
               min_kept_fraction: float = 0.45, max_removed_atoms: int = 10,
               gated: bool = True, flag_only: bool = False) -> list[Hit]:
        """One `Hit` per controlled drug (or drug family) reachable in up to ``depth`` steps.

        Unmasking and forward rules run together, breadth-first, at most ``max_products``
        distinct products; the shortest route to each drug is kept (then the first in rule
        order). Hits come best first. A route keeping less than ``min_kept_fraction`` of the
        candidate's heavy atoms after removing more than ``max_removed_atoms`` scores 0.

        To depth 2 the search first asks the gate (`precursor_screen.rules.gates.RouteGate`):
        a candidate holding no drug's skeleton, no substrate core and no forward rule's
        substrate has no route and is not searched, and an intermediate without a drug's
        skeleton is given the forward rules only. Same routes, far less work;
        ``gated=False`` searches everything (the tests compare the two). A candidate whose
        every route begins with a forward step (`RouteGate.forward_only`) gets only the forward
        rules at the first step, and a last-step product that cannot be a listed drug or a
        family member (by its heavy-atom formula and size) is not made. ``flag_only`` (the
        bulk screen) also skips drugs too small to raise a flag from this candidate (a route
        to them would score 0), also when it decides that every route begins with a forward
        step: only routes that can flag are then sure to be found.
        """
        n_atoms = std.mol.GetNumHeavyAtoms()
        gate = self.gate if gated and depth <= 2 else None
        min_size = flag_floor(n_atoms, min_kept_fraction, max_removed_atoms) if flag_only else 0.0
        passes, forward_first = (gate.plan(std.mol, min_size, std.smiles) if gate is not None
                                 else (True, False))
        if not passes:
            return []
        best: dict[str, Hit] = {}
        for route in self.rules.apply(
                std, depth=depth, max_products=max_products, max_heavy_atoms=self._max_atoms,
                unmask_gate=None if gate is None else partial(_unmask_ok, gate, min_size),
                forward_gate=None if gate is None else partial(_forward_ok, gate),
                forward_first=forward_first,
                targets=None if gate is None else self._targets):
            hit = self._route_hit(std, route, n_atoms, min_kept_fraction, max_removed_atoms)
            if hit is not None and (hit.substance_id not in best
                                    or hit.score > best[hit.substance_id].score):
                best[hit.substance_id] = hit
        return sorted(best.values(), key=lambda h: -h.score)

    def _build_gate(self) -> tuple[RouteGate | None, str]:
        """The route gate, or None and why it is off (a rule or family the argument misses)."""
        reactions = self.rules.reactions()
        forward = [(i, rxn) for i, rxn in reactions if i in self.rules.reagents]
        unmasking = [(i, rxn) for i, rxn in reactions if i not in self.rules.reagents]
        problems = gate_problems(unmasking, forward)
        missing = [g.id for g in self.groups if g.id not in GROUP_PRECURSOR_CORES]
        if missing:
            problems.append(f"no precursor core for drug group(s) {', '.join(missing)}")
        if problems:
            return None, "; ".join(problems)
        targets = [t.parent.mol for t in self.registry if t.parent is not None]
        cores = [(GROUP_PRECURSOR_CORES[g.id], g.max_heavy_atoms or 10_000) for g in self.groups]
        # routes of unmasking steps keep the target's aromatic atoms aromatic and its others
        # not (a forward step may close a ring: its substrate cores type only what its
        # template types)
        typed = not aromatic_problems(unmasking)
        return RouteGate(targets, cores, forward, typed=typed), ""

    # -- evidence ------------------------------------------------------------------------------

    def _product(self, smiles: str) -> tuple[Any, Group | None, int]:
        """(listed drug or None, drug group or None, heavy atoms) for a route's product."""
        cached = self._product_cache.get(smiles)
        if cached is not None:
            return cached
        std = self.rules.product(smiles)   # the search's own parent: no second parse
        mol = std.mol if std is not None else Chem.MolFromSmiles(smiles)
        target, group, size = None, None, 0
        if mol is not None:
            size = mol.GetNumHeavyAtoms()
            key = std.key if std is not None else match_key(mol)
            found = self._by_key.get(key)
            if found:
                target = found[0]
            else:
                # a member holds its family's core: test the (long) definitions only then
                only = None
                if self._core_queries is not None:
                    only = {gid for gid, q in self._core_queries if mol.HasSubstructMatch(q)}
                matched = self.groups.match(mol, only=only) if only is None or only else []
                group = matched[0] if matched else None
        if len(self._product_cache) > 50_000:
            self._product_cache.clear()
        self._product_cache[smiles] = (target, group, size)
        return target, group, size

    def _route_hit(self, std: Standardized, route: Route, n_atoms: int, min_kept: float,
                   max_removed: int) -> Hit | None:
        target, group, size = self._product(route.product)
        if target is None and group is None:
            return None
        depth = route.depth
        if target is not None:
            what = f"{target.name} ({target.listing(self.as_of)})"
            last = target.name
            score = SCORE_LISTED[min(depth, 2) - 1] - 0.01 * max(depth - 2, 0)
            ident, name, list_name, group_id = target.id, target.name, DRUG_LIST, ""
        else:
            assert group is not None
            what = f"{route.product}, a member of the generic family '{group.title}' ({group.id})"
            last = route.product
            score = SCORE_GROUP[min(depth, 2) - 1] - 0.01 * max(depth - 2, 0)
            ident, name, list_name, group_id = group.id, group.title, GROUP_LIST, group.id
        texts, parent = [], std.smiles
        for i, step in enumerate(route.steps):
            texts.append(self._step_text(parent, step, last if i == depth - 1 else step.product))
            parent = step.product
        steps = "; then ".join(texts)
        reason = f"{_STEP_WORDS.get(depth, f'{depth} steps')} to {what}: {std.smiles} {steps}"
        removed = max(n_atoms - min(size, _smallest_on_route(route, n_atoms)), 0)
        if size / max(n_atoms, 1) < min_kept and removed > max_removed:
            score = 0.0
            reason += (f"; not flagged: the drug keeps only {size} of the candidate's {n_atoms} "
                       "heavy atoms")
        return Hit("drug", ident, name, list_name, round(score, 4), reason, route=route,
                   group_id=group_id, atoms_removed=removed)

    def _step_text(self, parent: str, step: Step, product: str) -> str:
        if step.reagent:
            return f"+ {step.reagent} ({step.rule_name}) gives {product}"
        return f"by {self.rules.step_text(parent, step)[0]} gives {product}"


def _unmask_ok(gate: RouteGate, min_size: float, std: Standardized) -> bool:
    """The gate's `RouteGate.unmask_ok` for a standardized intermediate (its C path)."""
    return gate.unmask_ok(std.mol, min_size, std.smiles)


def _forward_ok(gate: RouteGate, std: Standardized) -> bool:
    """The gate's `RouteGate.forward_ok` for a standardized intermediate (its C path)."""
    return gate.forward_ok(std.mol, std.smiles)


def _smallest_on_route(route: Route, n_atoms: int) -> int:
    """Fewest heavy atoms along the route: what survives of the candidate before reagents add."""
    sizes = [n_atoms]
    for step in route.steps:
        mol = Chem.MolFromSmiles(step.product)
        if mol is not None:
            sizes.append(mol.GetNumHeavyAtoms())
    return min(sizes)


def _rebuild(registry: Any, as_of: dt.date | None, rules: SynthesisRuleSet,
             groups: GroupSet) -> DrugTargets:
    targets = DrugTargets(registry, rules=rules, groups=groups)
    targets.as_of = as_of
    return targets


def drug_route_text(hits: Sequence[Hit]) -> list[str]:
    """The reasons of drug hits, one line each (for a report or a terminal)."""
    return [h.reason for h in hits if h.relation == "drug"]
