"""Fingerprint recipes from ``fingerprints/recipes.toml`` -> packed uint8 bits and popcounts.

A recipe is data: a name, an RDKit fingerprint kind and RDKit's own keyword arguments, so the
file reads like the RDKit call it stands for, and an index can record exactly how it was made
(:meth:`Recipe.manifest`).

Packed layout, shared with faiss's binary codes and ``np.packbits(bits, bitorder="little")``: bit
*i* of the fingerprint is bit ``i % 8`` (least significant first) of byte ``i // 8``. It is also
the byte string RDKit's ``DataStructs.BitVectToBinaryText`` gives, which is why packing costs one
``bytes.join``: measured on 5,000 NCI molecules (morgan2, 2048 bits, one core) that path packs
about 25,000 mol/s, against 19,000 for ``GetFingerprintAsNumPy`` + ``np.packbits`` and 10,000 for
``ConvertToNumpyArray``; generating the fingerprints is most of the cost.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import rdkit
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from precursor_screen.chem.fastpattern import pattern_bytes
from precursor_screen.errors import PrecursorScreenError, ShippedDataError
from precursor_screen.io.readers import read_toml

__all__ = ["Recipe", "UnknownRecipeError", "load_recipes", "get_recipe", "recipes_path",
           "pack_bitvects", "popcounts", "BIT_ORDER"]

BIT_ORDER = "little"
"""Bit *i* of a fingerprint is bit ``i % 8`` of byte ``i // 8`` (faiss's binary code layout)."""

_GENERATORS: dict[str, Callable[..., Any]] = {
    "morgan": rdFingerprintGenerator.GetMorganGenerator,
    "atompair": rdFingerprintGenerator.GetAtomPairGenerator,
    "rdkit": rdFingerprintGenerator.GetRDKitFPGenerator,
    "torsion": rdFingerprintGenerator.GetTopologicalTorsionGenerator,
}
# Named invariant generators: TOML holds a name where RDKit wants an object.
_ATOM_INVARIANTS: dict[str, Callable[[], Any]] = {
    "feature": rdFingerprintGenerator.GetMorganFeatureAtomInvGen,
}
_PATTERN_KEYS = frozenset({"fpSize", "tautomerFingerprints"})
KINDS = tuple(sorted(_GENERATORS)) + ("pattern",)
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
_PACK_CHUNK = 8192  # molecules per GetFingerprints call: bounds the ExplicitBitVects held at once


class UnknownRecipeError(PrecursorScreenError, LookupError):
    """A recipe name that is not in the recipe file; the message lists the names that are."""


