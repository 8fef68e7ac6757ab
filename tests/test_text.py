"""io/text.py: physical lines and CSV records, checked against Python's own splitting and csv."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from precursor_screen.errors import InputError
from precursor_screen.io import text
from precursor_screen.io.text import CsvRecords, Limits, open_input, physical_lines

ENDS = st.sampled_from([b"\n", b"\r\n", b"\r"])
LINE = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


def _lines(data: bytes, tmp: Path, limits: Limits = Limits()) -> list[text.Line]:
    path = tmp / "x.smi"
    path.write_bytes(data)
    stream = open_input(str(path), limits)
    try:
        return list(physical_lines(stream, str(path), limits))
    finally:
        stream.close()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(LINE, ENDS), max_size=30), st.booleans(),
       st.sampled_from([1, 2, 3, 7, 64]))
def test_lines_are_pythons_lines_whatever_the_block_size(tmp_path_factory, pairs, last_end,
                                                         block) -> None:  # noqa: ANN001
    data = b"".join(line + end for line, end in pairs)
    if pairs and not last_end:
        data = data[: -len(pairs[-1][1])]
    tmp = tmp_path_factory.mktemp("lines")
    old = text.BLOCK
    text.BLOCK = block
    try:
        got = _lines(data, tmp)
    finally:
        text.BLOCK = old
    if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return  # a byte-order mark: read as what it announces
    want = data.splitlines()
    if len(data) >= 8 and (data[1:64:2].count(0) == len(data[1:64:2])
                           or data[0:64:2].count(0) == len(data[0:64:2])):
        return  # NULs every other byte: read as UTF-16
    assert [ln.text for ln in got] == [w.decode("utf-8", "replace") for w in want]
    assert [ln.number for ln in got] == list(range(1, len(want) + 1))


def test_an_oversized_line_is_cut_not_held(tmp_path: Path) -> None:
    data = b"CCO a\n" + b"C" * 5000 + b" b\nCCN c"
    got = _lines(data, tmp_path, Limits(max_record_bytes=1000))
    assert [ln.problem[:9] for ln in got] == ["", "too large", ""]
    assert got[1].problem.startswith("too large: line of 5,002 bytes") and len(got[1].text) <= 200
    assert got[2].text == "CCN c"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)),
                                 max_size=12), min_size=3, max_size=3), max_size=25),
       st.sampled_from([",", "\t"]))
def test_well_formed_csv_reads_as_csv_reads_it(tmp_path_factory, rows, sep) -> None:  # noqa: ANN001
    buf = io.StringIO()
    # "\r\n" ends make csv quote fields holding either character (with "\n" it leaves a
    # carriage return bare: the bug of issue 18's finding 2)
    writer = csv.writer(buf, delimiter=sep, lineterminator="\r\n")
    writer.writerow(["a", "b", "c"])
    writer.writerows(rows)
    raw = buf.getvalue()
    path = tmp_path_factory.mktemp("csv") / "x.csv"
    path.write_bytes(raw.encode("utf-8"))
    stream = open_input(str(path))
    try:
        records = CsvRecords(physical_lines(stream, str(path)), sep)
        records.width = 3
        got = [r.fields for r in records]
    finally:
        stream.close()
    assert got == list(csv.reader(io.StringIO(raw, newline=""), delimiter=sep))


def test_an_unbalanced_quote_costs_one_row_anywhere(tmp_path: Path) -> None:
    for bad in range(5):
        rows = [f"C{i},x{i}" for i in range(5)]
        rows[bad] = f'C{bad},"open'
        lines = [text.Line(i + 1, t, "\n", len(t) + 1) for i, t in enumerate(["s,i", *rows])]
        records = CsvRecords(lines, ",")
        found = iter(records)
        next(found)
        records.width = 2
        got = list(found)
        assert len(got) == 5
        assert [r.problem.startswith("malformed row") for r in got] == [i == bad
                                                                         for i in range(5)]


def test_a_corrupt_gzip_stops_before_any_line(tmp_path: Path) -> None:
    data = gzip.compress(b"CCO a\n" * 10000)
    path = tmp_path / "x.smi.gz"
    path.write_bytes(data[:-20] + b"\0" * 20)
    with pytest.raises(InputError, match=r"x\.smi\.gz: cannot read after line"):
        open_input(str(path))
