"""`group check`: the impact report of a draft BMK-glycidate group, on held-out compounds.

The draft is written from three training examples (the acid, the methyl and the ethyl ester);
the report is judged on compounds the draft never saw: the other glycidates and the non-glycidate
designer precursors of BMK in the shipped set, a library of held-out compounds, and a user's file
of legitimate chemicals. Expectations are written out by hand.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from precursor_screen.cli import Cli
from precursor_screen.io.readers import Record
from precursor_screen.reference import builtin_registry
from precursor_screen.rules.masks import load_rules
from precursor_screen.rules.groups import load_group_file
from precursor_screen.survey import LibraryIndex, build_index
from precursor_screen.survey.groupcheck import check_groups
from precursor_screen.survey.sets import load_designer_precursors, load_legitimate

DRAFT = """
[bmk-glycidates-generic]
title = "BMK glycidic acid and all its esters"
parents = ["bmk", "bmk-glycidic-acid", "bmk-methyl-glycidate"]
smarts = '[CH3][CX4]1([CX3](=O)[OX2;H1,$(O[#6;!$(C=O)])])O[CH1]1c1[cH][cH][cH][cH][cH]1'
status = "draft"
rationale = "Any ester of BMK glycidic acid hydrolyses to it; the UN enumeration stops at C4."
must_match = [
    'CC1(C(=O)O)OC1c1ccccc1 BMK glycidic acid',
    'COC(=O)C1(C)OC1c1ccccc1 BMK methyl glycidate',
    'CCOC(=O)C1(C)OC1c1ccccc1 BMK ethyl glycidate',
]
must_not_match = [
    'CCOC(=O)C1OC1(C)c1ccccc1 strawberry aldehyde',
    'CCOC(=O)C1(C)OC1c1ccc2c(c1)OCO2 PMK ethyl glycidate',
]

