"""The one standardization step: registry, candidates, rule products and tests all go through it.

A listed substance is covered with its salts and (mostly) its stereoisomers, so every comparison is
made on the *parent*: solvents and counter-ions removed, charges neutralized. Stereo is kept on the
parent (an exclusion such as cathine needs it) but the match ``key`` ignores it.

Inorganic substances are never stripped down to an acid: sodium sulfate stays sodium sulfate and
ammonium chloride stays ammonium chloride, because the annex does not list salts of hydrochloric or
sulphuric acid; only a compound with a carbon-containing fragment has counter-ions removed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rdkit import Chem
from rdkit.Chem.MolStandardize import rdMolStandardize

from precursor_screen.chem.parse import parse_smiles, quiet_rdkit

__all__ = ["Standardized", "StoredParent", "StandardizeError", "standardize", "standardize_smiles", "match_key",
           "parent_or_none", "smiles_key", "DEFAULT_MAX_HEAVY_ATOMS"]

DEFAULT_MAX_HEAVY_ATOMS = 200
"""Larger molecules get a status instead of a verdict: no precursor is that big, and rules and
substructure searches on them cost seconds each."""

# Fragments removed as solvents of crystallization (neutral canonical SMILES).
_SOLVENTS = frozenset(Chem.CanonSmiles(s) for s in (
    "O", "CO", "CCO", "CC(C)O", "CC(C)=O", "CC#N", "ClCCl", "ClC(Cl)Cl", "CCOCC", "C1CCOC1",
    "O=CN(C)C", "CS(C)=O", "c1ccccc1", "Cc1ccccc1", "CCOC(C)=O", "C1COCCO1",
))
# Organic acids and bases used as salt formers: removed only when another organic fragment remains.
_SALT_FORMERS = frozenset(Chem.CanonSmiles(s) for s in (
    "CC(=O)O", "OC(=O)C(=O)O", "OC(=O)C(O)C(O)C(=O)O", "OC(=O)CC(O)(CC(=O)O)C(=O)O",
    "OC(=O)/C=C\\C(=O)O", "OC(=O)/C=C/C(=O)O", "OC(=O)CCC(=O)O", "OC(=O)CC(O)C(=O)O",
    "CS(=O)(=O)O", "Cc1ccc(S(=O)(=O)O)cc1", "O=S(=O)(O)c1ccccc1", "OC(=O)C(F)(F)F",
    "O=C(O)O", "OC=O", "CC(O)C(=O)O", "OC(=O)c1ccccc1", "OCC(O)CO", "C[N+](C)(C)C", "OC(=O)CC(=O)O",
    "O=C(O)c1ccccc1O", "C(=O)=O", "[C-]#N", "C#N", "CCN(CC)CC", "NCCO", "OCCN(CCO)CCO",
    "CNC[C@H](O)[C@@H](O)[C@H](O)[C@H](O)CO", "NC(CO)(CO)CO",
))

# Normalizations towards one form per functional group. RDKit's default list turns a neutral
# sulfoxide into [S+][O-]; here charge-separated forms go to the neutral one where valence allows,
# so a neutral, single-fragment molecule is already normalized and can skip the step (fast path).
_NORMALIZATIONS = "\n".join([
    "Nitro to N+(O-)=O\t[N,P,As,Sb;X3:1](=[O,S,Se,Te:2])=[O,S,Se,Te:3]>>[*+1:1](=[*:2])-[*-1:3]",
    "Sulfone to S(=O)(=O)\t[S+2:1]([O-:2])([O-:3])>>[S+0:1](=[O-0:2])(=[O-0:3])",
    "Sulfoxide to S=O\t[S+;X3:1]-[O-:2]>>[S+0:1]=[O+0:2]",
    "Phosphine oxide to P=O\t[P+;X4:1]-[O-:2]>>[P+0:1]=[O+0:2]",
    "Pyridine oxide to n+O-\t[n:1]=[O:2]>>[n+:1][O-:2]",
    "Azide to N=N+=N-\t[*,H:1][N:2]=[N:3]#[N:4]>>[*,H:1][N:2]=[N+:3]=[N-:4]",
    "Diazo/azo to =N+=N-\t[*:1]=[N:2]#[N:3]>>[*:1]=[N+:2]=[N-:3]",
    "Ketone hydrate (gem-diol) to ketone\t[C;X4;!$(C(O)(O)[O,N,S]):1](-[OX2H1:2])-[OX2H1]>>[C:1]=[O:2]",
    "Recombine 1,3-separated charges\t[N,P,As,Sb,O,S,Se,Te;-1:1]-[A+0:2]=[N,P,As,Sb,O,S,Se,Te;+1:3]>>[*-0:1]=[*:2]-[*+0:3]",
    "Recombine 1,3-separated charges (aromatic)\t[n,o,p,s;-1:1]:[a:2]=[N,O,P,S;+1:3]>>[*-0:1]:[*:2]-[*+0:3]",
    "Recombine 1,5-separated charges\t[N,P,As,Sb,O,S,Se,Te;-1:1]-[A+0:2]=[A:3]-[A:4]=[N,P,As,Sb,O,S,Se,Te;+1:5]>>[*-0:1]=[*:2]-[*:3]=[*:4]-[*+0:5]",
])
_NORMALIZER = rdMolStandardize.NormalizerFromData(_NORMALIZATIONS, rdMolStandardize.CleanupParameters())
_UNCHARGER = rdMolStandardize.Uncharger(canonicalOrder=True)
_METALS = frozenset((3, 11, 12, 13, 19, 20, 37, 38, 55, 56, 25, 26, 27, 28, 29, 30, 47, 79, 24, 22))
_CHARGED = Chem.MolFromSmarts("[!+0]")
_GEM_DIOL = Chem.MolFromSmarts("[CX4]([OX2H1])[OX2H1]")
_METAL = Chem.MolFromSmarts("[" + ",".join(f"#{n}" for n in sorted(_METALS)) + "]")
_ANY_STEP = Chem.MolFromSmarts(
    "[!+0," + ",".join(f"#{n}" for n in sorted(_METALS)) + ",$([CX4]([OX2H1])[OX2H1])]")
"""An atom that is charged, a metal or a gem-diol carbon: one query instead of three for the
molecules that need no step (most of a library); the three are asked only when it matches."""
_CARBON = Chem.MolFromSmarts("[#6]")
_PLAIN_BRACKET = re.compile(r"\[\d*(?:Cl|Br|se|[BCNOPSFIbcnops])@{0,2}(?:H\d?)?\]")
"""A bracket atom of an organic element with at most isotope, chirality and H count: no charge."""


def _written_plain(smiles: str) -> bool:
    """True when a SMILES RDKit wrote shows one fragment, no charged atom and no metal.

    >>> _written_plain("CC(=O)Cc1ccc[nH]1"), _written_plain("C[C@H](N)[13CH3]")
    (True, True)
    >>> [_written_plain(s) for s in ("C[N+](C)(C)C", "CC(=O)[O-].[Na+]", "C[Mg]Cl")]
    [False, False, False]
    """
    return "." not in smiles and ("[" not in smiles or "[" not in _PLAIN_BRACKET.sub("", smiles))
_ATOM_TOKEN = re.compile(r"\[\d*(C(?![a-z])|c)[^\]]*\]|\[[^\]]*\]|Cl|Br|C|c")
"""A SMILES's atoms as far as carbon goes: a bracket atom of carbon (group 1 set), any other
bracket atom, chlorine and bromine (read whole), then a carbon outside brackets."""


def smiles_has_carbon(smiles: str) -> bool:
    """True when the SMILES (as RDKit writes it) has a carbon atom.

    >>> [smiles_has_carbon(s) for s in ("CCl", "ClCl", "[Ca+2].[Cl-]", "[13CH4]", "c1ccsc1", "[Sc]")]
    [True, False, False, True, True, False]
    """
    for token in _ATOM_TOKEN.finditer(smiles):
        text = token.group(0)
        if token.group(1) or text in ("C", "c"):
            return True
    return False


_STEREO_OR_ISOTOPE = re.compile(r"[@/\\]|\[\d")


class StandardizeError(ValueError):
    """A structure that cannot be standardized; the message is the row's status."""


