"""Where the shipped rule data lives: ``precursor_screen/rules/data/`` (installed beside the code)."""

from __future__ import annotations

from pathlib import Path

from precursor_screen.errors import ShippedDataError

__all__ = ["DATA_DIR", "data_file"]

DATA_DIR = Path(__file__).resolve().parent / "data"
"""The rule, group and synthesis files shipped with the package."""


def data_file(name: str) -> Path:
    """The shipped data file ``name``; ShippedDataError when the installation lacks it."""
    path = DATA_DIR / name
    if not path.is_file():
        raise ShippedDataError(f"{name}: shipped data file is missing ({path})")
    return path
