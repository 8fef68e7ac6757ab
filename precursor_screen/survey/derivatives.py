"""Library compounds related to a listed substance: which, how, and why, ranked.

For each listed substance S (its standardized parent) a library compound C is a derivative when

* ``identical``: C has S's parent structure (a salt, a stereoisomer, S itself);
* ``converts``: the conversion rules turn C into S (``RuleSet.apply``, up to ``depth`` steps);
* ``group``: C is a member of a generic group whose ``parents`` name S (shipped and draft groups);
* ``contains``: S is a substructure of C;
* ``similar``: Morgan radius-2 Tanimoto of C to S at or above the threshold (or in the top k);
* ``contained_in``: C is a substructure of S.

Every relation is found exactly, with the index doing the narrowing and RDKit the deciding:
similarity is the exact Tanimoto search; containment the pattern-fingerprint screen and RDKit's
match; a group's candidates are the rows matching one of its SMARTS, each then judged by
:meth:`GroupSet.is_member` (exclusions, size limit); conversion candidates are the rows holding
S's refined skeleton (`precursor_screen.rules.gates`: unmasking rules never build a carbon, a
ring, an aromatic ring or an inner heteroatom, nor put a heteroatom on a carbon, so a compound
without it cannot give S), each then run through the rules. The tests hold the answer to a plain RDKit scan of every row.

Ranking: strongest relation first (in the order above), then similarity, then row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rdkit import Chem

from precursor_screen.chem.parse import quiet_rdkit
from precursor_screen.chem.standardize import (
    StandardizeError,
    match_key,
    standardize_smiles,
)
from precursor_screen.errors import UnknownSubstanceError
from precursor_screen.parallel import ordered_map
from precursor_screen.results import DERIVATIVES, names, route_text
from precursor_screen.rules.gates import RouteGate, rules_keep_skeletons, skeleton_gates
from precursor_screen.types import Route

__all__ = ["Derivative", "DerivativeParameters", "RELATIONS", "find_derivatives",
           "derivative_row", "derivative_rows", "DERIVATIVE_COLUMNS", "survey_substances"]

RELATIONS = ("identical", "converts", "group", "contains", "similar", "contained_in")
"""Relations, strongest first (the ranking order)."""
_STRENGTH = {r: i for i, r in enumerate(RELATIONS)}
_CHUNK = 256   # conversion candidates per worker task

DERIVATIVE_COLUMNS = names(DERIVATIVES)


@dataclass(frozen=True, slots=True)
class DerivativeParameters:
    """What counts as a derivative; recorded in the output's metadata."""

    threshold: float | None = 0.4     # similarity threshold (None: use top_k)
    top_k: int | None = None          # the k most similar instead of a threshold
    relations: tuple[str, ...] = RELATIONS
    depth: int = 2                    # conversion steps
    max_products: int = 10_000        # distinct products per compound (never reached in practice)

    def as_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "top_k": self.top_k,
                "relations": list(self.relations), "depth": self.depth,
                "max_products": self.max_products}


@dataclass(frozen=True, slots=True)
class Derivative:
    """One library compound related to one listed substance, with every relation found."""

    substance_id: str
    substance_name: str
    row: int                          # global row in the library index
    relations: tuple[str, ...]        # strongest first
    similarity: float                 # Tanimoto to the substance (always computed)
    reasons: tuple[str, ...]          # one sentence per relation, same order
    route: Route | None = None
    group_ids: tuple[str, ...] = ()
    atoms_added: int = 0              # heavy atoms of the compound minus the substance's
    id: str = ""
    smiles: str = ""

    @property
    def relation(self) -> str:
        return self.relations[0]

    @property
    def reason(self) -> str:
        return self.reasons[0]


