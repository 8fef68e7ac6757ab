"""The pattern fingerprint computed from a SMILES (C extension) gives RDKit's bits, exactly.

Every molecule the project ships or is tested on (the golden corpus: examples, every evaluation
molecule, 5,000 MOSES; the registries; the test molecules), as parsed and as standardized, is
fingerprinted both ways. ``benchmarks/verify_patternfp.py`` does the same on all of MOSES.
"""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest
from rdkit import Chem, DataStructs, rdBase

from precursor_screen.chem import fastpattern
from precursor_screen.chem.standardize import StandardizeError, standardize
from precursor_screen.reference import builtin_registry
from precursor_screen.rules.drug_targets import DrugTargets

HERE = Path(__file__).resolve().parent


def _rdkit(mol: Chem.Mol) -> bytes:
    return DataStructs.BitVectToBinaryText(Chem.PatternFingerprint(mol, fpSize=2048))


def _corpus() -> list[str]:
    lines = (HERE / "data" / "golden" / "corpus.smi").read_text(encoding="utf-8").splitlines()[1:]
    smiles = [line.split("\t")[0] for line in lines]
    smiles += [line.split("\t")[0] for line in
               (HERE / "data" / "molecules.smi").read_text(encoding="utf-8").splitlines()]
    smiles += [s.smiles for s in builtin_registry() if s.smiles]
    smiles += [d.smiles for d in DrugTargets().registry if getattr(d, "smiles", "")]
    return smiles + list(fastpattern.CHECK_SMILES)


def _compiler_available() -> bool:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    return shutil.which(cc) is not None and headers.is_file()


def test_extension_is_built_and_used_where_it_can_be():
    """With a C compiler and Python's headers pip builds the extension, and its check passes;
    without them the package works on RDKit alone (fast_path is False, answers the same)."""
    if _compiler_available():
        assert fastpattern._patternfp is not None, "the C extension was not built: pip install -e ."
        assert fastpattern.fast_path(2048)
    else:
        assert fastpattern._patternfp is None or fastpattern.fast_path(2048) in (True, False)


def test_same_bits_as_rdkit_on_every_shipped_and_test_molecule():
    block = rdBase.BlockLogs()
    compared = fast = 0
    for smiles in _corpus():
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            continue
        molecules = [mol]
        try:
            molecules.append(standardize(mol).mol)
        except StandardizeError:
            pass
        for m in molecules:
            written = Chem.MolToSmiles(m)
            assert fastpattern.pattern_bytes(m, written) == _rdkit(m), written
            compared += 1
            if fastpattern._patternfp is not None and fastpattern._fast(m, written, 2048):
                fast += 1
    del block
    assert compared > 13_000
    if fastpattern.fast_path(2048):
        assert fast > 0.99 * compared   # nearly all read by the C path, not left to RDKit


@pytest.mark.parametrize("smiles", ["*c1ccccc1", "C[NH2+]->[Pt]", "CC~C"])
def test_what_the_reader_does_not_know_goes_to_rdkit(smiles):
    mol = Chem.MolFromSmiles(smiles) or Chem.MolFromSmarts(smiles)
    mol.UpdatePropertyCache(strict=False)
    Chem.FastFindRings(mol)
    if fastpattern._patternfp is not None:
        assert fastpattern._patternfp.pattern_fingerprint(Chem.MolToSmiles(mol), 2048, 9) is None
    assert fastpattern.pattern_bytes(mol, Chem.MolToSmiles(mol)) == _rdkit(mol)


def test_without_smiles_rdkit_answers():
    mol = Chem.MolFromSmiles("CC(=O)Cc1ccccc1")
    assert fastpattern.pattern_bytes(mol, None) == _rdkit(mol)


@pytest.mark.skipif(fastpattern._patternfp is None, reason="the C extension is not built here")
def test_incomplete_ring_information_goes_to_rdkit():
    # a ring count below the cycle rank means RDKit's rings are no full basis: not trusted
    assert fastpattern._patternfp.pattern_fingerprint("C1CC2CCC1C2", 2048, 1) is None
    assert fastpattern._patternfp.pattern_fingerprint("C1CC2CCC1C2", 2048, 2) is not None
