"""The content hash of a list and the check against the hash the package shipped.

One function (:func:`canonical_hash`) hashes every list: the canonical JSON form of what was
loaded (records and listings, sorted keys, compact), so the hash names the list's content whatever
order its fields were written in, and every command and output prints the same value for it.

``shipped.sha256`` beside the data records the hash of each list as released. A load from that
folder compares: a list edited after release (even consistently, a new InChIKey matching a new
SMILES) loads, but its :class:`Integrity` says what differs, and the screening package warns on
stderr and records it in every output's metadata. ``tests/test_registry.py`` fails when a shipped
list changes and this file does not, so a maintainer who edits a list updates it in the same
commit (the failing test prints the lines to write).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["EXPECTED_FILE", "Integrity", "canonical_hash", "expected_hashes", "check_integrity"]

EXPECTED_FILE = "shipped.sha256"


def canonical_hash(data: Any) -> str:
    """sha256 of ``data`` as sorted, compact JSON: the one way a list's version is computed."""
    blob = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Integrity:
    """The loaded list's hash beside the one shipped for it ("" when nothing was shipped)."""

    kind: str          # "registry" or "drugs"
    loaded: str
    expected: str

    @property
    def ok(self) -> bool:
        """True when the list is the one shipped (or no expected hash exists for it)."""
        return not self.expected or self.loaded == self.expected

    @property
    def problem(self) -> str:
        """One line saying how the loaded list differs from the shipped one ('' if it does not)."""
        if self.ok:
            return ""
        return (f"the {self.kind} list differs from the one shipped: sha256 {self.loaded} was "
                f"loaded, {self.expected} was shipped ({EXPECTED_FILE}); it was edited after "
                "release")

    def as_dict(self) -> dict[str, Any]:
        return {"sha256": self.loaded, "shipped_sha256": self.expected, "matches": self.ok}


def expected_hashes(folder: Path) -> dict[str, str]:
    """The hashes ``shipped.sha256`` in ``folder`` records, by kind ({} when there is none)."""
    path = folder / EXPECTED_FILE
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#"):
            out[parts[0]] = parts[1]
    return out


def check_integrity(kind: str, loaded: str, folder: Path) -> Integrity:
    """The loaded hash of ``kind`` against ``folder``'s shipped.sha256."""
    return Integrity(kind, loaded, expected_hashes(folder).get(kind, ""))

