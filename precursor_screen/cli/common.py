"""Options and helpers every command module shares: the reference list, inputs, Dask, progress."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable
from typing import Any

import click
from tqdm import tqdm

from precursor_screen.reference import load_reference as _load_reference
from precursor_screen.rules.groups import GroupSet, load_group_file, load_groups
from scheduled_substances import Registry

__all__ = ["date_option", "reference_options", "load_reference", "reference_parameters",
           "input_options", "progress_option", "dask_options", "check_dask", "progress", "jobs",
           "load_group_files", "groups_option", "notify", "INPUT_FORMATS", "EXISTING_FILE"]

INPUT_FORMATS = click.Choice(["smi", "sdf", "csv", "tsv", "parquet"])
EXISTING_FILE = click.Path(exists=True, dir_okay=False)


def date_option(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    """Click callback: a YYYY-MM-DD option as a date."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def reference_options(f: Any) -> Any:
    """The options choosing the reference list, shared by every screening command."""
    f = click.option("--include", "include", multiple=True,
                     type=click.Choice(["proposed", "watch"]),
                     help="Also screen against substances proposed for control or on watch lists.")(f)
    f = click.option("--extra-reference", "extra_reference", multiple=True,
                     type=click.Path(dir_okay=False),
                     help="A local list added on top of the built-in one (repeatable).")(f)
    f = click.option("--as-of", "as_of", callback=date_option,
                     help="Use the built-in list as it stood on this date (YYYY-MM-DD).")(f)
    f = click.option("--reference", "reference", type=click.Path(dir_okay=False),
                     help="Screen against this list (CSV with name,smiles; SDF; .smi) instead "
                          "of the built-in one.")(f)
    return f


def load_reference(reference: str | None, as_of: dt.date | None, include: tuple[str, ...] = (),
                   extra_reference: tuple[str, ...] = ()) -> Registry:
    """The Registry a command screens against, from the shared reference options."""
    if reference and as_of:
        raise click.UsageError("--as-of applies to the built-in list; not with --reference")
    return _load_reference(reference, as_of=as_of, include=include,
                           extra_references=extra_reference)


def reference_parameters(reference: str | None = None, as_of: dt.date | None = None,
                         include: tuple[str, ...] = (), extra_reference: tuple[str, ...] = ()
                         ) -> dict[str, Any]:
    """The reference options as recorded in an output's parameters (library runs that pass the
    same dict write the same metadata as the command)."""
    return {"reference": reference or "", "as_of": str(as_of or ""), "include": list(include),
            "extra_reference": list(extra_reference)}


def input_options(f: Any) -> Any:
    """``--input-format``, ``--smiles-column`` and ``--id-column`` of commands reading molecules."""
    f = click.option("--id-column", help="Name of the id column of CSV/TSV/Parquet input.")(f)
    f = click.option("--smiles-column", help="Name of the SMILES column of CSV/TSV/Parquet "
                                             "input.")(f)
    f = click.option("--input-format", type=INPUT_FORMATS,
                     help="Input format, overriding the extension (needed for '-' unless "
                          "SMILES).")(f)
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


def load_group_files(group_files: tuple[str, ...], *, check_examples: bool = True) -> GroupSet:
    """The shipped groups with the groups of ``--groups`` files added."""
    groups = load_groups()
    drafts = [load_group_file(f, check_examples=check_examples) for f in group_files]
    return groups.merged(*drafts) if drafts else groups
