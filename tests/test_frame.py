"""screen_frame: a DataFrame in, the same kind out with the screen's columns, rows in order."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from precursor_screen import Screener, screen_frame
from precursor_screen.errors import InputError
from precursor_screen.frame import FRAME_COLUMNS

SMILES = ["CC(=O)Cc1ccccc1", None, "C1CC", "CC(=O)C(C#N)c1ccccc1", "CCO"]


@pytest.fixture(scope="module")
def screener() -> Screener:
    return Screener()


def _expected(screener: Screener) -> list[tuple[str, str]]:
    out = []
    for i, s in enumerate(SMILES):
        v = next(iter(screener.screen([s or ""])))
        out.append((v.status, v.flag.value if v.flag is not None else ""))
    return out


def test_pandas_in_pandas_out_index_and_columns_kept(screener: Screener) -> None:
    df = pd.DataFrame({"name": list("abcde"), "smiles": SMILES, "mass": [1.0, 2, 3, 4, 5]},
                      index=[10, 20, 30, 40, 50])
    out = screen_frame(df, screener=screener, id="name")
    assert isinstance(out, pd.DataFrame)
    assert list(out.index) == [10, 20, 30, 40, 50]
    assert list(out.columns) == ["name", "smiles", "mass"] + [c.name for c in FRAME_COLUMNS]
    assert out["mass"].tolist() == [1.0, 2, 3, 4, 5]                   # untouched
    assert list(zip(out["status"], out["flag"])) == _expected(screener)
    assert out.loc[20, "status"].startswith("empty")                 # a missing SMILES
    assert out.loc[40, "match_id"] == "apaan"
    assert out.attrs["precursor_screen"]["reference_sha256"] == screener.reference.content_hash
    assert "flag" not in df.columns                                    # the input is not changed


def test_arrow_in_arrow_out_with_metadata(screener: Screener) -> None:
    table = pa.table({"smiles": SMILES})
    out = screen_frame(table, screener=screener, prefix="screen_")
    assert isinstance(out, pa.Table)
    assert out.column_names == ["smiles"] + ["screen_" + c.name for c in FRAME_COLUMNS]
    assert out.schema.field("screen_score").type == pa.float64()
    assert list(zip(out.column("screen_status").to_pylist(),
                    out.column("screen_flag").to_pylist())) == _expected(screener)
    meta = json.loads(out.schema.metadata[b"precursor_screen"])
    assert meta["parameters"]["smiles_column"] == "smiles"


def test_any_arrow_stream_is_read(screener: Screener) -> None:
    class Stream:  # what polars, duckdb and others offer
        def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
            return pa.table({"SMILES": ["CC(=O)Cc1ccccc1"]}).__arrow_c_stream__(requested_schema)

    out = screen_frame(Stream(), smiles="SMILES", screener=screener)
    assert out.column("flag").to_pylist() == ["scheduled"]


def test_wrong_columns_are_said(screener: Screener) -> None:
    df = pd.DataFrame({"smi": ["CCO"], "flag": ["x"]})
    with pytest.raises(InputError, match="no column 'smiles'"):
        screen_frame(df, screener=screener)
    with pytest.raises(InputError, match="already has column.*flag.*prefix="):
        screen_frame(df, smiles="smi", screener=screener)
    with pytest.raises(InputError, match="cannot read a int"):
        screen_frame(42, screener=screener)
