"""The policy workflow: index large libraries, find the derivatives of a listed substance,
enumerate its masked forms, weigh a draft group definition.

* :mod:`~precursor_screen.survey.library`: the sharded on-disk index (build, append, search);
* :mod:`~precursor_screen.survey.derivatives`: library compounds related to a listed substance;
* :mod:`~precursor_screen.survey.groupcheck`: the impact report of a draft group file;
* :mod:`~precursor_screen.survey.masks`: masked forms of a listed substance (rules run backwards);
* :mod:`~precursor_screen.survey.sets`: the bundled sets of designer precursors and legitimate
  chemicals;
* :mod:`~precursor_screen.survey.draft`: draft group definitions from a few examples
  (:func:`draft_groups`), built on :mod:`~precursor_screen.survey.scaffold` (the common scaffold)
  and :mod:`~precursor_screen.survey.definition` (positions, classes, SMARTS and wording).
"""

from precursor_screen.survey.derivatives import find_derivatives, survey_substances
from precursor_screen.survey.draft import DraftError, DraftResult, Knowledge, draft_groups
from precursor_screen.survey.groupcheck import check_groups
from precursor_screen.survey.library import (LibraryIndex, LibraryIndexError, Shard, build_index,
                                             merge_hits)
from precursor_screen.survey.masks import enumerate_drug_precursors, enumerate_masked

__all__ = ["DraftError", "DraftResult", "Knowledge", "LibraryIndex", "LibraryIndexError", "Shard",
           "build_index", "check_groups", "draft_groups", "enumerate_drug_precursors",
           "enumerate_masked", "find_derivatives", "merge_hits", "survey_substances"]
