"""Identity modulo isotopes, keto-enol tautomers and an inorganic's active ion; acylating agents
standing in for a listed anhydride; masked forms of bulk chemicals flagged in their own band."""

from __future__ import annotations

import pytest
from rdkit import Chem

from precursor_screen.chem.standardize import standardize_smiles
from precursor_screen.rules.identity import (
    active_ion,
    counter_ions_only,
    has_isotopes,
    symmetric_anhydrides,
    unlabelled,
)
from precursor_screen.screen import BULK_BASE, Screener
from precursor_screen.types import Flag

SCREENER = Screener()


@pytest.mark.parametrize("smiles, listed, relation", [
    ("[2H]C([2H])([2H])C(=O)Cc1ccccc1", "bmk", "isotopologue"),
    ("[2H]c1c([2H])c([2H])c(CC(C)=O)c([2H])c1[2H]", "bmk", "isotopologue"),
    ("[13CH3]C(=O)Cc1ccc2c(c1)OCO2", "pmk", "isotopologue"),
    ("CC(O)=Cc1ccccc1", "bmk", "tautomer"),
    ("OC1=CCN(CCc2ccccc2)CC1", "npp", "tautomer"),
])
def test_the_same_substance(smiles: str, listed: str, relation: str) -> None:
    v = SCREENER.check(smiles)
    assert v.flag is Flag.SCHEDULED and v.match_id == listed, v.reason
    assert v.hits[0].relation == relation
    assert ("isotope-labelled" if relation == "isotopologue" else "tautomer") in v.reason


def test_a_labelled_masked_form_converts_with_its_labels_set_aside() -> None:
    v = SCREENER.check("[2H]C([2H])([2H])OC(=O)C1(C)OC1c1ccccc1")   # BMK methyl glycidate-d3
    assert v.flag is Flag.SCHEDULED   # the methyl ester is listed itself
    v = SCREENER.check("[2H]C([2H])([2H])C1(C(=O)OCC)OC1c1ccccc1")
    assert v.flag in (Flag.SCHEDULED, Flag.CONVERTIBLE)


def test_unlabelled_and_has_isotopes() -> None:
    std = standardize_smiles("[2H]C([2H])([2H])N[C@@H](C)[C@H](O)c1ccccc1")
    assert has_isotopes(std) and not has_isotopes(unlabelled(std))
    assert unlabelled(std).smiles == "CN[C@@H](C)[C@H](O)c1ccccc1"


@pytest.mark.parametrize("salt", ["[Na+].[O-][Mn](=O)(=O)=O", "[Li+].[O-][Mn](=O)(=O)=O",
                                  "[NH4+].[O-][Mn](=O)(=O)=O",
                                  "[Ca+2].[O-][Mn](=O)(=O)=O.[O-][Mn](=O)(=O)=O"])
def test_another_salt_of_the_active_ion(salt: str) -> None:
    v = SCREENER.check(salt)
    assert v.flag is Flag.CONVERTIBLE and v.match_id == "potassium-permanganate", v.reason
    assert "active ion" in v.reason and "bulk" in v.reason
    assert v.score < 0.6      # the bulk band


@pytest.mark.parametrize("other", ["[K+].[O-][Re](=O)(=O)=O", "[Ca+2].[O-]Cl(=O)(=O)=O.[O-]Cl(=O)(=O)=O",
                                   "[K+].[K+].[O-][Cr](=O)(=O)[O-]", "[Na+].[Cl-]",
                                   "O=S(=O)([O-])[O-].[Na+].[Na+]"])
def test_other_ions_are_not(other: str) -> None:
    assert SCREENER.check(other).flag is Flag.NONE


def test_active_ion_of_listed_salts_only() -> None:
    kmno4 = standardize_smiles("[K+].[O-][Mn](=O)(=O)=O")
    ion = active_ion(kmno4)
    assert ion is not None
    assert counter_ions_only(standardize_smiles("[Na+].[O-][Mn](=O)(=O)=O"), ion)
    assert not counter_ions_only(standardize_smiles("[Na+].[Cl-]"), ion)
    for acid in ("Cl", "O=S(=O)(O)O", "[P]"):
        assert active_ion(standardize_smiles(acid)) is None


@pytest.mark.parametrize("smiles", ["CC(=O)Cl", "CC(=O)Br", "CC(=O)OC(=O)C(C)(C)C",
                                    "CC(=O)OC(=O)c1ccccc1"])
def test_acylating_agents_for_acetic_anhydride(smiles: str) -> None:
    v = SCREENER.check(smiles)
    assert v.flag is Flag.CONVERTIBLE and v.match_id == "acetic-anhydride", v.reason
    assert "acylating agent" in v.reason and "bulk" in v.reason
    assert BULK_BASE <= v.score < 0.6


def test_other_acylating_agents_are_not() -> None:
    for smiles in ("CCC(=O)Cl", "CCC(=O)OC(=O)CC", "O=C(Cl)OCc1ccccc1"):
        assert not any(h.relation == "acylating" for h in SCREENER.check(smiles).hits), smiles


def test_symmetric_anhydrides() -> None:
    assert symmetric_anhydrides(Chem.MolFromSmiles("CC(=O)OC(C)=O")) == ["CC(=O)OC(C)=O"]
    assert symmetric_anhydrides(Chem.MolFromSmiles("CCO")) == []


# (benzyl cyanide is masked phenylacetic acid too, but one Claisen step from APAAN first)
@pytest.mark.parametrize("smiles", ["CCOC(=O)Cc1ccccc1", "COC(=O)Cc1ccccc1", "NC(=O)Cc1ccccc1",
                                    "O=C(Cl)Cc1ccccc1", "COC(Cc1ccccc1)(OC)OC"])
def test_masked_bulk_acids_flag_in_the_bulk_band(smiles: str) -> None:
    v = SCREENER.check(smiles)
    assert v.flag is Flag.CONVERTIBLE and v.match_id == "phenylacetic-acid", v.reason
    assert "bulk chemical" in v.reason and v.score < 0.6


def test_solvents_are_never_flagged_by_conversion() -> None:
    # 2,2-dimethoxypropane is acetone's ketal: reported, not flagged (nobody masks a solvent)
    v = SCREENER.check("COC(C)(C)OC")
    assert v.flag is Flag.NONE
    assert "solvent" in v.reason or "nearest" in v.reason
