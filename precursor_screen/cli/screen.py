"""``list``, ``screen``, ``check`` and ``report``: the commands of the screen itself."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import click

from precursor_screen.cli.common import (DEFAULT_TIMEOUT, INPUT_FILE, check_dask,
                                         check_input_formats, count_progress, date_option,
                                         depth_option, groups_option, input_options, jobs,
                                         jurisdiction_option, limit_options, list_line,
                                         load_group_files, load_reference, no_groups_option,
                                         notify, opsin_option, output_format, progress,
                                         progress_option, raw_cells_option, reading_limits,
                                         reference_options, report_option, stdin_as_file,
                                         warn_if_edited)
from precursor_screen.errors import InputError, PrecursorScreenError
from precursor_screen.io.examples import copy_examples
from precursor_screen.io.formats import output_format as _output_format
from precursor_screen.io.readers import read_inputs, read_records
from precursor_screen.io.text import InputStats
from precursor_screen.io.writers import TableWriter, check_output, render_records, write_text
from precursor_screen.lookup import Lookup, check_query
from precursor_screen.manifest import run_metadata
from precursor_screen.parallel import dask_client
from precursor_screen.reference import builtin_drugs, builtin_registry
from precursor_screen.report import write_html, write_html_from_results
from precursor_screen.results import (
    SCREEN,
    Summary,
    check_json,
    read_results,
    verdict_row,
)
from precursor_screen.screen import Screener, ScreenParameters

__all__ = ["list_cmd", "screen_cmd", "check_cmd", "report_cmd", "examples_cmd"]

LIST_TABLE = (("id", 30), ("name", 34), ("status", 9), ("jurisdictions", 13), ("eu_category", 11),
              ("un_table", 8), ("us_list", 11), ("first_listed", 12), ("cas", 12))
"""The columns (and widths) of ``list``'s table."""
DRUG_TABLE = (("id", 24), ("name", 34), ("schedule", 14), ("controlled_from", 15),
              ("listing", 60))
"""The columns (and widths) of ``list --drugs``'s table."""


def _list_format(fmt: str | None, output: str) -> str:
    """``--format``, else csv, json or sdf from ``-o``'s extension, else the table."""
    if fmt is not None:
        return fmt
    if output == "-":
        return "table"
    try:
        return _output_format(output, allowed=("csv", "json", "sdf"))
    except InputError:
        return "table"


@click.command("list")
@click.option("--as-of", "as_of", callback=date_option, help="The list as it stood on this date.")
@click.option("--category", help="EU category: 1, 2A, 2B, 3 or 4.")
@click.option("--un-table", "un_table", type=click.Choice(["I", "II"], case_sensitive=False),
              help="UN 1988 Convention table.")
@click.option("--search", help="Text in the name, a synonym or the CAS number.")
@click.option("--added-since", "added_since", callback=date_option,
              help="Only substances first listed (in one of --jurisdiction's lists) on or after "
                   "this date.")
@click.option("--include", "include", multiple=True, type=click.Choice(["proposed", "watch"]),
              help="Also show proposed or watch-list substances.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "sdf"]),
              default=None, help="Output format (default: from -o's extension, else table).")
@click.option("-o", "--output", default="-", help="Output file (default: stdout).")
@click.option("--drugs", is_flag=True,
              help="Show the controlled drug targets instead (1961/1971 Conventions, EU acts, US "
                   "schedules); --as-of, --search and --jurisdiction apply.")
