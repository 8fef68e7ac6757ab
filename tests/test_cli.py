"""The console script as a shell pipeline uses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_a_closed_pipe_ends_quietly() -> None:
    """`precursor-screen ... | head -1` must not print a traceback or an 'unexpected' error."""
    script = Path(sys.executable).parent / "precursor-screen"   # the installed console script
    # rows are written as they are found, so the writer meets the closed pipe
    proc = subprocess.run(f"'{script}' enumerate BMK PMK --depth 1 | head -1",
                          shell=True, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip()
    assert "unexpected" not in proc.stderr and "Traceback" not in proc.stderr


