"""Masks as data (``precursor_screen/rules/data/masks.toml``): each mask is described once, per
site, and applies at that site of any listed substance; a bad mask file fails loudly.

Every mask's own examples and negatives are run by ``tests/test_conversions.py`` (one
parametrized test over every rule); here: the file's structure, that a mask generalizes to
substances and masking reagents its examples do not name, and the loader's errors.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rdkit import Chem

from precursor_screen.chem.standardize import standardize_smiles
from precursor_screen.errors import ShippedDataError
from precursor_screen.rules.gates import gate_problems
from precursor_screen.rules.masks import MASK_KIND, REMOVALS, load_masks, load_rules, mask_rules

SITES, MASKS = load_masks()
RULES = load_rules()


def key(smiles: str) -> str:
    return standardize_smiles(smiles).key


@pytest.mark.parametrize("mask", MASKS, ids=lambda m: m.id)
def test_mask_is_complete(mask) -> None:  # noqa: ANN001
    assert mask.site.name in SITES
    assert mask.removal in REMOVALS
    assert mask.name and mask.removes and mask.rationale
    # every example's unmasked form keeps the site's attachment atoms: same element there
    for masked, unmasked in mask.examples:
        assert key(unmasked) in {p.key for p in RULES.apply_rule(standardize_smiles(masked),
                                                                 mask.id)}


def test_every_mask_compiles_to_one_rule_of_kind_mask() -> None:
    rules = mask_rules(MASKS)
    assert [r.id for r in rules] == [m.id for m in MASKS]
    assert all(r.kind == MASK_KIND and r.is_mask for r in rules)
    assert RULES.has_masks


def test_masks_keep_the_skeleton_gate_valid() -> None:
    """Masks only remove atoms and change bond orders: the screen's gates stay exact."""
    assert gate_problems(RULES.reactions()) == []


# A mask is described once and applies at its site of ANY listed substance, with any reagent of
# its kind: these pairs use substances and masking groups the mask's own examples do not.
GENERAL = [
    pytest.param("ketal-hydrolysis", "CC1(C)COC2(CCN(CCc3ccccc3)CC2)OC1", "O=C1CCN(CCc2ccccc2)CC1",
                 id="neopentyl ketal of NPP"),
    pytest.param("ketal-hydrolysis", "CCCCOC(OCCCC)c1ccc2c(c1)OCO2", "O=Cc1ccc2c(c1)OCO2",
                 id="dibutyl acetal of piperonal"),
    pytest.param("imine-hydrolysis", "CC(C)=NN=C1CCNCC1", "O=C1CCNCC1",
                 id="azine of 4-piperidone"),
    pytest.param("o-silyl-removal", "CC(C)[Si](OC(c1ccccc1)C(C)NC)(C(C)C)C(C)C",
                 "CNC(C)C(O)c1ccccc1", id="TIPS ephedrine"),
    pytest.param("enol-derivative-hydrolysis", "CCCOC1=CCN(CCc2ccccc2)CC1",
                 "O=C1CCN(CCc2ccccc2)CC1", id="propyl enol ether of NPP"),
    pytest.param("amide-hydrolysis-amine", "O=C(N1CCC(Nc2ccccc2)CC1)C(F)(F)F",
                 "c1ccc(NC2CCNCC2)cc1", id="trifluoroacetyl 4-AP"),
    pytest.param("ester-hydrolysis", "CCCCCCCCOC(=O)Cc1ccccc1", "O=C(O)Cc1ccccc1",
                 id="octyl phenylacetate"),
]


@pytest.mark.parametrize("mask_id, masked, unmasked", GENERAL)
def test_a_mask_applies_beyond_its_examples(mask_id: str, masked: str, unmasked: str) -> None:
    got = {p.key for p in RULES.apply_rule(standardize_smiles(masked), mask_id)}
    assert key(unmasked) in got


def test_only_the_attachment_piece_is_kept() -> None:
    """The mask comes off: the diol of a ketal or the alcohol of an ester is not a product of
    the mask removal (the ester's alcohol side is a mask of its own, on the hydroxyl)."""
    got = {p.smiles for p in RULES.apply_rule(standardize_smiles("CC1(Cc2ccccc2)OCCO1"),
                                              "ketal-hydrolysis")}
    assert got == {"CC(=O)Cc1ccccc1"}
    got = {p.smiles for p in RULES.apply_rule(standardize_smiles("CCCOC(=O)Cc1ccccc1"),
                                              "ester-hydrolysis")}
    assert got == {"O=C(O)Cc1ccccc1"}


# -- loading fails loudly --------------------------------------------------------------------------

GOOD = """
[sites.carbonyl]
restored = "[#6:1]=O"
attachment = "a ketone carbon"

[masks.ketal-hydrolysis]
name = "ketal hydrolysis"
site = "carbonyl"
masked = '[CX4:1](-!@[OX2;$(O(-[CX4])-[CX4])])-!@[OX2;$(O(-[CX4])-[CX4])]'
removal = "acid hydrolysis"
removes = "the alcohol {piece}"
rationale = "Textbook (Greene's Protective Groups in Organic Synthesis)."
examples = [["COC(C)(C)OC", "CC(C)=O"], ["COC(C)(Cc1ccccc1)OC", "CC(=O)Cc1ccccc1"]]
negatives = ["CCOCC", "CC(C)=O"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "masks.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_from_a_path(tmp_path: Path) -> None:
    sites, masks = load_masks(write(tmp_path, GOOD))
    assert list(sites) == ["carbonyl"] and [m.id for m in masks] == ["ketal-hydrolysis"]
    rules = load_rules(write(tmp_path, GOOD))
    assert rules.rule("ketal-hydrolysis").is_mask


@pytest.mark.parametrize("broken, message", [
    pytest.param(GOOD.replace('site = "carbonyl"', 'site = "ketone"'), "unknown site",
                 id="unknown site"),
    pytest.param(GOOD.replace('"acid hydrolysis"', '"magic"'), "removal 'magic'",
                 id="unknown removal"),
    pytest.param(GOOD.replace("[CX4:1]", "[CX4:2]"), "maps", id="wrong map number"),
    pytest.param(GOOD.replace("[CX4:1](-!@[OX2;$(O(-[CX4])-[CX4])])-!@[OX2;$(O(-[CX4])-[CX4])]",
                              "[CX4:1]"), "no mask atom", id="nothing comes off"),
    pytest.param(GOOD.replace("[CX4:1]", "[CX4:1(("), "does not parse", id="bad SMARTS"),
    pytest.param(GOOD.replace('"CCOCC", ', ""), "two negatives", id="one negative"),
    pytest.param(GOOD.replace("rationale =", "rational ="), "missing field 'rationale'",
                 id="misspelt field"),
    pytest.param(GOOD.replace("[masks.ketal-hydrolysis]", "[masks.Ketal]"), "slug",
                 id="bad id"),
    pytest.param(GOOD + "\n[extra]\nx = 1\n", "unknown top-level", id="unknown table"),
])
def test_load_fails_loudly(tmp_path: Path, broken: str, message: str) -> None:
    path = write(tmp_path, broken)
    with pytest.raises(ShippedDataError, match=message) as info:
        load_masks(path)
    assert str(path) in str(info.value)


def test_site_templates_parse() -> None:
    for site in SITES.values():
        assert Chem.MolFromSmarts(site.restored.strip("()")) is not None
        assert site.maps in ((1,), (1, 2))
