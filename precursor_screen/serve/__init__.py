"""The lab bench (``precursor-screen serve``): a local web page and JSON API over the screen.

:class:`Bench` does the work (one query, one uploaded file) and knows nothing of the web;
:func:`create_app` is the Starlette application around it; ``pages`` renders the HTML. Needs the
``serve`` extra (Starlette, uvicorn, python-multipart); the structure editor (JSME, BSD-3-Clause)
is vendored in ``vendor/jsme`` of the checkout (installed as ``serve/jsme``) with its licence.
"""

from precursor_screen.serve.app import create_app
from precursor_screen.serve.bench import Bench, BenchError, Limits, Run

__all__ = ["Bench", "BenchError", "Limits", "Run", "create_app"]
