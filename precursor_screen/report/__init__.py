"""The readable reports: one self-contained HTML file a chemist reads at a glance, offline.

``write_html`` reports a screen's verdicts (``screen --report``); ``write_html_from_results``
reports a results file read back with :func:`precursor_screen.results.read_results`
(``precursor-screen report``); ``HtmlReport`` takes rows one at a time for very large screens.
``survey`` renders the survey commands' reports (derivatives, group check), ``draft`` the
report of ``group draft`` (``draft_html``).
"""

from precursor_screen.report.html import (MAX_CARDS, MAX_TABLE_ROWS, HtmlReport, render_results,
                                          render_verdicts, write_html, write_html_from_results)

__all__ = ["HtmlReport", "MAX_CARDS", "MAX_TABLE_ROWS", "render_results", "render_verdicts",
           "write_html", "write_html_from_results"]
