"""Every command's output, byte for byte, against files made by an earlier build.

The outputs in ``tests/data/golden/expected/`` were written by this module's ``--write`` mode (see
the bottom) at the commit named in ``tests/data/golden/README.md``. A change that moves code
around must leave them identical; a change that means to alter results regenerates them, and its
commit message says which outputs changed and why.

Only what differs between two runs of the same build is normalized away: timestamps, versions of
the tool, RDKit and Python, and the temporary directory's path. Parquet files are compared by their
schema, metadata and rows (their bytes carry the writer's version).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GOLDEN = HERE / "data" / "golden"
EXPECTED = GOLDEN / "expected"

INPUTS = {
    "corpus.smi": GOLDEN / "corpus.smi",
    "declarations_corpus.csv": GOLDEN / "declarations_corpus.csv",
    "draft_groups.toml": GOLDEN / "draft_groups.toml",
    "seized.smi": ROOT / "examples" / "seized.smi",
    "declarations.csv": ROOT / "examples" / "declarations.csv",
}

CHECK_QUERIES = (
    ("APAAN",), ("CC(=O)C(C#N)c1ccccc1",), ("103-79-7",), ("CCC(=O)c1ccc(C)cc1",),
    ("CC1(Cc2ccccc2)OCCO1",), ("CC(C)(C)OC(=O)N1CCC(Nc2ccccc2)CC1",), ("mephedrone",),
    ("O=C1CCN(CCc2ccccc2)CC1.Cl",), ("C[C@H](N)[C@@H](O)c1ccccc1",), ("CCOC(=O)Cc1ccccc1",),
    ("APAAN", "--as-of", "2012-12-31"), ("CC(=O)CCc1ccccc1",), ("vanillin",), ("121-33-5",),
)

# (name, argv, files it writes that are compared); run in order, in one working directory
COMMANDS: list[tuple[str, list[str], list[str]]] = [
    ("seized-csv", ["screen", "seized.smi", "-o", "seized.csv", "--jobs", "1",
                    "--report", "seized.html"], ["seized.csv", "seized.csv.meta.json", "seized.html"]),
    ("seized-parquet", ["screen", "seized.smi", "-o", "seized.parquet", "--jobs", "1"],
     ["seized.parquet"]),
    ("seized-sdf", ["screen", "seized.smi", "-o", "seized.sdf", "--jobs", "1"], ["seized.sdf"]),
    ("seized-jsonl", ["screen", "seized.smi", "-o", "seized.jsonl", "--jobs", "1"],
     ["seized.jsonl", "seized.jsonl.meta.json"]),
    ("seized-report", ["report", "seized.csv", "-o", "seized_report.html"], ["seized_report.html"]),
    ("corpus-csv", ["screen", "corpus.smi", "-o", "corpus.csv", "--jobs", "2"],
     ["corpus.csv", "corpus.csv.meta.json"]),
    ("corpus-parquet", ["screen", "corpus.smi", "-o", "corpus.parquet", "--jobs", "1"],
     ["corpus.parquet"]),
    ("corpus-report", ["report", "corpus.csv", "-o", "corpus_report.html", "--max-cards", "40",
                       "--max-table-rows", "400"], ["corpus_report.html"]),
    ("declarations", ["declarations", "declarations.csv", "-o", "declarations_out.csv"],
     ["declarations_out.csv", "declarations_out.csv.meta.json"]),
    ("declarations-corpus", ["declarations", "declarations_corpus.csv", "-o",
                             "declarations_corpus_out.parquet"], ["declarations_corpus_out.parquet"]),
    ("index", ["index", "build", "corpus.smi", "-o", "corpus.idx", "--jobs", "1"], []),
    ("derivatives", ["derivatives", "bmk", "pmk", "npp", "anpp", "ephedrine", "apaan", "--index",
                     "corpus.idx", "-o", "derivatives.csv"],
     ["derivatives.csv", "derivatives.csv.meta.json"]),
    ("derivatives-html", ["derivatives", "bmk", "--index", "corpus.idx", "--threshold", "0.3",
                          "-o", "derivatives.html"], ["derivatives.html"]),
    ("group-check", ["group", "check", "draft_groups.toml", "--index", "corpus.idx", "-o",
                     "group.json", "--report", "group.html"], ["group.json", "group.html"]),
    ("enumerate", ["enumerate", "bmk", "pmk", "mephedrone", "fentanyl", "GHB", "--depth", "2",
                   "-o", "enumerate.csv"], ["enumerate.csv", "enumerate.csv.meta.json"]),
] + [(f"check-{i}", ["check", *q, "--json"], []) for i, q in enumerate(CHECK_QUERIES)]

_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?")
_VERSION_KEYS = ("tool_version", "rdkit_version", "python_version", "created", "elapsed_s",
                 "seconds")


def _normalize_json(value: object) -> object:
    if isinstance(value, dict):
        return {k: ("<normalized>" if k in _VERSION_KEYS else _normalize_json(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize_json(v) for v in value]
    if isinstance(value, str):
        return _normalize_text(value)
    return value


def _normalize_text(text: str) -> str:
    from rdkit import __version__ as rdkit_version

    from precursor_screen.version import __version__

    text = _STAMP.sub("<created>", text)
    text = text.replace(f"RDKit {rdkit_version}", "RDKit <v>").replace(rdkit_version, "<rdkit>")
    return re.sub(rf"(?<![\d.]){re.escape(__version__)}(?![\d.])", "<version>", text)


def _normalize_csv_like(text: str) -> str:
    """Text outputs: embedded JSON documents and timestamps normalized."""
    return _normalize_text(text)


def _render(path: Path) -> str:
    """One output file as normalized text."""
    name = path.name
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        meta = {k: _normalize_json(json.loads(v)) if v.startswith("{") else v
                for k, v in meta.items() if k != "ARROW:schema"}
        lines = [json.dumps({"schema": [f"{f.name}:{f.type}" for f in table.schema],
                             "metadata": meta}, sort_keys=True, ensure_ascii=False)]
        lines += [json.dumps(_normalize_json(r), sort_keys=True, ensure_ascii=False)
                  for r in table.to_pylist()]
        return "\n".join(lines) + "\n"
    text = path.read_text(encoding="utf-8")
    if name.endswith(".json"):
        return json.dumps(_normalize_json(json.loads(text)), indent=1, sort_keys=True,
                          ensure_ascii=False) + "\n"
    if name.endswith(".jsonl"):
        return "".join(json.dumps(_normalize_json(json.loads(ln)), sort_keys=True,
                                  ensure_ascii=False) + "\n" for ln in text.splitlines() if ln)
    if name.endswith(".sdf"):
        # each record carries the run metadata as one JSON line
        return "\n".join(json.dumps(_normalize_json(json.loads(ln)), sort_keys=True)
                         if ln.startswith("{") else _normalize_text(ln)
                         for ln in text.split("\n"))
    return _normalize_csv_like(text)


def _run(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    from click.testing import CliRunner

    from precursor_screen.cli import cli

    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def _produce(workdir: Path, emit: Callable[[str, str], None]) -> None:
    """Run every command in ``workdir`` and hand each normalized output to ``emit(name, text)``.

    The index's manifest records when it was built, so its sha256 (which the survey outputs
    quote) changes from run to run: it is replaced by a placeholder.
    """
    for name, src in INPUTS.items():
        shutil.copyfile(src, workdir / name)
    manifest = ""
    for name, argv, files in COMMANDS:
        code, out, _err = _run(argv, workdir)
        if name == "index":
            manifest = hashlib.sha256((workdir / "corpus.idx" / "manifest.json").read_bytes()).hexdigest()

        def clean(text: str) -> str:
            return (text.replace(manifest, "<index-manifest>").replace(manifest[:16], "<index-manifest>")
                    if manifest else text)

        emit(f"{name}.exit", f"{code}\n")
        if out:
            emit(f"{name}.stdout", clean(_normalize_json_or_text(out)))
        for f in files:
            emit(f"{name}.{f}.txt", clean(_render(workdir / f)))


def _normalize_json_or_text(out: str) -> str:
    try:
        return json.dumps(_normalize_json(json.loads(out)), indent=1, sort_keys=True,
                          ensure_ascii=False) + "\n"
    except ValueError:
        return _normalize_text(out)


def _expected(name: str) -> str:
    with gzip.open(EXPECTED / f"{name}.gz", "rt", encoding="utf-8", newline="") as fh:
        return fh.read()


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out: dict[str, str] = {}
    _produce(tmp_path_factory.mktemp("golden"), out.__setitem__)
    return out


def _expected_names() -> list[str]:
    return sorted(p.name[:-3] for p in EXPECTED.glob("*.gz"))


def test_every_output_is_expected(produced: dict[str, str]) -> None:
    assert sorted(produced) == _expected_names()


@pytest.mark.parametrize("name", _expected_names())
def test_output_identical(produced: dict[str, str], name: str) -> None:
    got, want = produced.get(name), _expected(name)
    assert got is not None, f"{name} was not produced"
    if got != want:
        gl, wl = got.splitlines(), want.splitlines()
        first = next((i for i, (a, b) in enumerate(zip(gl, wl)) if a != b), min(len(gl), len(wl)))
        pytest.fail(f"{name} differs from line {first + 1} ({len(gl)} lines, expected "
                    f"{len(wl)}):\n got: {gl[first][:300] if first < len(gl) else '<end>'}\n"
                    f"want: {wl[first][:300] if first < len(wl) else '<end>'}")


def _write(target: Path) -> None:
    import tempfile

    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*.gz"):
        old.unlink()

    def emit(name: str, text: str) -> None:
        with open(target / f"{name}.gz", "wb") as raw, \
                gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
            gz.write(text.encode("utf-8"))

    with tempfile.TemporaryDirectory() as tmp:
        _produce(Path(tmp), emit)


if __name__ == "__main__":  # python tests/test_golden.py --write
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_golden.py --write   (regenerates tests/data/golden/expected)")
    _write(EXPECTED)
