"""Structure resolution for a declaration row: SMILES/InChI, then CAS, then name, then OPSIN.

Every source that resolves is kept (``Resolution.found``, in that order), so the verdict can see
when a declaration contradicts itself; what could not be used is kept as a sentence
(``problems``: always reported, e.g. a wrong CAS check digit; ``misses``: reported only when
nothing resolved, e.g. an unknown CAS number).

Lookup tables, first match wins: the built-in registry (every status and date: identity is a fact,
listing is the screen's business), user reference lists, the bundled table
(``data/chemicals.tsv``), then user mapping files. Names are compared after :func:`name_key`
(case, punctuation, Greek letters), then again without salt, hydrate and grade words
(:func:`stripped_name_key`). OPSIN, when enabled and Java is present, parses the names nothing
else resolved, in one call per chunk.
"""

from __future__ import annotations

import csv
import glob
import os
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rdkit import Chem

from precursor_screen.chem.parse import parse_smiles, quiet_rdkit
from precursor_screen.chem.standardize import StandardizeError, standardize
from precursor_screen.errors import InputError, ShippedDataError
from scheduled_substances import cas_is_valid

from .schema import Declaration

__all__ = ["Entry", "ChemicalTable", "Resolved", "Resolution", "Resolver", "Opsin", "name_key",
           "graded_name_key", "stripped_name_key", "split_cas", "normalize_cas", "cas_numbers_in", "load_bundled_table",
           "load_mapping_file", "BUNDLED_FILE"]

BUNDLED_FILE = "chemicals.tsv"
BUNDLED_COLUMNS = ("cas", "name", "synonyms", "smiles", "cn_code", "kind", "source")

_GREEK = str.maketrans({"α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ω": "omega",
                        "µ": "mu", "μ": "mu"})
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_SALT_WORDS = frozenset("""
    hydrochloride dihydrochloride trihydrochloride monohydrochloride hcl 2hcl hydrobromide hbr
    hydroiodide sulfate sulphate hemisulfate hemisulphate bisulfate bisulphate maleate fumarate
    tartrate bitartrate hemitartrate citrate mesylate mesilate methanesulfonate tosylate oxalate
    phosphate succinate besylate nitrate salt sodium potassium disodium dipotassium calcium
    magnesium lithium ammonium hydrate monohydrate dihydrate trihydrate hemihydrate sesquihydrate
    anhydrous base freebase racemic racemate
""".split())
_GRADE_WORDS = frozenset("""
    tech technical grade pure purum puriss reagent ar acs usp bp ep ph eur analytical synthesis
    solution soln aqueous aq extra min approx crude industrial food pharma pharmaceutical
    purity purified quality commercial liquid powder crystals crystalline flakes w/w v/v for
    hplc analysis laboratory lab use
""".split())
_PERCENT = re.compile(r"[<>≥≤~]?\s*\d+(?:[.,]\d+)?\s*%")
_SEPARATORS = re.compile(r"[()\[\]{},;/]+")
_CAS_PREFIX = re.compile(r"(?i)\bcas(?:\s*(?:rn|no\.?|number|nr\.?|#))?\s*[:.]?")
_CAS_SPLIT = re.compile(r"[;,|/\s]+")
_CAS_FORM = re.compile(r"^(\d{2,7})-(\d{2})-(\d)$")
_CAS_IN_TEXT = re.compile(r"(?<![\d-])\d{2,7}-\d{2}-\d(?![\d-])")
_DASHES = str.maketrans({"‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-"})


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower().translate(_GREEK)


def name_key(text: str) -> str:
    """The lookup form of a name: case, punctuation, spacing and Greek letters folded away.

    >>> name_key("1-Phenyl-2-propanone"), name_key("α-Phenylacetoacetonitrile")
    ('1phenyl2propanone', 'alphaphenylacetoacetonitrile')
    """
    return _NON_ALNUM.sub("", _fold(text))


