"""Turn one input record into an RDKit molecule, or a one-line reason why not.

A bad row is an answer, not an exception: every function here returns ``(mol, problem)`` with
exactly one of them set, so the caller can write the row with its status.
"""

from __future__ import annotations

import re
import threading

from rdkit import Chem, rdBase

__all__ = ["parse_smiles", "parse_molblock", "parse_record", "MAX_SMILES_LENGTH", "MAX_ATOMS",
           "count_smiles_atoms", "molblock_atoms"]

MAX_SMILES_LENGTH = 5000
"""Longer input is refused before RDKit sees it (a polymer dump or binary junk, not a precursor)."""

MAX_ATOMS = 1000
"""Records with more atoms (hydrogens written out included) are refused before RDKit parses
them (``--max-atoms``): ring perception on a 10,000-atom record runs for minutes and takes
gigabytes. The screen refuses parents of over 200 heavy atoms anyway (``max_heavy_atoms``), and
no molecule of 200 heavy atoms has 1000 atoms with its hydrogens."""

_SMILES_ATOM = re.compile(r"\[[^\]]*\]|Br|Cl|[BCNOPSFIbcnops*]")
_V3000_COUNTS = re.compile(r"^M  V30 COUNTS\s+(\d+)", re.M)


_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffd]")
"""Control characters other than tab and line ends, or the replacement character: not text."""


class quiet_rdkit:
    """Context manager silencing RDKit's process-wide log, restoring it afterwards.

    Nested use costs nothing: inside a quiet block of the same thread (a library build or a
    screen chunk around every parse and standardization) no second block is made.
    """

    _depth = threading.local()

    def __enter__(self) -> "quiet_rdkit":
        depth = getattr(self._depth, "n", 0)
        self._block = rdBase.BlockLogs() if depth == 0 else None
        self._depth.n = depth + 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth.n -= 1
        del self._block


def count_smiles_atoms(text: str) -> int:
    """Atoms written in a SMILES (bracket atoms and organic-subset symbols), before parsing.

    >>> count_smiles_atoms("CC(=O)Cc1ccccc1"), count_smiles_atoms("[Na+].[Cl-]"), count_smiles_atoms("ClCBr")
    (10, 2, 3)
    """
    return len(_SMILES_ATOM.findall(text))


def molblock_atoms(block: str) -> int | None:
    """The atom count a molfile declares (V2000 counts line, V3000 ``COUNTS``); None if unclear.

    >>> molblock_atoms("x\\n  RDKit\\n\\n  3  2  0  0  0  0  0  0  0  0999 V2000\\n")
    3
    """
    found = _V3000_COUNTS.search(block)
    if found:
        return int(found.group(1))
    lines = block.split("\n", 4)
    if len(lines) > 3 and "V2000" in lines[3]:
        try:
            return int(lines[3][:3])
        except ValueError:
            return None
    return None


def _too_many(n: int, max_atoms: int) -> str:
    return f"too large: {n} atoms (limit {max_atoms}, --max-atoms)"


def _text_problem(text: str, max_atoms: int = MAX_ATOMS) -> str:
    if not text.strip():
        return "empty: no structure given"
    if _NOT_TEXT.search(text):
        return "unreadable: binary or non-text data"
    if len(text) > MAX_SMILES_LENGTH:
        return f"too large: SMILES of {len(text)} characters (limit {MAX_SMILES_LENGTH})"
    n = count_smiles_atoms(text)
    if n > max_atoms:
        return _too_many(n, max_atoms)
    return ""


def _sanitize(mol: Chem.Mol) -> str:
    problems = Chem.DetectChemistryProblems(mol)
    if problems:
        return "cannot sanitize: " + problems[0].Message()
    try:
        Chem.SanitizeMol(mol)
    except Exception as exc:  # noqa: BLE001 - RDKit raises several unrelated types
        return f"cannot sanitize: {exc}"
    return ""


def parse_smiles(text: str, max_atoms: int = MAX_ATOMS) -> tuple[Chem.Mol | None, str]:
    """Return ``(mol, "")`` or ``(None, reason)`` for a SMILES string.

    >>> parse_smiles("CC(=O)Cc1ccccc1")[1]
    ''
    >>> parse_smiles("C1CC")[1]
    'unparsable SMILES: C1CC'
    >>> parse_smiles("C[N](C)(C)(C)C")[1][:16]
    'cannot sanitize:'
    """
    problem = _text_problem(text, max_atoms)
    if problem:
        return None, problem
    smiles = text.strip()
    with quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles)  # the common case: one call
        if mol is not None:
            return (mol, "") if mol.GetNumAtoms() else (None, "empty: no atoms")
        mol = Chem.MolFromSmiles(smiles, sanitize=False)
        if mol is None:
            shown = smiles if len(smiles) <= 60 else smiles[:57] + "..."
            return None, f"unparsable SMILES: {shown}"
        problem = _sanitize(mol) or "cannot sanitize: RDKit rejected the structure"
    return None, problem


def parse_molblock(block: str, max_atoms: int = MAX_ATOMS) -> tuple[Chem.Mol | None, str]:
    """Return ``(mol, "")`` or ``(None, reason)`` for one SDF/molfile record."""
    if "\ufffd" in block or "\x00" in block:
        return None, "unreadable: binary or non-text data"
    n = molblock_atoms(block)
    if n is not None and n > max_atoms:
        return None, _too_many(n, max_atoms)
    with quiet_rdkit():
        mol = Chem.MolFromMolBlock(block, sanitize=False, removeHs=False)
        if mol is None:
            return None, "unparsable molfile record"
        problem = _sanitize(mol)
    if problem:
        return None, problem
    if mol.GetNumAtoms() == 0:
        return None, "empty: no atoms"
    return mol, ""


def parse_record(smiles: str, molblock: str | None = None,
                 max_atoms: int = MAX_ATOMS) -> tuple[Chem.Mol | None, str]:
    """Parse whichever structure a record carries (molfile first); more than ``max_atoms``
    atoms is refused before RDKit parses it."""
    if molblock is not None:
        return parse_molblock(molblock, max_atoms)
    return parse_smiles(smiles, max_atoms)
