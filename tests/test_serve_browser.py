"""The lab bench in a real browser: headless Chromium, driven by Selenium, against a live server.

A person pastes a SMILES, draws a structure in the editor with the mouse, uploads a file; each
test asserts on the answer rendered on the page, and after each one that the browser reported no
Content-Security-Policy violation (console and ``report-uri``), logged no script error, and
fetched nothing but the bench's own URLs.

Chromium and chromedriver are required, not optional: CI installs Debian's ``chromium`` and
``chromium-driver`` (the README's test command). Regenerate the README's screenshot with
``python tests/test_serve_browser.py docs/bench.png``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "seized.smi"
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-extensions",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--window-size=1280,1000", "--hide-scrollbars")


def _browser() -> tuple[str, str]:
    """Chromium and chromedriver ($PRECURSOR_SCREEN_CHROMIUM / ..._CHROMEDRIVER, else on PATH)."""
    found = []
    for env, names in (("PRECURSOR_SCREEN_CHROMIUM", ("chromium", "chromium-browser",
                                                      "google-chrome")),
                       ("PRECURSOR_SCREEN_CHROMEDRIVER", ("chromedriver",))):
        path = os.environ.get(env) or next(filter(None, map(shutil.which, names)), None)
        if not path:
            pytest.fail(f"the lab-bench browser test needs {names[0]} and was not found: install "
                        "it (Debian/Ubuntu: `apt-get install -y chromium chromium-driver`) or "
                        f"set {env}", pytrace=False)
        found.append(path)
    return found[0], found[1]


# -- a live server and a browser ---------------------------------------------------------------

@contextlib.contextmanager
def live_server(app: Any) -> Iterator[str]:
    """``app`` on 127.0.0.1 at a free port, in a daemon thread (uvicorn, as `serve` runs it)."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def make_driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = _browser()
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver keeps Selenium Manager from trying to download one
    return webdriver.Chrome(options=opts, service=Service(executable_path=chromedriver))


# -- the page, driven as a person would -------------------------------------------------------

_GEOMETRY_JS = """
const svgs = [...document.querySelectorAll('#jsme_container svg')]
  .map(s => [s, s.getBoundingClientRect()])
  .sort((a, b) => b[1].width * b[1].height - a[1].width * a[1].height);
const [area, r] = svgs[0];
const toolbar = svgs.find(([s, b]) => b.width >= 300 && b.height < 60);
const atoms = [];
for (const l of area.querySelectorAll('line')) {
  const m = l.getScreenCTM();
  for (const [x, y] of [[l.x1.baseVal.value, l.y1.baseVal.value],
                        [l.x2.baseVal.value, l.y2.baseVal.value]]) {
    const p = new DOMPoint(x, y).matrixTransform(m);
    atoms.push([p.x, p.y]);
  }
}
const labels = {};
for (const t of document.querySelectorAll('#jsme_container svg text')) {
  const b = t.getBoundingClientRect();
  if (b.left < r.left) labels[t.textContent] = [b.left + b.width / 2, b.top + b.height / 2];
}
return {area: [r.left, r.top, r.width, r.height],
        toolbar: toolbar ? [toolbar[1].left, toolbar[1].top] : null,
        atoms: atoms, atom_buttons: labels};
"""
BUTTON = 25  # px: JSME's toolbar grid ("newlook", menu scale 1)


