"""The survey's shipped compound sets load, and stay equal to the evaluation files they copy."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from rdkit import Chem

from precursor_screen.survey.sets import load_designer_precursors, load_legitimate

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name, loader, columns", [
    ("designer_precursors.tsv", load_designer_precursors, ("id", "name", "smiles", "parent_id")),
    ("legitimate.tsv", load_legitimate, ("id", "name", "smiles", "category")),
])
def test_shipped_copy_equals_evaluation_file(name: str, loader, columns) -> None:  # noqa: ANN001
    source = ROOT / "evaluation" / name
    if not source.exists():
        pytest.skip("needs the source checkout's evaluation/ folder")
    with open(source, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    shipped = loader()
    assert [(c.id, c.name, c.smiles) for c in shipped] == [(r["id"], r["name"], r["smiles"])
                                                          for r in rows]
    extra = "parent_id" if "parent_id" in columns else "category"
    field = "parent_id" if extra == "parent_id" else "note"
    assert [getattr(c, field) for c in shipped] == [r[extra] for r in rows]


def test_every_shipped_smiles_parses() -> None:
    for c in load_designer_precursors() + load_legitimate():
        assert Chem.MolFromSmiles(c.smiles) is not None, c.id
