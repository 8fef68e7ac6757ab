"""Count the work a screen does on MOSES (first N molecules): noise-free figures for speed work.

    python benchmarks/screen_work.py [N] [--stages]

Timings on these shared VMs drift by 5-15% from run to run, so a change that saves 3% of the
screen cannot be seen in a timing; the number of RDKit operations it runs can. This script
screens the first N MOSES molecules (default 4,000) with every check on, in one process, and
prints per molecule:

* substructure tests (``Mol.HasSubstructMatch``, a bundle counting as one test), by the function
  that asked (module, function);
* reactions run (``RunReactant`` by the rule engine) and product pieces standardized;
* rows searched by the conversion search and by the controlled-drug search;
* with ``--stages`` instead, the CPU time of each stage of the screen (``Screener._prepare`` and
  the stages of ``_judge``, the protecting-group count; a stage called inside another, such as
  ``_gated`` inside ``_conversions``, counts in the outer one), besides the whole screen's.

Compare two branches by running it in each: the counts are the same from run to run on the same
code and molecules.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from moses import moses_smiles
from rdkit import Chem

from precursor_screen.io.readers import Record
from precursor_screen.rules import conversions
from precursor_screen.rules.drug_targets import DrugTargets
from precursor_screen.screen import Screener

STAGES = [(Screener, name) for name in (
    "_prepare", "_identity", "_building", "_nearest", "_containment", "_conversions",
    "_drug_routes", "_groups", "_verdict", "_gated", "_parent_key")]
STAGES.append((conversions.RuleSet, "protecting_group_atoms"))


def _count_calls(counts: collections.Counter) -> None:
    """Count substructure tests by caller, reactions and standardized pieces into ``counts``."""
    test = Chem.Mol.HasSubstructMatch

    def counted_test(self: Chem.Mol, *args: Any, **kwargs: Any) -> bool:
        frame = sys._getframe(1)
        where = f"{Path(frame.f_code.co_filename).stem}.{frame.f_code.co_name}"
        counts[("substructure test", where)] += 1
        return test(self, *args, **kwargs)

    Chem.Mol.HasSubstructMatch = counted_test
    pieces, standardize = conversions._rule_pieces, conversions._standardize_piece

    def counted_pieces(*args: Any) -> Any:
        counts[("reaction run", "conversions._rule_pieces")] += 1
        return pieces(*args)

    def counted_standardize(*args: Any) -> Any:
        counts[("piece standardized", "conversions._standardize_piece")] += 1
        return standardize(*args)

    conversions._rule_pieces = counted_pieces
    conversions._standardize_piece = counted_standardize
    for cls, name, label in ((Screener, "_conversions", "conversion search"),
                             (DrugTargets, "routes", "drug stage")):
        original = getattr(cls, name)

        def counted(self: Any, *args: Any, _original: Any = original, _label: str = label,
                    **kwargs: Any) -> Any:
            counts[("rows", _label)] += 1
            return _original(self, *args, **kwargs)

        setattr(cls, name, counted)
    expand = conversions.RuleSet._expand

    def counted_expand(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("reverse", False):
            counts[("rows", "drug search (past its gate)")] += 1
        return expand(self, *args, **kwargs)

    conversions.RuleSet._expand = counted_expand


def _time_stages(spent: dict[str, float]) -> None:
    """Add each stage's CPU time (outermost call only) into ``spent``."""
    depth = [0]
    for cls, name in STAGES:
        original = getattr(cls, name)

        def timed(self: Any, *args: Any, _original: Any = original, _name: str = name,
                  **kwargs: Any) -> Any:
            outer = depth[0] == 0
            start = time.process_time()
            depth[0] += 1
            try:
                return _original(self, *args, **kwargs)
            finally:
                depth[0] -= 1
                if outer:
                    spent[_name] = spent.get(_name, 0.0) + time.process_time() - start

        setattr(cls, name, timed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=4000, help="MOSES molecules")
    parser.add_argument("--stages", action="store_true", help="time each stage instead")
    args = parser.parse_args(argv)
    smiles = moses_smiles(args.n)
    screener = Screener()
    records = [Record(i, str(i), s) for i, s in enumerate(smiles)]
    list(screener.screen(records[:20]))          # compile everything before counting
    screener = Screener(repeats=0)
    n = len(records)
    if args.stages:
        spent: dict[str, float] = {}
        _time_stages(spent)
        start = time.process_time()
        list(screener.screen(records, jobs=1))
        total = time.process_time() - start
        print(f"{n} MOSES molecules, {total:.2f} CPU-s, {total / n * 1e6:.0f} us a molecule")
        for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
            print(f"{seconds / n * 1e6:8.1f} us  {name}")
        return 0
    counts: collections.Counter = collections.Counter()
    _count_calls(counts)
    list(screener.screen(records, jobs=1))
    tests = sum(v for (kind, _), v in counts.items() if kind == "substructure test")
    print(f"{n} MOSES molecules; per molecule: {tests / n:.1f} substructure tests")
    for (kind, where), v in sorted(counts.items(), key=lambda kv: (kv[0][0], -kv[1])):
        print(f"{v / n:9.3f}  {kind:20s} {where}  ({v})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