def _words(text: str) -> list[str]:
    return [w for w in _SEPARATORS.sub(" ", _PERCENT.sub(" ", _fold(text))).split() if w.strip(".:-")]


def graded_name_key(text: str) -> str:
    """:func:`name_key` without grade, purity and packing words ('' when nothing is left).

    >>> graded_name_key("SODIUM HYDROXIDE 99% for synthesis")
    'sodiumhydroxide'
    """
    return _NON_ALNUM.sub("", " ".join(w for w in _words(text) if w.strip(".:-") not in _GRADE_WORDS))


def stripped_name_key(text: str) -> str:
    """:func:`name_key` without salt, hydrate, grade and purity words ('' when nothing is left).

    Tried only after the full name (and the name without grade words) failed, so 'sodium cyanide'
    or 'trimethyl phosphate' in a table still match whole.

    >>> stripped_name_key("Ephedrine HCl"), stripped_name_key("4-Piperidone hydrochloride monohydrate")
    ('ephedrine', '4piperidone')
    >>> stripped_name_key("ACETONE tech. grade 99.5%"), stripped_name_key("sodium salt")
    ('acetone', '')
    """
    return _NON_ALNUM.sub("", " ".join(w for w in _words(text) if w.strip(".:-") not in _SALT_WORDS
                                       and w.strip(".:-") not in _GRADE_WORDS))


def split_cas(text: str) -> list[str]:
    """The CAS tokens of a field: ';' separates them (',', '|', '/' and spaces are tolerated).

    >>> split_cas("CAS No. 103-79-7; 64-17-5"), split_cas("")
    (['103-79-7', '64-17-5'], [])
    """
    text = _CAS_PREFIX.sub(" ", text.translate(_DASHES))
    return [t for t in _CAS_SPLIT.split(text) if t.strip(".:")]


def cas_numbers_in(text: str) -> list[str]:
    """CAS-shaped numbers in free text (not yet checked).

    >>> cas_numbers_in("Acetone (CAS 67-64-1) and 64-17-5, lot 2024-01-15")
    ['67-64-1', '64-17-5']
    """
    return _CAS_IN_TEXT.findall(text.translate(_DASHES))


