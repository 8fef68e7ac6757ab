"""Streaming runs: resumable after SIGKILL, identical on processes and Dask, and rescreening."""

from __future__ import annotations

import csv
import glob
import os
import signal
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from synthetic_declarations import generate, write_csv, write_parquet

from precursor_screen.cli.common import reference_parameters
from precursor_screen.declarations.rescreen import diff_inventories, rescreen
from precursor_screen.declarations.run import (
    InlineExecutor,
    ProcessExecutor,
    output_metadata,
    run_declarations,
)
from precursor_screen.declarations.schema import InputSpec
from precursor_screen.declarations.verdict import DeclarationConfig, reference_inventory
from precursor_screen.reference import builtin_registry

ROWS = 2000


@lru_cache(maxsize=None)
def config(as_of: str = "") -> DeclarationConfig:
    import datetime as dt

    day = dt.date.fromisoformat(as_of) if as_of else None
    return DeclarationConfig.create(builtin_registry().filter(as_of=day))


@lru_cache(maxsize=None)
def executor(as_of: str = "") -> InlineExecutor:
    return InlineExecutor(config(as_of))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("decl") / "decl.csv"
    write_csv(str(path), ROWS, seed=7)
    return path


def screen_file(data: Path, out: Path, as_of: str = "", **kwargs: object):  # noqa: ANN201
    """A library run that writes what `declarations DATA -o OUT [--as-of]` writes, metadata too."""
    import datetime as dt

    day = dt.date.fromisoformat(as_of) if as_of else None
    meta = output_metadata(config(as_of), [str(data)], InputSpec(), reference_parameters(as_of=day))
    kwargs.setdefault("executor", executor(as_of))
    return run_declarations([str(data)], str(out), config(as_of), metadata=meta, **kwargs)


@pytest.fixture(scope="module")
def reference_output(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "v.csv"
    summary = screen_file(data, out, chunk_size=400)
    assert summary.rows_in == summary.rows_out == ROWS
    return out


def test_generator_is_deterministic_and_has_its_garbage_share() -> None:
    rows = list(generate(2000, seed=3))
    assert rows == list(generate(2000, seed=3)) and rows != list(generate(2000, seed=4))
    assert len({r["declaration_id"] for r in rows}) == 2000


def test_counts_reconcile_and_output_is_independent_of_chunk_size(data: Path, reference_output: Path,
                                                                  tmp_path: Path) -> None:
    summary = screen_file(data, tmp_path / "v.csv", chunk_size=1100)
    assert sum(summary.counts.values()) == summary.rows_out == ROWS
    with open(reference_output, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["row"]) for r in rows] == list(range(ROWS))
    assert (tmp_path / "v.csv").read_bytes() == reference_output.read_bytes()
    unresolved = sum(r["verdict"] == "unresolved" for r in rows)
    assert 0.08 * ROWS < unresolved < 0.16 * ROWS   # the generator's 10% garbage, plus misses


