"""The screen: the one place that knows the order of the stages.

    record -> parse -> standardize -> identity -> similarity -> substructure -> conversions
           -> controlled drugs -> groups -> decide flag, score and reason -> Verdict

Every record yields exactly one Verdict. The evidence is weighed as ``docs/chemistry.md``
explains: a conversion counts when the listed product keeps most of the candidate (or what comes
off is a small masking group) and the target is not a bulk Category 2/3 chemical bought by the
tonne; containment counts only when the listed substance is most of the candidate; fingerprint
similarity alone is a ranked second opinion and flags only when high. Each kind of evidence
scores in its own band (:data:`SCORE_BANDS`); the strongest hit decides the flag.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from rdkit import Chem

from precursor_screen.chem.fingerprint import load_recipes
from precursor_screen.chem.parse import parse_record, quiet_rdkit
from precursor_screen.chem.standardize import (
    Standardized,
    StandardizeError,
    standardize,
    standardize_smiles,
)
from precursor_screen.io.readers import Record
from precursor_screen.parallel import dask_ordered_map, dask_share, dask_shared, ordered_map
from precursor_screen.reference import builtin_registry, load_reference
from precursor_screen.rules.conversions import load_conversion_rules
from precursor_screen.rules.drug_targets import DrugTargets
from precursor_screen.rules.gates import (
    RouteGate,
    flag_floor,
    rules_keep_skeletons,
    skeleton_gates,
)
from precursor_screen.rules.groups import load_groups
from precursor_screen.search.substructure import SubstructureIndex
from precursor_screen.search.tanimoto import TanimotoIndex
from precursor_screen.types import Flag, Hit, Route, Verdict

__all__ = ["Screener", "ScreenParameters", "screen", "SCORE_BANDS", "FLAG_FLOOR"]

# -- score bands: every hit's score comes from these --------------------------------------------

SCORE_LISTED = 1.0
"""The candidate is a listed substance: itself, a salt, a stereoisomer, or in a mixture."""
SCORE_NOT_YET_LISTED = 0.7
"""The candidate is a substance only proposed for control or on a watch list (``--include``)."""
SCORE_EXCLUDED = 0.0
"""A stereoisomer the annex excludes (cathine from norephedrine): reported, never flagged."""
CONVERTS_BASE, CONVERTS_KEPT, CONVERTS_PER_STEP = 0.9, 0.05, 0.03
"""A conversion to a listed substance scores 0.9 + 0.05 x (share of the candidate the product
keeps) - 0.03 per step beyond the first: 0.87 to 0.95."""
GROUP_ADOPTED, GROUP_DRAFT = 0.8, 0.75
"""Membership of a generic group a legal act defines, or of a draft group."""
CONTAINS_BASE, CONTAINS_WEIGHT = 0.55, 0.15
"""A listed substance is most of the candidate: 0.55 + 0.15 x its share (0.64 to 0.70)."""
SIMILAR_BASE, SIMILAR_WEIGHT = 0.45, 0.25
"""Tanimoto at or above the similar threshold (0.7): 0.45 + 0.25 x Tanimoto (0.625 to 0.70)."""
WEAK_WEIGHT = 0.3
"""Evidence that never flags: 0.3 x Tanimoto below the threshold or to a bulk chemical, and
0.3 x share for a candidate inside a listed substance."""
NONE_WEIGHT, NONE_CAP = 0.4, 0.99
"""A row flagged ``none`` scores 0.4 x its best Tanimoto (capped at 0.99): below 0.4."""
FLAG_FLOOR = 0.45
"""Evidence scoring below this is reported but raises no flag (weak similarity, containment in a
listed substance, conversions to bulk chemicals)."""
ParentKey = tuple[str, tuple[str, ...], tuple[str, ...]]
"""A standardized parent as the verdict sees it: (isomeric SMILES, steps, mixture components)."""
REPEATS_KEPT = 20_000
"""Verdicts kept per process to answer repeated structures (by input text and by parent), each."""
DRUG_STAGE_BELOW = 0.85
"""The drug stage runs only while no hit scores this much (a listed precursor or a conversion to
one is the stronger finding); `check` (keep_all) runs it always."""

SCORE_BANDS: tuple[tuple[str, str, str], ...] = (
    ("scheduled", "identical, salt, stereoisomer, mixture", "1.0"),
    ("convertible", "converts", "0.87-0.95: 0.9 + 0.05 x kept share - 0.03 per extra step"),
    ("drug-precursor", "drug", "0.80-0.84 (`rules/drug_targets.py`: listed drug or drug family, "
                               "one step or two)"),
    ("group", "group", "0.8 adopted, 0.75 draft"),
    ("similar", "identical to a proposed or watched substance", "0.7"),
    ("similar", "contains", "0.64-0.70: 0.55 + 0.15 x the listed substance's share"),
    ("similar", "similar", "0.625-0.70: 0.45 + 0.25 x Tanimoto (>= 0.7)"),
    ("none", "weaker evidence only", "below 0.4: 0.4 x best Tanimoto"),
)
"""The flag, the evidence behind it and its score, for the README and the report."""


@dataclass(frozen=True)
class ScreenParameters:
    """Thresholds of the screen; recorded in every output's metadata.

    The defaults were chosen on the evaluation sets in ``evaluation/`` (README: detection quality).
    """

    depth: int = 2                      # conversion steps
    max_products: int = 200             # cap on distinct products per candidate
    min_kept_fraction: float = 0.45     # listed product heavy atoms / candidate heavy atoms ...
    max_removed_atoms: int = 10         # ... or at most this many heavy atoms come off
    similar_threshold: float = 0.7      # Morgan2 Tanimoto that flags `similar` on its own
    contains_min_fraction: float = 0.6  # listed substance >= this share of the candidate
    contained_min_fraction: float = 0.75  # candidate >= this share of the listed substance
    min_target_atoms: int = 6           # containment of smaller listed substances means nothing
    flag_bulk_targets: bool = False     # let conversions to Category 2A/2B/3 chemicals flag
    max_heavy_atoms: int = 200          # larger inputs get a status instead of a verdict
    top_k: int = 3                      # nearest listed substances kept as evidence
    drug_targets: bool = True           # look for routes to controlled drugs (drug-precursor)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Screener:
    """Screens molecules against a reference list (the built-in registry by default).

    Built once (registry, fingerprints, index, rules and groups compiled), then reused for any
    number of molecules; it pickles, so worker processes rebuild nothing. It remembers the
    verdicts of the latest ``repeats`` structures (per process) and answers a repeated one from
    them, with the same rows (0: every record is screened afresh).

    >>> s = Screener()
    >>> v = s.check("COC(=O)C(C(C)=O)c1ccccc1")
    >>> v.flag.value, v.match_id
    ('scheduled', 'mapa')
    """

    def __init__(self, reference: Any = None, *, as_of: Any = None, include: Sequence[str] = (),
                 extra_references: Sequence[Any] = (), parameters: ScreenParameters | None = None,
                 rules: Any = None, groups: Any = None, drugs: Any = None,
                 repeats: int = REPEATS_KEPT) -> None:
        reg = load_reference(reference, as_of=as_of, include=include,
                             extra_references=extra_references)
        self.reference = reg
        self.parameters = parameters or ScreenParameters()
        self.rules = rules if rules is not None else load_conversion_rules()
        self.groups = groups if groups is not None else load_groups()
        # controlled drugs reached by unmasking and reagent steps (drug-precursor flag)
        self.drugs: DrugTargets = (drugs if drugs is not None
                                   else DrugTargets(as_of=as_of, unmask=self.rules))
        self._organic = [s for s in reg.structures() if not s.is_inorganic]
        self._bulk_keys = frozenset(s.parent.key for s in builtin_registry().structures()
                                    if s.is_bulk and s.parent is not None)
        mols = [s.parent.mol for s in self._organic]  # type: ignore[union-attr]
        self.recipe = load_recipes()["morgan2"]
        packed, counts = self.recipe.packed(mols)
        self._index = TanimotoIndex(packed, counts)
        self._substructures = SubstructureIndex(mols)
        self._sizes = [m.GetNumHeavyAtoms() for m in mols]
        self._max_target_atoms = max(self._sizes, default=0)
        self._gates, self._route_gate = self._plan_gates()
        self._group_gates, self._gated_groups, self._ungated_groups = self._plan_groups()
        self._by_key: dict[str, list[Any]] = {}
        for s in self._organic:
            self._by_key.setdefault(s.parent.key, []).append(s)  # type: ignore[union-attr]
        self._key_cache: dict[str, str] = {}
        self._repeats = _Repeats(repeats)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the verdicts remembered for repeats (a worker starts its own)."""
        return {k: (_Repeats(v.size) if k == "_repeats" else v) for k, v in self.__dict__.items()}

    # -- public API ----------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """Parameters and versions of this screener, for an output's run metadata."""
        return {"screen": self.parameters.as_dict(), "fingerprint": self.recipe.name,
                "conversion_rules": len(self.rules.rules), "groups": len(self.groups.ids),
                "drug_targets": self.drugs.metadata()}

    def check(self, smiles: str, id: str = "") -> Verdict:
        """Screen one SMILES (or a listed name, CAS or id, or a controlled drug's) and keep every
        piece of evidence."""
        text = smiles
        try:
            text = self.reference.find(smiles).smiles or smiles
        except Exception:  # noqa: BLE001 - not a name on the list: treat as SMILES
            try:
                text = self.drugs.registry.find(smiles).smiles
            except Exception:  # noqa: BLE001 - not a drug's name either
                pass
        return next(iter(self._screen_chunk([Record(0, id or smiles, text)], keep_all=True)))

    def screen(self, molecules: Iterable[Record | str], *, jobs: int = 1,
               chunk_size: int = 256, client: Any = None) -> Iterator[Verdict]:
        """Yield one Verdict per input, in input order; on ``jobs`` worker processes, or on the
        workers of a Dask ``client`` (``parallel.dask_client``: a LocalCluster or a running
        cluster), with the same verdicts either way.

        On Dask this screener is sent to each worker once and unpickled there (workers need
        the package, not the reference files), chunks of ``chunk_size`` records stream to the
        workers a bounded number at a time, and verdicts come back in input order.
        """
        records = (m if isinstance(m, Record) else Record(i, str(i), m) for i, m in enumerate(molecules))
        chunks = _chunks(records, chunk_size)
        if client is not None:
            shared = dask_share(client, self)
            for verdicts in dask_ordered_map(client, _dask_work, chunks, shared):
                yield from verdicts
            return
        if jobs <= 1:
            for chunk in chunks:
                yield from self._screen_chunk(chunk)
            return
        for verdicts in ordered_map(_work, chunks, jobs, _init_worker, (self,)):
            yield from verdicts

    # -- stages --------------------------------------------------------------------------------

    def _screen_chunk(self, records: list[Record], keep_all: bool = False) -> list[Verdict]:
        """One Verdict per record, in order; a structure seen before in this process (the same
        SMILES text, or the same standardized parent) is answered from the earlier verdict, so
        it is screened once (:class:`_Repeats`)."""
        repeats = self._repeats
        if keep_all or not repeats.size:
            return self._judge_all([self._prepare(rec) for rec in records], keep_all)
        out: list[Verdict | None] = [None] * len(records)
        as_read: list[Record] = list(records)      # each record as prepared (SDF: SMILES added)
        texts: list[str | None] = [None] * len(records)
        waiting: dict[ParentKey, list[int]] = {}   # parent -> rows to answer
        todo: list[tuple[Record, Standardized | None, str]] = []
        for i, rec in enumerate(records):
            text = texts[i] = rec.smiles if rec.molblock is None and not rec.error else None
            known = repeats.by_text(text) if text is not None else None
            if known is not None:
                out[i] = _for_record(known, rec)
                repeats.answered += 1
                continue
            prepared = self._prepare(rec)
            as_read[i], std, problem = prepared
            if std is None:
                out[i] = Verdict(rec.row, rec.id, as_read[i].smiles, problem, None)
                repeats.add(text, None, out[i])
                continue
            key = (std.smiles, std.steps, std.components)
            known = repeats.by_parent(key)
            if known is not None:
                out[i] = _for_record(known, as_read[i])
                repeats.add(text, None, known)
                repeats.answered += 1
            elif key in waiting:
                waiting[key].append(i)
                repeats.answered += 1
            else:
                waiting[key] = [i]
                todo.append(prepared)
        for (key, rows), verdict in zip(waiting.items(), self._judge_all(todo, keep_all)):
            for i in rows:
                out[i] = _for_record(verdict, as_read[i])
                repeats.add(texts[i], key, verdict)
        return out  # type: ignore[return-value]  # every position was filled above

    def _judge_all(self, prepared: list[tuple[Record, Standardized | None, str]],
                   keep_all: bool) -> list[Verdict]:
        """Verdicts of prepared records: the nearest listed substances for all at once, then each
        record's evidence weighed."""
        organic = [(i, std) for i, (_, std, _) in enumerate(prepared) if std is not None and not std.inorganic]
        near: dict[int, list[tuple[int, float]]] = {}
        if organic:
            packed, _ = self.recipe.packed([std.mol for _, std in organic])
            for (i, _), hits in zip(organic, self._index.top_k(packed, self.parameters.top_k)):
                near[i] = hits
        out = []
        for i, (rec, std, problem) in enumerate(prepared):
            if std is None:
                out.append(Verdict(rec.row, rec.id, rec.smiles, problem, None))
                continue
            out.append(self._judge(rec, std, near.get(i, []), keep_all))
        return out

    def _prepare(self, rec: Record) -> tuple[Record, Standardized | None, str]:
        if rec.error:
            return rec, None, rec.error
        mol, problem = parse_record(rec.smiles, rec.molblock)
        if mol is None:
            return rec, None, problem
        try:
            std = standardize(mol, max_heavy_atoms=self.parameters.max_heavy_atoms)
        except StandardizeError as exc:
            return rec, None, str(exc)
        if rec.molblock is not None and not rec.smiles:
            rec = replace(rec, smiles=Chem.MolToSmiles(mol))
        return rec, std, ""

    def _judge(self, rec: Record, std: Standardized, near: list[tuple[int, float]],
               keep_all: bool) -> Verdict:
        """Weigh every stage's evidence for one parsed record (the stages in their order)."""
        p = self.parameters
        best_sim = near[0][1] if near else 0.0
        hits = self._identity(std)
        if std.inorganic:
            return self._verdict(rec, std, hits, 0.0, keep_all)
        identical = {h.substance_id for h in hits
                     if h.relation in ("identical", "salt", "stereoisomer", "excluded")}
        hits += self._nearest(near, identical)
        n_atoms = std.mol.GetNumHeavyAtoms()
        words = _Lazy(self._substructures.pattern_words, std.mol)
        # Conversions and containment can raise a flag only for a candidate holding a flaggable
        # listed substance's skeleton; `check` (keep_all) searches everything regardless.
        # Targets smaller than the floor cannot raise a flag from this candidate (a conversion
        # to them scores 0, containment needs 0.6 of the candidate): the gates may skip them.
        floor = flag_floor(n_atoms, p.min_kept_fraction, p.max_removed_atoms)
        gated = keep_all or self._gated(std.mol, floor)
        if gated:
            hits += self._containment(std.mol, words.value, n_atoms, identical)
            if not identical or keep_all:
                hits += self._conversions(std, n_atoms, floor, keep_all)
        if p.drug_targets and (keep_all or all(h.score < DRUG_STAGE_BELOW for h in hits)):
            hits += self._drug_routes(std, keep_all)
        hits += self._groups(std.mol, words, keep_all)
        return self._verdict(rec, std, hits, best_sim, keep_all)

    # -- the stages, each returning its hits -----------------------------------------------------

    def _identity(self, std: Standardized) -> list[Hit]:
        """1. The substance itself, a salt or a stereoisomer; components of a mixture too."""
        hits = [self._identity_hit(ident) for ident in self.reference.identify(std)]
        for comp in std.components:
            try:
                cstd = standardize(Chem.MolFromSmiles(comp))
            except StandardizeError:
                continue
            for ident in self.reference.identify(cstd):
                if ident.relation != "excluded":
                    s = ident.substance
                    hits.append(Hit("mixture", s.id, s.name, s.list_name, SCORE_LISTED,
                                    f"mixture containing {s.name} ({s.listing()})"))
        return hits

    def _nearest(self, near: list[tuple[int, float]], identical: set[str]) -> list[Hit]:
        """2. The nearest listed substances by fingerprint similarity."""
        hits = []
        for row, sim in near:
            s = self._organic[row]
            if s.id in identical:
                continue
            strength = WEAK_WEIGHT * sim if self._bulk(s) else self._similar_score(sim)
            hits.append(Hit("similar", s.id, s.name, s.list_name, strength,
                            f"Morgan radius-2 Tanimoto {sim:.2f} to {s.name} ({s.short_listing()})",
                            similarity=sim))
        return hits

    def _containment(self, mol: Chem.Mol, words: Any, n_atoms: int,
                     identical: set[str]) -> list[Hit]:
        """3. A listed substance inside the candidate (``contains``: flags when it is most of
        it), or the candidate inside a listed substance (``contained_in``: evidence only,
        turning a part into the whole is building, not unmasking)."""
        p = self.parameters
        hits = []
        containing, contained_in = self._substructures.relations(mol, words)
        for row in contained_in:  # listed substance inside candidate
            s = self._organic[row]
            size = self._sizes[row]
            if s.id in identical or size < p.min_target_atoms or self._bulk(s):
                continue
            frac = size / n_atoms
            if frac >= p.contains_min_fraction and not _ring_substituted(mol, s.parent.mol):
                added = n_atoms - size
                hits.append(Hit("contains", s.id, s.name, s.list_name,
                                CONTAINS_BASE + CONTAINS_WEIGHT * frac,
                                f"contains the whole of {s.name} ({s.short_listing()}) with {added} "
                                f"heavy atom{'s' if added != 1 else ''} added", atoms_added=added))
        for row in containing:  # candidate inside listed substance
            s = self._organic[row]
            size = self._sizes[row]
            if s.id in identical or self._bulk(s) or n_atoms < p.min_target_atoms:
                continue
            frac = n_atoms / size
            if frac >= p.contained_min_fraction:
                removed = size - n_atoms
                hits.append(Hit("contained_in", s.id, s.name, s.list_name, WEAK_WEIGHT * frac,
                                f"is a substructure of {s.name} ({s.short_listing()}), "
                                f"{removed} heavy atom{'s' if removed != 1 else ''} smaller",
                                atoms_removed=removed))
        return hits

    def _conversions(self, std: Standardized, n_atoms: int, floor: float,
                     keep_all: bool) -> list[Hit]:
        """4. Unmasking routes whose product is listed. The bulk screen expands an intermediate
        only while it holds a flaggable target's skeleton, as for the candidate: routes to bulk
        chemicals may then go unreported."""
        p = self.parameters
        last_step = None if keep_all else (lambda m: self._gated(m, floor, last_step=True))
        routes = self.rules.apply(std, depth=p.depth, max_products=p.max_products,
                                  max_heavy_atoms=self._max_target_atoms,
                                  last_step_gate=last_step)
        return [hit for route in routes if (hit := self._route_hit(route, n_atoms)) is not None]

    def _drug_routes(self, std: Standardized, keep_all: bool) -> list[Hit]:
        """5. Controlled drugs: the candidate is one, or reaches one by unmasking and reagent
        steps (``drug-precursor``)."""
        p = self.parameters
        return [*self.drugs.identify(std),
                *self.drugs.routes(std, depth=p.depth, max_products=p.max_products,
                                   min_kept_fraction=p.min_kept_fraction,
                                   max_removed_atoms=p.max_removed_atoms,
                                   flag_only=not keep_all)]

    def _groups(self, mol: Chem.Mol, words: _Lazy, keep_all: bool) -> list[Hit]:
        """6. Generic groups. The pattern fingerprint screens the groups' queries only when
        stage 3 made it: making it for this costs more than matching the dozen groups directly
        (0.26 s vs 0.11 s on the 433 of 3,000 MOSES molecules that pass the group gate)."""
        screen = words.value if words.done else None
        if keep_all or any(mol.HasSubstructMatch(q) for q in self._group_gates):
            groups = self.groups.match(mol, screen)
        elif self._ungated_groups:
            groups = self.groups.match(mol, screen, only=self._ungated_groups)
        else:
            groups = []
        hits = []
        for g in groups:
            parents = ", ".join(g.parents)
            status = "adopted" if g.status == "adopted" else "draft"
            hits.append(Hit("group", g.parents[0] if g.parents else "", g.title, "groups",
                            GROUP_ADOPTED if status == "adopted" else GROUP_DRAFT,
                            f"member of the {status} group '{g.title}' ({g.id}; parents {parents})",
                            group_id=g.id))
        return hits

    def _plan_groups(self) -> tuple[tuple[Chem.Mol, ...], frozenset[str], frozenset[str]]:
        """Gate queries for the groups, and which groups they may skip.

        A group is skipped for a candidate failing the gate only when every one of its must_match
        examples passes it: the gate is built from the skeletons of the groups' parents (looked up
        in the full built-in registry, whatever list is screened), which designer forms keep.
        """
        full = builtin_registry()
        parents = []
        for g in self.groups:
            for pid in g.parents:
                try:
                    sub = full.get(pid)
                except KeyError:
                    continue
                if sub.parent is not None and not sub.is_inorganic:
                    parents.append(sub.parent.mol)
        gates = skeleton_gates(parents)
        gated, ungated = set(), set()
        for g in self.groups:
            try:
                ok = bool(g.must_match) and all(
                    any(standardize_smiles(ex.smiles).mol.HasSubstructMatch(q) for q in gates)
                    for ex in g.must_match)
            except StandardizeError:
                ok = False
            (gated if ok else ungated).add(g.id)
        return gates, frozenset(gated), frozenset(ungated)

    def _gated(self, mol: Chem.Mol, floor: float = 0.0, last_step: bool = False) -> bool:
        """True when ``mol`` holds the skeleton of a flaggable listed substance (of at least
        ``floor`` heavy atoms)."""
        if self._route_gate is not None:
            return (self._route_gate.unmask_ok(mol, floor) if last_step
                    else self._route_gate.passes(mol, floor))
        return any(mol.HasSubstructMatch(q) for q in self._gates)

    def _plan_gates(self) -> tuple[tuple[Chem.Mol, ...], RouteGate | None]:
        """Skeleton queries of the flaggable listed substances: refined (`rules.gates`) when the
        rules keep what the argument needs, else the plain skeletons (elements and bonds only)."""
        targets = [s.parent.mol for s in self._organic if not self._bulk(s)]  # type: ignore[union-attr]
        if targets and rules_keep_skeletons(self.rules):
            return (), RouteGate(targets, [], [])
        return skeleton_gates(targets), None

    # -- evidence ------------------------------------------------------------------------------

    def _bulk(self, s: Any) -> bool:
        """A bulk Category 2A/2B/3 chemical: its own category, or for an entry of a user list
        the category of the same substance on the built-in list."""
        if self.parameters.flag_bulk_targets:
            return False
        if s.eu_category:
            return s.is_bulk
        return s.list_name != "built-in" and s.parent is not None and s.parent.key in self._bulk_keys

    def _similar_score(self, sim: float) -> float:
        return (WEAK_WEIGHT * sim if sim < self.parameters.similar_threshold
                else SIMILAR_BASE + SIMILAR_WEIGHT * sim)

    def _identity_hit(self, ident: Any) -> Hit:
        s = ident.substance
        if ident.relation == "excluded":
            return Hit("excluded", s.id, s.name, s.list_name, SCORE_EXCLUDED,
                       f"{ident.note}: not a scheduled precursor under {s.short_listing()}")
        what = {"identical": f"is {s.name}", "salt": f"is {ident.note}",
                "stereoisomer": f"is {ident.note} (the annex covers stereoisomers)"}[ident.relation]
        if s.status != "scheduled" and s.list_name == "built-in":
            return Hit(ident.relation, s.id, s.name, s.list_name, SCORE_NOT_YET_LISTED,
                       f"{what}, {s.listing()}")
        return Hit(ident.relation, s.id, s.name, s.list_name, SCORE_LISTED,
                   f"{what}, {s.listing()}", similarity=1.0)

    def _product_key(self, smiles: str) -> str:
        key = self._key_cache.get(smiles)
        if key is None:
            mol = Chem.MolFromSmiles(smiles)
            key = Chem.MolToSmiles(mol, isomericSmiles=False) if mol is not None else ""
            if len(self._key_cache) > 100_000:
                self._key_cache.clear()
            self._key_cache[smiles] = key
        return key

    def _route_hit(self, route: Route, n_atoms: int) -> Hit | None:
        targets = self._by_key.get(self._product_key(route.product))
        if not targets:
            return None
        s = targets[0]
        mol = Chem.MolFromSmiles(route.product)
        if mol is not None and any(smi == Chem.MolToSmiles(mol) for _, smi in s.excluded_keys):
            return None  # e.g. a route to cathine is not a route to norephedrine
        size = mol.GetNumHeavyAtoms() if mol is not None else 0
        frac = size / n_atoms if n_atoms else 0.0
        removed = max(n_atoms - size, 0)
        steps_word = "one step" if route.depth == 1 else f"{route.depth} steps"
        via = "; then ".join(
            self._step_text(step) + ("" if i == route.depth - 1 else f" gives {step.product}")
            for i, step in enumerate(route.steps))
        reason = (f"converts in {steps_word} to {s.name} ({s.listing()}): {via} "
                  f"(keeps {size} of {n_atoms} heavy atoms)")
        weak = self._bulk(s) or (frac < self.parameters.min_kept_fraction
                                 and removed > self.parameters.max_removed_atoms)
        score = 0.0 if weak else (CONVERTS_BASE + CONVERTS_KEPT * min(frac, 1.0)
                                  - CONVERTS_PER_STEP * (route.depth - 1))
        if weak:
            why = "a bulk Category 2/3 chemical" if self._bulk(s) else "a small part of the candidate"
            reason += f"; not flagged: the product is {why}"
        return Hit("converts", s.id, s.name, s.list_name, score, reason, route=route,
                   atoms_removed=removed)

    def _step_text(self, step: Any) -> str:
        try:
            removes = self.rules.rule(step.rule_id).removes
        except Exception:  # noqa: BLE001 - a rule set without that rule: name only
            removes = ""
        if removes.startswith("nothing:") or not removes:
            return step.rule_name  # a split: the kept part is the product, the rest comes off
        if removes.startswith("nothing (") and removes.endswith(")"):
            return f"{step.rule_name} ({removes[9:-1]})"
        return f"{step.rule_name} (removes {removes})"

    def _verdict(self, rec: Record, std: Standardized, hits: list[Hit], best_sim: float,
                 keep_all: bool) -> Verdict:
        hits.sort(key=lambda h: -h.score)
        top = hits[0] if hits else None
        flag = Flag.NONE
        if top is not None and top.score >= FLAG_FLOOR:
            flag = _flag_of(top)
        score = (top.score if top is not None and flag is not Flag.NONE
                 else NONE_WEIGHT * min(best_sim, NONE_CAP))
        if flag is Flag.NONE:
            reason = self._none_reason(hits, best_sim)
            match = next((h for h in hits if h.relation == "similar"), None)
        else:
            reason, match = top.reason, top  # type: ignore[union-attr]
        kept = tuple(hits) if keep_all else tuple(h for h in hits[:5])
        return Verdict(rec.row, rec.id, rec.smiles, "ok", flag, round(score, 4), reason,
                       round(best_sim, 4), match.substance_id if match else "",
                       match.substance_name if match else "", std.smiles, kept)

    def _none_reason(self, hits: list[Hit], best_sim: float) -> str:
        excluded = next((h for h in hits if h.relation == "excluded"), None)
        if excluded is not None:
            return excluded.reason
        weak = next((h for h in hits if h.relation in ("converts", "drug")), None)
        if weak is not None:
            return weak.reason
        near = next((h for h in hits if h.relation == "similar"), None)
        if near is not None:
            return (f"no listed substance, conversion or group; nearest is {near.substance_name} "
                    f"(Tanimoto {best_sim:.2f}, below {self.parameters.similar_threshold})")
        return "no listed substance, conversion or group found"