class Bench:
    """The bench page: the form on the main page, the editor inside its <iframe>.

    JSME draws with inline SVG: a toolbar of 25-px buttons (row 1: column 1 the single bond,
    column 8 the benzene ring), atom buttons down the left (SVG text C, N, O, ...) and the
    canvas, the largest SVG, redrawn on every change (so geometry is read afresh each time).
    Atoms are the end points of the bond lines; clicking an atom with the bond tool grows a
    bond from it (clicking a bond's middle would make it double).
    """

    def __init__(self, driver: Any, url: str) -> None:
        self.d, self.url = driver, url

    def open(self) -> None:
        self.d.get(self.url + "/")
        self.wait_ready()

    def wait_ready(self) -> None:
        """Until the editor in the page's <iframe> has loaded."""
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.d, 30).until(lambda d: d.execute_script(
            "var f = document.getElementById('editor');"
            "return !!(f && f.contentWindow && f.contentWindow.benchEditor)"))

    def find(self, css: str, timeout: float = 60) -> Any:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.d, timeout).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, css)))

    def text(self, css: str) -> str:
        return str(self.find(css).text)

    def submit_query(self, text: str) -> None:
        box = self.find("#query")
        box.clear()
        box.send_keys(text)
        old = self.d.find_element("css selector", "html")
        self.find("#check-text").click()
        self._wait_new_page(old)

    def check_drawing(self) -> None:
        old = self.d.find_element("css selector", "html")
        self.find("#check-drawing").click()
        self._wait_new_page(old)

    def upload(self, path: Path) -> None:
        self.find("#file").send_keys(str(path))
        old = self.d.find_element("css selector", "html")
        self.find("#upload").click()
        self._wait_new_page(old)

    def _wait_new_page(self, old: Any) -> None:
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.d, 120).until(ec.staleness_of(old))
        self.wait_ready()

    # -- inside the editor frame ----------------------------------------------------------

    @contextlib.contextmanager
    def editor(self) -> Iterator[None]:
        self.d.switch_to.frame(self.find("#editor"))
        try:
            yield
        finally:
            self.d.switch_to.default_content()

    def editor_smiles(self) -> str:
        with self.editor():
            return str(self.d.execute_script("return window.benchEditor.smiles()"))

    def _geometry(self) -> dict[str, Any]:
        return dict(self.d.execute_script(_GEOMETRY_JS))

    def _atoms(self) -> set[tuple[int, int]]:
        return {(round(x), round(y)) for x, y in self._geometry()["atoms"]}

    def _click(self, x: float, y: float) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        html = self.d.find_element("tag name", "html")
        r = html.rect  # W3C offsets count from the element's centre; <html> spans the frame
        ActionChains(self.d).move_to_element_with_offset(
            html, round(x - (r["x"] + r["width"] / 2)), round(y - (r["y"] + r["height"] / 2))
        ).click().perform()
        time.sleep(0.1)

    def _tool(self, row: int, col: int) -> None:
        tx, ty = self._geometry()["toolbar"]
        self._click(tx + col * BUTTON + BUTTON / 2, ty + row * BUTTON + BUTTON / 2)

    def _grow(self, atom: tuple[int, int]) -> tuple[int, int]:
        """Click ``atom`` with the current tool; return the atom that appeared."""
        before = self._atoms()
        self._click(*atom)
        new = self._atoms() - before
        assert len(new) == 1, f"expected one new atom, got {new}"
        return next(iter(new))

    def draw_phenylpropanol(self) -> None:
        """1-phenyl-2-propanol, with mouse clicks: a benzene ring, a chain of two carbons from
        its right-most atom, a methyl on the second, then a second branch made an oxygen."""
        with self.editor():
            self._tool(1, 8)                              # benzene ring
            x, y, w, h = self._geometry()["area"]
            self._click(x + w / 3, y + h / 2)
            self._tool(1, 1)                              # single bond
            ring = max(self._atoms())                     # right-most ring atom
            ch2 = self._grow(ring)
            ch = self._grow(ch2)
            self._grow(ch)                                # the methyl
            branch = self._grow(ch)                       # the carbon that becomes O
            self._click(*self._geometry()["atom_buttons"]["O"])
            self._click(*branch)


# -- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app() -> Any:
    from precursor_screen import Screener
    from precursor_screen.lookup import Lookup
    from precursor_screen.serve import Bench as BenchCore
    from precursor_screen.serve import Limits, create_app

    core = BenchCore(Screener(), Lookup(opsin=False), Limits(max_rows=1000))
    yield create_app(core)
    core.close()


@pytest.fixture(scope="module")
def server(app: Any) -> Iterator[str]:
    with live_server(app) as url:
        yield url


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    drv = make_driver()
    yield drv
    drv.quit()


@pytest.fixture
def bench(driver: Any, server: str, app: Any) -> Iterator[Bench]:
    app.state.csp_reports.clear()
    driver.get_log("browser")  # drain
    page = Bench(driver, server)
    page.open()
    yield page
    logs = driver.get_log("browser")
    assert [e["message"] for e in logs if "Content Security Policy" in e["message"]
            or "Content-Security-Policy" in e["message"]] == []
    assert app.state.csp_reports == []
    # a refused query answers 4xx on purpose; anything else SEVERE is a fault
    severe = [e for e in logs if e["level"] == "SEVERE"
              and not (e["source"] == "network" and "status of 4" in e["message"])]
    assert severe == []
    urls = driver.execute_script(
        "var out = performance.getEntriesByType('resource').map(e => e.name);"
        "var f = document.getElementById('editor');"
        "if (f && f.contentWindow) out = out.concat(f.contentWindow.performance"
        ".getEntriesByType('resource').map(e => e.name));"
        "return out;")
    assert urls and all(u.startswith(server + "/") for u in urls), urls


