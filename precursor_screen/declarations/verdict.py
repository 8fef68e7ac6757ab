"""The verdict for a declaration row: resolved structures screened, CN rules, consistency checks.

    declaration -> resolve (SMILES/InChI, CAS, name, OPSIN) -> screen each distinct structure
                -> CN rules (listed code, designer heading, heading consistency)
                -> sources agree? -> verdict, reasons, rules fired
                -> a listed substance: its listings' thresholds and mixture rules against the
                   declared quantity and concentration

Verdicts, strongest first: ``scheduled`` (a listed substance, by structure or by a CN subheading
that names one), ``below-threshold`` (a listed substance, but the declared quantity or
concentration is below every threshold that applies in the screen's jurisdictions), ``suspect``
(a designer-precursor flag from the screen, a designer heading beside structure evidence, or a
declaration that contradicts itself), ``clear``, ``unresolved`` (no structure could be
determined). The strongest piece of evidence decides; every piece is a reason. The threshold and
mixture rules are data (``scheduled_substances/thresholds.tsv``); each one applied is named in the
reason and in ``rules`` (``threshold:<rule>``); a listed substance declared without a quantity
says so (``quantity:unknown``), and nothing is assumed where no rule is encoded.

A verdict is a pure function of the row's fields and the :class:`DeclarationConfig`: caches change
speed only, so chunks, processes, Dask workers and resumed runs give identical rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from rdkit import Chem

from precursor_screen.chem.standardize import (
    Standardized,
    StandardizeError,
    standardize,
)
from precursor_screen.declarations.cnrules import CnCode, CnRules, parse_cn
from precursor_screen.declarations.resolve import (
    Entry,
    Opsin,
    Resolution,
    Resolved,
    Resolver,
    build_table,
    load_mapping_file,
)
from precursor_screen.declarations.schema import Declaration
from precursor_screen.io.readers import Record
from precursor_screen.manifest import file_sha256
from precursor_screen.reference import builtin_registry
from precursor_screen.results import DECLARATIONS, names
from precursor_screen.screen import Screener, ScreenParameters
from precursor_screen.types import FLAG_ORDER, Flag
from precursor_screen.version import __version__
from scheduled_substances.validate import content_hash

__all__ = ["VERDICTS", "OUTPUT_COLUMNS", "DeclarationConfig", "DeclarationScreener",
           "DeclarationVerdict", "ScreenResult", "reference_inventory"]

VERDICTS = ("scheduled", "below-threshold", "suspect", "clear", "unresolved")
_LEVEL = {"unresolved": 0, "clear": 1, "suspect": 2, "scheduled": 3}
_SUSPECT_FLAGS = (Flag.CONVERTIBLE, Flag.DRUG_PRECURSOR, Flag.GROUP, Flag.SIMILAR)
_IDENTITY = ("identical", "salt", "stereoisomer", "isotopologue", "tautomer", "mixture")

OUTPUT_COLUMNS = names(DECLARATIONS)
"""Output columns (``precursor_screen.results.DECLARATIONS``): the verdict, then the declared
fields echoed (so ``rescreen`` needs nothing but the output), then the version stamps."""


def _data_sha256() -> str:
    """sha256 over the shipped data files, in name order: part of every run's identity."""
    h = hashlib.sha256()
    base = resources.files("precursor_screen.declarations") / "data"
    for name in sorted(p.name for p in base.iterdir() if p.name.endswith((".tsv", ".toml"))):
        h.update(name.encode())
        h.update(Path(str(base / name)).read_bytes())
    return h.hexdigest()


