"""A deterministic corpus of hostile input for the screen and declarations readers and writers.

    python tests/fuzz_corpus.py DIR      # writes the files and DIR/expected.json

Each file mixes real molecules (from the golden corpus) with the classes of garbage a hostile or
careless sender produces: SMILES bombs (5,000-character chains, thousands of atoms, deep
nesting, ring-closure and fragment storms), binary junk, control characters, wrong encodings
(UTF-16, Latin-1 bytes, byte-order marks, CR-only line ends), malformed CSV (unbalanced
quotes, wrong field counts, quoted line breaks), malformed SDF (no ``M  END``, lying counts
lines, a 10,000-atom record, junk between records), oversized lines, gzip, and cells that a
spreadsheet would run as formulas. ``expected.json`` says how many rows each file holds: the
generator counts the rows it writes (a quoted line break does not start a row; every other
line, empty or junk, does), so a reader that loses or invents a row is caught. The same code
always writes the same bytes.
"""

from __future__ import annotations

import codecs
import gzip
import json
import random
import sys
from pathlib import Path

from rdkit import Chem, RDLogger

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "data" / "golden" / "corpus.smi"
SEED = 18

FORMULA_IDS = ("=1+1", "+SUM(A1:A9)", "-2+3", "@SUM(1)", "=HYPERLINK(\"http://x\")", "'=1",
               "''+x", "=cmd|' /C calc'!A0", "-", "+", "@", "=")


def _real(n: int, offset: int = 0) -> list[tuple[str, str]]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()[1:]
    return [tuple(x.split("\t", 1)) for x in lines[offset:offset + n]]  # type: ignore[misc]


def _bombs(rng: random.Random) -> list[str]:
    """SMILES that cost a parser dearly or exceed the limits."""
    return [
        "C" * 4999, "C" * 5001, "c1ccccc1" * 600, "C" * 1200, "[CH4]." * 1100 + "C",
        "C(" * 2000 + "C" + ")" * 2000, "C(" * 300 + "C" + ")" * 300,
        "".join(f"C{i % 9 + 1}" for i in range(900)), "C1" * 2 + "C" * 10,
        ".".join(["C"] * 900), "[13C]" * 1001, "C" + "=C" * 998, "C%99" * 50,
        "[" * 200 + "C" + "]" * 200, "C1CC" + "1" * 3000, "c1" * 500,
        "".join(rng.choice("CNOcn()[]=#123456789@+-.%") for _ in range(4000)),
    ]


def _junk_text(rng: random.Random, n: int) -> str:
    alphabet = ("abcXYZ0123456789!$%^&*()[]{}<>?/\\|~`" + "ÄéßøΩЖ中文😀\u202e\u200b"
                + "".join(chr(c) for c in range(1, 32) if c not in (9, 10, 13)))
    return "".join(rng.choice(alphabet) for _ in range(n))


def _junk_bytes(rng: random.Random, n: int, avoid: bytes = b"\r\n") -> bytes:
    return bytes(b for b in rng.randbytes(n * 2) if b not in avoid)[:n]


def _ident(rng: random.Random, k: int) -> str:
    r = rng.random()
    if r < 0.15:
        return rng.choice(FORMULA_IDS) + str(k)
    if r < 0.2:
        return _junk_text(rng, rng.randint(1, 30)).replace("\t", " ").strip() or f"j{k}"
    return f"m{k}"


def smi_rows(rng: random.Random, n_real: int, n_junk: int, offset: int = 0) -> list[bytes]:
    """Rows of a .smi file (no line ends), each exactly one row."""
    rows: list[bytes] = []
    for k, (smi, _) in enumerate(_real(n_real, offset)):
        rows.append(f"{smi} {_ident(rng, k)}".encode())
    for smi in _bombs(rng):
        rows.append(f"{smi} bomb".encode())
    for k in range(n_junk):
        kind = k % 9
        if kind == 0:
            rows.append(_junk_bytes(rng, rng.randint(1, 120)))
        elif kind == 1:
            rows.append(_junk_text(rng, rng.randint(1, 80)).encode("utf-8"))
        elif kind == 2:
            rows.append(b"")
        elif kind == 3:
            rows.append(b"   \t  ")
        elif kind == 4:
            rows.append(b"CCO id-with-bad-bytes-" + _junk_bytes(rng, 6, b"\r\n \t"))
        elif kind == 5:
            rows.append(f"{rng.choice(FORMULA_IDS)} formula-as-smiles".encode())
        elif kind == 6:
            rows.append(b"C\x00C nul")
        elif kind == 7:
            rows.append(("C" * rng.randint(1, 30) + "(" * rng.randint(0, 5)).encode()
                        + f" unbalanced{k}".encode())
        else:
            rows.append(f"{rng.choice(['CC(=O)', 'c1cc', '[Na+].[Cl-]', 'N#N', '[U]', '*'])}"
                        f" odd{k}".encode())
    rng.shuffle(rows)
    return rows


