"""The README's quick start is what CI runs, and every command has help with an example."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from precursor_screen.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def _quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^    \$ (.+?)  # (?:main job|tests)$", section, flags=re.M)


def test_quick_start_is_two_commands() -> None:
    assert len(_quick_start()) == 2


def test_ci_runs_the_readme_test_command_exactly() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert _quick_start()[1] in ci


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((prefix + name, cmd))
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, prefix + name + " "))
    return out


@pytest.mark.parametrize("name, cmd", _commands(cli), ids=lambda x: x if isinstance(x, str) else "")
def test_every_command_has_help_with_example(name: str, cmd: click.Command) -> None:
    assert cmd.help and "Example" in cmd.help, f"{name} lacks help with an example"


def _table(heading_text: str) -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(heading_text)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        rows.append([c.strip() for c in line.strip().strip("|").split(" | ")])
    return rows[1:]  # without the rule under the header


def test_readme_screen_columns_are_the_column_table() -> None:
    from precursor_screen.results import SCREEN

    rows = _table("| column | type | meaning |")
    assert rows == [[f"`{c.name}`", c.type.__name__, c.meaning] for c in SCREEN]


def test_readme_score_bands_are_the_screens() -> None:
    from precursor_screen.screen import SCORE_BANDS

    rows = _table("| flag | evidence | score |")
    assert rows == [[f"`{f}`", e, s] for f, e, s in SCORE_BANDS]
