"""Masks as data: the groups a designer precursor puts on a listed substance's reactive sites.

A listed substance has reactive sites (a carbonyl, an amine, a hydroxyl, a carboxylic acid, an
alkene, a 1,2-amino alcohol, a diol); ``data/masks.toml`` describes each *site* once (what the
attachment atom is restored to: its element, oxidation state and substitution) and each *mask*
once (the group it forms at a site, the conditions that remove it, what comes off, test
molecules). A mask applies at any site of any listed substance: a ketal of any diol on any
ketone, a carbamate of any alcohol on any amine, a silyl group on any hydroxyl.

Each mask becomes a `ConversionRule` of kind ``"mask"``: its reaction SMARTS is the masked
pattern (attachment atoms mapped, the mask's own atoms unmapped) followed by the site's restored
template, so the unmapped atoms, and whatever hangs on them, come off. The conversion engine
(`precursor_screen.rules.conversions.RuleSet`) keeps only the piece holding the attachment atoms
and does not count a mask step against ``depth`` (at most `MAX_MASK_STEPS` per route).

Data errors fail at load with `ShippedDataError` naming the file and the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdkit import Chem

from precursor_screen.chem.parse import quiet_rdkit
from precursor_screen.errors import ShippedDataError
from precursor_screen.io.readers import read_toml
from precursor_screen.rules.conversions import (
    MASK_KIND,
    MAX_MASK_STEPS,
    ConversionRule,
    RuleSet,
    load_conversion_rules,
    rule_examples,
)
from precursor_screen.rules.files import data_file

__all__ = ["Site", "Mask", "load_masks", "mask_rules", "load_rules", "MASKS_FILE", "MASK_KIND",
           "REMOVALS", "MAX_MASK_STEPS"]

MASKS_FILE = "masks.toml"
"""Name of the shipped mask file in ``precursor_screen/rules/data/``."""

REMOVALS = ("acid hydrolysis", "base hydrolysis", "hydrolysis", "fluoride", "hydrogenolysis",
            "reduction", "oxidation", "tautomerism", "rearrangement")
"""The conditions a mask's ``removal`` may name."""

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_MAP = re.compile(r":(\d+)\]")
_MASK_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str, "site": str, "masked": (str, list), "removal": str, "removes": str,
    "rationale": str, "examples": list, "negatives": list}
_MASK_OPTIONAL: dict[str, type | tuple[type, ...]] = {"reverse": (str, list),
                                                      "protecting_group": bool}
_SITE_FIELDS: dict[str, type] = {"restored": str, "attachment": str}


@dataclass(frozen=True, slots=True)
class Site:
    """A reactive site of a listed substance: what its attachment atoms are restored to."""

    name: str
    restored: str            # product template, attachment atoms mapped :1 (:2)
    attachment: str          # element and oxidation state left there, in words
    maps: tuple[int, ...]    # the map numbers of the attachment atoms


@dataclass(frozen=True, slots=True)
class Mask:
    """One mask, as written in the mask file."""

    id: str
    name: str
    site: Site
    masked: tuple[str, ...]  # alternative SMARTS of the masked site
    removal: str
    removes: str
    rationale: str
    examples: tuple[tuple[str, str], ...]
    negatives: tuple[str, ...]
    reverse: tuple[str, ...] = ()    # reaction SMARTS putting the mask on (for `enumerate`)
    protecting_group: bool = False

    def reactions(self) -> tuple[str, ...]:
        """The reaction SMARTS that remove this mask: each masked pattern >> the site."""
        return tuple(f"{pattern}>>{self.site.restored}" for pattern in self.masked)


def load_masks(path: str | Path | None = None) -> tuple[dict[str, Site], tuple[Mask, ...]]:
    """The sites and masks of ``path`` (default: the shipped ``masks.toml``).

    >>> sites, masks = load_masks()
    >>> sorted(sites)[:3]
    ['acid', 'alcohol', 'alkene']
    >>> next(m for m in masks if m.id == "ketal-hydrolysis").site.name
    'carbonyl'
    """
    file, source = (data_file(MASKS_FILE), MASKS_FILE) if path is None else (Path(path), str(path))
    data = read_toml(file, name=source, error=ShippedDataError, what="mask file")
    unknown = sorted(set(data) - {"sites", "masks"})
    if unknown:
        raise ShippedDataError(f"{source}: unknown top-level table(s): {', '.join(unknown)} "
                               "(expected [sites.*] and [masks.*])")
    sites = {name: _site(name, table, source) for name, table in data.get("sites", {}).items()}
    masks = tuple(_mask(mask_id, table, sites, source)
                  for mask_id, table in data.get("masks", {}).items())
    if not masks:
        raise ShippedDataError(f"{source}: no masks")
    return sites, masks


def load_rules(masks: str | Path | None = None, conversions: str | Path | None = None) -> RuleSet:
    """The screen's rule set: every mask (``masks.toml``, or ``masks``) then every conversion
    (``conversions.toml``, or ``conversions``), compiled.

    >>> rules = load_rules()
    >>> rules.rule("ketal-hydrolysis").kind, rules.rule("glycidic-acid-to-ketone").kind
    ('mask', 'unmask')
    """
    converting = load_conversion_rules(conversions)
    source = f"{masks or MASKS_FILE}+{converting.source}"
    return RuleSet((*mask_rules(load_masks(masks)[1]), *converting.rules), source)


