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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rdkit import Chem

from precursor_screen.chem.parse import quiet_rdkit
from precursor_screen.chem.standardize import StandardizeError, standardize_smiles
from precursor_screen.rules.conversions import ConversionRule
from precursor_screen.rules.files import data_file
from precursor_screen.rules.synthesis import (
    SynthesisRuleSet,
    load_reverse_templates,
    load_synthesis_rules,
    lock_reagent_atoms,
    reverse_smarts,
)

__all__ = ["BuildStep", "BuildIndex", "Builder", "buildable", "Found", "building_rule_set", "BUILDING_FILE"]

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

    def substrates(self, parent: Any) -> list[Found]:
        """The substrates one building step from the standardized ``parent``, in the order the
        reverse search gives them (duplicates kept: the index drops them)."""
        found: list[Found] = []
        with quiet_rdkit():
            for route in self._reverse.reverse(parent, 1, 200):
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

    def lookup(self, key: str) -> list[BuildStep]:
        """The building steps from the substance with this identity key (stereo-free)."""
        return self._by_key.get(key, [])
