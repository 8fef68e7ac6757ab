"""One self-contained HTML report of a screen: what was run, what was flagged, and why.

The page works offline and alone: structures are inline SVG drawn by RDKit, CSS and a little
JavaScript are inline, and a Content-Security-Policy forbids every fetch and every script but the
report's own (by its hash). Everything taken from the input (ids, SMILES, names, reasons) passes
through :func:`html.escape`; ids and SMILES from seized goods are untrusted text.

Sections, top to bottom: counts per flag and a chart of the scores; one card per flagged
candidate (candidate and listed substance side by side with the shared part highlighted, the
conversion path, the evidence and the legal listing); a table of every row that sorts, filters
and pages in the browser; the run's metadata (linked from the top). Large screens stay usable: cards are capped
(``max_cards``) and so is the table (``max_table_rows``), each with a note saying what was left out.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from importlib import resources
from string import Template
from typing import Any

from precursor_screen.chem.depict import Drawer
from precursor_screen.errors import InputError
from precursor_screen.io.writers import write_text
from precursor_screen.manifest import file_sha256
from precursor_screen.report.cards import UNREADABLE, CardRow, Cards, esc, parse_route
from precursor_screen.results import COLUMNS
from precursor_screen.rules.groups import load_groups
from precursor_screen.types import FLAG_ORDER, Verdict
from precursor_screen.version import __version__

__all__ = ["HtmlReport", "write_html", "write_html_from_results", "render_verdicts", "render_results",
           "parse_route", "MAX_CARDS", "MAX_TABLE_ROWS"]

MAX_CARDS = 500
"""Cards drawn at most; the rest of the flagged rows are in the table (a note says how many)."""

MAX_TABLE_ROWS = 20_000
"""Table rows at most: flagged and unreadable rows first, then unflagged ones in input order."""

FLAGS = tuple(f.value for f in FLAG_ORDER)
_NEEDED = ("row", "id", "status", "flag")


# --- entry points ------------------------------------------------------------------------------

def write_html(path: str, verdicts: Iterable[Verdict], metadata: Mapping[str, Any], screener: Any,
               *, max_cards: int = MAX_CARDS, max_table_rows: int = MAX_TABLE_ROWS) -> None:
    """Write the report of a screen's verdicts to ``path`` (atomically).

    ``screener`` is the :class:`~precursor_screen.screen.Screener` that produced them: its
    reference list gives the listings and structures, its groups the highlighted SMARTS.
    ``verdicts`` may be a generator; only the rows the page shows are kept.
    """
    report = HtmlReport(screener.reference, screener.groups, max_cards=max_cards,
                        max_table_rows=max_table_rows)
    for v in verdicts:
        report.add_verdict(v)
    report.write(path, metadata)


def write_html_from_results(path: str, rows: Iterable[Mapping[str, Any]], metadata: Mapping[str, Any],
                            reference: Any, *, groups: Any = None, source: str = "",
                            max_cards: int = MAX_CARDS, max_table_rows: int = MAX_TABLE_ROWS) -> None:
    """Write the report of a results file's rows (see :func:`precursor_screen.results.read_results`).

    ``reference`` is the Registry the rows were screened against (a warning appears when its hash
    differs from the one the rows record); ``groups`` defaults to the shipped groups; ``source``
    names the results file in the report.
    """
    write_text(path, render_results(rows, metadata, reference, groups=groups, source=source,
                                max_cards=max_cards, max_table_rows=max_table_rows))


def render_verdicts(verdicts: Iterable[Verdict], metadata: Mapping[str, Any], screener: Any,
                    *, max_cards: int = MAX_CARDS, max_table_rows: int = MAX_TABLE_ROWS) -> str:
    """Return the report of verdicts as one HTML string (see :func:`write_html`)."""
    report = HtmlReport(screener.reference, screener.groups, max_cards=max_cards,
                        max_table_rows=max_table_rows)
    for v in verdicts:
        report.add_verdict(v)
    return report.html(metadata)


def render_results(rows: Iterable[Mapping[str, Any]], metadata: Mapping[str, Any], reference: Any,
                   *, groups: Any = None, source: str = "", max_cards: int = MAX_CARDS,
                   max_table_rows: int = MAX_TABLE_ROWS) -> str:
    """Return the report of results rows as one HTML string (see :func:`write_html_from_results`)."""
    report = HtmlReport(reference, groups, max_cards=max_cards, max_table_rows=max_table_rows)
    for r in rows:
        report.add_row(r, source=source)
    return report.html(metadata, source=source)


def _view_text(sha256: str, as_of: str, jurisdictions: Any) -> str:
    """A list screened against, as the report names it: hash, jurisdictions and day."""
    juris = ", ".join(str(j).upper() for j in jurisdictions or ())
    return (f"sha256 {sha256}" + (f", {juris}" if juris else "")
            + (f", as of {as_of}" if as_of else ""))


class HtmlReport:
    """A report filled one row at a time, keeping only what the page shows.

    Counts, the score histogram and the reasons rows were unreadable are tallied; the strongest
    ``max_cards`` flagged rows are kept for cards and at most ``max_table_rows`` rows for the
    table (flagged and unreadable first), so memory stays flat on millions of rows. ``screen
    --report`` adds each verdict as it is written to the results file:

    >>> from precursor_screen.reference import builtin_registry
    >>> report = HtmlReport(builtin_registry().filter())
    >>> report.add_row({"row": 0, "id": "x", "status": "ok", "flag": "none", "score": 0.1})
    >>> report.total, report.counts["none"]
    (1, 1)
    """

    def __init__(self, reference: Any, groups: Any = None, *, max_cards: int = MAX_CARDS,
                 max_table_rows: int = MAX_TABLE_ROWS) -> None:
        self.reference, self.groups = reference, groups
        self.max_cards, self.max_table_rows = max_cards, max_table_rows
        self.total = 0
        self.counts: Counter[str] = Counter()
        self.unreadable: Counter[str] = Counter()
        self.bins: list[Counter[str]] = [Counter() for _ in range(10)]
        self._strong: list[CardRow] = []   # flagged and unreadable rows, for the table
        self._weak: list[CardRow] = []     # unflagged rows, for the table while there is room
        self._cards: list[CardRow] = []
        self._order = {f: i for i, f in enumerate(FLAGS)}

    def add_verdict(self, v: Verdict) -> None:
        """Add one verdict (its best hit gives the card's relation, route and group)."""
        self._add(CardRow.of_verdict(v, self.total))

    def add_row(self, row: Mapping[str, Any], source: str = "") -> None:
        """Add one results row (the columns of :data:`precursor_screen.results.COLUMNS`)."""
        if self.total == 0:
            missing = [c for c in _NEEDED if c not in row]
            if missing:
                raise InputError(f"{source or 'the input'} is not a precursor-screen results file: "
                                 f"no column {', '.join(missing)} (expected {', '.join(COLUMNS)})")
        self._add(CardRow(row, self.total, parse_route(str(row.get("route") or ""))))

    def _add(self, e: CardRow) -> None:
        self.total += 1
        flag = e.flag
        self.counts[flag] += 1
        if not e.ok:
            self.unreadable[e.text("status").split(":", 1)[0]] += 1
        else:
            self.bins[min(max(int(e.num("score") * 10), 0), 9)][flag] += 1
        if flag == "none":
            if len(self._weak) < self.max_table_rows:
                self._weak.append(e)
        elif len(self._strong) < self.max_table_rows:
            self._strong.append(e)
        if e.flagged and self.max_cards:
            self._cards.append(e)
            if len(self._cards) >= 2 * self.max_cards:
                self._cards = self._strongest()

    def _strongest(self) -> list[CardRow]:
        self._cards.sort(key=lambda e: (self._order.get(e.flag, len(self._order)), -e.num("score"), e.index))
        return self._cards[: self.max_cards]

    @property
    def flagged(self) -> int:
        """Rows with a flag other than none."""
        return sum(n for f, n in self.counts.items() if f not in ("none", UNREADABLE))

    def table_rows(self) -> list[CardRow]:
        """The rows the table holds, in input order."""
        keep = (self._strong + self._weak)[: self.max_table_rows]
        return sorted(keep, key=lambda e: e.index)

    def html(self, metadata: Mapping[str, Any], source: str = "") -> str:
        """The page, given the run's metadata (and the results file it was read from, if any)."""
        cards = self._strongest()
        groups = self.groups
        if groups is None and any(e.text("group_id") for e in cards):
            groups = load_groups()
        return _Report(self, cards, metadata, groups, source).html()

    def write(self, path: str, metadata: Mapping[str, Any], source: str = "") -> None:
        """Write the page to ``path`` atomically."""
        write_text(path, self.html(metadata, source))


# --- the page ----------------------------------------------------------------------------------

def _template(name: str) -> str:
    return (resources.files("precursor_screen.report") / "templates" / name).read_text(encoding="utf-8")


class _Report:
    def __init__(self, rows: HtmlReport, cards: list[CardRow], metadata: Mapping[str, Any], groups: Any,
                 source: str) -> None:
        self.rows, self.meta, self.reference, self.groups = rows, metadata, rows.reference, groups
        self.source = source
        self.drawer = Drawer()
        self.cards = Cards(self.reference, groups, self.drawer)
        self.counts = rows.counts
        self.n_flagged = rows.flagged
        self.carded = cards
        self.card_rows = {e.index for e in cards}

    def html(self) -> str:
        # what a reader came for first: counts, the flagged candidates, every row; how the run
        # was made (versions, list, parameters, inputs) after them
        body = "\n".join([self._head(), self._warnings(), self._summary(), self._controls(),
                          self._cards(), self._table(), self._run()])
        script = _template("report.js")
        digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
        csp = (f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; "
               "base-uri 'none'; form-action 'none'")
        return Template(_template("page.html")).substitute(
            csp=csp, version=esc(__version__), title=esc(self._title()), css=_template("report.css"),
            drawing_css=self.drawer.css(), sprite=self.drawer.sprite(), body=body, script=script)

    # -- header, warnings, summary ------------------------------------------------------------

    def _inputs(self) -> list[Mapping[str, Any]]:
        inputs = self.meta.get("inputs") or []
        return [i for i in inputs if isinstance(i, Mapping)]

    def _title(self) -> str:
        names = ", ".join(str(i.get("path", "")) for i in self._inputs()) or self.source or "screen"
        return f"precursor-screen report: {names}"

    def _head(self) -> str:
        created = self.meta.get("created", "")
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
        return (f'<h1>{esc(self._title())}</h1>\n<p class="muted">{self.rows.total} rows screened'
                f'{" on " + esc(created) if created else ""} with precursor-screen '
                f'{esc(self.meta.get("tool_version", "?"))}; report written {esc(now)} by '
                f'precursor-screen {esc(__version__)} (<a href="#run">how it was run</a>).</p>')

    def _warnings(self) -> str:
        out = []
        ref = self.reference
        mine = _view_text(getattr(ref, "content_hash", ""),
                          ref.as_of.isoformat() if getattr(ref, "as_of", None) else "",
                          getattr(ref, "jurisdictions", ()))
        screened = _view_text(str(self.meta.get("reference_sha256", "")),
                              str(self.meta.get("reference_as_of", "")),
                              self.meta.get("reference_jurisdictions",
                                            getattr(ref, "jurisdictions", ())))
        if self.meta.get("reference_sha256") and mine != screened:
            out.append(f"The rows were screened against the list <code>{esc(screened)}</code>; "
                       f"this report takes structures and listings from a different list "
                       f"(<code>{esc(mine)}</code>). Pass the same <code>--reference</code>/"
                       f"<code>--as-of</code>/<code>--jurisdiction</code> as the screen.")
        for warning in self.meta.get("warnings", ()):
            out.append(f"Warning recorded by the run: {esc(warning)}")
        if not self.meta:
            out.append("No run metadata came with these rows (a CSV or TSV keeps it in "
                       "<code>FILE.meta.json</code> beside it): the report cannot say what was run.")
        summary = self.meta.get("summary")
        if isinstance(summary, Mapping) and "rows" in summary and summary["rows"] != self.rows.total:
            out.append(f"The run's metadata counts {esc(summary['rows'])} rows; this report has "
                       f"{self.rows.total}.")
        return "\n".join(f'<p class="warn">{w}</p>' for w in out)

    def _summary(self) -> str:
        rows = []
        for f in (*FLAGS, UNREADABLE):
            n = self.counts.get(f, 0)
            rows.append(f'<tr><td><span class="sw flag-{f}"></span><a href="#flag={f}">{f}</a></td>'
                        f'<td class="n" data-count="{f}">{n}</td></tr>')
        rows.append(f'<tr class="total"><td>all rows</td><td class="n" data-count="total">'
                    f'{self.rows.total}</td></tr>')
        why = self.rows.unreadable
        bad = ""
        if why:
            bad = ('<p class="muted">Unreadable: ' + "; ".join(f"{esc(k)} {n}" for k, n in
                                                              sorted(why.items())) + "</p>")
        return (f'<h2>Summary</h2>\n<div class="summary"><div><table class="counts" id="counts">'
                f'{"".join(rows)}</table>{bad}</div>{self._chart()}</div>')

    def _chart(self) -> str:
        """Stacked bars: rows per score band (0.1 wide), one colour per flag, log-scaled heights."""
        bins = self.rows.bins
        w, h, left, bottom, top = 560, 230, 40, 30, 12
        band = (w - left - 10) / 10
        peak = max((sum(b.values()) for b in bins), default=0)
        scale = (h - bottom - top) / math.log10(peak + 1) if peak else 0.0
        parts = [f'<svg class="chart" id="score-chart" viewBox="0 0 {w} {h}" role="img" '
                 f'aria-label="rows per score band, coloured by flag">']
        for tick in (1, 10, 100, 1000, 10_000, 100_000, 1_000_000):
            if tick > peak:
                break
            y = h - bottom - math.log10(tick + 1) * scale
            parts.append(f'<line x1="{left}" x2="{w - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e7eb"/>'
                         f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
        for i, b in enumerate(bins):
            x = left + i * band + 3
            total = sum(b.values())
            base = 0.0
            for f in FLAGS:
                n = b.get(f, 0)
                if not n:
                    continue
                # each segment gets its share of the bar's log height
                seg = math.log10(total + 1) * scale * n / total
                y = h - bottom - base - seg
                parts.append(f'<rect class="bar" data-flag="{f}" data-n="{n}" x="{x:.1f}" y="{y:.1f}" '
                             f'width="{band - 6:.1f}" height="{seg:.1f}" fill="var(--{f})">'
                             f'<title>{f}: {n} rows with score {i / 10:.1f}\u2013{(i + 1) / 10:.1f}'
                             f'</title></rect>')
                base += seg
            if total:
                parts.append(f'<text x="{x + (band - 6) / 2:.1f}" y="{h - bottom - base - 3:.1f}" '
                             f'text-anchor="middle">{total}</text>')
            parts.append(f'<text x="{x + (band - 6) / 2:.1f}" y="{h - bottom + 14}" '
                         f'text-anchor="middle">{i / 10:.1f}</text>')
        parts.append(f'<line x1="{left}" x2="{w - 10}" y1="{h - bottom}" y2="{h - bottom}" stroke="#888"/>'
                     f'<text x="{(w + left) / 2:.0f}" y="{h - 2}" text-anchor="middle">score '
                     f'(rows per band of 0.1; bar height on a log scale)</text></svg>')
        return "".join(parts)

    # -- run metadata -----------------------------------------------------------------------------

    def _run(self) -> str:
        m = self.meta
        fields = [("tool", f'{m.get("tool", "precursor-screen")} {m.get("tool_version", "")}'),
                  ("RDKit", m.get("rdkit_version", "")), ("Python", m.get("python_version", "")),
                  ("run on", m.get("created", "")),
                  ("reference list", m.get("reference_source", "")),
                  ("reference sha256", m.get("reference_sha256", "")),
                  ("reference size", m.get("reference_size", "")),
                  ("as of", m.get("reference_as_of", "") or "the current list")]
        if self.source:
            fields.append(("results file", self.source))
            fields.append(("results sha256", file_sha256(self.source)))
        known = {"tool", "tool_version", "rdkit_version", "python_version", "created", "reference_source",
                 "reference_sha256", "reference_size", "reference_as_of", "parameters", "inputs",
                 "summary"}
        extra = [(k, v) for k, v in m.items() if k not in known]
        left = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in fields + extra if v != "")
        params = "".join(f"<tr><td>{esc(k)}</td><td><code>{esc(v)}</code></td></tr>"
                         for k, v in _flatten(m.get("parameters") or {}))
        inputs = self._inputs()
        in_rows = []
        for item in inputs:
            n = item.get("rows")
            if n is None and len(inputs) == 1:
                n = self.rows.total
            in_rows.append(f'<tr><td><code>{esc(item.get("path", ""))}</code></td>'
                           f'<td><code>{esc(item.get("sha256", "") or "(stdin)")}</code></td>'
                           f'<td class="n">{esc("" if n is None else n)}</td></tr>')
        in_table = ('<table class="small"><tr><th>input</th><th>sha256</th><th>rows</th></tr>'
                    + "".join(in_rows) + "</table>") if in_rows else \
            '<p class="muted">inputs not recorded</p>'
        return (f'<h2>Run</h2>\n<div class="meta" id="run"><div><dl>{left}</dl>'
                f'<h3>Inputs</h3>{in_table}</div><div><h3>Parameters</h3>'
                f'<table class="small">{params}</table></div></div>')

    # -- controls, cards ----------------------------------------------------------------------------

    def _controls(self) -> str:
        opts = ['<option value="">all rows</option>', '<option value="flagged">flagged (any flag)</option>']
        opts += [f'<option value="{f}">{f}</option>' for f in (*FLAGS, UNREADABLE)]
        return ('<div class="controls" id="controls"><label for="flag-filter">flag</label>'
                f'<select id="flag-filter">{"".join(opts)}</select>'
                '<label for="text-filter">text</label><input type="search" id="text-filter" '
                'placeholder="id, SMILES, substance, reason\u2026">'
                '<span id="shown"></span></div>')

    def _cards(self) -> str:
        n, shown = self.n_flagged, len(self.carded)
        head = f'<h2 id="flagged">Flagged candidates ({n})</h2>'
        note = ""
        if shown < n:
            note = (f'<p class="note" id="cards-note">{shown} of {n} flagged candidates are shown as '
                    f'cards (strongest flag first, then by score); the other {n - shown} are in the '
                    f'table below and in the results file.</p>')
        if not n:
            return head + '<p class="muted">No candidate was flagged.</p>'
        cards = "\n".join(self.cards.card(e) for e in self.carded)
        return f'{head}\n{note}<div class="cards">\n{cards}\n</div>'

    # -- table -----------------------------------------------------------------------------------

    def _table(self) -> str:
        entries = self.rows.table_rows()
        total = self.rows.total
        note = ""
        if len(entries) < total:
            note = (f'<p class="note" id="table-note">The table holds {len(entries)} of {total} '
                    f'rows: every flagged and unreadable row first, then unflagged rows in input '
                    f'order. All rows are in the results file.</p>')
        cols = [("row", "#", "num"), ("id", "id", "text"), ("flag", "flag", "text"),
                ("score", "score", "num"), ("similarity", "Tanimoto", "num"),
                ("match", "listed substance", "text"), ("relation", "relation", "text"),
                ("reason", "reason", "text"), ("smiles", "input SMILES", "text")]
        head = "".join(f'<th data-key="{k}" data-type="{t}" scope="col">{label}</th>'
                       for k, label, t in cols)
        body = "\n".join(self._tr(e) for e in entries)
        pager = ('<div class="pager" id="pager"><button type="button" id="prev-page">\u2190 previous'
                 '</button><span id="page-info"></span><button type="button" id="next-page">next '
                 '\u2192</button></div>')
        return (f'<h2 id="all-rows">All rows ({total})</h2>\n{note}{pager}'
                f'<table class="rows" id="rows"><thead><tr>{head}</tr></thead><tbody>\n{body}\n'
                f'</tbody></table>')

    def _tr(self, e: CardRow) -> str:
        flag, num = e.flag, e.number
        ident = esc(e.text("id"))
        if e.index in self.card_rows:
            ident = f'<a href="#card-{num}">{ident}</a>'
        reason = e.text("reason") if e.ok else e.text("status")
        score, sim = e.num("score"), e.num("similarity")
        return (f'<tr data-flag="{esc(flag)}"><td class="num">{num}</td><td>{ident}</td>'
                f'<td><span class="flag flag-{esc(flag)}">{esc(flag)}</span></td>'
                f'<td class="num" data-v="{score}">{score:.2f}</td>'
                f'<td class="num" data-v="{sim}">{sim:.2f}</td>'
                f'<td>{esc(e.text("match_name"))}</td><td>{esc(e.text("relation"))}</td>'
                f'<td class="reason">{esc(reason)}</td>'
                f'<td class="smiles">{esc(e.text("input_smiles"))}</td></tr>')


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, (list, tuple)):
        return [(prefix, ", ".join(str(v) for v in value) or "\u2014")]
    return [(prefix, str(value))]
