"""`enumerate`: masked forms of a listed substance, proven by the forward rules, marked covered."""

from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner

from precursor_screen.cli import Cli
from precursor_screen.rules.conversions import load_conversion_rules
from precursor_screen.rules.groups import load_groups
from precursor_screen.standardize import match_key, standardize_smiles
from precursor_screen.survey.masks import enumerate_masked
from precursor_screen.survey.sets import load_designer_precursors
from scheduled_substances import load_registry

BMK_DEPTH_1 = [  # the list: (SMILES, what the list says)
    pytest.param("CC(=O)C(C#N)c1ccccc1", "listed", id="APAAN"),
    pytest.param("CC(=O)C(C(N)=O)c1ccccc1", "listed", id="APAA"),
    pytest.param("COC(=O)C(C(C)=O)c1ccccc1", "listed", id="MAPA"),
    pytest.param("COC(=O)C1(C)OC1c1ccccc1", "listed", id="BMK methyl glycidate"),
    pytest.param("CCOC(=O)C1(C)OC1c1ccccc1", "listed", id="BMK ethyl glycidate"),
    pytest.param("CC1(C(=O)O)OC1c1ccccc1", "listed", id="BMK glycidic acid"),
    pytest.param("CC(O)(Cc1ccccc1)S(=O)(=O)O", "draft group", id="bisulfite adduct"),
    pytest.param("CC(=Cc1ccccc1)[N+](=O)[O-]", "draft group", id="P2NP"),
]


@pytest.fixture(scope="module")
def bmk_forms():  # noqa: ANN201
    reg = load_registry().filter()
    forms, stats = enumerate_masked(reg.find("BMK"), rules=load_conversion_rules(),
                                    groups=load_groups(), reference=reg, depth=1,
                                    known=load_designer_precursors())
    return {f.key: f for f in forms}, stats


@pytest.mark.parametrize("smiles, covered", BMK_DEPTH_1)
def test_bmk_depth_1_includes_and_marks(bmk_forms, smiles: str, covered: str) -> None:  # noqa: ANN001
    forms, _ = bmk_forms
    form = forms[standardize_smiles(smiles).key]
    assert form.masks == 1
    assert form.covered == covered
    assert form.known   # every one of them is a documented designer precursor


def test_every_form_is_proven_valid_and_distinct(bmk_forms) -> None:  # noqa: ANN001
    forms, stats = bmk_forms
    assert stats["proven"] == len(forms) and stats["generated"] >= len(forms)
    bmk = standardize_smiles("CC(=O)Cc1ccccc1").key
    from rdkit import Chem

    for key, f in forms.items():
        assert standardize_smiles(f.smiles).key == key != bmk
        assert match_key(Chem.MolFromSmiles(f.unmask.product)) == bmk
        assert f.made_by[0].rule_id


def test_depth_2_extends_depth_1(bmk_forms) -> None:  # noqa: ANN001
    reg = load_registry().filter()
    deeper, _ = enumerate_masked(reg.find("BMK"), rules=load_conversion_rules(),
                                 groups=load_groups(), reference=reg, depth=2)
    keys = {f.key for f in deeper}
    assert set(bmk_forms[0]) <= keys and len(keys) > len(bmk_forms[0])
    assert {f.masks for f in deeper} == {1, 2}


def test_as_of_changes_what_is_covered() -> None:
    reg = load_registry().filter(as_of=__import__("datetime").date(2012, 12, 31))
    forms, _ = enumerate_masked(load_registry().find("BMK"), rules=load_conversion_rules(),
                                groups=load_groups(), reference=reg, depth=1)
    by_key = {f.key: f for f in forms}
    apaan = by_key[standardize_smiles("CC(=O)C(C#N)c1ccccc1").key]
    assert not apaan.listed   # APAAN was listed in the EU from 30 December 2013


def test_cli() -> None:
    import click

    from precursor_screen.survey.commands import enumerate_cmd

    @click.group(cls=Cli)
    @click.option("--debug", is_flag=True)
    def app(debug: bool) -> None:
        """Test app."""

    app.add_command(enumerate_cmd, "enumerate")
    result = CliRunner().invoke(app, ["enumerate", "P-2-P", "--depth", "1"])
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["substance_id"] for r in rows} == {"bmk"}
    apaan = next(r for r in rows if r["smiles"] == "CC(=O)C(C#N)c1ccccc1")
    assert apaan["covered"] == "listed" and apaan["unmask_steps"] == "2"
    assert "masked forms" in result.stderr
    result = CliRunner().invoke(app, ["enumerate", "BMK", "--depth", "9"])
    assert result.exit_code == 2
