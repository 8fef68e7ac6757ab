"""Trade-declaration screening: resolve each declaration to a structure, screen it, weigh CN rules.

From a notebook::

    from precursor_screen.declarations import DeclarationScreener, read_declarations
    ds = DeclarationScreener.build()
    for v in ds.judge(list(read_declarations(["examples/declarations.csv"]))):
        print(v.declaration_id, v.verdict, v.reason)

The command-line side (``precursor-screen declarations``, ``rescreen``) is in ``commands``;
``run`` streams files resumably, ``distributed`` runs the same chunks on Dask.
"""

from precursor_screen.declarations.schema import (
    FIELDS,
    Declaration,
    InputSpec,
    read_declarations,
)

__all__ = ["FIELDS", "Declaration", "InputSpec", "read_declarations"]
