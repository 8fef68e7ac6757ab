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

A controlled drug (``scheduled_substances/drugs.tsv``) is worked back from the same way by
`enumerate_drug_precursors`, with one more kind of step: a forward synthesis rule run backwards,
less its reagent (``rules/synthesis.py``, `reverse_synthesis_rule_set`), so that mephedrone gives
its alpha-bromo ketone and, a step further, the propiophenone; methamphetamine gives BMK and then
BMK's masks. There depth counts steps back (a mask, or a reverse synthesis step), and the proof is
the screen's own drug stage (`DrugTargets.routes`): it must reach the drug with a flagging score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rdkit import Chem

from precursor_screen.chem.parse import quiet_rdkit
from precursor_screen.chem.standardize import (
    Standardized,
    StandardizeError,
    parent_or_none,
    smiles_key,
    standardize_smiles,
)
from precursor_screen.errors import UnknownSubstanceError
from precursor_screen.results import ENUMERATE, names, route_text
from precursor_screen.rules.synthesis import reverse_synthesis_rule_set
from precursor_screen.survey.derivatives import survey_substances
from precursor_screen.types import Route, Step

__all__ = ["MaskedForm", "enumerate_masked", "enumerate_drug_precursors", "masked_row",
           "enumeration_targets", "enumeration_summary", "MASK_COLUMNS", "CARBOXYL_FORMS",
           "PRECURSORS", "DRUGS"]

CARBOXYL_FORMS = ("ester-hydrolysis", "transesterification", "amide-hydrolysis",
                  "nitrile-to-acid", "nitrile-to-amide")
"""Rules whose reverse turns a carboxylic acid into one of its usual forms (or one form into
another: methyl into ethyl ester, amide into nitrile)."""
FORWARD_DEPTH_PER_MASK = 3
"""Forward steps allowed to undo one mask (an acid form, its hydrolysis, the main step)."""
MAX_FORWARD_DEPTH = 4
_ACID = Chem.MolFromSmarts("[CX3](=O)[OX2H1]")

PRECURSORS = "precursors"
"""`MaskedForm.registry` of a listed (scheduled) precursor's forms."""
DRUGS = "controlled drugs"
"""`MaskedForm.registry` of a controlled drug's pre-precursors."""

MASK_COLUMNS = names(ENUMERATE)


@dataclass(frozen=True, slots=True)
class MaskedForm:
    """One masked form of a listed substance (or pre-precursor of a controlled drug), with the
    proof that it gives the substance back."""

    substance_id: str
    substance_name: str
    masks: int                           # masks (for a drug: steps back) from the substance
    smiles: str                          # standardized
    key: str                             # stereo-free
    made_by: tuple[Step, ...]            # reverse steps, from the substance to this form
    unmask: Route                        # forward route back to the substance (or drug)
    listed: tuple[tuple[str, str], ...]  # (id, name) of listed substances it is
    groups: tuple[tuple[str, str], ...]  # (group id, status) of groups it belongs to
    known: str = ""                      # "DP003 MAPA (...)" when a known designer precursor
    registry: str = PRECURSORS           # where the substance comes from: PRECURSORS or DRUGS
    drugs: tuple[tuple[str, str], ...] = ()  # (id, name) of controlled drugs it is

    @property
    def covered(self) -> str:
        """"listed", "controlled drug" (the form is itself one), "adopted group", "draft group"
        (a proposal, not law) or "no"."""
        if self.listed:
            return "listed"
        if self.drugs:
            return "controlled drug"
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
    known_by_key = _known_keys(known)
    with quiet_rdkit():
        found = _walk_back(start, depth, lambda parent, path, add: _put_masks(
            parent, path, rules, carboxyl, max_products, add))
        forms = []
        unproven = 0
        forward = min(MAX_FORWARD_DEPTH, FORWARD_DEPTH_PER_MASK * depth)
        size = start.mol.GetNumHeavyAtoms()
        for level, std, steps in found:
            back = next((r for r in rules.apply(std, depth=forward, max_products=2000,
                                                max_heavy_atoms=size)
                         if smiles_key(r.product) == start.key), None)
            if back is None:
                unproven += 1
                continue
            forms.append(MaskedForm(substance.id, substance.name, level, std.smiles, std.key,
                                    steps, back, *_coverage(std, reference, groups),
                                    known_by_key.get(std.key, "")))
    forms.sort(key=lambda f: (f.masks, f.unmask.depth, f.smiles))
    return forms, {"generated": len(found), "proven": len(forms), "unproven": unproven}


_Add = Callable[[str, tuple[Step, ...]], Standardized | None]
"""Takes a form (SMILES, reverse steps); returns it standardized when it is new, else None."""


