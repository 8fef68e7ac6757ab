"""A large user reference list prepared for screening: 100,000 MOSES rows as ``--reference``.

    pytest benchmarks/bench_reference.py --benchmark-only --benchmark-group-by=group -s

Group ``reference`` times, on the same CSV (id, name, smiles), reading and checking the list
(``load_reference_file``: parse, standardize) and building the Screener on it (fingerprints on
every core, substructure screens, no route gate above ``screen.GATE_MAX_TARGETS``), beside the
floor: RDKit parsing the same SMILES and nothing else. Each run asserts its answer (every row
loaded; a listed row found identical) and records its peak memory and its CPU seconds, its
worker processes' included (``extra_info``; printed with ``-s``): on a machine shared with
other work, CPU/2 is what the preparation would take on two free cores.

``PRECURSOR_SCREEN_REFERENCE_ROWS`` changes the 100,000.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest
from cputime import cpu_seconds
from moses import moses_smiles
from rdkit import Chem, rdBase

from precursor_screen.reference import load_reference_file
from precursor_screen.screen import Screener, prepare_parent

N = int(os.environ.get("PRECURSOR_SCREEN_REFERENCE_ROWS", "100000"))


@pytest.fixture(scope="module")
def reference_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    smiles = moses_smiles(N)
    path = tmp_path_factory.mktemp("reference") / "user_list.csv"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("id,name,smiles\n")
        for k, s in enumerate(smiles):
            fh.write(f"u{k},user compound {k},{s}\n")
    return path, smiles


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prepare(path: Path) -> Screener:
    """The list read and prepared as ``--reference`` does: the screen's per-substance work
    done on the workers that read it (``prepare_parent``)."""
    return Screener(load_reference_file(str(path), prepare=prepare_parent))


@pytest.mark.benchmark(group="reference")
def test_load_and_build_screener(benchmark, reference_csv) -> None:  # noqa: ANN001
    path, smiles = reference_csv
    cpu = cpu_seconds()
    screener = benchmark.pedantic(prepare, args=(path,), rounds=1, iterations=1)
    cpu = cpu_seconds() - cpu
    benchmark.extra_info["rows"] = len(smiles)
    benchmark.extra_info["peak_rss_mb"] = round(_peak_mb())
    benchmark.extra_info["cpu_s"] = round(cpu, 1)
    print(f"\nreference of {len(smiles):,} rows: {cpu:.1f} CPU-s in all processes "
          f"({1e6 * cpu / len(smiles):.0f} CPU-us/row; {cpu / 2:.1f} s on two free cores), "
          f"peak RSS of the main process {_peak_mb():.0f} MB")
    assert len(screener.reference) == len(smiles)
    probe = next(screener.screen([smiles[len(smiles) // 2]]))
    assert probe.match_id == f"u{len(smiles) // 2}" or probe.similarity == 1.0


@pytest.mark.benchmark(group="reference")
def test_rdkit_parse_only(benchmark, reference_csv) -> None:  # noqa: ANN001
    _, smiles = reference_csv

    def parse() -> int:
        with rdBase.BlockLogs():
            return sum(Chem.MolFromSmiles(s) is not None for s in smiles)

    cpu = cpu_seconds()
    assert benchmark.pedantic(parse, rounds=1, iterations=1) == len(smiles)
    print(f"\nRDKit parse only: {1e6 * (cpu_seconds() - cpu) / len(smiles):.0f} CPU-us/row")
