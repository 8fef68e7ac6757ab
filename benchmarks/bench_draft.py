"""`group draft` from 10 examples, measured against the bundled legitimate set and a
100,000-molecule library index (the first 100,000 MOSES molecules, indexed once and kept in
``PRECURSOR_SCREEN_BENCH_DIR``).

* ``test_draft_cold``: everything a ``group draft`` command does for 10 seized structures (the
  ten ring-substituted 2-bromopropiophenones of ``evaluation/families.tsv``): load the list,
  rules and drug routes, read and standardize the examples, find the scaffold and the parents,
  enumerate the parents' pre-precursors, build and measure every candidate (bundled legitimate
  set, known designer precursors, the library), rank. The issue's bar: under a minute on 2 cores.
* ``test_draft_warm``: the same with the knowledge built once (a notebook drafting many families).
* ``test_library_per_candidate``: the obvious alternative for the library part, ``group check``'s
  way: one index SMARTS search per candidate (recursive SMARTS, weakly screened) instead of one
  search per scaffold; the answers are asserted equal.

    pytest benchmarks/bench_draft.py --benchmark-only
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest
from moses import moses_smiles

from precursor_screen.io.readers import read_records
from precursor_screen.rules.groups import GroupSet
from precursor_screen.survey import LibraryIndex, build_index
from precursor_screen.survey.draft import Knowledge, draft_groups
from precursor_screen.survey.groupcheck import library_capture

N_LIBRARY = 100_000
JOBS = 2
WORK = Path(os.environ.get("PRECURSOR_SCREEN_BENCH_DIR", "/tmp/precursor-screen-bench-draft"))
FAMILY = "bromopropiophenones"


@pytest.fixture(scope="module")
def examples() -> list[tuple[str, str]]:
    path = Path(__file__).resolve().parents[1] / "evaluation" / "families.tsv"
    with open(path, encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["family"] == FAMILY]
    assert len(rows) == 10
    return [(r["id"], r["smiles"]) for r in rows]


@pytest.fixture(scope="module")
def library() -> LibraryIndex:
    smi = WORK / f"moses-{N_LIBRARY}.smi"
    out = smi.with_suffix(".idx")
    if not (out / "manifest.json").exists():
        WORK.mkdir(parents=True, exist_ok=True)
        if not smi.exists():
            tmp = smi.with_suffix(".tmp")
            tmp.write_text("".join(f"{s} MOSES{i}\n" for i, s in
                                   enumerate(moses_smiles(N_LIBRARY))))
            os.replace(tmp, smi)
        if out.exists():
            shutil.rmtree(out)
        build_index(read_records(str(smi)), out, jobs=JOBS, inputs=[str(smi)])
    lib = LibraryIndex(out, threads=JOBS)
    assert len(lib) == N_LIBRARY
    return lib


def _check(result) -> None:  # noqa: ANN001
    fam = result.families[0]
    assert len(result.families) == 1 and fam.best is not None
    assert fam.best.measures.examples_covered == 10 and fam.best.measures.bundled_collateral == 0
    assert all(c.measures.library is not None for c in fam.candidates)


@pytest.mark.benchmark(group="group draft, 10 examples, 100,000-molecule index")
def test_draft_cold(benchmark, examples, library) -> None:  # noqa: ANN001
    result = benchmark.pedantic(lambda: draft_groups(examples, library=library), rounds=3,
                                iterations=1)
    _check(result)
    benchmark.extra_info["candidates"] = len(result.candidates())


@pytest.mark.benchmark(group="group draft, 10 examples, 100,000-molecule index")
def test_draft_warm(benchmark, examples, library) -> None:  # noqa: ANN001
    knowledge = Knowledge()
    result = benchmark.pedantic(lambda: draft_groups(examples, library=library,
                                                     knowledge=knowledge),
                                rounds=3, iterations=1)
    _check(result)


@pytest.mark.benchmark(group="library capture of the candidates")
def test_library_once_per_scaffold(benchmark, examples, library) -> None:  # noqa: ANN001
    knowledge = Knowledge()
    with_lib = benchmark.pedantic(lambda: draft_groups(examples, library=library,
                                                       knowledge=knowledge),
                                  rounds=1, iterations=1)
    without = draft_groups(examples, knowledge=knowledge)
    assert [c.group.id for c in with_lib.candidates()] == [c.group.id for c in
                                                            without.candidates()]
    benchmark.extra_info["captured"] = [c.measures.library for c in with_lib.candidates()]


@pytest.mark.benchmark(group="library capture of the candidates")
def test_library_per_candidate(benchmark, examples, library) -> None:  # noqa: ANN001
    result = draft_groups(examples, library=library)
    groups = [c.group for c in result.candidates()]

    def per_candidate() -> list[int]:
        return [library_capture(GroupSet([g]), g, library, 20)[0] for g in groups]

    counts = benchmark.pedantic(per_candidate, rounds=1, iterations=1)
    assert counts == [c.measures.library for c in result.candidates()]