def _walk_back(start: Standardized, depth: int,
               step_back: Callable[[Standardized, tuple[Step, ...], _Add], None]
               ) -> list[tuple[int, Standardized, tuple[Step, ...]]]:
    """Breadth-first from ``start``: ``step_back(parent, path, add)`` offers each form one step
    back; return (level, form, reverse steps) for every distinct valid form, in order found."""
    seen = {start.key}
    found: list[tuple[int, Standardized, tuple[Step, ...]]] = []
    frontier: list[tuple[Standardized, tuple[Step, ...]]] = [(start, ())]
    for level in range(1, depth + 1):
        following: list[tuple[Standardized, tuple[Step, ...]]] = []

        def add(smiles: str, steps: tuple[Step, ...]) -> Standardized | None:
            std = parent_or_none(smiles)
            if std is None or std.key in seen:
                return None
            seen.add(std.key)
            found.append((level, std, steps))
            following.append((std, steps))
            return std

        for parent, path in frontier:
            step_back(parent, path, add)
        frontier = following
    return found


def _coverage(std: Standardized, reference: Any, groups: Any
              ) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """(listed substances the form is, (group id, status) of the groups it belongs to)."""
    listed = tuple((i.substance.id, i.substance.name) for i in reference.identify(std)
                   if i.relation != "excluded")
    return listed, tuple((g.id, g.status) for g in groups.match(std))


def _put_masks(parent: Standardized, path: tuple[Step, ...], rules: Any, carboxyl: Any,
               max_products: int, add: _Add) -> None:
    """One mask on ``parent``: every reverse rule, and after one that added a carboxylic acid,
    that acid's usual forms; ``add`` takes each (SMILES, steps) and returns it standardized when
    new."""
    acids = len(parent.mol.GetSubstructMatches(_ACID))
    for route in rules.reverse(parent, 1, max_products):
        steps = path + route.steps
        product = add(route.product, steps) or parent_or_none(route.product)
        if (product is None or route.steps[-1].rule_id in CARBOXYL_FORMS
                or len(product.mol.GetSubstructMatches(_ACID)) <= acids):
            continue
        for form in carboxyl.reverse(product, 2, max_products):
            add(form.product, steps + form.steps)






def masked_row(f: MaskedForm, screen_flag: str = "") -> dict[str, Any]:
    """The output columns (:data:`MASK_COLUMNS`) of one masked form; ``screen_flag`` is what the
    screen says of it (the command screens every form), empty when not screened."""
    return {"substance_id": f.substance_id, "substance_name": f.substance_name,
            "registry": f.registry, "masks": f.masks, "smiles": f.smiles, "key": f.key,
            "made_by": " | ".join(f"{s.rule_id} (reverse"
                                  f"{f'; reagent: {s.reagent}' if s.reagent else ''}) -> {s.product}"
                                  for s in f.made_by),
            "unmask_route": route_text(f.unmask), "unmask_steps": f.unmask.depth,
            "covered": f.covered,
            "covered_by": "; ".join([f"listed: {i}" for i, _ in f.listed]
                                    + [f"controlled drug: {i}" for i, _ in f.drugs]
                                    + [f"{s} group: {g}" for g, s in f.groups]),
            "listed": ";".join(i for i, _ in f.listed),
            "groups": ";".join(g for g, _ in f.groups),
            "known_designer_precursor": f.known, "screen_flag": screen_flag}


