"""Command line: parse options, call the library, map its errors to exit codes.

Results go to stdout or ``-o FILE``; progress, summaries and logs go to stderr.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import click

from precursor_screen import __version__
from precursor_screen.cli_common import _date, _progress, load_reference, reference_options
from precursor_screen.errors import PrecursorScreenError

__all__ = ["main", "cli"]


class Cli(click.Group):
    """A group that turns library errors into one-line messages (exit 1), unless --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise           # click ends a closed pipe (``| head``) quietly
        except Exception as e:  # noqa: BLE001 - this is the one place that maps them
            if ctx.params.get("debug"):
                raise
            msg = str(e) if isinstance(e, PrecursorScreenError) else f"unexpected {type(e).__name__}: {e}"
            raise click.ClickException(msg) from None





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
@click.option("--drugs", is_flag=True,
              help="Show the controlled drug targets instead (1961/1971 Conventions, EU acts); "
                   "--as-of and --search apply.")
def list_cmd(as_of: dt.date | None, category: str | None, un_table: str | None, search: str | None,
             added_since: dt.date | None, include: tuple[str, ...], fmt: str | None,
             output: str, drugs: bool) -> None:
    """Show the registry of scheduled substances (or of controlled drugs), filtered.

    The registry's content hash identifies the list version; it is recorded in every output.

    \b
    Example:
      precursor-screen list --as-of 2012-12-31 --category 1
      precursor-screen list --search APAAN --format json
      precursor-screen list --drugs --as-of 2014-12-31
    """
    from precursor_screen.reference import builtin_registry
    from precursor_screen.manifest import run_metadata

    if drugs:
        given = [o for o, v in (("--category", category), ("--un-table", un_table),
                                ("--added-since", added_since), ("--include", include)) if v]
        if given:
            raise click.UsageError(f"{', '.join(given)} do not apply to --drugs "
                                   "(use --as-of and --search)")
        _list_drugs(as_of, search, fmt, output)
        return
    full = builtin_registry()
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


DRUG_LIST_COLUMNS = (("id", 24), ("name", 34), ("schedule", 14), ("controlled_from", 15),
                     ("eu_act", 44))


def _list_drugs(as_of: dt.date | None, search: str | None, fmt: str | None, output: str) -> None:
    """`list --drugs`: the controlled drug targets the drug-precursor stage looks for."""
    from precursor_screen.io.writers import write_text
    from precursor_screen.manifest import run_metadata
    from precursor_screen.reference import builtin_drugs

    full = builtin_drugs()
    reg = full.filter(as_of=as_of, search=search)
    if fmt is None:
        ext = output.rsplit(".", 1)[-1].lower() if "." in output else ""
        fmt = ext if ext in ("csv", "json", "sdf") else "table"
    meta = run_metadata(reg, {"as_of": str(as_of or ""), "search": search or "", "drugs": True})
    meta["registry_sha256"] = full.content_hash
    rows = []
    for t in reg:
        schedule = t.un_schedule(as_of)
        rows.append(dict(t.as_row(), schedule=f"{t.convention} {schedule}" if schedule else "",
                         listing=t.listing(as_of)))
    if fmt == "json":
        text = json.dumps({"metadata": meta, "drugs": rows}, indent=1, ensure_ascii=False) + "\n"
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["id"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        text = buf.getvalue()
    elif fmt == "sdf":
        from rdkit import Chem

        buf = io.StringIO()
        for row in rows:
            mol = Chem.MolFromSmiles(row["smiles"])
            mol.SetProp("_Name", row["name"])
            buf.write(Chem.MolToMolBlock(mol))
            buf.write("".join(f"> <{k}>\n{v}\n\n" for k, v in
                              (*row.items(), ("registry_sha256", meta["registry_sha256"]))))
            buf.write("$$$$\n")
        text = buf.getvalue()
    else:
        out = [f"# drug registry sha256 {meta['registry_sha256']}" + (f"; as of {as_of}" if as_of else ""),
               "  ".join(c[:w].ljust(w) for c, w in DRUG_LIST_COLUMNS)]
        for r in rows:
            out.append("  ".join(str(r[c])[:w].ljust(w) for c, w in DRUG_LIST_COLUMNS).rstrip())
        text = "\n".join(out) + "\n"
    write_text(output, text)
    click.echo(f"{len(reg)} controlled drugs; drug registry sha256 {full.content_hash}", err=True)


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


@cli.command("screen")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", default="-", show_default=True,
              help="Output file; format from the extension (.csv .tsv .parquet .sdf .jsonl).")
@click.option("--format", "fmt", type=click.Choice(["csv", "tsv", "parquet", "sdf", "jsonl"]),
              help="Output format, overriding the extension.")
@click.option("--input-format", type=click.Choice(["smi", "sdf", "csv", "tsv", "parquet"]),
              help="Input format, overriding the extension (needed for '-' unless SMILES).")
@click.option("--smiles-column", help="Name of the SMILES column of CSV/TSV/Parquet input.")
@click.option("--id-column", help="Name of the id column of CSV/TSV/Parquet input.")
@reference_options
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=0,
              help="Worker processes (default 0: all cores).")
@click.option("--depth", type=click.IntRange(0, 4), default=2, show_default=True,
              help="Conversion steps to follow.")
@click.option("--max-products", type=click.IntRange(min=1), default=200, show_default=True,
              help="Cap on distinct conversion products per candidate.")
@click.option("--report", "report", type=click.Path(dir_okay=False),
              help="Also write a self-contained HTML report here.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr "
              "(default: when stderr is a terminal).")
