"""The registry of scheduled drug precursors: the reviewed ``substances.tsv`` and its loader.

``substances.tsv`` is the truth (one reviewed line per substance); everything else, the
standardized structures, keys and the content hash, is derived from it at load time and never
stored, so it cannot fall out of step.
"""

from scheduled_substances.registry import (
    REGISTRY_FILE,
    Registry,
    Substance,
    cas_is_valid,
    load_reference_file,
    load_registry,
)

__all__ = ["REGISTRY_FILE", "Registry", "Substance", "cas_is_valid", "load_reference_file",
           "load_registry"]
