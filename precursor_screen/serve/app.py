"""The lab bench's web layer (Starlette): routes, limits on request bodies, security headers.

Routes::

    GET  /                     the page (a form, the editor in an <iframe>, answers below)
    POST /                     the page answering the form's query
    POST /upload               the page answering an uploaded file (multipart, field "file")
    GET  /runs/ID/report.html  that file's HTML report; results.csv, results.csv.meta.json
    GET  /editor               the structure editor page (JSME)
    POST /check                JSON API: {"query": "..."} -> what `check --json` prints
    POST /screen               JSON API: a file (multipart "file", or the body itself with
                               ?filename=) -> the rows, the summary and links to the files

Every refusal is a 4xx with one line saying why: JSON ``{"error": ..., "status": ...}`` from the
API, the same line on the page. A body over the limit is refused from its Content-Length before
it is read, and counted while read when it has none.

Content-Security-Policy: the page allows scripts and styles from this server only (plus one
nonce'd ``<style>`` for the drawings), and no fetch elsewhere; the editor page allows JSME's
inline and eval'd scripts (its GWT loader needs them) but may only be framed by the bench and
fetch nothing; a run's report keeps its own policy. Violations are posted to ``/csp-report``
and kept in ``app.state.csp_reports`` (the browser test asserts there are none).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from precursor_screen.chem.depict import Drawer
from precursor_screen.serve.bench import Bench, BenchError
from precursor_screen.serve.pages import answer_section, error_section, page, run_section

__all__ = ["create_app", "PAGE_CSP", "EDITOR_CSP", "REPORT_CSP", "MAX_QUERY_BYTES"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]

MAX_QUERY_BYTES = 1024 * 1024
"""Largest body of a query (the form or ``POST /check``): a molfile fits many times over."""
_FORM_OVERHEAD = 64 * 1024
"""Room for the multipart framing around an uploaded file."""

_BASE = ("object-src 'none'; base-uri 'none'; worker-src 'none'; font-src 'self'; "
         "report-uri /csp-report")
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; "
            "img-src 'self' data:; connect-src 'self'; frame-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; " + _BASE)
"""The page's policy: only this server's scripts and styles (and the nonce'd drawing styles)."""
EDITOR_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
              "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
              "frame-src 'self'; form-action 'none'; frame-ancestors 'self'; " + _BASE)
"""The editor's policy: JSME's GWT loader injects and evals its code (measured: nothing less
works), so it lives on a page of its own that holds no answers and can reach no other host."""
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
              "img-src data:; form-action 'none'; frame-ancestors 'self'; base-uri 'none'")
"""A run's report: the report's own meta policy narrows scripts to its one hashed script."""
DEFAULT_CSP = "default-src 'self'; frame-ancestors 'none'; " + _BASE

STATIC = Path(str(resources.files("precursor_screen.serve") / "static"))


def _jsme_dir() -> Path:
    """The vendored JSME editor: installed as ``precursor_screen/serve/jsme``; an editable
    install cannot map that code-free folder, so the checkout's ``vendor/jsme`` is the fallback."""
    installed = Path(str(resources.files("precursor_screen.serve"))) / "jsme"
    if (installed / "jsme.nocache.js").is_file():
        return installed
    return Path(__file__).resolve().parents[2] / "vendor" / "jsme"


JSME = _jsme_dir()


class SecurityHeaders:
    """ASGI middleware: security headers on every response, and a default CSP where the route
    set none (a pure ASGI layer, so streamed responses stay streamed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", DEFAULT_CSP.encode()))
                headers += [(b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"),
                            (b"cross-origin-opener-policy", b"same-origin"),
                            (b"cross-origin-resource-policy", b"same-origin")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused (BenchError 413) past ``limit`` bytes: from Content-Length
    before reading anything, else while counting."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BenchError(400, f"Content-Length {declared!r} is not a number") from None
        if size > limit:
            raise BenchError(413, f"the request is {size:,} bytes; the limit is {limit:,}")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BenchError(413, f"the request is over {limit:,} bytes, the limit")
            chunks.append(chunk)
    except ClientDisconnect:
        raise BenchError(400, "the client went away before sending the whole request") from None
    return b"".join(chunks)


async def _form(request: Request, body: bytes) -> Any:
    """Parse a buffered multipart or urlencoded body (read already, under its limit)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        return await Request(request.scope, receive).form(max_files=1, max_fields=20)
    except Exception as exc:  # noqa: BLE001 - the multipart parser raises several types
        raise BenchError(400, f"the form could not be read: {exc}") from None


def _api_error(exc: BenchError) -> JSONResponse:
    return JSONResponse({"error": str(exc), "status": exc.status}, status_code=exc.status)


