"""precursor-screen: find designer precursors of scheduled drug precursors, each with its reason."""

__version__ = "0.1.0"

from precursor_screen.standardize import Standardized, StandardizeError, standardize  # noqa: E402

__all__ = ["__version__", "Standardized", "StandardizeError", "standardize"]
