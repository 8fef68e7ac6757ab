"""Search against many molecules: the exact Tanimoto index and the substructure index."""
