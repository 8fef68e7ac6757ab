"""Recipes load from the shipped TOML and pack exactly the bits RDKit sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from precursor_screen.chem.fingerprint import (
    Recipe,
    UnknownRecipeError,
    get_recipe,
    load_recipes,
    pack_bitvects,
    popcounts,
    recipes_path,
)
from precursor_screen.errors import ShippedDataError

DATA = Path(__file__).parent / "data" / "molecules.smi"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def mols() -> list[Chem.Mol]:
    return [Chem.MolFromSmiles(line.split("\t")[0]) for line in DATA.read_text().splitlines()]


def test_shipped_recipes_load():
    recipes = load_recipes()
    assert {"morgan2", "featmorgan2", "atompair", "pattern"} <= set(recipes)
    assert recipes["morgan2"] == Recipe("morgan2", "morgan", (("fpSize", 2048), ("radius", 2)))
    assert recipes_path().is_file()


def test_fingerprints_folder_has_no_python():
    # PyPI's unrelated `fingerprints` package must never be shadowed by our data folder.
    assert not list((ROOT / "fingerprints").glob("**/*.py"))


# The RDKit call each shipped recipe stands for, written out by hand.
RDKIT_CALLS = {
    "morgan2": lambda m: rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    .GetFingerprint(m),
    "featmorgan2": lambda m: rdFingerprintGenerator.GetMorganGenerator(
        radius=2, fpSize=2048,
        atomInvariantsGenerator=rdFingerprintGenerator.GetMorganFeatureAtomInvGen())
    .GetFingerprint(m),
    "atompair": lambda m: rdFingerprintGenerator.GetAtomPairGenerator(fpSize=2048).GetFingerprint(m),
    "pattern": lambda m: Chem.PatternFingerprint(m, fpSize=2048),
}


@pytest.mark.parametrize("name", sorted(RDKIT_CALLS))
def test_packed_bits_are_rdkit_bits(name, mols):
    recipe = get_recipe(name)
    bits, counts = recipe.packed(mols)
    assert bits.shape == (len(mols), 256) and bits.dtype == np.uint8
    assert counts.dtype == np.int32
    for row, mol in enumerate(mols):
        expected = RDKIT_CALLS[name](mol)
        assert recipe.bitvect(mol) == expected
        on = np.flatnonzero(np.unpackbits(bits[row], bitorder="little"))
        assert on.tolist() == list(expected.GetOnBits()), mol
        assert counts[row] == expected.GetNumOnBits()


def test_layout_is_packbits_little(mols):
    recipe = get_recipe("morgan2")
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    dense = np.stack([gen.GetFingerprintAsNumPy(m) for m in mols[:20]])
    assert np.array_equal(recipe.packed(mols[:20])[0], np.packbits(dense, axis=1, bitorder="little"))


def test_packed_threads_and_generators_agree(mols):
    recipe = get_recipe("morgan2")
    one = recipe.packed(mols, threads=1)[0]
    assert np.array_equal(one, recipe.packed(iter(mols), threads=2)[0])


def test_none_molecule_is_refused_with_its_position(mols):
    with pytest.raises(ValueError, match="molecule 2 is None"):
        get_recipe("morgan2").packed([mols[0], mols[1], None])


def test_empty_input():
    bits, counts = get_recipe("morgan2").packed([])
    assert bits.shape == (0, 256) and counts.shape == (0,)


def test_pack_bitvects_and_popcounts():
    fps = []
    for on in ([], [0], [1, 7, 8, 2047], list(range(0, 2048, 3))):
        bv = DataStructs.ExplicitBitVect(2048)
        bv.SetBitsFromList(on)
        fps.append(bv)
    bits, counts = pack_bitvects(fps)
    assert counts.tolist() == [fp.GetNumOnBits() for fp in fps]
    assert popcounts(bits[1]).tolist() == [1]
    for row, fp in enumerate(fps):
        assert np.flatnonzero(np.unpackbits(bits[row], bitorder="little")).tolist() == \
            list(fp.GetOnBits())


def test_manifest_round_trip():
    for recipe in load_recipes().values():
        stamp = recipe.manifest()
        assert stamp["rdkit_version"] and stamp["bit_order"] == "little"
        assert Recipe.from_manifest(stamp) == recipe


def test_unknown_recipe_names_the_known_ones():
    with pytest.raises(UnknownRecipeError, match="known: atompair, featmorgan2, morgan2"):
        get_recipe("ecfp4")


BROKEN = [
    pytest.param('[a]\nkind = "ecfp"\n', r"\[a\]: unknown kind 'ecfp'", id="unknown kind"),
    pytest.param('[a]\nradius = 2\n', r"\[a\] needs kind", id="no kind"),
    pytest.param('[a]\nkind = "morgan"\nradius = 2\nfpSize = 1000\n', r"\[a\]: fpSize must be",
                 id="fpSize not multiple of 64"),
    pytest.param('[a]\nkind = "morgan"\nradius = 2\nbogus = 1\n', r"\[a\]: RDKit refuses",
                 id="keyword RDKit does not know"),
    pytest.param('[a]\nkind = "morgan"\natomInvariants = "pharmacophore"\n',
                 r"\[a\]: unknown atomInvariants", id="unknown invariants"),
    pytest.param('[a]\nkind = "pattern"\nradius = 2\n', r"\[a\]: pattern takes only",
                 id="pattern with morgan keyword"),
    pytest.param('[a\nkind = "morgan"\n', "not valid TOML", id="broken TOML"),
    pytest.param('a = 1\n', r"\[a\] must be a table", id="not a table"),
]


@pytest.mark.parametrize("text, message", BROKEN)
def test_broken_recipe_file_names_file_and_table(tmp_path, text, message):
    path = tmp_path / "recipes.toml"
    path.write_text(text)
    with pytest.raises(ShippedDataError, match=message) as info:
        load_recipes(path)
    assert "recipes.toml" in str(info.value)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(ShippedDataError, match="nope.toml: no such recipe file"):
        load_recipes(tmp_path / "nope.toml")
