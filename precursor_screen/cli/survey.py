"""``index``, ``search``, ``derivatives``, ``group check`` and ``enumerate``: the library survey.

Options are parsed here and the work is done by ``precursor_screen.survey``; errors map to exit
codes in :class:`precursor_screen.cli.Cli`. Rows go to ``-o FILE`` (format from the extension)
or CSV on stdout; progress and summaries go to stderr.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from dataclasses import replace
from typing import Any

import click

from precursor_screen.cli.common import (INPUT_FILE, check_dask, check_input_formats,
                                         count_progress, dask_options, depth_option, groups_option,
                                         input_options, jobs, legit_options, load_group_files,
                                         load_reference, notify, output_format, progress,
                                         progress_option, raw_cells_option, reference_options,
                                         report_format, report_option, stdin_as_file)
from precursor_screen.errors import InputError, PrecursorScreenError
from precursor_screen.io.readers import Record, read_inputs, read_records
from precursor_screen.io.writers import TableWriter, write_text
from precursor_screen.manifest import survey_metadata
from precursor_screen.parallel import dask_client
from precursor_screen.reference import builtin_registry
from precursor_screen.report.draft import draft_html, draft_text
from precursor_screen.report.survey import derivatives_html, group_html, group_text
from precursor_screen.results import (
    DERIVATIVES,
    ENUMERATE,
    GROUP_FINDINGS,
    SEARCH_SIMILAR,
    SEARCH_SMARTS,
)
from precursor_screen.rules.drug_targets import DrugTargets
from precursor_screen.rules.groups import load_group_file, load_groups
from precursor_screen.rules.masks import load_rules
from precursor_screen.screen import Screener, ScreenParameters
from precursor_screen.survey.derivatives import (
    RELATIONS,
    DerivativeParameters,
    derivative_rows,
    find_derivatives,
    survey_substances,
)
from precursor_screen.survey.draft import BUNDLED, Knowledge, draft_groups
from precursor_screen.survey.groupcheck import check_groups, finding_row, impacts_json
from precursor_screen.survey.library import (
    LibraryIndex,
    build_index,
    read_queries,
    similar_rows,
    smarts_rows,
)
from precursor_screen.survey.masks import (
    DRUGS,
    enumerate_drug_precursors,
    enumerate_masked,
    enumeration_summary,
    enumeration_targets,
    masked_row,
)
from precursor_screen.survey.sets import (
    load_designer_precursors,
    load_legitimate,
    read_compound_file,
)

__all__ = ["index_group", "search_cmd", "derivatives_cmd", "group_cmd", "enumerate_cmd"]


def _open_index(path: str, n_jobs: int = 1) -> LibraryIndex:
    return LibraryIndex(path, threads=max(1, n_jobs))


# ---------------------------------------------------------------------- index


@click.group("index")
def index_group() -> None:
    """Build and inspect a library index (fingerprints, substructure screen, table of ids).

    \b
    Example:
      precursor-screen index build library.smi -o library.idx --jobs 2
      precursor-screen index info library.idx --verify
    """


@index_group.command("build")
@click.argument("library", nargs=-1, required=True, type=INPUT_FILE)
@click.option("-o", "--output", "directory", required=True, type=click.Path(file_okay=False),
              help="The index directory to write (or to extend with --append).")
@click.option("--append", is_flag=True, help="Add the molecules to an existing index.")
@click.option("--shard-size", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Input rows per shard (a shard is built and searched as one task).")
@click.option("--jobs", "-j", "n_jobs", type=click.IntRange(min=0), default=0,
              help="Worker processes (default 0: all cores).")
@dask_options
@input_options
@progress_option
def index_build_cmd(library: tuple[str, ...], directory: str, append: bool, shard_size: int,
                    n_jobs: int, scheduler: str | None, workers: int | None,
                    input_format: str | None, smiles_column: str | None, id_column: str | None,
                    show_progress: bool | None) -> None:
    """Index a compound library (SMILES, SDF, CSV, Parquet) for survey searches.

    Streams the input in shards of --shard-size rows, standardizes every molecule (the parent
    structure the list is matched on) and stores, per shard: a Parquet table of ids, input and
    standardized SMILES, stereo-free keys and status; the Morgan fingerprints (radius 2, 2048
    bits) in faiss's binary layout; the pattern-fingerprint substructure screen. manifest.json
    holds counts, fingerprint recipes, versions and the sha256 of every file. Unreadable rows
    are kept with their reason. Shards are built in parallel (--jobs, or on Dask with
    --scheduler/--workers; Dask workers must see the directory). LIBRARY '-' reads standard
    input (SMILES unless --input-format); a bar counts the rows when shown.

    \b
    Example:
      precursor-screen index build zinc.smi.gz enamine.parquet -o library.idx -j 8
      precursor-screen index build more.sdf -o library.idx --append
    """
    check_dask(scheduler, workers, n_jobs)
    check_input_formats(library, input_format)
    start = time.perf_counter()
    with dask_client(scheduler, workers) as client, \
            progress(None, "indexing", show_progress) as bar:
        count_progress(bar, library, lambda: sum(1 for _ in read_inputs(
            library, fmt=input_format, smiles_column=smiles_column, id_column=id_column)))
        manifest = build_index(read_inputs(library, fmt=input_format, smiles_column=smiles_column,
                                           id_column=id_column, notify=notify),
                               directory, append=append, shard_size=shard_size,
                               jobs=jobs(n_jobs) if client is None else 1, client=client,
                               on_shard=lambda s: bar.update(s.rows), inputs=list(library))
    elapsed = time.perf_counter() - start
    c = manifest["counts"]
    added = sum(i["rows"] for i in manifest["inputs"][-len(library):]) if library else 0
    why = "; ".join(f"{k} {v}" for k, v in manifest["unreadable_by_reason"].items())
    click.echo(f"{added} rows added in {elapsed:.1f} s ({added / max(elapsed, 1e-9):.0f} mol/s); "
               f"index now {c['rows']} rows: {c['indexed']} indexed, {c['unreadable']} unreadable"
               + (f" ({why})" if why else "") + f"; {c['shards']} shards in {directory}", err=True)


@index_group.command("info")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--verify", is_flag=True, help="Recompute every file's sha256 against the manifest.")
def index_info_cmd(directory: str, verify: bool) -> None:
    """Show what an index holds: counts, fingerprint recipe, inputs, versions, hashes.

    \b
    Example:
      precursor-screen index info library.idx --verify
    """
    index = _open_index(directory)
    m = index.manifest
    c = m["counts"]
    lines = [f"index:        {directory}",
             f"rows:         {c['rows']} ({c['indexed']} indexed, {c['unreadable']} unreadable)",
             f"shards:       {c['shards']} of up to {m['shard_size']} rows",
             f"fingerprint:  {m['recipes']['similarity']['name']} "
             f"{m['recipes']['similarity']['params']}",
             f"built with:   precursor-screen {m['tool_version']}, RDKit {m['rdkit_version']}",
             f"manifest:     sha256 {index.manifest_sha256}",
             f"content:      sha256 {m['content_sha256']}"]
    for r, n in m["unreadable_by_reason"].items():
        lines.append(f"unreadable:   {n} {r}")
    for i in m["inputs"]:
        lines.append(f"input:        {i['path']} ({i['rows']} rows from row {i['first_row']}, "
                     f"sha256 {i['sha256'][:16] or '-'}, added {i['added']})")
    click.echo("\n".join(lines))
    if verify:
        problems = index.verify()
        if problems:
            raise PrecursorScreenError(f"{len(problems)} file(s) differ from the manifest: "
                                       + "; ".join(problems[:5]))
        click.echo("verified:     every file matches its sha256", err=True)


# ---------------------------------------------------------------------- search


_QUERY_BATCH = 1024


@click.command("search")
@click.option("--index", "index_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="The library index (from `index build`).")
@click.option("--smarts", help="Rows matching this SMARTS pattern (stereo ignored).")
@click.option("--similar", help="Query: a SMILES, a listed substance's name, id or CAS, or a file "
                                "of query molecules (answered as one batch).")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0),
              help="With --similar: every row with Tanimoto >= T (default 0.7 without --top).")
@click.option("--top", type=click.IntRange(min=1), help="With --similar: the K most similar rows.")
@click.option("-o", "--output", default="-", show_default=True,
              help="Output file: .csv, .parquet or .jsonl (default: CSV on stdout).")
@input_options
@click.option("--jobs", "-j", "n_jobs", type=click.IntRange(min=0), default=0,
              help="Shards searched at a time, on threads (default 0: all cores).")
@dask_options
@progress_option
@raw_cells_option
def search_cmd(index_dir: str, smarts: str | None, similar: str | None, threshold: float | None,
               top: int | None, output: str, input_format: str | None, smiles_column: str | None,
               id_column: str | None, n_jobs: int, scheduler: str | None, workers: int | None,
               show_progress: bool | None, raw_cells: bool = False) -> None:
    """Search a library index by SMARTS, or by similarity (exact Tanimoto, threshold or top-k).

    Similarity uses the index's fingerprint (Morgan radius 2, 2048 bits) of the standardized
    query; scores equal RDKit's BulkTanimotoSimilarity. SMARTS searches screen with pattern
    fingerprints, then match with RDKit. Rows: id and SMILES from the library (SMILES: the
    standardized parent), row number, and for similarity the query and the score.

    \b
    Example:
      precursor-screen search --index library.idx --smarts '[CH3]C(=O)[CH2]c1ccccc1'
      precursor-screen search --index library.idx --similar BMK --threshold 0.4 -o hits.parquet
      precursor-screen search --index library.idx --similar queries.smi --top 10
    """
    if (smarts is None) == (similar is None):
        raise click.UsageError("give one of --smarts PATTERN or --similar QUERY")
    if smarts is not None and (threshold is not None or top is not None):
        raise click.UsageError("--threshold and --top go with --similar, not --smarts")
    if threshold is not None and top is not None:
        raise click.UsageError("give --threshold or --top, not both")
    fmt = output_format(output, allowed=("csv", "parquet", "jsonl"))
    check_dask(scheduler, workers, n_jobs, "local threads")
    index = _open_index(index_dir, jobs(n_jobs))
    with dask_client(scheduler, workers) as client:
        if smarts is not None:
            meta = survey_metadata("search", {"smarts": smarts}, index=index)
            start = time.perf_counter()
            rows = smarts_rows(index, smarts, client=client)
            with TableWriter(output, fmt, SEARCH_SMARTS, meta, raw_cells=raw_cells) as w:
                for row in rows:
                    w.write(row)
            click.echo(f"{len(rows)} rows match {smarts} ({time.perf_counter() - start:.2f} s; "
                       f"index {index.manifest_sha256[:16]})", err=True)
            return
        assert similar is not None
        if top is None and threshold is None:
            threshold = 0.7
        try:
            queries, inputs = read_queries(similar, builtin_registry(), fmt=input_format,
                                           smiles_column=smiles_column, id_column=id_column,
                                           notify=notify)
        except InputError as exc:
            raise click.BadParameter(str(exc), param_hint="--similar") from None
        params = {"similar": similar, "threshold": threshold, "top": top,
                  "fingerprint": index.recipe.name}
        meta = survey_metadata("search", params, index=index, inputs=inputs)
        hits_total = 0
        start = time.perf_counter()
        with TableWriter(output, fmt, SEARCH_SIMILAR, meta, inputs=inputs,
                         raw_cells=raw_cells) as w, \
                progress(len(queries), "queries", show_progress) as bar:
            for row in similar_rows(index, queries, threshold=threshold, top=top, client=client,
                                    batch=_QUERY_BATCH, on_batch=bar.update):
                w.write(row)
                hits_total += row["rank"] is not None
    elapsed = time.perf_counter() - start
    bad = sum(1 for q in queries if q[3] is None)
    click.echo(f"{len(queries)} queries ({bad} unreadable): {hits_total} hits in {elapsed:.2f} s; "
               f"index {index.manifest_sha256[:16]}", err=True)


# ---------------------------------------------------------------------- derivatives


@click.command("derivatives")
@click.argument("substances", nargs=-1)
@click.option("--all", "all_", is_flag=True,
              help="Every organic structure on the list (bulk Category 2A/2B/3 chemicals only "
                   "with --include-bulk).")
@click.option("--index", "index_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="The library index (from `index build`).")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0),
              help="Similarity: Tanimoto at or above T (default 0.4 without --top).")
@click.option("--top", type=click.IntRange(min=1), help="Similarity: the K most similar instead.")
@click.option("--relation", "relations", multiple=True,
              type=click.Choice(["identical", "converts", "group", "contains", "similar",
                                 "contained_in"]),
              help="Only these relations (repeatable; default all).")
@depth_option
@groups_option
@click.option("--include-bulk", is_flag=True, help="With --all: bulk chemicals too.")
@reference_options
@click.option("-o", "--output", default="-", show_default=True,
              help="Output file: .csv, .parquet, .jsonl or .html (default: CSV on stdout).")
@click.option("--jobs", "-j", "n_jobs", type=click.IntRange(min=0), default=0,
              help="Processes for the conversion rules (default 0: all cores).")
@dask_options
@raw_cells_option
def derivatives_cmd(substances: tuple[str, ...], all_: bool, index_dir: str,
                    threshold: float | None, top: int | None, relations: tuple[str, ...],
                    depth: int, group_files: tuple[str, ...], include_bulk: bool,
                    reference: str | None, as_of: dt.date | None,
                    extra_reference: tuple[str, ...], include: tuple[str, ...],
                    jurisdictions: tuple[str, ...], output: str,
                    n_jobs: int, scheduler: str | None, workers: int | None,
                    raw_cells: bool = False) -> None:
    """Find library compounds related to listed substances, ranked, each with its reason.

    SUBSTANCE is an id, name, synonym or CAS number on the list. A compound is related when it
    is the substance (a salt or stereoisomer), converts into it by the conversion rules, is a
    member of one of its groups, contains it, is similar to it (exact Tanimoto, Morgan radius 2),
    or is contained in it. Ranked by strongest relation, then similarity.

    \b
    Example:
      precursor-screen derivatives BMK PMK --index library.idx -o bmk-pmk.html
      precursor-screen derivatives --all --index library.idx --top 50 -o all.parquet
    """
    if bool(substances) == all_:
        raise click.UsageError("name the substances (SUBSTANCE...) or give --all, not both")
    if threshold is not None and top is not None:
        raise click.UsageError("give --threshold or --top, not both")
    fmt = output_format(output, allowed=("csv", "parquet", "jsonl", "html"))
    reg = load_reference(reference, as_of, include, extra_reference, jurisdictions,
                         screened=False)
    targets = survey_substances(reg, substances, all_=all_, include_bulk=include_bulk)
    params = DerivativeParameters(threshold=None if top else (0.4 if threshold is None
                                                              else threshold),
                                  top_k=top, relations=tuple(relations) or RELATIONS, depth=depth)
    index = _open_index(index_dir)
    groups = load_group_files(group_files)
    meta = survey_metadata("derivatives", {**params.as_dict(),
                                           "substances": [s.id for s in targets],
                                           "group_files": list(group_files)},
                           index=index, reference=reg, inputs=list(group_files))
    start = time.perf_counter()
    with dask_client(scheduler, workers) as client:
        found = find_derivatives(index, targets, rules=load_rules(), groups=groups,
                                 parameters=params, jobs=jobs(n_jobs), client=client)
    rows = derivative_rows(found)
    if fmt == "html":
        write_text(output, derivatives_html(rows, meta))
    else:
        with TableWriter(output, fmt, DERIVATIVES, meta, raw_cells=raw_cells) as w:
            for r in rows:
                w.write(r)
    per = {}
    for d in found:
        per[d.substance_id] = per.get(d.substance_id, 0) + 1
    click.echo(f"{len(found)} derivatives of {len(targets)} substances in "
               f"{time.perf_counter() - start:.1f} s: "
               + (", ".join(f"{k} {v}" for k, v in per.items()) or "none")
               + f"; index {index.manifest_sha256[:16]}, list {reg.content_hash[:16]}", err=True)


# ---------------------------------------------------------------------- group check


@click.group("group")
def group_cmd() -> None:
    """Weigh draft generic group definitions (the group file format of rules/data/groups.toml).

    \b
    Example:
      precursor-screen group draft seized.smi -o my-draft.toml --report draft.html
      precursor-screen group check my-draft.toml --index library.idx --report impact.html
    """


@group_cmd.command("check")
@click.argument("group_file", type=INPUT_FILE)
@click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False),
              help="A library index: count and show the library compounds each group captures.")
@legit_options
@click.option("--examples", type=click.IntRange(min=0), default=20, show_default=True,
              help="Captured library compounds to list per group.")
@click.option("--depth", type=click.IntRange(0, 4), default=2, show_default=True,
              help="Conversion steps that make a compound related to a group's parents.")
@click.option("--skip-example-check", is_flag=True,
              help="Load the draft even if its must_match/must_not_match examples fail.")
@reference_options
@click.option("-o", "--output", default="-", show_default=True,
              help="Data: .csv, .parquet, .jsonl (one row per finding) or .json (the whole "
                   "report); default CSV on stdout.")
@report_option(readable=True)
@dask_options
@raw_cells_option
def group_check_cmd(group_file: str, index_dir: str | None, legit_files: tuple[str, ...],
                    no_default_legit: bool, examples: int, depth: int, skip_example_check: bool,
                    reference: str | None, as_of: dt.date | None,
                    extra_reference: tuple[str, ...], include: tuple[str, ...],
                    jurisdictions: tuple[str, ...], output: str,
                    report: str | None, scheduler: str | None, workers: int | None,
                    raw_cells: bool = False) -> None:
    """Report what a draft group would cover, miss and catch besides.

    For each group of GROUP_FILE: the listed substances and known designer precursors it covers,
    and those related to its parents (a parent, or convertible into one) that it misses; how
    many library compounds it captures, with examples (--index); the legitimate chemicals it
    would catch (the bundled set of traded chemicals and approved drugs, and --legit files).
    GROUP_FILE '-' reads the TOML from standard input. One summary line per group goes to
    stderr.

    \b
    Example:
      precursor-screen group check draft.toml --index library.idx --report impact.html
      precursor-screen group check draft.toml --legit catalogue.csv -o impact.json
    """
    fmt = output_format(output, allowed=("csv", "parquet", "jsonl", "json"))
    report_fmt = report_format(report)
    reg = load_reference(reference, as_of, include, extra_reference, jurisdictions)
    with stdin_as_file([group_file], ".toml") as (path,):
        draft = load_group_file(path, check_examples=not skip_example_check)
    legit: dict[str, Any] = {}
    if not no_default_legit:
        legit["legitimate"] = load_legitimate()
    for path in legit_files:
        legit[os.path.basename(path)] = read_compound_file(path, notify=notify)
    index = _open_index(index_dir) if index_dir else None
    meta = survey_metadata("group check", {"group_file": group_file, "depth": depth,
                                           "examples": examples,
                                           "legit": list(legit), "groups": list(draft.ids)},
                           index=index, reference=reg, inputs=[group_file, *legit_files])
    with dask_client(scheduler, workers) as client:
        impacts = check_groups(draft, reference=reg, rules=load_rules(),
                               designer=load_designer_precursors(), legitimate=legit,
                               library=index, examples=examples, depth=depth, client=client)
    if fmt == "json":
        write_text(output, json.dumps({"metadata": meta, "groups": impacts_json(impacts)},
                                      indent=1, ensure_ascii=False) + "\n")
    else:
        with TableWriter(output, fmt, GROUP_FINDINGS, meta,
                         inputs=[group_file, *legit_files], raw_cells=raw_cells) as w:
            for imp in impacts:
                for f in imp.findings:
                    w.write(finding_row(f))
    if report is not None:
        write_text(report, group_html(impacts, meta) if report_fmt == "html"
                   else group_text(impacts, meta, examples=examples))
    for imp in impacts:
        click.echo(imp.summary(), err=True)


@group_cmd.command("draft")
@click.argument("examples", nargs=-1, required=True)
@click.option("--parent", help="The listed substance or controlled drug the family relates to "
                               "(id, name, synonym or CAS); found from the examples when left out.")
@legit_options
@click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False),
              help="A library index: count and show the library compounds each candidate "
                   "captures.")
@click.option("--examples", "library_examples", type=click.IntRange(min=0), default=20,
              show_default=True, help="Captured library compounds to list per candidate.")
@click.option("--depth", type=click.IntRange(1, 2), default=1, show_default=True,
              help="Masks (steps back) of the parent enumerated as predicted members.")
@click.option("--id-prefix", default="draft", show_default=True,
              help="Prefix of the candidate group ids (a lowercase slug).")
@input_options
@reference_options
@click.option("-o", "--output", default="-", show_default=True,
              help="The group file to write (TOML; default: stdout).")
@report_option(readable=True)
@dask_options
def group_draft_cmd(examples: tuple[str, ...], parent: str | None,
                    legit_files: tuple[str, ...], no_default_legit: bool,
                    index_dir: str | None, library_examples: int, depth: int, id_prefix: str,
                    input_format: str | None, smiles_column: str | None, id_column: str | None,
                    reference: str | None, as_of: dt.date | None,
                    extra_reference: tuple[str, ...], include: tuple[str, ...],
                    jurisdictions: tuple[str, ...], output: str, report: str | None,
                    scheduler: str | None, workers: int | None) -> None:
    """Draft generic group definitions from a few example structures, each measured.

    EXAMPLES are files of structures (SMILES, SDF, CSV, Parquet; '-' for stdin) or SMILES
    given on the command line. The common scaffold is found (maximum common substructure,
    trimmed to whole groups) and related to the listed parent (--parent, or the listed
    substance or controlled drug the examples are, convert into or contain); each variable
    position is generalized to a class legal annexes use (halogen, C1-C4 alkyl, alkoxy, esters
    of C1-C4 alcohols, carbamates, amides, ring positions). Candidates, tight to broad, are
    written ranked best first (no collateral first, then most of the parent's predicted masked
    forms covered) as a group file that `group check`, `screen --groups` and `enumerate
    --groups` load; every candidate's must_match are the examples and its must_not_match the
    nearest legitimate chemicals it leaves out. Each comes with a draft legal text, for
    expert review: not legal advice. Examples of several families are clustered, with
    proposals per family. A summary goes to stderr.

    \b
    Example:
      precursor-screen group draft seized.smi -o draft.toml --report draft.html
      precursor-screen group draft 'CCOC(=O)C1(C)OC1c1ccccc1' 'CC1(C(=O)O)OC1c1ccccc1' \\
          --parent bmk --index library.idx -o draft.toml
    """
    if not _SLUG.match(id_prefix):
        raise click.BadParameter("must be a lowercase slug (letters, digits, hyphens)",
                                 param_hint="--id-prefix")
    report_fmt = report_format(report)
    reg = load_reference(reference, as_of, tuple(dict.fromkeys(("proposed", *include)))
                         if reference is None else include, extra_reference, jurisdictions)
    records, files = _example_records(examples, input_format, smiles_column, id_column)
    legit: dict[str, Any] = {}
    if not no_default_legit:
        legit[BUNDLED] = load_legitimate()
    for path in legit_files:
        legit[os.path.basename(path)] = read_compound_file(path, notify=notify)
    index = _open_index(index_dir) if index_dir else None
    params = {"examples": list(examples), "parent": parent or "", "depth": depth,
              "legit": list(legit), "id_prefix": id_prefix,
              "library_examples": library_examples}
    meta = survey_metadata("group draft", params, index=index, reference=reg,
                           inputs=[*files, *legit_files])
    rules = load_rules()
    knowledge = Knowledge(reg, rules, DrugTargets(as_of=as_of, unmask=rules,
                                                  jurisdictions=jurisdictions),
                          load_groups().applicable(as_of, jurisdictions))
    with dask_client(scheduler, workers) as client:
        result = draft_groups(records, parent=parent, legitimate=legit, library=index,
                              knowledge=knowledge, predict_depth=depth,
                              library_examples=library_examples, client=client,
                              id_prefix=id_prefix)
    header = [f"written by precursor-screen {meta['tool_version']} group draft; list "
              f"{reg.source} sha256 {reg.content_hash[:16]}"
              + (f"; library index {index.manifest_sha256[:16]}" if index is not None else "")]
    write_text(output, result.toml(header=header))
    if report is not None:
        write_text(report, draft_html(result, meta) if report_fmt == "html"
                   else draft_text(result))
    for line in result.summary():
        click.echo(line, err=True)


def _example_records(examples: tuple[str, ...], fmt: str | None, smiles_column: str | None,
                     id_column: str | None) -> tuple[list[Record], list[str]]:
    """The example rows: a file (or '-') is read in any input format, anything else is taken
    as a SMILES (rows numbered on across arguments)."""
    records: list[Record] = []
    files: list[str] = []
    for arg in examples:
        start = len(records)
        if arg == "-" or os.path.isfile(arg):
            if arg != "-":
                files.append(arg)
            records += [replace(r, row=start + i) for i, r in enumerate(read_records(
                arg, fmt=fmt, smiles_column=smiles_column, id_column=id_column, notify=notify))]
        elif os.sep in arg or os.path.splitext(arg)[1].lower() in _FILE_EXTENSIONS:
            raise click.BadParameter(f"File '{arg}' does not exist (and is no SMILES).",
                                     param_hint="EXAMPLES")
        else:
            records.append(Record(start, f"arg{start + 1}", arg))
    return records, files


_FILE_EXTENSIONS = (".smi", ".smiles", ".sdf", ".csv", ".tsv", ".parquet", ".gz", ".txt")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")


# ---------------------------------------------------------------------- enumerate


@click.command("enumerate")
@click.argument("substances", nargs=-1, required=True)
@click.option("--depth", type=click.IntRange(1, 3), default=1, show_default=True,
              help="Steps back: masks (a reverse rule plus the acid's usual forms) and, for a "
                   "controlled drug, forward synthesis rules run backwards.")
@click.option("--registry", type=click.Choice(["auto", "precursors", "drugs"]), default="auto",
              show_default=True,
              help="Where the names are looked up: the precursor list, the controlled drugs, or "
                   "both (a name on both is taken as the precursor, with a note).")
@groups_option
@reference_options
@click.option("-o", "--output", default="-", show_default=True,
              help="Output file: .csv, .parquet or .jsonl (default: CSV on stdout).")
@raw_cells_option
def enumerate_cmd(substances: tuple[str, ...], depth: int, registry: str,
                  group_files: tuple[str, ...], reference: str | None, as_of: dt.date | None,
                  extra_reference: tuple[str, ...], include: tuple[str, ...],
                  jurisdictions: tuple[str, ...], output: str, raw_cells: bool = False) -> None:
    """List the masked forms of a listed substance, or the pre-precursors of a controlled drug,
    and whether the list or a group covers each.

    For a listed substance the conversion rules run backwards (esters, glycidates, nitriles,
    amides, ketals, bisulfite adducts, protected forms, nitroalkenes, the ethyl homologue of
    methyl esters). For a controlled drug (`list --drugs`) the forward synthesis rules run
    backwards too, less their reagent (mephedrone from its alpha-bromo ketone and methylamine,
    methamphetamine from BMK and methylamine, GHB from GBL), then the masks of what they give,
    to --depth steps. Every form is standardized, deduplicated and proven by running the rules
    forwards back to the target (for a drug: the screen's drug stage must reach it with a
    flagging score); the route names the rules and reagent classes. registry: which list the
    target is on. covered: "listed", "controlled drug", "adopted group", "draft group" or "no".
    screen_flag: what `screen` says of the form today.

    \b
    Example:
      precursor-screen enumerate BMK --depth 1
      precursor-screen enumerate mephedrone --depth 2
      precursor-screen enumerate PMK MDMA --depth 2 --groups draft.toml -o pmk-masks.parquet
    """
    fmt = output_format(output, allowed=("csv", "parquet", "jsonl"))
    reg = load_reference(reference, as_of, include, extra_reference, jurisdictions)
    rules = load_rules()
    drugs = DrugTargets(as_of=as_of, unmask=rules, jurisdictions=jurisdictions)
    targets = enumeration_targets(reg, drugs.registry, substances, registry,
                                  notify=lambda msg: click.echo(msg, err=True))
    groups = load_group_files(group_files)
    known = load_designer_precursors()
    screener = Screener(reg, as_of=as_of, rules=rules, drugs=drugs,
                        parameters=ScreenParameters(jurisdictions=jurisdictions))
    meta = survey_metadata("enumerate", {"substances": [f"{where}:{t.id}" for where, t in targets],
                                         "depth": depth, "registry": registry,
                                         "group_files": list(group_files)},
                           reference=reg, inputs=list(group_files))
    meta["drug_targets"] = drugs.metadata()
    with TableWriter(output, fmt, ENUMERATE, meta, raw_cells=raw_cells) as w:
        for where, t in targets:
            if where == DRUGS:
                forms, stats = enumerate_drug_precursors(t, targets=drugs, unmask=rules,
                                                         groups=groups, reference=reg,
                                                         depth=depth, known=known)
            else:
                forms, stats = enumerate_masked(t, rules=rules, groups=groups, reference=reg,
                                                depth=depth, known=known)
            for f in forms:
                flag = screener.check(f.smiles).flag
                w.write(masked_row(f, screen_flag=flag.value if flag is not None else ""))
            click.echo(enumeration_summary(t, where, forms, stats, depth), err=True)
