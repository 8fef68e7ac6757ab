"""The lab bench's JSON API and page without a browser (Starlette's TestClient), and `serve`.

Bad input gets a 4xx with one line saying why, never a 500, a hang or a lost row; `POST /check`
returns exactly what `check --json` prints; every name shown on the page is escaped.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from precursor_screen import Screener
from precursor_screen.cli import cli
from precursor_screen.lookup import Lookup
from precursor_screen.serve import Bench, Limits, create_app

ROOT = Path(__file__).resolve().parent.parent
SEIZED = ROOT / "examples" / "seized.smi"
MAX_ROWS = 200


@pytest.fixture(scope="module")
def bench() -> Any:
    core = Bench(Screener(), Lookup(opsin=False), Limits(max_upload_bytes=256 * 1024,
                                                         max_rows=MAX_ROWS), keep_runs=3)
    yield core
    core.close()
    assert not core.workdir.exists()


@pytest.fixture(scope="module")
def client(bench: Any) -> TestClient:
    return TestClient(create_app(bench))


def _cli_json(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["check", *args, "--json", "--no-opsin"])
    assert result.exit_code == 0, result.stderr
    return dict(json.loads(result.stdout))


# -- POST /check --------------------------------------------------------------------------------

@pytest.mark.parametrize("query", ["CC(=O)C(C#N)c1ccccc1", "vanillin", "121-33-5", "APAAN",
                                   "QCCDLTOVEPVEJK-UHFFFAOYSA-N"])
def test_check_returns_what_check_json_prints(client: TestClient, query: str) -> None:
    r = client.post("/check", json={"query": query})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == _cli_json(query)


@pytest.mark.parametrize("payload, status, message", [
    ({"query": "C1CC"}, 422, "unparsable SMILES: C1CC"),
    ({"query": "no such chemical anywhere"}, 422, "not a SMILES"),
    ({"query": "121-33-6"}, 422, "CAS 121-33-6 has a wrong check digit"),
    ({"query": "9002-88-4"}, 422, "CAS 9002-88-4 is in no lookup table"),
    ({"query": ""}, 422, "empty query"),
    ({"query": 42}, 400, "send {\"query\""),
    ({"smiles": "CCO"}, 400, "send {\"query\""),
    (["CCO"], 400, "send {\"query\""),
])
def test_check_refuses_with_a_4xx_and_a_reason(client: TestClient, payload: Any, status: int,
                                               message: str) -> None:
    r = client.post("/check", json=payload)
    assert r.status_code == status
    assert r.json()["status"] == status and message in r.json()["error"]


def test_check_refuses_a_body_that_is_not_json(client: TestClient) -> None:
    r = client.post("/check", content=b"\xff\xfe not json")
    assert r.status_code == 400 and "not JSON" in r.json()["error"]


# -- POST /screen -------------------------------------------------------------------------------

def test_screen_gives_one_row_per_input_row_and_its_files(client: TestClient) -> None:
    data = SEIZED.read_bytes()
    r = client.post("/screen", files={"file": ("seized.smi", data)})
    assert r.status_code == 200
    body = r.json()
    lines = data.decode("utf-8").splitlines()[1:]           # the header line is no molecule
    assert body["rows"] == len(lines) == len(body["results"]) == body["summary"]["rows"]
    assert [row["row"] for row in body["results"]] == list(range(len(lines)))
    assert [row["input_smiles"] for row in body["results"]] == [ln.split("\t")[0] for ln in lines]
    # the same rows as `screen` writes
    cli_rows = _screen_cli(SEIZED)
    assert [(r["id"], r["flag"], r["reason"]) for r in body["results"]] == \
        [(r["id"], r["flag"], r["reason"]) for r in cli_rows]
    report = client.get(body["report"])
    assert report.status_code == 200 and "precursor-screen report" in report.text
    assert "sha256-" in report.headers["content-security-policy"] or \
        "default-src 'none'" in report.headers["content-security-policy"]
    results = client.get(body["results_file"])
    assert results.status_code == 200 and "attachment" in results.headers["content-disposition"]
    assert len(results.text.splitlines()) == len(lines) + 1


def _screen_cli(path: Path) -> list[dict[str, str]]:
    import csv

    result = CliRunner().invoke(cli, ["screen", str(path), "--jobs", "1"])
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_screen_takes_the_body_itself_and_every_format(client: TestClient) -> None:
    r = client.post("/screen?filename=two.smi", content=b"CCO ethanol\nC1CC broken\n",
                    headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200
    assert [(x["id"], x["status"]) for x in r.json()["results"]] == [
        ("ethanol", "ok"), ("broken", "unparsable SMILES: C1CC")]
    csv_body = b"compound,smiles\nacetone,CC(C)=O\nbmk,CC(=O)Cc1ccccc1\n"
    r = client.post("/screen", files={"file": ("list.csv", csv_body)})
    assert [(x["id"], x["flag"]) for x in r.json()["results"]] == [("acetone", "scheduled"),
                                                                   ("bmk", "scheduled")]
    gz = gzip.compress(SEIZED.read_bytes())
    r = client.post("/screen", files={"file": ("seized.smi.gz", gz)})
    assert r.status_code == 200 and r.json()["rows"] == len(SEIZED.read_text().splitlines()) - 1


def _rows(n: int) -> bytes:
    return b"".join(b"CC(=O)Cc1ccccc1 row%d\n" % i for i in range(n))


@pytest.mark.parametrize("name, data, status, message", [
    ("empty.smi", b"", 400, "the file is empty"),
    ("blank.smi", b"\n \n", 400, "the file is empty"),
    ("junk.smi", bytes(range(256)) * 40, 415, "not a text file"),
    ("many.smi", _rows(100_000), 413, "bytes"),                      # over the byte limit
    ("rows.smi", _rows(MAX_ROWS + 1), 413, f"more than {MAX_ROWS} rows"),
    ("bomb.smi.gz", gzip.compress(b"C" * (4 * 1024 * 1024)), 413, "once decompressed"),
    ("table.csv", b"name,formula\nwater,H2O\n", 422, "no smiles column"),
    ("table.xlsx", b"PK\x03\x04" + b"\x00" * 100, 415, "not a text file"),
])
def test_screen_refuses_bad_files_before_screening(client: TestClient, bench: Any, name: str,
                                                   data: bytes, status: int,
                                                   message: str) -> None:
    before = sorted(p.name for p in bench.workdir.iterdir())
    r = client.post("/screen", files={"file": (name, data)})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert sorted(p.name for p in bench.workdir.iterdir()) == before   # nothing left behind


def test_a_file_of_100000_rows_is_refused_by_its_row_count(bench: Any) -> None:
    """Within the byte limit, over the row limit: refused once the rows are counted."""
    roomy = Bench(bench.screener, bench.lookup, Limits(max_upload_bytes=8 * 1024 * 1024,
                                                       max_rows=10_000))
    try:
        r = TestClient(create_app(roomy)).post(
            "/screen", files={"file": ("big.smi", b"C\n" * 100_000)})
    finally:
        roomy._cleanup()
    assert r.status_code == 413
    assert "more than 10,000 rows" in r.json()["error"]


def test_an_oversized_body_is_refused_from_its_content_length_unread(bench: Any) -> None:
    """Content-Length over the limit: 413 before a byte of the body is read."""
    import asyncio

    app = create_app(bench)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/screen", "raw_path": b"/screen", "query_string": b"",
             "root_path": "", "server": ("127.0.0.1", 8765), "client": ("127.0.0.1", 5000),
             "headers": [(b"content-type", b"multipart/form-data; boundary=x"),
                         (b"content-length", b"10000000000")]}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert b"10,000,000,000 bytes" in sent[1]["body"]


def test_an_oversized_body_without_length_is_cut_off(client: TestClient) -> None:
    def chunks() -> Any:
        for _ in range(100):
            yield b"C" * 65536

    r = client.post("/screen?filename=x.smi", content=chunks())
    assert r.status_code == 413 and "over" in r.json()["error"]


def test_old_runs_are_dropped_and_unknown_ones_are_404(client: TestClient, bench: Any) -> None:
    urls = [client.post("/screen", files={"file": (f"r{i}.smi", b"CCO\n")}).json()["report"]
            for i in range(4)]
    assert client.get(urls[0]).status_code == 404            # keep_runs=3
    assert client.get(urls[-1]).status_code == 200
    assert len(list(bench.workdir.iterdir())) == 3
    assert client.get("/runs/nope/report.html").status_code == 404
    assert client.get("/runs/../../etc/passwd").status_code == 404
    assert client.get("/nothing").json()["status"] == 404


# -- the page -----------------------------------------------------------------------------------

def test_the_page_loads_nothing_from_elsewhere_and_forbids_it(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "'unsafe-inline'" not in csp
    assert "'unsafe-eval'" not in csp and "default-src 'self'" in csp
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)  # type: ignore[union-attr]
    assert f'<style nonce="{nonce}">' in r.text
    # every src/href on the page is this server's
    refs = re.findall(r'(?:src|href)="([^"]*)"', r.text)
    assert refs and all(u.startswith("/") or u.startswith("#") for u in refs), refs
    editor = client.get("/editor")
    assert "frame-ancestors 'self'" in editor.headers["content-security-policy"]
    assert not re.search(r'(?:src|href)="(?!/)', editor.text)
    js = client.get("/static/jsme/jsme.nocache.js")
    assert js.status_code == 200 and len(js.content) > 10_000
    assert client.get("/static/jsme/license.txt").status_code == 200
    assert r.headers["x-content-type-options"] == "nosniff"


def test_the_page_answers_a_name_with_its_card(client: TestClient) -> None:
    r = client.post("/", data={"query": "103-79-7"})
    assert r.status_code == 200
    assert 'data-flag="scheduled"' in r.text
    assert "CAS 103-79-7: 1-Phenyl-2-propanone [bmk] (the built-in list)" in r.text
    assert '<article class="card flag-scheduled"' in r.text
    assert "UN Table I" in r.text                       # the listing


def test_the_page_escapes_what_it_is_given(client: TestClient) -> None:
    hostile = '<img src=x onerror=alert(1)>"\'&'
    r = client.post("/", data={"query": hostile})
    assert r.status_code == 422
    assert "<img src=x" not in r.text
    assert "&lt;img src=x onerror=alert(1)&gt;&quot;&#x27;&amp;" in r.text
    data = f"CC(=O)Cc1ccccc1 {hostile}\nnot-smiles <script>alert(1)</script>\n".encode()
    r = client.post("/upload", files={"file": ('<b>"x".smi', data)})
    assert r.status_code == 200
    assert "<script>alert" not in r.text and "<img src=x" not in r.text and "<b>" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert 'data-rows="2"' in r.text


@pytest.mark.parametrize("data, status, text", [
    ({"query": ""}, 400, "type a SMILES"),
    ({"query": "C1CC"}, 422, "unparsable SMILES: C1CC"),
    ({}, 400, "type a SMILES"),
])
def test_the_page_says_why_it_refuses(client: TestClient, data: dict[str, str], status: int,
                                      text: str) -> None:
    r = client.post("/", data=data)
    assert r.status_code == status
    assert f'data-status="{status}"' in r.text and text in r.text


def test_the_page_refuses_bad_uploads_with_their_reason(client: TestClient) -> None:
    r = client.post("/upload", files={"file": ("empty.smi", b"")})
    assert r.status_code == 400 and "the file is empty" in r.text
    r = client.post("/upload", files={"file": ("rows.smi", _rows(MAX_ROWS + 1))})
    assert r.status_code == 413 and f"more than {MAX_ROWS} rows" in r.text
    r = client.post("/upload", data={"query": "x"})
    assert r.status_code == 400 and "no file" in r.text


# -- the command ----------------------------------------------------------------------------------

def _listening_on(port: int) -> list[str]:
    """The local addresses listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table, encoding="ascii") as fh:
            for line in list(fh)[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, hexport = local.rsplit(":", 1)
                if int(hexport, 16) == port and state == "0A":     # 0A: LISTEN
                    found.append(addr)
    return found


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="needs Linux's /proc/net/tcp")
def test_serve_binds_loopback_only_by_default(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(sys.executable).parent / "precursor-screen"
    proc = subprocess.Popen([str(script), "serve", "--port", str(port), "--no-opsin"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not _listening_on(port):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        assert _listening_on(port) == ["0100007F"]                      # 127.0.0.1, nothing else
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as resp:
            assert resp.status == 200 and b"lab bench" in resp.read()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/check", method="POST",
                                     data=json.dumps({"query": "BMK"}).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert json.loads(resp.read())["flag"] == "scheduled"
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
    assert f"lab bench on http://127.0.0.1:{port}/" in err


def test_serve_says_which_extra_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "starlette" else real(name, *a))
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 1
    assert "pip install 'precursor-screen[serve]'" in result.stderr
    assert "starlette" in result.stderr
