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

from collections.abc import Iterable
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

__all__ = ["BuildStep", "BuildIndex", "building_rule_set", "BUILDING_FILE"]

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


def _shipped() -> Path:
    return data_file(BUILDING_FILE)


class BuildIndex:
    """Substrates one building step from each listed substance, by identity key.

    >>> from precursor_screen.reference import builtin_registry
    >>> index = BuildIndex(builtin_registry().structures())
    >>> [(s.rule.id, s.substance.id) for s in index.lookup("CC(N)C(O)c1ccccc1")]
    [('n-methylation', 'ephedrine'), ('n-methylation', 'pseudoephedrine')]
    """

    def __init__(self, substances: Iterable[Any], rules: SynthesisRuleSet | None = None) -> None:
        rules = rules if rules is not None else building_rule_set()
        written = load_reverse_templates()
        reverse = SynthesisRuleSet(
            [replace(r, reverse=lock_reagent_atoms(written[r.id][0]) if r.id in written
                     else reverse_smarts(r)) for r in rules.rules if r.id in rules.reagents],
            f"{rules.source} (reversed)", rules.reagents, rules.max_added)
        self._by_key: dict[str, list[BuildStep]] = {}
        with quiet_rdkit():
            for s in substances:
                if s.parent is None or s.is_inorganic:
                    continue
                for route in reverse.reverse(s.parent, 1, 200):
                    step = route.steps[0]
                    try:
                        substrate = standardize_smiles(route.product)
                    except StandardizeError:
                        continue
                    if substrate.key == s.parent.key:
                        continue
                    # the proof: the forward rule turns the substrate back into the substance
                    made = {p.key for p in rules.apply_rule(substrate, step.rule_id)}
                    if s.parent.key not in made:
                        continue
                    entries = self._by_key.setdefault(substrate.key, [])
                    if not any(e.substance.id == s.id and e.rule.id == step.rule_id
                               for e in entries):
                        entries.append(BuildStep(rules.rule(step.rule_id),
                                                 rules.reagent(step.rule_id), s, substrate.smiles))

    def __len__(self) -> int:
        return len(self._by_key)

    def lookup(self, key: str) -> list[BuildStep]:
        """The building steps from the substance with this identity key (stereo-free)."""
        return self._by_key.get(key, [])
