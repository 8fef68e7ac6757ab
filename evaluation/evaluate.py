"""Detection quality of the screen on the evaluation sets, beside the plain-Tanimoto baseline.

    python evaluation/evaluate.py [--jobs N] [--markdown] [--moses N]

Two modes, each on every set:

* default: the built-in list, and the list as of 2012-12-31 (every dated piece of knowledge as of
  that day: listed substances, generic groups, controlled drugs and drug families);
* strict time split: the list as of 2012-12-31 given as a reference file's registry, knowledge as
  of 2012-12-31, generic groups off (they were drafted knowing the later listings): could the
  rules alone have caught what was scheduled later? Scored on the designer precursors scheduled
  after 2012-12-31.

Sets (``evaluation/README.md``): real designer precursors (``designer_precursors.tsv``, and the
literature and seizure cases of ``real_cases.tsv``), masked forms built from named and unnamed
mechanisms with look-alike twins that do not convert (``masks.tsv``: recall and twin flags on the
development and the held-out mechanisms apart), pre-precursors of controlled drugs
(``pre_precursors.tsv``), uncontested legitimate chemicals (``legitimate.tsv``, and the stress set
``legitimate_extra.tsv``), hard near-misses (``near_misses.tsv``: traded look-alikes, and
containment traps that hold a listed skeleton with a different attachment atom). ``--moses N``
also screens the first N MOSES molecules (``benchmarks/moses.py``) and lists every
``drug-precursor`` row and 30 random flagged rows. The README figures come from this script.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPLIT = dt.date(2012, 12, 31)
FLAGGED = "flagged"


def read_tsv(name: str) -> list[dict[str, str]]:
    with open(HERE / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def screened(screener: Any, rows: list[dict[str, str]], jobs: int) -> list[Any]:
    from precursor_screen.io.readers import Record

    records = [Record(i, r["id"], r["smiles"]) for i, r in enumerate(rows)]
    return list(screener.screen(records, jobs=jobs))


def is_flagged(v: Any) -> bool:
    from precursor_screen.types import Flag

    return v.flag not in (None, Flag.NONE)


def baseline(reference: Any, rows: list[dict[str, str]]) -> list[float]:
    """Max Morgan radius-2 (2048 bits) Tanimoto of each row to the list: the naive screen."""
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    ref = [gen.GetFingerprint(Chem.MolFromSmiles(s.smiles)) for s in reference.structures()
           if not s.is_inorganic]
    out = []
    for r in rows:
        mol = Chem.MolFromSmiles(r["smiles"])
        out.append(max(DataStructs.BulkTanimotoSimilarity(gen.GetFingerprint(mol), ref)) if mol else 0.0)
    return out


def trap_flag(row: dict[str, str], v: Any) -> bool:
    """A containment trap flagged on the listed substance it only looks like."""
    return is_flagged(v) and v.match_id == row["listed_substance"]


def rate(hits: list[bool]) -> tuple[int, int]:
    return (sum(hits), len(hits))


def make_screener(label: str) -> Any:
    """The screener of one evaluation mode."""
    from precursor_screen.reference import builtin_registry
    from precursor_screen.screen import Screener, ScreenParameters

    if label == "built-in":
        return Screener()
    if label == "as of 2012-12-31":
        return Screener(as_of=SPLIT)
    # strict: the 2012 list as a reference (replacing the listed substances only), knowledge as
    # of 2012-12-31, no generic groups or drug families (--reference --as-of --no-groups)
    return Screener(builtin_registry().filter(as_of=SPLIT), as_of=SPLIT,
                    parameters=ScreenParameters(generic_groups=False))


MODES = ("built-in", "as of 2012-12-31", "strict 2012")


def evaluate(jobs: int = 1) -> dict[str, Any]:
    from precursor_screen.reference import builtin_registry

    designer = read_tsv("designer_precursors.tsv")
    real = read_tsv("real_cases.tsv")
    legit = read_tsv("legitimate.tsv")
    extra = read_tsv("legitimate_extra.tsv")
    pre = read_tsv("pre_precursors.tsv")
    masks = read_tsv("masks.tsv")
    near = read_tsv("near_misses.tsv")
    registry = builtin_registry()
    out: dict[str, Any] = {"n_designer": len(designer), "n_real": len(real), "n_legit": len(legit),
                           "n_pre": len(pre), "n_legit_extra": len(extra), "n_masks": len(masks),
                           "n_near": len(near), "modes": {}}
    later = [i for i, r in enumerate(designer)
             if r["scheduled_from"] and r["scheduled_from"] > SPLIT.isoformat()]
    # a trap that is itself a documented designer precursor (L-PAC, 1-phenyl-1,2-propanedione:
    # pre-precursors of ephedrine) is no false alarm whatever the screen says of it
    positive = ({r["inchikey"] for r in designer} | {r["inchikey"] for r in real}
                | {r["inchikey"] for r in masks if r["converts"] == "yes"})
    traps = [i for i, r in enumerate(near)
             if r["expected"] == "not contains" and r["inchikey"] not in positive]
    look_alikes = [i for i, r in enumerate(near) if r["kind"] == "legitimate"]
    for label in MODES:
        screener = make_screener(label)
        dv = screened(screener, designer, jobs)
        d_hit = [is_flagged(v) for v in dv]
        res: dict[str, Any] = {
            "later_scheduled": rate([d_hit[i] for i in later]),
            "later_missed": [(designer[i]["id"], designer[i]["name"]) for i in later
                             if not d_hit[i]],
        }
        if label == "strict 2012":
            out["modes"][label] = res
            continue
        rv = screened(screener, real, jobs)
        lv = screened(screener, legit, jobs)
        xv = screened(screener, extra, jobs)
        pv = screened(screener, pre, jobs)
        mv = screened(screener, masks, jobs)
        nv = screened(screener, near, jobs)
        r_hit = [is_flagged(v) for v in rv]
        l_hit = [is_flagged(v) for v in lv]
        x_hit = [is_flagged(v) for v in xv]
        p_hit = [is_flagged(v) for v in pv]
        per_relation: dict[str, list[bool]] = defaultdict(list)
        for r, hit in zip(designer, d_hit):
            per_relation[r["relation"]].append(hit)
        real_relation: dict[str, list[bool]] = defaultdict(list)
        for r, hit in zip(real, r_hit):
            real_relation[r["relation"]].append(hit)
        mask_sets: dict[str, list[bool]] = defaultdict(list)
        for r, v in zip(masks, mv):
            kind = "positive" if r["converts"] == "yes" else "twin"
            mask_sets[f"{r['split']} {kind}"].append(is_flagged(v))
        reference = registry.filter(as_of=None if label == "built-in" else SPLIT)
        base_d = baseline(reference, designer)
        base_l = baseline(reference, legit)
        res.update({
            "recall": rate(d_hit),
            "recall_real": rate(r_hit),
            "recall_all_real": rate(d_hit + r_hit),
            "false_alarms": rate(l_hit),
            "false_alarms_extra": rate(x_hit),
            # a trap is wrongly flagged when the flag rests on the listed substance it only
            # looks like; a flag for another reason (L-PAC: a pre-precursor of ephedrine) is not
            "near_miss_flags": rate([is_flagged(nv[i]) for i in look_alikes]
                                    + [trap_flag(near[i], nv[i]) for i in traps]),
            "hard_legit_flags": rate([is_flagged(nv[i]) for i in look_alikes]),
            "trap_flags": rate([trap_flag(near[i], nv[i]) for i in traps]),
            "trap_any_flags": rate([is_flagged(nv[i]) for i in traps]),
            "trap_controls": rate([is_flagged(v) for r, v in zip(near, nv)
                                   if r["expected"] == "converts (control)"]),
            "masks": {k: rate(v) for k, v in sorted(mask_sets.items())},
            "recall_by_relation": {k: rate(v) for k, v in sorted(per_relation.items())},
            "real_by_relation": {k: rate(v) for k, v in sorted(real_relation.items())},
            "pre_recall": rate(p_hit),
            "pre_recall_by_steps": {k: (sum(h for r, h in zip(pre, p_hit) if r["steps"] == k),
                                        sum(r["steps"] == k for r in pre)) for k in ("1", "2")},
            "legit_drug_flags": sum(v.flag is not None and v.flag.value == "drug-precursor"
                                    for v in (*lv, *xv)),
            "baseline": {t: (sum(x >= t for x in base_d) / len(base_d),
                             sum(x >= t for x in base_l) / len(base_l)) for t in (0.4, 0.5, 0.7)},
            "baseline_later": {t: sum(base_d[i] >= t for i in later) / len(later)
                               for t in (0.4, 0.5, 0.7)},
            "missed": [(r["id"], r["name"]) for r, h in zip(designer, d_hit) if not h],
            "real_missed": [(r["id"], r["name"], v.reason) for r, v, h in zip(real, rv, r_hit)
                            if not h],
            "false_alarm_rows": [(r["id"], r["name"], v.flag.value, v.reason)
                                 for r, v, h in zip(legit, lv, l_hit) if h],
            "extra_alarm_rows": [(r["id"], r["name"], v.flag.value, v.reason)
                                 for r, v, h in zip(extra, xv, x_hit) if h],
            "near_miss_rows": [(near[i]["id"], near[i]["name"], nv[i].flag.value, nv[i].reason)
                               for i in (*look_alikes, *traps) if is_flagged(nv[i])],
            "mask_misses": [(r["id"], r["split"], r["mechanism"], r["name"])
                            for r, v in zip(masks, mv) if r["converts"] == "yes"
                            and not is_flagged(v)],
            "twin_flags": [(r["id"], r["split"], r["name"], v.flag.value, v.reason)
                           for r, v in zip(masks, mv) if r["converts"] == "no" and is_flagged(v)],
            "pre_missed": [(r["id"], r["name"], r["parent_id"]) for r, h in zip(pre, p_hit)
                           if not h],
        })
        out["modes"][label] = res
    return out


def moses(n: int, jobs: int, seed: int = 16) -> dict[str, Any]:
    """Flags on the first ``n`` MOSES molecules: counts, every drug-precursor row, 30 random
    flagged rows (seeded) for a chemist to read."""
    sys.path.insert(0, str(HERE.parent / "benchmarks"))
    from moses import moses_smiles  # noqa: E402 - benchmarks/ is not a package

    from precursor_screen.screen import Screener

    smiles = moses_smiles(n)
    rows = [{"id": f"moses:{i}", "smiles": s} for i, s in enumerate(smiles)]
    verdicts = screened(Screener(), rows, jobs)
    flags = Counter(v.flag.value if v.flag else "unreadable" for v in verdicts)
    flagged = [v for v in verdicts if is_flagged(v)]
    sample = random.Random(seed).sample(flagged, min(30, len(flagged)))
    return {"n": len(smiles), "flags": dict(flags),
            "drug_precursor": [(v.id, v.input_smiles, v.reason) for v in verdicts
                               if v.flag is not None and v.flag.value == "drug-precursor"],
            "sample": [(v.id, v.input_smiles, v.flag.value, round(v.score, 3), v.similarity,
                        v.reason) for v in sorted(sample, key=lambda v: v.row)]}


def _pct(x: tuple[int, int]) -> str:
    return f"{x[0]}/{x[1]} ({x[0] / x[1]:.1%})" if x[1] else "0/0"


def markdown(res: dict[str, Any]) -> str:
    a, b = res["modes"]["built-in"], res["modes"]["as of 2012-12-31"]
    strict = res["modes"]["strict 2012"]
    lines = [f"Designer precursors: {res['n_designer']} (`designer_precursors.tsv`) and "
             f"{res['n_real']} literature and seizure cases (`real_cases.tsv`); uncontested "
             f"legitimate chemicals: {res['n_legit']}; hard near-misses: "
             f"{a['near_miss_flags'][1]} (`near_misses.tsv`); masked forms and twins: "
             f"{res['n_masks']} (`masks.tsv`).", "",
             "| | built-in list | list as of 2012-12-31 |", "|---|---|---|"]
    rows = [("designer precursors flagged", "recall"),
            ("literature and seizure cases flagged", "recall_real"),
            ("all real designer precursors flagged", "recall_all_real"),
            ("uncontested legitimate chemicals flagged", "false_alarms"),
            ("extra legitimate ketones, lactones, diols, amines flagged", "false_alarms_extra"),
            ("hard near-misses flagged", "near_miss_flags"),
            ("  of which traded look-alikes", "hard_legit_flags"),
            ("  of which containment traps (flagged on the substance they resemble)",
             "trap_flags"),
            ("containment traps flagged for any reason", "trap_any_flags"),
            ("containment-trap controls (real masks) flagged", "trap_controls"),
            ("pre-precursors of controlled drugs flagged", "pre_recall")]
    for title, key in rows:
        lines.append(f"| {title} | {_pct(a[key])} | {_pct(b[key])} |")
    for key in a["masks"]:
        split, kind = key.split(" ")
        title = (f"masked forms caught, {split} mechanisms" if kind == "positive"
                 else f"look-alike twins flagged, {split} mechanisms")
        lines.append(f"| {title} | {_pct(a['masks'][key])} | {_pct(b['masks'][key])} |")
    lines.append(f"| drug-precursor flags on legitimate + extra | {a['legit_drug_flags']} | "
                 f"{b['legit_drug_flags']} |")
    lines += ["", "Recall per relation type (built-in list / list as of 2012-12-31):", "",
              "| set | relation | built-in | as of 2012 |", "|---|---|---|---|"]
    for set_key, name in (("recall_by_relation", "designer"), ("real_by_relation", "real cases")):
        for rel in a[set_key]:
            x, y = a[set_key][rel], b[set_key][rel]
            lines.append(f"| {name} | {rel} | {x[0]}/{x[1]} | {y[0]}/{y[1]} |")
    hit = strict["later_scheduled"]
    lines += ["", f"Time split, designer precursors scheduled after 2012-12-31: the list as of "
              f"2012-12-31 flags {_pct(b['later_scheduled'])}; the strict back-test (that list as "
              f"a reference, knowledge as of 2012-12-31, generic groups off) {_pct(hit)}; plain "
              "Tanimoto to that list reaches "
              + ", ".join(f"{v:.0%} at {t}" for t, v in b["baseline_later"].items()) + ".", "",
              "Plain Tanimoto baseline (recall on designer precursors / flags on legitimate):", "",
              "| list | >= 0.4 | >= 0.5 | >= 0.7 |", "|---|---|---|---|"]
    for label, r in (("built-in", a), ("as of 2012-12-31", b)):
        bl = r["baseline"]
        lines.append(f"| {label} | " + " | ".join(f"{bl[t][0]:.0%} / {bl[t][1]:.1%}"
                                                 for t in (0.4, 0.5, 0.7)) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--markdown", action="store_true", help="the tables only")
    ap.add_argument("--moses", type=int, default=0, metavar="N",
                    help="also screen the first N MOSES molecules")
    args = ap.parse_args()
    res = evaluate(args.jobs)
    print(markdown(res))
    if not args.markdown:
        for label, r in res["modes"].items():
            print(f"\n## {label}")
            for key in ("later_missed", "missed", "real_missed", "false_alarm_rows",
                        "extra_alarm_rows", "near_miss_rows", "mask_misses", "twin_flags",
                        "pre_missed"):
                if key in r:
                    print(f"{key}:", *r[key], sep="\n  ")
    if args.moses:
        m = moses(args.moses, args.jobs)
        print(f"\n## MOSES, first {m['n']}\nflags: {m['flags']}")
        print("drug-precursor rows:", *m["drug_precursor"], sep="\n  ")
        print("30 random flagged rows:", *m["sample"], sep="\n  ")


if __name__ == "__main__":
    sys.exit(main())
