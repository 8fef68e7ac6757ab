"""The Dask client behind ``--scheduler ADDRESS`` / ``--workers N`` (index build and search).

``--scheduler`` connects to a running Dask scheduler (its workers must see the index directory:
a shared file system); ``--workers N`` starts a LocalCluster of N single-threaded worker
processes for the command's lifetime. Neither: no Dask, the command runs in this process (and its
own ``--jobs`` pool). Dask is an optional dependency (``pip install 'precursor-screen[dask]'``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import click

from precursor_screen.errors import PrecursorScreenError

__all__ = ["dask_client", "dask_options"]


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """Yield a ``dask.distributed.Client`` (or None when neither option is given); close it after.

    >>> with dask_client() as client:
    ...     print(client)
    None
    """
    if not scheduler and not workers:
        yield None
        return
    if scheduler and workers:
        raise click.UsageError("--workers and --scheduler exclude each other")
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise PrecursorScreenError("--scheduler/--workers need Dask: pip install "
                                   "'precursor-screen[dask]'") from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as exc:
            raise PrecursorScreenError(f"cannot reach the Dask scheduler at {scheduler}: "
                                       f"{exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    with LocalCluster(n_workers=int(workers or 1), threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def dask_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--scheduler`` and ``--workers``, the same options as declaration screening."""
    f = click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Start a Dask LocalCluster with this many worker processes (one task "
                          "per shard).")(f)
    f = click.option("--scheduler", metavar="ADDRESS", default=None,
                     help="Use a running Dask cluster, e.g. tcp://10.0.0.5:8786 (one task per "
                          "shard; its workers must see the index directory).")(f)
    return f
