"""Options and helpers every command module shares: the reference list, inputs, Dask, progress."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click
from tqdm import tqdm

from precursor_screen.chem.parse import MAX_ATOMS
from precursor_screen.errors import InputError, RegistryIntegrityWarning
from precursor_screen.io.formats import input_format as _input_format
from precursor_screen.io.formats import output_format as _output_format
from precursor_screen.io.text import DEFAULT_LIMITS, Limits
from precursor_screen.reference import integrity_problems
from precursor_screen.reference import load_reference as _load_reference
from precursor_screen.rules.drug_targets import family_jurisdictions, list_jurisdictions
from precursor_screen.rules.groups import GroupSet, load_group_file, load_groups
from precursor_screen.screen import prepare_parent
from scheduled_substances import DEFAULT_JURISDICTIONS, Registry
from scheduled_substances.listings import load_vocabulary
from scheduled_substances.registry import data_folder

__all__ = ["date_option", "reference_options", "load_reference", "reference_parameters",
           "jurisdiction_option", "warn_if_edited", "list_line",
           "input_options", "legit_options", "progress_option", "dask_options", "check_dask",
           "progress", "jobs",
           "load_group_files", "groups_option", "no_groups_option", "depth_option", "opsin_option",
           "report_option", "report_format", "notify", "output_format",
           "check_input_formats",
           "stdin_as_file", "count_progress", "INPUT_FORMATS", "EXISTING_FILE", "INPUT_FILE",
           "INPUT_FILE_OR_DIR", "limit_options", "reading_limits", "raw_cells_option",
           "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 60.0
"""Seconds one molecule may take in ``screen`` (``--timeout``): screening takes milliseconds;
only a pathological record comes near this."""

INPUT_FORMATS = click.Choice(["smi", "sdf", "csv", "tsv", "parquet"])
EXISTING_FILE = click.Path(exists=True, dir_okay=False)
INPUT_FILE = click.Path(exists=True, dir_okay=False, allow_dash=True)
"""An input file, or '-' for standard input; a missing one is a usage error (exit 2)."""
INPUT_FILE_OR_DIR = click.Path(exists=True, allow_dash=True)
"""An input file or folder, or '-'; a missing one is a usage error (exit 2)."""


def output_format(output: str, given: str | None = None, *,
                  allowed: Sequence[str] = ("csv", "tsv", "parquet", "sdf", "jsonl"),
                  option: str = "-o") -> str:
    """The format to write ``output`` in; an extension no format is known for (or Parquet to
    stdout) is a usage error of ``option`` (exit 2)."""
    try:
        return _output_format(output, given, allowed=allowed)
    except InputError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def check_input_formats(paths: Sequence[str], given: str | None, **kwargs: Any) -> None:
    """A usage error (exit 2) for an input whose format neither ``--input-format`` nor its
    extension tells, before any work starts."""
    for path in paths:
        try:
            _input_format(path, given, **kwargs)
        except InputError as exc:
            raise click.BadParameter(str(exc), param_hint="INPUT") from None


@contextlib.contextmanager
def stdin_as_file(paths: Sequence[str], suffix: str) -> Iterator[list[str]]:
    """``paths`` with '-' replaced by a temporary file holding standard input (named
    ``stdin<suffix>``), for commands that read an input twice or hash it; removed afterwards.
    ``suffix`` "auto" is ``.parquet`` for Parquet data (its magic bytes), else ``.csv``."""
    if "-" not in paths:
        yield list(paths)
        return
    folder = tempfile.mkdtemp(prefix="precursor-screen-stdin-")
    try:
        spooled = os.path.join(folder, "stdin")
        with open(spooled, "wb") as fh:
            shutil.copyfileobj(sys.stdin.buffer, fh)
        if suffix == "auto":
            with open(spooled, "rb") as fh:
                suffix = ".parquet" if fh.read(4) == b"PAR1" else ".csv"
        os.replace(spooled, spooled + suffix)
        yield [spooled + suffix if p == "-" else p for p in paths]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def date_option(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    """Click callback: a YYYY-MM-DD option as a date."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _jurisdictions(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    """Click callback: ``eu,un,us`` (or ``all``) as a tuple of jurisdictions the lists know."""
    known = load_vocabulary(data_folder()).jurisdictions + family_jurisdictions()
    wanted = tuple(dict.fromkeys(j.strip().lower() for j in value.split(",") if j.strip()))
    if wanted == ("all",):
        return known
    bad = [j for j in wanted if j not in known]
    if bad or not wanted:
        raise click.BadParameter(f"{value!r}: jurisdictions are {', '.join(known)} (comma-"
                                 "separated), or all")
    return wanted


def jurisdiction_option(f: Any) -> Any:
    """``--jurisdiction eu,un,us``: whose lists the built-in registry is screened or listed in."""
    return click.option("--jurisdiction", "jurisdictions", default=",".join(DEFAULT_JURISDICTIONS),
                        show_default=True, callback=_jurisdictions, metavar="LIST",
                        help="Whose lists to use, comma-separated: eu, un, us, or all (the "
                             "built-in list only; each hit names the jurisdictions listing it); "
                             "uk adds the UK's generic drug families, which keep no list here.")(f)


def reference_options(f: Any) -> Any:
    """The options choosing the reference list, shared by every screening command."""
    f = jurisdiction_option(f)
    f = click.option("--include", "include", multiple=True,
                     type=click.Choice(["proposed", "watch"]),
                     help="Also screen against substances proposed for control or on watch lists.")(f)
    f = click.option("--extra-reference", "extra_reference", multiple=True, type=EXISTING_FILE,
                     help="A local list added on top of the built-in one (repeatable).")(f)
    f = click.option("--as-of", "as_of", callback=date_option,
                     help="Knowledge as it stood on this date (YYYY-MM-DD): the built-in list, "
                          "the generic groups, the controlled drugs and drug families. With "
                          "--reference, which replaces only the listed substances, the rest.")(f)
    f = click.option("--reference", "reference", type=EXISTING_FILE,
                     help="Screen against this list (CSV with name,smiles; SDF; .smi) instead "
                          "of the built-in one.")(f)
    return f


def load_reference(reference: str | None, as_of: dt.date | None, include: tuple[str, ...] = (),
                   extra_reference: tuple[str, ...] = (),
                   jurisdictions: tuple[str, ...] = DEFAULT_JURISDICTIONS, *,
                   screened: bool = True) -> Registry:
    """The Registry a command screens against, from the shared reference options (and a warning
    on stderr when the built-in list was edited after release). A ``reference`` file is taken as
    it is: ``as_of`` dates the built-in list (and, in the screen, the groups and drugs). A long
    list that will be ``screened`` is prepared for the screen where it is read
    (`screen.prepare_parent`)."""
    warn_if_edited()
    return _load_reference(reference, as_of=as_of, include=include,
                           extra_references=extra_reference,
                           jurisdictions=list_jurisdictions(jurisdictions),
                           prepare=prepare_parent if screened else None)


def warn_if_edited() -> None:
    """Print on stderr how the built-in lists differ from the ones shipped (nothing when not)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RegistryIntegrityWarning)
        problems = integrity_problems()
    for problem in problems:
        click.echo(f"Warning: {problem}", err=True)


