"""CN-code rules: listed substances' codes, designer-precursor headings, heading consistency.

The rules are data (``data/cn_rules.toml``, ``data/cn_headings.toml``); this module compiles them
once and answers three questions about a declared code:

* does it name a listed substance (a specific subheading such as 2914 31 00, phenylacetone)?
* is it a heading where designer precursors are typically declared (2914, 2918, 2926, 2932, 2933)?
* is it consistent with the resolved structure (the heading's function present, and no function
  of a later heading: Chapter 29 Note 3)?
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rdkit import Chem

from precursor_screen.chem.standardize import Standardized
from precursor_screen.errors import ShippedDataError

__all__ = ["CnCode", "parse_cn", "ListedCode", "CnRules", "Functions", "load_functions",
           "RULES_FILE", "HEADINGS_FILE"]

RULES_FILE = "cn_rules.toml"
HEADINGS_FILE = "cn_headings.toml"


@dataclass(frozen=True, slots=True)
class CnCode:
    """A declared code: as given, its digits, its heading (4 digits) and any problem with it."""

    text: str
    digits: str
    problem: str = ""

    @property
    def heading(self) -> str:
        return self.digits[:4]

    @property
    def chapter(self) -> str:
        return self.digits[:2]

    def shown(self) -> str:
        """The code written the CN way: '2914 31 00'."""
        d = self.digits
        return " ".join(x for x in (d[:4], d[4:6], d[6:8], d[8:]) if x)


def parse_cn(text: str) -> CnCode | None:
    """Parse a declared CN/HS/TARIC code (4, 6, 8 or 10 digits; spaces and dots ignored).

    >>> parse_cn("2914 31 00").digits, parse_cn("2914.31").heading, parse_cn("")
    ('29143100', '2914', None)
    >>> parse_cn("29x4").problem
    "CN code '29x4' is not a code of 4, 6, 8 or 10 digits"
    """
    t = text.strip()
    if not t:
        return None
    digits = re.sub(r"[\s.\-]", "", t)
    if not digits.isdigit() or len(digits) not in (4, 6, 8, 10):
        shown = t if len(t) <= 30 else t[:27] + "..."
        return CnCode(t, "", f"CN code {shown!r} is not a code of 4, 6, 8 or 10 digits")
    return CnCode(t, digits)


def _data_text(name: str) -> tuple[str, str]:
    path = Path(str(resources.files("precursor_screen.declarations") / "data" / name))
    return path.read_text(encoding="utf-8"), name


def _toml(name: str) -> dict[str, Any]:
    text, fname = _data_text(name)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ShippedDataError(f"{fname}: {exc}") from None


@dataclass(frozen=True)
class Function:
    """A chemical function that decides a Chapter 29 heading, with its test molecules."""

    id: str
    title: str
    heading: str
    smarts: tuple[str, ...]
    queries: tuple[Chem.Mol, ...]
    must_match: tuple[str, ...] = ()
    must_not_match: tuple[str, ...] = ()

    def present(self, mol: Chem.Mol) -> bool:
        return any(mol.HasSubstructMatch(q) for q in self.queries)


class Functions:
    """The functions and headings of ``cn_headings.toml``, compiled; answers for a structure."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        data = data if data is not None else _toml(HEADINGS_FILE)
        funcs = []
        for fid, spec in data.get("functions", {}).items():
            where = f"{HEADINGS_FILE} [functions.{fid}]"
            queries = []
            for sm in spec.get("smarts", []):
                q = Chem.MolFromSmarts(sm)
                if q is None:
                    raise ShippedDataError(f"{where}: SMARTS {sm!r} does not parse")
                queries.append(q)
            if not queries:
                raise ShippedDataError(f"{where}: no smarts")
            funcs.append(Function(fid, spec.get("title", fid), spec.get("heading", ""),
                                  tuple(spec["smarts"]), tuple(queries),
                                  tuple(spec.get("must_match", ())), tuple(spec.get("must_not_match", ()))))
        self.functions = tuple(funcs)
        het = data.get("heterocycles", {})
        self.hetero_headings = {"oxygen_only": het.get("oxygen_only", "2932"),
                                "nitrogen_only": het.get("nitrogen_only", "2933"),
                                "other": het.get("other", "2934")}
        self.hetero_examples = {k: tuple(het.get(f"must_be_{k}", ()))
                                for k in ("oxygen_only", "nitrogen_only", "other", "none")}
        self.headings: dict[str, tuple[str, tuple[str, ...]]] = {}
        known = {f.id for f in funcs} | set(self.hetero_headings)
        for heading, spec in data.get("headings", {}).items():
            for req in spec.get("requires", []):
                if req not in known:
                    raise ShippedDataError(f"{HEADINGS_FILE} [headings] {heading}: unknown "
                                           f"requirement {req!r}")
            self.headings[heading] = (spec.get("title", heading), tuple(spec.get("requires", ())))
        self._titles = {f.id: f.title for f in funcs}
        self._titles.update({"oxygen_only": "a heterocycle with oxygen hetero-atoms only",
                             "nitrogen_only": "a heterocycle with nitrogen hetero-atoms only",
                             "other": "a heterocycle with other hetero-atoms"})

    def title(self, fid: str) -> str:
        return self._titles.get(fid, fid)

    def heterocycle(self, mol: Chem.Mol) -> str:
        """'oxygen_only', 'nitrogen_only', 'other', or '' for no heterocycle (see the TOML)."""
        elements: set[int] = set()
        ri = mol.GetRingInfo()
        for ring in ri.AtomRings():
            hetero = [i for i in ring if mol.GetAtomWithIdx(i).GetAtomicNum() not in (6, 1)]
            if not hetero:
                continue
            if len(ring) == 3 and all(mol.GetAtomWithIdx(i).GetAtomicNum() == 8 for i in hetero):
                continue  # epoxide: heading 2910, not a heterocycle
            if len(hetero) == 1 and _between_ring_carbonyls(mol, hetero[0], set(ring)):
                continue  # cyclic anhydride or imide of a polybasic acid
            elements.update(mol.GetAtomWithIdx(i).GetAtomicNum() for i in hetero)
        if not elements:
            return ""
        if elements == {8}:
            return "oxygen_only"
        if elements == {7}:
            return "nitrogen_only"
        return "other"

    def present(self, mol: Chem.Mol) -> set[str]:
        """The function ids (and heterocycle class) the structure has."""
        found = {f.id for f in self.functions if f.present(mol)}
        het = self.heterocycle(mol)
        if het:
            found.add(het)
        return found

    def heading_of(self, present: Iterable[str]) -> str:
        """The last heading that applies by Chapter 29 Note 3, from the functions present."""
        present = set(present)
        headings = [f.heading for f in self.functions if f.id in present and f.heading]
        if "amine" in present and "oxygen" in present:
            headings.append("2922")
        headings.extend(self.hetero_headings[k] for k in self.hetero_headings if k in present)
        return max(headings, default="")


