"""Prove the drug stage's tighter gate exact on MOSES (first N molecules) and the evaluation sets.

    python benchmarks/verify_drug_gate.py [N]

The drug-route gate (`precursor_screen.rules.gates.RouteGate`) was made tighter four times:
a bond at a reaction centre whose template atom is surely aliphatic is non-aromatic in the
substrate core (``aliphatic=True``, issue 20 phase B, where it used to be any bond); the drugs'
skeletons type their atoms aromatic or not (``typed``, when no unmasking rule changes an atom's
aromaticity), and with them the substrate cores the atoms their template types (the benzo ring
of methaqualone's substrates aromatic, its methyl aliphatic); a forward rule that keeps the
skeleton as the unmasking rules do no longer opens routes of its own
(``every_forward_opens=False``: the forward test asks only the others). This
script builds the gate as it was before all four ("loose") and the shipped one ("tight") from
the same drugs and rules and, on every parent, at the size floor the bulk screen uses
(``flag_only``) and at none:

* the tight gate passes only what the loose one passes;
* a molecule the loose gate passes and the tight one does not: the loose-gated search (what
  the screen ran before) finds no route at all (so the screen's output is the same), and the
  full, ungated search finds no route that raises a flag;
* a molecule both pass: both gated searches give the same routes, word for word.

Prints the counts and every molecule that breaks a rule (none may).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from moses import moses_smiles  # noqa: E402
from rdkit import Chem, rdBase  # noqa: E402

from precursor_screen.chem.standardize import StandardizeError, standardize  # noqa: E402
from precursor_screen.rules.drug_targets import GROUP_PRECURSOR_CORES, DrugTargets  # noqa: E402
from precursor_screen.rules.gates import RouteGate, flag_floor  # noqa: E402
from precursor_screen.screen import Screener, ScreenParameters  # noqa: E402

EVALUATION = Path(__file__).resolve().parents[1] / "evaluation"


def evaluation_smiles() -> list[str]:
    """Every structure of the evaluation sets."""
    out = []
    for path in sorted(EVALUATION.glob("*.tsv")):
        with open(path, newline="", encoding="utf-8") as fh:
            out += [row["smiles"] for row in csv.DictReader(fh, delimiter="\t")
                    if row.get("smiles")]
    return out


def verify(drugs: DrugTargets, smiles_list: list[str]) -> list[str]:
    """Compare the tight gate of ``drugs`` with the loose one on every parent; print the counts
    and return the problems."""
    assert drugs.gate is not None, drugs.gate_off
    rules = drugs.rules
    forward = [(i, rxn) for i, rxn in rules.reactions() if i in rules.reagents]
    targets = [t.parent.mol for t in drugs.registry if t.parent is not None]
    cores = [(GROUP_PRECURSOR_CORES[g.id], g.max_heavy_atoms or 10_000) for g in drugs.groups]
    loose = RouteGate(targets, cores, forward, aliphatic=False, typed=False,
                      every_forward_opens=True)
    tight = drugs.gate
    p = ScreenParameters()
    kept, removed = p.min_kept_fraction, p.max_removed_atoms
    counts = {"parents": 0, "loose passes": 0, "tight passes": 0, "loose only": 0,
              "loose only, ungated routes that flag": 0}
    problems: list[str] = []
    start = time.process_time()
    for smiles in smiles_list:
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            continue
        try:
            std = standardize(mol)
        except StandardizeError:
            continue
        counts["parents"] += 1
        n = std.mol.GetNumHeavyAtoms()
        for floor, flag_only in ((flag_floor(n, kept, removed), True), (0.0, False)):
            was, now = loose.passes(std.mol, floor), tight.passes(std.mol, floor)
            if flag_only:
                counts["loose passes"] += was
                counts["tight passes"] += now
            if now and not was:
                problems.append(f"tight gate passes, loose does not: {smiles}")
            if not flag_only:
                continue
            drugs.gate = loose
            before = [h.reason for h in drugs.routes(std, flag_only=True)] if was else []
            drugs.gate = tight
            after = [h.reason for h in drugs.routes(std, flag_only=True)] if now else []
            if before != after:
                problems.append(f"routes differ: {smiles}: {before} / {after}")
            if was and not now:
                counts["loose only"] += 1
                flagging = [h for h in drugs.routes(std, gated=False) if h.score > 0]
                if flagging:
                    counts["loose only, ungated routes that flag"] += 1
                    problems.append(f"rejected but flags: {smiles}: {flagging[0].reason}")
    print(f"{drugs!r}: {len(loose)} -> {len(tight)} queries, "
          f"CPU {time.process_time() - start:.0f} s")
    for key, value in counts.items():
        print(f"  {key}: {value}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=20_000, help="MOSES molecules")
    args = parser.parse_args()
    block = rdBase.BlockLogs()  # noqa: F841 - RDKit stays quiet while it lives
    smiles = moses_smiles(args.n) + evaluation_smiles()
    problems: list[str] = []
    # the screen's drug stage (EU and UN: no drug families) and every family (--jurisdiction
    # with uk, or a screen naming none)
    for drugs in (Screener().drugs, DrugTargets()):
        problems += verify(drugs, smiles)
    for line in problems:
        print("PROBLEM", line)
    print("problems:", len(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