def _for_record(verdict: Verdict, rec: Record) -> Verdict:
    """``verdict`` (of the same structure) as the answer for ``rec``: its row, id and input."""
    if (verdict.row, verdict.id, verdict.input_smiles) == (rec.row, rec.id, rec.smiles):
        return verdict
    return replace(verdict, row=rec.row, id=rec.id, input_smiles=rec.smiles)


class _Repeats:
    """The verdicts of the latest structures screened in this process, to answer repeats.

    A verdict depends on the record only through its row, id and input text; the rest comes
    from the standardized parent. So a repeat gets the earlier verdict with those three
    replaced: found by the same SMILES text (no parsing at all), or by the same parent,
    :data:`ParentKey`: everything ``standardize`` returns but the RDKit molecule itself
    (isomeric SMILES: stereo decides exclusions such as cathine; the steps: a salt is reported
    as "a salt of"; the mixture components, screened for identity). The molecule's atom order
    is left out: the tests screen corpora with repeats written many ways (atoms renumbered,
    salts, stereoisomers, mixtures) with and without this and compare every row. At most
    ``size`` of each kind are kept (the oldest go first): verdicts are plain Python objects, a
    few kB each, holding no RDKit molecule.
    """

    __slots__ = ("size", "answered", "_texts", "_parents")

    def __init__(self, size: int = REPEATS_KEPT) -> None:
        self.size = size
        self.answered = 0   # records answered from an earlier verdict
        self._texts: OrderedDict[str, Verdict] = OrderedDict()
        self._parents: OrderedDict[ParentKey, Verdict] = OrderedDict()

    def by_text(self, text: str) -> Verdict | None:
        return _recent(self._texts, text)

    def by_parent(self, key: ParentKey) -> Verdict | None:
        return _recent(self._parents, key)

    def add(self, text: str | None, key: ParentKey | None, verdict: Verdict) -> None:
        """Remember ``verdict`` for the input ``text`` and/or the parent ``key``."""
        for table, k in ((self._texts, text), (self._parents, key)):
            if k is not None:
                table[k] = verdict
                table.move_to_end(k)
                if len(table) > self.size:
                    table.popitem(last=False)


