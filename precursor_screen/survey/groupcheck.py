"""The impact of a draft generic group: what it covers, what it misses, what it catches besides.

For each group of a draft file (the shipped group format, see ``rules/data/groups.toml``):

* listed substances: ``covered`` when a member; ``missed`` when related to the group's parents
  but not a member. Related means: a parent itself, or the conversion rules turn it into a parent
  (``RuleSet.apply``; the route is the reason);
* known designer precursors (the shipped set): ``covered`` / ``missed`` the same way, a compound
  being related when its documented ``parent_id`` is a parent of the group, or the rules turn it
  into one;
* library compounds (an index): how many are ``captured``, with examples. Exact: every row
  matching one of the group's SMARTS (index screen, then RDKit) is judged by
  :meth:`GroupSet.is_member`, exclusions and size limit included;
* legitimate chemicals (the bundled set and any ``--legit`` files): members are ``collateral``.

Membership is always decided on the standardized parent, as the screen decides it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from precursor_screen.chem.parse import quiet_rdkit
from precursor_screen.chem.standardize import Standardized, parent_or_none, smiles_key
from precursor_screen.reference import builtin_registry
from precursor_screen.results import GROUP_FINDINGS, names, route_text

__all__ = ["Finding", "GroupImpact", "check_groups", "finding_row", "library_capture",
           "FINDING_COLUMNS", "VERDICTS"]

VERDICTS = ("covered", "missed", "captured", "collateral", "unreadable")
FINDING_COLUMNS = names(GROUP_FINDINGS)


@dataclass(frozen=True, slots=True)
class Finding:
    """One compound's place in a group's impact report."""

    group_id: str
    set: str           # "listed", "designer", "library", "legitimate" or a user file's name
    verdict: str       # one of VERDICTS
    id: str
    name: str
    smiles: str
    reason: str
    row: int | None = None   # library row


@dataclass
class GroupImpact:
    """Everything ``group check`` found for one group."""

    group: Any
    findings: list[Finding] = field(default_factory=list)
    library_captured: int | None = None     # None: no library given
    library_distinct: int | None = None     # distinct stereo-free keys among them
    set_sizes: dict[str, int] = field(default_factory=dict)

    def of(self, set_name: str, verdict: str) -> list[Finding]:
        return [f for f in self.findings if f.set == set_name and f.verdict == verdict]

    def counts(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.findings:
            out.setdefault(f.set, {}).setdefault(f.verdict, 0)
            out[f.set][f.verdict] += 1
        if self.library_captured is not None:
            out["library"] = {"captured": self.library_captured,
                              "distinct": self.library_distinct}
        return out

    def summary(self) -> str:
        """One line, each set in its own clause: listed substances and known designer precursors
        covered and missed, library compounds captured, legitimate chemicals caught.

        The library's captures get a clause of their own: they used to follow the designer
        precursors' "missed" count ("... missed 13, library 19 captured") and read as missed.
        """
        c = self.counts()
        listed, designer = c.get("listed", {}), c.get("designer", {})
        parts = [f"listed substances: {listed.get('covered', 0)} covered, "
                 f"{listed.get('missed', 0)} missed",
                 f"known designer precursors: {designer.get('covered', 0)} covered, "
                 f"{designer.get('missed', 0)} missed"]
        if self.library_captured is not None:
            parts.append(f"library: {self.library_captured} captured ({self.library_distinct} "
                         f"distinct) of {self.set_sizes.get('library', 0)}")
        collateral = sum(v.get("collateral", 0) for k, v in c.items()
                         if k not in ("listed", "designer", "library"))
        parts.append(f"legitimate chemicals caught: {collateral}")
        return f"[{self.group.id}] " + "; ".join(parts)


def check_groups(draft: Any, *, reference: Any, rules: Any, designer: Sequence[Any] = (),
                 legitimate: Mapping[str, Sequence[Any]] | None = None, library: Any = None,
                 examples: int = 20, depth: int = 2, client: Any = None) -> list[GroupImpact]:
    """Return one :class:`GroupImpact` per group of the ``draft`` GroupSet.

    ``reference`` is the Registry (listed substances), ``rules`` the RuleSet deciding relatedness,
    ``designer`` Compound records of known designer precursors, ``legitimate`` named sets of
    Compound records, ``library`` a LibraryIndex (optional), ``examples`` how many captured
    library compounds to list.
    """
    legitimate = dict(legitimate or {})
    listed = [s for s in reference.structures() if not s.is_inorganic]
    with quiet_rdkit():
        parsed_designer = [(c, parent_or_none(c.smiles)) for c in designer]
        parsed_legit = {name: [(c, parent_or_none(c.smiles) if c.status == "ok" else None) for c in comps]
                        for name, comps in legitimate.items()}
        impacts = []
        parent_keys = {g.id: _parent_keys(g, reference) for g in draft}
        largest = max((size for keys in parent_keys.values() for _, size in keys.values()),
                      default=0)
        routes: dict[str, list[tuple[str, Any]]] = {}   # key -> (product key, route), shortest first

        def products(std: Standardized) -> list[tuple[str, Any]]:
            if std.key not in routes:
                routes[std.key] = [(smiles_key(r.product), r) for r in
                                   rules.apply(std, depth=depth, max_heavy_atoms=largest,
                                               max_products=2000)]
            return routes[std.key]

        for group in draft:
            impact = GroupImpact(group)
            parents = parent_keys[group.id]

            def related(std: Standardized) -> str:
                if std.key in parents:
                    return f"is {parents[std.key][0]}, a parent of the group"
                for key, route in products(std) if parents else ():
                    if key in parents:
                        steps = "one step" if route.depth == 1 else f"{route.depth} steps"
                        return f"converts in {steps} to {parents[key][0]}: {route_text(route)}"
                return ""

            # listed substances
            for s in listed:
                std = s.parent
                if draft.is_member(std, group):
                    impact.findings.append(Finding(group.id, "listed", "covered", s.id, s.name,
                                                   std.smiles, _member_reason(group)))
                else:
                    why = related(std)
                    if why:
                        impact.findings.append(Finding(group.id, "listed", "missed", s.id, s.name,
                                                       std.smiles, f"not a member; {why}"))
            impact.set_sizes["listed"] = len(listed)
            # known designer precursors
            for c, std in parsed_designer:
                if std is None:
                    continue
                doc = f"documented {c.note} form of {c.parent_id}"
                if draft.is_member(std, group):
                    impact.findings.append(Finding(group.id, "designer", "covered", c.id, c.name,
                                                   std.smiles, f"{_member_reason(group)} ({doc})"))
                    continue
                why = (f"{doc}, a parent of the group" if c.parent_id in group.parents
                       else related(std))
                if why:
                    impact.findings.append(Finding(group.id, "designer", "missed", c.id, c.name,
                                                   std.smiles, f"not a member; {why}"))
            impact.set_sizes["designer"] = len(designer)
            # legitimate chemicals
            for name, comps in parsed_legit.items():
                impact.set_sizes[name] = len(comps)
                for c, std in comps:
                    if std is None:
                        impact.findings.append(Finding(group.id, name, "unreadable", c.id, c.name,
                                                       c.smiles, c.status if c.status != "ok"
                                                       else "cannot be standardized"))
                    elif draft.is_member(std, group):
                        what = f" ({c.note})" if c.note else ""
                        impact.findings.append(Finding(
                            group.id, name, "collateral", c.id, c.name, std.smiles,
                            f"legitimate chemical{what} caught: {_member_reason(group)}"))
            # the library
            if library is not None:
                _library(impact, draft, group, library, examples, client)
            impacts.append(impact)
    return impacts


def _library(impact: GroupImpact, draft: Any, group: Any, library: Any, examples: int,
             client: Any) -> None:
    captured, distinct, found = library_capture(draft, group, library, examples, client)
    for row, ident, smi in found:
        impact.findings.append(Finding(group.id, "library", "captured", ident, ident, smi,
                                       _member_reason(group), row))
    impact.library_captured = captured
    impact.library_distinct = distinct
    impact.set_sizes["library"] = len(library)


def library_capture(draft: Any, group: Any, library: Any, examples: int, client: Any = None
                    ) -> tuple[int, int, list[tuple[int, str, str]]]:
    """Library compounds that are members of ``group`` (of GroupSet ``draft``): how many, how
    many distinct stereo-free keys, and the first ``examples`` as (row, id, SMILES). Exact: every
    row matching one of the group's SMARTS (index screen, then RDKit) is judged by
    :meth:`GroupSet.is_member`, exclusions and size limit included."""
    candidates: set[int] = set()
    for pattern in group.smarts:
        candidates.update(library.smarts(pattern, client=client).tolist())
    rows = sorted(candidates)
    info = library.rows(rows, ("id", "smiles", "key", "heavy_atoms"))
    captured, keys = 0, set()
    found: list[tuple[int, str, str]] = []
    for row, ident, smi, key, size in zip(rows, info["id"], info["smiles"], info["key"],
                                          info["heavy_atoms"]):
        if group.max_heavy_atoms is not None and size > group.max_heavy_atoms:
            continue
        std = parent_or_none(smi)
        if std is None or not draft.is_member(std, group):
            continue
        captured += 1
        keys.add(key)
        if captured <= examples:
            found.append((row, str(ident), smi))
    return captured, len(keys), found


def _parent_keys(group: Any, reference: Any) -> dict[str, tuple[str, int]]:
    """Stereo-free key -> (name, heavy atoms) of the group's parents found in the registry."""
    full = builtin_registry()
    out = {}
    for pid in group.parents:
        for reg in (reference, full):
            try:
                s = reg.get(pid)
            except KeyError:
                continue
            if s.parent is not None:
                out[s.parent.key] = (f"{s.name} [{s.id}]", s.parent.mol.GetNumHeavyAtoms())
            break
    return out


