"""Exceptions of the registry: a list that cannot be loaded, a name that is not on it.

Each message is one line naming the file and line (or the name asked for), so a command can print
it as it is.
"""

from __future__ import annotations

__all__ = ["RegistryError", "ShippedDataError", "UnknownSubstanceError", "UnknownJurisdictionError"]


class RegistryError(Exception):
    """Base class: a failure the user can act on, reported in one line without a traceback."""


class ShippedDataError(RegistryError):
    """A data file shipped with the tool (registry, rules, groups) is wrong; names file and line."""


class UnknownSubstanceError(RegistryError, LookupError):
    """A substance named by the user (id, name, synonym or CAS) is not on the list."""


class UnknownJurisdictionError(RegistryError, LookupError):
    """A jurisdiction asked for (``--jurisdiction``) that no list file names."""
