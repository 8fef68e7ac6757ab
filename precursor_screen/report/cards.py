"""The card of one screened compound: the candidate and the listed substance side by side with
the shared part highlighted, the conversion path as a row of structures with rule names, the
evidence and the legal listing.

The HTML report (:mod:`precursor_screen.report.html`) draws one card per flagged row; the lab
bench (``precursor-screen serve``) draws the card of the compound it was asked about. Everything
taken from the input (ids, SMILES, names, reasons) passes through :func:`esc`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from precursor_screen.chem.depict import Drawer
from precursor_screen.reference import builtin_drugs
from precursor_screen.results import verdict_row
from precursor_screen.types import Route, Verdict

__all__ = ["Cards", "CardRow", "esc", "parse_route", "route_steps", "BIG", "SMALL", "UNREADABLE"]

BIG = (280, 210)
SMALL = (180, 135)
UNREADABLE = "unreadable"


def esc(value: Any) -> str:
    """Escape any value for HTML text and double-quoted attributes."""
    return html.escape("" if value is None else str(value), quote=True)


@dataclass(frozen=True, slots=True)
class CardRow:
    """One results row as a card sees it: the output columns plus the best hit's route as (rule,
    product) steps; ``index`` is its position among the rows added."""

    row: Mapping[str, Any]
    index: int
    steps: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of_verdict(cls, v: Verdict, index: int = 0) -> CardRow:
        """The row of a verdict; its best hit gives the relation, route and group."""
        best = v.hits[0] if v.hits else None
        return cls(verdict_row(v, "", ""), index,
                   route_steps(best.route) if best is not None else ())

    @property
    def number(self) -> int:
        try:
            return int(self.row.get("row", self.index))
        except (TypeError, ValueError):
            return self.index

    @property
    def ok(self) -> bool:
        return str(self.row.get("status", "")) == "ok"

    @property
    def flag(self) -> str:
        if not self.ok:
            return UNREADABLE
        return str(self.row.get("flag") or "none")

    @property
    def flagged(self) -> bool:
        return self.ok and self.flag != "none"

    def num(self, key: str) -> float:
        try:
            value = float(self.row.get(key) or 0.0)
        except (TypeError, ValueError):
            return 0.0
        return value if math.isfinite(value) else 0.0

    def text(self, key: str) -> str:
        value = self.row.get(key)
        return "" if value is None else str(value)


def route_steps(route: Route | None) -> tuple[tuple[str, str], ...]:
    """A route as (rule name, product SMILES) steps, the reagent named with its rule."""
    if route is None:
        return ()
    return tuple((f"{s.rule_name} (+ {s.reagent})" if s.reagent else s.rule_name, s.product)
                 for s in route.steps)


def parse_route(text: str) -> tuple[tuple[str, str], ...]:
    """Split a results file's route column back into (rule name, product SMILES) steps.

    >>> parse_route("ketal hydrolysis -> CC(=O)Cc1ccccc1")
    (('ketal hydrolysis', 'CC(=O)Cc1ccccc1'),)
    >>> parse_route("")
    ()
    """
    steps = []
    for part in (text or "").split(" | "):
        part = part.strip()
        if not part:
            continue
        rule, sep, product = part.rpartition(" -> ")
        steps.append((rule, product) if sep else (part, ""))
    return tuple(steps)


class Cards:
    """Draws cards of results rows against a reference list (and the generic groups).

    ``reference`` gives the listed substances' structures and listings; the controlled drugs
    are added for the drug-precursor flag. Drawings go into ``drawer``'s sprite, which the page
    must include once (with its CSS).
    """

    def __init__(self, reference: Any, groups: Any, drawer: Drawer) -> None:
        self.reference, self.groups, self.drawer = reference, groups, drawer
        self.substances: dict[tuple[str, str], Any] = {}
        self.by_id: dict[str, Any] = {}
        for s in reference or ():
            self.substances.setdefault((s.id, s.list_name), s)
            self.by_id.setdefault(s.id, s)
        # the controlled drugs named by drug-precursor flags (structure and control for the card)
        for t in builtin_drugs():
            self.substances.setdefault((t.id, t.list_name), t)

    def substance(self, e: CardRow) -> Any:
        key = (e.text("match_id"), e.text("match_list"))
        return self.substances.get(key) or self.by_id.get(key[0])

    def group(self, group_id: str) -> Any:
        if not group_id or self.groups is None or group_id not in self.groups:
            return None
        return self.groups[group_id]

    def card(self, e: CardRow) -> str:
        d = self.drawer
        flag, num = e.flag, e.number
        cand = e.text("standardized_smiles") or e.text("input_smiles")
        sub = self.substance(e)
        listed = _substance_smiles(sub)
        if not listed and e.text("relation") == "drug" and e.steps:
            listed = e.steps[-1][1]  # a member of a generic drug family: the route's product
        group = self.group(e.text("group_id"))
        cand_hl: tuple[int, ...] = ()
        listed_hl: tuple[int, ...] = ()
        how = ""
        if cand and listed:
            cand_hl, listed_hl = d.shared(cand, listed, loose=e.text("relation") != "similar")
            how = (f"highlighted: the part both share ({len(cand_hl)} heavy atoms)"
                   if cand_hl else "no common substructure to highlight")
        if group is not None and cand:
            mol = d.mol(cand)
            atoms = self.groups.matching_atoms(mol, group) if mol is not None else ()
            if atoms:
                cand_hl = tuple(atoms)
                how = (f"highlighted in the candidate: the {len(atoms)} atoms matched by the group's "
                       "SMARTS; in the listed substance: the part both share")
        cid = esc(e.text("id"))
        name = esc(sub.name if sub is not None else e.text("match_name"))
        cand_svg = d.use(d.draw(cand, cand_hl, BIG), BIG, f"candidate {cid}")
        inp = e.text("input_smiles")
        inp_line = (f'<div class="muted">input: <span class="smiles">{esc(inp)}</span></div>'
                    if inp and inp != cand else "")
        if listed:
            listed_svg = d.use(d.draw(listed, listed_hl, BIG), BIG, f"listed substance {name}")
        else:
            listed_svg = '<div class="mol nodraw">no structure on the reference list</div>'
        pair = (f'<div class="pair"><div class="pane cand"><div class="label">candidate</div>'
                f'<div class="name">{cid}</div>{cand_svg}<div class="smiles">{esc(cand)}</div>{inp_line}'
                f'</div><div class="pane listed"><div class="label">listed substance</div>'
                f'<div class="name">{name} <span class="muted">[{esc(e.text("match_id"))}]</span></div>'
                f'{listed_svg}<div class="smiles">{esc(listed)}</div></div></div>')
        route = self.route(e.steps, cand, sub)
        facts = [("relation", esc(e.text("relation"))),
                 ("similarity", f'Tanimoto {e.num("similarity"):.2f} (Morgan radius 2) to the nearest '
                                'listed substance'),
                 ("reason", esc(e.text("reason")))]
        if group is not None:
            smarts = "; ".join(group.smarts)
            facts.append(("group", f'{esc(group.title)} <span class="muted">({esc(group.id)}, '
                                   f'{esc(group.status)}; parents {esc(", ".join(group.parents))})</span>'
                                   f'<br><code>{esc(smarts)}</code>'))
        elif e.text("group_id"):
            facts.append(("group", f'{esc(e.text("group_id"))} <span class="muted">(definition not '
                                   f'available to this report)</span>'))
        facts += self.listing(sub, e)
        if how:
            facts.append(("drawing", esc(how)))
        dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
        return (f'<article class="card flag-{esc(flag)}" id="card-{num}" data-flag="{esc(flag)}" '
                f'data-row="{num}"><header><span class="flag flag-{esc(flag)}">{esc(flag)}</span>'
                f'<h3>{cid}</h3><span class="muted">row {num}</span><span class="score">score '
                f'{e.num("score"):.2f}</span></header>{pair}{route}<dl class="facts">{dl}</dl></article>')

    def route(self, steps: Sequence[tuple[str, str]], cand: str, sub: Any) -> str:
        """The conversion path as a row of structures: the candidate, then each step's rule and
        product; the last product is captioned with ``sub``'s name (the listed substance)."""
        if not steps:
            return ""
        d = self.drawer
        parts = [f'<figure>{d.use(d.draw(cand, (), SMALL), SMALL, "candidate", "mol small")}'
                 f'<figcaption>candidate</figcaption></figure>']
        for i, (rule, product) in enumerate(steps):
            last = i == len(steps) - 1
            caption = esc(sub.name) if last and sub is not None else f'<code>{esc(product)}</code>'
            parts.append(f'<div class="arrow"><b>\u2192</b><span>{esc(rule)}</span></div>')
            parts.append(f'<figure>{d.use(d.draw(product, (), SMALL), SMALL, esc(product), "mol small")}'
                         f'<figcaption>{caption}</figcaption></figure>')
        return f'<div class="route" aria-label="conversion path">{"".join(parts)}</div>'

    def listing(self, sub: Any, e: CardRow) -> list[tuple[str, str]]:
        if sub is None:
            where = e.text("match_list")
            return [("listing", esc(f"on list {where}" if where else "not on the reference list "
                                     "given to this report"))]
        out = [("listing", esc(sub.listing()))]
        if getattr(sub, "list_name", "built-in") == "built-in":
            out.append(("act", esc(sub.eu_act or "\u2014")))
            out.append(("lists", esc(sub.short_listing() or "\u2014")))
            out.append(("CN code", esc(", ".join(sub.cn_codes) or "\u2014")))
            if sub.cas:
                out.append(("CAS", esc(", ".join(sub.cas))))
        return out


def _substance_smiles(sub: Any) -> str:
    if sub is None:
        return ""
    parent = getattr(sub, "parent", None)
    return str(parent.smiles if parent is not None else getattr(sub, "smiles", "") or "")