def _member_reason(group: Any) -> str:
    return f"member of {'adopted' if group.adopted else 'draft'} group {group.id}"






def finding_row(f: Finding) -> dict[str, Any]:
    """The output columns (:data:`FINDING_COLUMNS`) of one finding."""
    return {"group_id": f.group_id, "set": f.set, "verdict": f.verdict, "row": f.row,
            "id": f.id, "name": f.name, "smiles": f.smiles, "reason": f.reason}


def impacts_json(impacts: Iterable[GroupImpact]) -> list[dict[str, Any]]:
    """The report as data: one dict per group, findings grouped by set and verdict."""
    out = []
    for imp in impacts:
        g = imp.group
        sets: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for f in imp.findings:
            entry = {k: v for k, v in finding_row(f).items() if k not in ("group_id", "set",
                                                                          "verdict")}
            sets.setdefault(f.set, {}).setdefault(f.verdict, []).append(entry)
        out.append({"id": g.id, "title": g.title, "status": g.status, "parents": list(g.parents),
                    "smarts": list(g.smarts), "exclusions": list(g.exclusions),
                    "max_heavy_atoms": g.max_heavy_atoms, "source": g.source,
                    "counts": imp.counts(), "set_sizes": imp.set_sizes, "findings": sets,
                    "library": None if imp.library_captured is None else {
                        "captured": imp.library_captured, "distinct": imp.library_distinct}})
    return out
