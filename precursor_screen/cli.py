"""Command line: parse options, call the library, map its errors to exit codes.

Results go to stdout or ``-o FILE``; progress, summaries and logs go to stderr.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sys
from typing import Any

import click

from precursor_screen import __version__
from precursor_screen.errors import PrecursorScreenError

__all__ = ["main", "cli"]


class Cli(click.Group):
    """A group that turns library errors into one-line messages (exit 1), unless --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as e:  # noqa: BLE001 - this is the one place that maps them
            if ctx.params.get("debug"):
                raise
            msg = str(e) if isinstance(e, PrecursorScreenError) else f"unexpected {type(e).__name__}: {e}"
            raise click.ClickException(msg) from None


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="precursor-screen")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """Screen chemicals against the scheduled drug-precursor lists and find designer precursors.

    \b
    Example:
      precursor-screen list --search BMK
      precursor-screen screen examples/seized.smi -o results.csv
    """


def reference_options(f: Any) -> Any:
    """The options choosing the reference list, shared by every screening command."""
    f = click.option("--include", "include", multiple=True,
                     type=click.Choice(["proposed", "watch"]),
                     help="Also screen against substances proposed for control or on watch lists.")(f)
    f = click.option("--extra-reference", "extra_reference", multiple=True,
                     type=click.Path(dir_okay=False),
                     help="A local list added on top of the built-in one (repeatable).")(f)
    f = click.option("--as-of", "as_of", callback=_date,
                     help="Use the built-in list as it stood on this date (YYYY-MM-DD).")(f)
    f = click.option("--reference", "reference", type=click.Path(dir_okay=False),
                     help="Screen against this list (CSV with name,smiles; SDF; .smi) instead "
                          "of the built-in one.")(f)
    return f


def load_reference(reference: str | None, as_of: dt.date | None, include: tuple[str, ...] = (),
                   extra_reference: tuple[str, ...] = ()) -> Any:
    """Build the Registry a command screens against from the shared reference options."""
    from scheduled_substances import load_reference_file, load_registry

    if reference and as_of:
        raise click.UsageError("--as-of applies to the built-in list; not with --reference")
    if reference:
        reg = load_reference_file(reference)
    else:
        reg = load_registry().filter(as_of=as_of, include=("scheduled", *include))
    for extra in extra_reference:
        reg = reg.merged(load_reference_file(extra))
    return reg


LIST_COLUMNS = ("id", "name", "status", "eu_category", "un_table", "eu_date", "cas", "cn_code",
                "smiles", "inchikey")


@cli.command("list")
@click.option("--as-of", "as_of", callback=_date, help="The list as it stood on this date.")
@click.option("--category", help="EU category: 1, 2A, 2B, 3 or 4.")
@click.option("--un-table", "un_table", type=click.Choice(["I", "II"], case_sensitive=False),
              help="UN 1988 Convention table.")
@click.option("--search", help="Text in the name, a synonym or the CAS number.")
@click.option("--added-since", "added_since", callback=_date,
              help="Only substances first listed on or after this date.")
@click.option("--include", "include", multiple=True, type=click.Choice(["proposed", "watch"]),
              help="Also show proposed or watch-list substances.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "sdf"]),
              default=None, help="Output format (default: from -o's extension, else table).")
@click.option("-o", "--output", default="-", help="Output file (default: stdout).")
def list_cmd(as_of: dt.date | None, category: str | None, un_table: str | None, search: str | None,
             added_since: dt.date | None, include: tuple[str, ...], fmt: str | None,
             output: str) -> None:
    """Show the registry of scheduled substances, filtered.

    The registry's content hash identifies the list version; it is recorded in every output.

    \b
    Example:
      precursor-screen list --as-of 2012-12-31 --category 1
      precursor-screen list --search APAAN --format json
    """
    from scheduled_substances import load_registry
    from precursor_screen.manifest import run_metadata

    full = load_registry()
    reg = full.filter(as_of=as_of, include=("scheduled", *include), category=category,
                      un_table=un_table, search=search, added_since=added_since)
    if fmt is None:
        ext = output.rsplit(".", 1)[-1].lower() if "." in output else ""
        fmt = ext if ext in ("csv", "json", "sdf") else "table"
    meta = run_metadata(reg, {"as_of": str(as_of or ""), "category": category or "",
                              "un_table": un_table or "", "search": search or "",
                              "added_since": str(added_since or ""), "include": list(include)})
    meta["registry_sha256"] = full.content_hash
    text = _render_list(reg, fmt, meta, as_of)
    from precursor_screen.io.writers import write_text

    write_text(output, text)
    click.echo(f"{len(reg)} substances; registry sha256 {full.content_hash}", err=True)


def _render_list(reg: Any, fmt: str, meta: dict[str, Any], as_of: dt.date | None) -> str:
    rows = [s.as_row() for s in reg]
    if fmt == "json":
        return json.dumps({"metadata": meta, "substances": rows}, indent=1, ensure_ascii=False) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["id"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()
    if fmt == "sdf":
        from rdkit import Chem

        buf = io.StringIO()
        for s, row in zip(reg, rows):
            if not s.smiles:
                continue
            mol = Chem.MolFromSmiles(s.smiles)
            mol.SetProp("_Name", s.name)
            for k, v in row.items():
                mol.SetProp(k, v)
            mol.SetProp("registry_sha256", meta["registry_sha256"])
            buf.write(Chem.MolToMolBlock(mol))
            buf.write("".join(f"> <{k}>\n{mol.GetProp(k)}\n\n" for k in (*row, "registry_sha256")))
            buf.write("$$$$\n")
        return buf.getvalue()
    # table
    widths = {"id": 30, "name": 38, "status": 9, "eu_category": 5, "un_table": 5, "eu_date": 10,
              "cas": 12, "cn_code": 12, "smiles": 0, "inchikey": 0}
    cols = [c for c in LIST_COLUMNS if widths[c]]
    out = [f"# registry sha256 {meta['registry_sha256']}" + (f"; as of {as_of}" if as_of else ""),
           "  ".join(c[: widths[c]].ljust(widths[c]) for c in cols)]
    for r in rows:
        r = dict(r, un_table=reg.get(r["id"]).un_table_on(as_of) if r["list"] == "built-in" else "")
        out.append("  ".join(str(r[c])[: widths[c]].ljust(widths[c]) for c in cols).rstrip())
    return "\n".join(out) + "\n"


def main() -> None:
    """Entry point of the ``precursor-screen`` console script."""
    cli(prog_name="precursor-screen")


if __name__ == "__main__":  # pragma: no cover
    main()
