"""What was run: tool and RDKit versions, the reference list's version, parameters, date.

Every output the tool writes carries this, so a result in a case file can be reproduced.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
from collections.abc import Mapping, Sequence
from typing import Any

import rdkit

from precursor_screen.version import __version__

__all__ = ["run_metadata", "survey_metadata", "list_metadata", "file_sha256"]


def file_sha256(path: str) -> str:
    """sha256 of a file's bytes ('' for standard input)."""
    if path == "-" or not os.path.isfile(path):
        return ""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def list_metadata(reference: Any) -> dict[str, Any]:
    """What an output records about the list beyond its hash: the view (jurisdictions), the
    overlays with their own hashes, and, for a built-in list, its hash beside the one shipped
    (``warnings`` when they differ: the list was edited after release)."""
    if reference is None:
        return {}
    out: dict[str, Any] = {
        "reference_jurisdictions": list(getattr(reference, "jurisdictions", ())),
        "reference_overlays": [{"name": n, "sha256": h, "size": k}
                               for n, h, k in getattr(reference, "overlays", ())],
    }
    integrity = getattr(reference, "integrity", None)
    if integrity is not None:
        out[f"{integrity.kind}_sha256"] = integrity.loaded
        out[f"{integrity.kind}_shipped_sha256"] = integrity.expected
        if not integrity.ok:
            out["warnings"] = [integrity.problem]
    return out


def run_metadata(reference: Any, parameters: dict[str, Any] | None = None,
                 inputs: list[str] | None = None) -> dict[str, Any]:
    """Return the metadata block recorded in every output.

    ``reference`` is the Registry screened against: its source, size, content hash, view
    (jurisdictions, as-of day) and overlays identify the list version; the built-in lists' hashes
    and whether they are the ones shipped are recorded too (``warnings`` when not).
    """
    meta: dict[str, Any] = {
        "tool": "precursor-screen",
        "tool_version": __version__,
        "rdkit_version": rdkit.__version__,
        "python_version": platform.python_version(),
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "reference_source": reference.source,
        "reference_sha256": reference.content_hash,
        "reference_size": len(reference),
        "reference_as_of": reference.as_of.isoformat() if reference.as_of else "",
        **list_metadata(reference),
        "parameters": dict(parameters or {}),
    }
    if inputs is not None:
        meta["inputs"] = [{"path": p, "sha256": file_sha256(p)} for p in inputs]
    return meta


def survey_metadata(command: str, parameters: Mapping[str, Any], *, index: Any = None,
                    reference: Any = None, inputs: Sequence[str] = ()) -> dict[str, Any]:
    """The metadata block every survey output records.

    ``index`` is a :class:`~precursor_screen.survey.library.LibraryIndex` (its manifest hash
    identifies the exact library version searched), ``reference`` the Registry used, if any.
    """
    meta: dict[str, Any] = {
        "tool": "precursor-screen", "tool_version": __version__, "command": command,
        "rdkit_version": rdkit.__version__, "python_version": platform.python_version(),
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "parameters": dict(parameters),
        "reference_source": getattr(reference, "source", "") if reference is not None else "",
        "reference_sha256": getattr(reference, "content_hash", "") if reference is not None else "",
        **list_metadata(reference),
        "index": index.describe() if index is not None else None,
        "index_manifest_sha256": index.manifest_sha256 if index is not None else "",
    }
    if inputs:
        meta["inputs"] = [{"path": p, "sha256": file_sha256(p)} for p in inputs]
    return meta