@dataclass(frozen=True, slots=True)
class Standardized:
    """A parent structure and how it was reached.

    ``key`` is the stereo-free canonical SMILES of the parent: the identity every match uses.
    ``components`` are the other organic fragments of a mixture (not salt formers or solvents).
    """

    mol: Chem.Mol
    smiles: str
    key: str
    steps: tuple[str, ...] = ()
    components: tuple[str, ...] = ()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # by the constructor: a slots dataclass's default state protocol costs more than the
        # molecule itself (a 100,000-row reference list comes back from worker processes)
        return (Standardized, (self.mol, self.smiles, self.key, self.steps, self.components))

    @property
    def inorganic(self) -> bool:
        """True when the parent has no carbon: matched as the substance it is, never stripped.
        Read from its SMILES (RDKit writes every carbon as ``C`` or ``c``, in brackets first in
        them), a sixth of a substructure search."""
        return not smiles_has_carbon(self.smiles)


class StoredParent(Standardized):
    """A parent kept as RDKit's binary form until its molecule is first used.

    A long reference list is standardized on worker processes; turning 100,000 molecules back
    into RDKit objects in the main process would cost about as much as parsing them again, and
    a screen needs few of them (those a candidate's route or containment reaches). The same in
    every other way as the `Standardized` it was made from, and pickled as bytes and strings.
    ``extra``: what the loading caller computed from the parent on the worker that read it
    (`precursor_screen.reference.load_reference_file`'s ``prepare``: the screen's
    fingerprints and building steps), None when nothing was asked.

    >>> std = standardize(Chem.MolFromSmiles("CC(=O)Cc1ccccc1.Cl"))
    >>> stored = StoredParent.of(std)
    >>> stored.smiles, stored.inorganic, Chem.MolToSmiles(stored.mol) == std.smiles
    ('CC(=O)Cc1ccccc1', False, True)
    >>> copy = StoredParent.of(std).unpacked()
    >>> type(copy).__name__, Chem.MolToSmiles(copy.mol) == std.smiles, copy.key == std.key
    ('Standardized', True, True)
    """

    __slots__ = ("_binary", "_inorganic", "extra")

    @classmethod
    def of(cls, std: Standardized, prepare: Callable[[Standardized], Any] | None = None
           ) -> "StoredParent":
        """The stored form of ``std`` (picklable cheaply: bytes and strings), with what
        ``prepare`` makes of it as ``extra`` when it is organic."""
        inorganic = std.inorganic
        return cls.from_parts(std.mol.ToBinary(), std.smiles, std.key, std.steps,
                              std.components, inorganic,
                              prepare(std) if prepare is not None and not inorganic else None)

    @classmethod
    def from_parts(cls, binary: bytes, smiles: str, key: str, steps: tuple[str, ...],
                   components: tuple[str, ...], inorganic: bool, extra: Any = None
                   ) -> "StoredParent":
        obj = object.__new__(cls)
        # the slots filled directly: the frozen dataclass refuses setattr (and this runs
        # 100,000 times as a long list comes back from its workers)
        _MOL.__set__(obj, None)
        _SMILES.__set__(obj, smiles)
        _KEY.__set__(obj, key)
        _STEPS.__set__(obj, steps)
        _COMPONENTS.__set__(obj, components)
        _BINARY.__set__(obj, binary)
        _INORGANIC.__set__(obj, inorganic)
        _EXTRA.__set__(obj, extra)
        return obj

    @property  # type: ignore[override]
    def mol(self) -> Chem.Mol:
        mol = _MOL.__get__(self)
        if mol is None:
            mol = Chem.Mol(self._binary)
            _MOL.__set__(self, mol)
        return mol

    @property
    def inorganic(self) -> bool:
        return self._inorganic

    def unpacked(self) -> Standardized:
        """A plain `Standardized` with the molecule read from the bytes, which this one does not
        keep: for a worker that reads each parent once (100,000 kept molecules: ~1.5 GB)."""
        mol = _MOL.__get__(self)
        return Standardized(mol if mol is not None else Chem.Mol(self._binary), self.smiles,
                            self.key, self.steps, self.components)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (StoredParent.from_parts, (self._binary, self.smiles, self.key, self.steps,
                                          self.components, self._inorganic, self.extra))