@jurisdiction_option
def list_cmd(as_of: dt.date | None, category: str | None, un_table: str | None, search: str | None,
             added_since: dt.date | None, include: tuple[str, ...], fmt: str | None,
             output: str, drugs: bool, jurisdictions: tuple[str, ...]) -> None:
    """Show the registry of scheduled substances (or of controlled drugs), filtered.

    A substance is shown when a list of --jurisdiction has it on the day asked for (--as-of;
    the latest state of each list without it). The registry's content hash identifies the list
    version whatever the filter; it is recorded in every output.

    \b
    Example:
      precursor-screen list --as-of 2012-12-31 --category 1
      precursor-screen list --jurisdiction us --added-since 2023-01-01
      precursor-screen list --search APAAN --format json
      precursor-screen list --drugs --as-of 2014-12-31
    """
    fmt = _list_format(fmt, output)
    warn_if_edited()
    if drugs:
        given = [o for o, v in (("--category", category), ("--un-table", un_table),
                                ("--added-since", added_since), ("--include", include)) if v]
        if given:
            raise click.UsageError(f"{', '.join(given)} do not apply to --drugs "
                                   "(use --as-of and --search)")
        targets = builtin_drugs().filter(as_of=as_of, search=search, jurisdictions=jurisdictions)
        meta = run_metadata(targets, {"as_of": str(as_of or ""), "search": search or "",
                                      "drugs": True, "jurisdictions": list(jurisdictions)})
        rows = []
        for t in targets:
            schedule = t.un_schedule()
            rows.append(dict(t.as_row(), schedule=f"{t.convention} {schedule}" if schedule else ""))
        view = ", ".join(j.upper() for j in jurisdictions) + (f"; as of {as_of}" if as_of else "")
        title = f"# drug registry sha256 {meta['drugs_sha256']}; {view}"
        write_text(output, render_records(rows, fmt, key="drugs", metadata=meta,
                                          table=DRUG_TABLE, title=title))
        click.echo(f"{len(targets)} controlled drugs; drug registry sha256 "
                   f"{meta['drugs_sha256']}", err=True)
        return
    reg = builtin_registry().filter(as_of=as_of, include=("scheduled", *include),
                                    category=category, un_table=un_table, search=search,
                                    added_since=added_since, jurisdictions=jurisdictions)
    meta = run_metadata(reg, {"as_of": str(as_of or ""), "category": category or "",
                              "un_table": un_table or "", "search": search or "",
                              "added_since": str(added_since or ""), "include": list(include),
                              "jurisdictions": list(jurisdictions)})
    rows = [s.as_row() for s in reg]
    view = ", ".join(j.upper() for j in jurisdictions) + (f"; as of {as_of}" if as_of else "")
    title = f"# registry sha256 {reg.content_hash}; {view}"
    write_text(output, render_records(rows, fmt, key="substances", metadata=meta,
                                      table=LIST_TABLE, title=title))
    click.echo(list_line(reg), err=True)


@click.command("screen")
@click.argument("inputs", nargs=-1, required=True, type=INPUT_FILE)
@click.option("-o", "--output", default="-", show_default=True,
              help="Output file; format from the extension (.csv .tsv .parquet .sdf .jsonl).")
@click.option("--format", "fmt", type=click.Choice(["csv", "tsv", "parquet", "sdf", "jsonl"]),
              help="Output format, overriding the extension.")
@input_options
@reference_options
@click.option("--jobs", "-j", "n_jobs", type=click.IntRange(min=0), default=0,
              help="Worker processes (default 0: all cores).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Screen on a Dask LocalCluster of this many worker processes.")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Screen on a running Dask cluster, e.g. tcp://10.0.0.5:8786 (its workers need "
                   "precursor-screen installed, not the input or reference files).")
@depth_option
@click.option("--max-products", type=click.IntRange(min=1), default=200, show_default=True,
              help="Cap on distinct conversion products per candidate.")
@report_option()
@groups_option
@no_groups_option
@progress_option
@click.option("--timeout", type=click.FloatRange(min=0.0, min_open=True),
              default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds one molecule may take; a slower one gets the status 'timeout' "
                   "(molecules are screened in watched worker processes, also with --jobs 1). "
                   "Not on Dask (--workers, --scheduler): there it cannot be enforced, and "
                   "giving it is an error.")