def normalize_cas(token: str) -> tuple[str, str]:
    """Return ``(cas, "")`` in the hyphenated form, or ``("", why not)``.

    Digits-only numbers (as some exports write them) and zero-padded ones are accepted.

    >>> normalize_cas("103797"), normalize_cas("0064-17-5")
    (('103-79-7', ''), ('64-17-5', ''))
    >>> normalize_cas("103-79-8")
    ('', 'CAS 103-79-8 has a wrong check digit')
    """
    t = token.strip().strip(".:").translate(_DASHES)
    if re.fullmatch(r"\d{5,10}", t):
        t = f"{t[:-3]}-{t[-3:-1]}-{t[-1]}"
    m = re.fullmatch(r"0*(\d+)-(\d{2})-(\d)", t)
    if m:
        t = f"{m.group(1)}-{m.group(2)}-{m.group(3)}"
    if not _CAS_FORM.match(t):
        shown = token if len(token) <= 40 else token[:37] + "..."
        return "", f"CAS field {shown!r} is not a CAS number"
    if not cas_is_valid(t):
        return "", f"CAS {t} has a wrong check digit"
    return t, ""


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a lookup table: a named structure and where it comes from."""

    name: str
    smiles: str
    table: str          # "registry", a reference list's name, "bundled", or a mapping file's name
    id: str = ""        # registry id, when from the registry
    cn_code: str = ""


class ChemicalTable:
    """CAS number -> Entry and name key -> Entry, first source wins."""

    def __init__(self) -> None:
        self.by_cas: dict[str, Entry] = {}
        self.by_name: dict[str, Entry] = {}

    def add(self, entry: Entry, cas: Iterable[str] = (), names: Iterable[str] = ()) -> None:
        for c in cas:
            self.by_cas.setdefault(c, entry)
        for n in names:
            k = name_key(n)
            if k:
                self.by_name.setdefault(k, entry)

    def add_registry(self, registry: Any, table: str = "registry") -> None:
        for s in registry:
            if not s.smiles:
                continue
            name = table if s.list_name == "built-in" else s.list_name
            self.add(Entry(s.name, s.smiles, name, s.id, s.cn_codes[0] if s.cn_codes else ""),
                     s.cas, (s.id, s.name, *s.synonyms))

    def cas(self, cas: str) -> Entry | None:
        return self.by_cas.get(cas)

    def name(self, text: str) -> tuple[Entry | None, bool]:
        """The entry for a name and whether salt/grade words had to be dropped to find it.

        Only the declared name is stripped, never a table's: 'sodium chloride' must not make
        'chloride' a name for it.
        """
        hit = self.by_name.get(name_key(text))
        if hit is not None:
            return hit, False
        for key in (graded_name_key(text), stripped_name_key(text)):
            hit = self.by_name.get(key) if key else None
            if hit is not None:
                return hit, True
        return None, False


def _bundled_path() -> Path:
    return Path(str(resources.files("precursor_screen.declarations") / "data" / BUNDLED_FILE))


def load_bundled_table(path: str | os.PathLike[str] | None = None, *, check_structures: bool = False
                       ) -> list[tuple[Entry, tuple[str, ...], tuple[str, ...]]]:
    """Read the bundled CAS/name table: (entry, CAS numbers, names) per line, checked.

    A wrong line raises ShippedDataError naming the file and line (fields, check digits, and
    with ``check_structures`` every SMILES: a test does that on each CI run, so loading at run
    time skips the 0.5 s it takes).
    """
    file = Path(path) if path is not None else _bundled_path()
    out = []
    with open(file, encoding="utf-8", newline="") as fh:
        lines = [ln for ln in enumerate(fh, start=1) if ln[1].strip() and not ln[1].startswith("#")]
    header = lines[0][1].rstrip("\n").split("\t") if lines else []
    if tuple(header) != BUNDLED_COLUMNS:
        raise ShippedDataError(f"{file.name}: header must be {' '.join(BUNDLED_COLUMNS)}")
    for lineno, line in lines[1:]:
        fields = line.rstrip("\n").split("\t")
        where = f"{file.name}:{lineno}"
        if len(fields) != len(BUNDLED_COLUMNS):
            raise ShippedDataError(f"{where}: {len(fields)} fields, expected {len(BUNDLED_COLUMNS)}")
        f = dict(zip(BUNDLED_COLUMNS, fields))
        cas = tuple(c for c in f["cas"].split(";") if c)
        for c in cas:
            if not cas_is_valid(c):
                raise ShippedDataError(f"{where}: CAS {c!r} has a wrong format or check digit")
        if not f["smiles"] or (check_structures and parse_smiles(f["smiles"])[0] is None):
            raise ShippedDataError(f"{where}: SMILES {f['smiles']!r} does not parse")
        if not f["name"]:
            raise ShippedDataError(f"{where}: no name")
        names = (f["name"], *(s for s in f["synonyms"].split(";") if s))
        out.append((Entry(f["name"], f["smiles"], "bundled", "", f["cn_code"]), cas, names))
    return out


def load_mapping_file(path: str) -> tuple[str, list[tuple[Entry, tuple[str, ...], tuple[str, ...]]]]:
    """Read a user mapping file: CSV/TSV with a ``smiles`` column and ``cas`` and/or ``name``.

    Optional ``synonyms`` (';'-separated). Returns the file's table name and its entries; a wrong
    line raises InputError naming file and line (a mapping is trusted, so it must be right).
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such mapping file")
    table = os.path.basename(path)
    delimiter = "\t" if path.lower().removesuffix(".gz").endswith((".tsv", ".tab")) else ","
    out = []
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        header = [h.strip().lstrip("\ufeff").lower() for h in next(reader, [])]
        cols = {h: i for i, h in enumerate(header)}
        if "smiles" not in cols or not ({"cas", "name"} & set(cols)):
            raise InputError(f"{table}:1: a mapping file needs a 'smiles' column and a 'cas' or "
                             f"'name' column (has: {', '.join(header) or 'none'})")
        for fields in reader:
            if not any(x.strip() for x in fields):
                continue
            where = f"{table}:{reader.line_num}"
            get = lambda c: fields[cols[c]].strip() if c in cols and cols[c] < len(fields) else ""  # noqa: E731
            cas = []
            for token in split_cas(get("cas")):
                c, problem = normalize_cas(token)
                if problem:
                    raise InputError(f"{where}: {problem}")
                cas.append(c)
            mol, problem = parse_smiles(get("smiles"))
            if mol is None:
                raise InputError(f"{where}: SMILES {get('smiles')!r}: {problem}")
            names = tuple(n for n in (get("name"), *get("synonyms").split(";")) if n.strip())
            if not cas and not names:
                raise InputError(f"{where}: neither a CAS number nor a name")
            out.append((Entry(names[0] if names else cas[0], get("smiles"), table), tuple(cas), names))
    return table, out


