"""The one place that tells a file's format: from an explicit choice or the extension.

Inputs: ``.smi``/``.smiles`` (one SMILES and an id per line), ``.sdf`` (molfile records), ``.csv``,
``.tsv``, ``.parquet``, each optionally gzipped. Outputs: ``.csv``, ``.tsv``, ``.parquet``,
``.sdf``, ``.jsonl``, and for reports ``.html``, ``.json``, ``.txt``. Each command passes the
formats it can read or write; ``-`` is standard input or output.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from precursor_screen.errors import InputError

__all__ = ["INPUT_FORMATS", "OUTPUT_FORMATS", "input_format", "output_format", "content_format"]

INPUT_FORMATS = ("smi", "sdf", "csv", "tsv", "parquet")
OUTPUT_FORMATS = ("csv", "tsv", "parquet", "sdf", "jsonl", "html", "json", "txt")

_INPUT_EXTENSIONS = {"smi": "smi", "smiles": "smi", "ism": "smi", "can": "smi", "txt": "smi",
                     "sdf": "sdf", "mol": "sdf", "sd": "sdf", "csv": "csv", "tsv": "tsv",
                     "tab": "tsv", "parquet": "parquet", "pq": "parquet"}
_OUTPUT_EXTENSIONS = {"csv": "csv", "tsv": "tsv", "parquet": "parquet", "pq": "parquet",
                      "sdf": "sdf", "jsonl": "jsonl", "ndjson": "jsonl", "html": "html",
                      "htm": "html", "json": "json", "txt": "txt", "text": "txt", "md": "txt"}
_ALIASES = {"smiles": "smi", "pq": "parquet", "ndjson": "jsonl"}


def input_format(path: str, given: str | None = None, *,
                 allowed: Sequence[str] = INPUT_FORMATS, text: str = "smi",
                 stdin: str = "smi", folder: str | None = None) -> str:
    """Return the format of an input file: ``given``, else from the extension (``.gz`` ignored).

    ``text`` is what a ``.txt`` file holds for this command, ``stdin`` what ``-`` holds, and
    ``folder`` what a directory holds (None: a directory is not an input).

    >>> input_format("x.sdf.gz"), input_format("a.SMILES"), input_format("t.txt", "csv")
    ('sdf', 'smi', 'csv')
    >>> input_format("decl.txt", allowed=("csv", "tsv", "parquet"), text="csv")
    'csv'
    """
    if given:
        fmt = _ALIASES.get(given.lower().lstrip("."), given.lower().lstrip("."))
        if fmt not in allowed:
            raise InputError(f"unknown input format {given!r}; choose one of {', '.join(allowed)}")
        return fmt
    if path == "-":
        return stdin
    if folder is not None and os.path.isdir(path):
        return folder
    name = path.lower().removesuffix(".gz")
    ext = os.path.splitext(name)[1].lstrip(".")
    fmt = text if ext == "txt" else _INPUT_EXTENSIONS.get(ext)
    if fmt is None or fmt not in allowed:
        raise InputError(f"{path}: cannot tell the format from the extension {ext!r}; "
                         f"use --input-format ({', '.join(allowed)})")
    return fmt


def output_format(path: str, given: str | None = None, *,
                  allowed: Sequence[str] = ("csv", "tsv", "parquet", "sdf", "jsonl")) -> str:
    """Return the format to write: ``given``, else from ``path``'s extension (``-``: CSV on
    stdout); InputError naming the choices otherwise, and for Parquet to stdout.

    >>> output_format("hits.parquet"), output_format("-"), output_format("x.txt", "tsv")
    ('parquet', 'csv', 'tsv')
    """
    if given:
        fmt = _ALIASES.get(given.lower(), given.lower())
    elif path == "-":
        fmt = "csv"
    else:
        fmt = _OUTPUT_EXTENSIONS.get(path.rsplit(".", 1)[-1].lower() if "." in path else "", "")
    if fmt not in allowed:
        raise InputError(f"cannot tell the output format of {path!r}; use --format or one of "
                         + ", ".join(f".{f}" for f in allowed) + " (- writes CSV to stdout)")
    if fmt == "parquet" and path == "-":
        raise InputError("Parquet output needs a file: use -o FILE.parquet")
    return fmt


def content_format(head: bytes) -> str:
    """Guess an input's format from its first bytes, for an input without a telling name (an
    upload to the lab bench): Parquet by its magic, SDF by a molfile's lines, CSV or TSV by a
    header of several fields, else SMILES lines.

    >>> content_format(b"PAR1..."), content_format(b"x\\n  RDKit\\n\\n  1  0  0  0  0  0  0  0  0  0999 V2000")
    ('parquet', 'sdf')
    >>> content_format(b"id,smiles\\n1,CCO\\n"), content_format(b"CCO ethanol\\n")
    ('csv', 'smi')
    """
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.decode("utf-8", errors="replace")
    if "M  END" in text or " V2000" in text or " V3000" in text:
        return "sdf"
    first = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    for delimiter, fmt in ((",", "csv"), ("\t", "tsv"), (";", "csv")):
        if len(first.split(delimiter)) >= 3 or (
                len(first.split(delimiter)) == 2 and delimiter != "\t"):
            return fmt
    return "smi"