def reference_inventory(reference: Any) -> list[dict[str, Any]]:
    """The reference list, substance by substance, small enough for an output's metadata.

    ``rescreen`` diffs two inventories to find what a list change added and removed; ``digest``
    changes whenever anything recorded about the substance does. A confidential list
    (``--extra-reference``) is one entry: its name, size and content hash, never its records
    (a change in it makes ``rescreen`` redo every row).
    """
    out = []
    secret: dict[str, list[Any]] = {}
    for s in reference:
        if getattr(s, "confidential", False):
            secret.setdefault(s.list_name, []).append(s)
            continue
        row = s.as_row()
        digest = hashlib.sha256(json.dumps(row, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        out.append({"id": s.id, "name": s.name, "list": s.list_name, "status": s.status,
                    "eu_category": s.eu_category, "eu_act": s.eu_act,
                    "eu_date": s.eu_date.isoformat() if s.eu_date else "",
                    "smiles": s.smiles, "cas": list(s.cas),
                    "cn_codes": list(s.cn_codes), "synonyms": list(s.synonyms),
                    "digest": digest[:16]})
    for name, records in secret.items():  # a confidential list: its hash and size, no entry
        out.append({"id": f"{name} (confidential)", "name": f"confidential list {name}",
                    "list": name, "confidential": True, "size": len(records),
                    "digest": content_hash(records)[:16]})
    return out


@dataclass(frozen=True)
class DeclarationConfig:
    """Everything a verdict depends on; it pickles, and Dask workers rebuild the screener from it.

    ``mappings`` holds the user mapping files already read (workers need not see the files);
    ``mapping_files`` their paths and sha256 for the record.
    """

    reference: Any
    parameters: ScreenParameters = field(default_factory=ScreenParameters)
    mappings: tuple[tuple[str, tuple[tuple[Entry, tuple[str, ...], tuple[str, ...]], ...]], ...] = ()
    mapping_files: tuple[tuple[str, str], ...] = ()
    opsin: bool = False

    @classmethod
    def create(cls, reference: Any, parameters: ScreenParameters | None = None,
               mapping_files: Sequence[str] = (), opsin: bool = False) -> "DeclarationConfig":
        maps = []
        for path in mapping_files:
            table, entries = load_mapping_file(path)
            maps.append((table, tuple(entries)))
        return cls(reference, parameters or ScreenParameters(), tuple(maps),
                   tuple((p, file_sha256(p)) for p in mapping_files), opsin)

    def parameters_dict(self) -> dict[str, Any]:
        """The parameters recorded in the output metadata (and hashed into the run's identity)."""
        return {"screen": self.parameters.as_dict(), "opsin": self.opsin,
                "mapping_files": [{"path": p, "sha256": h} for p, h in self.mapping_files],
                "declarations_data_sha256": _data_sha256()}

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of everything that decides a verdict (tool version, list, parameters, data)."""
        version = getattr(self.reference, "version", None)
        blob = json.dumps({"tool": __version__,
                           "reference": version() if version else self.reference.content_hash,
                           "parameters": self.parameters_dict()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ScreenResult:
    """What the structure screen said about one resolved structure."""

    status: str
    flag: Flag | None
    reason: str = ""
    match_id: str = ""
    match_name: str = ""
    similarity: float = 0.0
    parent: Standardized | None = None
    identities: frozenset[str] = frozenset()
    near: tuple[tuple[str, float], ...] = ()

    @property
    def level(self) -> str:
        if self.flag is None:
            return "unresolved"
        if self.flag is Flag.SCHEDULED:
            return "scheduled"
        return "suspect" if self.flag in _SUSPECT_FLAGS else "clear"


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What a declaration is found to be: the verdict, its reason and evidence."""

    verdict: str
    reason: str
    rules: tuple[str, ...]
    flag: str
    match_id: str
    match_name: str
    similarity: float
    resolved_smiles: str
    resolved_by: str


@dataclass(frozen=True, slots=True)
class DeclarationVerdict(_Outcome):
    """The answer for one declaration row: one per row, always."""

    row: int
    declaration_id: str
    declaration: Declaration

    def as_row(self, tool_version: str, reference_sha256: str) -> tuple[Any, ...]:
        """The output row, in OUTPUT_COLUMNS order."""
        d = self.declaration
        return (self.row, self.declaration_id, self.verdict, self.reason, ";".join(self.rules),
                self.flag, self.match_id, self.match_name, self.similarity, self.resolved_smiles,
                self.resolved_by, d.cn_code, d.cas, d.name, d.smiles, d.description, d.quantity_kg,
                d.concentration_pct, tool_version, reference_sha256)


@dataclass(frozen=True, slots=True)
class _Template(_Outcome):
    """A verdict without the row's identity: shared by every row declaring the same thing."""

    rules_text: str = ""
    listed: tuple[str, ...] = ()   # the listed substances a scheduled verdict rests on


class DeclarationScreener:
    """Judges chunks of declarations against one reference list; build once, reuse.

    >>> ds = DeclarationScreener.build()
    >>> v = ds.judge([Declaration(0, "D1", cn_code="2914 31 00", cas="103-79-7")])[0]
    >>> v.verdict, v.resolved_by, v.match_id
    ('scheduled', 'cas:registry', 'bmk')
    """

    CACHE_LIMIT = 200_000

    def __init__(self, config: DeclarationConfig) -> None:
        self.config = config
        self.screener = Screener(config.reference, parameters=config.parameters)
        table = build_table([builtin_registry(), config.reference], True, config.mappings)
        self.resolver = Resolver(table, Opsin() if config.opsin else None)
        self.rules = CnRules(config.reference)
        self._substances = {s.id: s for s in config.reference}
        self._screened: dict[str, ScreenResult] = {}
        self._templates: dict[tuple[str, ...], _Template] = {}
        self._known: dict[tuple[str, ...], _Template] = {}  # resolved without the description
        self._amounts: dict[tuple[_Template, str, str], _Template] = {}
        self._vocabulary = getattr(config.reference, "vocabulary", None)
        self.structures_screened = 0

    @classmethod
    def build(cls, reference: Any = None, **kwargs: Any) -> "DeclarationScreener":
        """A screener for the built-in list (or ``reference``); kwargs go to DeclarationConfig.create."""
        if reference is None:
            parameters = kwargs.get("parameters")
            reference = builtin_registry().filter(
                jurisdictions=parameters.jurisdictions if parameters is not None else None)
        return cls(DeclarationConfig.create(reference, **kwargs))

    # -- public --------------------------------------------------------------------------------

    def judge(self, decls: Sequence[Declaration]) -> list[DeclarationVerdict]:
        """One verdict per declaration, in order."""
        return [DeclarationVerdict(t.verdict, t.reason, t.rules, t.flag, t.match_id, t.match_name,
                                   t.similarity, t.resolved_smiles, t.resolved_by,
                                   row=d.row, declaration_id=d.declaration_id, declaration=d)
                for d, t in zip(decls, self._templates_for(decls))]

    def judge_rows(self, decls: Sequence[Declaration], tool_version: str,
                   reference_sha256: str) -> list[tuple[Any, ...]]:
        """Output rows (OUTPUT_COLUMNS order) for declarations: :meth:`judge` without the objects."""
        return [(d.row, d.declaration_id, t.verdict, t.reason, t.rules_text, t.flag, t.match_id,
                 t.match_name, t.similarity, t.resolved_smiles, t.resolved_by, d.cn_code, d.cas,
                 d.name, d.smiles, d.description, d.quantity_kg, d.concentration_pct, tool_version,
                 reference_sha256)
                for d, t in zip(decls, self._templates_for(decls))]

    def _templates_for(self, decls: Sequence[Declaration]) -> list[_Template]:
        """The verdict template of each row. Rows declaring what an earlier row declared, and
        resolved without the description, skip resolution: one dict lookup."""
        out: list[Any] = [None] * len(decls)
        pending = []
        known = self._known
        for i, d in enumerate(decls):
            if d.error:
                out[i] = self._malformed(d)
            else:
                t = known.get((d.smiles, d.cas, d.name, d.cn_code))
                if t is None:
                    pending.append(i)
                else:
                    out[i] = t
        if pending:
            todo = [decls[i] for i in pending]
            resolutions = self.resolver.resolve_all(todo)
            self._screen_new(resolutions)
            for i, d, r in zip(pending, todo, resolutions):
                out[i] = self._template(d, r)
        return [self._amount(d, t) if t.listed else t for d, t in zip(decls, out)]

    def screen_result(self, smiles: str) -> ScreenResult:
        """The screen's answer for one resolved structure (screened on first use)."""
        if smiles not in self._screened:
            self._screen_batch([smiles])
        return self._screened[smiles]

    # -- screening -----------------------------------------------------------------------------

    def _screen_new(self, resolutions: Any) -> None:
        if len(self._screened) > self.CACHE_LIMIT:
            self._screened.clear()
        seen: dict[str, None] = {}
        for r in resolutions:
            for f in r.found:
                if f.smiles not in self._screened:
                    seen.setdefault(f.smiles)
        if seen:
            self._screen_batch(list(seen))

    def _screen_batch(self, smiles: list[str]) -> None:
        records = [Record(i, s, s) for i, s in enumerate(smiles)]
        for s, v in zip(smiles, self.screener.screen(records, jobs=1)):
            parent = None
            if v.status == "ok":
                try:
                    parent = standardize(Chem.MolFromSmiles(s))
                except StandardizeError:
                    parent = None
            self._screened[s] = ScreenResult(
                v.status, v.flag, v.reason, v.match_id, v.match_name, round(v.nearest, 4), parent,
                frozenset(h.substance_id for h in v.hits if h.relation in _IDENTITY),
                tuple((h.substance_id, h.similarity) for h in v.hits if h.relation == "similar"))
            self.structures_screened += 1

    # -- verdict -------------------------------------------------------------------------------

    @staticmethod
    def _malformed(d: Declaration) -> _Template:
        return _Template("unresolved", d.error, ("input:malformed",), "", "", "", 0.0, "", "",
                         "input:malformed")

    def _template(self, d: Declaration, res: Resolution) -> _Template:
        without_description = bool(res.found) and res.found[0].source != "description"
        key = (d.smiles, d.cas, d.name, d.cn_code, "" if without_description else d.description)
        hit = self._templates.get(key)
        if hit is None:
            hit = self._decide(d, res)
            if len(self._templates) > self.CACHE_LIMIT:
                self._templates.clear()
                self._known.clear()
            self._templates[key] = hit
        if without_description:
            self._known[key[:4]] = hit
        return hit

    def _decide(self, d: Declaration, res: Resolution) -> _Template:
        evidence: list[tuple[int, str, str]] = []   # (level, rule, sentence)
        notes: list[tuple[str, str]] = []           # (rule, sentence): reported, never decide
        cn = parse_cn(d.cn_code)
        if cn is not None and cn.problem:
            notes.append(("input:cn-code", cn.problem))
        for p in res.problems:
            notes.append(("input:cas" if p.startswith("CAS") else "input:structure", p))

        structures: list[Resolved] = []
        for f in res.found:
            if all(f.key != s.key for s in structures):
                structures.append(f)
        multi = len(structures) > 1
        contradiction = _sources_disagree(res.found)
        if contradiction:
            evidence.append((2, "consistency:sources", "declaration contradicts itself: " + contradiction))

        results = [(r, self.screen_result(r.smiles)) for r in structures]
        for r, s in results:
            prefix = f"{r.describe()}: " if multi else ""
            if s.flag is None:
                evidence.append((0, "screen:unusable", prefix + s.status))
            else:
                evidence.append((_LEVEL[s.level], f"screen:{s.flag.value}", prefix + s.reason))

        listed_match: Any = None
        if cn is not None and not cn.problem:
            listed_match = self._cn_evidence(cn, results, evidence)
        if not structures:
            if res.misses:
                why = ": " + "; ".join(res.misses)
            else:
                why = "" if res.problems else ": no SMILES, InChI, CAS number or name given"
            evidence.append((0, "unresolved", f"no structure could be determined{why}"))

        evidence.sort(key=lambda e: -e[0])  # stable: resolution order within a level
        level = evidence[0][0]
        sentences: list[str] = []
        rules: list[str] = []
        for _, rule, sentence in evidence + [(0, r, s) for r, s in notes]:
            if sentence not in sentences:
                sentences.append(sentence)
            if rule not in rules:
                rules.append(rule)
        ok = [(r, s) for r, s in results if s.flag is not None]
        flag, match_id, match_name, similarity = "", "", "", 0.0
        if ok:
            _, best = min(ok, key=lambda rs: FLAG_ORDER.index(rs[1].flag))  # type: ignore[arg-type]
            flag, match_id, match_name = best.flag.value, best.match_id, best.match_name  # type: ignore[union-attr]
            similarity = max(s.similarity for _, s in ok)
        if level == 3 and flag != "scheduled" and listed_match is not None:
            match_id, match_name = listed_match.id, listed_match.name
        verdict = next(v for v, n in _LEVEL.items() if n == level)
        listed: tuple[str, ...] = ()
        if verdict == "scheduled":
            ids = [i for _, s in results if s.level == "scheduled" for i in sorted(s.identities)]
            code = self.rules.listed_code(cn) if cn is not None and not cn.problem else None
            if listed_match is not None and code is not None:
                ids += [s.id for s in code.substances]
            listed = tuple(dict.fromkeys(i for i in ids if i in self._substances))
        return _Template(verdict, "; ".join(sentences), tuple(rules), flag, match_id, match_name,
                         similarity, ";".join(r.smiles for r in structures),
                         ";".join(r.resolved_by for r in structures), ";".join(rules), listed)

    # -- quantities and mixtures ----------------------------------------------------------------

    def _amount(self, d: Declaration, t: _Template) -> _Template:
        """A scheduled template with the declared quantity and concentration weighed against the
        thresholds and mixture rules of its substances' listings (cached per value)."""
        key = (t, d.quantity_kg, d.concentration_pct)
        hit = self._amounts.get(key)
        if hit is None:
            hit = self._weigh(t, d.quantity_kg, d.concentration_pct)
            if len(self._amounts) > self.CACHE_LIMIT:
                self._amounts.clear()
            self._amounts[key] = hit
        return hit

    def _weigh(self, t: _Template, quantity_text: str, concentration_text: str) -> _Template:
        quantity, q_problem = _amount_value(quantity_text, "quantity", None)
        concentration, c_problem = _amount_value(concentration_text, "concentration", 100.0)
        sentences: list[str] = [p for p in (q_problem, c_problem) if p]
        rules: list[str] = ["input:amount"] if sentences else []
        if quantity is None:
            sentences.append("quantity not declared")
            rules.append("quantity:unknown")
        weighed, below = 0, 0
        no_rule: list[str] = []
        for sid in t.listed:
            sub = self._substances[sid]
            for listing in sub.active():
                is_below, said, fired, by_quantity = self._weigh_listing(sub, listing, quantity,
                                                                         concentration)
                weighed += 1
                below += is_below
                sentences += said
                rules += fired
                if not by_quantity:
                    no_rule.append(listing.short)
        if no_rule and quantity is not None:
            lists = ", ".join(dict.fromkeys(no_rule))
            sentences.append(f"no quantity threshold is encoded for {lists}, so the "
                             f"{quantity:g} kg declared changes nothing")
            rules.append("quantity:no-rule")
        verdict = "below-threshold" if weighed and below == weighed else t.verdict
        reason = "; ".join([t.reason, *dict.fromkeys(sentences)])
        all_rules = tuple(dict.fromkeys((*t.rules, *rules)))
        return _Template(verdict, reason, all_rules, t.flag, t.match_id, t.match_name,
                         t.similarity, t.resolved_smiles, t.resolved_by, ";".join(all_rules),
                         t.listed)

    def _weigh_listing(self, sub: Any, listing: Any, quantity: float | None,
                       concentration: float | None) -> tuple[bool, list[str], list[str], bool]:
        """(below a threshold that applies, sentences, rules fired, has a quantity rule) for
        one listing."""
        vocab = self._vocabulary
        rules = [vocab.thresholds[r] for r in listing.thresholds] if vocab is not None else []
        where = f"{sub.name} on {listing.short}"
        said: list[str] = []
        fired: list[str] = []
        below = False
        for r in rules:
            if r.kind == "none":
                said.append(f"{where}: no quantity threshold, every quantity is controlled "
                            f"({r.rule})")
            elif r.kind == "quantity" and quantity is None:
                said.append(f"{where}: the threshold of {r.quantity:g} {r.unit} could not be "
                            f"applied without a quantity ({r.rule}: {r.text})")
            elif r.kind == "quantity" and r.unit != "kg":
                said.append(f"{where}: the threshold of {r.quantity:g} {r.unit} is a volume and "
                            f"was not applied to a declared mass ({r.rule})")
            elif r.kind == "quantity":
                assert quantity is not None and r.quantity is not None
                is_below = quantity < r.quantity
                below = below or is_below
                said.append(f"{where}: {quantity:g} kg declared is "
                            f"{'below' if is_below else 'at or above'} the threshold of "
                            f"{r.quantity:g} kg ({r.rule}: {r.text})")
            elif concentration is None or concentration >= 100.0:
                continue  # a mixture rule, and not a mixture
            elif r.kind == "mixture-any":
                said.append(f"{where}: a mixture with {concentration:g}% is controlled ({r.rule}: "
                            f"{r.text})")
            elif r.kind == "mixture-above":
                limit = r.concentration_pct or 0.0
                is_below = concentration <= limit
                below = below or is_below
                said.append(f"{where}: a mixture with {concentration:g}% is "
                            f"{'at or below' if is_below else 'above'} {limit:g}% "
                            f"({r.rule}: {r.text})")
            else:
                said.append(f"{where}: a mixture with {concentration:g}% is covered unless it "
                            f"cannot easily be used or extracted, which is not decided here "
                            f"({r.rule}: {r.text})")
            fired.append(f"threshold:{r.rule}")
        if concentration is not None and concentration < 100.0 and not any(
                r.kind.startswith("mixture") for r in rules):
            said.append(f"{where}: no mixture rule is encoded, so the mixture with "
                        f"{concentration:g}% counts as the substance")
            fired.append("mixture:no-rule")
        return below, said, fired, any(r.kind in ("none", "quantity") for r in rules)

    def _cn_evidence(self, cn: CnCode, results: list[tuple[Resolved, ScreenResult]],
                     evidence: list[tuple[int, str, str]]) -> Any:
        listed = self.rules.listed_code(cn)
        usable = [(r, s) for r, s in results if s.flag is not None]
        first = None
        if listed is not None and not listed.shared:
            ids = {s.id for s in listed.substances}
            first = listed.substances[0]
            evidence.append((3, "cn:listed", f"declared under CN {cn.shown()}, the subheading for "
                                             f"{listed.names()} ({listed.listing()})"))
            if usable and not any(s.identities & ids for _, s in usable):
                named = " and ".join(r.describe() for r, _ in usable)
                evidence.append((2, "consistency:cn-substance",
                                 f"declaration contradicts itself: CN {cn.shown()} is the "
                                 f"subheading for {listed.names()} but {named} is not"))
        heading_title = self.rules.designer_heading(cn)
        if heading_title:
            for r, s in usable:
                sentence = self._attention(cn, heading_title, s)
                if sentence:
                    evidence.append((2, "cn:designer-heading", sentence))
                    break
        if len(usable) == 1 and usable[0][1].parent is not None:
            why = self.rules.inconsistency(cn, usable[0][1].parent)  # type: ignore[arg-type]
            if why:
                evidence.append((2, "consistency:cn-heading", f"declaration contradicts itself: {why}"))
        return first

    def _attention(self, cn: CnCode, title: str, s: ScreenResult) -> str:
        where = (f"declared under heading {cn.heading} ({title}), where designer precursors are "
                 "typically declared")
        if s.level == "suspect":
            return where
        if s.level != "clear":
            return ""
        for sid, sim in s.near:
            sub = self._substances.get(sid)
            if sub is None or sim < self.rules.min_similarity or sub.is_bulk:
                continue
            if _family(cn.heading) in self._families(sub):
                return (f"{where}, and the structure has Morgan radius-2 Tanimoto {sim:.2f} to "
                        f"{sub.name} ({sub.short_listing()}), declared under the same heading")
        return ""

    def _families(self, sub: Any) -> set[str]:
        heads = {c.replace(" ", "")[:4] for c in sub.cn_codes}
        if not heads and sub.parent is not None:
            heads = {self.rules.functions_of(sub.parent)[1]}
        return {_family(h) for h in heads if h}


def _amount_value(text: str, what: str, most: float | None) -> tuple[float | None, str]:
    """A declared quantity or concentration as a number (None when empty), and the problem when
    it cannot be read (then it counts as not declared)."""
    value = text.strip()
    if not value:
        return None, ""
    try:
        number = float(value.replace(" ", ""))
    except ValueError:
        return None, f"{what} {value!r} is not a number: taken as not declared"
    if number < 0 or number != number or (most is not None and number > most):
        return None, f"{what} {value!r} is out of range: taken as not declared"
    return number, ""


def _family(heading: str) -> str:
    """Headings that a structure cannot tell apart count as one (2915-2918: the acids)."""
    return "2915-2918" if "2915" <= heading <= "2918" else heading


def _sources_disagree(found: Sequence[Resolved]) -> str:
    """A sentence when the structure, the CAS numbers and the name name different substances.

    Several CAS numbers that differ among themselves are a mixture, not a contradiction; a
    structure or a name must meet at least one of them.
    """
    groups: dict[str, list[Resolved]] = {"structure": [], "cas": [], "name": []}
    for f in found:
        kind = {"smiles": "structure", "inchi": "structure", "cas": "cas", "name": "name"}.get(f.source)
        if kind:
            groups[kind].append(f)
    structure, cas, name = groups["structure"], groups["cas"], groups["name"]
    keys = lambda fs: {f.key for f in fs}  # noqa: E731
    if structure and cas and not keys(structure) & keys(cas):
        return f"{cas[0].describe()} and {structure[0].describe()} are different substances"
    if name and (structure or cas) and not keys(name) & (keys(structure) | keys(cas)):
        other = (structure or cas)[0]
        return f"{name[0].describe()} and {other.describe()} are different substances"
    return ""
