"""Structure drawings for the report: RDKit SVG, highlighted shared parts, drawn once each.

Every drawing becomes one ``<symbol>`` in a sprite at the top of the page and is shown with
``<svg><use href="#id"/></svg>``, so a listed substance that ends a hundred conversion paths is
stored once. RDKit's per-element ``style`` attributes become shared CSS classes, which cuts the
size of a large report about threefold. Nothing here comes from the input but SMILES, and RDKit
draws element symbols only, so the SVG text needs no escaping.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from rdkit import Chem
from rdkit.Chem import rdFMCS
from rdkit.Chem.Draw import rdMolDraw2D

from precursor_screen.chem.parse import quiet_rdkit

__all__ = ["Drawer", "HIGHLIGHT", "HIGHLIGHT_HEX", "MCS_TIMEOUT_S", "shared_atoms"]

HIGHLIGHT = (1.0, 0.76, 0.3)
"""Fill colour of the shared substructure (amber: visible on screen and in greyscale print)."""

HIGHLIGHT_HEX = "#" + "".join(f"{int(255 * c):02X}" for c in HIGHLIGHT)
"""The same colour as RDKit writes it into the SVG."""

MCS_TIMEOUT_S = 1
"""Seconds RDKit's maximum common substructure search may take for one pair."""

_STYLE = re.compile(r"style='([^']*)'")
_CLASS = re.compile(r" class='[^']*'")