def enumerate_drug_precursors(drug: Any, *, targets: Any, unmask: Any, groups: Any,
                              reference: Any, depth: int = 1, known: Sequence[Any] = (),
                              max_products: int = 500, reverse: Any = None
                              ) -> tuple[list[MaskedForm], dict[str, int]]:
    """Return the pre-precursors of a controlled drug up to ``depth`` steps back, and counts.

    One step back is one forward synthesis rule run backwards, less its reagent (mephedrone
    from 2-bromo-4'-methylpropiophenone and methylamine), or one mask as in `enumerate_masked`
    (BMK from APAAN). ``drug`` is a `DrugTarget`; ``targets`` the `DrugTargets` of the screen,
    which proves every form: its forward search (unmasking and reagent steps together) must
    reach the drug with a flagging score within ``MAX_FORWARD_DEPTH`` steps, and that route is
    the form's ``unmask``. ``unmask`` is the unmasking RuleSet (its reverse SMARTS make the
    masks), ``reverse`` the reversed forward rules (`reverse_synthesis_rule_set` of
    ``targets.rules`` by default); ``groups``, ``reference`` and ``known`` as in
    `enumerate_masked`. Counts as there.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, not {depth}")
    if drug.parent is None:
        raise ValueError(f"{drug.name} has no structure to work back from")
    reverse = reverse if reverse is not None else reverse_synthesis_rule_set(targets.rules)
    start: Standardized = drug.parent
    carboxyl = type(unmask)([r for r in unmask.rules if r.id in CARBOXYL_FORMS], unmask.source)
    known_by_key = _known_keys(known)

    def step_back(parent: Standardized, path: tuple[Step, ...], add: _Add) -> None:
        for route in reverse.reverse(parent, 1, max_products):
            last = route.steps[-1]
            add(route.product, path + (replace(last, reagent=reverse.reagent(last.rule_id)),))
        _put_masks(parent, path, unmask, carboxyl, max_products, add)

    with quiet_rdkit():
        found = _walk_back(start, depth, step_back)
        forms = []
        unproven = 0
        for level, std, steps in found:
            forward = min(MAX_FORWARD_DEPTH, len(steps) + 1)
            hit = next((h for h in targets.routes(std, depth=forward, max_products=2000)
                        if h.substance_id == drug.id and h.score > 0 and h.route is not None),
                       None)
            if hit is None:
                unproven += 1
                continue
            is_drug = tuple((t.id, t.name) for t in targets.registry.identify(std))
            forms.append(MaskedForm(drug.id, drug.name, level, std.smiles, std.key, steps,
                                    hit.route, *_coverage(std, reference, groups),
                                    known_by_key.get(std.key, ""), DRUGS, is_drug))
    forms.sort(key=lambda f: (f.masks, f.unmask.depth, f.smiles))
    return forms, {"generated": len(found), "proven": len(forms), "unproven": unproven}


def _known_keys(known: Sequence[Any]) -> dict[str, str]:
    """Stereo-free key -> "id name" of the known designer precursors."""
    out: dict[str, str] = {}
    for c in known:
        try:
            out.setdefault(standardize_smiles(c.smiles).key, f"{c.id} {c.name}")
        except StandardizeError:
            continue
    return out


def enumeration_targets(reg: Any, drugs: Any, names: Sequence[str], registry: str = "auto",
                        notify: Callable[[str], None] = lambda _msg: None
                        ) -> list[tuple[str, Any]]:
    """(registry, entry) for each name: a listed substance of ``reg``, a controlled drug of
    ``drugs``, or (``registry="auto"``) whichever has the name, the precursor when both do
    (``notify`` is told)."""
    out: list[tuple[str, Any]] = []
    for name in names:
        precursor = drug = None
        if registry in ("auto", "precursors"):
            try:
                precursor = survey_substances(reg, [name])[0]
            except UnknownSubstanceError:
                if registry == "precursors":
                    raise
        if registry in ("auto", "drugs"):
            try:
                drug = drugs.find(name)
            except UnknownSubstanceError:
                if registry == "drugs":
                    raise
        if precursor is None and drug is None:
            raise UnknownSubstanceError(
                f"{name!r} is neither a listed substance nor a controlled drug; try "
                "`precursor-screen list --search TEXT` or `precursor-screen list --drugs "
                "--search TEXT`")
        if precursor is not None and drug is not None:
            notify(f"note: {name!r} names the listed substance {precursor.name} and the "
                   f"controlled drug {drug.name}; enumerating the listed substance "
                   "(--registry drugs for the drug)")
        entry = (PRECURSORS, precursor) if precursor is not None else (DRUGS, drug)
        if entry not in out:
            out.append(entry)
    return out


def enumeration_summary(target: Any, registry: str, forms: Sequence[MaskedForm],
                        stats: dict[str, int], depth: int) -> str:
    """One line on what `enumerate_masked` or `enumerate_drug_precursors` found for a target:
    forms per depth, and how many the list, an adopted group or only a draft group covers."""
    what = "pre-precursors and masked forms" if registry == DRUGS else "masked forms"
    per_depth = ", ".join(f"{n} at {d}" for d in range(1, depth + 1)
                          if (n := sum(1 for f in forms if f.masks == d)))
    covered = sum(1 for f in forms if f.covered in ("listed", "controlled drug", "adopted group"))
    return (f"{target.name} ({registry}): {len(forms)} {what} up to {depth} step(s)"
            + (f" ({per_depth})" if per_depth else "") + f"; {covered} "
            f"covered by the list or an adopted group, "
            f"{sum(1 for f in forms if f.covered == 'draft group')} by draft groups "
            f"only, {sum(1 for f in forms if f.covered == 'no')} not at all"
            + (f"; {stats['unproven']} reverse products dropped (not undone by the "
               "forward rules)" if stats["unproven"] else ""))