def test_killed_run_resumes_to_identical_output(data: Path, reference_output: Path, tmp_path: Path) -> None:
    out = tmp_path / "v.csv"
    cmd = [sys.executable, "-m", "precursor_screen", "declarations", str(data),
           "-o", str(out), "--jobs", "1", "--chunk-size", "100", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while len(glob.glob(f"{out}.parts/part-*.parquet")) < 4 and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(glob.glob(f"{out}.parts/part-*.parquet"))
    assert 4 <= done < ROWS // 100 and not out.exists()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"resuming: {done} chunks already screened" in again.stderr
    assert f"{ROWS} rows in, {ROWS} rows out" in again.stderr
    assert out.read_bytes() == reference_output.read_bytes()
    assert Path(f"{out}.meta.json").read_bytes() == Path(f"{reference_output}.meta.json").read_bytes()
    assert not Path(f"{out}.parts").exists()


def test_interrupted_in_process_then_resumed(data: Path, reference_output: Path, tmp_path: Path) -> None:
    """An exception after some parts (a crash in a worker, a full disk) loses no finished part."""
    out = tmp_path / "v.csv"

    class Dies(InlineExecutor):
        def run(self, tasks, key):  # noqa: ANN001, ANN201
            for i, result in enumerate(super().run(tasks, key)):
                if i == 3:
                    raise RuntimeError("worker lost")
                yield result

    with pytest.raises(RuntimeError):
        screen_file(data, out, chunk_size=400, executor=Dies(config(), executor().screener))
    assert len(glob.glob(f"{out}.parts/part-*.parquet")) == 3
    summary = screen_file(data, out, chunk_size=400)
    assert summary.chunks_resumed == 3 and out.read_bytes() == reference_output.read_bytes()


def test_other_parameters_start_over(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "v.csv"
    notes: list[str] = []
    screen_file(data, out, chunk_size=1000, keep_parts=True)
    screen_file(data, out, chunk_size=500, keep_parts=True, notify=notes.append)
    assert any("different run" in n for n in notes)
    assert len(glob.glob(f"{out}.parts/part-*.parquet")) == ROWS // 500


def test_two_processes_give_identical_parquet(data: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one.parquet", tmp_path / "two.parquet"
    screen_file(data, one, chunk_size=500)
    screen_file(data, two, chunk_size=500, executor=ProcessExecutor(config(), 2))
    assert one.read_bytes() == two.read_bytes()
    assert pq.ParquetFile(one).num_row_groups == ROWS // 500


def test_dask_local_cluster_gives_identical_output(data: Path, reference_output: Path,
                                                   tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from precursor_screen.declarations.run import DaskExecutor

    parts = tmp_path / "in"
    write_parquet(str(parts), ROWS, seed=7, rows_per_file=700)   # partitioned Parquet input
    out = tmp_path / "v.csv"
    with DaskExecutor(config(), workers=2, processes=False) as dask:
        summary = run_declarations([str(parts)], str(out), config(), executor=dask, chunk_size=400,
                                   metadata=output_metadata(config(), [str(data)], InputSpec()))
    assert summary.rows_out == ROWS
    assert out.read_bytes() == reference_output.read_bytes()


def test_rescreen_redoes_few_rows_and_equals_a_fresh_run(data: Path, reference_output: Path,
                                                         tmp_path: Path) -> None:
    old = tmp_path / "old.parquet"
    screen_file(data, old, as_of="2019-12-31", chunk_size=1000)
    changes, full = tmp_path / "changes.csv", tmp_path / "full.parquet"
    summary = rescreen(str(old), config().reference, str(changes), full_output=str(full),
                       extra_parameters=reference_parameters(), screener=executor().screener)
    fresh = tmp_path / "fresh.parquet"
    screen_file(data, fresh, chunk_size=1000)
    assert full.read_bytes() == fresh.read_bytes()          # redoing only related rows is enough
    assert 0 < summary.redone < 0.2 * ROWS and summary.changed > 0
    with open(changes, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == summary.changed
    assert all(r["old_verdict"] != r["verdict"] and r["list_change"].startswith("added to the list")
               for r in rows)
    glycidates = [r for r in rows if "glycid" in r["list_change"]]
    assert glycidates and all(r["verdict"] == "scheduled" for r in glycidates)


def test_rescreen_without_a_list_change_redoes_nothing(reference_output: Path, tmp_path: Path) -> None:
    summary = rescreen(str(reference_output), config().reference, str(tmp_path / "c.csv"),
                       full_output=str(tmp_path / "same.csv"), extra_parameters=reference_parameters())
    assert (summary.redone, summary.changed) == (0, 0)
    assert (tmp_path / "same.csv").read_bytes() == reference_output.read_bytes()
    assert (tmp_path / "same.csv.meta.json").read_bytes() == Path(f"{reference_output}.meta.json").read_bytes()


def test_inventory_diff_counts_an_edited_entry_as_removed_and_added() -> None:
    old = reference_inventory(builtin_registry().filter())
    new = [dict(e, digest="x") if e["id"] == "bmk" else e for e in old]
    change = diff_inventories(old, new)
    assert [e["id"] for e in change.added] == [e["id"] for e in change.removed] == ["bmk"]
