"""The HTML report without a browser: well-formed, offline, escaped, every flagged row a card."""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest
from click.testing import CliRunner
from rdkit import Chem

from precursor_screen.chem.depict import HIGHLIGHT_HEX, Drawer, shared_atoms
from precursor_screen.cli import Cli
from precursor_screen.cli.screen import report_cmd
from precursor_screen.manifest import run_metadata
from precursor_screen.reference import builtin_registry
from precursor_screen.report import (
    HtmlReport,
    render_results,
    render_verdicts,
    write_html,
    write_html_from_results,
)
from precursor_screen.results import read_results, write_results
from precursor_screen.rules.groups import load_groups
from precursor_screen.types import Flag, Hit, Route, Step, Verdict

REGISTRY = builtin_registry().filter()
GROUPS = load_groups()
SCREENER = SimpleNamespace(reference=REGISTRY, groups=GROUPS)  # what the report reads of a Screener
EVIL = "<script>alert(1)</script>"
BMK, PMK = "CC(=O)Cc1ccccc1", "CC(=O)Cc1ccc2c(c1)OCO2"
PMK_ACID = "CC1(C(=O)O)OC1c1ccc2c(c1)OCO2"


def _v(row: int, id: str, smiles: str, flag: Flag | None, score: float, reason: str, hit: Hit | None = None,
       status: str = "ok", sim: float = 0.3) -> Verdict:
    return Verdict(row, id, smiles, status, flag, score, reason, sim, hit.substance_id if hit else "",
                   hit.substance_name if hit else "", smiles if status == "ok" else "",
                   (hit,) if hit else ())


VERDICTS = [
    _v(0, "APAAN", "CC(=O)C(C#N)c1ccccc1", Flag.SCHEDULED, 1.0, "is APAAN, EU category 1",
       Hit("identical", "apaan", "APAAN", "built-in", 1.0, "is APAAN", similarity=1.0), sim=1.0),
    _v(1, "BMK ethylene glycol ketal", "CC1(Cc2ccccc2)OCCO1", Flag.CONVERTIBLE, 0.93,
       "converts in one step to BMK",
       Hit("converts", "bmk", "1-Phenyl-2-propanone", "built-in", 0.93, "converts",
           route=Route((Step("dioxolane-hydrolysis", "dioxolane hydrolysis", BMK),)))),
    _v(2, "PMK tert-butyl glycidate", "CC(C)(C)OC(=O)C1(C)OC1c1ccc2c(c1)OCO2", Flag.CONVERTIBLE, 0.92,
       "converts in 2 steps to PMK",
       Hit("converts", "pmk", "PMK", "built-in", 0.92, "converts",
           route=Route((Step("ester-hydrolysis", "ester hydrolysis", PMK_ACID),
                        Step("glycidic-acid-to-ketone", "glycidic acid to ketone", PMK))))),
    _v(3, "BMK pentyl glycidate", "CCCCCOC(=O)C1(C)OC1c1ccccc1", Flag.GROUP, 0.8, "member of a group",
       Hit("group", "bmk", "glycidic derivatives", "groups", 0.8, "member",
           group_id="bmk-pmk-glycidic-derivatives")),
    _v(4, EVIL, "CCOC(=O)Cc1ccccc1", Flag.SIMILAR, 0.65, "Tanimoto 0.80 to <b>phenylacetic acid</b>",
       Hit("similar", "phenylacetic-acid", "Phenylacetic acid", "built-in", 0.65, "similar",
           similarity=0.8), sim=0.8),
    _v(5, "vanillin", "COc1cc(C=O)ccc1O", Flag.NONE, 0.08, "no listed substance, conversion or group found"),
    _v(6, "broken", "C1CC(", None, 0.0, "", status="parse error: unclosed ring"),
]
META = run_metadata(REGISTRY, {"screen": {"depth": 2, "similar_threshold": 0.7}, "jobs": 1},
                    ["examples/seized.smi"])
FLAGGED = [v for v in VERDICTS if v.status == "ok" and v.flag is not Flag.NONE]


class Page(HTMLParser):
    """Tags, attributes and text of a page, with the nesting checked as it goes."""

    VOID = {"meta", "link", "br", "hr", "img", "input", "source", "col", "wbr", "use", "path",
            "ellipse", "rect", "line", "circle", "polygon", "polyline"}

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.stack: list[str] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self.errors: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "script":
            self.scripts.append(data)
        self.text.append(data)

    def all(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k.replace("_", "-")) == v
                                                             for k, v in attrs.items())]