@limit_options
@raw_cells_option
def screen_cmd(inputs: tuple[str, ...], output: str, fmt: str | None, input_format: str | None,
               smiles_column: str | None, id_column: str | None, reference: str | None,
               as_of: dt.date | None, extra_reference: tuple[str, ...], include: tuple[str, ...],
               jurisdictions: tuple[str, ...], n_jobs: int, workers: int | None,
               scheduler: str | None, depth: int, max_products: int,
               report: str | None, group_files: tuple[str, ...], no_groups: bool,
               show_progress: bool | None, timeout: float | None,
               max_record_bytes: int, max_inflation: float, max_inflated_bytes: int,
               max_atoms: int, raw_cells: bool) -> None:
    """Screen molecules and flag scheduled substances and designer precursors, with reasons.

    INPUT is SMILES (.smi), SDF, CSV/TSV (the delimiter read from the header; the SMILES and
    id columns found by name, or --smiles-column and --id-column) or Parquet; '-' reads
    standard input (SMILES unless --input-format). Every input row gives exactly one output row
    (unreadable rows get a status saying why), in input order, whether it runs in one process,
    on --jobs processes or on Dask (--workers, --scheduler), and the run checks that rows out
    equal rows in. The progress bar and a summary of counts per flag, and the list screened
    against, go to stderr. --groups FILE adds the generic groups of a group file (e.g. from
    `group draft`) to the shipped ones; with --no-groups only those count.

    \b
    Example:
      precursor-screen screen examples/seized.smi -o results.csv
      precursor-screen screen examples/seized.smi --jurisdiction eu,un,us -o results.csv
      cat list.smi | precursor-screen screen - --as-of 2012-12-31 > results.csv
      precursor-screen screen new.smi --reference list2012.csv --as-of 2012-12-31 --no-groups
      precursor-screen screen seized.smi --groups draft.toml -o results.csv
      precursor-screen screen catalogue.smi --scheduler tcp://10.0.0.5:8786 -o results.parquet
    """
    check_dask(scheduler, workers, n_jobs)
    on_dask = bool(workers or scheduler)
    if on_dask:
        if click.get_current_context().get_parameter_source("timeout") is not \
                click.core.ParameterSource.DEFAULT:
            raise click.UsageError("--timeout cannot be enforced on Dask workers (RDKit cannot "
                                   "be stopped inside a worker's thread); leave it out with "
                                   "--workers/--scheduler, or screen with --jobs")
        timeout = None
    out_fmt = output_format(output, fmt)
    check_input_formats(inputs, input_format)
    protected = [*inputs, *extra_reference, *([reference] if reference else []), *group_files]
    check_output(output, protected, sidecar=out_fmt in ("csv", "tsv", "jsonl"))
    if report:
        check_output(report, [*protected, output], what="report")
    reg = load_reference(reference, as_of, include, extra_reference, jurisdictions)
    groups = load_group_files(group_files, shipped=not no_groups)
    screener = Screener(reg, as_of=as_of, groups=groups,
                        parameters=ScreenParameters(depth=depth, max_products=max_products,
                                                    jurisdictions=jurisdictions,
                                                    max_atoms=max_atoms,
                                                    generic_groups=not no_groups))
    n_jobs = jobs(n_jobs) if not on_dask else 0
    run = {"jobs": n_jobs} if n_jobs else {"dask": scheduler or f"LocalCluster of {workers}"}
    limits = reading_limits(max_record_bytes, max_inflation, max_inflated_bytes)
    extra = ({"group_files": list(group_files), "no_groups": no_groups}
             if group_files or no_groups else {})
    meta = run_metadata(reg, {**screener.metadata(), **run, "include": list(include),
                              "extra_reference": list(extra_reference), "timeout": timeout,
                              "limits": limits.as_dict(), **extra}, [*inputs, *group_files])
    summary = Summary()
    for path in inputs:  # a file that cannot be read (no SMILES column) fails before any output
        if path != "-":
            next(read_records(path, fmt=input_format, smiles_column=smiles_column,
                              id_column=id_column, limits=limits), None)
    stats = InputStats()
    records = read_inputs(inputs, fmt=input_format, smiles_column=smiles_column,
                          id_column=id_column, notify=notify, limits=limits, stats=stats)
    verdicts_for_report: list[Any] | None = [] if report else None
    with progress(None, "screening", show_progress) as bar, \
            dask_client(scheduler, workers) as client, \
            TableWriter(output, out_fmt, SCREEN, meta, inputs=protected,
                        expect_rows=lambda: stats.rows, raw_cells=raw_cells) as w:
        count_progress(bar, inputs, lambda: sum(1 for _ in read_inputs(
            inputs, fmt=input_format, smiles_column=smiles_column, id_column=id_column,
            limits=limits)))
        for v in screener.screen(records, jobs=n_jobs, timeout=timeout, client=client):
            summary.add(v)
            w.write(verdict_row(v, meta["tool_version"], meta["reference_sha256"]))
            if verdicts_for_report is not None:
                verdicts_for_report.append(v)
            bar.update(1)
    meta["summary"] = summary.as_dict()
    meta["input"] = stats.as_dict()
    if report:
        write_html(report, verdicts_for_report or [], meta, screener)
    click.echo(summary.text(), err=True)
    click.echo(list_line(reg), err=True)
    click.echo(f"{stats.rows} rows in, {w.count} rows out" +
               (f"; {stats.text()}" if stats.text() else ""), err=True)