_MOL, _SMILES, _KEY, _STEPS, _COMPONENTS = (Standardized.__dict__[name] for name in (
    "mol", "smiles", "key", "steps", "components"))
_BINARY, _INORGANIC, _EXTRA = (StoredParent.__dict__[name] for name in (
    "_binary", "_inorganic", "extra"))
"""The slots a `StoredParent` fills without the frozen dataclass's ``__init__``."""


def match_key(mol: Chem.Mol) -> str:
    """Return the stereo-free canonical SMILES used as identity key.

    >>> match_key(Chem.MolFromSmiles("CN[C@@H](C)[C@H](O)c1ccccc1"))
    'CNC(C)C(O)c1ccccc1'
    """
    return Chem.MolToSmiles(mol, isomericSmiles=False)


def _has_carbon(mol: Chem.Mol) -> bool:
    return mol.HasSubstructMatch(_CARBON)


def _neutral_smiles(frag: Chem.Mol) -> str:
    return Chem.MolToSmiles(_UNCHARGER.uncharge(frag))


def standardize(mol: Chem.Mol, *, max_heavy_atoms: int = DEFAULT_MAX_HEAVY_ATOMS,
                smiles: str | None = None) -> Standardized:
    """Return the parent structure every comparison uses, and the steps taken.

    Salts and charges go because the annex lists substances with their salts; stereo stays on
    the parent and leaves the key. ``smiles``, when the caller has just written it, is
    ``Chem.MolToSmiles(mol)``: it is not written a second time (a rule search's products, whose
    SMILES tell repeats apart before they are standardized).

    >>> standardize(Chem.MolFromSmiles("c1ccc(NC2CCNCC2)cc1.Cl.Cl")).smiles
    'c1ccc(NC2CCNCC2)cc1'
    >>> standardize(Chem.MolFromSmiles("[Na+].[Na+].[O-]S([O-])(=O)=O")).smiles
    'O=S(=O)([O-])[O-].[Na+].[Na+]'
    """
    with quiet_rdkit():
        return _standardize(mol, max_heavy_atoms, smiles)