def _csv_quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def csv_rows(rng: random.Random, n_real: int, n_junk: int, sep: str = ",") -> list[str]:
    """Records of a CSV/TSV file with columns smiles, id, note (some span lines)."""
    rows: list[str] = []
    for k, (smi, _) in enumerate(_real(n_real, 3000)):
        ident, note = _ident(rng, k), "plain"
        r = rng.random()
        if r < 0.1:
            note = _csv_quote(f"two{sep}fields\nand a line break")
        elif r < 0.15:
            ident = _csv_quote(f"id with \"quotes\"{sep} and\r a CR")
        elif r < 0.2:
            ident = _csv_quote("\t=tab-formula")
        elif ident[:1] in "=+-@'" or sep in ident or '"' in ident:
            ident = _csv_quote(ident)
        rows.append(sep.join((smi, ident, note)))
    for k in range(n_junk):
        kind = k % 8
        if kind == 0:   # an unbalanced quote: this line is one row, the next lines their own
            rows.append(sep.join(("CCO", f'"open{k}', "never closed")))
        elif kind == 1:
            rows.append(sep.join(("CCN", f"extra{k}", "x", "y", "z")))
        elif kind == 2:
            rows.append(f"CCC{sep}missing{k}")
        elif kind == 3:
            rows.append(_junk_bytes(rng, 60, b"\r\n\"").decode("latin-1"))
        elif kind == 4:
            rows.append(sep.join((rng.choice(FORMULA_IDS), rng.choice(FORMULA_IDS),
                                  rng.choice(FORMULA_IDS))))
        elif kind == 5:
            rows.append("")
        elif kind == 6:
            rows.append(sep.join((rng.choice(_bombs(rng)[:8]), f"bomb{k}", "x")))
        else:
            rows.append(sep.join(("C" + 'C"C' * 3, f"stray-quote{k}", "x")))
    rng.shuffle(rows)
    return rows


def _molblock(smiles: str, title: str) -> str | None:
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    block = Chem.MolToMolBlock(mol)
    return title + block[block.index("\n"):]


def _v3000(n: int) -> str:
    side = int(n ** 0.5)
    bonds = [(k, k + side) for k in range(n - side)] + [(k, k + 1) for k in range(n - 1)
                                                        if (k + 1) % side]
    lines = ["grid", "  fuzz", "", "  0  0  0     0  0            999 V3000",
             "M  V30 BEGIN CTAB", f"M  V30 COUNTS {n} {len(bonds)} 0 0 0", "M  V30 BEGIN ATOM"]
    lines += [f"M  V30 {i + 1} C {i % side:.1f} {i // side:.1f} 0 0" for i in range(n)]
    lines += ["M  V30 END ATOM", "M  V30 BEGIN BOND"]
    lines += [f"M  V30 {k + 1} 1 {a + 1} {b + 1}" for k, (a, b) in enumerate(bonds)]
    lines += ["M  V30 END BOND", "M  V30 END CTAB", "M  END"]
    return "\n".join(lines) + "\n"


def sdf_records(rng: random.Random, n_real: int, n_junk: int) -> list[str]:
    """SDF records (each without its $$$$ line)."""
    records: list[str] = []
    for k, (smi, _) in enumerate(_real(n_real, 5000)):
        block = _molblock(smi, _ident(rng, k).replace("$", "S"))
        if block is None:
            records.append(f"unparsable{k}\n  fuzz\n\n")
            continue
        if k % 7 == 0:
            block += f"> <note>\n{rng.choice(FORMULA_IDS)}\n\n"
        records.append(block)
    records.append(_v3000(10_000))
    for k in range(n_junk):
        kind = k % 5
        if kind == 0:
            records.append(f"no-end{k}\n  fuzz\n\n  1  0  0  0  0  0  0  0  0  0999 V2000\n")
        elif kind == 1:  # the counts line says 999 atoms, three follow
            records.append(f"liar{k}\n  fuzz\n\n999  0  0  0  0  0  0  0  0  0999 V2000\n"
                           + "    0.0000    0.0000    0.0000 C   0  0\n" * 3 + "M  END\n")
        elif kind == 2:
            records.append(_junk_bytes(rng, 200, b"\r\n$").decode("latin-1") + "\n")
        elif kind == 3:
            records.append("\n".join(_junk_text(rng, 40).replace("$", "S") for _ in range(5))
                           + "\n")
        else:
            records.append("")
    rng.shuffle(records)
    return records


