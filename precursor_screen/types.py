"""Frozen records crossing stage boundaries (and process and Dask boundaries) unchanged."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, TypeVar

__all__ = ["Flag", "FLAG_ORDER", "Step", "Route", "Hit", "Verdict", "pickled_by_fields"]

_T = TypeVar("_T", bound=type)


def pickled_by_fields(cls: _T) -> _T:
    """Pickle a frozen slots dataclass as its class called with its fields in order.

    The dataclass default sets each field again through ``object.__setattr__`` in a Python loop
    (`__setstate__`); this costs half as much, and the screen's worker processes send every
    verdict, with its hits, to the process that writes them (README "Speed"). Apply it after
    ``@dataclass``."""
    get = operator.attrgetter(*(f.name for f in fields(cls)))
    single = len(fields(cls)) == 1
    reduce: Callable[[Any], tuple[Any, ...]] = (
        (lambda self: (cls, (get(self),))) if single else (lambda self: (cls, get(self))))
    cls.__reduce__ = reduce  # type: ignore[method-assign,assignment]
    return cls


class Flag(str, Enum):
    """The strongest relation found, strongest first in FLAG_ORDER."""

    SCHEDULED = "scheduled"
    CONVERTIBLE = "convertible"
    DRUG_PRECURSOR = "drug-precursor"
    GROUP = "group"
    SIMILAR = "similar"
    NONE = "none"

    def __str__(self) -> str:
        return self.value


FLAG_ORDER = (Flag.SCHEDULED, Flag.CONVERTIBLE, Flag.DRUG_PRECURSOR, Flag.GROUP, Flag.SIMILAR,
              Flag.NONE)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Step:
    """One rule application: which rule, and the (standardized) product SMILES it gave."""

    rule_id: str
    rule_name: str
    product: str
    reagent: str = ""


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Route:
    """A path of rule applications from a candidate to a product (the last step's product)."""

    steps: tuple[Step, ...]

    @property
    def product(self) -> str:
        return self.steps[-1].product

    @property
    def depth(self) -> int:
        return len(self.steps)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Hit:
    """One piece of evidence linking a candidate to a listed substance (or a group)."""

    relation: str            # identical|salt|stereoisomer|excluded|converts|group|contains|contained_in|similar
    substance_id: str
    substance_name: str
    list_name: str
    score: float
    reason: str
    similarity: float = 0.0
    route: Route | None = None
    group_id: str = ""
    atoms_added: int = 0
    atoms_removed: int = 0


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer for one input row: one Verdict per row, always."""

    row: int
    id: str
    input_smiles: str
    status: str                  # "ok", or why the row could not be read
    flag: Flag | None            # None when status != "ok"
    score: float = 0.0
    reason: str = ""
    similarity: float = 0.0      # Tanimoto (Morgan radius 2) to the substance the reason names
    match_id: str = ""
    match_name: str = ""
    standardized_smiles: str = ""
    hits: tuple[Hit, ...] = field(default=())
    nearest: float = 0.0         # best Tanimoto to the list (the `none` score's basis)
