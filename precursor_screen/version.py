"""The tool's version: recorded in every output row and in every run's metadata."""

__version__ = "0.1.0"
