"""Exceptions of precursor-screen: library code raises these, the CLI maps them to exit codes.

The registry's own errors (a shipped list that does not load, a name not on it) come from
``scheduled_substances.errors`` and are re-exported here; ``USER_ERRORS`` is every error a
command reports in one line without a traceback.
"""

from __future__ import annotations

from scheduled_substances.errors import (
    RegistryError,
    ShippedDataError,
    UnknownSubstanceError,
)

__all__ = ["PrecursorScreenError", "ShippedDataError", "ReferenceFileError", "InputError",
           "QueryError", "OutputError", "UnknownSubstanceError", "RegistryError",
           "RegistryIntegrityWarning", "USER_ERRORS"]


class PrecursorScreenError(Exception):
    """Base class: a failure the user can act on, reported in one line without a traceback."""


class ReferenceFileError(PrecursorScreenError):
    """A user-supplied reference list (or group file) cannot be used; names file and line."""


class InputError(PrecursorScreenError):
    """An input file cannot be read at all (missing, wrong columns, unknown format)."""


class QueryError(PrecursorScreenError):
    """A query (``check``, the lab bench) names no structure the screen can read: an unparsable
    SMILES, an unknown name or CAS number; says why in one line."""


class OutputError(PrecursorScreenError):
    """An output cannot be written where asked (an input, a device, a full disk); names it."""


USER_ERRORS = (PrecursorScreenError, RegistryError)


class RegistryIntegrityWarning(UserWarning):
    """The built-in list loaded differs from the one shipped
    (``scheduled_substances/shipped.sha256``): it was edited after release. The screen runs;
    every output records the difference."""