def create_app(bench: Bench) -> Starlette:
    """The Starlette application serving ``bench``."""

    def html(body: str = "", *, query: str = "", status: int = 200,
             drawer: Drawer | None = None) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        text = page(bench, nonce, query=query, body=body, drawer=drawer)
        return HTMLResponse(text, status_code=status,
                            headers={"content-security-policy": PAGE_CSP.format(nonce=nonce)})

    async def index(request: Request) -> Response:
        return html()

    async def answer(request: Request) -> Response:
        query = ""
        try:
            form = await _form(request, await _body(request, MAX_QUERY_BYTES))
            query = form.get("query")
            if not isinstance(query, str) or not query.strip():
                raise BenchError(400, "type a SMILES, a name, a CAS number, an InChI or an "
                                      "InChIKey, or draw a structure and press 'Check the "
                                      "drawing'")
            meant, verdict = await run_in_threadpool(bench.check, query)
        except BenchError as exc:
            return html(error_section(str(exc), exc.status), query=query, status=exc.status)
        drawer = Drawer()
        body = await run_in_threadpool(answer_section, bench, drawer, meant, verdict)
        return html(body, query=query, drawer=drawer)

    async def upload(request: Request) -> Response:
        try:
            name, data, options = await _upload(request, raw_ok=False)
            run = await run_in_threadpool(lambda: bench.screen_upload(name, data, **options))
        except BenchError as exc:
            return html(error_section(str(exc), exc.status), status=exc.status)
        return html(run_section(run))

    async def _upload(request: Request, raw_ok: bool = True
                      ) -> tuple[str, bytes, dict[str, str | None]]:
        """The uploaded file's name, bytes and reading options: a multipart field ``file``, or
        (``raw_ok``, the API) the body itself named by ``?filename=``."""
        limit = bench.limits.max_upload_bytes
        body = await _body(request, limit + _FORM_OVERHEAD)
        options = {k: request.query_params.get(k) or None
                   for k in ("format", "smiles_column", "id_column")}
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            form = await _form(request, body)
            item = form.get("file")
            if not isinstance(item, UploadFile):
                raise BenchError(400, "no file: send it in the multipart field 'file'")
            data = await item.read()
            for k in options:
                value = form.get(k)
                if isinstance(value, str) and value:
                    options[k] = value
            name = item.filename or ""
        elif raw_ok:
            data, name = body, request.query_params.get("filename", "")
        else:
            raise BenchError(400, "no file: send it in the multipart field 'file'")
        if not data:
            raise BenchError(400, f"{name or 'the upload'}: the file is empty")
        if len(data) > limit:
            raise BenchError(413, f"{name or 'the upload'}: {len(data):,} bytes; the bench "
                                  f"takes {bench.limits.describe()}")
        return name, data, {"fmt": options["format"], "smiles_column": options["smiles_column"],
                            "id_column": options["id_column"]}

    async def api_check(request: Request) -> Response:
        try:
            body = await _body(request, MAX_QUERY_BYTES)
            try:
                payload = json.loads(body)
            except ValueError:
                raise BenchError(400, 'the body is not JSON; send {"query": "<SMILES, name or '
                                      'CAS number>"}') from None
            query = payload.get("query") if isinstance(payload, dict) else None
            if not isinstance(query, str):
                raise BenchError(400, 'send {"query": "<SMILES, name or CAS number>"}')
            return JSONResponse(await run_in_threadpool(bench.check_json, query))
        except BenchError as exc:
            return _api_error(exc)

    async def api_screen(request: Request) -> Response:
        try:
            name, data, options = await _upload(request)
            run = await run_in_threadpool(lambda: bench.screen_upload(name, data, **options))
        except BenchError as exc:
            return _api_error(exc)
        base = f"/runs/{run.id}"
        return JSONResponse({"filename": run.filename, "rows": run.rows, "summary": run.summary,
                             "notes": run.notes,
                             "report": f"{base}/report.html", "results_file": f"{base}/results.csv",
                             "metadata": run.metadata, "results": run.results})

    async def run_file(request: Request) -> Response:
        run = bench.run(request.path_params["run"])
        name = request.path_params["name"]
        if run is None or name not in ("report.html", "results.csv", "results.csv.meta.json"):
            return JSONResponse({"error": "no such run or file (runs are kept for the last "
                                          f"{bench.keep_runs} uploads)", "status": 404}, 404)
        path = run.directory / name
        if name == "report.html":
            return FileResponse(path, media_type="text/html; charset=utf-8",
                                headers={"content-security-policy": REPORT_CSP})
        kind = "text/csv; charset=utf-8" if name.endswith(".csv") else "application/json"
        stem = run.filename.rsplit(".", 1)[0] or "upload"
        return FileResponse(path, media_type=kind,
                            filename=f"{stem}-{name}".replace('"', "").replace("\\", ""))

    async def editor(request: Request) -> Response:
        return FileResponse(STATIC / "editor.html", media_type="text/html; charset=utf-8",
                            headers={"content-security-policy": EDITOR_CSP})

    async def csp_report(request: Request) -> Response:
        try:
            body = await _body(request, 64 * 1024)
            report = json.loads(body)
        except (BenchError, ValueError):
            report = {"unreadable": True}
        reports = request.app.state.csp_reports
        if len(reports) < 1000:
            reports.append(report)
        return Response(status_code=204)

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        what = "no such page" if status == 404 else "method not allowed here"
        return JSONResponse({"error": f"{what}: {request.method} {request.url.path}",
                             "status": status}, status_code=status)

    app = Starlette(routes=[
        Route("/", index, methods=["GET"]),
        Route("/", answer, methods=["POST"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/check", api_check, methods=["POST"]),
        Route("/screen", api_screen, methods=["POST"]),
        Route("/runs/{run}/{name}", run_file, methods=["GET"]),
        Route("/editor", editor, methods=["GET"]),
        Route("/csp-report", csp_report, methods=["POST"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Mount("/static/jsme", StaticFiles(directory=JSME), name="jsme"),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ], middleware=[Middleware(SecurityHeaders)],
        exception_handlers={404: not_found, 405: not_found})
    app.state.csp_reports = []
    app.state.bench = bench
    return app
