"""``declarations`` and ``rescreen``: trade declarations, screened and re-screened."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from precursor_screen.cli.common import (EXISTING_FILE, INPUT_FILE, INPUT_FILE_OR_DIR, check_dask,
                                         count_progress, jobs, limit_options, list_line,
                                         load_reference, notify, progress, progress_option,
                                         raw_cells_option, reading_limits, reference_options,
                                         reference_parameters, stdin_as_file)
from precursor_screen.declarations.rescreen import rescreen
from precursor_screen.declarations.resolve import Opsin
from precursor_screen.declarations.run import (
    DaskExecutor,
    InlineExecutor,
    ProcessExecutor,
    declarations_format,
    output_metadata,
    run_declarations,
)
from precursor_screen.declarations.schema import (
    InputSpec,
    count_rows,
    expand_inputs,
    load_config,
    parse_column_options,
)
from precursor_screen.declarations.verdict import DeclarationConfig
from precursor_screen.errors import InputError, PrecursorScreenError
from precursor_screen.io.readers import count_output_rows
from precursor_screen.io.text import Limits
from precursor_screen.io.writers import check_output
from precursor_screen.screen import ScreenParameters

__all__ = ["declarations_cmd", "rescreen_cmd"]


@click.command("declarations")
@click.argument("inputs", nargs=-1, required=True, type=INPUT_FILE_OR_DIR)
@click.option("-o", "--output", default="-", show_default=True,
              help="Output file; format from the extension (.csv .tsv .parquet .jsonl). "
                   "'-' writes CSV to stdout (not resumable).")
@click.option("--format", "fmt", type=click.Choice(["csv", "tsv", "parquet", "jsonl"]),
              help="Output format, overriding the extension.")
@click.option("--input-format", type=click.Choice(["csv", "tsv", "parquet"]),
              help="Input format, overriding the extension.")
@click.option("--delimiter", help="Field delimiter of CSV input (e.g. ';').")
@click.option("--column", "columns", multiple=True, metavar="FIELD=COLUMN",
              help="Read FIELD from the input column COLUMN (repeatable), e.g. cas='CAS RN'. "
                   "Fields: declaration_id cn_code cas name smiles description quantity_kg "
                   "concentration_pct.")
@click.option("--config", "config_file", type=EXISTING_FILE,
              help="TOML file with [columns], [input] and [resolve] tables (docs/declarations.md).")
@click.option("--map", "map_files", multiple=True, type=EXISTING_FILE,
              help="A CAS/name-to-structure mapping file, CSV/TSV with smiles and cas and/or "
                   "name columns (repeatable); looked up after the registry and the bundled table.")
@click.option("--opsin/--no-opsin", default=None,
              help="Parse names nothing else resolved with OPSIN (needs the 'opsin' extra and Java).")
@reference_options
@click.option("--depth", type=click.IntRange(0, 4), default=2, show_default=True,
              help="Conversion steps to follow.")
@click.option("--max-products", type=click.IntRange(min=1), default=200, show_default=True,
              help="Cap on distinct conversion products per structure.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Rows per chunk: the unit of work, of resuming and of Parquet row groups.")
@click.option("--jobs", "-j", "n_jobs", type=click.IntRange(min=0), default=0,
              help="Worker processes on this machine (default 0: all cores).")
@click.option("--workers", type=click.IntRange(min=1),
              help="Start a Dask LocalCluster with this many worker processes.")
@click.option("--scheduler", metavar="ADDRESS",
              help="Use a running Dask cluster, e.g. tcp://10.0.0.5:8786.")
@click.option("--work-dir", type=click.Path(file_okay=False),
              help="Where part files and the manifest go (default: OUTPUT.parts).")
@click.option("--keep-parts", is_flag=True, help="Keep the work directory after success.")
@progress_option
@limit_options
@raw_cells_option
def declarations_cmd(inputs: tuple[str, ...], output: str, fmt: str | None,
                     input_format: str | None, delimiter: str | None, columns: tuple[str, ...],
                     config_file: str | None, map_files: tuple[str, ...], opsin: bool | None,
                     reference: str | None, as_of: dt.date | None,
                     extra_reference: tuple[str, ...], include: tuple[str, ...],
                     jurisdictions: tuple[str, ...], depth: int,
                     max_products: int, chunk_size: int, n_jobs: int, workers: int | None,
                     scheduler: str | None, work_dir: str | None, keep_parts: bool,
                     show_progress: bool | None, max_record_bytes: int, max_inflation: float,
                     max_inflated_bytes: int, max_atoms: int, raw_cells: bool) -> None:
    """Screen trade declarations: a verdict with its reason for every row.

    Each row is resolved to a structure (SMILES or InChI, then CAS number, then name, then OPSIN
    if enabled), screened, and weighed with CN-code rules and, for a listed substance, the
    threshold and mixture rules of its listings against quantity_kg and concentration_pct:
    scheduled, below-threshold, suspect, clear or unresolved. INPUT is a CSV/TSV file (the
    delimiter read from the header, or --delimiter), a Parquet file, a folder of Parquet files,
    or '-' (standard input, CSV unless --input-format). Every input row gives one output row;
    the progress bar and a summary go to stderr. A run that is killed resumes when started again
    with the same command (and, from standard input, the same data), and ends with the same
    output.

    \b
    Example:
      precursor-screen declarations examples/declarations.csv -o verdicts.csv
      precursor-screen declarations examples/thresholds.csv --jurisdiction eu,un,us -o v.csv
      precursor-screen declarations exports/ --column cas='CAS RN' --workers 4 -o v.parquet
      zcat today.csv.gz | precursor-screen declarations - -o verdicts.csv
    """
    check_dask(scheduler, workers, n_jobs)
    if output != "-":
        try:
            declarations_format(output, fmt)
        except InputError as exc:
            raise click.BadParameter(str(exc), param_hint="-o") from None
    conf: dict[str, Any] = {"columns": {}, "input": {}, "resolve": {}}
    if config_file:
        conf = load_config(config_file)
    protected = [*expand_inputs([p for p in inputs if p != "-"]), *map_files, *conf["resolve"].get("map_files", []),
                 *extra_reference, *([reference] if reference else []),
                 *([config_file] if config_file else [])]
    check_output(output, protected, sidecar=True)
    try:
        column_map = {**conf["columns"], **parse_column_options(columns)}
    except InputError as exc:
        raise click.BadParameter(str(exc), param_hint="--column") from None
    spec = InputSpec(column_map, delimiter or conf["input"].get("delimiter"),
                     input_format or conf["input"].get("format"))
    use_opsin = opsin if opsin is not None else bool(conf["resolve"].get("opsin", False))
    reg = load_reference(reference, as_of, include, extra_reference, jurisdictions)
    config = DeclarationConfig.create(reg, ScreenParameters(depth=depth, max_products=max_products,
                                                            jurisdictions=jurisdictions,
                                                            max_atoms=max_atoms),
                                      [*conf["resolve"].get("map_files", []), *map_files], use_opsin)
    if use_opsin:
        problem = Opsin().problem()
        if problem:
            raise PrecursorScreenError(f"--opsin: {problem}")
    suffix = "." + (spec.fmt or "csv")
    with stdin_as_file(inputs, suffix) as paths:
        meta = output_metadata(config, paths, spec,
                               reference_parameters(reference, as_of, include, extra_reference,
                                                    jurisdictions))
        spooled = {p for given, p in zip(inputs, paths) if given == "-"}
        for entry in meta["inputs"]:
            if entry["path"] in spooled:
                entry["path"] = "-"
        limits = reading_limits(max_record_bytes, max_inflation, max_inflated_bytes)
        summary = _run(paths, output, config, spec, fmt, chunk_size, n_jobs, workers, scheduler,
                       work_dir, keep_parts, meta, show_progress, limits, raw_cells)
    click.echo(summary.text(), err=True)
    click.echo(list_line(reg), err=True)
    if summary.rows_in != summary.rows_out:  # pragma: no cover - the run checks this itself
        raise click.ClickException(f"{summary.rows_in} rows read but {summary.rows_out} written")


def _run(inputs: list[str], output: str, config: DeclarationConfig, spec: InputSpec,
         fmt: str | None, chunk_size: int, n_jobs: int, workers: int | None,
         scheduler: str | None, work_dir: str | None, keep_parts: bool, meta: dict[str, Any],
         show_progress: bool | None, limits: Limits, raw_cells: bool) -> Any:
    """One declarations run on this machine's processes or on Dask, with a progress bar whose
    total is the rows of the inputs (counted first when the bar is shown)."""
    n_jobs = jobs(n_jobs)
    with progress(None, "declarations", show_progress, unit="row") as bar:
        count_progress(bar, inputs, lambda: count_rows(inputs, spec, exact=True) or 0)
        common = dict(spec=spec, fmt=fmt, chunk_size=chunk_size, work_dir=work_dir,
                      keep_parts=keep_parts, metadata=meta, progress=bar, notify=notify,
                      limits=limits, raw_cells=raw_cells)
        if workers or scheduler:
            with DaskExecutor(config, scheduler, workers) as executor:
                return run_declarations(inputs, output, config, executor=executor, **common)
        executor = InlineExecutor(config) if n_jobs <= 1 else ProcessExecutor(config, n_jobs)
        return run_declarations(inputs, output, config, executor=executor, **common)


@click.command("rescreen")
@click.argument("previous", type=INPUT_FILE)
@click.option("-o", "--output", default="-", show_default=True,
              help="Where the rows whose verdict changes go (.csv .tsv .parquet; '-': CSV on stdout).")
@click.option("--full", "full_output", type=click.Path(dir_okay=False),
              help="Also write the complete new output (every row, as `declarations` would).")
@reference_options
@progress_option
@raw_cells_option
def rescreen_cmd(previous: str, output: str, full_output: str | None, reference: str | None,
                 as_of: dt.date | None, extra_reference: tuple[str, ...],
                 include: tuple[str, ...], jurisdictions: tuple[str, ...],
                 show_progress: bool | None, raw_cells: bool = False) -> None:
    """Re-screen an earlier declarations output against a changed list.

    Compares the list recorded in PREVIOUS with the new one (the built-in list by default, or
    --reference / --as-of), redoes only the rows related to a substance added or removed, and
    reports the rows whose verdict changes and why. PREVIOUS '-' reads it from standard input
    (Parquet, which carries its metadata; a CSV's metadata is in its .meta.json and cannot come
    along). The progress bar and a summary of what was redone go to stderr.

    \b
    Example:
      precursor-screen declarations decl.csv --as-of 2019-12-31 -o verdicts-2019.csv
      precursor-screen rescreen verdicts-2019.csv -o changes.csv
    """
    try:
        fmt = declarations_format(output) if output != "-" else "csv"
    except InputError as exc:
        raise click.BadParameter(str(exc), param_hint="-o") from None
    if fmt == "jsonl":
        raise click.BadParameter("changes are written as CSV, TSV or Parquet", param_hint="-o")
    reg = load_reference(reference, as_of, include, extra_reference, jurisdictions)
    with stdin_as_file([previous], "auto") as (path,), \
            progress(None, "rescreen", show_progress, unit="row") as bar:
        count_progress(bar, [path], lambda: count_output_rows(path))
        summary = rescreen(path, reg, output, full_output=full_output, changes_format=fmt,
                           extra_parameters=reference_parameters(reference, as_of, include,
                                                                  extra_reference, jurisdictions),
                           progress=bar, notify=notify, raw_cells=raw_cells)
    click.echo(summary.text(), err=True)
    click.echo(list_line(reg), err=True)
