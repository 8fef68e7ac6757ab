"""precursor-screen: find designer precursors of scheduled drug precursors, each with its reason.

The notebook API: a :class:`Screener` is built once (the reference list, fingerprints, rules and
groups compiled) and screens any number of molecules, one :class:`Verdict` per input::

    from precursor_screen import Screener
    screener = Screener()                      # the built-in list; or Screener(as_of=date(2012, 12, 31))
    verdict = screener.check("CC(=O)C(C#N)c1ccccc1")
    verdict.flag, verdict.reason
    for v in screener.screen(["CCO", "COC(=O)C1(C)OC1c1ccccc1"]):
        print(v.row, v.flag, v.reason)

    from precursor_screen import draft_groups  # group definitions drafted from a few examples
    draft = draft_groups(["CCOC(=O)C1(C)OC1c1ccccc1", "CC1(C(=O)O)OC1c1ccccc1"])
    draft.families[0].best.text, draft.toml()

The data flow, one package or module per step: ``io`` (read) -> ``chem`` (parse, standardize,
fingerprint) -> ``search`` (Tanimoto and substructure indexes) and ``rules`` (conversions,
synthesis, groups, gates) -> ``screen`` (the verdict) -> ``results`` (the output columns) ->
``report`` (HTML); ``survey`` and ``declarations`` are the two workflows built on them, ``cli``
and ``parallel`` the shells around them.
"""

from precursor_screen.chem.standardize import (
           Standardized,
           StandardizeError,
           standardize,
)
from precursor_screen.frame import screen_frame
from precursor_screen.reference import builtin_drugs, builtin_registry, load_reference
from precursor_screen.results import read_results, write_results
from precursor_screen.screen import Screener, ScreenParameters, screen
from precursor_screen.survey.draft import draft_groups
from precursor_screen.types import Flag, Hit, Route, Step, Verdict
from precursor_screen.version import __version__

__all__ = ["__version__", "Flag", "Hit", "Route", "ScreenParameters", "Screener", "Standardized",
           "StandardizeError", "Step", "Verdict", "builtin_drugs", "builtin_registry",
           "draft_groups", "load_reference", "read_results", "screen", "screen_frame",
           "standardize", "write_results"]