[aryl-glycidates-loose]
title = "Any 3-arylglycidic acid or ester (too loose on purpose)"
parents = ["bmk"]
smarts = '[CX4]1([CX3](=O)O)O[CX4]1c1ccccc1'
status = "draft"
rationale = "A deliberately loose draft, to show collateral."
must_match = ['COC(=O)C1(C)OC1c1ccccc1 BMK methyl glycidate']
must_not_match = ['CCO ethanol']
"""

HELD_OUT_LIBRARY = [
    ("CCCCCOC(=O)C1(C)OC1c1ccccc1", "pentyl"),         # strict: captured
    ("O=C(OCc1ccccc1)C1(C)OC1c1ccccc1", "benzyl"),      # strict: captured
    ("COCCOC(=O)C1(C)OC1c1ccccc1", "methoxyethyl"),    # strict: captured
    ("CC1(C(=O)[O-])OC1c1ccccc1.[K+]", "K salt"),       # strict: captured (parent: the acid)
    ("CC1(C(=O)O)OC1c1ccccc1", "acid"),                 # strict: captured, same key as K salt
    ("CC1(C(N)=O)OC1c1ccccc1", "glycidamide"),          # not an ester: neither
    ("CCOC(=O)C1(C)OC1c1ccc2c(c1)OCO2", "PMK ethyl"),   # loose only
    ("CCOC(=O)C1OC1(C)c1ccccc1", "strawberry"),         # loose only
    ("CC(=O)C(C#N)c1ccccc1", "APAAN"),                  # neither
    ("CCO", "ethanol"), ("c1ccccc1", "benzene"), ("C1CC", "broken"),
]
LEGIT_FILE = ("smiles,name\n"
              "COC(=O)C1OC1c1ccc(OC)cc1,diltiazem intermediate\n"   # loose only
              "CC(=O)Oc1ccccc1C(=O)O,aspirin\n"
              "not a smiles,junk\n")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("groups")
    (d / "draft.toml").write_text(DRAFT, encoding="utf-8")
    (d / "legit.csv").write_text(LEGIT_FILE, encoding="utf-8")
    build_index((Record(i, ident, smi) for i, (smi, ident) in enumerate(HELD_OUT_LIBRARY)),
                d / "lib.idx", shard_size=4)
    return {"draft": d / "draft.toml", "legit": d / "legit.csv", "index": d / "lib.idx"}


@pytest.fixture(scope="module")
def impacts(files: dict[str, Path]) -> dict[str, object]:
    from precursor_screen.survey.sets import read_compound_file

    result = check_groups(load_group_file(files["draft"]), reference=builtin_registry().filter(),
                          rules=load_rules(), designer=load_designer_precursors(),
                          legitimate={"legitimate": load_legitimate(),
                                      "legit.csv": read_compound_file(str(files["legit"]))},
                          library=LibraryIndex(files["index"]), examples=2)
    return {imp.group.id: imp for imp in result}


def ids(impact, set_name: str, verdict: str) -> set[str]:  # noqa: ANN001
    return {f.id for f in impact.of(set_name, verdict)}


BMK_GLYCIDATES = {"bmk-glycidic-acid", "bmk-methyl-glycidate", "bmk-ethyl-glycidate",
                  "bmk-propyl-glycidate", "bmk-isopropyl-glycidate", "bmk-butyl-glycidate",
                  "bmk-isobutyl-glycidate", "bmk-sec-butyl-glycidate", "bmk-tert-butyl-glycidate"}


def test_listed_covered_and_missed(impacts: dict) -> None:
    strict = impacts["bmk-glycidates-generic"]
    assert ids(strict, "listed", "covered") == BMK_GLYCIDATES
    # the parent itself, and what the rules turn into BMK without being a glycidate
    assert ids(strict, "listed", "missed") == {"bmk", "apaan", "apaa", "mapa", "eapa", "depapd",
                                               "phenyl-2-nitropropene"}
    missed = {f.id: f.reason for f in strict.of("listed", "missed")}
    assert missed["bmk"].endswith("a parent of the group")
    assert "converts in 2 steps to 1-Phenyl-2-propanone [bmk]" in missed["apaan"]


def test_designer_precursors_covered_and_missed_held_out(impacts: dict) -> None:
    strict = impacts["bmk-glycidates-generic"]
    glycidates = {f"DP{i:03d}" for i in range(6, 23)}      # acid, salt, 15 esters
    assert ids(strict, "designer", "covered") == glycidates
    missed = ids(strict, "designer", "missed")
    assert {"DP001", "DP002", "DP003", "DP023", "DP027", "DP028", "DP029", "DP030"} <= missed
    assert not missed & glycidates
    pmk = {c.id for c in load_designer_precursors() if c.parent_id.startswith("pmk")}
    assert not (missed | glycidates) & pmk               # PMK's family is not BMK's


def test_library_captures_exactly(impacts: dict) -> None:
    strict, loose = impacts["bmk-glycidates-generic"], impacts["aryl-glycidates-loose"]
    assert strict.library_captured == 5 and strict.library_distinct == 4   # K salt = the acid
    assert loose.library_captured == 7
    assert [f.id for f in strict.of("library", "captured")] == ["pentyl", "benzyl"]  # examples=2


def test_collateral(impacts: dict) -> None:
    strict, loose = impacts["bmk-glycidates-generic"], impacts["aryl-glycidates-loose"]
    assert not strict.of("legitimate", "collateral") and not strict.of("legit.csv", "collateral")
    assert ids(loose, "legitimate", "collateral") == {"LG0033", "LG0034"}
    assert ids(loose, "legit.csv", "collateral") == {"diltiazem intermediate"}
    assert ids(loose, "legit.csv", "unreadable") == {"junk"}


def cli_app():  # noqa: ANN201
    import click

    from precursor_screen.cli.survey import group_cmd

    @click.group(cls=Cli)
    @click.option("--debug", is_flag=True)
    def app(debug: bool) -> None:
        """Test app."""

    app.add_command(group_cmd, "group")
    return app


def test_cli_data_and_reports(files: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["group", "check", str(files["draft"]), "--index", str(files["index"]),
            "--legit", str(files["legit"])]
    result = runner.invoke(cli_app(), base + ["--report", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {(r["group_id"], r["verdict"]) for r in rows} >= {
        ("bmk-glycidates-generic", "covered"), ("bmk-glycidates-generic", "missed"),
        ("bmk-glycidates-generic", "captured"), ("aryl-glycidates-loose", "collateral")}
    assert ("[bmk-glycidates-generic] listed substances: 9 covered, 7 missed; known designer "
            "precursors: ") in result.stderr  # 7 missed: P2NP, EU category 1 since 2026
    # the library's captures are a clause of their own, never after "missed"
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("[bmk-glycidates-gen"))
    assert "; library: 5 captured (4 distinct) of 12;" in line
    assert "missed 0, library" not in line and not re.search(r"missed \d+, library", line)
    html = (tmp_path / "r.html").read_text()
    assert "Collateral in legit.csv" in html and "<svg" in html and "<script" not in html
    result = runner.invoke(cli_app(), base + ["-o", str(tmp_path / "r.json"), "--no-default-legit",
                                              "--report", str(tmp_path / "r.txt")])
    assert result.exit_code == 0, result.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["metadata"]["index_manifest_sha256"] and data["metadata"]["reference_sha256"]
    strict = next(g for g in data["groups"] if g["id"] == "bmk-glycidates-generic")
    assert strict["counts"]["listed"] == {"covered": 9, "missed": 7}  # P2NP, EU 2026
    assert strict["library"] == {"captured": 5, "distinct": 4}
    assert "library compounds captured: 5 of 12" in (tmp_path / "r.txt").read_text()


def test_cli_draft_with_failing_examples(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(DRAFT.replace("'CCO ethanol'", "'COC(=O)C1(C)OC1c1ccccc1 oops'"))
    result = CliRunner().invoke(cli_app(), ["group", "check", str(bad), "--no-default-legit"])
    assert result.exit_code == 1 and "must_not_match 'oops'" in result.stderr
    result = CliRunner().invoke(cli_app(), ["group", "check", str(bad), "--skip-example-check",
                                            "--no-default-legit", "--report", "x.pdf"])
    assert result.exit_code == 2 and "output format" in result.stderr   # a usage error
