"""The one standardization step, on real salts, hydrates, zwitterions and stereoisomers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rdkit import Chem

from precursor_screen.chem.standardize import (
    StandardizeError,
    standardize,
    standardize_smiles,
)
from precursor_screen.reference import builtin_registry

REGISTRY = builtin_registry()

# (given, expected parent SMILES with stereo where it matters)
PARENTS = [
    pytest.param("CN[C@@H](C)[C@H](O)c1ccccc1.Cl", "CN[C@@H](C)[C@H](O)c1ccccc1", id="ephedrine HCl"),
    pytest.param("CN[C@@H](C)[C@@H](O)c1ccccc1.CN[C@@H](C)[C@@H](O)c1ccccc1.OS(=O)(=O)O",
                 "CN[C@@H](C)[C@@H](O)c1ccccc1", id="pseudoephedrine sulfate 2:1"),
    pytest.param("CC1(C(=O)[O-])OC1c1ccccc1.[Na+]", "CC1(C(=O)O)OC1c1ccccc1",
                 id="BMK glycidic acid Na salt"),
    pytest.param("CC1(C(=O)O[Na])OC1c1ccc2c(c1)OCO2", "CC1(C(=O)O)OC1c1ccc2c(c1)OCO2",
                 id="PMK glycidic acid Na, covalent"),
    pytest.param("CC1(C(=O)[O-])OC1c1ccc2c(c1)OCO2.[K+]", "CC1(C(=O)O)OC1c1ccc2c(c1)OCO2",
                 id="PMK glycidic acid K salt"),
    pytest.param("CC(O)(Cc1ccccc1)S(=O)(=O)[O-].[Na+]", "CC(O)(Cc1ccccc1)S(=O)(=O)O",
                 id="BMK bisulfite adduct Na"),
    pytest.param("O=C1CCNCC1.Cl.O", "O=C1CCNCC1", id="4-piperidone HCl monohydrate"),
    pytest.param("c1ccc(NC2CCNCC2)cc1.Cl.Cl", "c1ccc(NC2CCNCC2)cc1", id="4-AP 2HCl"),
    pytest.param("Cl.OC1(O)CCNCC1", "O=C1CCNCC1", id="4-piperidone HCl monohydrate as gem-diol"),
    pytest.param("OC1(O)CCN(CCc2ccccc2)CC1", "O=C1CCN(CCc2ccccc2)CC1", id="NPP hydrate"),
    pytest.param("OC(O)(O)CC", "CCC(O)(O)O", id="ortho acid is not a ketone hydrate"),
    pytest.param("O=C1CCN(CCc2ccccc2)CC1.Cl", "O=C1CCN(CCc2ccccc2)CC1", id="NPP HCl"),
    pytest.param("c1ccc(CCN2CCC(Nc3ccccc3)CC2)cc1.OC(=O)CC(O)(CC(=O)O)C(=O)O",
                 "c1ccc(CCN2CCC(Nc3ccccc3)CC2)cc1", id="ANPP citrate"),
    pytest.param("CCC(=O)N(c1ccccc1)C1CCNCC1.OC(=O)C(=O)O", "CCC(=O)N(c1ccccc1)C1CCNCC1",
                 id="norfentanyl oxalate"),
    pytest.param("[NH3+]c1ccccc1C(=O)[O-]", "Nc1ccccc1C(=O)O", id="anthranilic acid zwitterion"),
    pytest.param("[NH3+]CC(=O)[O-]", "NCC(=O)O", id="glycine zwitterion"),
    pytest.param("O=C([O-])Cc1ccccc1.[Na+]", "O=C(O)Cc1ccccc1", id="sodium phenylacetate"),
    pytest.param("C1CCNCC1.Cl", "C1CCNCC1", id="piperidine HCl"),
    pytest.param("CN1C[C@H](C(=O)O)C=C2c3cccc4[nH]cc(c34)C[C@H]21.O.O",
                 "CN1C[C@H](C(=O)O)C=C2c3cccc4[nH]cc(c34)C[C@H]21", id="lysergic acid dihydrate"),
    pytest.param("CC(N)C(O)c1ccccc1.Cl", "CC(N)C(O)c1ccccc1", id="norephedrine HCl (racemic)"),
    pytest.param("CN[C@H](C)[C@@H](O)c1ccccc1.Cl", "CN[C@H](C)[C@@H](O)c1ccccc1",
                 id="(+)-ephedrine HCl, stereo kept"),
    pytest.param("C[C@H](N)[C@@H](O)c1ccccc1.Cl", "C[C@H](N)[C@@H](O)c1ccccc1", id="cathine HCl"),
    pytest.param("Cl.O", "Cl", id="hydrochloric acid (aqueous)"),
    pytest.param("[Na+].[Na+].[O-]S([O-])(=O)=O", "O=S(=O)([O-])[O-].[Na+].[Na+]", id="sodium sulfate"),
    pytest.param("[NH4+].[Cl-]", "[Cl-].[NH4+]", id="ammonium chloride"),
    pytest.param("[K+].[O-][Mn](=O)(=O)=O", "[K+].[O]=[Mn](=[O])(=[O])[O-]", id="KMnO4 kept whole"),
    pytest.param("CC(=O)Cc1ccccc1.O", "CC(=O)Cc1ccccc1", id="BMK wet"),
    pytest.param("C=CCc1ccc2c(c1)OCO2", "C=CCc1ccc2c(c1)OCO2", id="safrole unchanged"),
]


@pytest.mark.parametrize("given, parent", PARENTS)
def test_parent(given: str, parent: str) -> None:
    got = standardize_smiles(given)
    assert got.smiles == Chem.CanonSmiles(parent)


# (given, registry id it must be identified as, relation)
IDENTITIES = [
    ("CN[C@@H](C)[C@H](O)c1ccccc1.Cl", "ephedrine", "salt"),
    ("CN[C@H](C)[C@@H](O)c1ccccc1", "ephedrine", "stereoisomer"),  # (1S,2R)-(+)-ephedrine
    ("CN[C@@H](C)[C@@H](O)c1ccccc1.CN[C@@H](C)[C@@H](O)c1ccccc1.OS(=O)(=O)O", "pseudoephedrine", "salt"),
    ("CN[C@H](C)[C@H](O)c1ccccc1", "pseudoephedrine", "stereoisomer"),  # (1R,2R)-(-)-pseudoephedrine
    ("CNC(C)C(O)c1ccccc1", "ephedrine", "stereoisomer"),  # unspecified stereo: still covered
    ("CC1(C(=O)[O-])OC1c1ccccc1.[Na+]", "bmk-glycidic-acid", "salt"),
    ("CC1(C(=O)[O-])OC1c1ccc2c(c1)OCO2.[Na+]", "pmk-glycidic-acid", "salt"),
    ("C[C@@]1(C(=O)OC)O[C@@H]1c1ccccc1", "bmk-methyl-glycidate", "stereoisomer"),
    ("O=C1CCNCC1.Cl.O", "4-piperidone", "salt"),
    ("C[C@@H](N)[C@H](O)c1ccccc1", "norephedrine", "stereoisomer"),  # (1R,2S)-norephedrine
    ("Cl.O", "hydrochloric-acid", "identical"),
    ("OS(=O)(=O)O", "sulphuric-acid", "identical"),
]


@pytest.mark.parametrize("given, ident, relation", IDENTITIES)
def test_salts_and_stereoisomers_are_the_listed_substance(given: str, ident: str, relation: str) -> None:
    found = REGISTRY.identify(standardize_smiles(given))
    assert (found[0].substance.id, found[0].relation) == (ident, relation)


@pytest.mark.parametrize("given", ["C[C@H](N)[C@@H](O)c1ccccc1", "C[C@H](N)[C@@H](O)c1ccccc1.Cl"])
def test_cathine_is_not_norephedrine(given: str) -> None:
    found = REGISTRY.filter().identify(standardize_smiles(given))  # the EU and UN lists
    assert [(i.substance.id, i.relation) for i in found] == [("norephedrine", "excluded")]
    assert "cathine" in found[0].note
    # the US lists norpseudoephedrine, cathine included: it is named by that listing alone
    us = REGISTRY.filter(jurisdictions=("eu", "un", "us")).identify(standardize_smiles(given))
    assert [(i.substance.id, i.relation) for i in us] == [("norephedrine", "stereoisomer")]
    assert {x.jurisdiction for x in us[0].substance.active()} == {"us"}
    assert "EU category 1 and UN Table I exclude" in us[0].note


@pytest.mark.parametrize("given", ["[Na+].[Na+].[O-]S([O-])(=O)=O", "[NH4+].[Cl-]", "[Na+].[Cl-]",
                                   "[K+].[Cl-]", "[Na+].OS([O-])(=O)=O"])
def test_inorganic_salts_are_not_the_listed_acids(given: str) -> None:
    assert REGISTRY.identify(standardize_smiles(given)) == []


def test_mixture_keeps_other_components() -> None:
    got = standardize_smiles("CC(=O)Cc1ccccc1.O=C(O)c1ccccc1O.CCCCCCCCCCCCCCCC(=O)O")
    assert got.smiles == "CCCCCCCCCCCCCCCC(=O)O"
    assert "CC(=O)Cc1ccccc1" in got.components


@pytest.mark.parametrize("bad, reason", [
    ("C" * 300, "too large"),
    ("", "empty"),
    ("C1CC", "unparsable"),
    ("C[N](C)(C)(C)C", "cannot sanitize"),
])
def test_bad_structures_raise_with_reason(bad: str, reason: str) -> None:
    with pytest.raises(StandardizeError, match=reason):
        standardize_smiles(bad)


SMILES_POOL = [p.values[0] for p in PARENTS] + ["CCOC(=O)C1(C)OC1c1ccccc1", "CC(=O)C(C#N)c1ccccc1",
                                                  "OC(=O)C(F)(F)F.CCN", "[O-][N+](=O)C(C)=Cc1ccccc1"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(SMILES_POOL), min_size=1, max_size=3))
def test_standardize_is_idempotent(parts: list[str]) -> None:
    once = standardize_smiles(".".join(parts))
    twice = standardize(once.mol)
    assert twice.smiles == once.smiles and twice.key == once.key
