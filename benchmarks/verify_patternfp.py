"""Prove the C pattern fingerprint equal to RDKit's on MOSES (or the first N molecules).

    python benchmarks/verify_patternfp.py [N] [--jobs 2]

Every MOSES molecule is parsed and standardized as ``index build`` does; the pattern fingerprint
of the parent is computed by RDKit (``Chem.PatternFingerprint``) and from its canonical SMILES
(``precursor_screen.chem.fastpattern``), and the two compared byte for byte. Prints how many were
compared, how many the C path read (the rest it leaves to RDKit), how many differ (must be 0)
and the time per molecule of each path.
"""

from __future__ import annotations

import argparse
import sys
import time
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from moses import moses_smiles  # noqa: E402
from rdkit import Chem, DataStructs, rdBase  # noqa: E402

from precursor_screen.chem import fastpattern  # noqa: E402
from precursor_screen.chem.standardize import StandardizeError, standardize  # noqa: E402


def check(smiles: list[str]) -> tuple[int, int, list[str], float, float]:
    """(compared, read by the C path, SMILES that differ, RDKit s, C s) for one chunk."""
    block = rdBase.BlockLogs()
    parents = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        if mol is None:
            continue
        try:
            parents.append(standardize(mol))
        except StandardizeError:
            continue
    t0 = time.process_time()
    ours = [fastpattern._fast(p.mol, p.smiles, 2048) for p in parents]
    t1 = time.process_time()
    theirs = [DataStructs.BitVectToBinaryText(Chem.PatternFingerprint(p.mol, fpSize=2048))
              for p in parents]
    t2 = time.process_time()
    differ = [p.smiles for p, a, b in zip(parents, ours, theirs) if a is not None and a != b]
    del block
    return len(parents), sum(a is not None for a in ours), differ, t2 - t1, t1 - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=0, help="first N MOSES molecules (0: all)")
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    if not fastpattern.fast_path(2048):
        sys.exit("the C extension is not built or failed its check: nothing to verify")
    smiles = moses_smiles(args.n or None)
    chunks = [smiles[i:i + 20_000] for i in range(0, len(smiles), 20_000)]
    total = read = 0
    differ: list[str] = []
    t_rdkit = t_fast = 0.0
    with get_context("fork").Pool(args.jobs) as pool:
        for n, k, d, tr, tf in pool.imap(check, chunks):
            total, read, t_rdkit, t_fast = total + n, read + k, t_rdkit + tr, t_fast + tf
            differ += d
            print(f"\r{total:,} compared, {len(differ)} differ", end="", file=sys.stderr)
    print(file=sys.stderr)
    print(f"MOSES parents compared: {total:,}; read by the C path: {read:,} "
          f"({total - read:,} left to RDKit); differing: {len(differ)}")
    print(f"CPU per molecule: RDKit {t_rdkit / total * 1e6:.1f} us, "
          f"C {t_fast / total * 1e6:.1f} us")
    for s in differ[:20]:
        print("DIFFERS:", s)
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
