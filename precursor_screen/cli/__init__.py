"""The command line: click commands only. Each parses its options, calls the library and prints;
results go to stdout or ``-o FILE``, progress, summaries and errors to stderr.

Exit codes, set in one place (:class:`Cli`): 0 done; 1 a runtime error, reported in one line
(``--debug`` for the traceback); 2 a usage error (a bad option or value, a missing file).
"""

from __future__ import annotations

from typing import Any

import click

from precursor_screen.cli.declarations import declarations_cmd, rescreen_cmd
from precursor_screen.cli.screen import check_cmd, examples_cmd, list_cmd, report_cmd, screen_cmd
from precursor_screen.cli.serve import serve_cmd
from precursor_screen.cli.survey import (
    derivatives_cmd,
    enumerate_cmd,
    group_cmd,
    index_group,
    search_cmd,
)
from precursor_screen.errors import USER_ERRORS
from precursor_screen.version import __version__

__all__ = ["main", "cli", "Cli"]


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
            msg = str(e) if isinstance(e, USER_ERRORS) else f"unexpected {type(e).__name__}: {e}"
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


for _command in (list_cmd, screen_cmd, check_cmd, report_cmd, examples_cmd, declarations_cmd,
                 rescreen_cmd, index_group, search_cmd, derivatives_cmd, group_cmd, enumerate_cmd,
                 serve_cmd):
    cli.add_command(_command)


def main() -> None:
    """Entry point of the ``precursor-screen`` console script."""
    cli(prog_name="precursor-screen")
