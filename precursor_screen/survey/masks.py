"""Masked forms of a listed substance: the conversion rules run backwards, each form proven.

What a drafter weighs before anyone makes the compounds: the esters, glycidates, nitriles, amides,
ketals, bisulfite adducts, protected forms and nitroalkenes of a listed substance, and whether
the list or a group already covers each.

Depth counts *masks*, not rule steps. One mask is one reverse rule (``RuleSet.reverse``) and,
when that rule added a carboxylic acid, the usual forms of that acid: its methyl and ethyl esters,
its amide and its nitrile (the reverse of the carboxyl rules in :data:`CARBOXYL_FORMS`). So
APAAN is one mask on BMK, as the trade and the INCB count it, although unmasking it takes two of
our forward steps (nitrile hydrolysis, then decarboxylation). The acid forms act on every free
carboxylic acid of the product, which for a substance that is itself an acid may esterify that one
too; each form then shows what was done to make it.

Every form is valid (it standardizes) and deduplicated by its stereo-free key, and it is proven:
the forward rules (``RuleSet.apply``) must turn it back into the substance, and that route is
reported. A reverse product the forward rules do not undo is dropped and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rdkit import Chem

from precursor_screen.io.parse import quiet_rdkit
from precursor_screen.results import route_text
from precursor_screen.standardize import Standardized, StandardizeError, match_key, standardize_smiles
from precursor_screen.types import Route, Step

__all__ = ["MaskedForm", "enumerate_masked", "masked_row", "MASK_COLUMNS", "CARBOXYL_FORMS"]

CARBOXYL_FORMS = ("ester-hydrolysis", "transesterification", "amide-hydrolysis",
                  "nitrile-to-acid", "nitrile-to-amide")
"""Rules whose reverse turns a carboxylic acid into one of its usual forms (or one form into
another: methyl into ethyl ester, amide into nitrile)."""
FORWARD_DEPTH_PER_MASK = 3
"""Forward steps allowed to undo one mask (an acid form, its hydrolysis, the main step)."""
MAX_FORWARD_DEPTH = 4
_ACID = Chem.MolFromSmarts("[CX3](=O)[OX2H1]")

MASK_COLUMNS: tuple[tuple[str, type], ...] = (
    ("substance_id", str), ("substance_name", str), ("masks", int), ("smiles", str),
    ("key", str), ("made_by", str), ("unmask_route", str), ("unmask_steps", int),
    ("covered", str), ("covered_by", str), ("listed", str), ("groups", str),
    ("known_designer_precursor", str))


@dataclass(frozen=True, slots=True)
class MaskedForm:
    """One masked form of a listed substance, with the proof that it unmasks."""

    substance_id: str
    substance_name: str
    masks: int                           # masking operations from the substance
    smiles: str                          # standardized
    key: str                             # stereo-free
    made_by: tuple[Step, ...]            # reverse steps, from the substance to this form
    unmask: Route                        # forward route back to the substance
    listed: tuple[tuple[str, str], ...]  # (id, name) of listed substances it is
    groups: tuple[tuple[str, str], ...]  # (group id, status) of groups it belongs to
    known: str = ""                      # "DP003 MAPA (...)" when a known designer precursor

    @property
    def covered(self) -> str:
        """"listed", "adopted group", "draft group" (a proposal, not law) or "no"."""
        if self.listed:
            return "listed"
        if any(status == "adopted" for _, status in self.groups):
            return "adopted group"
        return "draft group" if self.groups else "no"


def enumerate_masked(substance: Any, *, rules: Any, groups: Any, reference: Any, depth: int = 1,
                     known: Sequence[Any] = (), max_products: int = 500
                     ) -> tuple[list[MaskedForm], dict[str, int]]:
    """Return the masked forms of ``substance`` up to ``depth`` masks, and counts.

    ``substance`` is a Registry entry; ``reference`` the Registry deciding "listed"; ``groups``
    the GroupSet (shipped, a draft, or both); ``known`` Compound records of known designer
    precursors. Counts: ``generated`` (distinct valid forms), ``proven`` (kept), ``unproven``
    (dropped: the forward rules do not give the substance back).
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, not {depth}")
    start: Standardized = substance.parent
    carboxyl = type(rules)([r for r in rules.rules if r.id in CARBOXYL_FORMS], rules.source)
    known_by_key: dict[str, str] = {}
    for c in known:
        try:
            known_by_key.setdefault(standardize_smiles(c.smiles).key, f"{c.id} {c.name}")
        except StandardizeError:
            continue
    seen = {start.key}
    found: list[tuple[int, Standardized, tuple[Step, ...]]] = []
    frontier: list[tuple[Standardized, tuple[Step, ...]]] = [(start, ())]
    with quiet_rdkit():
        for level in range(1, depth + 1):
            following: list[tuple[Standardized, tuple[Step, ...]]] = []

            def add(smiles: str, steps: tuple[Step, ...]) -> Standardized | None:
                try:
                    std = standardize_smiles(smiles)
                except StandardizeError:
                    return None
                if std.key in seen:
                    return None
                seen.add(std.key)
                found.append((level, std, steps))
                following.append((std, steps))
                return std

            for parent, path in frontier:
                acids = len(parent.mol.GetSubstructMatches(_ACID))
                for route in rules.reverse(parent, 1, max_products):
                    steps = path + route.steps
                    product = add(route.product, steps) or _standardized(route.product)
                    if (product is None or route.steps[-1].rule_id in CARBOXYL_FORMS
                            or len(product.mol.GetSubstructMatches(_ACID)) <= acids):
                        continue
                    for form in carboxyl.reverse(product, 2, max_products):
                        add(form.product, steps + form.steps)
            frontier = following
        forms = []
        unproven = 0
        forward = min(MAX_FORWARD_DEPTH, FORWARD_DEPTH_PER_MASK * depth)
        size = start.mol.GetNumHeavyAtoms()
        for level, std, steps in found:
            back = next((r for r in rules.apply(std, depth=forward, max_products=2000,
                                                max_heavy_atoms=size)
                         if _key(r.product) == start.key), None)
            if back is None:
                unproven += 1
                continue
            listed = tuple((i.substance.id, i.substance.name) for i in reference.identify(std)
                           if i.relation != "excluded")
            member = tuple((g.id, g.status) for g in groups.match(std))
            forms.append(MaskedForm(substance.id, substance.name, level, std.smiles, std.key,
                                    steps, back, listed, member, known_by_key.get(std.key, "")))
    forms.sort(key=lambda f: (f.masks, f.unmask.depth, f.smiles))
    return forms, {"generated": len(found), "proven": len(forms), "unproven": unproven}


def _standardized(smiles: str) -> Standardized | None:
    try:
        return standardize_smiles(smiles)
    except StandardizeError:
        return None


def _key(smiles: str) -> str:
    mol = Chem.MolFromSmiles(smiles)
    return match_key(mol) if mol is not None else ""


def masked_row(f: MaskedForm) -> dict[str, Any]:
    """The output columns (:data:`MASK_COLUMNS`) of one masked form."""
    return {"substance_id": f.substance_id, "substance_name": f.substance_name,
            "masks": f.masks, "smiles": f.smiles, "key": f.key,
            "made_by": " | ".join(f"{s.rule_id} (reverse) -> {s.product}" for s in f.made_by),
            "unmask_route": route_text(f.unmask), "unmask_steps": f.unmask.depth,
            "covered": f.covered,
            "covered_by": "; ".join([f"listed: {i}" for i, _ in f.listed]
                                    + [f"{s} group: {g}" for g, s in f.groups]),
            "listed": ";".join(i for i, _ in f.listed),
            "groups": ";".join(g for g, _ in f.groups),
            "known_designer_precursor": f.known}
