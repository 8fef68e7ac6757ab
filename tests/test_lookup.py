"""`check` (and the lab bench) read a query the way the declarations resolver reads a row: names,
synonyms, CAS numbers, InChI, InChIKeys of listed substances, SMILES, systematic names by OPSIN;
and say which reading they used."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from rdkit import Chem

from precursor_screen.cli import cli
from precursor_screen.declarations.resolve import Opsin
from precursor_screen.lookup import Lookup


@pytest.fixture(scope="module")
def lookup() -> Lookup:
    return Lookup(opsin=False)


def _canon(smiles: str) -> str:
    return Chem.CanonSmiles(smiles)


@pytest.mark.parametrize("query, kind, table, smiles, text", [
    ("vanillin", "name", "bundled", "COc1cc(C=O)ccc1O",
     "name 'vanillin': Vanillin (the bundled table of traded chemicals)"),
    ("121-33-5", "cas", "bundled", "COc1cc(C=O)ccc1O",
     "CAS 121-33-5: Vanillin (the bundled table of traded chemicals)"),
    ("CAS 121-33-5", "cas", "bundled", "COc1cc(C=O)ccc1O",
     "CAS CAS 121-33-5: Vanillin (the bundled table of traded chemicals)"),
    ("4-hydroxy-3-methoxybenzaldehyde", "name", "bundled", "COc1cc(C=O)ccc1O", None),
    ("APAAN", "name", "registry", "CC(=O)C(C#N)c1ccccc1",
     "name 'APAAN': Alpha-phenylacetoacetonitrile [apaan] (the built-in list)"),
    ("NPP", "name", "registry", "O=C1CCN(CCc2ccccc2)CC1", None),   # also N-P-P as SMILES
    ("Ephedrine HCl", "name", "registry", "CN[C@@H](C)[C@H](O)c1ccccc1", None),
    ("103-79-7", "cas", "registry", "CC(=O)Cc1ccccc1", None),
    ("mephedrone", "name", "drugs", "CNC(C)C(=O)c1ccc(C)cc1", None),
    ("QCCDLTOVEPVEJK-UHFFFAOYSA-N", "inchikey", "registry", "CC(=O)Cc1ccccc1",
     "InChIKey QCCDLTOVEPVEJK-UHFFFAOYSA-N: 1-Phenyl-2-propanone [bmk] (the built-in list)"),
    ("InChI=1S/C9H10O/c1-8(10)7-9-5-3-2-4-6-9/h2-6H,7H2,1H3", "inchi", "", "CC(=O)Cc1ccccc1",
     "InChI as given"),
    ("CC(=O)Cc1ccccc1", "smiles", "", "CC(=O)Cc1ccccc1", "SMILES as given"),
    (Chem.MolToMolBlock(Chem.MolFromSmiles("CC(O)Cc1ccccc1")), "molfile", "", "CC(O)Cc1ccccc1",
     "molfile as given"),
])
def test_a_query_is_read_and_says_how(lookup: Lookup, query: str, kind: str, table: str,
                                      smiles: str, text: str | None) -> None:
    meant = lookup.interpret(query)
    assert (meant.kind, meant.table) == (kind, table)
    assert _canon(meant.smiles) == _canon(smiles)
    if text is not None:
        assert meant.text() == text


@pytest.mark.parametrize("query, problem", [
    ("", "empty query"),
    ("C1CC", "unparsable SMILES: C1CC"),
    ("121-33-6", "CAS 121-33-6 has a wrong check digit"),
    ("9002-88-4", "CAS 9002-88-4 is in no lookup table"),
    ("AAAAAAAAAAAAAA-BBBBBBBBSA-N", "is not that of a listed substance"),
    ("InChI=1S/garbage", "unparsable InChI"),
    ("no such chemical", "OPSIN is switched off"),
])
def test_a_query_that_names_nothing_says_why(lookup: Lookup, query: str, problem: str) -> None:
    meant = lookup.interpret(query)
    assert not meant.found and problem in meant.problem


def test_a_name_means_the_same_whatever_the_date() -> None:
    """APAAN is not on the 2012 list; its name still names it, and the 2012 list answers."""
    result = CliRunner().invoke(cli, ["check", "APAAN", "--as-of", "2012-12-31", "--json"])
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["interpretation"]["id"] == "apaan"
    assert answer["standardized_smiles"] == "CC(=O)C(C#N)c1ccccc1"
    assert answer["flag"] == "convertible"           # to BMK, listed in 2012


@pytest.mark.parametrize("query, line", [
    ("vanillin", "interpreted:  name 'vanillin': Vanillin (the bundled table of traded chemicals)"),
    ("121-33-5", "interpreted:  CAS 121-33-5: Vanillin (the bundled table of traded chemicals)"),
])
def test_check_prints_the_reading_and_the_structure(query: str, line: str) -> None:
    result = CliRunner().invoke(cli, ["check", query, "--no-opsin"])
    assert result.exit_code == 0, result.stderr
    assert line in result.stdout.splitlines()
    assert "standardized: COc1cc(C=O)ccc1O" in result.stdout.splitlines()


def test_check_reads_a_molfile_from_stdin() -> None:
    block = Chem.MolToMolBlock(Chem.MolFromSmiles("CC(=O)Cc1ccccc1"))
    result = CliRunner().invoke(cli, ["check", "-", "--json"], input=block)
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["query"] == "(molfile)" and answer["flag"] == "scheduled"


def test_check_of_nothing_is_one_line_and_exit_1() -> None:
    result = CliRunner().invoke(cli, ["check", "no such chemical", "--no-opsin"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")


def _opsin_or_fail() -> None:
    problem = Opsin().problem()
    if problem:
        pytest.fail(f"check of a systematic name needs OPSIN: {problem} (the README's test "
                    "command installs both)", pytrace=False)


def test_check_of_a_systematic_name_answers_with_opsins_structure() -> None:
    _opsin_or_fail()
    result = CliRunner().invoke(cli, ["check", "1-(3,4-dimethoxyphenyl)propan-2-one", "--json"])
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["interpretation"]["kind"] == "opsin"
    assert _canon(answer["standardized_smiles"]) == _canon("COc1ccc(CC(C)=O)cc1OC")
    assert answer["flag"] != ""


def test_without_java_a_systematic_name_says_what_is_missing(monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = CliRunner().invoke(cli, ["check", "1-(3,4-dimethoxyphenyl)propan-2-one"])
    assert result.exit_code == 1
    assert "OPSIN needs a Java runtime" in result.stderr