def _recent(table: OrderedDict[Any, Verdict], key: Any) -> Verdict | None:
    found = table.get(key)
    if found is not None:
        table.move_to_end(key)
    return found


class _Lazy:
    """A value computed on first use (the pattern fingerprint, needed only past the gates)."""

    __slots__ = ("_fn", "_arg", "_value", "_done")

    def __init__(self, fn: Any, arg: Any) -> None:
        self._fn, self._arg, self._value, self._done = fn, arg, None, False

    @property
    def done(self) -> bool:
        """True once the value has been computed."""
        return self._done

    @property
    def value(self) -> Any:
        if not self._done:
            self._value, self._done = self._fn(self._arg), True
        return self._value


def _ring_substituted(mol: Chem.Mol, part: Chem.Mol) -> bool:
    """True when every embedding of ``part`` in ``mol`` has extra atoms on an aromatic atom.

    Ring substituents (a hydroxy, methoxy or nitro on the ring, a methyl on an indole N) do not
    come off easily, so a listed substance inside such a molecule is not a masked form of it:
    metaraminol and chloramphenicol contain norephedrine's skeleton this way.
    """
    for match in mol.GetSubstructMatches(part, maxMatches=20):
        inside = set(match)
        if not any(nb.GetIdx() not in inside
                   for i in match if mol.GetAtomWithIdx(i).GetIsAromatic()
                   for nb in mol.GetAtomWithIdx(i).GetNeighbors()):
            return False
    return True


