"""One-step building toward a listed precursor: a chemical that becomes a listed substance by one
common step with an ordinary reagent (N-alkylation or arylation, N-acylation or protection,
reductive amination, C-acylation).

The rules are the forward rules of ``data/building.toml`` and ``data/synthesis.toml`` (same
format: the reagent's atoms are written into the product). Rather than run every rule on every
candidate, `BuildIndex` runs each rule *backwards* on each listed substance once, keeps the
substrates the forward rule turns back into that substance (the proof), and answers a candidate
by one dictionary lookup of its identity key: what reaches a listed substance in one building
step is exactly what the reverse gives, for rules whose reverse is no narrower than the forward
(the tests check each rule's examples both ways).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rdkit import Chem

from precursor_screen.chem.parse import quiet_rdkit
from precursor_screen.chem.standardize import StandardizeError, standardize_smiles
from precursor_screen.rules.conversions import ConversionRule
from precursor_screen.rules.files import data_file
from precursor_screen.rules.gates import atom_elements, recursive_parts, split_top
from precursor_screen.rules.synthesis import (
    SynthesisRuleSet,
    load_reverse_templates,
    load_synthesis_rules,
    lock_reagent_atoms,
    reverse_smarts,
)

__all__ = ["BuildStep", "BuildIndex", "Builder", "buildable", "Found", "product_context", "building_rule_set", "BUILDING_FILE"]

BUILDING_FILE = "building.toml"
"""The shipped building rules in ``precursor_screen/rules/data/``."""


@dataclass(frozen=True, slots=True)
class BuildStep:
    """A substrate one building step from a listed substance: the rule, its reagent, the
    substance (a registry record) and the substrate's standardized SMILES."""

    rule: ConversionRule
    reagent: str
    substance: Any
    substrate: str


def building_rule_set(path: str | Path | None = None) -> SynthesisRuleSet:
    """The building rules (``building.toml``, or ``path``) followed by the shipped synthesis
    rules, all forward.

    >>> rules = building_rule_set()
    >>> rules.reagent("n-methylation")
    'a methylating agent (or formaldehyde, by reductive amination)'
    >>> "alcohol-oxidation-to-acid" in rules.forward_ids   # adds no carbon: not building
    False
    """
    built, reagents = load_synthesis_rules(path or _shipped())
    synthesis, more = load_synthesis_rules()
    # a building step adds the reagent's carbon (an alkyl, aryl or acyl group); the oxidations,
    # brominations and hydrolyses among the synthesis rules do not build
    synthesis = tuple(r for r in synthesis if _adds_carbon(r.smarts))
    return SynthesisRuleSet((*built, *synthesis), f"{path or BUILDING_FILE}+synthesis.toml",
                            {**reagents, **{r.id: more[r.id] for r in synthesis}})


def _adds_carbon(smarts: str) -> bool:
    """True when the reaction's product template has a carbon the reactant template has not
    mapped (the reagent's)."""
    product = Chem.MolFromSmarts(smarts.split(">>")[1])
    return any(a.GetAtomicNum() == 6 and not a.GetAtomMapNum() for a in product.GetAtoms())


def product_context(smarts: str) -> tuple[tuple[Chem.Mol, ...], ...]:
    """What every product of a one-atom forward rule holds: for each recursive-SMARTS part of
    its substrate atom (``[NH2;$(N-[CX4]-[CX4]-[OX2H1]):1]>>[N:1]C``), the context with its
    first atom reduced to its element (``[#7]-[CX4]-[CX4]-[OX2H1]``); alternatives written as
    ``$(A),$(B)`` stay alternatives. Empty when the rule is not of that form.

    Why a product holds it: the rule's template is that one atom; the reaction adds the
    reagent's atoms to it and changes nothing else, so the atoms and bonds of the context
    around it in the substrate are in the product as they were, but for the atom itself (its
    hydrogens and neighbours change, not its element). A listed substance holding none of
    them is no product of the rule, and the rule's reverse need not be tried on it (the
    forward proof would reject every substrate it gave).

    >>> [[Chem.MolToSmarts(q) for q in alt] for alt in product_context(
    ...     "[NH1;R1;$(N1CC[CX3](=O)CC1),$(N1CC[CX4]2(OCCO2)CC1):1]>>[N:1]CCc1ccccc1")]
    [['[#7]1CC[C&X3](=O)CC1', '[#7]1CC[C&X4]2(OCCO2)CC1']]
    >>> product_context("[CX3;$(C(-[CH3])-[CX4]-[OX2H1]):1]=[OX1]>>[C:1]NC")   # two atoms
    ()
    """
    reactant = smarts.split(">>")[0]
    template = Chem.MolFromSmarts(reactant)
    if template is None or template.GetNumAtoms() != 1 or "." in reactant \
            or not (reactant.startswith("[") and reactant.endswith("]")):
        return ()
    body = re.sub(r":\d+$", "", reactant[1:-1])   # the atom map
    needs = []
    for conjunct in split_top(body, ";"):
        if "$(" not in conjunct:
            continue
        parts = recursive_parts(f"[{conjunct}]")
        if parts is None:
            return ()   # recursion mixed with other primitives: not read, no screen
        alternatives = tuple(_root_as_element(q) for q in parts)
        if None in alternatives:
            return ()
        needs.append(alternatives)
    return tuple(needs)


