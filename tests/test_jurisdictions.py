"""Groups and drug families carry the jurisdiction and the date that defined them: a screen uses
only its own jurisdictions' families (default EU and UN), only what was known on --as-of (which
combines with --reference, replacing only the listed substances), and none with --no-groups."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from precursor_screen.cli import cli
from precursor_screen.reference import builtin_registry
from precursor_screen.rules.drug_targets import load_drug_groups
from precursor_screen.rules.groups import Group, load_groups
from precursor_screen.screen import Screener, ScreenParameters
from precursor_screen.types import Flag

# N-(3,4-dimethoxyphenethyl)furan-2-carboxamide (a MOSES molecule): amide hydrolysis gives
# 3,4-dimethoxyphenethylamine, a member of the UK generic phenethylamine family only
UK_ONLY = "COc1ccc(CCNC(=O)c2ccco2)cc1OC"
# a 4-piperidone ethylene ketal amide: too much comes off for a conversion, a draft group member
GROUP_ONLY = "COc1cccc(C(=O)N2CCC3(CC2)OCCO3)c1"


def test_every_shipped_family_and_adopted_group_is_dated_and_attributed() -> None:
    for g in [*load_groups(), *load_drug_groups()]:
        if g.adopted:
            assert g.jurisdiction and g.in_force is not None, g.id
        else:
            assert not g.jurisdiction and g.in_force is None, g.id  # drafts: the project's


def test_uk_families_are_off_in_a_default_screen() -> None:
    default = Screener()
    assert not {"uk-generic-cathinones", "uk-generic-phenethylamines"} & set(default.drugs.groups.ids)
    assert default.check(UK_ONLY).flag is not Flag.DRUG_PRECURSOR
    uk = Screener(parameters=ScreenParameters(jurisdictions=("eu", "un", "uk")))
    v = uk.check(UK_ONLY)
    assert v.flag is Flag.DRUG_PRECURSOR and "uk-generic-phenethylamines" in v.reason
    v = uk.check("CCC(=O)c1ccc(CC)cc1")  # 4'-ethylpropiophenone, two steps from 4-EMC
    assert v.flag is Flag.DRUG_PRECURSOR, v.reason
    assert all(w in v.reason for w in ("two steps to", "+ a brominating agent", "+ methylamine"))
    assert uk.reference.jurisdictions == ("eu", "un")  # the UK keeps no precursor list here


def test_cli_takes_uk_for_its_families(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["check", "CCC(=O)c1ccc(CC)cc1", "--jurisdiction", "eu,un,uk"])
    assert result.exit_code == 0, result.output
    assert "drug-precursor" in result.output
    result = runner.invoke(cli, ["check", "CCC(=O)c1ccc(CC)cc1"])
    assert result.exit_code == 0 and "drug-precursor" not in result.output


def test_as_of_dates_the_groups_and_families() -> None:
    before = Screener(as_of=dt.date(2024, 6, 1))
    after = Screener(as_of=dt.date(2025, 1, 1))
    assert "bmk-glycidates-un-2024" not in before.groups
    assert "bmk-glycidates-un-2024" in after.groups
    assert "anilinopiperidines" in before.groups          # a draft: undated, like the rules
    us = ScreenParameters(jurisdictions=("us",))
    assert "us-fentanyl-related-substances" not in Screener(
        as_of=dt.date(2017, 12, 31), parameters=us).drugs.groups
    assert "us-fentanyl-related-substances" in Screener(
        as_of=dt.date(2018, 2, 6), parameters=us).drugs.groups


def test_group_applies() -> None:
    g = Group("x", "x", ("bmk",), ("C",), jurisdiction="uk", in_force=dt.date(2010, 4, 16))
    assert g.applies() and g.applies(dt.date(2010, 4, 16), ("uk",))
    assert not g.applies(dt.date(2010, 4, 15)) and not g.applies(None, ("eu", "un"))
    assert Group("y", "y", ("bmk",), ("C",)).applies(dt.date(1900, 1, 1), ("eu",))


def test_no_groups_switches_off_groups_and_families() -> None:
    assert Screener().check(GROUP_ONLY).flag is Flag.GROUP
    bare = Screener(parameters=ScreenParameters(generic_groups=False))
    assert len(bare.groups) == 0 and len(bare.drugs.groups) == 0
    assert bare.check(GROUP_ONLY).flag is Flag.NONE


def test_cli_reference_with_as_of_and_no_groups(tmp_path: Path) -> None:
    runner = CliRunner()
    ref = tmp_path / "list2012.csv"
    assert runner.invoke(cli, ["list", "--as-of", "2012-12-31", "--format", "csv",
                               "-o", str(ref)]).exit_code == 0
    smi = tmp_path / "in.smi"
    smi.write_text(f"{GROUP_ONLY} g\nCC(=O)C(C#N)c1ccccc1 apaan\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = runner.invoke(cli, ["screen", str(smi), "--reference", str(ref), "--as-of",
                                 "2012-12-31", "--no-groups", "-o", str(out), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert ",none," in text.splitlines()[1]                  # the group member: no group
    assert ",convertible," in text.splitlines()[2]           # APAAN: the rules still see it
    assert '"generic_groups": false' in (tmp_path / "out.csv.meta.json").read_text()


@pytest.mark.parametrize("as_of", [None, dt.date(2012, 12, 31)])
def test_reference_replaces_only_the_listed_substances(as_of: dt.date | None) -> None:
    """A reference list and --as-of together: the list is the file's, the drugs are as of."""
    s = Screener(builtin_registry().filter(as_of=dt.date(2012, 12, 31)), as_of=as_of)
    listed = {d.id for d in s.drugs.registry}
    assert ("ortho-fluorofentanyl" in listed) == (as_of is None)
