"""Readable reports of the survey commands: plain text, and one self-contained HTML page.

The HTML works offline and alone: structures are inline SVG drawn by RDKit (a shared sprite, see
:class:`precursor_screen.chem.depict.Drawer`), the CSS is inline, there is no script, and a
Content-Security-Policy forbids every fetch. Everything from the input or the library (ids,
names, SMILES, reasons) passes through :func:`html.escape`: library ids and names of seized goods
are untrusted text.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from precursor_screen.chem.depict import Drawer

__all__ = ["group_text", "group_html", "derivatives_html", "html_page", "meta_table",
           "structure_cards", "esc"]

MAX_DRAWN = 60   # structures drawn per section; the rest are listed as text
MAX_LISTED = 5000  # further rows listed per section; the data output has them all
_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:80em}
h1{font-size:1.4em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
h3{font-size:1.05em;margin:1.2em 0 .3em}
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #ddd;padding:.2em .5em;
text-align:left;vertical-align:top}th{background:#f4f4f4}
.meta td{font-family:monospace;font-size:12px}.smi{font-family:monospace;font-size:12px;
word-break:break-all}.grid{display:flex;flex-wrap:wrap;gap:.5em}.card{border:1px solid #ddd;
padding:.3em;width:190px;font-size:12px}.card svg{width:180px;height:135px}.sprite{display:none}
.covered{color:#1a6b1a}.missed{color:#a33}.collateral{color:#a33}.note{color:#666}
"""


def esc(value: Any) -> str:
    """Escape any value for HTML text and attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def html_page(title: str, body: str, drawer: Any) -> str:
    """A whole page: the CSP (no fetch, no script), the shared CSS and the drawings' sprite."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; img-src data:\">"
            f"<title>{esc(title)}</title><style>{_CSS}{drawer.css()}</style></head><body>"
            f"{drawer.sprite()}{body}</body></html>\n")


def meta_table(meta: Mapping[str, Any]) -> str:
    """The run's metadata (versions, list hash, parameters) as a table."""
    rows = []
    for key in ("tool_version", "created", "command", "reference_source", "reference_sha256",
                "index_manifest_sha256"):
        if meta.get(key):
            rows.append(f"<tr><th>{esc(key)}</th><td>{esc(meta[key])}</td></tr>")
    for key, value in dict(meta.get("parameters", {})).items():
        rows.append(f"<tr><th>{esc(key)}</th><td>{esc(value)}</td></tr>")
    return f"<table class=\"meta\">{''.join(rows)}</table>"


def structure_cards(drawer: Any, items: Sequence[tuple[str, str, str]]) -> str:
    """Structure cards (smiles, title, note) for the first MAX_DRAWN, a table for the rest."""
    out = []
    for smiles, title, note in items[:MAX_DRAWN]:
        sym = drawer.draw(smiles, size=(180, 135))
        out.append(f"<div class=\"card\">{Drawer.use(sym, (180, 135), esc(title))}"
                   f"<div><b>{esc(title)}</b></div><div class=\"smi\">{esc(smiles)}</div>"
                   f"<div class=\"note\">{esc(note)}</div></div>")
    rest = ""
    if len(items) > MAX_DRAWN:
        listed = items[MAX_DRAWN:MAX_DRAWN + MAX_LISTED]
        rows = "".join(f"<tr><td>{esc(t)}</td><td class=\"smi\">{esc(s)}</td><td>{esc(n)}</td></tr>"
                       for s, t, n in listed)
        left = len(items) - MAX_DRAWN - len(listed)
        rest = (f"<p class=\"note\">{len(items) - MAX_DRAWN} more, not drawn:</p>"
                f"<table><tr><th>compound</th><th>SMILES</th><th>why</th></tr>{rows}</table>"
                + (f"<p class=\"note\">{left} more left out of this page: see the data output "
                   "(-o FILE.csv or .parquet).</p>" if left else ""))
    return f"<div class=\"grid\">{''.join(out)}</div>{rest}"


# ---------------------------------------------------------------------- group check


