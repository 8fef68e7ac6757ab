"""precursor-screen: find designer precursors of scheduled drug precursors, each with its reason.

From a notebook::

    from precursor_screen import Screener
    screener = Screener()                      # the built-in list; or Screener(as_of=date(2012, 12, 31))
    verdict = screener.check("CC(=O)C(C#N)c1ccccc1")
    verdict.flag, verdict.reason
    for v in screener.screen(["CCO", "COC(=O)C1(C)OC1c1ccccc1"]):
        print(v.row, v.flag, v.reason)
"""

__version__ = "0.1.0"

from precursor_screen.chem.standardize import Standardized, StandardizeError, standardize  # noqa: E402
from precursor_screen.types import Flag, Hit, Route, Step, Verdict  # noqa: E402


from precursor_screen.screen import Screener, ScreenParameters, screen  # noqa: E402


def __getattr__(name: str):  # noqa: ANN202 - the registry loader, imported on first use
    if name == "load_registry":
        from precursor_screen.reference import builtin_registry

        return builtin_registry
    raise AttributeError(name)


__all__ = ["__version__", "Flag", "Hit", "Route", "ScreenParameters", "Screener", "Standardized",
           "StandardizeError", "Step", "Verdict", "load_registry", "screen", "standardize"]