def shared_atoms(a: Chem.Mol, b: Chem.Mol, *, loose: bool = True) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Return the atoms of ``a`` and of ``b`` that the two have in common, for highlighting.

    One inside the other (identity, salt, stereoisomer, containment) is an exact substructure
    match; otherwise the maximum common substructure. ``loose`` (for conversions) ignores bond
    orders and rings, so that a masked skeleton (a ketal, an epoxide, a nitroalkene) lines up with
    the ketone it unmasks to; strict keeps bond orders and whole rings (for mere similarity).

    >>> bmk = Chem.MolFromSmiles("CC(=O)Cc1ccccc1")
    >>> p2np = Chem.MolFromSmiles("CC(=Cc1ccccc1)[N+](=O)[O-]")
    >>> [len(x) for x in shared_atoms(p2np, bmk)], [len(x) for x in shared_atoms(p2np, bmk, loose=False)]
    ([9, 9], [7, 7])
    """
    if a.GetNumAtoms() >= b.GetNumAtoms():
        hit = a.GetSubstructMatch(b)
        if hit:
            return tuple(hit), tuple(range(b.GetNumAtoms()))
    else:
        hit = b.GetSubstructMatch(a)
        if hit:
            return tuple(range(a.GetNumAtoms())), tuple(hit)
    bonds = rdFMCS.BondCompare.CompareAny if loose else rdFMCS.BondCompare.CompareOrder
    res = rdFMCS.FindMCS([a, b], timeout=MCS_TIMEOUT_S, atomCompare=rdFMCS.AtomCompare.CompareElements,
                         bondCompare=bonds, matchValences=False, ringMatchesRingOnly=not loose,
                         completeRingsOnly=not loose)
    if not res.numAtoms:
        return (), ()
    query = Chem.MolFromSmarts(res.smartsString)
    return tuple(a.GetSubstructMatch(query)), tuple(b.GetSubstructMatch(query))


class Drawer:
    """Draws molecules once per (SMILES, highlight, size) and collects them into a sprite."""

    def __init__(self) -> None:
        self._mols: dict[str, Chem.Mol | None] = {}
        self._shared: dict[tuple[str, str, bool], tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self._ids: dict[tuple[str, tuple[int, ...], int, int], str] = {}  # (SMILES, ...) -> symbol
        self._by_content: dict[str, str] = {}
        self._symbols: list[str] = []
        self._styles: dict[str, str] = {}

    def mol(self, smiles: str) -> Chem.Mol | None:
        """The parsed molecule (cached), or None when RDKit refuses the SMILES."""
        if smiles not in self._mols:
            with quiet_rdkit():
                self._mols[smiles] = Chem.MolFromSmiles(smiles) if smiles else None
        return self._mols[smiles]

    def shared(self, a: str, b: str, loose: bool = True) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """:func:`shared_atoms` for two SMILES, cached per pair; empty when either fails."""
        key = (a, b, loose)
        if key not in self._shared:
            ma, mb = self.mol(a), self.mol(b)
            self._shared[key] = (shared_atoms(ma, mb, loose=loose) if ma is not None and mb is not None
                                 else ((), ()))
        return self._shared[key]

    def draw(self, smiles: str, highlight: Sequence[int] = (), size: tuple[int, int] = (280, 210),
             r_labels: bool = False) -> str:
        """Return the symbol id of the drawing ('' when the SMILES does not parse).

        ``r_labels``: dummy atoms ``[n*]`` are drawn as "Rn" (a scaffold's variable positions).
        """
        key = (smiles + ("|R" if r_labels else ""), tuple(sorted(highlight)), size[0], size[1])
        found = self._ids.get(key)
        if found is not None:
            return found
        mol = self.mol(smiles)
        if mol is not None and r_labels:
            mol = Chem.Mol(mol)
            for atom in mol.GetAtoms():
                if atom.GetAtomicNum() == 0 and atom.GetIsotope():
                    atom.SetProp("dummyLabel", f"R{atom.GetIsotope()}")
                    atom.SetIsotope(0)
        sym = "" if mol is None else self._symbol(mol, key[1], size)
        self._ids[key] = sym
        return sym

    def _symbol(self, mol: Chem.Mol, highlight: tuple[int, ...], size: tuple[int, int]) -> str:
        w, h = size
        d = rdMolDraw2D.MolDraw2DSVG(w, h, -1, -1, True)  # noFreetype: labels as <text>, small
        opts: Any = d.drawOptions()  # RDKit's stubs type its attributes wrongly
        opts.clearBackground = False
        opts.setHighlightColour(HIGHLIGHT)
        opts.bondLineWidth = 1.5
        atoms = set(highlight)
        bonds = [b.GetIdx() for b in mol.GetBonds()
                 if b.GetBeginAtomIdx() in atoms and b.GetEndAtomIdx() in atoms]
        try:
            with quiet_rdkit():
                rdMolDraw2D.PrepareAndDrawMolecule(d, mol, highlightAtoms=list(highlight),
                                                   highlightBonds=bonds)
        except (RuntimeError, ValueError):
            return ""
        d.FinishDrawing()
        text = d.GetDrawingText()
        body = text.split("<!-- END OF HEADER -->", 1)[-1].rsplit("</svg>", 1)[0].strip()
        body = _STYLE.sub(self._style_class, _CLASS.sub("", body))
        digest = hashlib.sha1(f"{w}x{h}{body}".encode()).hexdigest()
        found = self._by_content.get(digest)
        if found is not None:
            return found
        sym = f"m{len(self._symbols)}"
        self._symbols.append(f'<symbol id="{sym}" viewBox="0 0 {w} {h}">{body}</symbol>')
        self._by_content[digest] = sym
        return sym

    def _style_class(self, m: re.Match[str]) -> str:
        style = m.group(1)
        cls = self._styles.get(style)
        if cls is None:
            cls = self._styles[style] = f"s{len(self._styles)}"
        return f'class="{cls}"'

    @staticmethod
    def use(sym: str, size: tuple[int, int], label: str, css: str = "mol") -> str:
        """The ``<svg>`` showing one symbol; ``label`` must already be escaped."""
        w, h = size
        if not sym:
            return (f'<div class="{css} nodraw" role="img" aria-label="{label}">'
                    "structure could not be drawn</div>")
        return (f'<svg class="{css}" viewBox="0 0 {w} {h}" role="img" aria-label="{label}">'
                f'<use href="#{sym}"/></svg>')

    def sprite(self) -> str:
        """All symbols, in one hidden ``<svg>`` the ``<use>`` elements point into."""
        return ('<svg class="sprite" aria-hidden="true" width="0" height="0"><defs>'
                + "".join(self._symbols) + "</defs></svg>")

    def css(self) -> str:
        """The CSS classes that replaced RDKit's inline styles."""
        return "\n".join(f".{cls}{{{style}}}" for style, cls in self._styles.items())

    @property
    def count(self) -> int:
        """Distinct drawings made."""
        return len(self._symbols)