def list_line(reg: Registry) -> str:
    """One line naming the list screened against, as every command prints it on stderr: source,
    jurisdictions and day, size, content hash, and each overlay's hash."""
    view = ""
    if reg.jurisdictions and reg.source.startswith("built-in"):
        view = " (" + ", ".join(j.upper() for j in reg.jurisdictions) + (
            f"; as of {reg.as_of}" if reg.as_of else "") + ")"
    overlays = "".join(f"; overlay {n}: {k} substances, sha256 {h}" for n, h, k in reg.overlays)
    own = len(reg) - sum(k for _, _, k in reg.overlays)
    return (f"list: {reg.source.split('+')[0]}{view}, {own} substances, sha256 {reg.content_hash}"
            f"{overlays}")


def reference_parameters(reference: str | None = None, as_of: dt.date | None = None,
                         include: tuple[str, ...] = (), extra_reference: tuple[str, ...] = (),
                         jurisdictions: tuple[str, ...] = DEFAULT_JURISDICTIONS
                         ) -> dict[str, Any]:
    """The reference options as recorded in an output's parameters (library runs that pass the
    same dict write the same metadata as the command)."""
    return {"reference": reference or "", "as_of": str(as_of or ""), "include": list(include),
            "extra_reference": list(extra_reference), "jurisdictions": list(jurisdictions)}