def _flag_of(hit: Hit) -> Flag:
    if hit.relation in ("identical", "salt", "stereoisomer", "mixture"):
        return Flag.SCHEDULED if hit.score >= 1.0 else Flag.SIMILAR
    if hit.relation == "converts":
        return Flag.CONVERTIBLE
    if hit.relation == "drug":
        return Flag.DRUG_PRECURSOR
    if hit.relation == "group":
        return Flag.GROUP
    return Flag.SIMILAR


def _chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for rec in records:
        chunk.append(rec)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_WORKER: Screener | None = None


def _init_worker(screener: Screener) -> None:
    global _WORKER
    _WORKER = screener


def _work(chunk: list[Record]) -> list[Verdict]:
    assert _WORKER is not None
    with quiet_rdkit():
        return _WORKER._screen_chunk(chunk)


def _dask_work(chunk: list[Record], shared: Any) -> list[Verdict]:
    """A Dask task: one chunk, screened by this worker thread's copy of the screener."""
    with quiet_rdkit():
        return dask_shared(shared)._screen_chunk(chunk)


def screen(molecules: Iterable[Record | str], **kwargs: Any) -> Iterator[Verdict]:
    """Screen molecules against the built-in list: ``screen(["CC(=O)C(C#N)c1ccccc1"])``."""
    jobs = kwargs.pop("jobs", 1)
    return Screener(**kwargs).screen(molecules, jobs=jobs)
