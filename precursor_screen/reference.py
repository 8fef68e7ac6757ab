"""The lists a screen compares against: the built-in registries with their parent structures,
and user reference lists read from files.

The registries (``scheduled_substances``) are loaded with this package's standardizer, so that a
listed substance and a candidate meet in one standardized form; they are read once per process.
A built-in list that differs from the one shipped (``Registry.integrity``) raises a
:class:`~precursor_screen.errors.RegistryIntegrityWarning` on that first load; the commands print
it on stderr and every output records it in its metadata (``manifest.py``).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from rdkit import Chem

from precursor_screen.chem.parse import parse_molblock, parse_smiles, quiet_rdkit
from precursor_screen.chem.standardize import (
    Standardized,
    StandardizeError,
    StoredParent,
    standardize,
)
from precursor_screen.errors import InputError, ReferenceFileError, RegistryIntegrityWarning
from precursor_screen.io.formats import input_format
from precursor_screen.io.readers import read_records
from precursor_screen.io.text import CsvRecords, Line, input_lines
from precursor_screen.parallel import ordered_map
from scheduled_substances import (
    DEFAULT_JURISDICTIONS,
    EU_CATEGORIES,
    DrugRegistry,
    Registry,
    Substance,
    cas_is_valid,
    load_drugs,
    load_registry,
)
from scheduled_substances.validate import split_values

__all__ = ["builtin_registry", "builtin_drugs", "load_reference", "load_reference_file",
           "integrity_problems"]


@functools.cache
def builtin_registry() -> Registry:
    """The shipped precursor registry, every substance with its standardized parent, in the view
    of every jurisdiction (``Registry.filter`` narrows it)."""
    reg = load_registry(standardizer=standardize)
    _warn_if_edited(reg.integrity)
    return reg


@functools.cache
def builtin_drugs() -> DrugRegistry:
    """The shipped registry of controlled drugs, each with its standardized parent."""
    reg = load_drugs(standardizer=standardize)
    _warn_if_edited(reg.integrity)
    return reg


def _warn_if_edited(integrity: Any) -> None:
    if integrity is not None and not integrity.ok:
        warnings.warn(integrity.problem, RegistryIntegrityWarning, stacklevel=3)


def integrity_problems() -> list[str]:
    """What differs between the built-in lists loaded and the ones shipped (one line each)."""
    return [i.problem for i in (builtin_registry().integrity, builtin_drugs().integrity)
            if i is not None and not i.ok]


def load_reference(reference: str | os.PathLike[str] | Registry | None = None, *,
                   as_of: dt.date | None = None, include: Iterable[str] = (),
                   extra_references: Sequence[str | os.PathLike[str] | Registry] = (),
                   jurisdictions: Sequence[str] = DEFAULT_JURISDICTIONS,
                   prepare: Callable[[Standardized], Any] | None = None) -> Registry:
    """The list to screen against: ``reference`` (a Registry or a file) or the built-in list of
    ``jurisdictions`` as of ``as_of`` (with ``include``: "proposed", "watch"), plus
    ``extra_references`` on top (each recorded as an overlay with its own hash).

    ``as_of`` and ``jurisdictions`` apply to the built-in list only (a reference file is taken as
    it is). ``prepare``: see `load_reference_file`.
    """
    if isinstance(reference, Registry):
        reg = reference
    elif reference is not None:
        reg = load_reference_file(reference, prepare=prepare)
    else:
        reg = builtin_registry().filter(as_of=as_of, include=("scheduled", *include),
                                        jurisdictions=jurisdictions)
    for extra in extra_references:
        reg = reg.merged(extra if isinstance(extra, Registry)
                         else load_reference_file(extra, confidential=True, prepare=prepare))
    return reg


PARALLEL_ROWS = 10_000
"""From this many rows on, a reference list's structures are read and standardized on every
core (100,000 rows: ~20 s of parsing and standardizing on one)."""

_Item = tuple[str, str | None, str]
_Prepared = tuple[Any, str, str, str]


def _prepare(items: Sequence[_Item], prepare: Callable[[Standardized], Any] | None = None
             ) -> Iterator[_Prepared]:
    """(parent, problem, SMILES, InChIKey) for (SMILES, molfile, given InChIKey) items, in
    order; a long list on worker processes (each returns its chunk, parents as bytes, with
    what ``prepare`` made of each organic one)."""
    jobs = os.cpu_count() or 1
    if len(items) < PARALLEL_ROWS or jobs < 2:
        return _prepare_rows(items)
    step = -(-len(items) // (8 * jobs))
    chunks = ((items[lo:lo + step], prepare) for lo in range(0, len(items), step))
    return (row for part in ordered_map(_prepared_list, chunks, jobs) for row in part)


def _prepared_list(task: tuple[Sequence[_Item], Callable[[Standardized], Any] | None]
                   ) -> list[_Prepared]:
    """A worker's chunk; each parent stored as bytes (`StoredParent`): turned back into an RDKit
    molecule only where it is used."""
    items, prepare = task
    return [(StoredParent.of(parent, prepare) if parent is not None else None, *rest)
            for parent, *rest in _prepare_rows(items)]


def _prepare_rows(items: Iterable[_Item]) -> Iterator[_Prepared]:
    """The per-row work of a reference list, one by one. No InChIKey is computed unless one is
    given to check (it costs more than the parse); the SMILES is the one given (a molfile's is
    made)."""
    for smiles, molblock, given_key in items:
        mol, problem = parse_molblock(molblock) if molblock is not None else parse_smiles(smiles)
        if mol is None:
            yield None, problem, "", ""
            continue
        try:
            parent = standardize(mol)
        except StandardizeError as exc:
            yield None, str(exc), "", ""
            continue
        key = ""
        if given_key:
            with quiet_rdkit():
                key = Chem.MolToInchiKey(mol)
        yield parent, "", smiles or Chem.MolToSmiles(mol), key


def load_reference_file(path: str | os.PathLike[str], list_name: str | None = None, *,
                        confidential: bool = False,
                        prepare: Callable[[Standardized], Any] | None = None) -> Registry:
    """Load a user reference list: CSV/TSV with name and smiles columns, SDF, or .smi.

    Every row must parse; a bad row raises ReferenceFileError naming the line. Each substance
    is recorded as scheduled on the list called ``list_name`` (default: the file name).

    ``confidential`` (the lists of ``--extra-reference``): each record keeps its structure and
    its id only (the ``id`` column, else ``FILE:LINE``); names, synonyms and CAS numbers are
    dropped on loading, so no output can show them (a query may still name the record:
    ``Substance.aliases``), and the screen names such a record only where it raises a flag
    (``Substance.confidential``).

    ``prepare`` (a module-level function: it goes to the workers by name) is applied to each
    organic parent of a long list (from `PARALLEL_ROWS` rows) where it is read, and kept as the
    parent's ``extra`` (`StoredParent`): the screen's per-substance work is done there once,
    not after the list comes back (`precursor_screen.screen.prepare_parent`).
    """
    p = str(path)
    if not os.path.exists(p):
        raise ReferenceFileError(f"{p}: no such reference file")
    name = list_name or os.path.basename(p)
    try:
        fmt = input_format(p)
    except InputError as exc:
        raise ReferenceFileError(str(exc)) from None
    if fmt in ("csv", "tsv"):
        entries = _reference_table(p, "\t" if fmt == "tsv" else ",")
    elif fmt == "sdf":
        entries = _reference_sdf(p)
    elif fmt == "smi":
        entries = _reference_smi(p)
    else:
        raise ReferenceFileError(f"{p}: reference lists are CSV, TSV, SDF or .smi, not {fmt}")
    prepared = _prepare([(extra.get("smiles", ""), extra.get("molblock"),
                          extra.get("inchikey", "")) for *_, extra in entries], prepare)
    substances = []
    ids: set[str] = set()
    base = os.path.basename(p)
    for (lineno, ident, sname, extra), (parent, problem, text, key) in zip(entries, prepared):
        where = f"{base}:{lineno}"
        if parent is None:
            raise ReferenceFileError(f"{where}: {problem}")
        given_key = extra.get("inchikey", "")
        if given_key and given_key != key:  # computed only to check a given one
            raise ReferenceFileError(f"{where}: InChIKey {given_key} does not match the "
                                     f"structure (computed {key})")
        cas = split_values(extra["cas"]) if extra.get("cas") else ()
        for c in cas:
            if not cas_is_valid(c):
                raise ReferenceFileError(f"{where}: CAS {c!r} has a wrong format or check digit")
        ident = ident or f"{name}:{lineno}"
        if ident in ids:
            raise ReferenceFileError(f"{where}: id {ident!r} used twice")
        ids.add(ident)
        exclusions, excluded = [], []
        for item in split_values(extra["exclusions"]) if extra.get("exclusions") else ():
            xname, _, xsmi = item.partition("=")
            xmol, xproblem = parse_smiles(xsmi)
            if not xname or xmol is None:
                raise ReferenceFileError(f"{where}: exclusion {item!r} must be name=SMILES ({xproblem})")
            exclusions.append((xname.strip(), xsmi.strip()))
            excluded.append((xname.strip(), standardize(xmol).smiles))
        category = extra.get("eu_category", "").strip().upper()
        if category and category not in EU_CATEGORIES:
            raise ReferenceFileError(f"{where}: EU category {category!r} unknown")
        synonyms = split_values(extra["synonyms"]) if extra.get("synonyms") else ()
        aliases: tuple[str, ...] = ()
        if confidential:  # a query may still name it (find), no output ever does
            aliases = tuple(x for x in (sname, *synonyms, *cas) if x)
            sname, synonyms, cas = ident, (), ()
            exclusions = [(f"excluded stereoisomer {k + 1}", x) for k, (_, x) in enumerate(exclusions)]
            excluded = [(f"excluded stereoisomer {k + 1}", x) for k, (_, x) in enumerate(excluded)]
        substances.append(Substance(
            id=ident, name=sname or ident, status="scheduled", cas=cas, eu_category=category,
            un_table=extra.get("un_table", "").strip().upper(), exclusions=tuple(exclusions),
            excluded_keys=tuple(excluded),
            synonyms=synonyms, eu_act=f"reference list {name}",
            smiles=text, inchikey=key, list_name=name, line=lineno,
            inorganic=parent.inorganic, parent=parent, confidential=confidential,
            aliases=aliases))
    if not substances:
        raise ReferenceFileError(f"{p}: no substances in reference file")
    return Registry(tuple(substances), name)


_Entry = tuple[int, str, str, dict[str, Any]]
"""A reference row: line, id, name, and its other fields (``smiles`` or ``molblock`` among
them), its structure not yet parsed."""


def _text_lines(path: str) -> Iterator[Line]:
    """The lines of a reference file (gzip, byte-order marks, UTF-16 and CR line ends as for
    inputs); a line too long or bytes that are not text are errors naming the line."""
    with input_lines(path) as lines:
        for line in lines:
            if line.problem:
                raise ReferenceFileError(f"{os.path.basename(path)}:{line.number}: {line.problem}")
            if line.undecodable:
                raise ReferenceFileError(f"{os.path.basename(path)}:{line.number}: bytes that "
                                         "are not UTF-8 text")
            yield line


def _reference_table(path: str, delimiter: str) -> list[_Entry]:
    records = CsvRecords(_text_lines(path), delimiter)
    found = iter(records)
    first = next(found, None)
    if first is None or not first.fields:
        raise ReferenceFileError(f"{path}: empty reference file")
    header = first.fields
    cols = {h.strip().lstrip("\ufeff").lower(): i for i, h in enumerate(header)}
    if "smiles" not in cols:
        raise ReferenceFileError(f"{os.path.basename(path)}:1: reference CSV needs a 'smiles' "
                                 f"column (has: {', '.join(header)})")
    if "name" not in cols:
        raise ReferenceFileError(f"{os.path.basename(path)}:1: reference CSV needs a 'name' "
                                 f"column (has: {', '.join(header)})")
    records.width = len(header)
    # (field, column) of the fields a reference row may have; a missing column reads as ""
    wanted = [(k, cols.get(k, sys.maxsize)) for k in ("cas", "inchikey", "synonyms", "eu_category",
                                                      "un_table", "exclusions", "smiles", "id",
                                                      "name")]
    out: list[_Entry] = []
    for rec in found:
        lineno, fields = rec.line, rec.fields
        if rec.problem:
            raise ReferenceFileError(f"{os.path.basename(path)}:{lineno}: {rec.problem}")
        if not any(x.strip() for x in fields):
            continue
        n = len(fields)
        extra = {k: fields[i].strip() if i < n else "" for k, i in wanted}
        if not extra["smiles"] and extra["eu_category"] == "4":
            continue  # a Category 4 medicinal-product row (as `list --format csv` writes)
        ident = extra.pop("id")
        out.append((lineno, ident, extra.pop("name"), extra))
    return out


def _reference_sdf(path: str) -> list[_Entry]:
    out: list[_Entry] = []
    for rec in read_records(path, fmt="sdf"):
        if rec.error:
            raise ReferenceFileError(f"{os.path.basename(path)}: record {rec.row + 1}: "
                                     f"{rec.error}")
        out.append((rec.row + 1, "", rec.id, {"molblock": rec.molblock or ""}))
    return out


def _reference_smi(path: str) -> list[_Entry]:
    out: list[_Entry] = []
    for line in _text_lines(path):
        parts = line.text.strip().split(None, 1)
        if not parts or parts[0].startswith("#"):
            continue
        name = parts[1].strip() if len(parts) > 1 else ""
        out.append((line.number, "", name, {"smiles": parts[0]}))
    return out
