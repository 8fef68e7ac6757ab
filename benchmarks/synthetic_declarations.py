"""Deterministic synthetic trade declarations, for benchmarks and tests (never for a verdict).

The mix imitates a customs export of chemical declarations: a few bulk chemicals dominate
(Zipf-distributed over the traded chemicals of the bundled table and the listed Category 2/3
substances), most rows carry a CAS number and a CN code, some a name, few a structure; listed
Category 1 substances and designer precursors are rare; about 10% of rows are unresolvable or
garbage (empty, wrong check digit, a valid CAS number no table knows, filler text, a broken
SMILES, binary junk). The same ``seed`` and ``n`` always give the same rows.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from precursor_screen.declarations.resolve import load_bundled_table
from precursor_screen.declarations.schema import FIELDS
from precursor_screen.reference import builtin_registry

__all__ = ["generate", "write_csv", "write_parquet", "GARBAGE_SHARE"]

GARBAGE_SHARE = 0.10
_BULK_FIRST = ("67-64-1", "64-17-5", "67-56-1", "108-88-3", "67-63-0", "141-78-6", "64-19-7",
               "1310-73-2", "7647-01-0", "7664-93-9", "7697-37-2", "78-93-3", "107-21-1",
               "57-55-6", "110-54-3", "75-09-2", "1330-20-7", "7732-18-5", "497-19-8", "77-92-9")
_GRADES = ("", "TECH", "TECHNICAL GRADE", "99%", "99.5%", "PURE", "USP", "FOR SYNTHESIS", "AR")
_PACKS = ("IN DRUMS", "IN IBC", "200L DRUMS", "25KG BAGS", "BULK", "IN BOTTLES", "ISO TANK", "")
_JUNK_NAMES = ("MISC CHEMICALS", "SAMPLE", "CHEMICAL PRODUCT", "SEE INVOICE", "N/A", "AS PER LIST",
               "ORGANIC INTERMEDIATE", "LAB REAGENTS", "PHARMA RAW MATERIAL", "???", "-")
_CONTROL = "".join(chr(c) for c in range(1, 32) if c not in (10, 13))  # CR/LF would split the row
_BROKEN_SMILES = ("C1CC", "CC(=O", "c1cccc1", "XYZ", "C[N](C)(C)(C)C", "CC((C)")


def _catalog() -> tuple[list[tuple[str, str, str, str]], list[tuple[str, str, str, str]],
                        list[tuple[str, str, str, str]]]:
    """(cas, name, cn_code, smiles) lists: traded chemicals, listed substances, designer forms."""
    traded, designer = [], []
    for entry, cas, _names in load_bundled_table():
        if cas and entry.table == "bundled":
            traded.append((cas[0], entry.name, entry.cn_code, entry.smiles))
        elif not cas and entry.cn_code == "" and entry.name and entry.smiles:
            designer.append(("", entry.name, "", entry.smiles))
    listed = [(s.cas[0], s.name, s.cn_codes[0] if s.cn_codes else "", s.smiles)
              for s in builtin_registry().filter() if s.cas and s.smiles]
    return traded, listed, designer


def generate(n: int, seed: int = 0) -> Iterator[dict[str, str]]:
    """Yield ``n`` declaration rows (dicts over FIELDS, all text)."""
    rng = random.Random(seed)
    traded, listed, designer = _catalog()
    bulk = {c: i for i, c in enumerate(_BULK_FIRST)}
    listed_bulk = [x for x in listed if x[0] in bulk]
    listed_cat1 = [x for x in listed if x[0] not in bulk]
    pool = sorted(traded + listed_bulk, key=lambda x: (bulk.get(x[0], len(bulk)), x[0]))
    head, tail = pool[:len(bulk)], pool[len(bulk):]
    rng.shuffle(tail)
    pool = head + tail
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(pool))]
    designer_names = [d for d in designer if "glycid" in d[1].lower() or "piperid" in d[1].lower()
                      or "phenylaceto" in d[1].lower() or d[1].startswith(("P2NP", "1-Phenyl"))]
    for i in range(n):
        decl = {f: "" for f in FIELDS}
        decl["declaration_id"] = f"EX{seed:02d}-{i:08d}"
        decl["quantity_kg"] = f"{rng.lognormvariate(6, 1.5):.1f}"
        u = rng.random()
        if u < GARBAGE_SHARE:
            _garbage(decl, rng, pool, weights)
        elif u < GARBAGE_SHARE + 0.003:      # a listed Category 1 substance, declared plainly
            _declare(decl, rng, rng.choice(listed_cat1))
        elif u < GARBAGE_SHARE + 0.005:      # a designer precursor, by name or structure
            item = rng.choice(designer_names or designer)
            if rng.random() < 0.5:
                decl["name"] = item[1]
            else:
                decl["smiles"] = item[3]
            decl["cn_code"] = rng.choice(("2918 99 90", "2932 99 00", "2914 39 00", "2933 39 99", ""))
            decl["description"] = "ORGANIC INTERMEDIATE"
        elif u < GARBAGE_SHARE + 0.006:      # a declaration that contradicts itself
            a, b = rng.choices(pool, weights, k=2)
            _declare(decl, rng, a)
            decl["name"] = b[1]
        else:
            _declare(decl, rng, rng.choices(pool, weights)[0])
        yield decl


def _declare(decl: dict[str, str], rng: random.Random, item: tuple[str, str, str, str]) -> None:
    cas, name, cn, smiles = item
    decl["cn_code"] = cn if rng.random() < 0.9 else ""
    r = rng.random()
    if r < 0.55:
        decl["cas"] = cas
    elif r < 0.80:
        decl["cas"], decl["name"] = cas, name
    elif r < 0.95:
        decl["name"] = name if rng.random() < 0.7 else f"{name.upper()} {rng.choice(_GRADES)}".strip()
    else:
        decl["smiles"] = smiles
        decl["cas"] = cas if rng.random() < 0.5 else ""
    decl["description"] = " ".join(x for x in (name.upper(), rng.choice(_GRADES), rng.choice(_PACKS)) if x)


def _garbage(decl: dict[str, str], rng: random.Random, pool: list[Any], weights: list[float]) -> None:
    kind = rng.randrange(6)
    if kind == 0:        # nothing declared but an id
        decl["description"] = rng.choice(("", "", "GOODS"))
    elif kind == 1:      # a known CAS number with its check digit wrong
        cas = rng.choices(pool, weights)[0][0]
        decl["cas"] = cas[:-1] + str((int(cas[-1]) + rng.randrange(1, 10)) % 10)
        decl["cn_code"] = rng.choices(pool, weights)[0][2]
    elif kind == 2:      # a valid CAS number no table knows
        body = str(rng.randrange(10_000, 9_999_999))
        digits = body[::-1]
        check = sum((k + 1) * int(d) for k, d in enumerate(digits)) % 10
        decl["cas"] = f"{body[:-2]}-{body[-2:]}-{check}"
        decl["description"] = "CHEMICAL PRODUCT"
    elif kind == 3:      # filler text as the name
        decl["name"] = rng.choice(_JUNK_NAMES)
        decl["cn_code"] = rng.choice(("3824 99 96", "2942 00 00", "", "9999"))
    elif kind == 4:      # a broken structure
        decl["smiles"] = rng.choice(_BROKEN_SMILES)
    else:                # binary junk and mojibake
        decl["name"] = "".join(rng.choice(_CONTROL) if rng.random() < 0.3 else chr(rng.randrange(0x80, 0x2FF))
                               for _ in range(rng.randrange(3, 15)))
        decl["cas"] = rng.choice(("", "n/a", "###", "12-34"))


def write_csv(path: str, n: int, seed: int = 0) -> None:
    """Write ``n`` generated rows to a CSV file with the default column names."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(generate(n, seed))


def write_parquet(path: str, n: int, seed: int = 0, rows_per_file: int | None = None) -> list[str]:
    """Write ``n`` rows as Parquet: one file, or a directory of files of ``rows_per_file`` rows."""
    def table(rows: list[dict[str, str]]) -> Any:
        return pa.table({f: [r[f] for r in rows] for f in FIELDS})

    if rows_per_file is None:
        pq.write_table(table(list(generate(n, seed))), path)
        return [path]
    os.makedirs(path, exist_ok=True)
    out, batch, k = [], [], 0
    for row in generate(n, seed):
        batch.append(row)
        if len(batch) == rows_per_file:
            out.append(os.path.join(path, f"part-{k:05d}.parquet"))
            pq.write_table(table(batch), out[-1])
            batch, k = [], k + 1
    if batch:
        out.append(os.path.join(path, f"part-{k:05d}.parquet"))
        pq.write_table(table(batch), out[-1])
    return out