def survey_substances(reference: Any, names: Sequence[str] = (), *, all_: bool = False,
                      include_bulk: bool = False) -> list[Any]:
    """The listed substances to survey: named ones (id, name, synonym or CAS), or all of them.

    With ``all_`` every organic structure of the list, without bulk Category 2A/2B/3 chemicals
    (every acetate ester would be a 'derivative' of acetic anhydride) unless ``include_bulk``;
    a named substance is always taken.
    """
    if all_:
        return [s for s in reference.structures() if not s.is_inorganic
                and (include_bulk or not s.is_bulk)]
    out = []
    for name in names:
        s = reference.find(name)
        if s.parent is None:
            raise UnknownSubstanceError(f"{s.name} is not one structure (a product category); "
                                        "there is nothing to compare with")
        if s not in out:
            out.append(s)
    return out


def find_derivatives(library: Any, substances: Sequence[Any], *, rules: Any, groups: Any,
                     parameters: DerivativeParameters | None = None, jobs: int = 1,
                     client: Any = None) -> list[Derivative]:
    """Return every library compound related to each substance, ranked per substance.

    ``library`` is a :class:`~precursor_screen.survey.library.LibraryIndex`, ``substances``
    Registry entries (with their standardized parent), ``rules`` a RuleSet, ``groups`` a
    GroupSet (shipped groups, a user's draft, or both). ``jobs`` processes run the conversion
    rules; ``client`` (Dask) runs the index searches shard by shard.
    """
    p = parameters or DerivativeParameters()
    unknown = set(p.relations) - set(RELATIONS)
    if unknown:
        raise ValueError(f"unknown relation(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(RELATIONS)}")
    found: dict[tuple[int, int], _Found] = {}   # (substance index, row) -> evidence
    matched: dict[str, list[int]] = {}           # group SMARTS -> library rows
    targets = [s.parent for s in substances]
    with quiet_rdkit():
        if "similar" in p.relations and targets:
            queries = library.fingerprints([t.mol for t in targets])
            hits = (library.top_k(queries, p.top_k, client=client) if p.top_k
                    else library.similar(queries, float(p.threshold or 0.0), client=client))
            for si, s in enumerate(substances):
                rows, scores = hits.query(si)
                for row, score in zip(rows.tolist(), scores.tolist()):
                    _add(found, si, row, "similar",
                         f"Morgan radius-2 Tanimoto {score:.3f} to {s.name}")
        for si, s in enumerate(substances):
            parent = s.parent
            n = parent.mol.GetNumHeavyAtoms()
            if "contains" in p.relations or "identical" in p.relations:
                rows = library.containing(parent.mol, client=client)
                info = library.rows(rows, ("key", "smiles", "heavy_atoms"))
                for row, key, smi, size in zip(rows.tolist(), info["key"], info["smiles"],
                                               info["heavy_atoms"]):
                    if key == parent.key:
                        if "identical" in p.relations:
                            what = (f"is {s.name}" if smi == parent.smiles
                                    else f"is a stereoisomer of {s.name}")
                            _add(found, si, row, "identical",
                                 f"{what} (same parent structure; salts count as the substance)")
                    elif "contains" in p.relations:
                        added = int(size) - n
                        _add(found, si, row, "contains",
                             f"contains the whole of {s.name} with {added} heavy atom"
                             f"{'s' if added != 1 else ''} added")
            if "contained_in" in p.relations:
                rows = library.contained_in(parent.mol, client=client)
                info = library.rows(rows, ("key", "heavy_atoms"))
                for row, key, size in zip(rows.tolist(), info["key"], info["heavy_atoms"]):
                    if key != parent.key:
                        removed = n - int(size)
                        _add(found, si, row, "contained_in",
                             f"is a substructure of {s.name}, {removed} heavy atom"
                             f"{'s' if removed != 1 else ''} smaller")
            if "group" in p.relations:
                _groups(library, si, s, groups, found, client, matched)
        if "converts" in p.relations:
            _conversions(library, substances, rules, p, jobs, client, found)
    return _ranked(library, substances, found)


# ---------------------------------------------------------------------- the relations


@dataclass
class _Found:
    relations: dict[str, str] = field(default_factory=dict)   # relation -> reason
    route: Route | None = None
    group_ids: list[str] = field(default_factory=list)


