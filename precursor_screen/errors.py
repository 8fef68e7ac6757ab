"""Exceptions of precursor-screen: library code raises these, the CLI maps them to exit codes."""

from __future__ import annotations


class PrecursorScreenError(Exception):
    """Base class: a failure the user can act on, reported in one line without a traceback."""


class ShippedDataError(PrecursorScreenError):
    """A file shipped with the tool (registry, rules, groups) is wrong; names file and line."""


class ReferenceFileError(PrecursorScreenError):
    """A user-supplied reference list cannot be used; names file and line."""


class InputError(PrecursorScreenError):
    """An input file cannot be read at all (missing, wrong columns, unknown format)."""


class UnknownSubstanceError(PrecursorScreenError):
    """A substance named by the user (id, name, synonym or CAS) is not in the registry."""