def input_options(f: Any) -> Any:
    """``--input-format``, ``--smiles-column`` and ``--id-column`` of commands reading molecules."""
    f = click.option("--id-column", help="Name of the id column of CSV/TSV/Parquet input.")(f)
    f = click.option("--smiles-column", help="Name of the SMILES column of CSV/TSV/Parquet "
                                             "input.")(f)
    f = click.option("--input-format", type=INPUT_FORMATS,
                     help="Input format, overriding the extension (needed for '-' unless "
                          "SMILES).")(f)
    return f


def legit_options(f: Any) -> Any:
    """``--legit FILE`` (repeatable) and ``--no-default-legit``: the legitimate chemicals a draft
    group is checked against for collateral."""
    f = click.option("--no-default-legit", is_flag=True,
                     help="Leave out the bundled set of traded chemicals and approved drugs.")(f)
    f = click.option("--legit", "legit_files", multiple=True, type=EXISTING_FILE,
                     help="A file of legitimate chemicals (any input format) checked for "
                          "collateral (repeatable); the bundled set is always checked too.")(f)
    return f


def progress_option(f: Any) -> Any:
    """``--progress/--no-progress``."""
    return click.option("--progress/--no-progress", "show_progress", default=None,
                        help="Progress bar on stderr (default: when stderr is a terminal).")(f)


def dask_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--scheduler`` and ``--workers``: run the command's tasks on Dask."""
    f = click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Start a Dask LocalCluster with this many worker processes (one task "
                          "per shard).")(f)
    f = click.option("--scheduler", metavar="ADDRESS", default=None,
                     help="Use a running Dask cluster, e.g. tcp://10.0.0.5:8786 (one task per "
                          "shard; its workers must see the index directory).")(f)
    return f


def check_dask(scheduler: str | None, workers: int | None, jobs: int = 0,
               what: str = "local processes") -> None:
    """Usage errors of the Dask options: both given, or with ``--jobs``."""
    if scheduler and workers:
        raise click.UsageError("--workers and --scheduler exclude each other")
    if (scheduler or workers) and jobs:
        raise click.UsageError(f"--jobs is for {what}; with Dask use --workers or --scheduler")


def progress(total: int | None, desc: str, enabled: bool | None, unit: str = "mol") -> Any:
    """A tqdm progress bar on stderr (never stdout), shown on a terminal or when asked."""
    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not show,
                mininterval=0.5, smoothing=0.1)


def count_progress(bar: Any, paths: Sequence[str], count: Callable[[], int]) -> None:
    """Give a shown bar its total: ``count()`` rows, when every input is a file (standard input
    cannot be read twice). Counting is a pass over the text, no chemistry."""
    if not bar.disable and "-" not in paths:
        bar.total = count()
        bar.refresh()


def notify(message: str) -> None:
    """A note for the user from the library (how an input was read): one line on stderr."""
    click.echo(message, err=True)


def jobs(n: int) -> int:
    """``--jobs``: 0 means every core."""
    return n or (os.cpu_count() or 1)


def groups_option(f: Any) -> Any:
    """``--groups FILE`` (repeatable): draft group files whose groups count beside the shipped."""
    return click.option("--groups", "group_files", multiple=True, type=EXISTING_FILE,
                        help="A draft group file whose groups count too (repeatable).")(f)


