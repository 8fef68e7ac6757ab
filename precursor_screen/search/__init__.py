"""Searching many molecules at once, exactly: Tanimoto similarity on packed fingerprints (FAISS
Hamming kernels, every score equal to RDKit's) and substructure search behind a pattern
fingerprint screen (every hit confirmed by RDKit)."""

from precursor_screen.search.substructure import QueryError, SubstructureIndex
from precursor_screen.search.tanimoto import HitArrays, TanimotoIndex

__all__ = ["HitArrays", "QueryError", "SubstructureIndex", "TanimotoIndex"]
