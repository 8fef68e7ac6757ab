"""Reading records from and writing results to files: the edges of the data flow."""

from precursor_screen.chem.parse import parse_record, parse_smiles
from precursor_screen.io.readers import Record, detect_format, read_records

__all__ = ["Record", "detect_format", "parse_record", "parse_smiles", "read_records"]
