"""Chemistry of one molecule: parse it, standardize it to the parent every comparison uses,
fingerprint it (recipes from ``fingerprints/``), depict it.

    from precursor_screen.chem import parse_smiles, standardize
    mol, problem = parse_smiles("CC(=O)Cc1ccccc1.Cl")
    standardize(mol).smiles          # 'CC(=O)Cc1ccccc1'
"""

from precursor_screen.chem.depict import Drawer, shared_atoms
from precursor_screen.chem.fingerprint import Recipe, get_recipe, load_recipes
from precursor_screen.chem.parse import parse_molblock, parse_record, parse_smiles, quiet_rdkit
from precursor_screen.chem.standardize import (Standardized, StandardizeError, match_key,
                                               standardize, standardize_smiles)

__all__ = ["Drawer", "Recipe", "Standardized", "StandardizeError", "get_recipe", "load_recipes",
           "match_key", "parse_molblock", "parse_record", "parse_smiles", "quiet_rdkit",
           "shared_atoms", "standardize", "standardize_smiles"]