@dataclass(frozen=True, slots=True)
class Resolved:
    """One source's answer: the structure (canonical SMILES, salts kept) and where it came from."""

    smiles: str
    key: str            # stereo-free parent key: what identity comparisons use
    source: str         # smiles | inchi | cas | name | opsin | description
    table: str = ""     # lookup table for cas/name/description; "" otherwise
    via: str = ""       # the CAS number or the name that resolved
    label: str = ""     # the table's name for it

    @property
    def resolved_by(self) -> str:
        """'smiles', 'cas:registry', 'name:bundled', 'name:opsin', 'description:cas:registry' ..."""
        return f"{self.source}:{self.table}" if self.table else self.source

    def describe(self) -> str:
        """How the row named this structure, for reasons: "CAS 103-79-7 (1-Phenyl-2-propanone)"."""
        if self.source in ("smiles", "inchi"):
            text = self.via if len(self.via) <= 60 else self.via[:57] + "..."
            return f"the {'SMILES' if self.source == 'smiles' else 'InChI'} {text}"
        what = {"cas": "CAS", "name": "the name", "opsin": "the name", "description": "the description's"}
        label = f" ({self.label})" if self.label and self.label.lower() != self.via.lower() else ""
        via = repr(self.via) if self.source in ("name", "opsin") else self.via
        return f"{what.get(self.source, self.source)} {via}{label}"


@dataclass(frozen=True, slots=True)
class Resolution:
    """Every source that resolved, in resolution order, and what could not be used."""

    found: tuple[Resolved, ...] = ()
    problems: tuple[str, ...] = ()   # reported whatever else resolved (bad CAS, broken SMILES)
    misses: tuple[str, ...] = ()     # reported only when nothing resolved (unknown CAS, name)

    @property
    def resolved(self) -> bool:
        return bool(self.found)


