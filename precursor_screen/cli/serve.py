"""``serve``: the lab bench, a local web page and JSON API (the ``serve`` extra)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import ipaddress

import click

from precursor_screen.cli.common import list_line, load_reference, reference_options
from precursor_screen.errors import PrecursorScreenError
from precursor_screen.lookup import Lookup
from precursor_screen.screen import Screener, ScreenParameters

__all__ = ["serve_cmd", "serve_problem"]


def serve_problem() -> str:
    """Why the lab bench cannot start here ('' when it can): the optional web packages."""
    missing = [package for module, package in (("starlette", "starlette"), ("uvicorn", "uvicorn"),
                                                ("multipart", "python-multipart"))
               if importlib.util.find_spec(module) is None]
    if missing:
        return (f"the lab bench needs the 'serve' extra ({', '.join(missing)} missing): "
                "pip install 'precursor-screen[serve]'")
    return ""


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but a loopback address lets other machines "
                   "use the bench (and see what is screened): only on a trusted network.")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True,
              help="Port to listen on.")
@click.option("--max-upload-mb", type=click.FloatRange(min=0.001), default=20.0,
              show_default=True,
              help="Largest file accepted, in MB (also once decompressed); larger ones get 413.")
@click.option("--max-rows", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Most rows screened from one file; more get 413 (screen big files with "
                   "`precursor-screen screen`).")
@reference_options
@click.option("--depth", type=click.IntRange(0, 4), default=2, show_default=True,
              help="Conversion steps to follow.")
@click.option("--opsin/--no-opsin", default=True, show_default=True,
              help="Parse systematic names no table knows with OPSIN (the 'names' extra and "
                   "Java).")
def serve_cmd(host: str, port: int, max_upload_mb: float, max_rows: int, reference: str | None,
              as_of: dt.date | None, extra_reference: tuple[str, ...], include: tuple[str, ...],
              jurisdictions: tuple[str, ...], depth: int, opsin: bool) -> None:
    """Start the lab bench: a web page on this machine to draw, paste or upload structures and
    see each answer with its drawing, route and listing, plus a JSON API.

    The page and the editor (JSME) are served from the package: nothing is fetched from
    elsewhere. It listens on 127.0.0.1 unless --host says otherwise; stop it with Ctrl-C.
    API: POST /check with {"query": "<SMILES, name or CAS>"} returns what `check --json`
    prints; POST /screen with a file returns its rows, summary and report (README).

    \b
    Example:
      precursor-screen serve
      precursor-screen serve --port 9000 --as-of 2012-12-31 --max-rows 2000
    """
    problem = serve_problem()
    if problem:
        raise PrecursorScreenError(problem)
    import uvicorn  # the 'serve' extra: imported only when the bench starts

    from precursor_screen.serve import Bench, Limits, create_app  # needs Starlette (the extra)

    if not _loopback(host):
        click.echo(f"warning: listening on {host}: other machines can use the bench and see "
                   "what is screened", err=True)
    reg = load_reference(reference, as_of, include, extra_reference, jurisdictions)
    screener = Screener(reg, as_of=as_of, parameters=ScreenParameters(depth=depth,
                                                                      jurisdictions=jurisdictions))
    lookup = Lookup([reg] if reference or extra_reference else [], opsin=opsin)
    bench = Bench(screener, lookup, Limits(int(max_upload_mb * 1024 * 1024), max_rows))
    config = uvicorn.Config(create_app(bench), host=host, port=port, log_level="warning",
                            lifespan="off", server_header=False)
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"lab bench on http://{shown}:{port}/ (Ctrl-C stops it); {list_line(reg)}; "
               f"{bench.limits.describe()}", err=True)
    try:
        server.run()
    finally:
        bench.close()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
