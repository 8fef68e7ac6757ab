"""The chemistry as data: masks and unmasking conversions, forward synthesis steps, generic groups,
the substituent classes group drafts generalize to, and the gates that skip searches which cannot
succeed. Each engine reads its TOML file from ``data/``, where every rule carries the test
molecules it must (and must not) act on; ``load_rules`` compiles masks and conversions into the
one RuleSet the screen searches."""

from precursor_screen.rules.conversions import ConversionRule, RuleSet, load_conversion_rules
from precursor_screen.rules.drug_targets import DrugTargets, load_drug_groups
from precursor_screen.rules.formulas import TargetFormulas
from precursor_screen.rules.groups import (Group, GroupSet, group_file_text, load_group_file,
                                           load_groups)
from precursor_screen.rules.masks import load_masks, load_rules
from precursor_screen.rules.substituents import SubstituentTable, load_substituents
from precursor_screen.rules.synthesis import SynthesisRuleSet, load_synthesis_rules

__all__ = ["ConversionRule", "DrugTargets", "Group", "GroupSet", "RuleSet", "SubstituentTable",
           "SynthesisRuleSet", "TargetFormulas", "group_file_text", "load_conversion_rules",
           "load_drug_groups", "load_group_file", "load_groups", "load_masks", "load_rules",
           "load_substituents", "load_synthesis_rules"]