def _standardize(mol: Chem.Mol, max_heavy_atoms: int, written: str | None = None
                 ) -> Standardized:
    if mol is None:
        raise StandardizeError("no structure")
    n_heavy = mol.GetNumHeavyAtoms()
    if n_heavy == 0:
        raise StandardizeError("empty structure")
    if n_heavy > max_heavy_atoms:
        raise StandardizeError(f"too large: {n_heavy} heavy atoms (limit {max_heavy_atoms})")
    steps: list[str] = []
    if mol.GetNumAtoms() != n_heavy:
        written = None   # written with its explicit hydrogens, which go now
        try:
            mol = Chem.RemoveHs(mol)
        except Exception as exc:  # noqa: BLE001 - RDKit raises several types
            raise StandardizeError(f"cannot remove explicit hydrogens: {exc}") from None
    # Fast path: nothing to strip, neutralize or normalize. Most molecules are told so by the
    # canonical SMILES, which the parent needs anyway: RDKit writes a charged atom and a metal
    # in brackets (with their charge, as a non-organic element) and a second fragment after a
    # dot; an OH pair needs two O. The substructure queries are for the rest.
    smiles = Chem.MolToSmiles(mol) if written is None else written
    if _written_plain(smiles):
        if smiles.count("O") < 2 or not mol.HasSubstructMatch(_GEM_DIOL):
            return _finish_plain(mol, smiles=smiles)
        charged = metal = False
        hydrate = True
    elif not mol.HasSubstructMatch(_ANY_STEP):
        charged = metal = hydrate = False
        if len(Chem.GetMolFrags(mol)) == 1:
            return _finish_plain(mol, smiles=smiles)
    else:
        charged = mol.HasSubstructMatch(_CHARGED)
        metal = mol.HasSubstructMatch(_METAL)
        hydrate = mol.HasSubstructMatch(_GEM_DIOL)
    if metal and _has_carbon(mol):
        disconnected = rdMolStandardize.MetalDisconnector().Disconnect(mol)
        if disconnected is not None and disconnected.GetNumAtoms():
            mol = disconnected
            charged = True
    if charged or hydrate:
        normalized = _NORMALIZER.normalize(mol)
        if Chem.MolToSmiles(normalized) != Chem.MolToSmiles(mol):
            steps.append("normalized functional groups")
        mol = normalized
    frags = list(Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False))
    if len(frags) == 1:
        parent = frags[0]
        if _has_carbon(parent) and parent.HasSubstructMatch(_CHARGED):
            parent = _uncharge(parent, steps)
        return _finish(parent, steps, ())
    neutral = [_neutral_smiles(f) for f in frags]
    kept = [(f, s) for f, s in zip(frags, neutral) if s not in _SOLVENTS]
    if len(kept) < len(frags):
        removed = sorted({s for s in neutral if s in _SOLVENTS})
        steps.append("removed solvent " + ", ".join(removed))
    if not kept:  # e.g. water alone, or a solvent mixture: keep the largest as it is
        kept = [max(zip(frags, neutral), key=lambda fs: (fs[0].GetNumHeavyAtoms(), fs[1]))]
    organic = [(f, s) for f, s in kept if _has_carbon(f) and s not in _SALT_FORMERS]
    if not organic:
        organic = [(f, s) for f, s in kept if _has_carbon(f)]
    if not organic:
        # Inorganic: keep every fragment, so NaCl stays NaCl and not hydrochloric acid.
        combined = Chem.MolFromSmiles(".".join(Chem.MolToSmiles(f) for f, _ in kept))
        if combined is None:
            raise StandardizeError("inorganic fragments could not be recombined")
        if len(kept) > 1:
            steps.append("inorganic: kept all ions")
        return _finish(combined, steps, ())
    removed_ions = sorted({s for f, s in kept if (f, s) not in organic})
    if removed_ions:
        steps.append("removed counter-ion " + ", ".join(removed_ions))
    # The parent is the largest organic fragment; other distinct ones are mixture components.
    organic.sort(key=lambda fs: (-fs[0].GetNumHeavyAtoms(), fs[1]))
    parent = _uncharge(organic[0][0], steps)
    parent_key = match_key(parent)
    others = tuple(sorted({s for _, s in organic[1:]} - {Chem.MolToSmiles(parent)}))
    others = tuple(s for s in others if match_key(Chem.MolFromSmiles(s)) != parent_key)
    if others:
        steps.append("mixture: parent is the largest component")
    return _finish(parent, steps, others)