@click.command("check")
@click.argument("query")
@reference_options
@depth_option
@opsin_option
@click.option("--json", "as_json", is_flag=True, help="Print the evidence as JSON.")
@groups_option
@no_groups_option
def check_cmd(query: str, reference: str | None, as_of: dt.date | None,
              extra_reference: tuple[str, ...], include: tuple[str, ...],
              jurisdictions: tuple[str, ...], depth: int, opsin: bool, as_json: bool,
              group_files: tuple[str, ...], no_groups: bool) -> None:
    """Answer one compound in full: nearest listed substances, relations, routes, groups,
    and routes to controlled drugs with the reagent of each step.

    QUERY is a SMILES, an InChI, a CAS number, a name or synonym (of a listed substance, a
    controlled drug or one of the bundled traded chemicals), the InChIKey of a listed substance,
    or a systematic name (OPSIN). A name means the same whatever --as-of says; the answer says
    how the query was read ("interpreted"). '-' reads the query from standard input (a SMILES,
    a name or a whole molfile).

    \b
    Example:
      precursor-screen check "CC(=O)C(C#N)c1ccccc1"
      precursor-screen check APAAN --as-of 2012-12-31
      precursor-screen check 121-33-5
      precursor-screen check "1-(4-methylphenyl)propan-1-one" --json
      precursor-screen check "benzyl cyanide" --jurisdiction eu,un,us
    """
    if query == "-":
        query = sys.stdin.read()
    reg = load_reference(reference, as_of, include, extra_reference, jurisdictions)
    screener = Screener(reg, as_of=as_of,
                        parameters=ScreenParameters(depth=depth, jurisdictions=jurisdictions,
                                                    generic_groups=not no_groups),
                        groups=load_group_files(group_files, shipped=not no_groups))
    lookup = Lookup([reg] if reference or extra_reference else [], opsin=opsin)
    try:
        meant, v = check_query(lookup, screener, query)
    finally:
        lookup.close()
    shown = query.strip() if "\n" not in query.strip() else "(molfile)"
    if as_json:
        click.echo(json.dumps(check_json(shown, v, reg.content_hash, meant.as_dict()), indent=1,
                              ensure_ascii=False))
        return
    click.echo(f"query:        {shown}")
    click.echo(f"interpreted:  {meant.text()}")
    click.echo(f"standardized: {v.standardized_smiles}")
    click.echo(f"flag:         {v.flag.value} (score {v.score:.2f})")  # type: ignore[union-attr]
    click.echo(f"why:          {v.reason}")
    click.echo(f"{list_line(reg).replace('list: ', 'list:         ', 1)}")
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