def _between_ring_carbonyls(mol: Chem.Mol, idx: int, ring: set[int]) -> bool:
    atom = mol.GetAtomWithIdx(idx)
    carbonyls = 0
    for nb in atom.GetNeighbors():
        if nb.GetIdx() not in ring or nb.GetAtomicNum() != 6:
            continue
        if any(b.GetBondType() == Chem.BondType.DOUBLE and b.GetOtherAtom(nb).GetAtomicNum() == 8
               for b in nb.GetBonds()):
            carbonyls += 1
    return carbonyls >= 2


def load_functions() -> Functions:
    return Functions()


@dataclass(frozen=True)
class ListedCode:
    """A CN subheading (8 digits) carried by listed substances; shared ones also hold other goods."""

    code: str
    substances: tuple[Any, ...]
    shared: str = ""            # why the code says nothing alone ('' for a specific code)

    def names(self) -> str:
        return " / ".join(s.name for s in self.substances)

    def listing(self) -> str:
        return self.substances[0].short_listing() if self.substances else ""


class CnRules:
    """The CN rules for one reference list (its substances' codes) plus the shipped data."""

    def __init__(self, reference: Any, rules: dict[str, Any] | None = None,
                 functions: Functions | None = None) -> None:
        data = rules if rules is not None else _toml(RULES_FILE)
        self.shared = {re.sub(r"\D", "", k): v for k, v in data.get("shared_codes", {}).items()}
        self.designer = {str(k): v for k, v in data.get("designer_headings", {}).items()}
        self.min_similarity = float(data.get("attention", {}).get("min_similarity", 0.55))
        for code in self.shared:
            if len(code) != 8:
                raise ShippedDataError(f"{RULES_FILE} [shared_codes]: {code!r} is not 8 digits")
        listed: dict[str, list[Any]] = {}
        for s in reference:
            for c in s.cn_codes:
                digits = re.sub(r"\D", "", c)
                if len(digits) == 8:
                    listed.setdefault(digits, []).append(s)
        self.listed = {c: ListedCode(c, tuple(v), self.shared.get(c, "")) for c, v in listed.items()}
        self.functions = functions if functions is not None else Functions()
        self._headings_cache: dict[str, tuple[set[str], str]] = {}

    def listed_code(self, cn: CnCode) -> ListedCode | None:
        """The listed code the declared one names: the same 8 digits (a 10-digit TARIC code
        extends them), or a 6-digit HS code whose CN subheading ends in 00 (not subdivided)."""
        if cn.problem:
            return None
        if len(cn.digits) >= 8:
            return self.listed.get(cn.digits[:8])
        if len(cn.digits) == 6:
            return self.listed.get(cn.digits + "00")
        return None

    def designer_heading(self, cn: CnCode) -> str:
        """The heading's title when designer precursors are typically declared under it."""
        return "" if cn.problem else self.designer.get(cn.heading, "")

    def functions_of(self, std: Standardized) -> tuple[set[str], str]:
        """Functions present in the parent structure and the heading Note 3 gives it."""
        hit = self._headings_cache.get(std.smiles)
        if hit is None:
            present = self.functions.present(std.mol)
            hit = (present, self.functions.heading_of(present))
            if len(self._headings_cache) > 100_000:
                self._headings_cache.clear()
            self._headings_cache[std.smiles] = hit
        return hit

    def inconsistency(self, cn: CnCode, std: Standardized) -> str:
        """Why the declared code cannot hold this structure ('' when it can, or cannot be told)."""
        if cn.problem:
            return ""
        organic_bonds = _has_ch_or_cc(std.mol)
        if cn.chapter == "28" and organic_bonds:
            return (f"declared under CN {cn.shown()} (Chapter 28, inorganic chemicals) but the "
                    f"structure is organic")
        if cn.chapter == "29" and not any(a.GetAtomicNum() == 6 for a in std.mol.GetAtoms()):
            return (f"declared under CN {cn.shown()} (Chapter 29, organic chemicals) but the "
                    f"structure has no carbon")
        if cn.chapter != "29":
            return ""
        present, expected = self.functions_of(std)
        declared = cn.heading
        spec = self.functions.headings.get(declared)
        if spec is not None:
            title, requires = spec
            missing = [r for r in requires if r not in present]
            if missing:
                return (f"declared under heading {declared} ({title}) but the structure has no "
                        f"{self.functions.title(missing[0]).removeprefix('a ').removeprefix('an ')}")
        if expected and declared <= "2935" and expected > declared:
            title = self.functions.headings.get(expected, (expected, ()))[0]
            return (f"declared under heading {declared} but the structure belongs under {expected} "
                    f"({title}): Chapter 29 Note 3 puts it in the last heading that applies")
        return ""


def _has_ch_or_cc(mol: Chem.Mol) -> bool:
    """A C-C or C-H bond: organic for CN purposes. Hydrogen cyanide (the parent the standardizer
    leaves of a cyanide salt) is Chapter 28, like carbonates and the oxides of carbon."""
    for a in mol.GetAtoms():
        if a.GetAtomicNum() != 6:
            continue
        if any(n.GetAtomicNum() == 6 for n in a.GetNeighbors()):
            return True
        cyanide = any(b.GetBondType() == Chem.BondType.TRIPLE and b.GetOtherAtom(a).GetAtomicNum() == 7
                      for b in a.GetBonds())
        if a.GetTotalNumHs() > 0 and not cyanide:
            return True
    return False
