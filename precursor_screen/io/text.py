"""Bytes to text lines and CSV records, safely: the layer under every text reader.

Whatever arrives (a gzip bomb, a 1 GB line, UTF-16, a stray byte, an unbalanced quote), reading
goes on in bounded memory and every physical line is accounted for:

* :func:`open_input` opens a file or standard input, unpacks gzip under :class:`Limits` (the
  unpacked size, absolute and as a ratio to the packed bytes read) and turns a UTF-16 or UTF-32
  file (with a byte-order mark, or UTF-16 without one) into UTF-8; a UTF-8 byte-order mark is
  dropped;
* :func:`physical_lines` yields every line (ends ``\\n``, ``\\r\\n`` or a lone ``\\r``) with its
  number; a line longer than ``Limits.max_record_bytes`` is not held in memory but comes back
  cut, with its problem; bytes that are not UTF-8 are replaced (U+FFFD) and the line says so;
* :class:`CsvRecords` groups lines into CSV records. A quoted field may hold line breaks, but a
  quote that opens a field and is never properly closed (the end of the file, a record longer
  than the limits, a closing quote followed by text, or a field count that differs from the
  header's) would swallow the lines after it: that first line becomes a record of its own with
  a problem saying so, and reading starts again on the next line.

Errors that stop reading (a corrupt gzip stream, an inflation limit) raise :class:`InputError`
naming the file and the line reached.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import os
import stat
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from precursor_screen.errors import InputError

__all__ = ["Limits", "DEFAULT_LIMITS", "Line", "InputStats", "open_input", "physical_lines",
           "CsvRecords", "CsvRecord", "shown"]

BLOCK = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What one input may cost before reading refuses it.

    ``max_record_bytes``: a line (SMILES, CSV) or an SDF record longer than this is not read
    into memory; its row gets the status ``too large: ...``. ``max_record_lines``: a CSV record
    (a quoted field with line breaks) spanning more physical lines is taken for an unbalanced
    quote. ``max_inflation`` and ``max_inflated_bytes``: a gzip stream unpacking to more than this
    many times the packed bytes read (checked once ``inflation_floor`` bytes are out) or to more
    than this many bytes in all stops the run with an error naming the file (the rows after that
    point are unknown, so there is no row to give them).
    """

    max_record_bytes: int = 4 * 1024 * 1024
    max_record_lines: int = 1000
    max_inflation: float = 200.0
    max_inflated_bytes: int = 64 * 1024 ** 3
    inflation_floor: int = 64 * 1024 * 1024

    def as_dict(self) -> dict[str, float]:
        return {"max_record_bytes": self.max_record_bytes,
                "max_record_lines": self.max_record_lines,
                "max_inflation": self.max_inflation,
                "max_inflated_bytes": self.max_inflated_bytes}


DEFAULT_LIMITS = Limits()


@dataclass(slots=True)
class Line:
    """One physical line: its 1-based number, its text without the line end, the line end, its
    size in bytes, and what is wrong with it (``problem``; ``undecodable``: bytes replaced)."""

    number: int
    text: str
    end: str
    size: int
    problem: str = ""
    undecodable: bool = False


@dataclass
class InputStats:
    """What reading saw, per run: physical lines, records (rows), records spanning lines,
    malformed and oversized records, ids with replaced bytes. The writer reconciles ``rows``
    with the rows it wrote; the summary and the metadata report the rest."""

    files: int = 0
    lines: int = 0
    rows: int = 0
    headers: int = 0
    multiline: int = 0
    malformed: int = 0
    too_large: int = 0
    undecodable: int = 0
    encodings: dict[str, int] | None = None

    def note_encoding(self, name: str) -> None:
        self.encodings = self.encodings or {}
        self.encodings[name] = self.encodings.get(name, 0) + 1

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"files": self.files, "lines": self.lines, "rows": self.rows,
                                  "header_lines": self.headers,
                                  "records_spanning_lines": self.multiline,
                                  "malformed_records": self.malformed,
                                  "too_large_records": self.too_large,
                                  "rows_with_replaced_bytes": self.undecodable}
        if self.encodings:
            out["encodings"] = dict(sorted(self.encodings.items()))
        return out

    def text(self) -> str:
        """One line for stderr: only what needs saying beyond the row count."""
        notes = []
        if self.malformed:
            notes.append(f"{self.malformed} malformed record(s)")
        if self.too_large:
            notes.append(f"{self.too_large} record(s) over the size limit")
        if self.undecodable:
            notes.append(f"{self.undecodable} row(s) with bytes that are not UTF-8 (replaced by "
                         "U+FFFD, structure still screened where it was intact)")
        if self.multiline:
            notes.append(f"{self.multiline} CSV record(s) spanning several lines")
        for name, n in sorted((self.encodings or {}).items()):
            notes.append(f"{n} file(s) read as {name}")
        return "; ".join(notes)