def _add(found: dict[tuple[int, int], _Found], si: int, row: int, relation: str,
         reason: str) -> _Found:
    entry = found.setdefault((si, row), _Found())
    entry.relations.setdefault(relation, reason)
    return entry


def _groups(library: Any, si: int, s: Any, groups: Any, found: dict[tuple[int, int], _Found],
            client: Any, matched: dict[str, list[int]]) -> None:
    """Members of the groups naming ``s`` as a parent: SMARTS candidates, then is_member.

    ``matched`` caches each SMARTS's rows across substances (BMK and PMK share groups).
    """
    for g in groups:
        if s.id not in g.parents:
            continue
        candidates: set[int] = set()
        for pattern in g.smarts:
            if pattern not in matched:
                matched[pattern] = library.smarts(pattern, client=client).tolist()
            candidates.update(matched[pattern])
        rows = sorted(candidates)
        info = library.rows(rows, ("smiles",))
        status = "adopted" if g.adopted else "draft"
        for row, smi in zip(rows, info["smiles"]):
            try:
                parent = standardize_smiles(smi)
            except StandardizeError:  # pragma: no cover - stored parents always standardize
                continue
            if groups.is_member(parent, g):
                entry = _add(found, si, row, "group",
                             f"member of the {status} group '{g.title}' ({g.id})")
                if g.id not in entry.group_ids:
                    entry.group_ids.append(g.id)


def _conversions(library: Any, substances: Sequence[Any], rules: Any, p: DerivativeParameters,
                 jobs: int, client: Any, found: dict[tuple[int, int], _Found]) -> None:
    """Rows the rules turn into a substance: skeleton-gate candidates, then RuleSet.apply."""
    refined = rules_keep_skeletons(rules)
    wanted: dict[int, list[int]] = {}   # row -> substance indexes whose skeleton it holds
    for si, s in enumerate(substances):
        rows: set[int] = set()
        for gate in _conversion_gates(s.parent.mol, refined):
            rows.update(library.containing(gate, client=client).tolist())
        for row in rows:
            wanted.setdefault(row, []).append(si)
    if not wanted:
        return
    ordered = sorted(wanted)
    info = library.rows(ordered, ("smiles", "key"))
    targets = [(s.parent.key, s.parent.mol.GetNumHeavyAtoms(),
                tuple(smi for _, smi in s.excluded_keys)) for s in substances]
    tasks = []
    for start in range(0, len(ordered), _CHUNK):
        chunk = []
        for row, smi, key in zip(ordered[start:start + _CHUNK], info["smiles"][start:start + _CHUNK],
                                 info["key"][start:start + _CHUNK]):
            mine = [si for si in wanted[row] if targets[si][0] != key]   # not the substance itself
            if mine:
                chunk.append((row, smi, tuple(mine)))
        if chunk:
            tasks.append(chunk)
    args = (rules, tuple(targets), p.depth, p.max_products)
    for row, si, route in _run_tasks(_convert_chunk, tasks, args, jobs):
        s = substances[si]
        steps = "one step" if route.depth == 1 else f"{route.depth} steps"
        entry = _add(found, si, row, "converts",
                     f"converts in {steps} to {s.name}: {route_text(route)}")
        entry.route = entry.route or route


def _conversion_gates(target: Chem.Mol, refined: bool) -> list[Chem.Mol]:
    """Queries every compound the unmasking rules can turn into ``target`` (in any number of
    steps) holds: its refined skeleton (`precursor_screen.rules.gates`: aromatic and ring bonds
    kept, carbons that bore a heteroatom still bear one) when the rules keep what that argument
    needs (``refined``, from `rules_keep_skeletons`), else the plain skeleton (elements and
    bonds). On MOSES the refined one leaves far fewer rows to run the rules on."""
    if refined:
        return [Chem.MolFromSmarts(smarts) for smarts, _size, _unmask
                in RouteGate([target], [], []).entries]
    return list(skeleton_gates([target]))


