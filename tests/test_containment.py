"""Containment checks the attachment atoms; otherwise it is similarity, with the difference said.

A candidate contains a listed substance only when the substance sits in it unchanged: same
element, same oxidation state, no extra carbon on the atoms the listing names. Each case below is
a real molecule, the listed substance it resembles, and what differs (or nothing).
"""

from __future__ import annotations

import random

import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from precursor_screen.rules.containment import atom_label, attachment_differences
from precursor_screen.screen import Screener
from precursor_screen.types import Flag

BMK = "CC(=O)Cc1ccccc1"
PIPERONAL = "O=Cc1ccc2c(c1)OCO2"
EPHEDRINE = "CN[C@@H](C)[C@H](O)c1ccccc1"
ISOSAFROLE = "CC=Cc1ccc2c(c1)OCO2"
FOUR_PIPERIDONE = "O=C1CCNCC1"

CASES = [
    # (candidate, listed substance, words of the difference; [] = contains it unchanged)
    pytest.param("CCC(=O)Cc1ccccc1", BMK, ["methyl carbon", "one more carbon"],
                 id="benzyl ethyl ketone: a homologue at the methyl"),
    pytest.param("O=C(O)C(=O)Cc1ccccc1", BMK, ["methyl carbon", "another oxidation state"],
                 id="phenylpyruvic acid: an acid carbon at the methyl"),
    pytest.param("CC(=O)C(O)c1ccccc1", BMK, ["benzylic methylene carbon", "oxygen"],
                 id="L-PAC: the benzylic carbon oxidised"),
    pytest.param("CC(=O)c1ccc2c(c1)OCO2", PIPERONAL, ["aldehyde carbon", "one more carbon"],
                 id="acetopiperone: a ketone, not the aldehyde"),
    pytest.param("O=C(O)c1ccc2c(c1)OCO2", PIPERONAL, ["aldehyde carbon", "oxygen"],
                 id="piperonylic acid: the acid, not the aldehyde"),
    pytest.param("O=C(O)/C=C/c1ccc2c(c1)OCO2", ISOSAFROLE, ["methyl carbon"],
                 id="MD-cinnamic acid against isosafrole"),
    pytest.param("CN(C)[C@@H](C)[C@H](O)c1ccccc1", EPHEDRINE, ["nitrogen", "carbon substituent"],
                 id="N-methylephedrine"),
    pytest.param("CC1(C)CC(=O)CC(C)(C)N1", FOUR_PIPERIDONE, ["carbon"],
                 id="triacetonamine: four C-methyls on the ring"),
    pytest.param("CN[C@@H](C)[C@H](O[Si](C)(C)C)c1ccccc1", EPHEDRINE, [],
                 id="O-TMS ephedrine: silicon on the oxygen leaves the atoms as named"),
]


@pytest.mark.parametrize("candidate, listed, words", CASES)
def test_attachment_differences(candidate: str, listed: str, words: list[str]) -> None:
    got = attachment_differences(Chem.MolFromSmiles(candidate), Chem.MolFromSmiles(listed))
    assert got is not None, "the skeleton is there"
    if not words:
        assert got == ()
        return
    text = "; ".join(got)
    for w in words:
        assert w in text, text


def test_not_a_substructure_is_none() -> None:
    # benzylacetone does not even hold BMK's skeleton (the ring is one CH2 further away)
    assert attachment_differences(Chem.MolFromSmiles("CC(=O)CCc1ccccc1"),
                                  Chem.MolFromSmiles(BMK)) is None


def test_atom_labels() -> None:
    bmk = Chem.MolFromSmiles(BMK)
    assert [atom_label(bmk, i) for i in range(5)] == [
        "methyl carbon", "carbonyl carbon", "carbonyl oxygen", "benzylic methylene carbon",
        "aromatic carbon"]
    assert atom_label(Chem.MolFromSmiles(EPHEDRINE), 1) == "NH nitrogen"


SCREENER = Screener()


@pytest.mark.parametrize("candidate, listed_id", [
    ("CCC(=O)Cc1ccccc1", "bmk"), ("O=C(O)C(=O)Cc1ccccc1", "bmk"),
    ("CC(=O)c1ccc2c(c1)OCO2", "piperonal"), ("O=C(O)/C=C/c1ccc2c(c1)OCO2", "isosafrole"),
])
def test_the_screen_calls_them_similar_at_most_and_says_why(candidate: str,
                                                           listed_id: str) -> None:
    v = SCREENER.check(candidate)
    assert v.flag in (Flag.NONE, Flag.SIMILAR)
    assert not any(h.relation == "contains" for h in v.hits)
    said = next(h for h in v.hits if h.relation == "skeleton" and h.substance_id == listed_id)
    assert "does not contain it" in said.reason


def test_similarity_column_is_to_the_substance_named() -> None:
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    for smiles in ("CCC(=O)Cc1ccccc1", "CC(=O)CCc1ccc2c(c1)OCO2", "CC(C)(C)OC(=O)N1CCCC(=O)CC1",
                   "CCOC(=O)Cc1ccccc1"):
        v = SCREENER.check(smiles)
        named = SCREENER.reference.get(v.match_id)
        expected = DataStructs.TanimotoSimilarity(
            gen.GetFingerprint(Chem.MolFromSmiles(v.standardized_smiles)),
            gen.GetFingerprint(named.parent.mol))
        assert v.similarity == pytest.approx(expected, abs=1e-4), (smiles, v.reason)
        assert named.name in v.reason


@pytest.mark.parametrize("candidate, listed", [
    ("CC(NC(=O)C(F)(F)F)C(O)c1ccccc1", "CNC(C)C(O)c1ccccc1"),
    ("CC(C)(C)C(O)/C=C/c1ccc2c(c1)OCO2", "C/C=C/c1ccc2c(c1)OCO2"),
    ("O=C(N[C@H](CO)[C@H](O)c1ccc([N+](=O)[O-])cc1)C(Cl)Cl", "CNC(C)C(O)c1ccccc1"),
])
def test_differences_do_not_depend_on_the_atom_order(candidate: str, listed: str) -> None:
    """The same candidate with its atoms numbered, or its SMILES written, every which way says
    the same differences in the same order (they are a row's reason)."""
    Chem.rdBase.SeedRandomNumberGenerator(7)   # doRandom writings, the same each run
    mol, part = Chem.MolFromSmiles(candidate), Chem.MolFromSmiles(listed)
    want = attachment_differences(mol, part)
    assert want
    for seed in range(20):
        order = list(range(mol.GetNumAtoms()))
        random.Random(seed).shuffle(order)
        renumbered = Chem.RenumberAtoms(mol, order)
        written = Chem.MolFromSmiles(Chem.MolToSmiles(mol, doRandom=True, canonical=False))
        assert attachment_differences(renumbered, part) == want
        assert attachment_differences(written, part) == want
