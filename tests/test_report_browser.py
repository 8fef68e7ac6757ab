"""The report in a real browser: headless Chromium opens it offline and we check what a person sees.

Chromium runs with no network (``--host-resolver-rules`` resolves nothing, and the report's own
Content-Security-Policy forbids fetches), a fresh profile per run, and ``--dump-dom`` after the
page's script ran. The report is of a real screen of ``examples/seized.smi``, once written by
``screen --report`` and once by ``report`` from the results file.

Chromium is required, not optional: CI installs Debian's ``chromium`` package. Regenerate the
screenshot in the README with ``python tests/test_report_browser.py docs/report.png``.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "seized.smi"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                  "--disable-extensions", "--disable-default-apps", "--disable-dev-shm-usage",
                  "--host-resolver-rules=MAP * ~NOTFOUND", "--hide-scrollbars", "--mute-audio")


def chromium() -> str:
    """The Chromium binary: $PRECURSOR_SCREEN_CHROMIUM, else the first of the usual names on PATH."""
    given = os.environ.get("PRECURSOR_SCREEN_CHROMIUM")
    if given:
        return given
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("headless Chromium is needed to test the HTML report and was not found: install "
                "it (Debian/Ubuntu: `apt-get install -y chromium`) or set PRECURSOR_SCREEN_CHROMIUM "
                "to the browser's path", pytrace=False)


def browser_args(profile: str, *extra: str) -> list[str]:
    return [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra]


def run_browsers(jobs: dict[str, list[str]], timeout: float = 90) -> dict[str, str]:
    """Run several Chromium commands at once; return each one's stdout."""
    procs = {k: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, cmd in jobs.items()}
    out = {}
    for k, p in procs.items():
        try:
            stdout, stderr = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            pytest.fail(f"Chromium did not finish {k} in {timeout} s")
        assert p.returncode == 0, f"Chromium failed on {k} (exit {p.returncode}): {stderr[-2000:]}"
        out[k] = stdout
    return out


# --- a small DOM of the dumped page ------------------------------------------------------------

@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: str = ""

    def find_all(self, tag: str, cls: str | None = None) -> list[Node]:
        out = []
        for c in self.children:
            if c.tag == tag and (cls is None or cls in c.attrs.get("class", "").split()):
                out.append(c)
            out.extend(c.find_all(tag, cls))
        return out

    def all_text(self) -> str:
        return self.text + "".join(c.all_text() for c in self.children)

    @property
    def hidden(self) -> bool:
        return "hidden" in self.attrs