def load_group_files(group_files: tuple[str, ...], *, check_examples: bool = True,
                     shipped: bool = True) -> GroupSet:
    """The shipped groups (unless ``shipped`` is False: ``--no-groups``) with the groups of
    ``--groups`` files added."""
    groups = load_groups() if shipped else GroupSet()
    drafts = [load_group_file(f, check_examples=check_examples) for f in group_files]
    return groups.merged(*drafts) if drafts else groups


def limit_options(f: Any) -> Any:
    """What one input may cost: bytes per line or record, gzip inflation (ratio and absolute),
    atoms per molecule. Each refusal is a row's status (``too large: ...``), or for an inflation
    limit an error naming the file."""
    f = click.option("--max-atoms", type=click.IntRange(min=1), default=MAX_ATOMS,
                     show_default=True,
                     help="Refuse records with more atoms (hydrogens included) before parsing "
                          "them: status 'too large'.")(f)
    f = click.option("--max-inflated-bytes", type=click.IntRange(min=1),
                     default=DEFAULT_LIMITS.max_inflated_bytes, show_default=True,
                     help="Stop reading a gzipped input that unpacks to more bytes than this.")(f)
    f = click.option("--max-inflation", type=click.FloatRange(min=1.0),
                     default=DEFAULT_LIMITS.max_inflation, show_default=True,
                     help="Stop reading a gzipped input that unpacks to more than this many "
                          "times its packed size (a gzip bomb).")(f)
    f = click.option("--max-record-bytes", type=click.IntRange(min=64),
                     default=DEFAULT_LIMITS.max_record_bytes, show_default=True,
                     help="Refuse lines (and SDF records) longer than this, without reading "
                          "them into memory: status 'too large'.")(f)
    return f


def reading_limits(max_record_bytes: int, max_inflation: float,
                   max_inflated_bytes: int) -> Limits:
    """The reading limits of :func:`limit_options`."""
    return Limits(max_record_bytes=max_record_bytes, max_inflation=max_inflation,
                  max_inflated_bytes=max_inflated_bytes)


def raw_cells_option(f: Any) -> Any:
    """``--raw-cells``: CSV/TSV cells as they are, without spreadsheet formula neutralisation."""
    return click.option("--raw-cells", is_flag=True,
                        help="Write CSV/TSV cells as they are. By default a text cell starting "
                             "with = + - @ tab or CR gets a leading ' so that a spreadsheet "
                             "shows it instead of running it as a formula.")(f)


def report_option(readable: bool = False) -> Callable[[Any], Any]:
    """``--report FILE``: also write a report for a person; ``readable``: the survey reports
    (.html or .txt, see `report_format`), else the screen's self-contained HTML."""
    text = ("Also write the readable report: .html or .txt." if readable
            else "Also write a self-contained HTML report here.")
    return click.option("--report", "report", type=click.Path(dir_okay=False), help=text)


def report_format(report: str | None) -> str:
    """The format of a survey's ``--report`` file ('' for none): html or txt, else a usage
    error naming the option."""
    return (output_format(report, allowed=("html", "txt"), option="--report")
            if report is not None else "")


def depth_option(f: Any) -> Any:
    """``--depth``: conversion steps to follow (mask removals are free: `rules.masks`)."""
    return click.option("--depth", type=click.IntRange(0, 4), default=2, show_default=True,
                        help="Conversion steps to follow (mask removals do not count, up to 3 "
                             "a route).")(f)


def opsin_option(f: Any) -> Any:
    """``--opsin/--no-opsin`` for a command that reads one name at a time (check, the bench)."""
    return click.option("--opsin/--no-opsin", default=True, show_default=True,
                        help="Parse systematic names no table knows with OPSIN (needs the "
                             "'names' extra and a Java runtime; without them such a name is an "
                             "error saying so).")(f)


def no_groups_option(f: Any) -> Any:
    """``--no-groups``: the shipped generic groups and drug families off (a strict back-test:
    they were drafted knowing later listings); ``--groups`` files still count."""
    return click.option("--no-groups", "no_groups", is_flag=True,
                        help="Switch off the shipped generic groups and drug families (a strict "
                             "back-test); with --groups FILE only that file's groups count.")(f)