class Opsin:
    """OPSIN (IUPAC name -> SMILES) through py2opsin's bundled jar and a Java runtime.

    One Java process, started on first use and kept: names go in on stdin one per line and
    SMILES come back one per line (empty where OPSIN fails), so the JVM's start (1-2 s) is paid
    once per process, not per chunk. Names are written in blocks small enough that neither pipe
    fills while the other waits.
    """

    BLOCK = 256

    def __init__(self, java: str | None = None, jar: str | None = None) -> None:
        self.java = java or shutil.which("java") or ""
        self.jar = jar or self._find_jar()
        self._proc: subprocess.Popen[str] | None = None

    @staticmethod
    def _find_jar() -> str:
        try:
            base = str(resources.files("py2opsin"))
        except (ModuleNotFoundError, TypeError):
            return ""
        jars = sorted(glob.glob(os.path.join(base, "opsin*.jar")))
        return jars[-1] if jars else ""

    def problem(self) -> str:
        """Why OPSIN cannot run here ('' when it can)."""
        if not self.jar:
            return "OPSIN needs the optional package py2opsin (pip install 'precursor-screen[names]')"
        if not self.java:
            return "OPSIN needs a Java runtime (e.g. apt-get install default-jre-headless)"
        return ""

    def _process(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen([self.java, "-jar", self.jar, "-osmi"],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True, encoding="utf-8",
                                          bufsize=1)
        return self._proc

    def parse(self, names: Sequence[str]) -> list[str]:
        """SMILES for each name ('' where OPSIN fails); names must be single lines."""
        out: list[str] = []
        for start in range(0, len(names), self.BLOCK):
            block = names[start:start + self.BLOCK]
            proc = self._process()
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("".join(f"{n}\n" for n in block))
            proc.stdin.flush()
            for _ in block:
                line = proc.stdout.readline()
                if not line:
                    self.close()
                    raise RuntimeError("OPSIN stopped before answering every name")
                out.append(line.strip())
        return out

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            self._proc.wait(timeout=30)
            self._proc = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: nothing left to tell
            pass


def opsin_name(text: str) -> str:
    """The name as sent to OPSIN: one clean line, or '' when not worth a try."""
    name = " ".join(text.split())
    if not name or len(name) > 300 or not re.search(r"[A-Za-z]{3}", name) or "\ufffd" in name:
        return ""
    return name


class Resolver:
    """Resolve declarations to structures; caches keep repeated substances cheap.

    Results do not depend on cache state, so chunks, processes and Dask workers agree.
    """

    CACHE_LIMIT = 200_000

    def __init__(self, table: ChemicalTable, opsin: Opsin | None = None) -> None:
        self.table = table
        self.opsin = opsin
        self._structures: dict[str, tuple[str, str, str]] = {}
        self._rows: dict[tuple[str, str, str, str], Resolution] = {}
        self._opsin_cache: dict[str, str] = {}
        self.opsin_calls = 0
        self.opsin_names = 0

    # -- structures ----------------------------------------------------------------------------

    def structure(self, text: str, inchi: bool = False) -> tuple[str, str, str]:
        """``(canonical SMILES, key, "")`` for a SMILES or InChI, or ``("", "", problem)``."""
        cached = self._structures.get(text)
        if cached is not None:
            return cached
        if inchi:
            with quiet_rdkit():
                mol = Chem.MolFromInchi(text.strip())
            problem = "" if mol is not None and mol.GetNumAtoms() else "unparsable InChI"
        else:
            mol, problem = parse_smiles(text)
        if mol is None or problem:
            out = ("", "", problem or "unparsable")
        else:
            try:
                std = standardize(mol)
                out = (Chem.MolToSmiles(mol), std.key, "")
            except StandardizeError as exc:
                out = ("", "", str(exc))
        if len(self._structures) > self.CACHE_LIMIT:
            self._structures.clear()
        self._structures[text] = out
        return out

    def _entry(self, entry: Entry, source: str, via: str) -> Resolved | str:
        smiles, key, problem = self.structure(entry.smiles)
        if problem:
            return f"{entry.table} entry for {via} has an unusable structure ({problem})"
        return Resolved(smiles, key, source, entry.table, via, entry.name)

    # -- rows ----------------------------------------------------------------------------------

    def resolve(self, d: Declaration) -> Resolution:
        """Resolve one row without OPSIN (see :meth:`resolve_all`)."""
        key = (d.smiles, d.cas, d.name, "")
        hit = self._rows.get(key)
        if hit is None:
            hit = self._resolve(d.smiles, d.cas, d.name)
            self._remember(key, hit)
        if hit.found or not d.description.strip():
            return hit
        dkey = (d.smiles, d.cas, d.name, d.description)
        full = self._rows.get(dkey)
        if full is None:
            found, misses = self._from_description(d.description)
            full = Resolution(found, hit.problems, hit.misses + misses) if found else hit
            self._remember(dkey, full)
        return full

    def resolve_all(self, decls: Sequence[Declaration]) -> list[Resolution]:
        """Resolve a chunk; names nothing else resolved go to OPSIN in one call, when enabled."""
        out = [self.resolve(d) for d in decls]
        if self.opsin is None:
            return out
        todo = sorted({opsin_name(d.name) for d, r in zip(decls, out) if not r.found
                       and opsin_name(d.name) and opsin_name(d.name) not in self._opsin_cache})
        if todo:
            self.opsin_calls += 1
            self.opsin_names += len(todo)
            for name, smi in zip(todo, self.opsin.parse(todo)):
                self._opsin_cache[name] = smi
        for i, (d, r) in enumerate(zip(decls, out)):
            if r.found:
                continue
            name = opsin_name(d.name)
            smi = self._opsin_cache.get(name, "") if name else ""
            if not smi:
                continue
            smiles, key, problem = self.structure(smi)
            if not problem:
                out[i] = Resolution((Resolved(smiles, key, "opsin", "", name),), r.problems,
                                    r.misses)
        return out

    def _remember(self, key: tuple[str, str, str, str], value: Resolution) -> None:
        if len(self._rows) > self.CACHE_LIMIT:
            self._rows.clear()
        self._rows[key] = value

    def _resolve(self, smiles: str, cas: str, name: str) -> Resolution:
        found: list[Resolved] = []
        problems: list[str] = []
        misses: list[str] = []
        text = smiles.strip()
        if text:
            inchi = text.startswith("InChI=")
            canon, key, problem = self.structure(text, inchi=inchi)
            kind = "InChI" if inchi else "SMILES"
            if problem:
                shown = text if len(text) <= 60 else text[:57] + "..."
                problems.append(f"{kind} {shown!r} unusable: {problem}")
            else:
                found.append(Resolved(canon, key, "inchi" if inchi else "smiles", "", text))
        for token in split_cas(cas):
            number, problem = normalize_cas(token)
            if problem:
                problems.append(problem)
                continue
            entry = self.table.cas(number)
            if entry is None:
                misses.append(f"CAS {number} is in no lookup table")
                continue
            got = self._entry(entry, "cas", number)
            if isinstance(got, str):
                problems.append(got)
            else:
                found.append(got)
        if name.strip():
            entry, _stripped = self.table.name(name)
            if entry is None:
                shown = name.strip() if len(name.strip()) <= 60 else name.strip()[:57] + "..."
                misses.append(f"name {shown!r} is in no lookup table")
            else:
                got = self._entry(entry, "name", name.strip())
                if isinstance(got, str):
                    problems.append(got)
                else:
                    found.append(got)
        return Resolution(tuple(found), tuple(problems), tuple(misses))

    def _from_description(self, text: str) -> tuple[tuple[Resolved, ...], tuple[str, ...]]:
        found: list[Resolved] = []
        for token in cas_numbers_in(text):
            number, problem = normalize_cas(token)
            entry = self.table.cas(number) if not problem else None
            if entry is not None:
                got = self._entry(entry, "description", number)
                if not isinstance(got, str) and all(f.key != got.key for f in found):
                    found.append(got)
        if not found:
            entry, _ = self.table.name(text)
            if entry is not None:
                got = self._entry(entry, "description", " ".join(text.split()))
                if not isinstance(got, str):
                    found.append(got)
        return tuple(found), (() if found else ("the description names no known chemical",))


def build_table(registries: Sequence[Any], bundled: bool = True,
                mappings: Sequence[tuple[str, list[tuple[Entry, tuple[str, ...], tuple[str, ...]]]]] = ()
                ) -> ChemicalTable:
    """The lookup table: registries first, then the bundled table, then user mappings."""
    table = ChemicalTable()
    for reg in registries:
        table.add_registry(reg)
    if bundled:
        for entry, cas, names in load_bundled_table():
            table.add(entry, cas, names)
    for _, entries in mappings:
        for entry, cas, names in entries:
            table.add(entry, cas, names)
    return table
