"""Tests share two helpers with the benchmarks (``benchmarks/``): the MOSES loader and the
generator of synthetic trade declarations. They are test data makers, not part of the package.

Also here: the golden corpus's parents, standardized once for every module that compares two
ways of answering on them (the C matcher and RDKit, a search with and without its cut)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

GOLDEN_CORPUS = Path(__file__).resolve().parent / "data" / "golden" / "corpus.smi"


@pytest.fixture(scope="session")
def corpus_parents() -> list:
    """Every golden corpus molecule (examples, every evaluation molecule, 5,000 MOSES) and
    every registry structure, standardized as the screen does; unreadable ones left out."""
    from rdkit import rdBase

    from precursor_screen.chem.standardize import parent_or_none
    from precursor_screen.reference import builtin_registry

    lines = GOLDEN_CORPUS.read_text(encoding="utf-8").splitlines()[1:]
    smiles = [line.split("\t")[0] for line in lines]
    smiles += [s.smiles for s in builtin_registry() if s.smiles]
    with rdBase.BlockLogs():
        return [p for s in smiles if (p := parent_or_none(s)) is not None]
