"""Tests share two helpers with the benchmarks (``benchmarks/``): the MOSES loader and the
generator of synthetic trade declarations. They are test data makers, not part of the package."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
