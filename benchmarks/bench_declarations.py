"""Declaration screening throughput: single process, 2 processes and a Dask LocalCluster.

The input is generated at benchmark time (deterministic, not committed): 1M declarations by
default (``BENCH_DECLARATIONS_ROWS`` to change), real CAS numbers and CN codes drawn Zipf-like
from the bundled table and the list, heavy repetition, 10% unresolvable or garbage rows
(``benchmarks/synthetic_declarations.py``). Every run is checked, not only timed: rows out
equal rows in, the 2-process and Dask outputs are byte-identical to the single-process one, and
a run killed midway (SIGKILL) and restarted ends with the same bytes.

    pytest benchmarks/bench_declarations.py --benchmark-only

The floor beside ours is reading the CSV into declarations without screening. Each run is one
round (a run takes tens of seconds); ``extra_info`` has rows/s and the CPU seconds all processes
spent (this process, its worker processes, Dask's workers), which a shared machine's load does
not inflate the way it does wall time.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from synthetic_declarations import write_csv

from precursor_screen.cli.common import reference_parameters
from precursor_screen.declarations.run import (
    InlineExecutor,
    ProcessExecutor,
    output_metadata,
    run_declarations,
)
from precursor_screen.declarations.schema import InputSpec, read_declarations
from precursor_screen.declarations.verdict import DeclarationConfig
from precursor_screen.manifest import file_sha256
from precursor_screen.reference import builtin_registry

ROWS = int(os.environ.get("BENCH_DECLARATIONS_ROWS", "1000000"))
CHUNK = 5000
GROUP = f"declarations {ROWS:,} rows"
_OUTPUTS: dict[str, str] = {}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("declarations") / "declarations.csv"
    start = time.perf_counter()
    write_csv(str(path), ROWS, seed=2025)
    print(f"\ngenerated {ROWS:,} declarations ({path.stat().st_size / 1e6:.0f} MB) in "
          f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
    return path


@pytest.fixture(scope="module")
def config() -> DeclarationConfig:
    return DeclarationConfig.create(builtin_registry().filter())


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _worker_cpu(client: object) -> float:
    return sum(client.run(_cpu).values()) if client is not None else 0.0  # type: ignore[attr-defined]


def _run(data: Path, out: Path, config: DeclarationConfig, executor: object,
         cpu: dict[str, float], client: object = None) -> object:
    """One run; its CPU seconds (this process and reaped children, plus Dask workers) into cpu."""
    meta = output_metadata(config, [str(data)], InputSpec(), reference_parameters())
    before = _cpu() + _worker_cpu(client)
    summary = run_declarations([str(data)], str(out), config, executor=executor,
                               chunk_size=CHUNK, metadata=meta)
    cpu["seconds"] = _cpu() + _worker_cpu(client) - before
    return summary


def _check(name: str, summary: object, out: Path, benchmark: object, cpu: dict[str, float]) -> None:
    assert summary.rows_in == summary.rows_out == ROWS  # type: ignore[attr-defined]
    assert sum(summary.counts.values()) == ROWS  # type: ignore[attr-defined]
    _OUTPUTS[name] = file_sha256(str(out))
    if name != "single" and "single" in _OUTPUTS:
        assert _OUTPUTS[name] == _OUTPUTS["single"], f"{name} output differs from single process"
    benchmark.extra_info["rows_per_s"] = round(ROWS / benchmark.stats.stats.mean)  # type: ignore[attr-defined]
    benchmark.extra_info["verdicts"] = summary.counts  # type: ignore[attr-defined]
    benchmark.extra_info["cpu_seconds"] = round(cpu["seconds"], 1)  # type: ignore[attr-defined]
    benchmark.extra_info["load_average"] = os.getloadavg()[0]  # type: ignore[attr-defined]


@pytest.mark.benchmark(group=GROUP)
def test_read_only_floor(benchmark: object, data: Path) -> None:
    n = benchmark.pedantic(lambda: sum(1 for _ in read_declarations([str(data)])),  # type: ignore[attr-defined]
                           rounds=1, iterations=1)
    assert n == ROWS
    benchmark.extra_info["rows_per_s"] = round(ROWS / benchmark.stats.stats.mean)  # type: ignore[attr-defined]


@pytest.mark.benchmark(group=GROUP)
def test_single_process(benchmark: object, data: Path, config: DeclarationConfig, tmp_path: Path) -> None:
    out, cpu = tmp_path / "single.parquet", {}
    summary = benchmark.pedantic(lambda: _run(data, out, config, InlineExecutor(config), cpu),  # type: ignore[attr-defined]
                                 rounds=1, iterations=1)
    _check("single", summary, out, benchmark, cpu)


@pytest.mark.benchmark(group=GROUP)
def test_two_processes(benchmark: object, data: Path, config: DeclarationConfig, tmp_path: Path) -> None:
    out, cpu = tmp_path / "two.parquet", {}
    summary = benchmark.pedantic(lambda: _run(data, out, config, ProcessExecutor(config, 2), cpu),  # type: ignore[attr-defined]
                                 rounds=1, iterations=1)
    _check("two processes", summary, out, benchmark, cpu)


@pytest.mark.benchmark(group=GROUP)
def test_dask_local_cluster(benchmark: object, data: Path, config: DeclarationConfig, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from precursor_screen.declarations.run import DaskExecutor

    out, cpu = tmp_path / "dask.parquet", {}
    with DaskExecutor(config, workers=2, processes=True) as dask:  # cluster start not timed
        summary = benchmark.pedantic(lambda: _run(data, out, config, dask, cpu, dask.client),  # type: ignore[attr-defined]
                                     rounds=1, iterations=1)
    _check("dask", summary, out, benchmark, cpu)


@pytest.mark.benchmark(group=f"{GROUP}: killed midway, restarted")
def test_kill_and_resume(benchmark: object, data: Path, config: DeclarationConfig, tmp_path: Path) -> None:
    """SIGKILL once half the chunks are written; the restart (timed) finishes the other half."""
    out = tmp_path / "resumed.parquet"
    cmd = [sys.executable, "-m", "precursor_screen", "declarations", str(data), "-o",
           str(out), "--jobs", "1", "--chunk-size", str(CHUNK), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    half = ROWS // CHUNK // 2
    while len(glob.glob(f"{out}.parts/part-*.parquet")) < half:
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_with = len(glob.glob(f"{out}.parts/part-*.parquet"))
    done = benchmark.pedantic(lambda: subprocess.run(cmd, capture_output=True, text=True),  # type: ignore[attr-defined]
                              rounds=1, iterations=1)
    assert done.returncode == 0, done.stderr
    assert f"{ROWS} rows in, {ROWS} rows out" in done.stderr
    benchmark.extra_info["parts_before_kill"] = killed_with
    if "single" not in _OUTPUTS:   # run alone: make the uninterrupted output to compare with
        _run(data, tmp_path / "single.parquet", config, InlineExecutor(config), {})
        _OUTPUTS["single"] = file_sha256(str(tmp_path / "single.parquet"))
    assert file_sha256(str(out)) == _OUTPUTS["single"], "resumed output differs from an uninterrupted run"