def screen_cmd(inputs: tuple[str, ...], output: str, fmt: str | None, input_format: str | None,
               smiles_column: str | None, id_column: str | None, reference: str | None,
               as_of: dt.date | None, extra_reference: tuple[str, ...], include: tuple[str, ...],
               jobs: int, depth: int, max_products: int, report: str | None,
               progress: bool | None) -> None:
    """Screen molecules and flag scheduled substances and designer precursors, with reasons.

    Every input row gives exactly one output row (unreadable rows get a status saying why).
    A summary of counts per flag goes to stderr.

    \b
    Example:
      precursor-screen screen examples/seized.smi -o results.csv
      cat list.smi | precursor-screen screen - --as-of 2012-12-31 > results.csv
    """
    import os as _os

    from precursor_screen.io.readers import read_records
    from precursor_screen.manifest import run_metadata
    from precursor_screen.results import ResultWriter, Summary, output_format, verdict_row
    from precursor_screen.screen import ScreenParameters, Screener

    out_fmt = output_format(output, fmt)
    reg = load_reference(reference, as_of, include, extra_reference)
    params = ScreenParameters(depth=depth, max_products=max_products)
    screener = Screener(reg, as_of=as_of, parameters=params)
    jobs = jobs or (_os.cpu_count() or 1)
    meta = run_metadata(reg, {**screener.metadata(), "jobs": jobs, "include": list(include),
                              "extra_reference": list(extra_reference)}, list(inputs))
    summary = Summary()

    def records() -> Any:
        start = 0
        for path in inputs:
            for rec in read_records(path, fmt=input_format, smiles_column=smiles_column,
                                    id_column=id_column, start_row=start):
                yield rec
                start = rec.row + 1

    verdicts_for_report = [] if report else None
    with _progress(None, "screening", progress) as bar, ResultWriter(output, out_fmt, meta) as w:
        for v in screener.screen(records(), jobs=jobs):
            summary.add(v)
            w.write(verdict_row(v, meta["tool_version"], meta["reference_sha256"]))
            if verdicts_for_report is not None:
                verdicts_for_report.append(v)
            bar.update(1)
    meta["summary"] = summary.as_dict()
    if report:
        from precursor_screen.report import write_html

        write_html(report, verdicts_for_report, meta, screener)
    click.echo(summary.text(), err=True)


@cli.command("check")
@click.argument("query")
@reference_options
@click.option("--depth", type=click.IntRange(0, 4), default=2, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the evidence as JSON.")
def check_cmd(query: str, reference: str | None, as_of: dt.date | None,
              extra_reference: tuple[str, ...], include: tuple[str, ...], depth: int,
              as_json: bool) -> None:
    """Answer one compound in full: nearest listed substances, relations, routes, groups,
    and routes to controlled drugs with the reagent of each step.

    QUERY is a SMILES, or a name, synonym, CAS number or id on the list (or a controlled drug's).

    \b
    Example:
      precursor-screen check "CC(=O)C(C#N)c1ccccc1"
      precursor-screen check APAAN --as-of 2012-12-31
      precursor-screen check "CCC(=O)c1ccc(C)cc1"
    """
    from precursor_screen.results import route_text
    from precursor_screen.screen import ScreenParameters, Screener

    reg = load_reference(reference, as_of, include, extra_reference)
    screener = Screener(reg, as_of=as_of, parameters=ScreenParameters(depth=depth))
    v = screener.check(query)
    if v.status != "ok":
        raise click.ClickException(f"{query}: {v.status}")
    if as_json:
        data = {"query": query, "standardized_smiles": v.standardized_smiles, "flag": v.flag.value,
                "score": v.score, "reason": v.reason, "similarity": v.similarity,
                "reference_sha256": reg.content_hash,
                "hits": [{"relation": h.relation, "substance_id": h.substance_id,
                          "substance_name": h.substance_name, "list": h.list_name,
                          "score": h.score, "similarity": h.similarity, "reason": h.reason,
                          "route": route_text(h.route), "group_id": h.group_id} for h in v.hits]}
        click.echo(json.dumps(data, indent=1, ensure_ascii=False))
        return
    click.echo(f"query:        {query}")
    click.echo(f"standardized: {v.standardized_smiles}")
    click.echo(f"flag:         {v.flag.value} (score {v.score:.2f})")
    click.echo(f"why:          {v.reason}")
    click.echo(f"list:         {reg.source}, {len(reg)} substances, sha256 {reg.content_hash[:16]}"
               + (f", as of {as_of}" if as_of else ""))
    sims = [h for h in v.hits if h.relation == "similar"]
    if sims:
        click.echo("nearest listed substances (Morgan radius 2, 2048 bits):")
        for h in sims:
            click.echo(f"  {h.similarity:.3f}  {h.substance_name} [{h.substance_id}]")
    other = [h for h in v.hits if h.relation != "similar"]
    if other:
        click.echo("evidence:")
        for h in other:
            click.echo(f"  [{h.relation}] {h.reason}")
    else:
        click.echo("evidence:     no identity, substructure, conversion or group relation found")


from precursor_screen.declarations.commands import declarations_cmd, rescreen_cmd  # noqa: E402
from precursor_screen.report.commands import report_cmd  # noqa: E402
from precursor_screen.survey.commands import (  # noqa: E402
    derivatives_cmd,
    enumerate_cmd,
    group_cmd,
    index_group,
    search_cmd,
)

cli.add_command(report_cmd, "report")
cli.add_command(declarations_cmd, "declarations")
cli.add_command(rescreen_cmd, "rescreen")
cli.add_command(index_group, "index")
cli.add_command(search_cmd, "search")
cli.add_command(derivatives_cmd, "derivatives")
cli.add_command(group_cmd, "group")
cli.add_command(enumerate_cmd, "enumerate")


def main() -> None:
    """Entry point of the ``precursor-screen`` console script."""
    cli(prog_name="precursor-screen")


if __name__ == "__main__":  # pragma: no cover
    main()
