"""No row lost, nothing injected (issue 18): each finding of the hostile-user review, as a test.

Every test here failed on the build before the hardening (f23bcb8: rows swallowed, cells written
as formulas, outputs destroyed, runs that hung) and passes now. Commands that hung or ran for
minutes there run in a subprocess with a time limit, so a regression fails instead of hanging.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import os
import resource
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from precursor_screen.cli import cli
from precursor_screen.results import read_results

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "golden" / "corpus.smi"
LINUX = sys.platform.startswith("linux")


def run(*args: str, input: str | bytes | None = None):  # noqa: ANN201
    return CliRunner().invoke(cli, list(args), input=input)


def command(args: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """The command line in a subprocess, killed (and the test failed) after ``timeout`` s."""
    return subprocess.run([sys.executable, "-m", "precursor_screen", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def csv_rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


def corpus(n: int) -> list[tuple[str, str]]:
    """The first ``n`` (SMILES, id) of the golden corpus (real molecules)."""
    lines = CORPUS.read_text(encoding="utf-8").splitlines()[1:n + 1]
    return [tuple(line.split("\t", 1)) for line in lines]  # type: ignore[misc]


def children(pid: int) -> list[int]:
    """The process ids of ``pid``'s children (Linux)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.extend(int(x) for x in text)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# -- 1. an unbalanced quote swallowed 989 of 1,000 rows ---------------------------------------------

