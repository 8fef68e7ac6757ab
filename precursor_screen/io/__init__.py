"""The edges of the data flow: reading records from files and writing results to them.

* :mod:`~precursor_screen.io.formats`: the one place that tells a file's format;
* :mod:`~precursor_screen.io.readers`: one reader per input format (and the tool's own outputs);
* :mod:`~precursor_screen.io.writers`: every output format, written atomically with metadata.
"""

from precursor_screen.io.formats import input_format, output_format
from precursor_screen.io.readers import Record, read_inputs, read_records, read_rows
from precursor_screen.io.writers import TableWriter, atomic_open, write_text

__all__ = ["Record", "TableWriter", "atomic_open", "input_format", "output_format", "read_inputs",
           "read_records", "read_rows", "write_text"]