def declaration_rows(rng: random.Random, n: int) -> list[str]:
    """Records of a declarations CSV (the seven default columns)."""
    cas = ("64-17-5", "67-64-1", "103-79-7", "4468-48-8", "50-00-0", "12-34-5", "")
    rows = []
    for k in range(n):
        kind = k % 10
        fields = [f"D{k}", rng.choice(("2914.31.00", "2939.99", "", "=1+2", "abc")),
                  rng.choice(cas), rng.choice(("ethanol", "acetone", "P2P", "", "+x", "-")),
                  rng.choice(("", "CCO", "CC(=O)Cc1ccccc1", "C1CC(", "C" * 1200)),
                  rng.choice(("bulk", "\"drums, 200 l\"", "=HYPERLINK(1)", "")),
                  rng.choice(("10", "-1.5", "1e3", "", "@2"))]
        if kind == 0:
            fields[5] = '"unbalanced description'
        elif kind == 1:
            fields[0] = "=" + fields[0]
        elif kind == 2:
            fields.append("extra")
        elif kind == 3:
            fields[3] = _junk_bytes(rng, 20, b"\r\n\",").decode("latin-1")
        elif kind == 4:
            fields[5] = '"line one\nline two"'
        rows.append(",".join(fields))
    return rows


def make_corpus(directory: str | Path) -> dict[str, int]:
    """Write every file into ``directory`` and return {file name: rows it holds}."""
    RDLogger.DisableLog("rdApp.*")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    expected: dict[str, int] = {}

    rows = smi_rows(rng, 2500, 6000)
    rows.insert(rng.randrange(len(rows)), b"C" * (4 * 1024 * 1024 + 10) + b" huge")
    (out / "fuzz.smi").write_bytes(b"\n".join(rows) + b"\n")
    expected["fuzz.smi"] = len(rows)

    records = csv_rows(rng, 1500, 4000)
    (out / "fuzz.csv").write_text("smiles,id,note\n" + "\n".join(records) + "\n",
                                  encoding="utf-8", newline="")
    expected["fuzz.csv"] = len(records)
    records = csv_rows(rng, 300, 700, sep="\t")
    (out / "fuzz.tsv").write_text("smiles\tid\tnote\n" + "\n".join(records) + "\n",
                                  encoding="utf-8", newline="")
    expected["fuzz.tsv"] = len(records)

    blocks = sdf_records(rng, 1000, 1000)
    (out / "fuzz.sdf").write_text("".join(b + "$$$$\n" for b in blocks), encoding="utf-8",
                                  newline="")
    expected["fuzz.sdf"] = len(blocks)

    rows = smi_rows(rng, 300, 200, offset=4000)
    (out / "fuzz_utf16.smi").write_bytes(b"\r\n".join(rows).decode("utf-8", "replace")
                                         .encode("utf-16") + "\r\n".encode("utf-16-le"))
    expected["fuzz_utf16.smi"] = len(rows)
    rows = smi_rows(rng, 300, 200, offset=4300)
    (out / "fuzz_cr.smi").write_bytes(b"\r".join(rows) + b"\r")      # old Mac line ends
    expected["fuzz_cr.smi"] = len(rows)
    rows = smi_rows(rng, 300, 200, offset=4600)
    (out / "fuzz_latin1.smi").write_bytes(b"\n".join(r + " lot \xe9\xe8\xff".encode("latin-1")
                                                     if r.strip() else r for r in rows) + b"\n")
    expected["fuzz_latin1.smi"] = len(rows)
    records = csv_rows(rng, 300, 200)
    (out / "fuzz_bom.csv").write_bytes(codecs.BOM_UTF8 + ("smiles,id,note\r\n"
                                       + "\r\n".join(records) + "\r\n").encode("utf-8"))
    expected["fuzz_bom.csv"] = len(records)
    rows = smi_rows(rng, 500, 500, offset=6000)
    with gzip.GzipFile(out / "fuzz.smi.gz", "wb", mtime=0) as fh:
        fh.write(b"\n".join(rows) + b"\n")
    expected["fuzz.smi.gz"] = len(rows)

    records = declaration_rows(rng, 2500)
    (out / "fuzz_declarations.csv").write_text(
        "declaration_id,cn_code,cas,name,smiles,description,quantity_kg\n"
        + "\n".join(records) + "\n", encoding="utf-8", newline="")
    expected["fuzz_declarations.csv"] = len(records)

    (out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n",
                                       encoding="utf-8")
    return expected


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/fuzz_corpus.py DIR")
    found = make_corpus(sys.argv[1])
    print(f"{sum(found.values()):,} rows in {len(found)} files: {found}")