def shown(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters for echoing in an output row, saying how long it was.

    >>> shown("C" * 300, 10)
    'CCCCCCCCCC... (300 characters)'
    """
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


# -- opening --------------------------------------------------------------------------------------

class _Inflated:
    """A gzip stream that refuses to unpack beyond the limits (a gzip bomb)."""

    def __init__(self, raw: BinaryIO, path: str, limits: Limits) -> None:
        self._raw, self._path, self._limits = raw, path, limits
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb")
        self.out = 0

    def _packed(self) -> int:
        try:
            return max(1, self._raw.tell())
        except (OSError, ValueError):  # a pipe: count nothing, the absolute limit still holds
            return 0

    def read(self, size: int = -1) -> bytes:
        data = self._gz.read(size if size > 0 else BLOCK)
        self.out += len(data)
        lim = self._limits
        if self.out > lim.max_inflated_bytes:
            raise InputError(f"{self._path}: unpacks to more than {lim.max_inflated_bytes:,} "
                             "bytes (--max-inflated-bytes); not read further")
        packed = self._packed()
        if packed and self.out > lim.inflation_floor and self.out > lim.max_inflation * packed:
            raise InputError(f"{self._path}: unpacks to more than {lim.max_inflation:g} times its "
                             f"packed size ({self.out:,} bytes from {packed:,}; "
                             "--max-inflation): a gzip bomb? Not read further")
        return data

    def close(self) -> None:
        self._gz.close()
        self._raw.close()


class _Transcoded:
    """A UTF-16 or UTF-32 byte stream read as UTF-8 (undecodable units become U+FFFD)."""

    def __init__(self, raw: "_Peeked", encoding: str) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._done = False

    def read(self, size: int = -1) -> bytes:
        while not self._done:
            chunk = self._raw.read(size if size > 0 else BLOCK)
            text = self._decoder.decode(chunk, final=not chunk)
            if not chunk:
                self._done = True
            if text:
                return text.encode("utf-8", errors="surrogatepass")
        return b""

    def close(self) -> None:
        self._raw.close()


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"), (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
         (codecs.BOM_UTF8, "", "UTF-8 with BOM"), (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
         (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"))


def _sniff(head: bytes) -> tuple[int, str, str]:
    """(BOM length, codec to transcode from or '', what to call it) for a stream's first bytes.

    UTF-16 without a byte-order mark is taken for what it is when every other byte of a text
    that long is NUL (ASCII in UTF-16), which no UTF-8 text and no useful binary file does.

    >>> _sniff("CCO x\\n".encode("utf-16"))[1:]
    ('utf-16-le', 'UTF-16')
    >>> _sniff("CCO x\\n".encode("utf-16-be"))[1:]
    ('utf-16-be', 'UTF-16')
    >>> _sniff(b"CCO x\\n")
    (0, '', '')
    """
    for bom, codec, name in _BOMS:
        if head.startswith(bom):
            return len(bom), codec, name
    if len(head) >= 8:
        even, odd = head[0:64:2], head[1:64:2]
        if odd.count(0) == len(odd) and even.count(0) == 0:
            return 0, "utf-16-le", "UTF-16"
        if even.count(0) == len(even) and odd.count(0) == 0:
            return 0, "utf-16-be", "UTF-16"
    return 0, "", ""


class _Input:
    """An opened input: ``read`` gives UTF-8 bytes; ``encoding`` names a conversion made."""

    def __init__(self, stream: "_Peeked | _Transcoded", raw: BinaryIO | None, encoding: str,
                 compressed: bool) -> None:
        self.stream, self._raw, self.encoding, self.compressed = stream, raw, encoding, compressed

    def read(self, size: int = BLOCK) -> bytes:
        return self.stream.read(size)

    def close(self) -> None:
        if self._raw is not None:
            self.stream.close()


def check_readable(path: str) -> None:
    """InputError unless ``path`` is standard input or an existing file (not a directory)."""
    if path == "-":
        return
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory")


def open_input(path: str, limits: Limits = DEFAULT_LIMITS) -> _Input:
    """Open ``path`` (``-``: standard input) for :func:`physical_lines`: gzip unpacked under
    ``limits``, a byte-order mark dropped, UTF-16/32 turned into UTF-8."""
    check_readable(path)
    raw: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")
    try:
        head = raw.peek(4)[:4] if hasattr(raw, "peek") else b""  # type: ignore[attr-defined]
        compressed = head[:2] == b"\x1f\x8b"
        if compressed and path != "-":
            _prescan(path, limits)
        first = _Peeked(_Inflated(raw, path, limits) if compressed else raw)
        bom, codec, name = _sniff(first.peek(4096))
        first.skip(bom)
        stream: _Peeked | _Transcoded = _Transcoded(first, codec) if codec else first
        return _Input(stream, None if path == "-" else raw, name, compressed)
    except BaseException as exc:
        if path != "-":
            raw.close()
        if isinstance(exc, (OSError, EOFError, zlib.error)):
            raise InputError(f"{path}: cannot read: {exc}") from None
        raise


def _prescan(path: str, limits: Limits) -> None:
    """Unpack a gzipped file once, counting, before any row is read: a bomb (or a corrupt
    stream) stops the run before anything is screened, rather than after millions of rows
    streamed out of it. (Standard input cannot be read twice: its limits are checked as it
    streams.) Unpacking runs at hundreds of MB/s, a small cost beside screening."""
    lines = 0
    with open(path, "rb") as raw:
        stream = _Inflated(raw, path, limits)
        try:
            while block := stream.read(BLOCK):
                lines += block.count(b"\n")
        except InputError:
            raise
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{path}: cannot read after line {lines}: {exc}") from None


class _Peeked:
    """A stream whose first bytes can be looked at before reading."""

    def __init__(self, stream: BinaryIO | _Inflated) -> None:
        self._stream, self._buf = stream, b""

    def peek(self, n: int) -> bytes:
        while len(self._buf) < n:
            more = self._stream.read(n - len(self._buf))
            if not more:
                break
            self._buf += more
        return self._buf[:n]

    def skip(self, n: int) -> None:
        self._buf = self._buf[n:]

    def read(self, size: int = -1) -> bytes:
        if self._buf:
            out, self._buf = self._buf, b""
            return out
        return self._stream.read(size)

    def close(self) -> None:
        self._stream.close()


# -- lines ----------------------------------------------------------------------------------------

def physical_lines(stream: _Input, path: str, limits: Limits = DEFAULT_LIMITS,
                   stats: InputStats | None = None) -> Iterator[Line]:
    """Every line of ``stream`` with its number, in bounded memory (see the module docstring).

    Line ends are ``\\n``, ``\\r\\n`` and a lone ``\\r`` (old Mac files).
    """
    number = 0
    carry = b""
    skipping = 0          # bytes of an over-long line dropped so far (0: not skipping)
    head = b""            # its first bytes, for the row's echo
    cap = limits.max_record_bytes

    def make(raw: bytes, end: bytes) -> Line:
        nonlocal number
        number += 1
        try:
            text, bad = raw.decode("utf-8"), False
        except UnicodeDecodeError:
            text, bad = raw.decode("utf-8", errors="replace"), True
        return Line(number, text, end.decode("ascii"), len(raw) + len(end), "", bad)

    def oversized(size: int, end: bytes) -> Line:
        nonlocal number
        number += 1
        text = head[:200].decode("utf-8", errors="replace")
        length = size - len(end)
        return Line(number, text, end.decode("ascii"), size,
                    f"too large: line of {length:,} bytes (limit {cap:,}, --max-record-bytes)")

    while True:
        try:
            block = stream.read(BLOCK)
        except InputError:
            raise
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            raise InputError(f"{path}: cannot read after line {number}: {exc}") from None
        if not block:
            break
        data = carry + block
        carry = b""
        cut = data.rfind(b"\n") + 1
        if not skipping and cut and b"\r" not in data and cut <= cap:
            # the common case, \n line ends and valid UTF-8: one decode and one split per block
            # (no line of it can pass the cap; a line's size is its length in characters)
            try:
                parts = data[:cut].decode("utf-8").split("\n")
            except UnicodeDecodeError:
                parts = None
            if parts is not None:
                parts.pop()
                for part in parts:
                    number += 1
                    yield Line(number, part, "\n", len(part) + 1)
                carry = data[cut:]
                continue
        pieces = data.splitlines(keepends=True)
        if pieces and not pieces[-1].endswith(b"\n"):
            carry = pieces.pop()       # an unfinished line, or a \r that may be half of \r\n
        for piece in pieces:
            body = piece.rstrip(b"\r\n")
            end = piece[len(body):]
            if skipping:
                skipping += len(piece)
                line = oversized(skipping, end)
                skipping, head = 0, b""
                yield line
            elif len(body) > cap:
                head = body[:1000]
                skipping = len(piece)
                line = oversized(skipping, end)
                skipping, head = 0, b""
                yield line
            else:
                yield make(body, end)
        if len(carry) > cap + 1:      # a line longer than the cap: drop it as it streams by
            if not skipping:
                head = carry[:1000]
            skipping += len(carry)
            carry = b""
    if skipping:
        skipping += len(carry)
        yield oversized(skipping, b"")
    elif carry:
        body = carry.rstrip(b"\r\n")
        yield make(body, carry[len(body):])
    if stats is not None:
        stats.lines += number


# -- CSV records ------------------------------------------------------------------------------------

@dataclass(slots=True)
class CsvRecord:
    """One CSV record: the number of its first line, its fields, how many lines it spans, and
    what is wrong with it (``problem``; ``undecodable``: bytes replaced somewhere in it)."""

    line: int
    fields: list[str]
    lines: int = 1
    problem: str = ""
    undecodable: bool = False


def _inside_after(text: str, delimiter: str, inside: bool) -> bool:
    """Whether a CSV record is inside a quoted field at the end of ``text`` (one physical line),
    given whether it was at its start (``csv`` module rules: a quote opens a field only at the
    field's start, ``""`` inside quotes is a quote, text after a closing quote joins the
    field)."""
    i, n = 0, len(text)
    while i < n:
        if inside:
            j = text.find('"', i)
            if j < 0:
                return True
            if j + 1 < n and text[j + 1] == '"':
                i = j + 2
                continue
            inside = False
            i = j + 1
        if text.startswith('"', i):        # a field that opens with a quote
            inside = True
            i += 1
            continue
        j = text.find(delimiter, i)         # an unquoted field (or the rest of a closed one)
        if j < 0:
            return False
        i = j + 1
        if i == n:
            return False
    return inside


def _closed_properly(text: str, delimiter: str) -> bool:
    """True when every quoted field of ``text`` (one record) is closed, each closing quote
    followed by the delimiter, a line end or the end (what a well-formed record looks like)."""
    i, n, at_start = 0, len(text), True
    while i < n:
        c = text[i]
        if at_start and c == '"':
            j = i + 1
            while True:
                j = text.find('"', j)
                if j < 0:
                    return False
                if j + 1 < n and text[j + 1] == '"':
                    j += 2
                    continue
                break
            i = j + 1
            if i < n and text[i] not in (delimiter, "\r", "\n"):
                return False
            at_start = False
            continue
        at_start = c in (delimiter, "\n", "\r")
        i += 1
    return True


class CsvRecords:
    """CSV records of ``lines`` (see the module docstring): iterate for :class:`CsvRecord`.

    Set ``width`` (the header's field count) once the header is read: a record spanning lines
    whose field count differs is taken for an unbalanced quote. A line without a quote is split
    at the delimiter (what ``csv`` does with it); the others go through ``csv``.
    """

    def __init__(self, lines: Iterable[Line], delimiter: str, limits: Limits = DEFAULT_LIMITS,
                 stats: InputStats | None = None) -> None:
        self._lines = iter(lines)
        self.delimiter = delimiter
        self.width: int | None = None
        self._stats = stats
        self._limits = limits

    def __iter__(self) -> Iterator[CsvRecord]:
        back: list[Line] = []          # lines to read again (after an unbalanced quote)
        source = self._lines
        delimiter = self.delimiter
        max_lines, max_bytes = self._limits.max_record_lines, self._limits.max_record_bytes
        while True:
            if back:
                line = back.pop()
            else:
                line = next(source, None)
                if line is None:
                    return
            text = line.text
            if line.problem:
                yield CsvRecord(line.number, [], 1, line.problem, line.undecodable)
                continue
            if '"' not in text:
                yield CsvRecord(line.number, text.split(delimiter) if text else [], 1, "",
                                line.undecodable)
                continue
            taken = [line]
            size = line.size
            inside = _inside_after(text, delimiter, False)
            stopped = False
            while inside:
                if len(taken) >= max_lines or size > max_bytes:
                    stopped = True
                    break
                nxt = back.pop() if back else next(source, None)
                if nxt is None:
                    break
                taken.append(nxt)
                size += nxt.size
                if nxt.problem:
                    stopped = True
                    break
                inside = _inside_after(nxt.text, delimiter, True)
            if len(taken) == 1 and not inside:
                fields = next(csv.reader([text], delimiter=delimiter, strict=False), [])
                yield CsvRecord(line.number, fields, 1, "", line.undecodable)
                continue
            joined = "".join(t.text + (t.end or "\n") for t in taken)
            fields = next(csv.reader([joined], delimiter=delimiter, strict=False), [])
            if inside or stopped or (self.width is not None and len(fields) != self.width) \
                    or not _closed_properly(joined, delimiter):
                back.extend(reversed(taken[1:]))
                if self._stats is not None:
                    self._stats.malformed += 1
                yield CsvRecord(line.number, [text], 1,
                                f"malformed row: unbalanced quote on line {line.number} (the line "
                                "is one row, the lines after it rows of their own)",
                                line.undecodable)
                continue
            if self._stats is not None:
                self._stats.multiline += 1
            yield CsvRecord(line.number, fields, len(taken), "",
                            any(t.undecodable for t in taken))
