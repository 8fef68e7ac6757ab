"""Benchmarks run with `pytest benchmarks --benchmark-only`; they are outside the default testpaths."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