def _convert_chunk(chunk: Sequence[tuple[int, str, tuple[int, ...]]], rules: Any,
                   targets: Sequence[tuple[str, int, tuple[str, ...]]], depth: int,
                   max_products: int) -> list[tuple[int, int, Route]]:
    """For each (row, parent SMILES, substance indexes): the shortest route to each substance."""
    out = []
    with quiet_rdkit():
        for row, smi, mine in chunk:
            try:
                parent = standardize_smiles(smi)
            except StandardizeError:  # pragma: no cover - stored parents always standardize
                continue
            largest = max(targets[si][1] for si in mine)
            routes = rules.apply(parent, depth=depth, max_products=max_products,
                                 max_heavy_atoms=largest)
            by_key: dict[str, tuple[Route, str]] = {}
            for route in routes:
                mol = Chem.MolFromSmiles(route.product)
                if mol is not None:
                    by_key.setdefault(match_key(mol), (route, route.product))
            for si in mine:
                key, _, excluded = targets[si]
                hit = by_key.get(key)
                if hit is not None and hit[1] not in excluded:
                    out.append((row, si, hit[0]))
    return out


_WORKER_ARGS: tuple[Any, ...] = ()


def _init_worker(args: tuple[Any, ...]) -> None:
    global _WORKER_ARGS
    _WORKER_ARGS = args


def _work(chunk: Any) -> Any:
    return _convert_chunk(chunk, *_WORKER_ARGS)


def _run_tasks(fn: Any, tasks: Sequence[Any], args: tuple[Any, ...], jobs: int
               ) -> Iterable[tuple[int, int, Route]]:
    if jobs <= 1 or len(tasks) <= 1:
        for chunk in tasks:
            yield from fn(chunk, *args)
        return
    for result in ordered_map(_work, tasks, jobs, _init_worker, (args,)):
        yield from result


def _ranked(library: Any, substances: Sequence[Any], found: dict[tuple[int, int], _Found]
            ) -> list[Derivative]:
    out: list[Derivative] = []
    for si, s in enumerate(substances):
        rows = sorted(row for (sj, row) in found if sj == si)
        if not rows:
            continue
        query = library.fingerprints([s.parent.mol])
        scores = library.scores(query[0], rows)
        info = library.rows(rows, ("id", "smiles", "heavy_atoms"))
        n = s.parent.mol.GetNumHeavyAtoms()
        items = []
        for row, score, ident, smi, size in zip(rows, scores.tolist(), info["id"], info["smiles"],
                                                info["heavy_atoms"]):
            entry = found[(si, row)]
            order = sorted(entry.relations, key=_STRENGTH.__getitem__)
            items.append(Derivative(s.id, s.name, row, tuple(order), float(score),
                                    tuple(entry.relations[r] for r in order), entry.route,
                                    tuple(entry.group_ids), int(size) - n, str(ident), str(smi)))
        items.sort(key=lambda d: (_STRENGTH[d.relation], -d.similarity, d.row))
        out.extend(items)
    return out


def derivative_row(d: Derivative, rank: int) -> dict[str, Any]:
    """The output columns (:data:`DERIVATIVE_COLUMNS`) of one derivative."""
    return {"rank": rank, "substance_id": d.substance_id, "substance_name": d.substance_name,
            "row": d.row, "id": d.id, "smiles": d.smiles, "relation": d.relation,
            "relations": ";".join(d.relations), "similarity": round(d.similarity, 4),
            "reason": "; ".join(d.reasons), "route": route_text(d.route),
            "group_ids": ";".join(d.group_ids), "atoms_added": d.atoms_added}


def derivative_rows(found: Sequence[Derivative]) -> list[dict[str, Any]]:
    """The rows of ranked derivatives (as `find_derivatives` returns them), ranked 1, 2, ...
    within each substance."""
    rows = []
    rank, last = 0, None
    for d in found:
        rank = rank + 1 if d.substance_id == last else 1
        last = d.substance_id
        rows.append(derivative_row(d, rank))
    return rows
