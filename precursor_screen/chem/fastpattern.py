"""RDKit's pattern fingerprint, from a molecule's canonical SMILES, without RDKit when it can.

``Chem.PatternFingerprint`` (the substructure screen of every index) enumerates every match of
13 small SMARTS patterns and hashes each; on a MOSES molecule it costs ~175 us, more than
parsing, standardizing and the Morgan fingerprint together, and was 40% of ``index build``.
``_patternfp.c`` (an optional C extension, see ``setup.py``) computes the same bits from the
SMILES RDKit wrote for the molecule in ~20 us: it reads the graph from the SMILES, finds the ring
bonds and enumerates the same matches with the same hash (the file says how, citing RDKit's
source).

It is used only where it is known to agree: once per process and fingerprint size, the first call
compares it with RDKit on :data:`CHECK_SMILES` (fused, bridged and caged rings, aromatic
heteroatoms, charges, isotopes, salts, metals), and any difference turns it off for the
process. A SMILES it does not read (a dummy atom, a dative bond, more atoms than its tables) or a
molecule whose RDKit rings are no full ring basis gives None, and RDKit answers. The tests and
``benchmarks/verify_patternfp.py`` compare both on every evaluation molecule and on MOSES.
"""

from __future__ import annotations

import functools

from rdkit import Chem, DataStructs

try:
    from precursor_screen.chem import _patternfp  # the optional C extension (setup.py)
except ImportError:  # built without a C compiler: RDKit computes every fingerprint
    _patternfp = None

__all__ = ["pattern_bytes", "fast_path", "CHECK_SMILES"]

CHECK_SMILES = (
    "CC(=O)Cc1ccc2c(c1)OCO2", "CNC(C)Cc1ccccc1", "c1ccc2ccccc2c1", "C1CC1", "C1CCC1",
    "C12C3C4C1C5C2C3C45", "C1CC2CCC1C2", "C1CC2CC3CCC2C3C1", "c1ccc2c(c1)[nH]c1ccccc12",
    "O=c1cccc[nH]1", "c1cc[se]c1", "C[N+](C)(C)C", "CC(=O)[O-]", "[2H]C([2H])([2H])Oc1ccccc1",
    "O=S(=O)([O-])[O-].[Na+].[Na+]", "[Na+].[Cl-]", "N#Cc1ccccc1", "C=CC#CC=O", "CCCCCCCCCCCCCCC",
    "O=C1CCN(CCc2ccccc2)CC1", "CCC(=O)N(c1ccccc1)C1CCN(CCc2ccccc2)CC1", "[H][H]", "[Pt]",
    "CC(C)(C)c1cc(O)ccc1O", "C1=CC2=CC=CC2=C1", "FC(F)(F)C(Cl)Br", "OB(O)c1ccccc1", "C[Si](C)(C)C",
    "O=[N+]([O-])c1ccccc1", "CC1(C)OC2COC3(COS(N)(=O)=O)OC(C)(C)OC3C2O1",
    "O=C(Nc1ccccc1C(=O)O)c1ccccc1", "CC(=O)c1ccc2c(c1)OCO2",
)
"""Check molecules: the fast path is used in a process only if it gives RDKit's bits for all."""


def _rdkit(mol: Chem.Mol, fp_size: int) -> bytes:
    return DataStructs.BitVectToBinaryText(Chem.PatternFingerprint(mol, fpSize=fp_size))


def _fast(mol: Chem.Mol, smiles: str, fp_size: int) -> bytes | None:
    try:
        rings = mol.GetRingInfo().NumRings()
    except RuntimeError:  # ring information not computed (an unsanitized molecule)
        return None
    return _patternfp.pattern_fingerprint(smiles, fp_size, rings)


@functools.lru_cache(maxsize=None)
def fast_path(fp_size: int = 2048) -> bool:
    """True when the C extension is built and gives RDKit's bits on every check molecule.

    >>> isinstance(fast_path(2048), bool)
    True
    """
    if _patternfp is None:
        return False
    for smiles in CHECK_SMILES:
        mol = Chem.MolFromSmiles(smiles)
        fast = _fast(mol, Chem.MolToSmiles(mol), fp_size)
        if fast is not None and fast != _rdkit(mol, fp_size):
            return False
    return True


def pattern_bytes(mol: Chem.Mol, smiles: str | None, fp_size: int = 2048) -> bytes:
    """RDKit's pattern fingerprint of ``mol`` (``Chem.PatternFingerprint(mol, fpSize=fp_size)``),
    packed as ``fp_size // 8`` bytes (bit *i* is bit ``i % 8`` of byte ``i // 8``).

    ``smiles`` must be ``Chem.MolToSmiles(mol)``, the canonical SMILES RDKit writes for it (the
    standardized parent's ``smiles``); with ``None`` RDKit computes the fingerprint.

    >>> mol = Chem.MolFromSmiles("CC(=O)Cc1ccc2c(c1)OCO2")
    >>> pattern_bytes(mol, Chem.MolToSmiles(mol)) == _rdkit(mol, 2048)
    True
    """
    if smiles is not None and fast_path(fp_size):
        fast = _fast(mol, smiles, fp_size)
        if fast is not None:
            return fast
    return _rdkit(mol, fp_size)
