"""The report of ``group draft``: one self-contained HTML page per draft, offline and script-free.

For every family of examples: the scaffold drawn with its variable positions (R1, R2 ... and the
positions highlighted), the parents, and each candidate in rank order with its draft text
(labelled a draft for expert review, not legal advice), its SMARTS, a chart of what it covers and
what it catches besides (inline SVG), the examples, the legitimate chemicals and library compounds
it catches, and the nearest legitimate chemicals it leaves out. The page is built like the other
survey reports (:mod:`precursor_screen.report.survey`): RDKit SVG in a shared sprite, inline CSS,
a Content-Security-Policy forbidding every fetch and every script, every text from the input or
a library escaped.

The result objects come from :mod:`precursor_screen.survey.draft`; they are read here by their
attributes only (the report layer does not import the survey layer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from precursor_screen.chem.depict import Drawer
from precursor_screen.report.survey import esc, html_page, meta_table, structure_cards

__all__ = ["draft_html", "draft_text", "chart_svg"]

_SCAFFOLD = (360, 270)
_CHART_W, _BAR_H = 420, 18
_CSS = """
.draft{border-left:4px solid #c90;background:#fffbf0;padding:.5em .8em;margin:.5em 0}
.draft b{color:#a60}.cand{border:1px solid #ccc;padding:.6em 1em;margin:1em 0}
.cand.best{border:2px solid #1a6b1a}.rank{font-size:1.1em;font-weight:bold}
.scaffold svg{width:360px;height:270px}.chart text{font:12px system-ui,sans-serif}
details summary{cursor:pointer;color:#345}
"""


def chart_svg(rows: Sequence[tuple[str, float, str, str]]) -> str:
    """A horizontal bar chart as inline SVG: (label, fraction 0..1, value text, colour) per bar."""
    height = _BAR_H * len(rows) + 8
    label_w, bar_w = 190, _CHART_W - 190 - 70
    parts = [f'<svg class="chart" viewBox="0 0 {_CHART_W} {height}" width="{_CHART_W}" '
             f'height="{height}" role="img" aria-label="coverage and collateral">']
    for i, (label, frac, value, colour) in enumerate(rows):
        y = 4 + i * _BAR_H
        w = max(0.0, min(1.0, frac)) * bar_w
        parts.append(f'<text x="0" y="{y + 13}">{esc(label)}</text>'
                     f'<rect x="{label_w}" y="{y + 2}" width="{bar_w}" height="{_BAR_H - 5}" '
                     f'fill="#eee"/>'
                     f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{_BAR_H - 5}" '
                     f'fill="{colour}"/>'
                     f'<text x="{label_w + bar_w + 6}" y="{y + 13}">{esc(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _chart(c: Any, most_caught: int, most_library: int) -> str:
    m = c.measures
    rows = [("examples covered", m.examples_covered / max(1, m.examples),
             f"{m.examples_covered}/{m.examples}", "#1a6b1a"),
            ("predicted members covered", len(m.predicted_covered) / max(1, m.predicted_scaffold),
             f"{len(m.predicted_covered)}/{m.predicted_scaffold}", "#1a6b1a"),
            ("known designer precursors", min(1.0, len(m.designer_covered) / 10),
             str(len(m.designer_covered)), "#47a")]
    for name, size in m.set_sizes:
        n = m.collateral(name)
        rows.append((f"legitimate caught: {name}", n / max(1, most_caught), f"{n}/{size}",
                     "#a33"))
    if m.library is not None:
        rows.append(("library compounds captured", m.library / max(1, most_library),
                     str(m.library), "#c60"))
    return chart_svg(rows)


def draft_html(result: Any, meta: Mapping[str, Any]) -> str:
    """The draft report as one self-contained HTML page."""
    drawer = Drawer()
    body = ["<h1>Draft group definitions</h1>",
            "<p class=\"draft\"><b>Drafts for expert review, not legal advice.</b> Each text "
            "below was written by a program from a few examples; a lawyer and a chemist must "
            "check it before it is used anywhere.</p>", meta_table(meta)]
    body.append("<h2>Examples</h2><table><tr><th>row</th><th>id</th><th>SMILES</th>"
                "<th>family</th><th>status</th></tr>")
    for e in result.examples:
        body.append(f"<tr><td>{e.row}</td><td>{esc(e.id)}</td><td class=\"smi\">{esc(e.smiles)}"
                    f"</td><td>{esc(e.family or '')}</td><td>{esc(e.status)}</td></tr>")
    body.append("</table>")
    for note in result.notes:
        body.append(f"<p class=\"note\">{esc(note)}</p>")
    for fam in result.families:
        body.append(f"<h2>Family {fam.number}: {len(fam.examples)} examples</h2>")
        others = len(fam.related) - len(fam.parents)
        body.append("<p>Parents: " + "; ".join(f"{esc(p.name)} [{esc(p.id)}], "
                                              f"{esc(p.relation)} ({esc(p.examples)} of "
                                              f"{len(fam.examples)} examples)"
                                              for p in fam.parents)
                    + (f"; {others} more listed substances or drugs relate to fewer examples"
                       if others > 0 else "")
                    + f". Predicted members (the parents' masked forms and pre-precursors): "
                      f"{len(fam.predicted)}.</p>")
        most_caught = max((c.measures.collateral(n) for c in fam.candidates
                           for n, _ in c.measures.set_sizes), default=0)
        most_library = max((c.measures.library or 0 for c in fam.candidates), default=0)
        best = fam.best
        for c in fam.candidates:
            body.append(_candidate(drawer, c, c is best, most_caught, most_library))
    return html_page("group draft", "".join(body), drawer).replace("</style>", _CSS + "</style>", 1)


def _candidate(drawer: Drawer, c: Any, best: bool, most_caught: int, most_library: int) -> str:
    d = c.definition
    smiles, highlight = d.depiction()
    sym = drawer.draw(smiles, highlight, _SCAFFOLD, r_labels=True)
    m = c.measures
    out = [f"<div class=\"cand{' best' if best else ''}\">"
           f"<p class=\"rank\">#{c.rank} {esc(c.group.id)}"
           + (" (best: top-ranked without collateral in the bundled set)" if best else "")
           + f"</p><p>{esc(c.group.title)}</p>"
           f"<div class=\"scaffold\">{Drawer.use(sym, _SCAFFOLD, esc(d.scaffold_text()))}</div>"
           "<ul>" + "".join(f"<li>{esc(cl)}</li>" for cl in d.clauses()) + "</ul>"
           f"<p class=\"draft\">{esc(c.text)}</p>"
           f"<details><summary>SMARTS (at most {esc(c.group.max_heavy_atoms)} heavy atoms"
           + (f", {len(c.group.exclusions)} exclusion(s)" if c.group.exclusions else "")
           + f")</summary><p class=\"smi\">{esc(' | '.join(c.group.smarts))}</p>"
           + (f"<p>exclusions <span class=\"smi\">{esc(' | '.join(c.group.exclusions))}"
              "</span></p>" if c.group.exclusions else "")
           + "</details>",
           _chart(c, most_caught, most_library)]
    caught = [x for x in m.caught if x.set != "library"]
    out.append(f"<h3 class=\"collateral\">Legitimate chemicals it would catch: {len(caught)}</h3>")
    if caught:
        out.append(structure_cards(drawer, [(x.smiles, f"{x.id} {x.name}", x.set) for x in caught]))
    library = [x for x in m.caught if x.set == "library"]
    if m.library is not None:
        out.append(f"<h3>Library compounds captured: {m.library} ({m.library_distinct} "
                   "distinct)</h3>")
        if library:
            out.append(structure_cards(drawer, [(x.smiles, f"row {x.row}: {x.id}", "")
                                                for x in library]))
    out.append("<details><summary>Examples (must_match) and the nearest legitimate chemicals "
               f"left out (must_not_match)</summary><h3>Examples: {len(c.group.must_match)}</h3>"
               + structure_cards(drawer, [(e.smiles, e.name, "") for e in c.group.must_match])
               + f"<h3>Left out: {len(c.group.must_not_match)}</h3>"
               + structure_cards(drawer, [(e.smiles, e.name, "") for e in c.group.must_not_match])
               + (f"<h3>Predicted members covered: {len(m.predicted_covered)}</h3>"
                  + structure_cards(drawer, [(s, "", "") for s in m.predicted_covered])
                  if m.predicted_covered else "")
               + "</details></div>")
    return "".join(out)


def draft_text(result: Any) -> str:
    """The draft as plain text: the summary, then every candidate's text."""
    lines = list(result.summary())
    for c in result.candidates():
        lines += ["", f"[{c.group.id}] family {c.family}, rank {c.rank}", c.text]
    return "\n".join(lines) + "\n"
