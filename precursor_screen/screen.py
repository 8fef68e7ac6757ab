"""The screen: the one place that knows the order of the stages.

    record -> parse -> standardize -> identity (isotopes, tautomers, active ions, acylating
           agents) -> building steps -> similarity -> containment -> masks and conversions
           -> controlled drugs -> groups -> decide flag, score and reason -> Verdict

Every record yields exactly one Verdict. The evidence is weighed as ``docs/detection.md``
explains: a route of mask removals and conversions counts when the listed product is most of the
candidate (protecting groups apart) or what else comes off is small; a bulk Category 2A/2B target
flags in a lower band of its own, a Category 3 solvent never; containment counts only when the
listed substance sits in the candidate unchanged at its attachment atoms, and otherwise is
similarity with the difference said; fingerprint similarity alone is a ranked second opinion and
flags only near identity. Each kind of evidence scores in its own band (:data:`SCORE_BANDS`); the
strongest hit decides the flag.
"""

from __future__ import annotations

import hashlib
import functools
import os
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import Any

import numpy as np
from rdkit import Chem, DataStructs

from precursor_screen.chem.fingerprint import load_recipes, popcounts
from precursor_screen.chem.parse import MAX_ATOMS, parse_record, quiet_rdkit
from precursor_screen.chem.standardize import (
    Standardized,
    StoredParent,
    StandardizeError,
    standardize,
    standardize_smiles,
)
from precursor_screen.errors import PrecursorScreenError
from precursor_screen.io.readers import Record
from precursor_screen.io.text import shown
from precursor_screen.parallel import (
    dask_ordered_map,
    dask_share,
    dask_shared,
    guarded_map,
    item_started,
    ordered_map,
)
from precursor_screen.reference import builtin_registry, load_reference
from precursor_screen.rules.building import Builder, BuildIndex, Found
from precursor_screen.rules.containment import attachment_differences
from precursor_screen.rules.conversions import ConversionRule, RuleSet
from precursor_screen.rules.drug_targets import (
    DRUG_LIST,
    GROUP_LIST,
    DrugTargets,
    list_jurisdictions,
    load_drug_groups,
)
from precursor_screen.rules.fastgate import QuerySet
from precursor_screen.rules.formulas import TargetFormulas
from precursor_screen.rules.gates import (
    GateSet,
    RouteGate,
    flag_floor,
    rules_keep_aromaticity,
    rules_keep_skeletons,
    skeleton_gates,
)
from precursor_screen.rules.groups import GroupSet, load_groups
from precursor_screen.rules.identity import (
    active_ion,
    counter_ions_only,
    has_isotopes,
    keto_forms,
    symmetric_anhydrides,
    unlabelled,
)
from precursor_screen.rules.masks import load_rules
from precursor_screen.search.substructure import BIT_SLICE_ROWS, SubstructureIndex
from precursor_screen.search.tanimoto import TanimotoIndex
from precursor_screen.types import Flag, Hit, Route, Step, Verdict
from precursor_screen.version import __version__

__all__ = ["Screener", "ScreenParameters", "screen", "SCORE_BANDS", "FLAG_FLOOR"]

# -- score bands: every hit's score comes from these --------------------------------------------

SCORE_LISTED = 1.0
"""The candidate is a listed substance: itself, a salt, a stereoisomer, or in a mixture."""
SCORE_NOT_YET_LISTED = 0.7
"""The candidate is a substance only proposed for control or on a watch list (``--include``)."""
SCORE_EXCLUDED = 0.0
"""A stereoisomer the annex excludes (cathine from norephedrine): reported, never flagged."""
CONVERTS_BASE, CONVERTS_KEPT, CONVERTS_PER_STEP = 0.9, 0.05, 0.03
"""A conversion to a listed substance scores 0.9 + 0.05 x (share of the candidate's heavy atoms
the product keeps) - 0.03 per step beyond the first (mask removals included): 0.81 to 0.95."""
BULK_BASE = 0.5
"""A conversion to a bulk Category 2A/2B/3 chemical (phenylacetic acid, acetic anhydride,
piperidine, ...) scores 0.5 + 0.05 x kept share - 0.03 per extra step (0.44 to 0.55): flagged
`convertible` in a band of its own, below everything else that flags, and said to be bulk, so a
user can filter it. Never dropped: esters of phenylacetic acid and acetyl chloride are seized
designer precursors (`docs/detection.md`)."""
BULK_MIN_KEPT = 0.6
"""A bulk target flags only when the product keeps most (60%) of the candidate AND at most
`ScreenParameters.max_removed_atoms` come off (both, not either: benzylpenicillin is not a masked
phenylacetic acid), and when it has at least `ScreenParameters.min_target_atoms` heavy atoms
(acetone, butanone and ether are everywhere in small molecules; nobody masks a solvent)."""
BUILDS_BASE = 0.84
"""One common step with an ordinary reagent makes a listed substance (`rules/building.py`):
0.84 - 0.03 per mask removal or conversion before it (a bulk target: the bulk band)."""
GROUP_ADOPTED, GROUP_DRAFT = 0.8, 0.75
"""Membership of a generic group a legal act defines, or of a draft group."""
CONTAINS_BASE, CONTAINS_WEIGHT = 0.55, 0.15
"""A listed substance is most of the candidate: 0.55 + 0.15 x its share (0.64 to 0.70)."""
SIMILAR_BASE, SIMILAR_WEIGHT = 0.45, 0.25
"""Tanimoto at or above the similar threshold (0.9): 0.45 + 0.25 x Tanimoto (0.675 to 0.70)."""
WEAK_WEIGHT = 0.3
"""Evidence that never flags: 0.3 x Tanimoto below the threshold or to a bulk chemical, and
0.3 x share for a candidate inside a listed substance."""
NONE_WEIGHT, NONE_CAP = 0.4, 0.99
"""A row flagged ``none`` scores 0.4 x its best Tanimoto (capped at 0.99): below 0.4."""
FLAG_FLOOR = 0.45
"""Evidence scoring below this is reported but raises no flag (weak similarity, containment in a
listed substance, conversions to bulk chemicals)."""
ParentKey = tuple[str, tuple[str, ...], tuple[str, ...], bytes]
"""A standardized parent as the verdict sees it: (isomeric SMILES, steps, mixture components,
digest of the RDKit molecule itself, atom and bond order included; empty for a record written
as the parent's SMILES, which that text determines)."""
REPEATS_KEPT = 20_000
"""Verdicts kept per process to answer repeated structures (by input text and by parent), each."""
SIMILAR_HITS_KEPT = 50_000
"""`similar` hits a screener keeps to share (by listed substance and Tanimoto) before it starts
afresh: ~25 MB."""
DRUG_STAGE_BELOW = 0.85
"""The drug stage runs only while no hit scores this much (a listed precursor or a conversion to
one is the stronger finding); `check` (keep_all) runs it always."""

GATE_MAX_TARGETS = 300
"""Reference lists with more flaggable substances than this are screened without the route gate
(see ``Screener._plan_gates``); the built-in list has 62."""

