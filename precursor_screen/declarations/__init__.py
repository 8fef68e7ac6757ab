"""The customs workflow: resolve each trade declaration to a structure, screen it, weigh CN rules.

From a notebook::

    from precursor_screen.declarations import DeclarationScreener, read_declarations
    ds = DeclarationScreener.build()
    for v in ds.judge(list(read_declarations(["examples/declarations.csv"]))):
        print(v.declaration_id, v.verdict, v.reason)

``run`` streams files resumably (in this process, on worker processes or on Dask), ``rescreen``
redoes only the rows a change of the list touches; the commands are in ``precursor_screen.cli``.
"""

from precursor_screen.declarations.rescreen import rescreen
from precursor_screen.declarations.run import run_declarations
from precursor_screen.declarations.schema import FIELDS, Declaration, InputSpec, read_declarations
from precursor_screen.declarations.verdict import DeclarationConfig, DeclarationScreener

__all__ = ["FIELDS", "Declaration", "DeclarationConfig", "DeclarationScreener", "InputSpec",
           "read_declarations", "rescreen", "run_declarations"]