def mask_rules(masks: tuple[Mask, ...] | None = None) -> list[ConversionRule]:
    """The masks as `ConversionRule` records of kind ``"mask"`` (one per mask; alternative
    patterns in ``alternatives``), in file order."""
    if masks is None:
        masks = load_masks()[1]
    return [ConversionRule(id=m.id, name=m.name, smarts=m.reactions()[0], removes=m.removes,
                           kind=MASK_KIND, rationale=m.rationale, examples=m.examples,
                           negatives=m.negatives, reverse=m.reverse[0] if m.reverse else "",
                           reverse_alternatives=m.reverse[1:],
                           alternatives=m.reactions()[1:], removal=m.removal, site=m.site.name,
                           protecting_group=m.protecting_group)
            for m in masks]


def _site(name: str, table: Any, source: str) -> Site:
    where = f"{source}: [sites.{name}]"
    if not isinstance(table, dict):
        raise ShippedDataError(f"{where}: expected a table")
    _check_fields(table, _SITE_FIELDS, {}, where)
    maps = tuple(sorted(int(m) for m in _MAP.findall(table["restored"])))
    if not maps or len(set(maps)) != len(maps):
        raise ShippedDataError(f"{where}: 'restored' must map each attachment atom once (:1, :2)")
    with quiet_rdkit():
        if Chem.MolFromSmarts(table["restored"].strip("()")) is None:
            raise ShippedDataError(f"{where}: 'restored' does not parse as SMARTS")
    return Site(name, table["restored"], table["attachment"], maps)


def _mask(mask_id: str, table: Any, sites: dict[str, Site], source: str) -> Mask:
    where = f"{source}: [masks.{mask_id}]"
    if not isinstance(table, dict):
        raise ShippedDataError(f"{where}: expected a table")
    if not _SLUG.fullmatch(mask_id):
        raise ShippedDataError(f"{where}: mask id must be a lower-case slug like 'ketal-hydrolysis'")
    _check_fields(table, _MASK_FIELDS, _MASK_OPTIONAL, where)
    site = sites.get(table["site"])
    if site is None:
        raise ShippedDataError(f"{where}: unknown site {table['site']!r} (known: "
                               f"{', '.join(sorted(sites))})")
    if table["removal"] not in REMOVALS:
        raise ShippedDataError(f"{where}: removal {table['removal']!r} is not one of "
                               f"{', '.join(REMOVALS)}")
    masked = (table["masked"],) if isinstance(table["masked"], str) else tuple(table["masked"])
    if not masked or not all(isinstance(p, str) and p.strip() for p in masked):
        raise ShippedDataError(f"{where}: 'masked' must be a SMARTS or a list of SMARTS")
    for pattern in masked:
        with quiet_rdkit():
            query = Chem.MolFromSmarts(pattern)
        if query is None:
            raise ShippedDataError(f"{where}: masked pattern does not parse: {pattern!r}")
        maps = tuple(sorted(a.GetAtomMapNum() for a in query.GetAtoms() if a.GetAtomMapNum()))
        if maps != site.maps:
            raise ShippedDataError(f"{where}: masked pattern maps {list(maps)}, the site "
                                   f"{site.name!r} maps {list(site.maps)}: {pattern!r}")
        if query.GetNumAtoms() == len(maps):
            raise ShippedDataError(f"{where}: masked pattern has no mask atom (every atom "
                                   f"mapped): {pattern!r}")
    examples, negatives = rule_examples(table, where)
    if len(examples) < 2 or len(negatives) < 2:
        raise ShippedDataError(f"{where}: a mask needs at least two examples and two negatives")
    return Mask(mask_id, table["name"].strip(), site, masked, table["removal"],
                " ".join(table["removes"].split()), " ".join(table["rationale"].split()),
                tuple(examples), tuple(negatives), _reverses(table.get("reverse", ()), where),
                table.get("protecting_group", False))


def _reverses(value: str | list[str], where: str) -> tuple[str, ...]:
    """A mask's reverse SMARTS, one or a list; each must parse as a reaction."""
    out = (value,) if isinstance(value, str) else tuple(value)
    for smarts in out:
        if not isinstance(smarts, str) or ">>" not in smarts:
            raise ShippedDataError(f"{where}: each reverse must be reaction SMARTS (a >> b)")
    return out


def _check_fields(table: dict[str, Any], required: dict[str, Any], optional: dict[str, Any],
                  where: str) -> None:
    for field in required:
        if field not in table:
            raise ShippedDataError(f"{where}: missing field '{field}'")
    unknown = sorted(set(table) - set(required) - set(optional))
    if unknown:
        raise ShippedDataError(f"{where}: unknown field(s): {', '.join(unknown)}")
    for field, kind in {**required, **optional}.items():
        if field in table and not isinstance(table[field], kind):
            raise ShippedDataError(f"{where}: field '{field}' has the wrong type")
        if field in table and isinstance(table[field], str) and not table[field].strip():
            raise ShippedDataError(f"{where}: field '{field}' is empty")
