"""The registries: scheduled drug precursors (``substances.tsv``) and the controlled drugs they
serve (``drugs.tsv``), each with its listings (``listings.tsv``, ``drug_listings.tsv``: one row per
jurisdiction, list and period) and the vocabulary they share (``lists.tsv``, ``thresholds.tsv``,
``families.toml``), with the loaders and validation.

The data files are the truth (one reviewed line per substance and per listing); everything derived
from them, the parent structures, keys and the content hash, is computed at load time and never
stored, so it cannot fall out of step; ``shipped.sha256`` records the hash of what was released,
and a list edited since then says so (``Registry.integrity``). This package stands alone (it needs
RDKit only); the screening package passes in its standardizer, so the list and the candidates meet
in one standardized form.
"""

from scheduled_substances.drugs import DrugRegistry, DrugTarget, load_drugs
from scheduled_substances.errors import (
                                           RegistryError,
                                           ShippedDataError,
                                           UnknownJurisdictionError,
                                           UnknownSubstanceError,
)
from scheduled_substances.integrity import Integrity, canonical_hash
from scheduled_substances.listings import Family, Listing, ThresholdRule
from scheduled_substances.registry import (
                                           BULK_CATEGORIES,
                                           DEFAULT_JURISDICTIONS,
                                           EU_CATEGORIES,
                                           REGISTRY_FILE,
                                           Identity,
                                           Registry,
                                           Substance,
                                           load_registry,
)
from scheduled_substances.validate import Standardizer, cas_is_valid

__all__ = ["BULK_CATEGORIES", "DEFAULT_JURISDICTIONS", "DrugRegistry", "DrugTarget",
           "EU_CATEGORIES", "Family", "Identity", "Integrity", "Listing", "REGISTRY_FILE",
           "Registry", "RegistryError", "ShippedDataError", "Standardizer", "Substance",
           "ThresholdRule", "UnknownJurisdictionError", "UnknownSubstanceError", "cas_is_valid",
           "canonical_hash", "load_drugs", "load_registry"]