SCORE_BANDS: tuple[tuple[str, str, str], ...] = (
    ("scheduled", "identical, salt, stereoisomer, family clause, isotopologue, tautomer, mixture",
     "1.0"),
    ("convertible", "converts (a mask removal or a conversion), acylating agent",
     "0.81-0.95: 0.9 + 0.05 x kept share - 0.03 per extra step"),
    ("convertible", "converts to a bulk chemical, acylating agent or another salt of its ion",
     "0.44-0.55: 0.5 + 0.05 x kept share - 0.03 per extra step"),
    ("convertible", "builds", "0.78-0.84: one reagent step to a listed substance (0.84 - 0.03 "
                              "per step before it)"),
    ("drug-precursor", "drug", "0.80-0.84 (`rules/drug_targets.py`: listed drug or drug family, "
                               "one step or two)"),
    ("group", "group", "0.8 adopted, 0.75 draft"),
    ("similar", "identical to a proposed or watched substance", "0.7"),
    ("similar", "contains", "0.64-0.70: 0.55 + 0.15 x the listed substance's share"),
    ("similar", "similar", "0.675-0.70: 0.45 + 0.25 x Tanimoto (>= 0.9)"),
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
    similar_threshold: float = 0.9      # Morgan2 Tanimoto that flags `similar` on its own
    contains_min_fraction: float = 0.6  # listed substance >= this share of the candidate
    contained_min_fraction: float = 0.75  # candidate >= this share of the listed substance
    min_target_atoms: int = 6           # containment of smaller listed substances means nothing
    flag_bulk_targets: bool = False     # let conversions to Category 2A/2B/3 chemicals flag
    max_heavy_atoms: int = 200          # larger inputs get a status instead of a verdict
    max_atoms: int = MAX_ATOMS          # records with more atoms are not parsed (--max-atoms)
    top_k: int = 3                      # nearest listed substances kept as evidence
    drug_targets: bool = True           # look for routes to controlled drugs (drug-precursor)
    jurisdictions: tuple[str, ...] = ("eu", "un")  # whose lists, groups and drug families apply
    generic_groups: bool = True         # False (--no-groups): no generic group or drug family

    def __post_init__(self) -> None:
        object.__setattr__(self, "jurisdictions", tuple(self.jurisdictions))

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
        self.parameters = parameters or ScreenParameters()
        reg = load_reference(reference, as_of=as_of, include=include,
                             extra_references=extra_references,
                             jurisdictions=list_jurisdictions(self.parameters.jurisdictions),
                             prepare=prepare_parent)
        self.reference = reg
        self.rules = rules if rules is not None else load_rules()
        # every dated piece of knowledge as of ``as_of`` (with a reference file too: it replaces
        # the listed substances only), groups and families of the screen's jurisdictions only
        p = self.parameters
        # groups given (``--groups`` files, a draft under test) apply even without the generic
        # groups; they are filtered like the shipped ones, which an undated draft always passes
        if groups is not None:
            self.groups = groups.applicable(as_of, p.jurisdictions)
        elif not p.generic_groups:
            self.groups = GroupSet(())
        else:
            self.groups = load_groups().applicable(as_of, p.jurisdictions)
        # controlled drugs reached by unmasking and reagent steps (drug-precursor flag)
        self.drugs: DrugTargets = (drugs if drugs is not None else DrugTargets(
            as_of=as_of, unmask=self.rules, jurisdictions=p.jurisdictions,
            groups=(load_drug_groups().applicable(as_of, p.jurisdictions) if p.generic_groups
                    else GroupSet(()))))
        self.as_of = as_of
        self._organic = [s for s in reg.structures() if not s.is_inorganic]
        self._bulk_keys = {s.parent.key: s.eu_category for s in builtin_registry().structures()
                           if s.is_bulk and s.parent is not None}
        preparer = _preparer()
        self.recipe = preparer.similarity
        packed, counts, patterns, found, sizes, natoms = _prepare_reference(self._organic,
                                                                            preparer)
        # Confidential entries (--extra-reference) get an index of their own: a row's nearest
        # listed substances, its similarity and a `none` row's reason come from the public list
        # alone, and a confidential entry counts only where it raises a flag.
        public = [i for i, s in enumerate(self._organic) if not s.confidential]
        secret = [i for i, s in enumerate(self._organic) if s.confidential]
        self._public_rows, self._secret_rows = public, secret
        self._index = TanimotoIndex(packed[public], counts[public])
        self._secret_index = TanimotoIndex(packed[secret], counts[secret]) if secret else None
        self._secret_lists = frozenset(s.list_name for s in reg if s.confidential)
        smiles = [s.parent.smiles for s in self._organic]  # type: ignore[union-attr]
        if len(self._organic) < BIT_SLICE_ROWS:  # small: the index keeps the molecules
            self._substructures = SubstructureIndex(
                [s.parent.mol for s in self._organic],  # type: ignore[union-attr]
                recipe=preparer.pattern, packed=patterns, smiles=smiles)
        else:  # large: RDKit reads the few survivors of a search from their SMILES
            self._substructures = SubstructureIndex.from_fingerprints(
                patterns, natoms, smiles, recipe=preparer.pattern)
        self._sizes = sizes
        self._max_target_atoms = max(self._sizes, default=0)
        self._gates, self._route_gate = self._plan_gates(bulk=False)
        self._bulk_gates, self._bulk_route_gate = self._plan_gates(bulk=True)
        # containment asks whether the candidate holds a listed skeleton at all (an aroyl where
        # the target has an acetyl too): the route gate with untyped atoms, when it is typed
        self._skeleton_gate = (self._plan_gates(bulk=False, typed=False)[1]
                               if self._route_gate is not None and self._route_gate.typed
                               else None)
        self._max_bulk_atoms = max((self._sizes[i] for i, s in enumerate(self._organic)
                                    if self._bulk(s) and not self._solvent(s)), default=0)
        trio = (self._route_gate, self._skeleton_gate, self._bulk_route_gate)
        self._gate_set = GateSet(trio) if all(g is not None for g in trio) else None
        self._group_gates, self._gated_groups, self._ungated_groups = self._plan_groups()
        self._group_gates_fast = QuerySet.of_queries(list(self._group_gates))
        self._by_key: dict[str, list[Any]] = {}
        for s in self._organic:
            self._by_key.setdefault(s.parent.key, []).append(s)  # type: ignore[union-attr]
        self._key_cache: dict[str, str] = {}
        self._bitvects: dict[int, Any] = {}   # listed substances' fingerprints, on first use
        self._row_of = {s.id: i for i, s in enumerate(self._organic)}
        self._shorts: dict[int, str] = {}   # short listings of listed substances, by row
        self._similar_hits: dict[tuple[int, float], Hit] = {}   # see `_nearest`
        self._ions = [(ion, s) for s in reg.structures() if s.is_inorganic and s.parent is not None
                      and (ion := active_ion(s.parent)) is not None]
        self._builds = BuildIndex(self._organic, builder=preparer.builder, found=found)
        # what a conversion route's product must be for a flag: listed, or one building step
        # from a listed substance (`_route_hit`, `_building`)
        self._product_targets = TargetFormulas([*self._by_key, *self._builds.keys()])
        # the protecting-group masks alone, which come off before the drug search
        self._protecting = RuleSet((r for r in self.rules.rules if r.protecting_group),
                                   f"{self.rules.source} (protecting groups)")
        self._repeats = _Repeats(repeats)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the verdicts remembered for repeats and the `similar` hits made so far
        (a worker starts its own)."""
        return {k: (_Repeats(v.size) if k == "_repeats" else {} if k == "_similar_hits" else v)
                for k, v in self.__dict__.items()}

    # -- public API ----------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """Parameters and versions of this screener, for an output's run metadata."""
        return {"screen": self.parameters.as_dict(), "fingerprint": self.recipe.name,
                "conversion_rules": len(self.rules.rules), "groups": len(self.groups.ids),
                "group_ids": list(self.groups.ids),
                "knowledge_as_of": self.as_of.isoformat() if self.as_of else "",
                "drug_targets": self.drugs.metadata()}

    def check(self, smiles: str, id: str = "") -> Verdict:
        """Screen one SMILES (or a listed name, CAS or id, or a controlled drug's) and keep every
        piece of evidence."""
        text = smiles
        try:  # a name on the list, or on the built-in one in any jurisdiction (then screened in
            # this screen's view: "benzyl cyanide" is found, and scheduled only with the US)
            text = _find_name(smiles, self.reference).smiles or smiles
        except Exception:  # noqa: BLE001 - not a name on the list: treat as SMILES
            try:
                text = self.drugs.registry.find(smiles).smiles
            except Exception:  # noqa: BLE001 - not a drug's name either
                pass
        return next(iter(self._screen_chunk([Record(0, id or smiles, text)], keep_all=True)))

    def screen(self, molecules: Iterable[Record | str], *, jobs: int = 1,
               chunk_size: int = 256, timeout: float | None = None,
               client: Any = None) -> Iterator[Verdict]:
        """Yield one Verdict per input, in input order; on ``jobs`` worker processes, or on the
        workers of a Dask ``client`` (``parallel.dask_client``: a LocalCluster or a running
        cluster), with the same verdicts either way.

        ``timeout``: seconds a molecule may take (parsing, or its checks); one that takes
        longer gets the status ``timeout: ...`` instead of a verdict. RDKit cannot be stopped
        from Python, so with a timeout (or ``jobs`` > 1) the molecules are screened in watched
        worker processes (``parallel.guarded_map``): a worker that dies or overruns is replaced,
        only its molecule gets the status, and the run never hangs.

        On Dask this screener is sent to each worker once and unpickled there (workers need
        the package, not the reference files), chunks of ``chunk_size`` records stream to the
        workers a bounded number at a time, and verdicts come back in input order. A Dask
        worker runs chunks in its own threads, where RDKit cannot be stopped and this process
        cannot watch a row: ``timeout`` with ``client`` is refused (:class:`PrecursorScreenError`)
        rather than ignored, and a worker that dies again and again fails the run
        (``WorkerDied``) instead of giving its row a status.
        """
        if client is not None and timeout is not None:
            raise PrecursorScreenError(
                "a per-molecule timeout cannot be enforced on Dask workers (RDKit cannot be "
                "stopped inside a worker's thread): screen with timeout=None on Dask, or on "
                "local processes (jobs) with a timeout")
        records = (m if isinstance(m, Record) else Record(i, str(i), m) for i, m in enumerate(molecules))
        chunks = _chunks(records, chunk_size)
        if client is not None:
            shared = dask_share(client, self)
            for verdicts in dask_ordered_map(client, _dask_work, chunks, shared):
                yield from verdicts
            return
        if jobs <= 1 and timeout is None:
            for chunk in chunks:
                yield from self._screen_chunk(chunk)
            return
        for verdicts in guarded_map(_work, chunks, max(1, jobs), fail=_failed, timeout=timeout,
                                    initializer=_init_worker, initargs=(self,)):
            yield from verdicts

    # -- stages --------------------------------------------------------------------------------

    def _screen_chunk(self, records: list[Record], keep_all: bool = False) -> list[Verdict]:
        """Verdicts of a chunk, one per record, in order: each record parsed and standardized,
        the chunk's nearest listed substances found in one batch, then each judged.

        A structure seen before in this process (the same SMILES text, or the same standardized
        parent, :meth:`_parent_key`) is answered from the earlier verdict, so it is screened
        once (:class:`_Repeats`); only verdicts of a finished screen (status ok) and of input
        that cannot be read (a parsing status, a function of the text) are remembered, never an
        internal error. A timeout is decided by the watching process, which kills this one and
        its memory with it. A worker's watchdog hears when each record starts
        (``item_started``, with the time its first pass took); an unexpected error on one
        record is that record's status, not the chunk's end."""
        repeats = self._repeats
        remember = not keep_all and repeats.size > 0
        n = len(records)
        out: list[Verdict | None] = [None] * n
        parsed: dict[int, tuple[Record, Standardized]] = {}   # row -> record as read, parent
        spent = [0.0] * n
        texts: list[str | None] = [None] * n
        keys: list[ParentKey | None] = [None] * n
        waiting: dict[ParentKey, list[int]] = {}   # parent -> further rows of the chunk with it
        todo: list[int] = []                       # rows to judge
        for i, rec in enumerate(records):
            item_started(i)
            start = time.monotonic()
            text = rec.smiles if remember and rec.molblock is None and not rec.error else None
            known = repeats.by_text(text) if text is not None else None
            if known is not None:
                out[i] = _for_record(known, rec)
                repeats.answered += 1
                continue
            try:
                prep = self._prepare(rec)
            except Exception as exc:  # noqa: BLE001 - one bad record must not end the run
                out[i] = _failed(rec, _internal(exc))   # not remembered: a retry may differ
                continue
            spent[i] = time.monotonic() - start
            read, std, problem = prep
            if std is None:
                out[i] = _failed(read, problem)
                if text is not None:
                    repeats.add(text, None, out[i])
                continue
            parsed[i] = (read, std)
            texts[i] = text
            if not remember:
                todo.append(i)
                continue
            key = keys[i] = self._parent_key(std, text)
            known = repeats.by_parent(key)
            if known is not None:
                out[i] = _for_record(known, read)
                repeats.add(text, None, known)
                repeats.answered += 1
            elif key in waiting:
                waiting[key].append(i)
            else:
                waiting[key] = []
                todo.append(i)
        again: list[int] = []   # rows whose parent's first row ended in an internal error
        for i in self._judge_rows(todo, parsed, spent, keep_all, out):
            key = keys[i]
            verdict = out[i]
            assert verdict is not None
            if key is None:
                continue
            if verdict.status != "ok":
                again += waiting.pop(key)
                continue
            repeats.add(texts[i], key, verdict)
            for j in waiting.pop(key):
                out[j] = _for_record(verdict, parsed[j][0])
                repeats.add(texts[j], None, verdict)
                repeats.answered += 1
        for _ in self._judge_rows(again, parsed, spent, keep_all, out):
            pass
        return out  # type: ignore[return-value]  # every position was filled above

    def _parent_key(self, std: Standardized, text: str | None = None) -> ParentKey:
        """All a verdict depends on of a standardized parent (:data:`ParentKey`): everything
        ``standardize`` returns, the molecule as RDKit holds it (its binary form: atoms in
        their order, bonds, stereo, isotopes, charges). The atom order matters: where a
        listed substance sits in a candidate more than one way, the embeddings RDKit finds
        first, and so the differences a reason lists, follow it (``rules/containment.py``;
        4 of 7,136 corpus and evaluation structures get another reason or hit text with their
        atoms renumbered). ~20 us a molecule; a salt, solvate or mixture of a structure keeps its
        parent's atom order, so it is answered from the structure's verdict.

        A record written exactly as its parent's SMILES (``text``; most rows of a library an
        RDKit tool wrote) is keyed by that text instead, with no binary form: the same text
        gives the same parent, so rows keyed alike have one verdict; a repeat written otherwise
        is then not found, and is screened again to the same verdict."""
        if text is not None and text == std.smiles:
            return (std.smiles, std.steps, std.components, b"")
        digest = hashlib.blake2b(std.mol.ToBinary(), digest_size=16).digest()
        return (std.smiles, std.steps, std.components, digest)

    def _judge_rows(self, todo: list[int], parsed: dict[int, tuple[Record, Standardized]],
                    spent: list[float], keep_all: bool, out: list[Verdict | None]
                    ) -> Iterator[int]:
        """Judge the parsed records at positions ``todo`` of the chunk into ``out``, yielding
        each position as its verdict is in: the nearest listed substances for all at once, then
        each record's evidence weighed."""
        organic = [(i, parsed[i][1]) for i in todo if not parsed[i][1].inorganic]
        near: dict[int, list[tuple[int, float]]] = {}
        if organic:
            packed, _ = self.recipe.packed([std.mol for _, std in organic])
            k = self.parameters.top_k
            rows = self._public_rows
            for (i, _), hits in zip(organic, self._index.top_k(packed, k)):
                near[i] = [(rows[r], sim) for r, sim in hits]
            if self._secret_index is not None:
                rows, floor = self._secret_rows, self.parameters.similar_threshold
                for (i, _), hits in zip(organic, self._secret_index.top_k(packed, k)):
                    flagging = [(rows[r], sim) for r, sim in hits if sim >= floor]
                    if flagging:
                        near[i] = sorted(near[i] + flagging, key=lambda rs: -rs[1])
        for i in todo:
            rec, std = parsed[i]
            item_started(i, spent[i])
            try:
                out[i] = self._judge(rec, std, near.get(i, []), keep_all)
            except Exception as exc:  # noqa: BLE001 - one bad record must not end the run
                out[i] = _failed(rec, _internal(exc))
            yield i

    def _prepare(self, rec: Record) -> tuple[Record, Standardized | None, str]:
        if rec.error:
            return rec, None, rec.error
        mol, problem = parse_record(rec.smiles, rec.molblock, self.parameters.max_atoms)
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
        # an isotope-labelled candidate is judged as its unlabelled self (the same substance)
        labelled = has_isotopes(std)
        work = (unlabelled(std) or std) if labelled else std
        hits = self._identity(work, labelled)
        if std.inorganic:
            return self._verdict(rec, std, hits + self._same_ion(std), 0.0, keep_all)
        identical = {h.substance_id for h in hits if h.relation in _SAME or h.relation == "excluded"}
        if not identical:
            hits += self._building(work, None)
        hits += self._nearest(near, identical)
        n_atoms = work.mol.GetNumHeavyAtoms()
        words = _Lazy(partial(self._substructures.pattern_words, smiles=work.smiles), work.mol)
        # Conversions and containment can raise a flag only for a candidate holding a flaggable
        # listed substance's skeleton; `check` (keep_all) searches everything regardless.
        # Targets smaller than the floor cannot raise a flag from this candidate (a conversion
        # to them scores 0, containment needs 0.6 of the candidate): the gates may skip them.
        # Protecting groups (Boc, trityl, silyl ...) come off whatever their size: they are not
        # counted in the candidate's size when a route's kept share is weighed; the floors
        # count every group some route may take off (one freed by another mask's removal too).
        freed = self.rules.protecting_group_atoms(work.mol, work.smiles, freed=True)
        own = n_atoms - freed
        floor = flag_floor(own, p.min_kept_fraction, p.max_removed_atoms)
        bulk_floor = self._bulk_floor(own)
        gated, contain, bulk = ((True, True, True) if keep_all
                                else self._gate_answers(work, floor, bulk_floor))
        if contain:
            contained = self._containment(work.mol, words.value, n_atoms, identical)
            said = {h.substance_id for h in contained if h.relation == "skeleton"}
            hits = [h for h in hits if h.relation != "similar" or h.substance_id not in said]
            hits += contained
        if (not identical or keep_all) and bulk:
            hits += self._conversions(work, n_atoms, floor, bulk_floor, keep_all)
        if p.drug_targets and (keep_all or all(h.score < DRUG_STAGE_BELOW for h in hits)):
            protected = freed > 0 and self.rules.has_protecting_groups(work.mol, work.smiles)
            hits += self._drug_routes(work, keep_all, protected)
        hits += self._groups(work.mol, words, keep_all, work.smiles)
        return self._verdict(rec, std, hits, best_sim, keep_all, work=work)

    # -- the stages, each returning its hits -----------------------------------------------------

    def _identity(self, std: Standardized, labelled: bool = False) -> list[Hit]:
        """1. The substance itself, a salt or a stereoisomer; an isotope-labelled form
        (``labelled``: ``std`` is then the unlabelled parent); an enol of a listed ketone (its
        tautomer); components of a mixture; an acylating agent standing in for a listed
        anhydride."""
        hits = [self._identity_hit(ident) for ident in self.reference.identify(std)]
        if labelled:
            hits = [replace(h, relation="isotopologue",
                            reason="is an isotope-labelled form (an isotopologue: the same "
                                   "substance) of " + h.reason.removeprefix("is "))
                    if h.relation in ("identical", "salt", "stereoisomer") else h for h in hits]
        if not hits:
            for keto in keto_forms(std, self.rules):
                for ident in self.reference.identify(keto):
                    if ident.relation == "excluded":
                        continue
                    base = self._identity_hit(ident)
                    hits.append(replace(base, relation="tautomer", reason=(
                        "is an enol tautomer (keto-enol tautomerism: the same substance) of "
                        + base.reason.removeprefix("is "))))
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
        return hits + self._acylating(std)

    def _acylating(self, std: Standardized) -> list[Hit]:
        """An acyl halide or mixed anhydride carrying the acyl group of a listed anhydride
        (acetyl chloride for acetic anhydride): it acylates as the anhydride does and gives it
        with a salt of the acid; flagged `convertible`, in the bulk band for a bulk anhydride."""
        hits = []
        for smiles in symmetric_anhydrides(std):
            try:
                anhydride = standardize_smiles(smiles)
            except StandardizeError:
                continue
            for ident in self.reference.identify(anhydride):
                s = ident.substance
                if ident.relation == "excluded" or s.parent.key == std.key:
                    continue
                hits.append(self._reagent_hit("acylating", s, (
                    f"converts in one step to {s.name} ({s.listing()}): an acylating agent "
                    f"carrying its acyl group, which acylates as {s.name} does and gives it "
                    "with a salt of the acid (an acyl halide) or by disproportionation (a "
                    "mixed anhydride)")))
        return hits

    def _same_ion(self, std: Standardized) -> list[Hit]:
        """An inorganic salt of the active ion of a listed salt with other ordinary counter-
        cations (sodium permanganate for potassium permanganate): the same reagent; flagged
        `convertible` (one ion exchange gives the listed salt), in the bulk band for a bulk
        one. The annex names the salt, so it is not called scheduled."""
        hits = []
        for ion, s in self._ions:
            if s.parent.key == std.key or not counter_ions_only(std, ion):
                continue
            hits.append(self._reagent_hit("same-ion", s, (
                f"is another salt of the active ion of {s.name} ({s.listing()}), the same "
                f"reagent: it acts through that ion, and one ion exchange gives {s.name}; "
                f"the listing names {s.name} itself")))
        return hits

    def _reagent_hit(self, relation: str, s: Any, reason: str) -> Hit:
        """A stand-in for the listed reagent ``s`` (an acylating agent, another salt of its
        ion): one easy step gives it; a bulk one flags in the bulk band, and the reason says so."""
        bulk = self._bulk(s)
        if bulk:
            reason += (f"; {s.name} is a bulk chemical ({self._bulk_label(s)}, "
                       "traded by the tonne): flagged in the bulk score band")
        return Hit(relation, s.id, s.name, s.list_name,
                   (BULK_BASE if bulk else CONVERTS_BASE) + CONVERTS_KEPT, reason)

    def _nearest(self, near: list[tuple[int, float]], identical: set[str]) -> list[Hit]:
        """2. The nearest listed substances by fingerprint similarity."""
        hits = []
        made = self._similar_hits
        for row, sim in near:
            hit = made.get((row, sim))
            if hit is None:
                hit = self._similar_hit(row, sim)
                if len(made) >= SIMILAR_HITS_KEPT:
                    made.clear()
                made[row, sim] = hit
            if hit.substance_id not in identical:
                hits.append(hit)
        return hits

    def _similar_hit(self, row: int, sim: float) -> Hit:
        """The `similar` hit of the listed substance of ``row`` at Tanimoto ``sim``: a function
        of the two alone, so `_nearest` makes each once (a Tanimoto is a ratio of small counts:
        five in six of the first 20,000 MOSES molecules' nearest substances come again with
        the same value) and shares the frozen hit."""
        s = self._organic[row]
        strength = WEAK_WEIGHT * sim if self._bulk(s) else self._similar_score(sim)
        return Hit("similar", s.id, s.name, s.list_name, strength,
                   f"Morgan radius-2 Tanimoto {sim:.2f} to {s.name} ({self._short(row)})",
                   similarity=sim)

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
            if frac < p.contains_min_fraction:
                continue
            differs = attachment_differences(mol, s.parent.mol)
            if differs:
                # the skeleton only: similarity, with the difference said
                sim = self._similarity_to(mol, row)
                hits.append(Hit("skeleton", s.id, s.name, s.list_name, self._similar_score(sim),
                                f"Morgan radius-2 Tanimoto {sim:.2f} to {s.name} "
                                f"({self._short(row)}); it holds the skeleton of {s.name} but "
                                f"does not contain it: {'; '.join(differs)}", similarity=sim))
                continue
            added = n_atoms - size
            hits.append(Hit("contains", s.id, s.name, s.list_name,
                            CONTAINS_BASE + CONTAINS_WEIGHT * frac,
                            f"contains the whole of {s.name} ({self._short(row)}) unchanged, "
                            f"with {added} heavy atom{'s' if added != 1 else ''} added on its "
                            "heteroatoms", atoms_added=added,
                            similarity=self._similarity_to(mol, row)))
        for row in containing:  # candidate inside listed substance
            s = self._organic[row]
            size = self._sizes[row]
            if s.id in identical or self._bulk(s) or n_atoms < p.min_target_atoms:
                continue
            frac = n_atoms / size
            if frac >= p.contained_min_fraction:
                removed = size - n_atoms
                hits.append(Hit("contained_in", s.id, s.name, s.list_name, WEAK_WEIGHT * frac,
                                f"is a substructure of {s.name} ({self._short(row)}), "
                                f"{removed} heavy atom{'s' if removed != 1 else ''} smaller",
                                atoms_removed=removed))
        return hits

    def _conversions(self, std: Standardized, n_atoms: int, floor: float, bulk_floor: float,
                     keep_all: bool) -> list[Hit]:
        """4. Routes of mask removals and conversions whose product is listed. The bulk screen
        expands an intermediate only while it holds the skeleton of a target that could still
        flag (as for the candidate): routes to targets too small to flag may go unreported."""
        p = self.parameters

        def worth(m: Standardized) -> bool:
            return (self._gated(m.mol, floor, last_step=True, smiles=m.smiles)
                    or self._gated(m.mol, bulk_floor, last_step=True, bulk=True, smiles=m.smiles))

        routes = self.rules.apply(std, depth=p.depth, max_products=p.max_products,
                                  max_heavy_atoms=self._max_target_atoms,
                                  last_step_gate=None if keep_all else worth,
                                  targets=None if keep_all else self._product_targets)
        # the bulk screen skips products too small to flag from this candidate (a route to them
        # scores 0); `check` reports them all
        smallest = 0.0 if keep_all else min(floor, bulk_floor)
        hits = [hit for route in routes
                if self._product_size(route.product) >= smallest
                and (hit := self._route_hit(route, std, n_atoms)) is not None]
        for route in routes:
            hits += self._building(std, route)
        return hits

    def _product_size(self, smiles: str) -> int:
        """Heavy atoms of a product of the latest rule search."""
        product = self.rules.product(smiles)
        mol = product.mol if product is not None else Chem.MolFromSmiles(smiles)
        return mol.GetNumHeavyAtoms() if mol is not None else 0

    def _building(self, std: Standardized, route: Route | None) -> list[Hit]:
        """One reagent step from the candidate (or from the end of a route of mask removals and
        conversions) to a listed substance (`rules/building.py`)."""
        key = self._product_key(route.product) if route is not None else std.key
        if route is not None and key in self._by_key:
            return []   # the route already ends in a listed substance: building on it adds nothing
        hits = []
        for build in self._builds.lookup(key):
            s = build.substance
            texts: list[str] = []
            if route is not None:
                # the route to the substrate must be a masked form's, as for a conversion
                size = Chem.MolFromSmiles(route.product).GetNumHeavyAtoms()
                share = self._share(route, std, std.mol.GetNumHeavyAtoms(), size)
                if self._weak(s, share, size):
                    continue
                texts = [t if t.endswith(f" gives {step.product}") else
                         f"{t} gives {step.product}" for t, step in zip(share.texts, route.steps)]
            texts.append(f"+ {build.reagent} ({build.rule.name}) gives {s.name}")
            before = route.depth if route is not None else 0
            words = "one step" if not before else f"{before + 1} steps"
            reason = f"becomes {s.name} ({s.listing()}) in {words}: " + "; then ".join(texts)
            bulk = self._bulk(s)
            if self._solvent(s):
                continue
            score = (BULK_BASE + CONVERTS_KEPT if bulk else BUILDS_BASE) - CONVERTS_PER_STEP * before
            if bulk:
                reason += (f"; {s.name} is a bulk chemical (EU category {self._category(s)}, traded"
                           " by the tonne): flagged in the bulk score band")
            steps = ((route.steps if route is not None else ())
                     + (Step(build.rule.id, build.rule.name, s.parent.smiles, build.reagent),))
            hits.append(Hit("builds", s.id, s.name, s.list_name, round(score, 4), reason,
                            route=Route(steps)))
        return hits

    def _drug_routes(self, std: Standardized, keep_all: bool, protected: bool) -> list[Hit]:
        """5. Controlled drugs: the candidate is one, or reaches one by unmasking and reagent
        steps (``drug-precursor``). Its protecting groups (``protected``) come off first, free of
        the depth, as in the conversion search: the drug search proper counts every step (its
        gate's argument is made for two steps of any kind) and starts from each deprotected
        form."""
        p = self.parameters

        def search(form: Standardized) -> list[Hit]:
            return self.drugs.routes(form, depth=p.depth, max_products=p.max_products,
                                     min_kept_fraction=p.min_kept_fraction,
                                     max_removed_atoms=p.max_removed_atoms,
                                     flag_only=not keep_all)

        hits = [*self.drugs.identify(std), *search(std)]
        if not protected:
            return hits
        found = {h.substance_id for h in hits if h.score > 0}
        for pg in self._protecting.apply(std, depth=0, max_products=20):
            form = self._protecting.product(pg.product)
            if form is None:
                continue
            texts: list[str] = []   # the deprotection's steps, written when a hit needs them
            for h in [*self.drugs.identify(form), *search(form)]:
                if h.score <= 0 or h.substance_id in found:
                    continue
                if not texts:
                    parent = std.smiles
                    for step in pg.steps:
                        texts.append(
                            f"{self.rules.step_text(parent, step)[0]} gives {step.product}")
                        parent = step.product
                found.add(h.substance_id)
                steps = pg.steps + (h.route.steps if h.route is not None else ())
                hits.append(replace(h, score=round(h.score - 0.01 * pg.depth, 4),
                                    route=Route(steps),
                                    reason="; then ".join(texts) + "; then " + h.reason))
        return hits

    def _groups(self, mol: Chem.Mol, words: _Lazy, keep_all: bool,
                smiles: str | None = None) -> list[Hit]:
        """6. Generic groups. The pattern fingerprint screens the groups' queries only when
        stage 3 made it: making it for this costs more than matching the dozen groups directly
        (0.26 s vs 0.11 s on the 433 of 3,000 MOSES molecules that pass the group gate).
        ``smiles`` (``Chem.MolToSmiles(mol)``): the gate and what each group query demands are
        then asked of the C matcher first."""
        screen = words.value if words.done else None
        gate = self._group_gates_fast.matches(mol, smiles)
        if keep_all or (bool(gate) if gate is not None
                        else any(mol.HasSubstructMatch(q) for q in self._group_gates)):
            groups = self.groups.match(mol, screen, smiles=smiles)
        elif self._ungated_groups:
            groups = self.groups.match(mol, screen, only=self._ungated_groups, smiles=smiles)
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

    def _gate_answers(self, std: Standardized, floor: float, bulk_floor: float
                      ) -> tuple[bool, bool, bool]:
        """(``std`` holds a flaggable listed substance's skeleton of ``floor`` atoms or more: the
        conversion search and containment run; it holds such a skeleton untyped (an aroyl where
        the target has an acetyl): containment runs; the conversion search runs, for a bulk
        target of ``bulk_floor`` atoms or more if not for the first). The three gates in one
        call of the C matcher (`GateSet`) where it answers, else one by one."""
        if self._gate_set is not None:
            answers = self._gate_set.holds(std.mol, std.smiles, (floor, floor, bulk_floor))
            if answers is not None:
                gated, untyped, bulk = answers
                return gated, gated or untyped, gated or (
                    bulk and bulk_floor <= self._max_bulk_atoms)
        if self._gated(std.mol, floor, smiles=std.smiles):
            return True, True, True
        contain = self._skeleton_gate is not None and self._skeleton_gate.passes(
            std.mol, floor, std.smiles)
        return False, contain, self._gated(std.mol, bulk_floor, bulk=True, smiles=std.smiles)

    def _gated(self, mol: Chem.Mol, floor: float = 0.0, last_step: bool = False,
               bulk: bool = False, smiles: str | None = None) -> bool:
        """True when ``mol`` holds the skeleton of a flaggable listed substance (of at least
        ``floor`` heavy atoms); ``bulk``: of a bulk one (which flags in its own band).
        ``smiles``: ``Chem.MolToSmiles(mol)`` when the caller has it (the gate's C path)."""
        route_gate, gates = ((self._bulk_route_gate, self._bulk_gates) if bulk
                             else (self._route_gate, self._gates))
        if bulk and floor > self._max_bulk_atoms:
            return False
        if route_gate is not None:
            return (route_gate.unmask_ok(mol, floor, smiles) if last_step
                    else route_gate.passes(mol, floor, smiles))
        if gates is None:
            return True   # a list too long to gate: every candidate is searched
        return any(mol.HasSubstructMatch(q) for q in gates)

    def _bulk_floor(self, n_atoms: int) -> float:
        """Fewest heavy atoms a bulk target needs to flag from a candidate of ``n_atoms``."""
        p = self.parameters
        return max(BULK_MIN_KEPT * n_atoms, n_atoms - p.max_removed_atoms, p.min_target_atoms)

    def _plan_gates(self, bulk: bool, typed: bool = True
                    ) -> tuple[tuple[Chem.Mol, ...] | None, RouteGate | None]:
        """Skeleton queries of the flaggable listed substances (``bulk``: of the bulk ones of at
        least `ScreenParameters.min_target_atoms`): refined (`rules.gates`) when the rules keep
        what the argument needs, else the plain skeletons (elements and bonds only); their atoms
        typed aromatic or not (``typed``) when no rule changes an atom's aromaticity.

        A list of more than :data:`GATE_MAX_TARGETS` substances (a large user list) gets no gate
        (None): pruning the queries costs time quadratic in their number (200 s for 5,000) and
        thousands of queries would cost each candidate more than the search they save; without
        the gate every candidate is searched, with the same flags (the gate is exact)."""
        chosen = [s for i, s in enumerate(self._organic)
                  if self._bulk(s) == bulk
                  and (not bulk or (self._sizes[i] >= self.parameters.min_target_atoms
                                    and not self._solvent(s)))]
        if not chosen:
            return (), None
        if len(chosen) > GATE_MAX_TARGETS:
            return None, None
        targets = [s.parent.mol for s in chosen]
        if rules_keep_skeletons(self.rules):
            return (), RouteGate(targets, [], [],
                                 typed=typed and rules_keep_aromaticity(self.rules))
        return skeleton_gates(targets), None

    # -- evidence ------------------------------------------------------------------------------

    def _short(self, row: int) -> str:
        """The listed substance of ``row``'s short listing ('EU category 1'), worked out once
        (the nearest substances of every candidate name it)."""
        short = self._shorts.get(row)
        if short is None:
            short = self._shorts[row] = self._organic[row].short_listing()
        return short

    def _bulk(self, s: Any) -> bool:
        """A bulk chemical (EU Category 2A/2B/3, UN Table II, US List II): its own listing, or
        for an entry of a user list that of the same substance on the built-in list
        (`flag_bulk_targets` treats none as bulk)."""
        if self.parameters.flag_bulk_targets:
            return False
        if s.eu_category or s.list_name == "built-in":
            return bool(s.is_bulk)
        return s.parent is not None and s.parent.key in self._bulk_keys

    def _solvent(self, s: Any) -> bool:
        """A Category 3 chemical: the solvents (toluene, acetone, butanone, ether) and the
        mineral acids. Conversions to them never flag: nobody masks a solvent, and its "masked
        forms" are ordinary molecules that contain it."""
        return self._bulk(s) and self._category(s) == "3"

    def _category(self, s: Any) -> str:
        """The EU category: its own, or that of the same substance on the built-in list."""
        if s.eu_category:
            return str(s.eu_category)
        return self._bulk_keys.get(s.parent.key, "") if s.parent is not None else ""

    def _bulk_label(self, s: Any) -> str:
        """"EU category 2B", or "a bulk list" for a bulk chemical the EU does not list."""
        category = self._category(s)
        return f"EU category {category}" if category else "on a bulk list"

    def _similarity_to(self, mol: Chem.Mol, row: int) -> float:
        """Morgan radius-2 Tanimoto of ``mol`` to the listed substance of ``row`` (as the index
        computes it), for a reason that names that substance."""
        listed = self._bitvects.get(row)
        if listed is None:  # one by one: a 100,000-row list is not read back for one reason
            listed = self._bitvects[row] = self.recipe.bitvect(
                self._organic[row].parent.mol)  # type: ignore[union-attr]
        return round(DataStructs.TanimotoSimilarity(self.recipe.bitvect(mol), listed), 4)

    def _similar_score(self, sim: float) -> float:
        return (WEAK_WEIGHT * sim if sim < self.parameters.similar_threshold
                else SIMILAR_BASE + SIMILAR_WEIGHT * sim)

    def _identity_hit(self, ident: Any) -> Hit:
        s = ident.substance
        if ident.relation == "excluded":
            return Hit("excluded", s.id, s.name, s.list_name, SCORE_EXCLUDED,
                       f"{ident.note}: not a scheduled precursor under {s.short_listing()}")
        what = {"identical": f"is {s.name}", "salt": f"is {ident.note}",
                "stereoisomer": f"is {ident.note} (the annex covers stereoisomers)",
                "family": f"is {ident.note}"}[ident.relation]
        if s.status != "scheduled" and s.list_name == "built-in":
            return Hit(ident.relation, s.id, s.name, s.list_name, SCORE_NOT_YET_LISTED,
                       f"{what}, {s.listing()}")
        listing = "" if ident.relation == "family" else f", {s.listing()}"  # the note names it
        return Hit(ident.relation, s.id, s.name, s.list_name, SCORE_LISTED, f"{what}{listing}",
                   similarity=1.0)

    def _product_key(self, smiles: str) -> str:
        """The identity key of a product of the latest conversion search (its standardized
        parent's key, made when the search met it), else of the SMILES read afresh."""
        product = self.rules.product(smiles)
        if product is not None:
            return product.key
        key = self._key_cache.get(smiles)
        if key is None:
            mol = Chem.MolFromSmiles(smiles)
            key = Chem.MolToSmiles(mol, isomericSmiles=False) if mol is not None else ""
            if len(self._key_cache) > 100_000:
                self._key_cache.clear()
            self._key_cache[smiles] = key
        return key

    def _route_hit(self, route: Route, std: Standardized, n_atoms: int) -> Hit | None:
        """The hit of a route whose product is listed (None otherwise), its reason written from
        the route found: each step in order with what it actually removed, the counts of mask
        removals and conversions, and how many of the candidate's heavy atoms the product
        keeps."""
        targets = self._by_key.get(self._product_key(route.product))
        if not targets:
            return None
        # the listed stereoisomer the product is, when the route kept the stereo (pseudoephedrine
        # from t-Boc-pseudoephedrine, not ephedrine); else the first with that constitution
        s = next((t for t in targets if t.parent.smiles == route.product), targets[0])
        mol = Chem.MolFromSmiles(route.product)
        if mol is not None and any(smi == Chem.MolToSmiles(mol) for _, smi in s.excluded_keys):
            return None  # e.g. a route to cathine is not a route to norephedrine
        size = mol.GetNumHeavyAtoms() if mol is not None else 0
        share = self._share(route, std, n_atoms, size)
        masks = sum(self._is_mask(step) for step in route.steps)
        reason = (f"converts in {_route_words(route.depth, masks)} to {s.name} ({s.listing()}): "
                  + "; then ".join(share.texts) + f" (keeps {share.kept} of {n_atoms} heavy atoms"
                  + (f"; {share.protecting} came off in protecting groups)" if share.protecting
                     else ")"))
        p = self.parameters
        bulk = self._bulk(s)
        frac, removed = share.frac, share.removed
        weak = self._weak(s, share, size)
        base = BULK_BASE if bulk else CONVERTS_BASE
        score = base + CONVERTS_KEPT * min(frac, 1.0) - CONVERTS_PER_STEP * (route.depth - 1)
        category = self._bulk_label(s)
        if weak:
            score = 0.0
            why = (f"{s.name} is a bulk chemical ({category}) and " + (
                   "a solvent or mineral acid, which nobody masks" if self._solvent(s)
                   else "the route ends in a small molecule" if size < p.min_target_atoms
                   else "the route keeps too little of the candidate") if bulk
                   else "the product is a small part of the candidate")
            reason += f"; not flagged: {why}"
        elif bulk:
            reason += (f"; {s.name} is a bulk chemical ({category}, traded by the tonne): "
                       "flagged in the bulk score band")
        return Hit("converts", s.id, s.name, s.list_name, round(score, 4), reason, route=route,
                   atoms_removed=removed)

    def _rule_of(self, step: Any) -> ConversionRule:
        try:
            return self.rules.rule(step.rule_id)
        except KeyError:
            return _UNKNOWN_RULE

    def _share(self, route: Route, std: Standardized, n_atoms: int, size: int) -> _Share:
        """What a route keeps of the candidate and what comes off: each step's text, the heavy
        atoms kept and removed (protecting groups apart), the product's share of the rest."""
        texts, gone, protecting, parent = [], 0, 0, std.smiles
        for i, step in enumerate(route.steps):
            text, piece = self.rules.step_text(parent, step)
            atoms = sum(Chem.MolFromSmiles(p).GetNumHeavyAtoms() for p in piece.split(".") if p)
            gone += atoms
            if self._rule_of(step).protecting_group:   # comes off whatever its size
                protecting += atoms
            texts.append(text if i == route.depth - 1 else f"{text} gives {step.product}")
            parent = step.product
        removed = min(max(n_atoms - size, gone), n_atoms)
        own = max(n_atoms - protecting, 1)
        return _Share(tuple(texts), n_atoms - removed, removed, protecting,
                      min(size, own) / own, removed - protecting)

    def _weak(self, s: Any, share: _Share, size: int) -> bool:
        """A route too weak to flag: what comes off is not small (masking groups) and the
        product is not most of the candidate; a bulk target needs both, and never a solvent."""
        p = self.parameters
        if self._bulk(s):
            return (self._solvent(s) or share.frac < BULK_MIN_KEPT
                    or share.other > p.max_removed_atoms or size < p.min_target_atoms)
        return share.frac < p.min_kept_fraction and share.other > p.max_removed_atoms

    def _is_mask(self, step: Any) -> bool:
        return self._rule_of(step).is_mask

    def _verdict(self, rec: Record, std: Standardized, hits: list[Hit], best_sim: float,
                 keep_all: bool, work: Standardized | None = None) -> Verdict:
        if self._secret_lists:  # a confidential entry is named only where it raises a flag
            hits = [h for h in hits
                    if h.list_name not in self._secret_lists or h.score >= FLAG_FLOOR]
        hits.sort(key=lambda h: -h.score)
        top = hits[0] if hits else None
        flag = Flag.NONE
        if top is not None and top.score >= FLAG_FLOOR:
            flag = _flag_of(top)
        score = (top.score if top is not None and flag is not Flag.NONE
                 else NONE_WEIGHT * min(best_sim, NONE_CAP))
        if flag is Flag.NONE:
            reason, match = self._none_reason(hits, best_sim)
        else:
            reason, match = top.reason, top  # type: ignore[union-attr]
        work = work or std
        similarity = self._named_similarity(work, match) if match is not None else best_sim
        if work is not std and match is not None and match.relation != "isotopologue":
            reason = f"(isotope labels set aside: {work.smiles}) {reason}"
        kept = tuple(hits) if keep_all else tuple(h for h in hits[:5])
        return Verdict(rec.row, rec.id, rec.smiles, "ok", flag, round(score, 4), reason,
                       round(similarity, 4), match.substance_id if match else "",
                       match.substance_name if match else "", std.smiles, kept,
                       round(best_sim, 4))

    def _none_reason(self, hits: list[Hit], best_sim: float) -> tuple[str, Hit | None]:
        """The reason of a row that raises no flag, and the hit whose substance it names."""
        weak = skeleton = near = None    # the first hit of each kind, in one pass
        for h in hits:
            relation = h.relation
            if relation == "similar":
                near = near or h
            elif relation == "excluded":
                return h.reason, h
            elif relation in ("converts", "drug"):
                weak = weak or h
            elif relation == "skeleton":
                skeleton = skeleton or h
        if weak is not None:
            return weak.reason, weak
        if skeleton is not None:
            return (f"no listed substance, conversion or group; {skeleton.reason} (Tanimoto "
                    f"below {self.parameters.similar_threshold})", skeleton)
        if near is not None:
            return (f"no listed substance, conversion or group; nearest is {near.substance_name} "
                    f"(Tanimoto {near.similarity:.2f}, below {self.parameters.similar_threshold})",
                    near)
        return "no listed substance, conversion or group found", None

    def _named_similarity(self, std: Standardized, hit: Hit) -> float:
        """Morgan radius-2 Tanimoto of the candidate to the substance a hit's reason names: a
        listed substance, a controlled drug, the member of a drug family a route reaches, or a
        group's first parent."""
        if hit.similarity:
            return hit.similarity
        other: Chem.Mol | None = None
        if hit.list_name in (DRUG_LIST, GROUP_LIST):
            if hit.list_name == GROUP_LIST and hit.route is not None:
                other = Chem.MolFromSmiles(hit.route.product)
            else:
                try:
                    target = self.drugs.registry.get(hit.substance_id)
                except KeyError:
                    target = None
                other = target.parent.mol if target is not None and target.parent else None
        else:
            row = self._row_of.get(hit.substance_id)
            if row is not None:
                return self._similarity_to(std.mol, row)
            try:
                listed = builtin_registry().get(hit.substance_id)
            except KeyError:
                listed = None
            other = listed.parent.mol if listed is not None and listed.parent else None
        if other is None:
            return 0.0
        return round(DataStructs.TanimotoSimilarity(self.recipe.bitvect(std.mol),
                                                    self.recipe.bitvect(other)), 4)


@dataclass(frozen=True)
class _Share:
    """What a route keeps of a candidate (`Screener._share`)."""

    texts: tuple[str, ...]
    kept: int
    removed: int
    protecting: int
    frac: float
    other: int


_UNKNOWN_RULE = ConversionRule("", "", "", "", "", "", (), ())
"""Stands for a step whose rule the screen's rule set does not hold (a route from elsewhere)."""


def _for_record(verdict: Verdict, rec: Record) -> Verdict:
    """``verdict`` (of the same structure) as the answer for ``rec``: its row, id and input
    (cut short, as :func:`_failed` does, where the input could not be screened)."""
    text = rec.smiles if verdict.status == "ok" else shown(rec.smiles, 200)
    if (verdict.row, verdict.id, verdict.input_smiles) == (rec.row, rec.id, text):
        return verdict
    return replace(verdict, row=rec.row, id=rec.id, input_smiles=text)


class _Repeats:
    """The verdicts of the latest structures screened in this process, to answer repeats.

    A verdict depends on the record only through its row, id and input text; the rest comes
    from the standardized parent. So a repeat gets the earlier verdict with those three
    replaced: found by the same SMILES text (no parsing at all), or by the same parent,
    :data:`ParentKey`: everything ``standardize`` returns (isomeric SMILES: stereo decides
    exclusions such as cathine, isotopes make an isotopologue; the steps: a salt is reported as
    "a salt of"; the mixture components, screened for identity) and the RDKit molecule itself,
    atom order included (:meth:`Screener._parent_key`). Everything else a verdict depends on
    (list, jurisdictions, date, groups, parameters) is fixed when the screener is built, and
    each screener has its own. Only finished verdicts and reading statuses are kept: an
    internal error is not (the repeat is screened again), and a timeout never reaches this
    process's memory (its worker is killed). The tests screen corpora with repeats written
    many ways (atoms renumbered, salts, solvates, stereo removed, mixtures) with and without
    this and compare every row. At most ``size`` of each kind are kept (the oldest go first):
    verdicts are plain Python objects, a few kB each, holding no RDKit molecule.
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


def _find_name(name: str, reference: Any) -> Any:
    """The substance ``name`` names on ``reference``, else on the full built-in list."""
    try:
        return reference.find(name)
    except LookupError:
        return builtin_registry().find(name)


def _route_words(steps: int, masks: int) -> str:
    """"one step", "2 steps (1 mask removal, 1 conversion)", "3 mask removals", ..."""
    counted = steps - masks
    if steps == 1:
        return "one step" + (" (a mask removal)" if masks else "")
    if not counted:
        return f"{steps} mask removals"
    if not masks:
        return f"{steps} steps"
    return (f"{steps} steps ({masks} mask removal{'s' if masks > 1 else ''}, {counted} "
            f"conversion{'s' if counted > 1 else ''})")


_SAME = ("identical", "salt", "stereoisomer", "family", "isotopologue", "tautomer")
"""Relations by which a candidate *is* a listed substance (the annex covers salts and
stereoisomers, a listing's family clause its members; an isotopologue or a tautomer is the same
substance)."""


def _flag_of(hit: Hit) -> Flag:
    if hit.relation in _SAME or hit.relation == "mixture":
        return Flag.SCHEDULED if hit.score >= 1.0 else Flag.SIMILAR
    if hit.relation in ("converts", "acylating", "same-ion", "builds"):
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


PARALLEL_REFERENCE = 10_000
"""From this many reference structures on, they are prepared (fingerprints, building steps) on
every core."""

_Parts = tuple[Any, Any, Any, list[list[Found]], list[int], list[int]]


class _Preparer:
    """A screener's per-substance work on one reference parent: (tag, Morgan bits, pattern bits,
    building substrates, heavy atoms, atoms). The tag (version, recipes, building rules) says
    what made it, so work done elsewhere (`prepare_parent`, where a list is read) is used only
    by a screener that would have made the same."""

    def __init__(self, similarity: Any, pattern: Any, builder: Builder) -> None:
        self.tag = (__version__, similarity.name, str(similarity.params), pattern.name,
                    str(pattern.params), builder.rules.source)
        self.similarity, self.pattern, self.builder = similarity, pattern, builder
        self._similar_fp, self._pattern_fp = similarity.packer(), pattern.packer()

    def __call__(self, parent: Standardized) -> tuple[Any, ...]:
        # a stored parent is read into a copy, not kept: a worker's memory stays that of a part
        std = parent.unpacked() if isinstance(parent, StoredParent) else parent
        mol = std.mol
        return (self.tag, self._similar_fp(mol), self._pattern_fp(mol, std.smiles),
                self.builder.substrates(std), mol.GetNumHeavyAtoms(), mol.GetNumAtoms())


@functools.lru_cache(maxsize=1)
def _preparer() -> _Preparer:
    """The screener's preparer (the shipped recipes and building rules), once a process."""
    recipes = load_recipes()
    return _Preparer(recipes["morgan2"], recipes["pattern"], Builder())


