"""Library survey for policy staff: index large libraries, find derivatives, check draft groups.

* :mod:`~precursor_screen.survey.library`: the sharded on-disk index (build, append, search);
* :mod:`~precursor_screen.survey.derivatives`: library compounds related to a listed substance;
* :mod:`~precursor_screen.survey.groupcheck`: the impact report of a draft group file;
* :mod:`~precursor_screen.survey.masks`: masked forms of a listed substance (rules run backwards);
* :mod:`~precursor_screen.survey.distributed`: the Dask client behind ``--scheduler``/``--workers``.
"""

from precursor_screen.survey.library import (
                                             LibraryIndex,
                                             LibraryIndexError,
                                             Shard,
                                             build_index,
                                             merge_hits,
)

__all__ = ["LibraryIndex", "LibraryIndexError", "Shard", "build_index", "merge_hits"]