@pytest.fixture(scope="module")
def page_html() -> str:
    return render_verdicts(VERDICTS, META, SCREENER)


@pytest.fixture(scope="module")
def page(page_html: str) -> Page:
    return Page(page_html)


def test_html_is_well_formed(page: Page) -> None:
    assert page.errors == []
    assert page.stack == []
    assert page.tags[0][0] == "html"


def test_nothing_is_fetched(page_html: str, page: Page) -> None:
    assert not page.all("link") and not page.all("img") and not page.all("iframe")
    for tag, attrs in page.tags:
        for name in ("src", "href", "xlink:href", "action", "data", "poster"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), f"<{tag} {name}={value!r}>"
        assert "url(" not in attrs.get("style", "")
    assert not re.search(r"https?://", page_html), "no URL at all, not even an XML namespace"
    assert "url(" not in page_html and "@import" not in page_html


def test_content_security_policy_allows_only_the_reports_own_script(page: Page) -> None:
    [csp] = [a["content"] for a in page.all("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in csp
    [script] = page.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp


def test_untrusted_text_is_escaped(page_html: str, page: Page) -> None:
    assert EVIL not in page_html
    assert html_escaped(EVIL) in page_html
    assert len(page.all("script")) == 1
    assert "<b>phenylacetic" not in page_html, "a reason's markup stays text"
    assert "&lt;b&gt;phenylacetic acid&lt;/b&gt;" in page_html
    assert EVIL in "".join(page.text)


def html_escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_every_flagged_verdict_has_a_card(page: Page) -> None:
    cards = page.all("article")
    assert [c["id"] for c in cards] == [f"card-{v.row}" for v in FLAGGED]
    assert [c["data-flag"] for c in cards] == [v.flag.value for v in FLAGGED]  # type: ignore[union-attr]


def test_cards_draw_both_structures_and_the_path(page_html: str) -> None:
    cards = re.findall(r'<article class="card.*?</article>', page_html, flags=re.S)
    assert len(cards) == len(FLAGGED)
    for card, v in zip(cards, FLAGGED):
        assert card.count('<svg class="mol"') == 2, v.id
        steps = len(v.hits[0].route.steps) if v.hits[0].route else 0
        assert card.count('<svg class="mol small"') == (steps + 1 if steps else 0), v.id
    assert "dioxolane hydrolysis" in cards[1] and "ester hydrolysis" in cards[2]
    assert "glycidic acid to ketone" in cards[2]


def _card(html: str, row: int) -> str:
    found = re.search(rf'<article[^>]*id="card-{row}".*?</article>', html, flags=re.S)
    assert found, f"no card for row {row}"
    return found.group(0)


def test_cards_show_the_legal_listing(page_html: str) -> None:
    bmk_card = _card(page_html, 1)
    bmk = REGISTRY.get("bmk")
    assert html_escaped(bmk.eu_act) in bmk_card
    assert "EU category 1" in bmk_card
    assert bmk.cn_codes[0] in bmk_card


def test_the_shared_part_is_highlighted(page_html: str) -> None:
    hl = set(re.findall(r"\.(s\d+)\{[^}]*" + HIGHLIGHT_HEX, page_html))
    assert hl, "the highlight colour is in the drawing styles"
    symbols = dict(re.findall(r'<symbol id="(m\d+)"[^>]*>(.*?)</symbol>', page_html, flags=re.S))
    for card in re.findall(r'<article class="card.*?</article>', page_html, flags=re.S):
        cand, listed = re.findall(r'<svg class="mol"[^>]*><use href="#(m\d+)"/>', card)
        for sym in (cand, listed):
            assert set(re.findall(r'class="(s\d+)"', symbols[sym])) & hl


def test_group_cards_highlight_the_groups_smarts_match(page_html: str) -> None:
    card = _card(page_html, 3)
    assert "matched by the group&#x27;s SMARTS" in card
    assert html_escaped(GROUPS["bmk-pmk-glycidic-derivatives"].smarts[0]) in card


def test_summary_counts(page: Page) -> None:
    counts = {a["data-count"]: a for a in page.all("td") if "data-count" in a}
    assert set(counts) >= {"scheduled", "convertible", "group", "similar", "none", "unreadable", "total"}
    html = render_verdicts(VERDICTS, META, SCREENER)
    got = dict(re.findall(r'data-count="([a-z-]+)">(\d+)<', html))
    want = Counter("unreadable" if v.flag is None else v.flag.value for v in VERDICTS)
    for flag in ("scheduled", "convertible", "drug-precursor", "group", "similar", "none", "unreadable"):
        assert int(got[flag]) == want.get(flag, 0), flag
    assert int(got["total"]) == len(VERDICTS)


def test_table_has_every_row(page: Page) -> None:
    rows = page.all("tr", data_flag="convertible")
    assert len(rows) == 2
    assert len([t for t, a in page.tags if t == "tr" and "data-flag" in a]) == len(VERDICTS)


def test_run_metadata_is_shown(page_html: str) -> None:
    for value in (META["reference_sha256"], META["tool_version"], META["rdkit_version"],
                  META["inputs"][0]["sha256"], "similar_threshold"):
        assert value in page_html


def test_caps_leave_a_note() -> None:
    html = render_verdicts(VERDICTS, META, SCREENER, max_cards=2, max_table_rows=5)
    page = Page(html)
    assert len(page.all("article")) == 2
    assert "2 of 5 flagged candidates are shown as cards" in html
    assert "the other 3 are in the table" in html
    assert len([a for t, a in page.tags if t == "tr" and "data-flag" in a]) == 5
    assert "The table holds 5 of 7 rows" in html
    kept = {a["data-flag"] for t, a in page.tags if t == "tr" and "data-flag" in a}
    assert "none" not in kept, "flagged and unreadable rows go first"


def test_a_stream_keeps_the_strongest_cards_and_a_bounded_table() -> None:
    from dataclasses import replace

    report = HtmlReport(REGISTRY, GROUPS, max_cards=3, max_table_rows=10)
    stream = [replace(v, row=i, score=round(v.score - i / 1000, 4))
              for i, v in enumerate(VERDICTS[i % len(VERDICTS)] for i in range(70))]
    for v in stream:
        report.add_verdict(v)
    assert report.total == 70 and report.flagged == 50
    assert len(report.table_rows()) == 10
    html = report.html(META)
    strongest = sorted((v for v in stream if v.flag not in (None, Flag.NONE)),
                       key=lambda v: (ORDER[v.flag or Flag.NONE], -v.score))[:3]
    assert re.findall(r'<article class="[^"]*" id="card-(\d+)"', html) == [str(v.row) for v in strongest]
    assert "3 of 50 flagged candidates" in html and "The table holds 10 of 70 rows" in html


ORDER = {f: i for i, f in enumerate(Flag)}


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_report_from_a_results_file_matches_the_report_from_verdicts(tmp_path: Path, fmt: str) -> None:
    results = tmp_path / f"r.{fmt}"
    write_results(VERDICTS, str(results), fmt, META)
    rows, meta = read_results(str(results))
    out = tmp_path / "r.html"
    write_html_from_results(str(out), rows, meta, REGISTRY, source=str(results))
    from_file, direct = out.read_text(encoding="utf-8"), render_verdicts(VERDICTS, META, SCREENER)

    def cards(html: str) -> list[str]:
        return re.findall(r'<article class="[^"]*" id="(card-\d+)"', html)

    assert cards(from_file) == cards(direct)
    assert from_file.count('<svg class="mol small"') == direct.count('<svg class="mol small"') == 5
    assert str(results) in from_file
    assert not Page(from_file).errors


def test_reference_mismatch_and_missing_metadata_are_reported() -> None:
    rows = [dict(r, tool_version="0", reference_sha256="0") for r in _rows()]
    other = builtin_registry().filter(as_of=__import__("datetime").date(2012, 12, 31))
    html = render_results(rows, META, other)
    assert "different list" in html
    assert "No run metadata" in render_results(rows, {}, REGISTRY)


def _rows() -> list[dict[str, Any]]:
    from precursor_screen.results import verdict_row

    return [verdict_row(v, "0", "0") for v in VERDICTS]


def test_a_file_that_is_not_results_is_refused() -> None:
    with pytest.raises(Exception, match="not a precursor-screen results file"):
        render_results([{"smiles": "CCO", "name": "ethanol"}], {}, REGISTRY, source="x.csv")


def test_write_html_writes_the_file_whole(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "report.html"
    write_html(str(out), VERDICTS, META, SCREENER)
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]


def test_drawings_are_made_once_per_structure() -> None:
    d = Drawer()
    a = d.draw(BMK)
    assert d.draw(BMK) == a and d.count == 1
    assert d.draw("C1CC(") == ""
    assert "could not be drawn" in Drawer.use("", (10, 10), "x")
    assert d.draw(BMK, (0, 1)) != a and d.count == 2


@pytest.mark.parametrize("masked, loose, shared", [
    pytest.param("CC1(Cc2ccccc2)OCCO1", True, 10, id="ketal: the whole of BMK, carbonyl O as ketal O"),
    pytest.param("CC(=Cc1ccccc1)[N+](=O)[O-]", True, 9, id="P2NP: BMK's carbon skeleton"),
    pytest.param("CC(=Cc1ccccc1)[N+](=O)[O-]", False, 7, id="P2NP, bond orders kept"),
    pytest.param("CC(=O)Cc1ccccc1.Cl", True, 10, id="a salt: exact match"),
])
def test_shared_atoms_with_bmk(masked: str, loose: bool, shared: int) -> None:
    a, b = shared_atoms(Chem.MolFromSmiles(masked), Chem.MolFromSmiles(BMK), loose=loose)
    assert len(a) == len(b) == shared


def _group() -> click.Group:
    @click.group(cls=Cli)
    @click.option("--debug", is_flag=True)
    def g(debug: bool) -> None:
        """Test group."""

    g.add_command(report_cmd, "report")
    return g


def test_report_command(tmp_path: Path) -> None:
    results = tmp_path / "r.csv"
    write_results(VERDICTS, str(results), "csv", META)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(_group(), ["report", str(results), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "7 rows, 5 flagged (5 cards)" in result.stderr
    assert len(Page(out.read_text(encoding="utf-8")).all("article")) == 5
    assert report_cmd.help and "Example" in report_cmd.help


def test_report_command_errors(tmp_path: Path) -> None:
    smi = tmp_path / "in.smi"
    smi.write_text("CCO ethanol\n")
    bad = CliRunner().invoke(_group(), ["report", str(smi), "-o", str(tmp_path / "x.html")])
    assert bad.exit_code == 2 and "not a results file" in bad.stderr
    missing = CliRunner().invoke(_group(), ["report", str(tmp_path / "nope.csv"), "-o", "x.html"])
    assert missing.exit_code == 2
    assert not (tmp_path / "x.html").exists()


def test_report_writes_to_stdout_and_reads_stdin(tmp_path: Path) -> None:
    from precursor_screen.cli import cli

    results = tmp_path / "r.csv"
    made = CliRunner().invoke(cli, ["screen", "-", "-o", str(results), "--jobs", "1"],
                              input="CC(=O)Cc1ccccc1 bmk\nCCO ethanol\n")
    assert made.exit_code == 0, made.stderr
    to_stdout = CliRunner().invoke(cli, ["report", str(results)])
    assert to_stdout.exit_code == 0, to_stdout.stderr
    assert to_stdout.stdout.startswith("<!DOCTYPE html>") and 'id="card-0"' in to_stdout.stdout
    assert "2 rows, 1 flagged" in to_stdout.stderr
    from_stdin = CliRunner().invoke(cli, ["report", "-", "-o", str(tmp_path / "s.html")],
                                    input=results.read_text(encoding="utf-8"))
    assert from_stdin.exit_code == 0, from_stdin.stderr
    page = (tmp_path / "s.html").read_text(encoding="utf-8")
    assert 'id="card-0"' in page and "No run metadata" in page   # a pipe carries no sidecar


def test_cards_come_before_the_run_metadata() -> None:
    """A reader comes for the flagged candidates; how the run was made follows them."""
    page = render_results([{"row": 0, "id": "bmk", "status": "ok", "flag": "scheduled",
                            "score": 1.0, "match_id": "bmk", "match_name": "BMK",
                            "relation": "identical", "match_list": "built-in",
                            "standardized_smiles": "CC(=O)Cc1ccccc1",
                            "input_smiles": "CC(=O)Cc1ccccc1", "reason": "is BMK"}],
                          {"tool_version": "x", "reference_sha256": REGISTRY.content_hash},
                          REGISTRY)
    summary, card = page.index('id="counts"'), page.index('<article class="card')
    table, run = page.index('id="rows"'), page.index('id="run"')
    assert summary < card < table < run
    assert '<a href="#run">' in page