def group_text(impacts: Iterable[Any], meta: Mapping[str, Any], *, examples: int = 20) -> str:
    """The impact report as plain text (also the summary printed on stderr)."""
    lines = [f"group check of {meta.get('parameters', {}).get('group_file', '')}",
             f"  tool {meta.get('tool_version')}; list {meta.get('reference_source')} "
             f"sha256 {str(meta.get('reference_sha256', ''))[:16]}"]
    if meta.get("index_manifest_sha256"):
        lines.append(f"  library index {meta['index']['path']} ({meta['index']['rows']} rows), "
                     f"manifest sha256 {meta['index_manifest_sha256'][:16]}")
    for imp in impacts:
        g = imp.group
        lines.append("")
        lines.append(f"[{g.id}] {g.title} ({g.status}; parents {', '.join(g.parents)})")
        for set_name, label in (("listed", "listed substances"),
                                ("designer", "known designer precursors")):
            for verdict in ("covered", "missed"):
                found = imp.of(set_name, verdict)
                lines.append(f"  {label} {verdict}: {len(found)}")
                for f in found:
                    lines.append(f"    {f.id}  {f.name}  {f.smiles}" + (
                        f"  -- {f.reason}" if verdict == "missed" else ""))
        if imp.library_captured is not None:
            lines.append(f"  library compounds captured: {imp.library_captured} of "
                         f"{imp.set_sizes.get('library', 0)} ({imp.library_distinct} distinct)")
            for f in imp.of("library", "captured")[:examples]:
                lines.append(f"    row {f.row}  {f.id}  {f.smiles}")
        else:
            lines.append("  library compounds captured: no library index given (--index)")
        for set_name, size in imp.set_sizes.items():
            if set_name in ("listed", "designer", "library"):
                continue
            found = imp.of(set_name, "collateral")
            bad = imp.of(set_name, "unreadable")
            lines.append(f"  collateral in {set_name} ({size} compounds): {len(found)}"
                         + (f" ({len(bad)} unreadable)" if bad else ""))
            for f in found:
                lines.append(f"    {f.id}  {f.name}  {f.smiles}")
    return "\n".join(lines) + "\n"


def group_html(impacts: Iterable[Any], meta: Mapping[str, Any]) -> str:
    """The impact report as one self-contained HTML page."""
    drawer = Drawer()
    body = [f"<h1>Impact of draft groups: {esc(meta.get('parameters', {}).get('group_file'))}</h1>",
            meta_table(meta)]
    for imp in impacts:
        g = imp.group
        body.append(f"<h2>[{esc(g.id)}] {esc(g.title)}</h2>")
        body.append(f"<p>{esc(g.status)}; parents {esc(', '.join(g.parents))}; SMARTS "
                    f"<span class=\"smi\">{esc(' | '.join(g.smarts))}</span>"
                    + (f"; exclusions <span class=\"smi\">{esc(' | '.join(g.exclusions))}</span>"
                       if g.exclusions else "")
                    + (f"; at most {esc(g.max_heavy_atoms)} heavy atoms"
                       if g.max_heavy_atoms else "") + "</p>")
        for set_name, label in (("listed", "Listed substances"),
                                ("designer", "Known designer precursors")):
            for verdict in ("covered", "missed"):
                found = imp.of(set_name, verdict)
                body.append(f"<h3 class=\"{verdict}\">{label} {verdict}: {len(found)}</h3>")
                if found:
                    body.append(structure_cards(drawer, [(f.smiles, f"{f.id} {f.name}".strip(),
                                                          f.reason) for f in found]))
        if imp.library_captured is not None:
            body.append(f"<h3>Library compounds captured: {imp.library_captured} of "
                        f"{esc(imp.set_sizes.get('library'))} ({imp.library_distinct} distinct)"
                        "</h3>")
            found = imp.of("library", "captured")
            if found:
                body.append(f"<p class=\"note\">The first {len(found)} by row:</p>")
                body.append(structure_cards(drawer, [(f.smiles, f"row {f.row}: {f.id}", "")
                                            for f in found]))
        for set_name, size in imp.set_sizes.items():
            if set_name in ("listed", "designer", "library"):
                continue
            found = imp.of(set_name, "collateral")
            body.append(f"<h3 class=\"collateral\">Collateral in {esc(set_name)} "
                        f"({esc(size)} compounds): {len(found)}</h3>")
            if found:
                body.append(structure_cards(drawer, [(f.smiles, f"{f.id} {f.name}".strip(),
                                                      f.reason) for f in found]))
    return html_page("group check", "".join(body), drawer)


# ---------------------------------------------------------------------- derivatives


def derivatives_html(rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> str:
    """Derivatives per substance, ranked: structures for the first ones, a table of all."""
    drawer = Drawer()
    body = ["<h1>Derivatives of listed substances</h1>", meta_table(meta)]
    by_substance: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_substance.setdefault(f"{r['substance_name']} [{r['substance_id']}]", []).append(r)
    for name, items in by_substance.items():
        counts: dict[str, int] = {}
        for r in items:
            counts[r["relation"]] = counts.get(r["relation"], 0) + 1
        body.append(f"<h2>{esc(name)}: {len(items)} compounds</h2>")
        body.append("<p>" + esc(", ".join(f"{k} {v}" for k, v in counts.items())) + "</p>")
        body.append(structure_cards(drawer, [(r["smiles"],
                                              f"#{r['rank']} {r['id']} (row {r['row']})",
                                     f"{r['relation']}, Tanimoto {r['similarity']:.3f}: "
                                     f"{r['reason']}") for r in items]))
    return html_page("derivatives", "".join(body), drawer)