def _uncharge(frag: Chem.Mol, steps: list[str]) -> Chem.Mol:
    if not frag.HasSubstructMatch(_CHARGED):
        return frag
    neutral = _UNCHARGER.uncharge(frag)
    if Chem.MolToSmiles(neutral) != Chem.MolToSmiles(frag):
        steps.append("neutralized")
    return neutral


def _finish(parent: Chem.Mol, steps: list[str], components: tuple[str, ...]) -> Standardized:
    try:
        Chem.SanitizeMol(parent)
    except Exception as exc:  # RDKit raises several types here
        raise StandardizeError(f"cannot sanitize parent: {exc}") from None
    return _finish_plain(parent, tuple(steps), components)


def _finish_plain(parent: Chem.Mol, steps: tuple[str, ...] = (),
                  components: tuple[str, ...] = (), smiles: str | None = None) -> Standardized:
    smiles = Chem.MolToSmiles(parent) if smiles is None else smiles
    # the key is the SMILES itself unless stereo or isotopes make the flat form differ
    key = match_key(parent) if _STEREO_OR_ISOTOPE.search(smiles) else smiles
    return Standardized(parent, smiles, key, steps, components)


def standardize_smiles(smiles: str, **kwargs: int) -> Standardized:
    """Parse and standardize a SMILES; raises StandardizeError with RDKit's reason when it fails.

    >>> standardize_smiles("CC1(C(=O)[O-])OC1c1ccccc1.[Na+]").smiles
    'CC1(C(=O)O)OC1c1ccccc1'
    """
    mol, problem = parse_smiles(smiles)
    if mol is None:
        raise StandardizeError(problem)
    return standardize(mol, **kwargs)


def parent_or_none(smiles: str) -> Standardized | None:
    """The parent of a SMILES, or None when it does not parse or standardize."""
    try:
        return standardize_smiles(smiles)
    except StandardizeError:
        return None


def smiles_key(smiles: str) -> str:
    """The stereo-free identity key of a SMILES as written ('' when it does not parse).

    >>> smiles_key("C[C@H](N)Cc1ccccc1")
    'CC(N)Cc1ccccc1'
    """
    mol = Chem.MolFromSmiles(smiles)
    return match_key(mol) if mol is not None else ""
