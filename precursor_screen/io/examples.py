"""The example inputs shipped with the package, and copying them out for a first run.

The README's first command screens ``examples/seized.smi``; after ``pip install`` there is no
checkout to find it in, so the files travel in the wheel (``precursor_screen/examples``, mapped
from the checkout's ``examples/`` folder) and ``precursor-screen examples [DIR]`` copies them out.
"""

from __future__ import annotations

import filecmp
import importlib.resources
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from precursor_screen.errors import InputError

__all__ = ["examples_folder", "example_files", "copy_examples", "Copied"]

_KINDS = (".smi", ".csv")


def examples_folder() -> Path:
    """Where the shipped examples are: the installed package data, else the checkout's
    ``examples/`` (an editable install cannot resolve a mapped folder without code)."""
    try:
        installed = importlib.resources.files("precursor_screen") / "examples"
        if installed.is_dir():
            return Path(str(installed))
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    return Path(__file__).resolve().parents[2] / "examples"


def example_files() -> list[Path]:
    """The example inputs, by name.

    >>> [p.name for p in example_files()]
    ['declarations.csv', 'seized.smi', 'thresholds.csv']
    """
    folder = examples_folder()
    files = sorted(p for p in folder.iterdir() if p.suffix in _KINDS and p.is_file()) \
        if folder.is_dir() else []
    if not files:
        raise InputError(f"{folder}: the example files are missing from this installation")
    return files


@dataclass(frozen=True, slots=True)
class Copied:
    """One example file and what happened to it: ``written``, ``unchanged`` or ``kept``."""

    path: Path
    outcome: str


def copy_examples(directory: str | os.PathLike[str], *, force: bool = False) -> list[Copied]:
    """Copy every example file into ``directory`` (made if missing).

    A file already there with the same content is left alone (``unchanged``); one that differs
    is kept (``kept``) unless ``force``, and the caller says so: copying never destroys a file
    the user changed.
    """
    dest = Path(directory)
    if dest.exists() and not dest.is_dir():
        raise InputError(f"{dest}: exists and is not a directory")
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for src in example_files():
        target = dest / src.name
        if target.exists():
            if target.is_file() and filecmp.cmp(src, target, shallow=False):
                out.append(Copied(target, "unchanged"))
                continue
            if not force:
                out.append(Copied(target, "kept"))
                continue
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{src.name}.")
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        out.append(Copied(target, "written"))
    return out
