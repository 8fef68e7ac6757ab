"""Readers: every physical row is one record, whatever the format and however broken."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rdkit import Chem

from precursor_screen.chem.parse import parse_record
from precursor_screen.errors import InputError
from precursor_screen.io.readers import read_records

SMILES = ["CC(=O)Cc1ccccc1", "CC(=O)C(C#N)c1ccccc1", "C1CC(", "", "O=C1CCNCC1"]


def _sdf(smiles: list[str], broken_last: bool = False) -> str:
    blocks = []
    for i, s in enumerate(smiles):
        mol = Chem.MolFromSmiles(s) or Chem.MolFromSmiles("C")
        mol.SetProp("_Name", f"m{i}")
        blocks.append(Chem.MolToMolBlock(mol) + f"> <note>\nrow {i}\n\n$$$$\n")
    text = "".join(blocks)
    if broken_last:
        text += "m-broken\n  RDKit\n\n  2  1  0  0  0  0  0  0  0  0999 V2000\n"  # no M  END
    return text


def test_smi_with_header_ids_and_empty_lines(tmp_path: Path) -> None:
    f = tmp_path / "a.smi"
    f.write_text("smiles name\n" + "\n".join(f"{s} id{i}" if s else "" for i, s in enumerate(SMILES))
                 + "\n", encoding="utf-8")
    recs = list(read_records(str(f)))
    assert [r.row for r in recs] == list(range(len(SMILES)))
    assert [r.id for r in recs] == ["id0", "id1", "id2", "3", "id4"]
    assert parse_record(recs[2].smiles)[1].startswith("unparsable SMILES")
    assert parse_record(recs[3].smiles)[1].startswith("empty")


def test_binary_junk_is_a_row_with_a_status(tmp_path: Path) -> None:
    f = tmp_path / "junk.smi"
    f.write_bytes(b"CCO a\n\x00\xff\xfe\x01binary\nCCN b\n")
    recs = list(read_records(str(f)))
    assert len(recs) == 3 and recs[1].error.startswith("unreadable")


@pytest.mark.parametrize("gz", [False, True])
def test_sdf_plain_and_gzipped_with_a_broken_last_record(tmp_path: Path, gz: bool) -> None:
    text = _sdf(["CCO", "CC(=O)Cc1ccccc1"], broken_last=True)
    f = tmp_path / ("a.sdf.gz" if gz else "a.sdf")
    if gz:
        with gzip.open(f, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        f.write_text(text, encoding="utf-8")
    recs = list(read_records(str(f)))
    assert [r.id for r in recs] == ["m0", "m1", "m-broken"]
    assert parse_record(recs[1].smiles, recs[1].molblock)[0] is not None
    assert "M  END" in recs[2].error


def test_csv_finds_smiles_and_id_columns(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_text("Compound_ID,SMILES,other\nx1,CCO,1\nx2,\"C1CC(\",2\nx3,CCN\n", encoding="utf-8")
    recs = list(read_records(str(f)))
    assert [(r.id, r.smiles) for r in recs] == [("x1", "CCO"), ("x2", "C1CC("), ("x3", "CCN")]
    assert recs[2].error.startswith("malformed row")


def test_tsv_and_explicit_columns(tmp_path: Path) -> None:
    f = tmp_path / "a.tsv"
    f.write_text("structure_text\tlabel\nCCO\tethanol\n", encoding="utf-8")
    with pytest.raises(InputError, match="no smiles column found"):
        list(read_records(str(f)))
    recs = list(read_records(str(f), smiles_column="structure_text", id_column="label"))
    assert [(r.id, r.smiles) for r in recs] == [("ethanol", "CCO")]
    with pytest.raises(InputError, match="no column 'nope'"):
        list(read_records(str(f), smiles_column="nope"))


def test_parquet(tmp_path: Path) -> None:
    f = tmp_path / "a.parquet"
    pq.write_table(pa.table({"id": ["a", "b", None], "smiles": ["CCO", None, "CCN"]}), f)
    recs = list(read_records(str(f)))
    assert [(r.row, r.id, r.smiles) for r in recs] == [(0, "a", "CCO"), (1, "b", ""), (2, "2", "CCN")]


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_empty_and_binary_files(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "x.smi"
    f.write_bytes(content)
    recs = list(read_records(str(f)))
    assert len(recs) == content.count(b"\n") + (1 if content and not content.endswith(b"\n") else 0)
    assert all(r.error or not parse_record(r.smiles)[0] for r in recs)


def test_not_parquet_and_unknown_format(tmp_path: Path) -> None:
    f = tmp_path / "x.parquet"
    f.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="not a readable Parquet"):
        list(read_records(str(f)))
    with pytest.raises(InputError, match="cannot tell the format"):
        list(read_records(str(tmp_path / "x.xyz")))
    with pytest.raises(InputError, match="no such file"):
        list(read_records(str(tmp_path / "missing.smi")))


@pytest.mark.parametrize("name, text", [
    ("semicolons.csv", "id;smiles;note\nm1;CC(=O)Cc1ccccc1;a, b\nm2;CCO;c\n"),
    ("tabs.csv", "id\tsmiles\nm1\tCC(=O)Cc1ccccc1\nm2\tCCO\n"),
    ("commas.tsv", "id,smiles\nm1,CC(=O)Cc1ccccc1\nm2,CCO\n"),
    ("pipes.txt", "id|smiles\nm1|CC(=O)Cc1ccccc1\nm2|CCO\n"),
])
def test_the_delimiter_is_read_from_the_header(tmp_path: Path, name: str, text: str) -> None:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    notes: list[str] = []
    recs = list(read_records(str(f), fmt="csv" if name.endswith(".txt") else None,
                             notify=notes.append))
    assert [(r.id, r.smiles, r.error) for r in recs] == [("m1", "CC(=O)Cc1ccccc1", ""),
                                                          ("m2", "CCO", "")]
    default = "\t" if name.endswith(".tsv") else ","
    assert bool(notes) == (text.split("\n")[0][2] != default)   # said when not the extension's


@pytest.mark.parametrize("column", ["Compound", "compound name", "Sample_ID", "CAS", "label"])
def test_common_id_columns_are_found(tmp_path: Path, column: str) -> None:
    f = tmp_path / "a.csv"
    f.write_text(f"SMILES,{column}\nCCO,ethanol\n", encoding="utf-8")
    notes: list[str] = []
    assert [r.id for r in read_records(str(f), notify=notes.append)] == ["ethanol"]
    assert notes == []


def test_no_id_column_is_said_and_rows_are_numbered(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_text("smiles,weight\nCCO,46\nCCN,45\n", encoding="utf-8")
    notes: list[str] = []
    assert [r.id for r in read_records(str(f), notify=notes.append)] == ["0", "1"]
    assert notes == [f"warning: {f}: no id column among smiles, weight; the row numbers are the "
                     "ids (name the column with --id-column)"]
    assert [r.id for r in read_records(str(f), id_column="weight")] == ["46", "45"]