@click.command("report")
@click.argument("results", type=INPUT_FILE)
@click.option("-o", "--output", default="-", show_default=True, type=click.Path(dir_okay=False),
              help="The HTML file to write (default: standard output).")
@reference_options
@click.option("--max-cards", type=click.IntRange(min=0), default=500, show_default=True,
              help="Draw at most this many flagged candidates as cards (the rest stay in the table).")
@click.option("--max-table-rows", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="Put at most this many rows in the table (flagged and unreadable rows first).")
def report_cmd(results: str, output: str, reference: str | None, as_of: dt.date | None,
               extra_reference: tuple[str, ...], include: tuple[str, ...],
               jurisdictions: tuple[str, ...], max_cards: int, max_table_rows: int) -> None:
    """Write a self-contained HTML report of a results file (CSV, TSV, Parquet, JSON Lines, SDF).

    The report works offline: run metadata, counts per flag, a chart of the scores, a card per
    flagged candidate (both structures with the shared part highlighted, the conversion path,
    the legal listing) and a table of all rows that sorts and filters. Give the same reference
    options as the screen, so listings come from the list the rows were screened against.
    RESULTS '-' reads a CSV results file from standard input (its metadata cannot come along).

    \b
    Example:
      precursor-screen screen examples/seized.smi -o results.csv
      precursor-screen report results.csv -o report.html
      precursor-screen screen examples/seized.smi | precursor-screen report - > report.html
    """
    if output != "-":
        output_format(output, allowed=("html",))
    if results != "-":
        try:
            _output_format(results)
        except InputError:
            raise click.BadParameter(f"{results}: not a results file (.csv .tsv .parquet .jsonl "
                                     ".sdf, as `screen -o` writes)", param_hint="RESULTS") from None
    reg = load_reference(reference, as_of, include, extra_reference, jurisdictions)
    with stdin_as_file([results], ".csv") as (path,):
        rows, meta = read_results(path)
        write_html_from_results(output, rows, meta, reg,
                                source=results if results != "-" else "(standard input)",
                                max_cards=max_cards, max_table_rows=max_table_rows)
    flagged = sum(1 for r in rows
                  if str(r.get("status")) == "ok" and r.get("flag") not in ("", "none", None))
    click.echo(f"{len(rows)} rows, {flagged} flagged ({min(flagged, max_cards)} cards): {output}",
               err=True)
    click.echo(list_line(reg), err=True)


@click.command("examples")
@click.argument("directory", default="examples", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite example files that were changed.")
def examples_cmd(directory: str, force: bool) -> None:
    """Copy the example inputs shipped with the package into DIRECTORY (default: examples).

    seized.smi (listed substances, designer precursors, legitimate look-alikes and a broken
    row) is the input of the README's first command; declarations.csv holds trade declarations;
    thresholds.csv declarations with quantities and concentrations (see --jurisdiction us).
    A file already there is left alone when it is the same, and kept (exit 1) when it differs,
    unless --force. What was done goes to stderr.

    \b
    Example:
      precursor-screen examples && precursor-screen screen examples/seized.smi -o results.csv
      precursor-screen examples /tmp/try
    """
    copied = copy_examples(directory, force=force)
    for c in copied:
        click.echo(f"{c.path}: {c.outcome}", err=True)
    kept = [str(c.path) for c in copied if c.outcome == "kept"]
    if kept:
        raise PrecursorScreenError(f"{', '.join(kept)} differ{'s' if len(kept) == 1 else ''} "
                                   "from the shipped example; left as it is (--force "
                                   "overwrites)")
