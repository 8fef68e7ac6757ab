"""Our standardize() beside chembl_structure_pipeline: speed on MOSES, results on the case table.

    pytest benchmarks/bench_standardize.py --benchmark-only --benchmark-group-by=group -s

Group ``standardize`` times both on the same 20,000 MOSES molecules (parsed beforehand). The
``test_results_on_case_table`` run prints, for the standardization case table of the tests, where
the ChEMBL pipeline's parent differs from ours (and from the expected parent).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from moses import moses_smiles
from rdkit import Chem, rdBase

from precursor_screen.chem.standardize import standardize

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
N = 20_000


@pytest.fixture(scope="module")
def mols() -> list[Chem.Mol]:
    with rdBase.BlockLogs():
        return [m for m in (Chem.MolFromSmiles(s) for s in moses_smiles(N)) if m is not None]


def ours(mols: list[Chem.Mol]) -> list[str]:
    return [standardize(m).smiles for m in mols]


def chembl(mols: list[Chem.Mol]) -> list[str]:
    from chembl_structure_pipeline import get_parent_mol, standardize_mol

    out = []
    with rdBase.BlockLogs():
        for m in mols:
            parent, _ = get_parent_mol(standardize_mol(Chem.Mol(m)))
            out.append(Chem.MolToSmiles(parent))
    return out


@pytest.mark.benchmark(group="standardize")
def test_ours(benchmark, mols) -> None:  # noqa: ANN001
    assert len(benchmark.pedantic(ours, args=(mols,), rounds=1, iterations=1)) == len(mols)


@pytest.mark.benchmark(group="standardize")
def test_chembl_structure_pipeline(benchmark, mols) -> None:  # noqa: ANN001
    got = benchmark.pedantic(chembl, args=(mols,), rounds=1, iterations=1)
    same = sum(a == b for a, b in zip(got, ours(mols)))
    benchmark.extra_info["same_parent_as_ours"] = same / len(mols)
    assert same / len(mols) > 0.9  # the two agree on ordinary neutral molecules


def test_results_on_case_table(capsys) -> None:  # noqa: ANN001
    from test_standardize import PARENTS

    rows = []
    for case in PARENTS:
        given, expected = case.values
        mine = standardize(Chem.MolFromSmiles(given)).smiles
        theirs = chembl([Chem.MolFromSmiles(given)])[0]
        rows.append((case.id, Chem.CanonSmiles(expected), mine, theirs))
    with capsys.disabled():
        print("\ncase | expected | ours | chembl_structure_pipeline")
        for r in rows:
            if r[3] != r[1] or r[2] != r[1]:
                print(" | ".join(r))
    assert all(r[2] == r[1] for r in rows)
