"""Compound sets a drafter weighs a group against: known designer precursors, legitimate chemicals.

Shipped in ``survey/data/`` (copied, columns named in each file's first line, from the project's
``evaluation/`` files; a test keeps them equal):

* ``designer_precursors.tsv``: 114 publicly documented designer precursors, masked forms, salts and
  stereoisomers, each with the listed substance it leads to (``parent_id``);
* ``legitimate.tsv``: 1,487 chemicals in legitimate trade and use (approved drugs, solvents and
  reagents, building blocks, flavours and fragrances, industrial chemicals): the bundled default
  set for collateral in ``group check``.

A user's own set (``--legit FILE``) is read like any input (.smi, .sdf, .csv, .parquet); each row
keeps its id and unreadable rows are kept with their reason.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rdkit import Chem

from precursor_screen.chem.parse import parse_molblock
from precursor_screen.errors import ShippedDataError
from precursor_screen.io.readers import Notify, read_records

__all__ = ["Compound", "load_designer_precursors", "load_legitimate", "read_compound_file"]


@dataclass(frozen=True, slots=True)
class Compound:
    """One compound of a set: id, name, SMILES, and what the set says of it."""

    id: str
    name: str
    smiles: str
    set: str                 # "designer", "legitimate", or the user's file name
    parent_id: str = ""      # designer precursors: the listed substance it leads to
    note: str = ""           # designer: relation (masked, salt, ...); legitimate: category
    status: str = "ok"       # why the row could not be read, for a user's file


def _data(name: str) -> str:
    try:
        resource = resources.files("precursor_screen.survey") / "data" / name
        if resource.is_file():
            return resource.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):  # pragma: no cover
        pass
    path = Path(__file__).parent / "data" / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        raise ShippedDataError(f"{name}: shipped data file is missing ({path})") from None


def _rows(name: str, needed: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    lines = [line for line in _data(name).splitlines(keepends=True)]
    skip = sum(1 for line in lines if line.startswith("#"))
    reader = csv.DictReader(io.StringIO("".join(lines[skip:])), delimiter="\t",
                            quoting=csv.QUOTE_NONE)
    missing = [c for c in needed if c not in (reader.fieldnames or ())]
    if missing:
        raise ShippedDataError(f"{name}: missing column(s) {', '.join(missing)}")
    out = []
    for row in reader:
        line = reader.line_num + skip
        if any(not row.get(c) for c in ("id", "smiles")):
            raise ShippedDataError(f"{name}:{line}: empty id or smiles")
        out.append((line, row))
    return out


def load_designer_precursors() -> tuple[Compound, ...]:
    """The shipped known designer precursors.

    >>> dp = load_designer_precursors()
    >>> dp[0].name, dp[0].parent_id
    ('APAAN (alpha-phenylacetoacetonitrile)', 'bmk')
    """
    return tuple(Compound(r["id"], r["name"], r["smiles"], "designer", r["parent_id"],
                          r["relation"])
                 for _, r in _rows("designer_precursors.tsv", ("id", "name", "smiles",
                                                                "parent_id", "relation")))


def load_legitimate() -> tuple[Compound, ...]:
    """The shipped default set of legitimate chemicals (drugs, solvents, building blocks, ...).

    >>> legit = load_legitimate()
    >>> len(legit) > 1000, legit[0].name, legit[0].note
    (True, 'Acetophenone', 'flavour-fragrance')
    """
    return tuple(Compound(r["id"], r["name"], r["smiles"], "legitimate", "", r["category"])
                 for _, r in _rows("legitimate.tsv", ("id", "name", "smiles", "category")))


def read_compound_file(path: str, *, smiles_column: str | None = None,
                       id_column: str | None = None,
                       notify: Notify | None = None) -> tuple[Compound, ...]:
    """A user's set (any input format): one Compound per row, unreadable rows with their reason."""
    out = []
    for rec in read_records(path, smiles_column=smiles_column, id_column=id_column,
                            notify=notify):
        smiles, status = rec.smiles, rec.error or "ok"
        if rec.molblock is not None and status == "ok":
            mol, problem = parse_molblock(rec.molblock)
            smiles, status = (Chem.MolToSmiles(mol), "ok") if mol is not None else ("", problem)
        out.append(Compound(rec.id, rec.id, smiles, Path(path).name, status=status))
    return tuple(out)
