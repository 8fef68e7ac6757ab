"""The MOSES library (ZINC molecules, ~1.6M) from the PyPI wheel of `molsets`, fetched on demand.

The wheel is downloaded with pip into ``benchmarks/data/`` (ignored by git) the first time a
benchmark asks for it; nothing is committed. ``PRECURSOR_SCREEN_MOSES_LIMIT`` caps the number of
molecules for a quick run.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import zipfile
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
MEMBER = "moses/dataset/data/train.csv.gz"


def moses_path() -> Path:
    """Path of ``moses_train.csv.gz`` (columns SMILES,SPLIT), downloading the wheel if needed."""
    target = DATA / "moses_train.csv.gz"
    if target.exists():
        return target
    DATA.mkdir(parents=True, exist_ok=True)
    wheels = list(DATA.glob("molsets-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        "molsets==0.3.1", "-d", str(DATA)], check=True)
        wheels = list(DATA.glob("molsets-*.whl"))
    with zipfile.ZipFile(wheels[0]) as zf, zf.open(MEMBER) as src, open(target, "wb") as dst:
        dst.write(src.read())
    return target


def moses_smiles(limit: int | None = None) -> list[str]:
    """The MOSES training SMILES, in file order (``limit`` first ones)."""
    limit = limit or int(os.environ.get("PRECURSOR_SCREEN_MOSES_LIMIT", "0")) or None
    out: list[str] = []
    with gzip.open(moses_path(), "rt") as fh:
        next(fh)  # header
        for line in fh:
            out.append(line.rstrip("\r\n").split(",", 1)[0])
            if limit and len(out) >= limit:
                break
    return out
