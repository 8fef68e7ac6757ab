"""The registries: scheduled drug precursors (``substances.tsv``) and the controlled drugs they
serve (``drugs.tsv``), each with its loader and validation.

The TSV files are the truth (one reviewed line per substance); everything derived from them, the
parent structures, keys and the content hash, is computed at load time and never stored, so it
cannot fall out of step. This package stands alone (it needs RDKit only); the screening package
passes in its standardizer, so the list and the candidates meet in one standardized form.
"""

from scheduled_substances.drugs import DrugRegistry, DrugTarget, load_drugs
from scheduled_substances.errors import (
                                           RegistryError,
                                           ShippedDataError,
                                           UnknownSubstanceError,
)
from scheduled_substances.registry import (
                                           BULK_CATEGORIES,
                                           EU_CATEGORIES,
                                           REGISTRY_FILE,
                                           Identity,
                                           Registry,
                                           Substance,
                                           load_registry,
)
from scheduled_substances.validate import Standardizer, cas_is_valid

__all__ = ["BULK_CATEGORIES", "DrugRegistry", "DrugTarget", "EU_CATEGORIES", "Identity", "REGISTRY_FILE", "Registry",
           "RegistryError", "ShippedDataError", "Standardizer", "Substance", "UnknownSubstanceError",
           "cas_is_valid", "load_drugs", "load_registry"]
