"""The lab bench's HTML: the one page (ask, then the answer below), rendered on the server.

Every string that came from a person or a file (the query, names, ids, SMILES, reasons, the
file's name) passes through :func:`~precursor_screen.report.cards.esc`; the page's own script
(``static/bench.js``) never builds HTML from text, it only moves a SMILES between the form and
the editor. Structures are inline SVG from the report's card drawing, so the page needs no
images from anywhere; the drawing's CSS goes into one ``<style>`` element carrying the
response's nonce (the page's Content-Security-Policy allows no other inline style or script).
"""

from __future__ import annotations

from importlib import resources
from string import Template

from precursor_screen.chem.depict import Drawer
from precursor_screen.lookup import Interpretation
from precursor_screen.report.cards import CardRow, Cards, esc, route_steps
from precursor_screen.serve.bench import Bench, Run
from precursor_screen.types import FLAG_ORDER, Verdict
from precursor_screen.version import __version__

__all__ = ["page", "answer_section", "error_section", "run_section", "MAX_RUN_ROWS"]

MAX_RUN_ROWS = 200
"""Flagged and unreadable rows listed on the page after an upload (the report has them all)."""


def _template(name: str) -> str:
    return (resources.files("precursor_screen.serve") / "templates" / name).read_text(
        encoding="utf-8")


def _report_css() -> str:
    return (resources.files("precursor_screen.report") / "templates" / "report.css").read_text(
        encoding="utf-8")


def page(bench: Bench, nonce: str, *, query: str = "", body: str = "",
         drawer: Drawer | None = None) -> str:
    """The whole page: the question form (with ``query`` filled in) and ``body`` below it.

    ``drawer`` holds the structures ``body`` shows (their sprite and CSS go into the page).
    """
    drawer = drawer or Drawer()
    reg = bench.screener.reference
    listing = f"{reg.source} list, {len(reg)} substances" + (
        f", as of {reg.as_of}" if reg.as_of else "")
    return Template(_template("page.html")).substitute(
        nonce=esc(nonce), version=esc(__version__), listing=esc(listing),
        list_hash=esc(reg.content_hash[:16]), limits=esc(bench.limits.describe()),
        query=esc(query), css=_report_css() + "\n" + drawer.css(), sprite=drawer.sprite(),
        body=body)


def error_section(message: str, status: int) -> str:
    """The refusal of a request, said in one line (``status`` for tests and screen readers)."""
    return (f'<section id="error" class="warn" role="alert" data-status="{status}">'
            f'<h2>Not answered</h2><p id="error-message">{esc(message)}</p></section>')


def answer_section(bench: Bench, drawer: Drawer, meant: Interpretation, v: Verdict) -> str:
    """The answer to one query: how it was read, the card of the strongest evidence (both
    structures, the shared part highlighted, the route drawn step by step, the listing), then
    every piece of evidence with its reason and, for a route, its drawing."""
    screener = bench.screener
    cards = Cards(screener.reference, screener.groups, drawer)
    row = CardRow.of_verdict(v)
    flag = v.flag.value if v.flag is not None else ""
    facts = [("query", f'<span class="smiles" id="answer-query">{esc(meant.query.strip())}</span>'
              if "\n" not in meant.query.strip() else "(molfile)"),
             ("interpreted", f'<span id="interpretation">{esc(meant.text())}</span>'),
             ("standardized", f'<span class="smiles" id="standardized">'
                              f'{esc(v.standardized_smiles)}</span>'),
             ("flag", f'<span class="flag flag-{esc(flag)}" id="flag">{esc(flag)}</span> '
                      f'score <span id="score">{v.score:.2f}</span>'),
             ("why", f'<span id="reason">{esc(v.reason)}</span>')]
    head = "".join(f"<dt>{k}</dt><dd>{val}</dd>" for k, val in facts)
    evidence = []
    cand = v.standardized_smiles
    for i, h in enumerate(v.hits):
        sub = cards.substances.get((h.substance_id, h.list_name)) or cards.by_id.get(
            h.substance_id)
        route = cards.route(route_steps(h.route), cand, sub) if h.route is not None else ""
        evidence.append(f'<li class="hit" data-relation="{esc(h.relation)}" id="hit-{i}">'
                        f'<span class="relation">{esc(h.relation)}</span> '
                        f'<span class="hit-score">{h.score:.2f}</span> {esc(h.reason)}{route}'
                        f'</li>')
    hits = ('<ol class="evidence" id="evidence">' + "".join(evidence) + "</ol>" if evidence
            else '<p class="muted">No identity, substructure, conversion or group relation '
                 'found.</p>')
    return (f'<section id="answer" data-smiles="{esc(v.standardized_smiles)}" '
            f'data-flag="{esc(flag)}"><h2>Answer</h2><dl class="answer-facts">{head}</dl>'
            f'<div class="cards">{cards.card(row)}</div>'
            f'<h3>All evidence ({len(v.hits)})</h3>{hits}</section>')


