"""Measure `group draft` on real families: draft from half of each family, test on the other half.

For every family of ``families.tsv`` the rows marked ``half = draft`` (the 1st, 3rd, 5th ...
member as listed) are given to :func:`precursor_screen.survey.draft.draft_groups`; the rows
marked ``held-out`` are never seen. Per family the *best* candidate is the top-ranked one that
catches no chemical of the bundled legitimate set (``survey/data/legitimate.tsv``, a copy of
``legitimate.tsv``); when the examples split into several families, the best of each counts
(their union). Reported:

* coverage: held-out members that are members of the best candidate(s);
* collateral on the bundled set (zero by the definition of "best"), and on the held-out
  legitimate set: ``legitimate_extra.tsv`` and ``legitimate_hard.tsv`` (and any other
  ``legitimate_*.tsv`` here), less anything also in the bundled set;
* with ``--index DIR``: library compounds the best candidate captures.

``--swap`` drafts from the other half (a second, independent split of the same families).

    python evaluation/evaluate_drafting.py [--swap] [--index DIR] [--json OUT]

Run from the checkout (or with the package installed). The bar (issue 21): coverage >= 80% of
each family's held-out half, held-out legitimate chemicals flagged <= 0.1%.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from precursor_screen.chem.standardize import parent_or_none  # noqa: E402
from precursor_screen.rules.groups import GroupSet  # noqa: E402
from precursor_screen.survey.draft import Knowledge, draft_groups  # noqa: E402
from precursor_screen.survey.library import LibraryIndex  # noqa: E402

FAMILIES = HERE / "families.tsv"


def _tsv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def held_out_legitimate() -> list[dict[str, str]]:
    """The held-out legitimate chemicals: every legitimate_*.tsv here but the bundled set,
    deduplicated by InChIKey, less what the bundled set holds."""
    bundled = {r["inchikey"] for r in _tsv(HERE / "legitimate.tsv")}
    out, seen = [], set()
    for path in sorted(HERE.glob("legitimate_*.tsv")):
        for r in _tsv(path):
            if r["inchikey"] in bundled or r["inchikey"] in seen:
                continue
            seen.add(r["inchikey"])
            out.append(dict(r, file=path.name))
    return out


def evaluate(index_dir: str | None = None, swap: bool = False) -> dict:
    families: dict[str, list[dict[str, str]]] = {}
    for r in _tsv(FAMILIES):
        families.setdefault(r["family"], []).append(r)
    legit = [(r, parent_or_none(r["smiles"])) for r in held_out_legitimate()]
    library = LibraryIndex(index_dir) if index_dir else None
    knowledge = Knowledge()
    results = []
    for name, members in families.items():
        draft_half = "held-out" if swap else "draft"
        drafting = [(r["id"], r["smiles"]) for r in members if r["half"] == draft_half]
        held = [r for r in members if r["half"] != draft_half]
        start = time.perf_counter()
        result = draft_groups(drafting, knowledge=knowledge, library=library)
        seconds = time.perf_counter() - start
        best = [f.best for f in result.families if f.best is not None]
        groups = [(c, c.group) for c in best]
        gsets = [GroupSet([g]) for _, g in groups]

        def member(std) -> bool:
            return std is not None and any(gs.is_member(std, g) for gs, (_, g) in
                                           zip(gsets, groups))

        covered = [r for r in held if member(parent_or_none(r["smiles"]))]
        flagged = [r for r, std in legit if member(std)]
        results.append({
            "family": name, "drafted_from": len(drafting), "held_out": len(held),
            "covered": len(covered), "coverage": len(covered) / len(held) if held else 1.0,
            "missed": [f"{r['id']} {r['name']}" for r in held if r not in covered],
            "families_found": len(result.families),
            "best": [{"id": c.group.id, "level": c.level, "rank": c.rank,
                      "bundled_collateral": c.measures.bundled_collateral,
                      "library": c.measures.library, "text": c.text} for c in best],
            "candidates": len(result.candidates()),
            "held_out_legit_flagged": [f"{r['id']} {r['name']}" for r in flagged],
            "seconds": round(seconds, 2),
        })
    n_legit = len(legit)
    flagged_any = {x for r in results for x in r["held_out_legit_flagged"]}
    return {"families": results, "held_out_legitimate": n_legit,
            "held_out_legitimate_flagged": sorted(flagged_any),
            "families_at_bar": sum(1 for r in results if r["coverage"] >= 0.8),
            "mean_coverage": sum(r["coverage"] for r in results) / len(results)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", help="a library index for capture counts")
    ap.add_argument("--json", help="write the full results here")
    ap.add_argument("--swap", action="store_true",
                    help="draft from the held-out half and test on the drafting half instead")
    args = ap.parse_args()
    out = evaluate(args.index, args.swap)
    print("| family | drafted from | held out | covered | best candidate (kind) | held-out "
          "legitimate flagged |")
    print("|---|---|---|---|---|---|")
    for r in out["families"]:
        best = ", ".join(f"{b['id']} ({b['level']})" for b in r["best"]) or "none"
        print(f"| {r['family']} | {r['drafted_from']} | {r['held_out']} | {r['covered']} "
              f"({r['coverage']:.0%}) | {best} | {len(r['held_out_legit_flagged'])} |")
    print(f"\nfamilies at >= 80% coverage: {out['families_at_bar']} of {len(out['families'])}; "
          f"mean coverage {out['mean_coverage']:.1%}; held-out legitimate chemicals flagged by "
          f"any best candidate: {len(out['held_out_legitimate_flagged'])} of "
          f"{out['held_out_legitimate']}")
    for r in out["families"]:
        if r["missed"] or r["held_out_legit_flagged"]:
            print(f"  {r['family']}: missed {r['missed']}; flagged {r['held_out_legit_flagged']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
