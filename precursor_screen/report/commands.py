"""`precursor-screen report`: the HTML report of a results file written earlier by `screen`."""

from __future__ import annotations

import datetime as dt

import click

from precursor_screen.cli_common import load_reference, reference_options

__all__ = ["report_cmd"]


@click.command("report")
@click.argument("results", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The HTML file to write.")
@reference_options
@click.option("--max-cards", type=click.IntRange(min=0), default=500, show_default=True,
              help="Draw at most this many flagged candidates as cards (the rest stay in the table).")
@click.option("--max-table-rows", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="Put at most this many rows in the table (flagged and unreadable rows first).")
def report_cmd(results: str, output: str, reference: str | None, as_of: dt.date | None,
               extra_reference: tuple[str, ...], include: tuple[str, ...], max_cards: int,
               max_table_rows: int) -> None:
    """Write a self-contained HTML report of a results file (CSV, TSV, Parquet, JSON Lines, SDF).

    The report works offline: run metadata, counts per flag, a chart of the scores, a card per
    flagged candidate (both structures with the shared part highlighted, the conversion path,
    the legal listing) and a table of all rows that sorts and filters. Give the same reference
    options as the screen, so listings come from the list the rows were screened against.

    \b
    Example:
      precursor-screen screen examples/seized.smi -o results.csv
      precursor-screen report results.csv -o report.html
    """
    from precursor_screen.report import write_html_from_results
    from precursor_screen.results import read_results

    rows, meta = read_results(results)
    reg = load_reference(reference, as_of, include, extra_reference)
    write_html_from_results(output, rows, meta, reg, source=results, max_cards=max_cards,
                            max_table_rows=max_table_rows)
    flagged = sum(1 for r in rows if str(r.get("status")) == "ok" and r.get("flag") not in ("", "none", None))
    click.echo(f"{len(rows)} rows, {flagged} flagged ({min(flagged, max_cards)} cards): {output}",
               err=True)
