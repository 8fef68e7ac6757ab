"""Prove the route gates' C matcher exact: the same answer as RDKit for every query and molecule.

    python benchmarks/verify_fastgate.py [N]

For the screen's three route gates (listed substances, bulk ones, controlled drugs) and every
skeleton query each asks (kept and dropped), on the first N MOSES molecules (default 20,000) and
every structure of evaluation/, standardized as the screen does: the C matcher's bit
(`precursor_screen.rules.fastgate.SkeletonSet`) against RDKit's ``HasSubstructMatch`` on the
labelled molecule (what the gate asked before); the rule engines' relaxed substrate screens
likewise (`RuleSet._screens_fast`). Also the gates' verdicts at the flag floor and
at none (``passes``, ``unmask_ok``) both ways, on the parents and on the intermediates of their
conversion and drug searches (first ``--products`` parents). Prints the counts and every disagreement (none
may), and how many molecules the C matcher could not read (RDKit answers those).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from moses import moses_smiles
from rdkit import rdBase
from verify_drug_gate import evaluation_smiles

from precursor_screen.chem.standardize import Standardized, parent_or_none
from precursor_screen.rules.gates import flag_floor, labelled
from precursor_screen.screen import Screener


def _screens_differ(screener: Screener, std: Standardized) -> int:
    """Disagreements of the rule engines' relaxed substrate screens (C vs RDKit) on ``std``."""
    differ = 0
    for rules in (screener.rules, screener.drugs.rules, screener._protecting):
        found = rules._screens_fast.matches(std.mol, std.smiles)
        if found is None:
            continue
        for k, screen in enumerate(rules._fast_screens):
            if bool(found >> k & 1) != std.mol.HasSubstructMatch(screen):
                differ += 1
                print(f"DIFFERS rule screen {k}: {std.smiles}")
    return differ


def _needs_missed(screener: Screener, std: Standardized) -> int:
    """Queries RDKit finds in ``std`` whose needs the C matcher did not find (`QueryNeeds`:
    rule templates' recursion, protecting groups, forward templates, group definitions)."""
    missed = 0
    for needs in (screener.rules._recursion_needs, screener.rules._protecting_needs,
                  screener.drugs.gate._forward.needs, screener.groups._query_needs()):
        found = needs.found(std.mol, std.smiles)
        if found is None:
            continue
        for k, query in enumerate(needs.queries):
            if not needs.may_match(found, k) and std.mol.HasSubstructMatch(query):
                missed += 1
                print(f"MISSED need of query {k}: {std.smiles}")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=20_000, help="MOSES molecules")
    parser.add_argument("--products", type=int, default=3000,
                        help="parents whose search intermediates are checked too")
    args = parser.parse_args(argv)
    screener = Screener()
    gates = [(name, gate) for name, gate in (("listed", screener._route_gate),
                                             ("bulk", screener._bulk_route_gate),
                                             ("drugs", screener.drugs.gate)) if gate is not None]
    for name, gate in gates:
        if not gate.fast.on:
            print(f"{name}: the C matcher is off")
            return 1
    smiles = moses_smiles(args.n) + evaluation_smiles()
    with rdBase.BlockLogs():
        parents = [p for s in smiles if (p := parent_or_none(s)) is not None]
    start = time.time()
    problems = unread = tests = 0
    for std in parents:
        mol, n = std.mol, std.mol.GetNumHeavyAtoms()
        problems += _screens_differ(screener, std) + _needs_missed(screener, std)
        for name, gate in gates:
            found = gate.fast.matches(mol, std.smiles)
            if found is None:
                unread += 1
                continue
            with labelled(mol):
                for k, g in enumerate(gate.queries()):
                    tests += 1
                    if bool(found >> k & 1) != mol.HasSubstructMatch(g.query):
                        problems += 1
                        print(f"DIFFERS {name} query {k}: {std.smiles}")
            for floor in (0, flag_floor(n, 0.45, 10)):
                for fast, slow in ((gate.passes(mol, floor, std.smiles), gate.passes(mol, floor)),
                                   (gate.unmask_ok(mol, floor, std.smiles),
                                    gate.unmask_ok(mol, floor))):
                    if fast != slow:
                        problems += 1
                        print(f"DIFFERS {name} verdict at {floor}: {std.smiles}")
    # the searches' intermediates, which the gates are asked about too: the products of the
    # conversion and the drug rules (ungated, depth 2) from the first --products parents
    products = 0
    for std in parents[:args.products]:
        for rules in (screener.rules, screener.drugs.rules):
            for route in rules.apply(std):
                product = rules.product(route.product)
                if product is None:
                    continue
                products += 1
                mol, n = product.mol, product.mol.GetNumHeavyAtoms()
                problems += _screens_differ(screener, product) + _needs_missed(screener, product)
                for name, gate in gates:
                    for floor in (0, flag_floor(n, 0.45, 10)):
                        if gate.unmask_ok(mol, floor, product.smiles) != gate.unmask_ok(mol, floor) \
                                or gate.passes(mol, floor, product.smiles) != gate.passes(mol, floor):
                            problems += 1
                            print(f"DIFFERS {name} on an intermediate at {floor}: {product.smiles}")
    print(f"{len(parents)} parents ({args.n} MOSES + evaluation), {tests} query tests, "
          f"{products} search intermediates, "
          f"{unread} molecule-gate pairs the C matcher did not read, {problems} differences, "
          f"{time.time() - start:.0f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
