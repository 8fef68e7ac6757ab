"""A plain (non-editable) `pip install .` ships everything the tool needs.

Installed into a fresh venv that sees the already-installed dependencies, then run from an empty
directory: the one place a missing data file shows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not (ROOT / "setup.cfg").exists(), reason="needs the source checkout")
def test_wheel_install_lists_registry_from_elsewhere(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # Let the new venv see this interpreter's dependencies (rdkit, faiss, ...) without their .pth
    # hooks, so the editable install of the checkout stays invisible there.
    site_dir = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    deps = [p for p in sys.path if p.endswith("site-packages")]
    Path(site_dir, "_deps.pth").write_text("\n".join(deps) + "\n", encoding="utf-8")
    # Build the wheel with this environment's setuptools (offline), install it in the new venv.
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "-w", str(wheels), str(ROOT)], capture_output=True, text=True, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    wheel = next(wheels.glob("precursor_screen-*.whl"))
    install = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--quiet", str(wheel)],
                             capture_output=True, text=True, cwd=tmp_path)
    assert install.returncode == 0, install.stderr
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    out = subprocess.run([str(env_dir / "bin" / "precursor-screen"), "list", "--format", "csv"],
                         capture_output=True, text=True, cwd=elsewhere, env=env)
    assert out.returncode == 0, out.stderr
    assert "QCCDLTOVEPVEJK-UHFFFAOYSA-N" in out.stdout
    # the main job: rules, groups, fingerprint recipes and report templates must all be shipped
    example = ROOT / "examples" / "seized.smi"
    screen = subprocess.run([str(env_dir / "bin" / "precursor-screen"), "screen", str(example),
                             "-o", "out.csv", "--report", "report.html", "--jobs", "1"],
                            capture_output=True, text=True, cwd=elsewhere, env=env)
    assert screen.returncode == 0, screen.stderr
    assert "convertible" in (elsewhere / "out.csv").read_text(encoding="utf-8")
    assert (elsewhere / "report.html").stat().st_size > 10_000
    where = subprocess.run([str(py), "-c", "import precursor_screen, scheduled_substances;"
                            "print(precursor_screen.__file__)"],
                           capture_output=True, text=True, cwd=elsewhere, env=env)
    assert str(env_dir) in where.stdout, where.stdout + where.stderr
