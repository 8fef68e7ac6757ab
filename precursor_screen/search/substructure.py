"""Substructure relations over a set of molecules: a pattern-fingerprint screen, then RDKit.

``SubstructureIndex`` answers three questions about its rows, each exactly as a full scan with
RDKit's ``HasSubstructMatch(query, useChirality=False)`` would (stereo is ignored: the annex lists
substances "and their stereoisomers", and a rule written for one enantiomer must catch the
other):

* ``containing(query)``: rows that contain the query (the query is a substructure of the row);
* ``contained_in(query)``: rows that are substructures of the query;
* ``smarts(pattern)``: rows matching a SMARTS pattern.

The screen. RDKit's pattern fingerprint (``Chem.PatternFingerprint``, the one SubstructLibrary
uses) sets in a molecule every bit its substructures set, so a row can contain the query only if
``row_bits & query_bits == query_bits``; it is computed the same way for SMARTS query molecules,
which is what SubstructLibrary does. A row also needs at least as many atoms as the query (the
match maps query atoms one-to-one onto row atoms). Only the rows that pass are matched.

Storage. Below ``BIT_SLICE_ROWS`` rows (a reference list) the pattern bits are packed rows and
the screen is one vectorised ``(rows & q) == q`` over all of them: microseconds for 70 rows. From
``BIT_SLICE_ROWS`` rows on (a library of millions) they are kept *bit-sliced* instead, one packed
row bitmap per fingerprint bit (``fp_size`` x ``n/64`` uint64 words: the same 256 bytes per
molecule, never both layouts). A ``containing`` query then ANDs only the bitmaps of its own bits,
sparsest first, so the work grows with the query's bits and not with the fingerprint width; once
few rows remain only their words are touched.

Matching. Every row's canonical SMILES is stored (one byte array with offsets, ~40 bytes a
molecule). Small indexes (fewer than ``BIT_SLICE_ROWS`` rows, or ``keep_molecules=True``) also
keep the RDKit molecules and match survivors in a loop: ~8 us a match, and nothing to parse.
Large ones match the survivors with an RDKit SubstructLibrary over a trusted-SMILES holder,
restricted to them with ``SetSearchOrder``: the C++ loop SubstructLibrary itself runs, on
``threads`` threads, with no Python per row. A trusted SMILES is re-read without sanitization:
inside SubstructLibrary that costs what unpickling an RDKit binary molecule does (~27 us a
molecule with the match, measured on a benzene search) in 40 bytes instead of 250. The tests
hold every path to a scan over sanitized molecules, ring-size and ring-count SMARTS included.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rdkit
from rdkit import Chem
from rdkit.Chem import rdSubstructLibrary

from precursor_screen.chem.fingerprint import Recipe, _bitwise_count, get_recipe
from precursor_screen.errors import PrecursorScreenError
from precursor_screen.search.tanimoto import (
    IndexFileError,
    _read_array,
    _read_manifest,
    _write_dir,
)
from precursor_screen.version import __version__

__all__ = ["SubstructureIndex", "QueryError", "atom_difference"]

FORMAT = "precursor-screen/substructure-index"
FORMAT_VERSION = 1
BIT_SLICE_ROWS = 8192  # from this many rows on, the screen keeps bit slices instead of rows
_SLICE_ROWS = 16384    # rows transposed at a time into bit slices (5 x fp_size/8 bytes each)
_GATHER_BELOW = 8      # switch to touching only surviving words when < 1/8 of them are left


class QueryError(PrecursorScreenError, ValueError):
    """A query the index cannot use: unparsable SMARTS or SMILES, or no molecule."""


def atom_difference(big: Chem.Mol, small: Chem.Mol) -> int:
    """Return how many heavy atoms ``big`` has more than ``small`` (negative if it has fewer).

    For a candidate containing a listed substance: how much was added to it.

    >>> atom_difference(Chem.MolFromSmiles("CCC(=O)Cc1ccccc1"), Chem.MolFromSmiles("CC(=O)Cc1ccccc1"))
    1
    """
    return big.GetNumHeavyAtoms() - small.GetNumHeavyAtoms()


class SubstructureIndex:
    """Exact substructure searches over a fixed list of molecules (rows numbered from 0).

    ``molecules`` are RDKit molecules or SMILES (a SMILES RDKit cannot read is refused, naming
    its row: rows are never dropped). ``recipe`` is the pattern-fingerprint recipe (default:
    the shipped ``pattern``). ``keep_molecules`` keeps the RDKit molecules in memory (default:
    only below ``BIT_SLICE_ROWS`` rows; about 1-2 kB a molecule, matching 3x faster);
    otherwise survivors are matched by RDKit on ``threads`` threads.

    >>> index = SubstructureIndex(["CC(=O)Cc1ccccc1", "CC(=O)Cc1ccc2OCOc2c1", "CCO", "c1ccccc1"],
    ...                           ids=["P2P", "PMK", "ethanol", "benzene"])
    >>> index.containing(Chem.MolFromSmiles("c1ccccc1"))
    [0, 1, 3]
    >>> index.contained_in(Chem.MolFromSmiles("CCC(=O)Cc1ccccc1"))
    [0, 3]
    >>> [str(index.ids[row]) for row in index.smarts("[CH3]C(=O)[CH2]a")]
    ['P2P', 'PMK']
    """

    def __init__(self, molecules: Iterable[Chem.Mol | str], ids: Sequence[Any] | None = None, *,
                 recipe: Recipe | None = None, keep_molecules: bool | None = None,
                 threads: int = 1, packed: np.ndarray | None = None,
                 smiles: Sequence[str] | None = None):
        """``packed`` (the recipe's fingerprints of ``molecules``) and ``smiles`` (their
        canonical SMILES) may be given when already computed (a large reference list prepares
        them on several processes)."""
        recipe = recipe if recipe is not None else get_recipe("pattern")
        if recipe.kind != "pattern":
            raise ValueError(f"recipe {recipe.name!r} is {recipe.kind!r}; substructure screening "
                             "needs a pattern fingerprint")
        mols = [_as_mol(m, row) for row, m in enumerate(molecules)]
        if packed is None:
            packed, _ = recipe.packed(mols)
        texts = list(smiles) if smiles is not None else [Chem.MolToSmiles(m) for m in mols]
        natoms = np.array([m.GetNumAtoms() for m in mols], dtype=np.int32)
        self._from_parts(packed, natoms, texts, ids, recipe, threads, keep_molecules, mols)

    @classmethod
    def from_fingerprints(cls, packed: np.ndarray, natoms: Sequence[int] | np.ndarray,
                          smiles: Sequence[str], ids: Sequence[Any] | None = None, *,
                          recipe: Recipe | None = None, keep_molecules: bool | None = None,
                          threads: int = 1) -> "SubstructureIndex":
        """The index of molecules already fingerprinted: ``packed`` their pattern fingerprints
        (``recipe.packed`` rows), ``natoms`` their atom counts and ``smiles`` their canonical
        SMILES. Equal to the index built from the molecules; a caller streaming millions of
        molecules (the library build) fingerprints each as it goes and never holds them all
        (an RDKit molecule parsed from SMILES takes ~30 kB; its two fingerprints 512 bytes).

        >>> mols = [Chem.MolFromSmiles(s) for s in ("CC(=O)Cc1ccccc1", "CCO")]
        >>> index = SubstructureIndex.from_fingerprints(
        ...     get_recipe("pattern").packed(mols)[0], [m.GetNumAtoms() for m in mols],
        ...     [Chem.MolToSmiles(m) for m in mols])
        >>> index.smarts("[OX2H]"), index.smiles(0)
        ([1], 'CC(=O)Cc1ccccc1')
        """
        recipe = recipe if recipe is not None else get_recipe("pattern")
        packed = np.asarray(packed, dtype=np.uint8)
        natoms = np.asarray(natoms, dtype=np.int32)
        if packed.ndim != 2 or packed.shape[1] != recipe.code_size or not (
                len(packed) == len(natoms) == len(smiles)):
            raise ValueError(f"{len(packed)} fingerprints of {recipe.code_size} bytes, "
                             f"{len(natoms)} atom counts and {len(smiles)} SMILES must agree "
                             f"(got shape {packed.shape})")
        index = cls.__new__(cls)
        index._from_parts(packed, natoms, smiles, ids, recipe, threads, keep_molecules)
        return index

    def _from_parts(self, packed: np.ndarray, natoms: np.ndarray, smiles: Sequence[str],
                    ids: Sequence[Any] | np.ndarray | None, recipe: Recipe, threads: int,
                    keep_molecules: bool | None, mols: list[Chem.Mol] | None = None) -> None:
        if recipe.kind != "pattern":
            raise ValueError(f"recipe {recipe.name!r} is {recipe.kind!r}; substructure screening "
                             "needs a pattern fingerprint")
        offsets = np.zeros(len(smiles) + 1, dtype=np.int64)
        np.cumsum([len(s) for s in smiles], out=offsets[1:])
        try:
            blob = np.frombuffer("".join(smiles).encode("ascii"), dtype=np.uint8)
        except UnicodeEncodeError:
            raise ValueError("SMILES must be ASCII (RDKit writes them so)") from None
        if len(natoms) >= BIT_SLICE_ROWS:
            screen, layout = _bit_slices(packed), "slices"
        else:
            screen, layout = packed.view("<u8").astype(np.uint64), "rows"
        self._setup(layout, screen, natoms, blob, offsets, ids, recipe, threads, keep_molecules,
                    mols)

    def _setup(self, layout: str, screen: np.ndarray, natoms: np.ndarray, blob: np.ndarray,
               offsets: np.ndarray, ids: Sequence[Any] | np.ndarray | None, recipe: Recipe,
               threads: int, keep_molecules: bool | None,
               mols: list[Chem.Mol] | None = None) -> None:
        self.layout = layout
        # "rows": (n, fp_size/64) uint64, one packed fingerprint per row.
        # "slices": (fp_size, ceil(n/64)) uint64; row r is bit r%64 of word r//64.
        self._screen_bits = screen
        self._natoms = natoms
        self._blob = blob                          # canonical SMILES, row r: offsets[r]:offsets[r+1]
        self._offsets = offsets
        self._column_counts = (_bitwise_count(screen).sum(axis=1) if layout == "slices"
                               else None)
        self.ids: np.ndarray | None = None if ids is None else np.asarray(ids)
        if self.ids is not None and len(self.ids) != len(natoms):
            raise ValueError(f"{len(self.ids)} ids for {len(natoms)} molecules")
        self.recipe = recipe
        self.threads = max(1, int(threads))
        keep = keep_molecules if keep_molecules is not None else len(natoms) < BIT_SLICE_ROWS
        self._mols: list[Chem.Mol] | None = None
        self._library: Any = None
        if keep:
            self._mols = mols if mols is not None else [Chem.MolFromSmiles(s) for s in self._texts()]
        else:
            self._library = self._build_library()
        self._library_lock = threading.Lock()   # the search order is state on the library

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the lock (a worker process gets its own) and with the SubstructLibrary
        rebuilt from the SMILES on arrival."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_library_lock", "_library")}
        state["_had_library"] = self._library is not None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        had = state.pop("_had_library")
        self.__dict__.update(state)
        self._library = self._build_library() if had else None
        self._library_lock = threading.Lock()

    def _build_library(self) -> Any:
        """An RDKit SubstructLibrary over the stored canonical SMILES (parsed as trusted)."""
        holder = rdSubstructLibrary.CachedTrustedSmilesMolHolder()
        for text in self._texts():
            holder.AddSmiles(text)
        return rdSubstructLibrary.SubstructLibrary(holder)

    def _texts(self) -> list[str]:
        text = self._blob.tobytes().decode("ascii")
        starts = self._offsets.tolist()
        return [text[lo:hi] for lo, hi in zip(starts[:-1], starts[1:])]

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self._natoms)

    def __repr__(self) -> str:
        return f"SubstructureIndex({len(self)} molecules, recipe={self.recipe.name!r})"

    def smiles(self, row: int) -> str:
        """Return the canonical SMILES stored for a row."""
        return self._blob[self._offsets[row]:self._offsets[row + 1]].tobytes().decode("ascii")

    def mol(self, row: int) -> Chem.Mol:
        """Return the (sanitized) molecule of a row: a copy, or parsed from its SMILES."""
        if self._mols is not None:
            return Chem.Mol(self._mols[row])
        return Chem.MolFromSmiles(self.smiles(row))

    def containing(self, query: Chem.Mol) -> list[int]:
        """Return the rows that contain ``query`` as a substructure, ascending."""
        query = _check_query(query)
        return self._match_rows(query, self.screen_containing(query))

    def smarts(self, pattern: str) -> list[int]:
        """Return the rows matching a SMARTS pattern, ascending.

        >>> SubstructureIndex(["CCO", "CC=O"]).smarts("[CX3]=O")
        [1]
        """
        query = Chem.MolFromSmarts(pattern) if isinstance(pattern, str) else None
        if query is None:
            raise QueryError(f"unparsable SMARTS: {pattern!r}")
        return self.containing(query)

    def contained_in(self, query: Chem.Mol) -> list[int]:
        """Return the rows that are substructures of ``query`` (the row is the pattern), ascending."""
        query = _check_query(query)
        return self._match_reversed(query, self.screen_contained_in(query))

    def pattern_words(self, mol: Chem.Mol, smiles: str | None = None) -> np.ndarray:
        """The pattern fingerprint of ``mol`` as uint64 words, to reuse across screens.

        ``smiles``, when the caller has it, must be ``Chem.MolToSmiles(mol)`` (a standardized
        parent's ``smiles``): the fingerprint is then computed from it without RDKit
        (`precursor_screen.chem.fastpattern`, the same bits ~8x faster)."""
        if smiles is None:
            return self._query_words(mol)
        raw = self.recipe.packer()(mol, smiles)
        return np.frombuffer(raw, dtype=np.uint8).view("<u8").astype(np.uint64)

    def relations(self, query: Chem.Mol, words: np.ndarray | None = None
                  ) -> tuple[list[int], list[int]]:
        """Return ``(containing(query), contained_in(query))``, fingerprinting the query once.

        >>> SubstructureIndex(["CC(=O)Cc1ccccc1", "c1ccccc1", "CCC(=O)Cc1ccccc1"]).relations(
        ...     Chem.MolFromSmiles("CC(=O)Cc1ccccc1"))
        ([0, 2], [0, 1])
        """
        query = _check_query(query)
        words = self._query_words(query) if words is None else words
        return (self._match_rows(query, self.screen_containing(query, words)),
                self._match_reversed(query, self.screen_contained_in(query, words)))

    # ------------------------------------------------------------------ screens

    def screen_containing(self, query: Chem.Mol, words: np.ndarray | None = None) -> np.ndarray:
        """Rows that pass the screen for ``containing``: a superset of the answer (int64)."""
        q = self._query_words(query) if words is None else words
        big_enough = self._natoms >= query.GetNumAtoms()
        if self.layout == "rows":
            return np.flatnonzero(((self._screen_bits & q) == q).all(axis=1) & big_enough)
        qbits = _on_bits(q)
        order = np.argsort(self._column_counts[qbits], kind="stable")   # sparsest first
        return self._screen(qbits[order], invert=False, start=self._pack(big_enough))

    def screen_contained_in(self, query: Chem.Mol, words: np.ndarray | None = None) -> np.ndarray:
        """Rows that pass the screen for ``contained_in``: a superset of the answer (int64)."""
        q = self._query_words(query) if words is None else words
        small_enough = self._natoms <= query.GetNumAtoms()
        if self.layout == "rows":
            return np.flatnonzero(((self._screen_bits & ~q) == 0).all(axis=1) & small_enough)
        others = _on_bits(~q)
        others = others[np.argsort(-self._column_counts[others], kind="stable")]  # densest first
        return self._screen(others, invert=True, start=self._pack(small_enough))

    def _query_words(self, query: Chem.Mol) -> np.ndarray:
        """The query's pattern fingerprint as uint64 words (bit i: bit i%64 of word i//64)."""
        packed, _ = self.recipe.packed([query])
        return packed[0].view("<u8").astype(np.uint64)

    def _pack(self, mask: np.ndarray) -> np.ndarray:
        return _pack_rows(mask, self._screen_bits.shape[1])

    def _screen(self, columns: np.ndarray, *, invert: bool, start: np.ndarray) -> np.ndarray:
        """AND (or AND-NOT) the given bit slices into the ``start`` row bitmap; return its rows.

        Columns go in blocks (8, 16, ... 128 at a time: one numpy reduction each), so the first,
        most selective ones can shrink the set of words the later blocks touch.
        """
        words = self._screen_bits.shape[1]
        acc = start
        where: np.ndarray | None = None         # None: all words; else the word numbers kept
        if not len(self):
            return np.empty(0, dtype=np.int64)
        done, size = 0, 8
        while done < len(columns):
            block = columns[done:done + size]
            done, size = done + len(block), min(2 * size, 128)
            bits = self._screen_bits[block] if where is None else self._screen_bits[np.ix_(block, where)]
            if invert:
                acc &= ~np.bitwise_or.reduce(bits, axis=0)
            else:
                acc &= np.bitwise_and.reduce(bits, axis=0)
            alive = np.flatnonzero(acc)
            if not len(alive):
                return np.empty(0, dtype=np.int64)
            if len(alive) * _GATHER_BELOW < len(acc):
                where = alive if where is None else where[alive]
                acc = acc[alive]
        if where is None:
            where = np.arange(words)
        bits = np.unpackbits(acc.astype("<u8").view(np.uint8).reshape(-1, 8), axis=1,
                             bitorder="little")
        word, bit = np.nonzero(bits)
        return where[word].astype(np.int64) * 64 + bit

    def _match_rows(self, query: Chem.Mol, rows: np.ndarray) -> list[int]:
        """The rows among ``rows`` whose molecule has ``query`` as a substructure, ascending."""
        if not len(rows):
            return []
        if self._mols is not None:
            mols = self._mols
            return [r for r in rows.tolist() if mols[r].HasSubstructMatch(query, useChirality=False)]
        params = Chem.SubstructMatchParameters()
        params.useChirality = False
        with self._library_lock:
            self._library.SetSearchOrder(rows.tolist())
            found = self._library.GetMatches(query, params, numThreads=self.threads,
                                             maxResults=-1)
        return sorted(int(r) for r in found)

    def _match_reversed(self, query: Chem.Mol, rows: np.ndarray) -> list[int]:
        """The rows among ``rows`` that are substructures of ``query``, ascending.

        The row is the pattern here, which SubstructLibrary cannot do: rows are matched in turn
        (parsed from trusted SMILES when the molecules are not kept). The screen leaves few.
        """
        if self._mols is not None:
            mols = self._mols
            return [r for r in rows.tolist() if query.HasSubstructMatch(mols[r], useChirality=False)]
        library = self._library
        return [r for r in rows.tolist()
                if query.HasSubstructMatch(library.GetMol(r), useChirality=False)]

    # ------------------------------------------------------------------ memory and files

    @property
    def nbytes(self) -> int:
        """Memory held in numpy: screen bits, atom counts, SMILES and offsets (ids not counted).

        RDKit's holder keeps a second copy of the SMILES (a std::string each) outside numpy.
        """
        return int(self._screen_bits.nbytes + self._natoms.nbytes + self._blob.nbytes
                   + self._offsets.nbytes)

    def manifest(self) -> dict[str, Any]:
        """Return what :meth:`save` writes to ``manifest.json``."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "count": len(self),
                "recipe": self.recipe.manifest(), "has_ids": self.ids is not None,
                "screen": self.layout,
                "layout": "rows.npy: pattern fingerprints as uint64 words, one row per molecule; "
                          "or slices.npy: one uint64 row bitmap per pattern bit (row r = bit "
                          "r%64 of word r//64); molecules.npy: canonical SMILES "
                          "concatenated (ASCII), row r = bytes offsets[r]:offsets[r+1]",
                "tool_version": __version__, "rdkit_version": rdkit.__version__,
                "numpy_version": np.__version__}

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the index to a directory (replaced as a whole); see :meth:`manifest`."""
        arrays = {self.layout: self._screen_bits, "natoms": self._natoms, "molecules": self._blob,
                  "offsets": self._offsets}
        if self.ids is not None:
            arrays["ids"] = self.ids
        return _write_dir(Path(directory), arrays, self.manifest())

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, mmap: bool = False,
             keep_molecules: bool | None = None, threads: int = 1) -> "SubstructureIndex":
        """Read an index written by :meth:`save`; ``mmap=True`` maps the large arrays."""
        path = Path(directory)
        manifest = _read_manifest(path, FORMAT, FORMAT_VERSION)
        mode = "r" if mmap else None
        recipe = Recipe.from_manifest(manifest["recipe"])
        layout, n = manifest.get("screen"), manifest.get("count")
        shapes = {"rows": (n, recipe.fp_size // 64), "slices": (recipe.fp_size, (n + 63) // 64)}
        if layout not in shapes:
            raise IndexFileError(f"{path / 'manifest.json'}: unknown screen layout {layout!r}")
        screen, blob = _read_array(path, layout, mode), _read_array(path, "molecules", mode)
        natoms, offsets = _read_array(path, "natoms"), _read_array(path, "offsets")
        ids = _read_array(path, "ids") if manifest.get("has_ids") else None
        if (screen.shape != shapes[layout] or natoms.shape != (n,)
                or offsets.shape != (n + 1,) or offsets[-1] != len(blob)):
            raise IndexFileError(f"{path}: arrays do not match manifest.json ({n} molecules)")
        index = cls.__new__(cls)
        index._setup(layout, screen, natoms, blob, offsets, ids, recipe, threads, keep_molecules)
        return index


# ---------------------------------------------------------------------- helpers


def _as_mol(m: Chem.Mol | str, row: int) -> Chem.Mol:
    if isinstance(m, str):
        mol = Chem.MolFromSmiles(m)
        if mol is None:
            raise ValueError(f"row {row}: unparsable SMILES {m!r}")
        return mol
    if m is None:
        raise ValueError(f"row {row}: no molecule (None)")
    return m


def _check_query(query: Chem.Mol) -> Chem.Mol:
    if not isinstance(query, Chem.Mol):
        raise QueryError(f"query must be an RDKit molecule, not {type(query).__name__}")
    return query


def _on_bits(words: np.ndarray) -> np.ndarray:
    """Bit numbers set in a uint64 word array (bit i: bit i%64 of word i//64)."""
    return np.flatnonzero(np.unpackbits(words.astype("<u8").view(np.uint8), bitorder="little"))


def _pack_rows(mask: np.ndarray, words: int) -> np.ndarray:
    """A boolean per row -> uint64 row bitmap of ``words`` words (row r = bit r%64 of word r//64)."""
    packed = np.zeros(words * 8, dtype=np.uint8)
    bits = np.packbits(mask, bitorder="little")
    packed[:len(bits)] = bits
    return packed.view("<u8").astype(np.uint64)


def _bit_slices(packed: np.ndarray) -> np.ndarray:
    """Transpose packed rows (n, fp_size/8) into bit slices (fp_size, ceil(n/64)) uint64.

    Rows are taken 8 at a time: for each fingerprint byte, the 8 rows' bytes form an 8x8 bit
    matrix (one uint64) that three masked shifts transpose (the classic 8x8 bit-matrix
    transpose), so byte *j* of the result holds bit *j* of the 8 rows. No array of one byte
    per bit is made (the former unpack/transpose/pack made 2,048 bytes a molecule).

    >>> rows = np.zeros((70, 256), dtype=np.uint8); rows[3, 0] = 0b100; rows[69, 255] = 0x80
    >>> s = _bit_slices(rows); s.shape, int(s[2, 0]) == 1 << 3, int(s[2047, 1]) == 1 << 5
    ((2048, 2), True, True)
    >>> int(np.count_nonzero(s))
    2
    """
    n, code_size = packed.shape
    words = (n + 63) // 64
    out = np.empty((code_size * 8, words), dtype=np.uint64)
    for start in range(0, n, _SLICE_ROWS):       # _SLICE_ROWS is a multiple of 64
        part = packed[start:start + _SLICE_ROWS]
        w = (len(part) + 63) // 64
        rows = np.zeros((w * 64, code_size), dtype=np.uint8)
        rows[:len(part)] = part
        # x[c, g]: byte c of rows 8g..8g+7 as one little-endian uint64 (row 8g+r in byte r)
        x = np.ascontiguousarray(rows.reshape(w * 8, 8, code_size).transpose(2, 0, 1))
        x = x.view("<u8").reshape(code_size, w * 8).astype(np.uint64)
        for shift, mask in _TRANSPOSE_8X8:
            t = (x ^ (x >> shift)) & mask
            x ^= t ^ (t << shift)
        # now byte j of x[c, g] holds bit j of byte c of the 8 rows (row r in bit r)
        y = x.astype("<u8").view(np.uint8).reshape(code_size, w * 8, 8).transpose(0, 2, 1)
        y = np.ascontiguousarray(y).reshape(code_size * 8, w * 8).view("<u8")
        out[:, start // 64:start // 64 + w] = y
    return out


_TRANSPOSE_8X8 = tuple((np.uint64(s), np.uint64(m)) for s, m in (
    (7, 0x00AA00AA00AA00AA), (14, 0x0000CCCC0000CCCC), (28, 0x00000000F0F0F0F0)))
"""(shift, mask) steps transposing an 8x8 bit matrix held in a uint64 (byte = row, bit = column)."""