def _root_as_element(query: Chem.Mol) -> Chem.Mol | None:
    """``query`` with its first atom asking its element(s) only (None: a first atom that names
    no element)."""
    elements = atom_elements(query.GetAtomWithIdx(0))
    if not elements or 0 in elements:
        return None
    root = Chem.MolFromSmarts("[" + ",".join(f"#{z}" for z in sorted(elements)) + "]")
    rw = Chem.RWMol(query)
    rw.ReplaceAtom(0, root.GetAtomWithIdx(0))
    out = rw.GetMol()
    out.UpdatePropertyCache(strict=False)
    return out


def buildable(substance: Any) -> bool:
    """True for a listed substance a `BuildIndex` searches (organic, with a structure)."""
    return substance.parent is not None and not substance.is_inorganic


def _shipped() -> Path:
    return data_file(BUILDING_FILE)


Found = tuple[str, str, str]
"""One substrate a `Builder` found for a listed substance: (rule id, identity key, SMILES)."""


class Builder:
    """The per-substance work of a `BuildIndex`: the building rules run backwards on one listed
    substance, each substrate proven by running its forward rule. Separate from the index so
    that a long reference list is searched on several processes (``Screener`` does) and the
    index assembled from what they found.

    >>> from precursor_screen.chem.standardize import standardize_smiles
    >>> Builder().substrates(standardize_smiles("CNC(C)C(O)c1ccccc1"))[0][:2]
    ('n-methylation', 'CC(N)C(O)c1ccccc1')
    """

    def __init__(self, rules: SynthesisRuleSet | None = None) -> None:
        self.rules = rules if rules is not None else building_rule_set()
        written = load_reverse_templates()
        self._reverse = SynthesisRuleSet(
            [replace(r, reverse=lock_reagent_atoms(written[r.id][0]) if r.id in written
                     else reverse_smarts(r)) for r in self.rules.rules
             if r.id in self.rules.reagents],
            f"{self.rules.source} (reversed)", self.rules.reagents, self.rules.max_added)
        # rule index in the reverse set -> what the listed substance must hold, of the rules
        # with a context (asked once the rule's reverse template matched)
        self._contexts = {i: needs for i, r in enumerate(self._reverse.rules)
                          if (needs := product_context(r.smarts))}

    def substrates(self, parent: Any) -> list[Found]:
        """The substrates one building step from the standardized ``parent``, in the order the
        reverse search gives them (duplicates kept: the index drops them)."""
        found: list[Found] = []
        with quiet_rdkit():
            mol = parent.mol
            contexts = self._contexts

            def admit(rule: int) -> bool:
                needs = contexts.get(rule)
                return needs is None or all(any(mol.HasSubstructMatch(q) for q in alternatives)
                                            for alternatives in needs)

            # per rule: a substrate another rule reached first (and whose proof failed) is
            # still tried with this one (4-anilinopiperidine from ANPP: the piperidone
            # phenethylation's reverse gives it first, the 4-AP one proves it)
            for route in self._reverse.reverse(parent, 1, 200, admit=admit, per_rule=True):
                rule_id = route.steps[0].rule_id
                # the search standardized its product already (not read again from SMILES)
                substrate = self._reverse.product(route.product)
                if substrate is None:
                    try:
                        substrate = standardize_smiles(route.product)
                    except StandardizeError:
                        continue
                if substrate.key == parent.key:
                    continue
                # the proof: the forward rule turns the substrate back into the substance
                if parent.key in {p.key for p in self.rules.apply_rule(substrate, rule_id)}:
                    found.append((rule_id, substrate.key, substrate.smiles))
        return found


class BuildIndex:
    """Substrates one building step from each listed substance, by identity key.

    >>> from precursor_screen.reference import builtin_registry
    >>> index = BuildIndex(builtin_registry().structures())
    >>> [(s.rule.id, s.substance.id) for s in index.lookup("CC(N)C(O)c1ccccc1")]
    [('n-methylation', 'ephedrine'), ('n-methylation', 'pseudoephedrine')]

    ``found`` (what ``builder.substrates`` gives for each `buildable` one of ``substances``,
    in their order) is given when already searched, on several processes.
    """

    def __init__(self, substances: Iterable[Any], rules: SynthesisRuleSet | None = None, *,
                 builder: Builder | None = None,
                 found: Sequence[list[Found]] | None = None) -> None:
        builder = builder if builder is not None else Builder(rules)
        rules = builder.rules
        self._by_key: dict[str, list[BuildStep]] = {}
        listed = [s for s in substances if buildable(s)]
        if found is not None and len(found) != len(listed):
            raise ValueError(f"{len(found)} searches for {len(listed)} buildable substances")
        for s, hits in zip(listed, found if found is not None
                           else (builder.substrates(s.parent) for s in listed)):
            for rule_id, key, smiles in hits:
                entries = self._by_key.setdefault(key, [])
                if not any(e.substance.id == s.id and e.rule.id == rule_id for e in entries):
                    entries.append(BuildStep(rules.rule(rule_id), rules.reagent(rule_id), s,
                                             smiles))

    def __len__(self) -> int:
        return len(self._by_key)

    def keys(self) -> list[str]:
        """The identity keys of every substrate one building step from a listed substance."""
        return list(self._by_key)

    def lookup(self, key: str) -> list[BuildStep]:
        """The building steps from the substance with this identity key (stereo-free)."""
        return self._by_key.get(key, [])
