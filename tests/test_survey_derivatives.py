"""`derivatives`: the index's answer equals a plain RDKit scan of every library row.

The scan applies each relation's definition to every stored parent, with no index and no
prefilter: BulkTanimotoSimilarity, HasSubstructMatch both ways, the conversion rules on every
row, group membership of every row. The index's answer must be the same set, relation by
relation, for BMK and PMK at threshold 0.4 (the issue's bar) and with top-k.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from rdkit import Chem, DataStructs

from precursor_screen.chem.fingerprint import get_recipe
from precursor_screen.chem.standardize import match_key, standardize_smiles
from precursor_screen.cli import Cli
from precursor_screen.io.readers import Record
from precursor_screen.reference import builtin_registry
from precursor_screen.rules.masks import load_rules
from precursor_screen.rules.groups import load_groups
from precursor_screen.survey import LibraryIndex, build_index
from precursor_screen.survey.derivatives import (
    RELATIONS,
    DerivativeParameters,
    find_derivatives,
    survey_substances,
)
from precursor_screen.survey.sets import load_designer_precursors, load_legitimate

EXTRA = [  # hand-picked relatives of BMK and PMK, and an injection attempt in an id
    ("CCCCCOC(=O)C1(C)OC1c1ccccc1", "BMK pentyl glycidate"),
    ("CC(=O)Cc1ccccc1.Cl", "BMK (as a salt)"),
    ("CCC(=O)Cc1ccccc1", "homologue"),
    ("CC(=O)Cc1ccc(C)cc1", "4-methyl-P2P"),
    ("CC(=O)Cc1ccccc1Cl", "2-chloro-P2P"),
    ("CC(O)Cc1ccccc1", "1-phenyl-2-propanol"),
    ("Cc1ccccc1", "toluene"),
    ("CC(C)=O", "acetone"),
    ("CC(=O)C(C#N)c1ccc2OCOc2c1", "PMK APAAN analogue"),
    ("COC(=O)C1(C)OC1c1ccc2c(c1)OCO2", "<script>alert(1)</script>"),
]


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> LibraryIndex:
    rows = [(c.smiles, c.id) for c in load_designer_precursors()]
    rows += [(c.smiles, c.id) for c in load_legitimate()[::8]]
    rows += EXTRA + [("C1CC", "broken")]
    out = tmp_path_factory.mktemp("deriv") / "lib.idx"
    build_index((Record(i, ident, smi) for i, (smi, ident) in enumerate(rows)), out,
                shard_size=128)
    return LibraryIndex(out)


@pytest.fixture(scope="module")
def product_keys(parents: dict) -> dict[int, set[str]]:
    """Every row's conversion products (depth 2, up to PMK's 14 heavy atoms): stereo-free keys."""
    rules = load_rules()
    return {row: {match_key(Chem.MolFromSmiles(r.product))
                  for r in rules.apply(p, depth=2, max_products=10_000, max_heavy_atoms=14)}
            for row, p in parents.items()}


@pytest.fixture(scope="module")
def parents(library: LibraryIndex) -> dict[int, object]:
    out = {}
    for t in library.iter_tables(("row", "smiles", "status")):
        for row, smi, status in zip(*(t.column(c).to_pylist() for c in ("row", "smiles", "status"))):
            if status == "ok":
                out[row] = standardize_smiles(smi)
    return out


def rdkit_scan(substance, parents: dict, products: dict | None,  # noqa: ANN001
               threshold: float | None = 0.4, top_k: int | None = None) -> set[tuple[int, str]]:
    """Every (row, relation) by the definitions, row by row (conversions: when ``products``)."""
    groups = load_groups()
    target = substance.parent
    assert target.mol.GetNumHeavyAtoms() <= 14
    recipe = get_recipe("morgan2")
    rows = sorted(parents)
    scores = DataStructs.BulkTanimotoSimilarity(recipe.bitvect(target.mol),
                                                [recipe.bitvect(parents[r].mol) for r in rows])
    found: set[tuple[int, str]] = set()
    if top_k:
        best = sorted(zip(rows, scores), key=lambda rs: (-rs[1], rs[0]))[:top_k]
        found |= {(r, "similar") for r, _ in best}
    else:
        found |= {(r, "similar") for r, s in zip(rows, scores) if s >= threshold}
    for row in rows:
        p = parents[row]
        same = p.key == target.key
        if same:
            found.add((row, "identical"))
        if not same and p.mol.HasSubstructMatch(target.mol, useChirality=False):
            found.add((row, "contains"))
        if not same and target.mol.HasSubstructMatch(p.mol, useChirality=False):
            found.add((row, "contained_in"))
        if products is not None and not same and target.key in products[row]:
            found.add((row, "converts"))
        if any(substance.id in g.parents and groups.is_member(p, g) for g in groups):
            found.add((row, "group"))
    return found


def index_answer(derivatives) -> set[tuple[int, str]]:  # noqa: ANN001
    return {(d.row, r) for d in derivatives for r in d.relations}


@pytest.mark.parametrize("name", ["BMK", "PMK"])
def test_threshold_04_equals_rdkit_scan(library: LibraryIndex, parents: dict,
                                        product_keys: dict, name: str) -> None:
    reg = builtin_registry().filter()
    s = survey_substances(reg, [name])
    got = find_derivatives(library, s, rules=load_rules(), groups=load_groups(),
                           parameters=DerivativeParameters(threshold=0.4))
    expected = rdkit_scan(s[0], parents, product_keys)
    assert index_answer(got) == expected
    assert {r for _, r in expected} >= {"similar", "converts", "group", "contains"}


def test_top_k_and_relation_subset_equal_rdkit_scan(library: LibraryIndex, parents: dict) -> None:
    reg = builtin_registry().filter()
    s = survey_substances(reg, ["BMK"])
    got = find_derivatives(library, s, rules=load_rules(), groups=load_groups(),
                           parameters=DerivativeParameters(threshold=None, top_k=5,
                                                           relations=("similar", "identical")))
    expected = {(r, rel) for r, rel in rdkit_scan(s[0], parents, None, top_k=5)
                if rel in ("similar", "identical")}
    assert index_answer(got) == expected


def test_ranking_reasons_and_similarity(library: LibraryIndex) -> None:
    reg = builtin_registry().filter()
    got = find_derivatives(library, survey_substances(reg, ["BMK"]),
                           rules=load_rules(), groups=load_groups(), jobs=2)
    strength = [RELATIONS.index(d.relation) for d in got]
    assert strength == sorted(strength)
    by_id = {d.id: d for d in got}
    apaan = by_id["DP001"]
    assert apaan.relation == "converts" and apaan.route is not None and apaan.route.depth == 2
    assert "converts in 2 steps to 1-Phenyl-2-propanone" in apaan.reason
    assert by_id["BMK (as a salt)"].relation == "identical"
    assert by_id["toluene"].relations == ("contained_in",)
    assert by_id["homologue"].relation == "contains" and by_id["homologue"].atoms_added == 1
    recipe = get_recipe("morgan2")
    for d in got:
        expected = DataStructs.TanimotoSimilarity(
            recipe.bitvect(Chem.MolFromSmiles("CC(=O)Cc1ccccc1")),
            recipe.bitvect(Chem.MolFromSmiles(d.smiles)))
        assert d.similarity == expected


def test_all_leaves_out_bulk_chemicals() -> None:
    reg = builtin_registry().filter()
    ids = {s.id for s in survey_substances(reg, all_=True)}
    assert {"bmk", "pmk", "apaan", "4-ap"} <= ids
    assert not ids & {"acetone", "toluene", "acetic-anhydride", "potassium-permanganate"}
    assert "acetone" in {s.id for s in survey_substances(reg, all_=True, include_bulk=True)}


def cli_app():  # noqa: ANN201
    import click

    from precursor_screen.cli.survey import derivatives_cmd

    @click.group(cls=Cli)
    @click.option("--debug", is_flag=True)
    def app(debug: bool) -> None:
        """Test app."""

    app.add_command(derivatives_cmd, "derivatives")
    return app


def test_cli_rows_and_html(library: LibraryIndex, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli_app(), ["derivatives", "BMK", "103-79-7", "--index",
                                       str(library.path), "--jobs", "1"])
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows and {r["substance_id"] for r in rows} == {"bmk"}   # CAS of BMK: named once
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    assert "derivatives of 1 substances" in result.stderr
    html = tmp_path / "d.html"
    result = runner.invoke(cli_app(), ["derivatives", "PMK", "--index", str(library.path),
                                       "-o", str(html), "--jobs", "1"])
    assert result.exit_code == 0, result.stderr
    text = html.read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text and "<svg" in text
    result = runner.invoke(cli_app(), ["derivatives", "--index", str(library.path)])
    assert result.exit_code == 2 and "SUBSTANCE" in result.stderr
    result = runner.invoke(cli_app(), ["derivatives", "no such thing", "--index",
                                       str(library.path)])
    assert result.exit_code == 1 and "no listed substance" in result.stderr