def prepare_parent(parent: Standardized) -> tuple[Any, ...]:
    """A screener's per-substance work on one reference parent (`_Preparer`). Given to
    `reference.load_reference_file` as ``prepare``, it runs where a long list is read (on its
    worker processes), so each molecule is read once; `Screener` uses what it left."""
    return _preparer()(parent)


_PREPARING: tuple[list[Any], _Preparer] | None = None


def _prepare_reference(organic: list[Any], preparer: _Preparer) -> _Parts:
    """(similarity bits, their popcounts, pattern bits, building substrates, heavy atoms,
    atoms) of the organic reference structures. Each parent's is what `prepare_parent` left on
    it where the list was read, when its tag is ``preparer``'s; the others are prepared here, a
    large number of them (a user's 100,000 entries) on worker processes, which inherit the list
    (fork), read the molecules of their share (`StoredParent`) and return the work done."""
    extras = [getattr(s.parent, "extra", None) for s in organic]
    missing = [i for i, e in enumerate(extras) if e is None or e[0] != preparer.tag]
    jobs = os.cpu_count() or 1
    if len(missing) < PARALLEL_REFERENCE or jobs < 2:
        made = [preparer(organic[i].parent) for i in missing]
    else:
        parents = [organic[i].parent for i in missing]
        step = -(-len(parents) // (4 * jobs))
        tasks = [(lo, min(lo + step, len(parents))) for lo in range(0, len(parents), step)]
        made = [e for part in ordered_map(_reference_part, tasks, jobs, _init_reference,
                                          (parents, preparer)) for e in part]
    for i, e in zip(missing, made):
        extras[i] = e
    bits = np.frombuffer(b"".join(e[1] for e in extras), dtype=np.uint8).reshape(
        len(extras), preparer.similarity.code_size)
    patterns = np.frombuffer(b"".join(e[2] for e in extras), dtype=np.uint8).reshape(
        len(extras), preparer.pattern.code_size)
    return (bits, popcounts(bits), patterns, [e[3] for e in extras], [e[4] for e in extras],
            [e[5] for e in extras])


def _init_reference(parents: list[Any], preparer: _Preparer) -> None:
    global _PREPARING
    _PREPARING = (parents, preparer)


def _reference_part(task: tuple[int, int]) -> list[tuple[Any, ...]]:
    assert _PREPARING is not None
    parents, preparer = _PREPARING
    return [preparer(p) for p in parents[task[0]:task[1]]]


def _failed(rec: Record, status: str) -> Verdict:
    """The verdict of a record that could not be screened: its status, no flag, the input
    echoed (cut short when long: a 1 GB line is not copied into the output)."""
    return Verdict(rec.row, rec.id, shown(rec.smiles, 200), status, None)


def _internal(exc: Exception) -> str:
    return f"error: {type(exc).__name__} while screening: {shown(str(exc), 200)} (please report)"


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
    timeout = kwargs.pop("timeout", None)
    client = kwargs.pop("client", None)
    return Screener(**kwargs).screen(molecules, jobs=jobs, timeout=timeout, client=client)