class _Builder(HTMLParser):
    VOID = {"meta", "link", "br", "hr", "img", "input", "source", "col", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        node = self.stack[-1]
        if node.children:  # keep text order roughly: attach to a text child
            node.children.append(Node("#text", {}, text=data))
        else:
            node.text += data


def dom(text: str) -> Node:
    b = _Builder()
    b.feed(text)
    b.close()
    return b.root


# --- the reports under test ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def screened(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Screen the bundled examples with --report, then report again from the results file."""
    from click.testing import CliRunner

    from precursor_screen.cli import cli
    from precursor_screen.cli.screen import report_cmd

    tmp = tmp_path_factory.mktemp("report")
    results, by_screen, by_report = tmp / "results.csv", tmp / "screen.html", tmp / "report.html"
    run = CliRunner().invoke(cli, ["screen", str(EXAMPLES), "-o", str(results), "--report",
                                   str(by_screen), "--jobs", "1"])
    assert run.exit_code == 0, run.output
    if "report" not in cli.commands:
        cli.add_command(report_cmd, "report")
    run = CliRunner().invoke(cli, ["report", str(results), "-o", str(by_report)])
    assert run.exit_code == 0, run.output
    with open(results, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    pdf = tmp / "report.pdf"
    views = {  # each Chromium start costs seconds: three starts, run side by side
        "screen/plain": (by_screen, "", (f"--print-to-pdf={pdf}", "--no-pdf-header-footer")),
        "screen/convertible": (by_screen, "#flag=convertible", ()),
        "report/search": (by_report, "#q=glycidate&sort=score&dir=desc", ()),
    }
    jobs = {k: browser_args(str(tmp / f"profile-{k.replace('/', '-')}"), "--dump-dom",
                            "--virtual-time-budget=3000", *extra, path.resolve().as_uri() + frag)
            for k, (path, frag, extra) in views.items()}
    dumps = run_browsers(jobs)
    return {"rows": rows, "dumps": {k: dom(v) for k, v in dumps.items()}, "raw": dumps, "pdf": pdf}


VIEWS = ["screen/plain", "screen/convertible", "report/search"]


def _flag(row: dict[str, str]) -> str:
    return row["flag"] if row["status"] == "ok" else "unreadable"


def _flagged(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rows if r["status"] == "ok" and r["flag"] != "none"]


def _body(page: Node) -> Node:
    return page.find_all("body")[0]


@pytest.mark.parametrize("view", VIEWS)
def test_the_script_ran_and_every_structure_was_laid_out(screened: dict[str, Any], view: str) -> None:
    body = _body(screened["dumps"][view])
    assert body.attrs.get("data-ready") == "1", "the report's script did not run"
    drawings = int(body.attrs["data-drawings"])
    assert drawings >= 2 * len(_flagged(screened["rows"])) > 0
    assert body.attrs["data-drawn"] == body.attrs["data-drawings"], "some structures have no size"


@pytest.mark.parametrize("view", ["screen/plain", "report/search"])
def test_every_flagged_candidate_has_a_card_with_both_structures_highlights_and_path(
        screened: dict[str, Any], view: str) -> None:
    from precursor_screen.chem.depict import HIGHLIGHT_HEX

    page, raw = screened["dumps"][view], screened["raw"][view]
    highlight = set(re.findall(r"\.(s\d+)\s*\{[^}]*" + HIGHLIGHT_HEX, raw))
    symbols = {s.attrs["id"]: s for s in page.find_all("symbol")}
    cards = page.find_all("article", "card")
    flagged = _flagged(screened["rows"])
    assert sorted(int(c.attrs["data-row"]) for c in cards) == sorted(int(r["row"]) for r in flagged)
    by_row = {r["row"]: r for r in flagged}
    for card in cards:
        row = by_row[card.attrs["data-row"]]
        assert card.attrs["data-flag"] == row["flag"]
        cand, listed = [p.find_all("svg", "mol")[0] for p in card.find_all("div", "pane")]
        for svg in (cand, listed):
            [use] = svg.find_all("use")
            symbol = symbols[use.attrs["href"].lstrip("#")]
            classes = {n.attrs.get("class") for n in symbol.find_all("path") + symbol.find_all("ellipse")}
            assert len(symbol.find_all("path")) > 3, f"row {row['row']}: empty drawing"
            assert classes & highlight, f"row {row['row']} ({row['id']}): nothing highlighted"
        steps = [s for s in row["route"].split(" | ") if s]
        route = card.find_all("div", "route")
        if row["relation"] == "converts":
            assert len(route) == 1 and len(route[0].find_all("svg", "mol")) == len(steps) + 1
            for step in steps:
                assert step.rsplit(" -> ", 1)[0] in route[0].all_text()
        text = card.all_text()
        assert row["reason"] in text and row["id"] in text


@pytest.mark.parametrize("view", VIEWS)
def test_counts_match_the_results_file(screened: dict[str, Any], view: str) -> None:
    page = screened["dumps"][view]
    rows = screened["rows"]
    want = Counter(_flag(r) for r in rows)
    shown = {td.attrs["data-count"]: int(td.all_text()) for td in page.find_all("td")
             if "data-count" in td.attrs}
    assert shown.pop("total") == len(rows)
    assert shown == {f: want.get(f, 0) for f in shown}
    assert set(shown) >= set(want)
    trs = [tr for tr in page.find_all("tr") if "data-flag" in tr.attrs]
    assert Counter(tr.attrs["data-flag"] for tr in trs) == want


def _status(page: Node) -> Node:
    return [s for s in page.find_all("span") if s.attrs.get("id") == "shown"][0]


def test_without_a_filter_every_row_and_card_is_visible(screened: dict[str, Any]) -> None:
    page, rows = screened["dumps"]["screen/plain"], screened["rows"]
    trs = [tr for tr in page.find_all("tr") if "data-flag" in tr.attrs]
    assert len(trs) == len(rows) and not any(tr.hidden for tr in trs)
    cards = page.find_all("article", "card")
    assert cards and not any(c.hidden for c in cards)
    assert _status(page).attrs["data-rows"] == str(len(rows))
    assert _status(page).attrs["data-cards"] == str(len(_flagged(rows)))


def test_a_flag_filter_in_the_url_shows_only_those_rows_and_cards(screened: dict[str, Any]) -> None:
    page, rows = screened["dumps"]["screen/convertible"], screened["rows"]
    n = sum(1 for r in rows if _flag(r) == "convertible")
    assert n > 0, "the examples have convertible candidates"
    trs = [tr for tr in page.find_all("tr") if "data-flag" in tr.attrs]
    visible = [tr for tr in trs if not tr.hidden]
    assert len(trs) == len(rows)
    assert len(visible) == n and all(tr.attrs["data-flag"] == "convertible" for tr in visible)
    cards = [c for c in page.find_all("article", "card") if not c.hidden]
    assert len(cards) == n and all(c.attrs["data-flag"] == "convertible" for c in cards)
    assert _status(page).attrs["data-rows"] == str(n)


def test_a_text_filter_and_sort_in_the_url(screened: dict[str, Any]) -> None:
    page, rows = screened["dumps"]["report/search"], screened["rows"]
    want = [r for r in rows if "glycidate" in " ".join(
        (r["id"], r["flag"] or "unreadable", r["match_name"], r["relation"],
         r["reason"] if r["status"] == "ok" else r["status"], r["input_smiles"])).lower()]
    assert want
    visible = [tr for tr in page.find_all("tr") if "data-flag" in tr.attrs and not tr.hidden]
    assert len(visible) == len(want) < len(rows)
    assert all("glycidate" in tr.all_text().lower() for tr in visible)
    scores = [float(tr.find_all("td")[3].attrs["data-v"]) for tr in visible]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) > 1
    text_box = [i for i in page.find_all("input") if i.attrs.get("id") == "text-filter"][0]
    assert text_box is not None


def test_it_prints(screened: dict[str, Any]) -> None:
    pdf = screened["pdf"].read_bytes()
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 2


def test_the_readme_screenshot_is_committed() -> None:
    shot = ROOT / "docs" / "report.png"
    assert shot.is_file(), "regenerate with: python tests/test_report_browser.py docs/report.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def screenshot(target: str, width: int = 1280, height: int = 2000, view: str = "#flag=convertible") -> None:
    """Screen the bundled examples and save a screenshot of their report (``view``) to ``target``."""
    from click.testing import CliRunner

    from precursor_screen.cli import cli

    target = str(Path(target).resolve())
    os.chdir(ROOT)  # so the report names the input as the README does: examples/seized.smi
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "report.html"
        run = CliRunner().invoke(cli, ["screen", "examples/seized.smi", "-o", str(Path(tmp) / "r.csv"),
                                       "--report", str(html), "--jobs", "1"])
        if run.exit_code:
            raise SystemExit(run.output)
        cmd = browser_args(str(Path(tmp) / "profile"), f"--screenshot={target}",
                           f"--window-size={width},{height}", "--virtual-time-budget=3000",
                           html.resolve().as_uri() + view)
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)


if __name__ == "__main__":
    screenshot(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "docs" / "report.png"))