def _quoted_file(path: Path, header: str, row: str, bad: str, n: int = 1000) -> None:
    lines = [header] + [bad if i == 10 else row.format(i=i) for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_unbalanced_quote_loses_no_row_in_screen_or_declarations(tmp_path: Path) -> None:
    screen_in = tmp_path / "mols.csv"
    _quoted_file(screen_in, "smiles,id", "CCO,m{i}", 'CCO,"bad id')
    result = run("screen", str(screen_in), "-o", str(tmp_path / "out.csv"), "--jobs", "1")
    assert result.exit_code == 0, result.stderr
    rows = csv_rows(tmp_path / "out.csv")
    assert len(rows) == 1000
    assert rows[10]["status"].startswith("malformed row: unbalanced quote on line 12")
    assert [r["id"] for r in rows[11:14]] == ["m11", "m12", "m13"]
    assert sum(r["status"] == "ok" for r in rows) == 999
    assert "1000 rows in, 1000 rows out" in result.stderr

    decl_in = tmp_path / "decl.csv"
    _quoted_file(decl_in, "declaration_id,cas,name", "d{i},64-17-5,ethanol",
                 'd10,64-17-5,"ethanol 96%')
    result = run("declarations", str(decl_in), "-o", str(tmp_path / "decl_out.csv"),
                 "--no-progress")
    assert result.exit_code == 0, result.stderr
    rows = csv_rows(tmp_path / "decl_out.csv")
    assert len(rows) == 1000
    assert rows[10]["verdict"] == "unresolved" and rows[11]["declaration_id"] == "d11"
    assert sum(r["verdict"] == "clear" for r in rows) == 999


def test_a_quoted_line_break_is_still_one_record(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('smiles,id,note\nCCO,a,"two\nlines"\nCCN,b,x\n', encoding="utf-8")
    result = run("screen", str(path), "-o", str(tmp_path / "out.csv"), "--jobs", "1")
    assert result.exit_code == 0, result.stderr
    assert [r["id"] for r in csv_rows(tmp_path / "out.csv")] == ["a", "b"]


# -- 2. a carriage return inside an id was written unquoted ------------------------------------------

def test_carriage_return_in_an_id_is_quoted(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_bytes(b'smiles,id\nCCO,"a\rb"\nCCN,"c\r\nd"\nCCC,e\n')
    for fmt in ("csv", "tsv"):
        out = tmp_path / f"out.{fmt}"
        result = run("screen", str(path), "-o", str(out), "--jobs", "1")
        assert result.exit_code == 0, result.stderr
        rows = csv_rows(out, "," if fmt == "csv" else "\t")
        assert [r["id"] for r in rows] == ["a\rb", "c\r\nd", "e"]
        # outside quotes, one line per row
        unquoted = out.read_bytes().split(b'"')[::2]
        assert sum(part.count(b"\r") for part in unquoted) == 0
        assert sum(part.count(b"\n") for part in unquoted) == 4
    sdf = tmp_path / "out.sdf"
    assert run("screen", str(path), "-o", str(sdf), "--jobs", "1").exit_code == 0
    text = sdf.read_text(encoding="utf-8")
    assert "\r" not in text and text.count("$$$$\n") == 3


# -- 3. cells starting with = + - @ were written as formulas -----------------------------------------

FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+2", "-2+3", "@SUM(A1)", "'=1", "\t=cmd"]


def test_formula_cells_are_neutralised_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["smiles", "id"])
        for i, ident in enumerate(FORMULAS):
            w.writerow(["CCO" if i % 2 else "=1+1", ident])
    for fmt, sep in (("csv", ","), ("tsv", "\t")):
        out = tmp_path / f"out.{fmt}"
        result = run("screen", str(path), "-o", str(out), "--jobs", "1")
        assert result.exit_code == 0, result.stderr
        rows = csv_rows(out, sep)
        for r in rows:
            for value in r.values():
                assert value[:1] not in ("=", "+", "-", "@", "\t", "\r"), value
        assert rows[0]["id"] == "'" + FORMULAS[0] and rows[0]["input_smiles"] == "'=1+1"
        assert rows[4]["id"] == "''=1"
        back, meta = read_results(str(out))
        assert [r["id"] for r in back] == FORMULAS and meta["cells"].startswith("formula")
    raw = tmp_path / "raw.csv"
    assert run("screen", str(path), "-o", str(raw), "--jobs", "1", "--raw-cells").exit_code == 0
    assert [r["id"] for r in csv_rows(raw)] == FORMULAS


def test_declarations_neutralise_text_cells_and_rescreen_reads_them_back(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("declaration_id,name,quantity_kg\n=1+2,ethanol,-1.5\n@x,+acetone,10\n",
                    encoding="utf-8")
    out = tmp_path / "out.csv"
    assert run("declarations", str(path), "-o", str(out), "--no-progress").exit_code == 0
    rows = csv_rows(out)
    assert [r["declaration_id"] for r in rows] == ["'=1+2", "'@x"]
    assert [r["quantity_kg"] for r in rows] == ["'-1.5", "10"]
    assert [r["name"] for r in rows] == ["ethanol", "'+acetone"]
    full = tmp_path / "full.csv"
    result = run("rescreen", str(out), "-o", str(tmp_path / "changes.csv"), "--full", str(full))
    assert result.exit_code == 0, result.stderr
    assert full.read_bytes() == out.read_bytes()


# -- 4. -o onto a device node or onto the input ------------------------------------------------------

def test_output_that_is_an_input_or_not_a_file_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "in.smi"
    src.write_text("CCO a\nCCN b\n", encoding="utf-8")
    before = src.read_bytes()
    result = run("screen", str(src), "-o", str(src), "--format", "csv", "--jobs", "1")
    assert result.exit_code == 1 and "is also an input" in result.stderr
    assert src.read_bytes() == before
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    result = run("screen", str(src), "-o", str(fifo), "--jobs", "1")
    assert result.exit_code == 1 and "not a regular file" in result.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    ref = tmp_path / "ref.csv"
    ref.write_text("name,smiles\nx,CC(=O)CCc1ccccc1\n", encoding="utf-8")
    ref_before = ref.read_bytes()
    result = run("screen", str(src), "--extra-reference", str(ref), "-o", str(ref), "--jobs", "1")
    assert result.exit_code == 1 and ref.read_bytes() == ref_before
    decl = tmp_path / "d.csv"
    decl.write_text("declaration_id,cas\nd1,64-17-5\n", encoding="utf-8")
    result = run("declarations", str(decl), "-o", str(decl), "--no-progress")
    assert result.exit_code == 1 and decl.read_text(encoding="utf-8").startswith("declaration_id")


# -- 5. a full disk during a Parquet write left a corrupt file ---------------------------------------

def _small_file_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


@pytest.mark.skipif(not LINUX, reason="file-size limits (RLIMIT_FSIZE) as a full disk: Linux")
def test_a_failed_parquet_write_keeps_the_earlier_file(tmp_path: Path) -> None:
    small = tmp_path / "small.smi"
    small.write_text("CCO a\nCCN b\n", encoding="utf-8")
    big = tmp_path / "big.smi"
    big.write_text("".join(f"{s} {i}\n" for s, i in corpus(3000)), encoding="utf-8")
    good = tmp_path / "good.parquet"
    assert command(["screen", str(small), "-o", str(good), "--jobs", "1"], tmp_path).returncode == 0
    before = good.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "precursor_screen", "screen", str(big), "-o",
                           str(good), "--jobs", "1"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, preexec_fn=_small_file_limit)
    assert proc.returncode == 1
    assert str(good) in proc.stderr and "earlier file" in proc.stderr
    assert good.read_bytes() == before and pq.read_table(good).num_rows == 2
    assert not list(tmp_path.glob(".good.parquet.*"))


# -- 6. a 10,000-atom record, a gzip bomb, a 1 GB line -----------------------------------------------

def _v3000(n: int, grid: bool = False) -> str:
    side = int(n ** 0.5)
    bonds = ([(k, k + side) for k in range(n - side)] + [(k, k + 1) for k in range(n - 1)
                                                         if (k + 1) % side]) if grid \
        else [(k, k + 1) for k in range(n - 1)]
    lines = ["big", "  hand", "", "  0  0  0     0  0            999 V3000", "M  V30 BEGIN CTAB",
             f"M  V30 COUNTS {n} {len(bonds)} 0 0 0", "M  V30 BEGIN ATOM"]
    lines += [f"M  V30 {i + 1} C {i % side * 1.5:.2f} {i // side * 1.5:.2f} 0 0" for i in range(n)]
    lines += ["M  V30 END ATOM", "M  V30 BEGIN BOND"]
    lines += [f"M  V30 {k + 1} 1 {a + 1} {b + 1}" for k, (a, b) in enumerate(bonds)]
    lines += ["M  V30 END BOND", "M  V30 END CTAB", "M  END", "$$$$"]
    return "\n".join(lines) + "\n"


def test_a_10000_atom_record_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.sdf"
    path.write_text(_v3000(10_000, grid=True) + _v3000(4), encoding="utf-8")
    proc = command(["screen", str(path), "-o", str(tmp_path / "out.csv"), "--jobs", "1"],
                   tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = csv_rows(tmp_path / "out.csv")
    assert rows[0]["status"] == "too large: 10000 atoms (limit 1000, --max-atoms)"
    assert rows[1]["status"] == "ok"


def test_a_gzip_bomb_stops_with_an_error_naming_the_file(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.smi.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as fh:
        block = b"C x\n" * (1 << 18)            # 1 MiB
        for _ in range(160):                    # 160 MiB unpacked, ~160 KiB packed
            fh.write(block)
    proc = command(["screen", str(bomb), "-o", str(tmp_path / "out.csv"), "--jobs", "1"],
                   tmp_path, timeout=180)
    assert proc.returncode == 1
    assert "bomb.smi.gz: unpacks to more than 200 times its packed size" in proc.stderr
    assert not (tmp_path / "out.csv").exists()


def test_an_oversized_line_is_a_row_and_is_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "long.smi"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("CCO a\n" + "C" * 6_000_000 + " huge\nCCN b\n")
    proc = command(["screen", str(path), "-o", str(tmp_path / "out.csv"), "--jobs", "1"],
                   tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stderr
    rows = csv_rows(tmp_path / "out.csv")
    assert [r["status"][:9] for r in rows] == ["ok", "too large", "ok"]
    assert "line of 6,000,005 bytes" in rows[1]["status"]
    assert (tmp_path / "out.csv").stat().st_size < 20_000


def test_a_molecule_over_its_time_budget_gets_timeout_alone(tmp_path: Path) -> None:
    # a 50 x 50 grid of carbons: RDKit's ring perception takes ~18 s on it
    path = tmp_path / "slow.sdf"
    fast = "".join(_v3000(4).replace("big", f"fast{i}", 1) for i in range(3))
    path.write_text(fast + _v3000(2500, grid=True) + fast, encoding="utf-8")
    for jobs in ("1", "2"):
        proc = command(["screen", str(path), "-o", str(tmp_path / "out.csv"), "--jobs", jobs,
                        "--max-atoms", "5000", "--timeout", "2"], tmp_path, timeout=120)
        assert proc.returncode == 0, proc.stderr
        rows = csv_rows(tmp_path / "out.csv")
        assert [r["status"] for r in rows] == ["ok"] * 3 + [
            "timeout: took longer than 2 s (--timeout)"] + ["ok"] * 3


# -- 7. a dead worker hung the screen; orphans held the resume lock ----------------------------------

@pytest.mark.skipif(not LINUX, reason="finds worker processes through /proc")
def test_a_killed_worker_neither_hangs_the_screen_nor_loses_rows(tmp_path: Path) -> None:
    path = tmp_path / "many.smi"
    mols = corpus(4000)
    path.write_text("".join(f"{s} {i}\n" for s, i in mols), encoding="utf-8")
    out = tmp_path / "out.csv"
    proc = subprocess.Popen([sys.executable, "-m", "precursor_screen", "screen", str(path), "-o",
                             str(out), "--jobs", "2", "--no-progress"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        workers: list[int] = []
        while len(workers) < 2:
            assert time.time() < deadline and proc.poll() is None
            workers = [p for p in children(proc.pid) if alive(p)]
            time.sleep(0.05)
        time.sleep(1.0)                      # both are screening now
        os.kill(workers[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    rows = csv_rows(out)
    assert [int(r["row"]) for r in rows] == list(range(4000))
    assert [r["id"] for r in rows] == [i for _, i in mols]


@pytest.mark.skipif(not LINUX, reason="finds worker processes through /proc")
def test_workers_die_with_a_killed_run_and_the_rerun_resumes(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from synthetic_declarations import write_csv

    data = tmp_path / "decl.csv"
    write_csv(str(data), 6000, seed=3)
    out = tmp_path / "v.csv"
    cmd = [sys.executable, "-m", "precursor_screen", "declarations", str(data), "-o", str(out),
           "--jobs", "2", "--chunk-size", "100", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    workers: list[int] = []
    while len(list(Path(f"{out}.parts").glob("part-*.parquet"))) < 2:
        assert time.time() < deadline and proc.poll() is None
        workers = [p for p in children(proc.pid) if alive(p)] or workers
        time.sleep(0.02)
    workers = [p for p in children(proc.pid) if alive(p)] or workers
    assert workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while any(alive(p) for p in workers):
        assert time.time() < deadline, "orphan workers outlived the killed run"
        time.sleep(0.05)
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "resuming:" in again.stderr and "6000 rows in, 6000 rows out" in again.stderr


# -- 8. encodings: a bad byte in an id, CR-only line ends, BOM, UTF-16 -------------------------------

@pytest.mark.parametrize("name, data", [
    ("bad_byte.smi", b"CC(=O)Cc1ccccc1 P2P\xff\xfe lot 7\nCCO ethanol\n"),
    ("cr_only.smi", b"CC(=O)Cc1ccccc1 P2P\rCCO ethanol\r"),
    ("bom.smi", codecs.BOM_UTF8 + b"CC(=O)Cc1ccccc1 P2P\nCCO ethanol\n"),
    ("bom.csv", codecs.BOM_UTF8 + b"smiles,id\r\nCC(=O)Cc1ccccc1,P2P\r\nCCO,ethanol\r\n"),
    ("utf16.smi", "CC(=O)Cc1ccccc1 P2P\r\nCCO ethanol\r\n".encode("utf-16")),
    ("utf16be.csv", codecs.BOM_UTF16_BE + "smiles,id\nCC(=O)Cc1ccccc1,P2P\nCCO,ethanol\n"
     .encode("utf-16-be")),
], ids=lambda x: x if isinstance(x, str) else "")
def test_encodings_and_line_ends_keep_every_structure(tmp_path: Path, name: str,
                                                      data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    result = run("screen", str(path), "-o", str(tmp_path / "out.csv"), "--jobs", "1")
    assert result.exit_code == 0, result.stderr
    rows = csv_rows(tmp_path / "out.csv")
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert rows[0]["flag"] == "scheduled" and rows[1]["id"] == "ethanol"
    if name == "bad_byte.smi":
        assert rows[0]["id"] == "P2P\ufffd\ufffd lot 7" and "not UTF-8" in result.stderr
    else:
        assert rows[0]["id"] == "P2P"


# -- 10. confidential lists in the metadata and in `none` rows; listening sockets --------------------

SECRET_SMILES = "O=C(NC1CCCCC1)c1ccc(Br)cc1F"
NEAR_SECRET = "O=C(NC1CCCC1)c1ccc(Br)cc1"


def test_a_confidential_list_is_named_only_on_a_hit_and_only_by_id(tmp_path: Path) -> None:
    conf = tmp_path / "national.csv"
    conf.write_text(f"id,name,smiles,cas\nN-17,Project Nightjar intermediate,{SECRET_SMILES},"
                    "50-00-0\n", encoding="utf-8")
    src = tmp_path / "in.smi"
    src.write_text(f"{SECRET_SMILES} hit\n{NEAR_SECRET} near\nCCO far\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = run("screen", str(src), "--extra-reference", str(conf), "-o", str(out), "--jobs",
                 "1")
    assert result.exit_code == 0, result.stderr
    rows = csv_rows(out)
    assert rows[0]["flag"] == "scheduled" and rows[0]["match_id"] == "N-17"
    assert rows[0]["match_name"] == "N-17"
    assert rows[1]["flag"] == "none" and "N-17" not in json.dumps(rows[1])
    plain = tmp_path / "plain.csv"
    assert run("screen", str(src), "-o", str(plain), "--jobs", "1").exit_code == 0
    keep = ("flag", "score", "match_id", "similarity", "reason")
    assert [{k: r[k] for k in keep} for r in rows[1:]] == \
        [{k: r[k] for k in keep} for r in csv_rows(plain)[1:]]
    meta_text = (tmp_path / "out.csv.meta.json").read_text(encoding="utf-8")
    for secret in ("Nightjar", SECRET_SMILES, "50-00-0"):
        assert secret not in meta_text
    for secret in ("Nightjar", "50-00-0"):
        assert secret not in out.read_text(encoding="utf-8")
    overlays = json.loads(meta_text)["reference_overlays"]
    assert [(o["name"], o["size"], len(o["sha256"])) for o in overlays] == [("national.csv", 1, 64)]

    decl = tmp_path / "d.csv"
    decl.write_text(f"declaration_id,smiles\nd1,{SECRET_SMILES}\nd2,CCO\n", encoding="utf-8")
    dout = tmp_path / "d_out.csv"
    result = run("declarations", str(decl), "--extra-reference", str(conf), "-o", str(dout),
                 "--no-progress")
    assert result.exit_code == 0, result.stderr
    dmeta = (tmp_path / "d_out.csv.meta.json").read_text(encoding="utf-8")
    assert "Nightjar" not in dmeta and "50-00-0" not in dmeta and SECRET_SMILES not in dmeta
    assert "Nightjar" not in dout.read_text(encoding="utf-8")


def _listening(pids: set[int]) -> list[str]:
    """Addresses of the TCP sockets that ``pids`` listen on (Linux /proc)."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] != "0A" or parts[9] not in inodes:      # 0A: LISTEN
                continue
            raw = bytes.fromhex(parts[1].split(":")[0])
            words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.append(socket.inet_ntop(family, words))
    return found


@pytest.mark.skipif(not LINUX, reason="reads listening sockets from /proc")
def test_a_local_dask_cluster_listens_on_this_machine_only() -> None:
    from precursor_screen.declarations.run import DaskExecutor
    from precursor_screen.declarations.verdict import DeclarationConfig
    from precursor_screen.reference import builtin_registry
    from precursor_screen.screen import ScreenParameters

    config = DeclarationConfig.create(builtin_registry().filter(), ScreenParameters(), [], False)
    with DaskExecutor(config, workers=2):
        pids = {os.getpid()}
        for _ in range(3):
            pids |= {c for p in list(pids) for c in children(p)}
        addresses = _listening(pids)
    assert addresses, "the cluster listens somewhere"
    assert all(a in ("127.0.0.1", "::1") for a in addresses), addresses


# -- 11. a 100,000-row --reference took 424 s (timed in benchmarks/bench_reference.py) ------------

def test_a_long_reference_list_is_screened_without_the_route_gate_with_the_same_flags(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib

    from precursor_screen.reference import builtin_registry, load_reference_file
    from precursor_screen.screen import Screener

    ref = tmp_path / "ref.csv"
    ref.write_text("id,name,smiles\n" + "".join(f"r{k},{k},{s}\n"
                                                 for k, (s, _) in enumerate(corpus(321))
                                                 if s != "C1CC("), encoding="utf-8")
    reg = builtin_registry().filter().merged(load_reference_file(str(ref)))
    screen_module = importlib.import_module("precursor_screen.screen")
    monkeypatch.setattr(screen_module, "GATE_MAX_TARGETS", 300)
    open_screener = Screener(reg)
    assert open_screener._route_gate is None and open_screener._gates is None
    monkeypatch.setattr(screen_module, "GATE_MAX_TARGETS", 10_000)
    gated = Screener(reg)
    assert gated._route_gate is not None
    queries = [s for s, _ in corpus(1200)[400:]]
    got = [(v.flag, round(v.score, 4), v.match_id) for v in open_screener.screen(queries)]
    want = [(v.flag, round(v.score, 4), v.match_id) for v in gated.screen(queries)]
    assert got == want


def test_a_long_reference_list_prepared_on_workers_screens_like_one_prepared_in_process(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Item 11's speed-up: from `reference.PARALLEL_ROWS` rows on, parsing and standardizing run
    on worker processes, which send each parent back as bytes (`StoredParent`), with the
    screen's per-substance work (`screen.prepare_parent`: fingerprints, building steps) when
    the loader is asked for it, as the command line does; without it, from
    `screen.PARALLEL_REFERENCE` on, the screener makes them on workers, and the substructure
    index is built from fingerprints and SMILES. The thresholds are lowered here so that a
    400-row list takes every path; the list and the verdicts must not change."""
    import importlib

    from precursor_screen.chem.standardize import StoredParent
    from precursor_screen.reference import load_reference_file
    from precursor_screen.screen import Screener, prepare_parent

    listed = tmp_path / "listed.csv"
    assert run("list", "--format", "csv", "-o", str(listed)).exit_code == 0
    lines = listed.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    assert "smiles" in header and "name" in header
    ref = tmp_path / "ref.csv"
    with open(ref, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "name", "smiles"])
        for row in csv.DictReader(lines):
            if row["smiles"]:
                writer.writerow([row["id"], row["name"], row["smiles"]])
        for k, (smi, _) in enumerate(corpus(500)[:300]):
            if smi != "C1CC(":
                writer.writerow([f"c{k}", f"corpus {k}", smi])
    serial = load_reference_file(str(ref))
    reference = importlib.import_module("precursor_screen.reference")
    screen_module = importlib.import_module("precursor_screen.screen")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(reference, "PARALLEL_ROWS", 50)
    parallel = load_reference_file(str(ref))
    prepared = load_reference_file(str(ref), prepare=prepare_parent)   # as the CLI loads it
    assert len(parallel) == len(serial) > 300
    assert any(s.is_inorganic for s in serial)    # permanganate, ...: kept as they are
    assert all(isinstance(s.parent, StoredParent) for s in parallel if s.parent is not None)
    assert [(s.id, s.smiles, s.parent.smiles, s.parent.key, s.parent.steps, s.is_inorganic)
            for s in parallel] == [(s.id, s.smiles, s.parent.smiles, s.parent.key,
                                    s.parent.steps, s.is_inorganic) for s in serial]
    assert all(s.parent.extra is not None for s in prepared if not s.is_inorganic)
    assert all(s.parent.extra is None for s in parallel if s.parent is not None)
    in_process = Screener(serial)
    monkeypatch.setattr(screen_module, "PARALLEL_REFERENCE", 50)
    monkeypatch.setattr(screen_module, "BIT_SLICE_ROWS", 50)
    on_workers = Screener(parallel)
    from_loading = Screener(prepared)
    assert on_workers._sizes == in_process._sizes == from_loading._sizes
    assert len(on_workers._builds) == len(in_process._builds) == len(from_loading._builds) > 0
    root = Path(__file__).resolve().parent.parent / "evaluation"
    queries = []
    for name in ("designer_precursors.tsv", "masks.tsv", "legitimate.tsv"):
        with open(root / name, encoding="utf-8", newline="") as fh:
            queries += [r["smiles"] for r in csv.DictReader(fh, delimiter="\t")][:120]
    got = [(v.flag, round(v.score, 4), v.match_id, v.reason) for v in on_workers.screen(queries)]
    want = [(v.flag, round(v.score, 4), v.match_id, v.reason) for v in in_process.screen(queries)]
    assert got == want
    assert [(v.flag, round(v.score, 4), v.match_id, v.reason)
            for v in from_loading.screen(queries)] == want
    assert sum(flag != "none" for flag, *_ in got) > 100


# -- 12. errors that named neither the row nor the file ----------------------------------------------

def test_a_truncated_gzip_names_the_file_and_the_line(tmp_path: Path) -> None:
    whole = gzip.compress("".join(f"{s} {i}\n" for s, i in corpus(2000)).encode())
    path = tmp_path / "cut.smi.gz"
    path.write_bytes(whole[: len(whole) // 2])
    result = run("screen", str(path), "-o", str(tmp_path / "out.csv"), "--jobs", "1")
    assert result.exit_code == 1
    assert f"{path}: cannot read after line" in result.stderr
    assert not (tmp_path / "out.csv").exists()


def test_a_broken_reference_file_names_its_line(tmp_path: Path) -> None:
    ref = tmp_path / "ref.csv"
    ref.write_text('name,smiles\nA,CCO\nB,"CCN\nC,CCC\nD,CCCC\n', encoding="utf-8")
    result = run("check", "CCO", "--reference", str(ref))
    assert result.exit_code == 1
    assert "ref.csv:3: malformed row" in result.stderr


def test_a_full_disk_names_the_output(tmp_path: Path) -> None:
    src = tmp_path / "in.smi"
    src.write_text("".join(f"{s} {i}\n" for s, i in corpus(3000)), encoding="utf-8")
    out = tmp_path / "out.csv"
    proc = subprocess.run([sys.executable, "-m", "precursor_screen", "screen", str(src), "-o",
                           str(out), "--jobs", "1"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, preexec_fn=_small_file_limit)
    assert proc.returncode == 1
    assert f"Error: {out}: cannot write" in proc.stderr and "unexpected" not in proc.stderr


def test_reader_counts_reconcile_with_rows_written(tmp_path: Path) -> None:
    from precursor_screen.io.text import InputStats
    from precursor_screen.io.writers import RowCountError, TableWriter
    from precursor_screen.results import SCREEN

    stats = InputStats(rows=3)
    out = tmp_path / "out.jsonl"
    with pytest.raises(RowCountError, match="2 rows written for 3 read"):
        with TableWriter(str(out), "jsonl", SCREEN, {}, expect_rows=lambda: stats.rows) as w:
            for i in range(2):
                w.write({c.name: i if c.type is int else "" for c in SCREEN})
    assert not out.exists()
