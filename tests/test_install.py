"""A plain (non-editable) `pip install .` ships everything the tool needs.

Installed into a fresh venv that sees the already-installed dependencies, then run from an empty
directory: the one place a missing data file shows. The README's main command runs there as
written, and the lab bench serves its page and the vendored editor from the wheel.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
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
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    out = subprocess.run([str(env_dir / "bin" / "precursor-screen"), "list", "--format", "csv"],
                         capture_output=True, text=True, cwd=elsewhere, env=env)
    assert out.returncode == 0, out.stderr
    assert "QCCDLTOVEPVEJK-UHFFFAOYSA-N" in out.stdout
    # the README's main command, word for word after `pip install .`, from an empty directory:
    # the examples, rules, groups, fingerprint recipes and report templates must all be shipped
    main = _readme_main_command()
    assert main.startswith("precursor-screen examples && "), main
    screen = subprocess.run(main, shell=True, capture_output=True, text=True, cwd=elsewhere,
                            env=env)
    assert screen.returncode == 0, screen.stderr
    assert "convertible" in (elsewhere / "results.csv").read_text(encoding="utf-8")
    report = subprocess.run([str(env_dir / "bin" / "precursor-screen"), "screen",
                             "examples/seized.smi", "-o", "out.csv", "--report", "report.html",
                             "--jobs", "1"], capture_output=True, text=True, cwd=elsewhere,
                            env=env)
    assert report.returncode == 0, report.stderr
    assert (elsewhere / "report.html").stat().st_size > 10_000
    where = subprocess.run([str(py), "-c", "import precursor_screen, scheduled_substances;"
                            "print(precursor_screen.__file__)"],
                           capture_output=True, text=True, cwd=elsewhere, env=env)
    assert str(env_dir) in where.stdout, where.stdout + where.stderr
    _serve_from_the_wheel(env_dir, elsewhere, env)


def _readme_main_command() -> str:
    """The README's first quick-start command, after its `pip install .`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    line = re.search(r"^    \$ (.+?)  # main job$", text, flags=re.M)
    assert line is not None, "the README has no main-job command"
    return line.group(1).split("pip install . && ", 1)[1]


def _serve_from_the_wheel(env_dir: Path, cwd: Path, env: dict[str, str]) -> None:
    """The lab bench starts from the wheel and serves its page and the vendored editor."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(env_dir / "bin" / "precursor-screen"), "serve", "--port",
                             str(port), "--no-opsin"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                page = urllib.request.urlopen(base + "/", timeout=10).read()
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.3)
        assert b"lab bench" in page
        for path in ("/static/jsme/jsme.nocache.js", "/static/jsme/license.txt",
                     "/static/bench.js", "/editor"):
            with urllib.request.urlopen(base + path, timeout=30) as resp:
                assert resp.status == 200 and resp.read(), path
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