# -- the tests --------------------------------------------------------------------------------

def test_a_pasted_smiles_is_answered_with_its_card_and_route(bench: Bench) -> None:
    bench.submit_query("CC(=O)C(C#N)c1ccccc1")   # APAAN
    assert bench.find("#answer").get_attribute("data-flag") == "scheduled"
    assert bench.text("#flag") == "scheduled"
    assert "Alpha-phenylacetoacetonitrile" in bench.text("#reason")
    assert bench.text("#interpretation") == "SMILES as given"
    card = bench.find("#answer article.card")
    assert "EU category 1" in card.text                       # the listing
    assert len(card.find_elements("css selector", "svg.mol")) >= 2
    # evidence: a conversion route drawn step by step (candidate, then each product)
    route = bench.find("#evidence li[data-relation='converts'] .route")
    assert len(route.find_elements("css selector", "figure")) >= 2
    assert "nitrile hydrolysis" in route.text
    # the editor now shows the structure answered
    assert bench.editor_smiles() != ""


def test_a_name_is_read_and_said_how(bench: Bench) -> None:
    bench.submit_query("vanillin")
    assert bench.text("#interpretation") == ("name 'vanillin': Vanillin (the bundled table of "
                                              "traded chemicals)")
    assert bench.text("#standardized") == "COc1cc(C=O)ccc1O"
    assert bench.text("#flag") == "none"


def test_a_structure_drawn_with_the_mouse_is_answered(bench: Bench) -> None:
    bench.draw_phenylpropanol()
    assert bench.editor_smiles() == "CC(O)Cc1ccccc1"
    bench.check_drawing()
    assert bench.text("#standardized") == "CC(O)Cc1ccccc1"
    assert bench.text("#flag") == "convertible"
    assert "1-Phenyl-2-propanone" in bench.text("#reason")
    route = bench.find("#answer article.card .route")
    assert "oxidation" in route.text
    _screenshot(bench, os.environ.get("PRECURSOR_SCREEN_BENCH_SCREENSHOT"))


def test_an_uploaded_file_gives_the_report_and_the_results_file(bench: Bench) -> None:
    bench.upload(EXAMPLE)
    rows = sum(1 for line in EXAMPLE.read_text(encoding="utf-8").splitlines()[1:])
    assert bench.find("#run").get_attribute("data-rows") == str(rows)
    assert bench.find("td[data-count='total']").text == str(rows)
    assert int(bench.find("td[data-count='scheduled']").text) > 0
    assert int(bench.find("td[data-count='unreadable']").text) == 1
    report = bench.find("#report-link").get_attribute("href")
    results = bench.find("#results-link").get_attribute("href")
    assert results.startswith(bench.url + "/runs/")
    with urllib.request.urlopen(results, timeout=30) as resp:   # what the download link gives
        assert "attachment" in resp.headers["content-disposition"]
        body = resp.read().decode("utf-8")
    assert body.splitlines()[0].startswith("row,id,input_smiles,status,flag")
    assert len(body.splitlines()) == rows + 1
    bench.d.get(report)
    assert "precursor-screen report" in bench.d.title
    assert bench.d.find_element("css selector", "td[data-count='total']").text == str(rows)
    assert len(bench.d.find_elements("css selector", "article.card")) > 0
    bench.open()   # back to the bench (the checks after each test look at its fetches)


def test_a_refused_query_is_said_on_the_page_as_text(bench: Bench) -> None:
    hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    bench.submit_query(hostile)
    message = bench.text("#error-message")
    assert hostile in message                      # shown as text, character for character
    assert bench.find("#error").get_attribute("data-status") == "422"
    assert bench.d.find_elements("css selector", "#error img, #error script") == []
    assert bench.d.find_element("css selector", "#query").get_attribute("value") == hostile


def _screenshot(bench: Bench, path: str | None) -> None:
    if path:
        bench.d.set_window_size(1280, 1500)
        bench.d.execute_script("document.getElementById('answer').scrollIntoView()")
        bench.d.execute_script("window.scrollTo(0, 0)")
        bench.d.save_screenshot(path)


if __name__ == "__main__":  # python tests/test_serve_browser.py docs/bench.png
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/test_serve_browser.py OUT.png")
    os.environ["PRECURSOR_SCREEN_BENCH_SCREENSHOT"] = str(Path(sys.argv[1]).resolve())
    sys.exit(pytest.main([__file__, "-q", "-k", "drawn_with_the_mouse", "-p", "no:cacheprovider"]))
