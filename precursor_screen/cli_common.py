"""Options and helpers shared by the command modules (cli.py and the survey, report and
declarations commands), kept apart from cli.py so that those modules never import it back."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click

__all__ = ["reference_options", "load_reference", "_date", "_progress"]


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
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
    f = click.option("--as-of", "as_of", callback=_date,
                     help="Use the built-in list as it stood on this date (YYYY-MM-DD).")(f)
    f = click.option("--reference", "reference", type=click.Path(dir_okay=False),
                     help="Screen against this list (CSV with name,smiles; SDF; .smi) instead "
                          "of the built-in one.")(f)
    return f


def load_reference(reference: str | None, as_of: dt.date | None, include: tuple[str, ...] = (),
                   extra_reference: tuple[str, ...] = ()) -> Any:
    """Build the Registry a command screens against from the shared reference options."""
    from precursor_screen.reference import load_reference as load

    if reference and as_of:
        raise click.UsageError("--as-of applies to the built-in list; not with --reference")
    return load(reference, as_of=as_of, include=include, extra_references=extra_reference)


def _progress(total: int | None, desc: str, enabled: bool | None) -> Any:
    """A tqdm progress bar on stderr (never stdout), shown on a terminal or when asked."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(total=total, desc=desc, unit="mol", file=sys.stderr, disable=not show,
                mininterval=0.5, smoothing=0.1)