@dataclass(frozen=True, slots=True)
class Recipe:
    """A named fingerprint: RDKit kind plus RDKit keyword arguments, as in ``recipes.toml``.

    ``params`` is a sorted tuple of ``(keyword, value)`` pairs so recipes hash, compare and cross
    process boundaries unchanged; :meth:`manifest` gives them back as a dict. The RDKit
    generator behind a recipe is built once per process and shared.
    """

    name: str
    kind: str
    params: tuple[tuple[str, Any], ...]

    @classmethod
    def from_params(cls, name: str, kind: str, params: Mapping[str, Any]) -> "Recipe":
        """Return a checked recipe; ValueError names what is wrong (unknown kind or keyword)."""
        recipe = cls(name, kind, tuple(sorted(params.items())))
        recipe._check()
        return recipe

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> "Recipe":
        """Rebuild a recipe from :meth:`manifest` output (an index file, a Dask worker)."""
        return cls.from_params(manifest["name"], manifest["kind"], manifest["params"])

    @property
    def fp_size(self) -> int:
        """Number of bits (RDKit's default, 2048, when the recipe does not say)."""
        return int(dict(self.params).get("fpSize", 2048))

    @property
    def code_size(self) -> int:
        """Bytes per packed fingerprint: ``fp_size // 8``."""
        return self.fp_size // 8

    def manifest(self) -> dict[str, Any]:
        """Return the stamp an index stores: the recipe, RDKit's version and the bit layout.

        >>> stamp = get_recipe("morgan2").manifest()
        >>> stamp["kind"], stamp["params"], stamp["bit_order"]
        ('morgan', {'fpSize': 2048, 'radius': 2}, 'little')
        """
        return {"name": self.name, "kind": self.kind, "params": dict(self.params),
                "fp_size": self.fp_size, "bit_order": BIT_ORDER,
                "rdkit_version": rdkit.__version__}

    def bitvect(self, mol: Chem.Mol) -> DataStructs.ExplicitBitVect:
        """Return the fingerprint of one molecule as an RDKit ExplicitBitVect.

        >>> get_recipe("morgan2").bitvect(Chem.MolFromSmiles("CC(=O)Cc1ccccc1")).GetNumOnBits()
        19
        """
        if mol is None:
            raise ValueError("no molecule (None) to fingerprint")
        if self.kind == "pattern":
            return Chem.PatternFingerprint(mol, **dict(self.params))
        return _generator(self.kind, self.params).GetFingerprint(mol)

    def packer(self) -> Callable[..., bytes]:
        """Return ``f(mol, smiles=None)`` giving one molecule's packed fingerprint as
        ``code_size`` bytes: the row :meth:`packed` makes for it. For callers that fingerprint
        molecules one at a time as they stream past, so that no list of RDKit molecules (~30 kB
        each) is held. ``smiles``, when the caller has it, is ``Chem.MolToSmiles(mol)``: a
        pattern fingerprint is then computed from it without RDKit (:mod:`.fastpattern`, the
        same bits ~8x faster); other kinds ignore it.

        >>> recipe = get_recipe("morgan2")
        >>> mol = Chem.MolFromSmiles("CC(=O)Cc1ccccc1")
        >>> recipe.packer()(mol) == recipe.packed([mol])[0][0].tobytes()
        True
        >>> pattern = get_recipe("pattern")
        >>> pattern.packer()(mol, Chem.MolToSmiles(mol)) == pattern.packed([mol])[0][0].tobytes()
        True
        """
        to_bytes = DataStructs.BitVectToBinaryText
        params = dict(self.params)
        if self.kind == "pattern":
            if not params.get("tautomerFingerprints", False):
                size = self.fp_size
                return lambda mol, smiles=None: pattern_bytes(mol, smiles, size)
            return lambda mol, smiles=None: to_bytes(Chem.PatternFingerprint(mol, **params))
        generator = _generator(self.kind, self.params)
        return lambda mol, smiles=None: to_bytes(generator.GetFingerprint(mol))

    def packed(self, mols: Iterable[Chem.Mol], *, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(bits, counts)``: packed fingerprints, uint8 ``(n, fp_size // 8)``, and popcounts.

        Row *i* belongs to the *i*-th molecule (``None`` is refused, naming its position: a row
        that could not be read has no fingerprint and must not silently shift the others).
        ``threads`` goes to RDKit's ``GetFingerprints(numThreads=...)``; on a busy machine one
        thread is often as fast.

        >>> recipe = get_recipe("morgan2")
        >>> mols = [Chem.MolFromSmiles(s) for s in ("CC(=O)Cc1ccccc1", "CNC(C)Cc1ccccc1")]
        >>> bits, counts = recipe.packed(mols)
        >>> bits.shape, bits.dtype.name, counts.tolist()
        ((2, 256), 'uint8', [19, 21])
        >>> np.array_equal(np.unpackbits(bits[0], bitorder="little").nonzero()[0],
        ...                list(recipe.bitvect(mols[0]).GetOnBits()))
        True
        """
        mols = mols if isinstance(mols, Sequence) else list(mols)
        out = np.empty((len(mols), self.code_size), dtype=np.uint8)
        for start in range(0, len(mols), _PACK_CHUNK):
            part = list(mols[start:start + _PACK_CHUNK])
            for offset, mol in enumerate(part):
                if mol is None:
                    raise ValueError(f"molecule {start + offset} is None: no fingerprint for a "
                                     "row that could not be read")
            if self.kind == "pattern":
                params = dict(self.params)
                fps: Sequence[Any] = [Chem.PatternFingerprint(m, **params) for m in part]
            else:
                fps = _generator(self.kind, self.params).GetFingerprints(part, numThreads=threads)
            raw = b"".join(map(DataStructs.BitVectToBinaryText, fps))
            out[start:start + len(part)] = np.frombuffer(raw, dtype=np.uint8).reshape(
                len(part), self.code_size)
        return out, popcounts(out)

    def _check(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; known kinds: {', '.join(KINDS)}")
        size = dict(self.params).get("fpSize", 2048)
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0 or size % 64:
            raise ValueError(f"fpSize must be a positive multiple of 64 (faiss works on 64-bit "
                             f"words), not {size!r}")
        try:
            if self.kind == "pattern":
                unknown = set(dict(self.params)) - _PATTERN_KEYS
                if unknown:
                    raise ValueError(f"pattern takes only {', '.join(sorted(_PATTERN_KEYS))}; "
                                     f"not {', '.join(sorted(unknown))}")
                self.bitvect(Chem.MolFromSmiles("CO"))
            else:
                _generator(self.kind, self.params)
        except ValueError:
            raise
        except Exception as exc:  # Boost.Python raises ArgumentError for a wrong keyword
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"RDKit refuses the parameters {dict(self.params)}: {first}") from None


@functools.lru_cache(maxsize=None)
def _generator(kind: str, params: tuple[tuple[str, Any], ...]) -> Any:
    """One RDKit generator per recipe and process (generators are immutable and thread-safe)."""
    kwargs = dict(params)
    invariants = kwargs.pop("atomInvariants", None)
    if invariants is not None:
        if invariants not in _ATOM_INVARIANTS:
            raise ValueError(f"unknown atomInvariants {invariants!r}; known: "
                             f"{', '.join(sorted(_ATOM_INVARIANTS))}")
        kwargs["atomInvariantsGenerator"] = _ATOM_INVARIANTS[invariants]()
    return _GENERATORS[kind](**kwargs)


def popcounts(packed: np.ndarray) -> np.ndarray:
    """Return the number of set bits of each packed row, as int32.

    >>> popcounts(np.array([[0b1011, 255], [0, 0]], dtype=np.uint8)).tolist()
    [11, 0]
    """
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.ndim == 1:
        packed = packed[None, :]
    return _bitwise_count(packed).sum(axis=1, dtype=np.int32)


def _bitwise_count(x: np.ndarray) -> np.ndarray:
    """Set bits of each element of an unsigned integer array (np.bitwise_count, numpy < 2 too)."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(x)
    counts = _POPCOUNT8[np.ascontiguousarray(x).view(np.uint8)]
    if x.dtype.itemsize == 1:
        return counts
    return counts.reshape(*x.shape, x.dtype.itemsize).sum(axis=-1, dtype=np.uint8)


def pack_bitvects(fps: Sequence[DataStructs.ExplicitBitVect]) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(bits, counts)`` for RDKit bit vectors made elsewhere (all the same length).

    >>> bv = DataStructs.ExplicitBitVect(64); bv.SetBitsFromList([0, 9, 63])
    >>> bits, counts = pack_bitvects([bv])
    >>> bits[0].tolist(), counts.tolist()
    ([1, 2, 0, 0, 0, 0, 0, 128], [3])
    """
    if not len(fps):
        return np.empty((0, 0), dtype=np.uint8), np.empty(0, dtype=np.int32)
    size = fps[0].GetNumBits()
    if size % 8 or any(fp.GetNumBits() != size for fp in fps):
        raise ValueError("bit vectors must all have the same length, a multiple of 8")
    raw = b"".join(map(DataStructs.BitVectToBinaryText, fps))
    bits = np.frombuffer(raw, dtype=np.uint8).reshape(len(fps), size // 8).copy()
    return bits, popcounts(bits)


def recipes_path() -> Path:
    """Return the shipped ``recipes.toml``: the installed package data, else the checkout's copy.

    An editable install cannot map the code-free ``fingerprints/`` folder into the package, so
    the checkout's top-level folder is the fallback.
    """
    try:
        installed = importlib.resources.files("precursor_screen") / "fingerprints" / "recipes.toml"
        if installed.is_file():
            return Path(str(installed))
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    return Path(__file__).resolve().parents[2] / "fingerprints" / "recipes.toml"


def load_recipes(path: str | Path | None = None) -> dict[str, Recipe]:
    """Return the recipes of a TOML file (default: the shipped one), keyed by name.

    Read once and pass the result on; a wrong recipe fails here, naming file and table.

    >>> sorted(load_recipes())
    ['atompair', 'featmorgan2', 'morgan2', 'pattern']
    """
    path = Path(path) if path is not None else recipes_path()
    tables = read_toml(path, name=path.name, error=ShippedDataError, what="recipe file")
    recipes: dict[str, Recipe] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ShippedDataError(f"{path.name}: [{name}] must be a table of RDKit keywords")
        params = dict(table)
        kind = params.pop("kind", None)
        if not isinstance(kind, str):
            raise ShippedDataError(f"{path.name}: [{name}] needs kind = one of {', '.join(KINDS)}")
        try:
            recipes[name] = Recipe.from_params(name, kind, params)
        except ValueError as exc:
            raise ShippedDataError(f"{path.name}: [{name}]: {exc}") from None
    return recipes


def get_recipe(name: str, recipes: Mapping[str, Recipe] | None = None) -> Recipe:
    """Return one recipe by name (from ``recipes``, default the shipped file).

    >>> try:
    ...     get_recipe("ecfp4")
    ... except UnknownRecipeError as exc:
    ...     print(exc)
    no fingerprint recipe 'ecfp4'; known: atompair, featmorgan2, morgan2, pattern
    """
    recipes = load_recipes() if recipes is None else recipes
    try:
        return recipes[name]
    except KeyError:
        raise UnknownRecipeError(f"no fingerprint recipe {name!r}; known: "
                                 f"{', '.join(sorted(recipes))}") from None
