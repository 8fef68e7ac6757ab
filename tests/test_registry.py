"""The shipped registry: every row validated, the issue's substances present, dates right, and the
hash of what ships recorded (see also tests/test_listings.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from rdkit import Chem

from precursor_screen.errors import ReferenceFileError, ShippedDataError
import shutil

from precursor_screen.reference import builtin_registry, load_reference_file
from scheduled_substances import cas_is_valid, load_drugs, load_registry
from scheduled_substances.integrity import EXPECTED_FILE
from scheduled_substances.registry import REGISTRY_FILE, data_folder

REGISTRY = builtin_registry()

MUST_HAVE = ["1-phenyl-2-propanone", "3,4-MDP-2-P", "APAAN", "APAA", "MAPA", "BMK glycidic acid",
             "PMK glycidic acid", "BMK methyl glycidate", "PMK methyl glycidate", "NPP", "ANPP",
             "4-AP", "1-boc-4-AP", "norfentanyl", "ephedrine", "pseudoephedrine", "norephedrine",
             "safrole", "isosafrole", "piperonal", "N-acetylanthranilic acid", "lysergic acid",
             "ergometrine", "ergotamine", "acetic anhydride", "phenylacetic acid",
             "anthranilic acid", "piperidine"]
LATER_THAN_2012 = ["APAAN", "APAA", "MAPA", "BMK glycidic acid", "PMK glycidic acid",
                   "BMK methyl glycidate", "PMK methyl glycidate", "NPP", "ANPP", "4-AP",
                   "1-boc-4-AP", "norfentanyl"]


@pytest.mark.parametrize("name", MUST_HAVE)
def test_listed_substance_present_with_valid_inchikey(name: str) -> None:
    s = REGISTRY.find(name)
    assert s.status == "scheduled"
    assert Chem.MolToInchiKey(Chem.MolFromSmiles(s.smiles)) == s.inchikey
    assert s.eu_act and s.first_listed() is not None


@pytest.mark.parametrize("name", LATER_THAN_2012)
def test_as_of_2012_lacks_later_additions(name: str) -> None:
    old = REGISTRY.filter(as_of=dt.date(2012, 12, 31))
    assert REGISTRY.find(name).id not in {s.id for s in old}


def test_as_of_2012_has_bmk_and_the_originals() -> None:
    old = {s.id for s in REGISTRY.filter(as_of=dt.date(2012, 12, 31))}
    assert {"bmk", "pmk", "ephedrine", "safrole", "acetic-anhydride", "acetone"} <= old


def test_every_row_valid() -> None:
    ids = [s.id for s in REGISTRY]
    assert len(ids) == len(set(ids))
    for s in REGISTRY:
        assert s.listings, s.id
        for x in s.listings:
            assert x.act and x.sources and len(x.verified) == 3, (s.id, x.line)
            assert (x.in_force is None) == (x.mark("date") == "unknown"), (s.id, x.line)
        assert all(cas_is_valid(c) for c in s.cas), s.id
        if s.smiles:
            assert Chem.MolToInchiKey(Chem.MolFromSmiles(s.smiles)) == s.inchikey, s.id
        else:
            assert s.eu_category == "4", s.id
    # every substance of the EU or UN lists has a date it was first listed there
    assert all(s.first_listed() is not None for s in REGISTRY.filter())


def test_the_shipped_lists_are_the_ones_recorded() -> None:
    """A maintainer who edits a list updates shipped.sha256 in the same commit."""
    registry, drugs = load_registry(), load_drugs()
    lines = f"registry {registry.content_hash}\ndrugs {drugs.content_hash}"
    assert registry.integrity is not None and drugs.integrity is not None
    assert registry.integrity.ok and drugs.integrity.ok, (
        f"a list changed: write these lines into scheduled_substances/{EXPECTED_FILE}:\n{lines}")


def test_proposed_and_watch_rows_are_left_out_unless_asked() -> None:
    default = {s.status for s in REGISTRY.filter()}
    assert default == {"scheduled"}
    assert not any(s.status == "proposed" for s in REGISTRY.filter(include=("proposed",)))
    before = REGISTRY.filter(as_of=dt.date(2026, 1, 1), include=("scheduled", "proposed"))
    assert sum(s.status == "proposed" for s in before) == 6
    watch = REGISTRY.filter(include=("watch",))
    assert {s.id for s in watch} == {"benzaldehyde", "nitroethane", "methylamine"}
    assert {s.id for s in REGISTRY.filter(include=("watch",), jurisdictions=("us",))} == set()


def test_one_record_carries_every_listing() -> None:
    bmk = REGISTRY.find("BMK")
    assert bmk.eu_category == "1" and bmk.un_table == "I"
    assert {x.jurisdiction for x in bmk.listings} == {"eu", "un", "us"}
    assert "EU category 1" in bmk.listing() and "Table I" in bmk.listing()
    assert "US Schedule II" in bmk.listing()
    eu_un = REGISTRY.filter().get("bmk")
    assert "US" not in eu_un.listing() and eu_un.short_listing() == "EU category 1, UN Table I"


def test_un_table_history_applies_as_of() -> None:
    aa = REGISTRY.find("acetic anhydride")
    assert aa.un_table_on(None) == "I"
    assert aa.un_table_on(dt.date(1995, 1, 1)) == "II"
    assert aa.un_table_on(dt.date(1989, 1, 1)) == ""  # the Convention bound Parties from 11.11.1990


def test_search_and_added_since() -> None:
    assert [s.id for s in REGISTRY.filter(search="APAAN")] == ["apaan"]
    recent = {s.id for s in REGISTRY.filter(added_since=dt.date(2024, 1, 1))}
    assert "4-piperidone" in recent and "bmk-ethyl-glycidate" in recent
    assert "4-ap" not in recent and "bmk" not in recent  # 4-AP: UN 2022, EU 2023
    us = {s.id for s in REGISTRY.filter(added_since=dt.date(2024, 1, 1), jurisdictions=("us",))}
    assert us == {"1-boc-4-piperidone", "bmk-glycidic-acid", "bmk-methyl-glycidate",
                  "bmk-ethyl-glycidate", "bmk-propyl-glycidate", "bmk-isopropyl-glycidate",
                  "bmk-butyl-glycidate", "bmk-isobutyl-glycidate", "bmk-sec-butyl-glycidate",
                  "bmk-tert-butyl-glycidate"}


def test_content_hash_names_the_data_not_the_view(tmp_path: Path) -> None:
    assert REGISTRY.content_hash == load_registry().content_hash
    assert REGISTRY.filter(as_of=dt.date(2012, 12, 31)).content_hash == REGISTRY.content_hash
    assert REGISTRY.filter(jurisdictions=("us",)).content_hash == REGISTRY.content_hash
    notes = _copy_with(tmp_path, "\tCAS check digit OK; OPSIN(1-phenylpropan-2-one)",
                       "\tCAS check digit OK (edited); OPSIN(1-phenylpropan-2-one)")
    assert load_registry(notes).content_hash != REGISTRY.content_hash


def _copy_with(tmp_path: Path, old: str, new: str) -> Path:
    folder = tmp_path / "lists"
    if not folder.exists():
        shutil.copytree(data_folder(), folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = folder / REGISTRY_FILE
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_record_whose_smiles_and_inchikey_disagree_is_rejected(tmp_path: Path) -> None:
    bmk = REGISTRY.find("BMK")
    path = _copy_with(tmp_path, bmk.smiles + "\t" + bmk.inchikey, "CC(=O)CCc1ccccc1\t" + bmk.inchikey)
    with pytest.raises(ShippedDataError, match=rf"{REGISTRY_FILE}:{bmk.line}: InChIKey .* does not match"):
        load_registry(path)


def test_bad_cas_is_rejected_with_line(tmp_path: Path) -> None:
    bmk = REGISTRY.find("BMK")
    path = _copy_with(tmp_path, "\t103-79-7\t", "\t103-79-8\t")
    with pytest.raises(ShippedDataError, match=rf":{bmk.line}: CAS"):
        load_registry(path)


def test_unexplained_duplicate_structure_is_rejected(tmp_path: Path) -> None:
    text = (data_folder() / REGISTRY_FILE).read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if ln.startswith("bmk\t"))
    dup = line.replace("bmk\t", "bmk-copy\t", 1)
    path = _copy_with(tmp_path, line, line + "\n" + dup)
    with pytest.raises(ShippedDataError, match="same structure"):
        load_registry(path)


def test_a_substance_without_listing_is_rejected(tmp_path: Path) -> None:
    text = (data_folder() / REGISTRY_FILE).read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if ln.startswith("bmk\t"))
    lonely = line.replace("bmk\t", "bmk-copy\t", 1).replace(
        "CC(=O)Cc1ccccc1\tQCCDLTOVEPVEJK-UHFFFAOYSA-N\tC9H10O",
        "CC(=O)CCc1ccccc1\tAKGGYBADQZYZPD-UHFFFAOYSA-N\tC10H12O")
    path = _copy_with(tmp_path, line, line + "\n" + lonely)
    with pytest.raises(ShippedDataError, match=r"substances.tsv:\d+: bmk-copy has no listing"):
        load_registry(path)


def test_user_reference_csv(tmp_path: Path) -> None:
    f = tmp_path / "national.csv"
    f.write_text("name,smiles,cas\nphenyl-2-nitropropene,CC(=Cc1ccccc1)[N+](=O)[O-],705-60-2\n"
                 "benzyl cyanide,N#CCc1ccccc1,\n", encoding="utf-8")
    reg = load_reference_file(f)
    assert [s.name for s in reg] == ["phenyl-2-nitropropene", "benzyl cyanide"]
    assert all(s.list_name == "national.csv" for s in reg)


@pytest.mark.parametrize("content, message", [
    ("name,smiles\nx,C1CC\n", "national.csv:2: unparsable SMILES"),
    ("name,structure\nx,CCO\n", "needs a 'smiles' column"),
    ("name,smiles,cas\nx,CCO,64-17-6\n", "national.csv:2: CAS"),
    ("name,smiles\n", "no substances"),
])
def test_bad_reference_file_names_the_line(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "national.csv"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(ReferenceFileError, match=message):
        load_reference_file(f)


def test_reference_smi_and_sdf(tmp_path: Path) -> None:
    smi = tmp_path / "l.smi"
    smi.write_text("CC(=O)Cc1ccccc1 BMK\nO=C1CCNCC1 4-piperidone\n", encoding="utf-8")
    assert [s.name for s in load_reference_file(smi)] == ["BMK", "4-piperidone"]
    sdf = tmp_path / "l.sdf"
    mol = Chem.MolFromSmiles("CC(=O)Cc1ccccc1")
    mol.SetProp("_Name", "BMK")
    sdf.write_text(Chem.MolToMolBlock(mol) + "$$$$\n", encoding="utf-8")
    assert [s.name for s in load_reference_file(sdf)] == ["BMK"]
    bad = tmp_path / "bad.smi"
    bad.write_text("CCO ok\nC1CC broken\n", encoding="utf-8")
    with pytest.raises(ReferenceFileError, match="bad.smi:2"):
        load_reference_file(bad)