def run_section(run: Run) -> str:
    """The result of an uploaded file: counts per flag, links to the HTML report and the
    results file, and the flagged and unreadable rows (at most :data:`MAX_RUN_ROWS`)."""
    flags = run.summary.get("flags", {})
    counts = "".join(f'<tr><td><span class="sw flag-{f.value}"></span>{f.value}</td>'
                     f'<td class="n" data-count="{f.value}">{int(flags.get(f.value, 0))}</td></tr>'
                     for f in FLAG_ORDER)
    bad = int(run.summary.get("unreadable", 0))
    counts += (f'<tr><td><span class="sw flag-unreadable"></span>unreadable</td>'
               f'<td class="n" data-count="unreadable">{bad}</td></tr>'
               f'<tr class="total"><td>all rows</td><td class="n" data-count="total">{run.rows}'
               f'</td></tr>')
    shown = [r for r in run.results if r["status"] != "ok" or r["flag"] != "none"]
    rows = "".join(
        f'<tr data-flag="{esc(r["flag"] or "unreadable")}"><td class="num">{r["row"]}</td>'
        f'<td>{esc(r["id"])}</td><td><span class="flag flag-{esc(r["flag"] or "unreadable")}">'
        f'{esc(r["flag"] or "unreadable")}</span></td><td>{esc(r["match_name"])}</td>'
        f'<td class="reason">{esc(r["reason"] if r["status"] == "ok" else r["status"])}</td>'
        f'<td class="smiles">{esc(r["input_smiles"])}</td></tr>' for r in shown[:MAX_RUN_ROWS])
    more = (f'<p class="note">{len(shown) - MAX_RUN_ROWS} more flagged or unreadable rows are '
            f'in the report and the results file.</p>' if len(shown) > MAX_RUN_ROWS else "")
    table = ('<table class="rows" id="run-rows"><thead><tr><th>#</th><th>id</th><th>flag</th>'
             '<th>listed substance</th><th>reason</th><th>input SMILES</th></tr></thead><tbody>'
             + rows + "</tbody></table>") if shown else \
        '<p class="muted">No row was flagged or unreadable.</p>'
    base = f"/runs/{esc(run.id)}"
    notes = "".join(f'<p class="note run-note">{esc(n)}</p>' for n in run.notes)
    return (f'<section id="run" data-rows="{run.rows}"><h2>Screened: <span id="run-file">'
            f'{esc(run.filename)}</span>, {run.rows} rows</h2>'
            f'<p class="links"><a id="report-link" href="{base}/report.html">the HTML report</a>'
            f' \u00b7 <a id="results-link" href="{base}/results.csv" download="results.csv">'
            f'the results file (CSV)</a> \u00b7 <a id="meta-link" href="{base}/results.csv.meta.'
            f'json" download="results.csv.meta.json">its run metadata (JSON)</a></p>'
            f'{notes}<table class="counts" id="counts">{counts}</table>'
            f'<h3>Flagged and unreadable rows ({len(shown)})</h3>{more}{table}</section>')
