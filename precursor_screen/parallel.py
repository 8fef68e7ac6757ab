"""The one place that runs work on other processes or on Dask.

Work is cut into tasks by the workflows (chunks of records, shards of an index, chunks of
declarations); here the tasks run: in worker processes of this machine (forked where the platform
allows, so a screener built once is shared without pickling), or on a Dask cluster, a running one
(``scheduler``) or a LocalCluster started for the run (``workers``). Dask is an optional dependency
(``pip install 'precursor-screen[dask]'``) imported only when asked for.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import pickle
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, TypeVar

from precursor_screen.errors import PrecursorScreenError

__all__ = ["context", "ordered_map", "process_executor", "windowed", "wait_some",
           "dask_client", "dask_problem", "dask_wait_some", "dask_workers", "dask_ordered_map",
           "dask_share", "dask_shared"]

T = TypeVar("T")
R = TypeVar("R")


def context() -> Any:
    """The multiprocessing context: fork where available (workers inherit what was built)."""
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def ordered_map(fn: Callable[[T], R], tasks: Iterable[T], jobs: int,
                initializer: Callable[..., None] | None = None,
                initargs: tuple[Any, ...] = ()) -> Iterator[R]:
    """``fn`` over ``tasks`` on ``jobs`` worker processes, results in task order, streaming."""
    with context().Pool(jobs, initializer=initializer, initargs=initargs) as pool:
        yield from pool.imap(fn, tasks, chunksize=1)


def process_executor(jobs: int, initializer: Callable[..., None] | None = None,
                     initargs: tuple[Any, ...] = ()) -> ProcessPoolExecutor:
    """A pool of ``jobs`` worker processes for :func:`windowed` (use as a context manager)."""
    return ProcessPoolExecutor(max(1, jobs), mp_context=context(), initializer=initializer,
                               initargs=initargs)


def wait_some(futures: set[Any]) -> tuple[set[Any], set[Any]]:
    """Wait for at least one of local ``futures``: (done, not done)."""
    done, not_done = wait(futures, return_when=FIRST_COMPLETED)
    return set(done), set(not_done)


def windowed(submit: Callable[[T], Any], tasks: Iterable[T], window: int,
             wait_some: Callable[[set[Any]], tuple[set[Any], set[Any]]] = wait_some
             ) -> Iterator[Any]:
    """Submit tasks keeping at most ``window`` in flight; yield results as they finish (in any
    order), so memory stays bounded however many tasks there are."""
    pending: set[Any] = set()
    for task in tasks:
        pending.add(submit(task))
        while len(pending) >= window:
            done, pending = wait_some(pending)
            for f in done:
                yield f.result()
    while pending:
        done, pending = wait_some(pending)
        for f in done:
            yield f.result()


def dask_problem() -> str:
    """Why Dask cannot be used here ('' when it can)."""
    try:
        import distributed  # noqa: F401 - only probing whether the optional extra is there
    except ImportError:
        return "Dask is not installed: pip install 'precursor-screen[dask]'"
    return ""


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None, *,
                processes: bool = True) -> Iterator[Any]:
    """Yield a ``distributed.Client`` (None when neither ``scheduler`` nor ``workers`` is given)
    and close it, and the LocalCluster it started, afterwards.

    ``scheduler`` connects to a running cluster; ``workers`` starts a LocalCluster of that many
    single-threaded workers (processes, or threads of this process with ``processes=False``),
    with no dashboard.

    >>> with dask_client() as client:
    ...     print(client)
    None
    """
    if not scheduler and not workers:
        yield None
        return
    if scheduler and workers:
        raise PrecursorScreenError("--workers and --scheduler exclude each other")
    problem = dask_problem()
    if problem:
        raise PrecursorScreenError(problem)
    # Dask is an optional dependency, imported when asked for
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise PrecursorScreenError(f"cannot reach the Dask scheduler at {scheduler}: "
                                       f"{exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    with LocalCluster(n_workers=int(workers or 1), threads_per_worker=1, processes=processes,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def dask_workers(client: Any) -> int:
    """The number of worker threads of a Dask cluster (at least 1)."""
    info = client.scheduler_info()
    return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))


def dask_wait_some(futures: set[Any]) -> tuple[set[Any], set[Any]]:
    """Wait for at least one of Dask ``futures``: (done, not done)."""
    # Dask is an optional dependency, imported when asked for
    from distributed import wait as dask_wait

    done, not_done = dask_wait(futures, return_when="FIRST_COMPLETED")
    return set(done), set(not_done)


def dask_ordered_map(client: Any, fn: Callable[..., R], tasks: Iterable[T], *args: Any,
                     window: int | None = None) -> Iterator[R]:
    """``fn(task, *args)`` for each task on a Dask cluster, results in task order, streaming.

    At most ``window`` tasks (default three per worker thread) are in flight: a new one is
    submitted as the oldest is handed back, so memory stays bounded however long the input,
    and a slow task holds back only the results behind it, not the workers. ``args`` may hold
    futures (:func:`dask_share`), which Dask resolves on the worker.
    """
    window = window or 3 * dask_workers(client)
    pending: deque[Any] = deque()
    for task in tasks:
        pending.append(client.submit(fn, task, *args, pure=False))
        if len(pending) >= window:
            yield _take(pending.popleft())
    while pending:
        yield _take(pending.popleft())


def _take(future: Any) -> Any:
    result = future.result()
    future.release()
    return result


def dask_share(client: Any, obj: Any) -> Any:
    """Send ``obj`` (a built screener, say) to every worker once; pass the returned future to
    tasks, which get their copy with :func:`dask_shared`.

    It travels pickled with a token naming it, so each worker thread unpickles its own copy
    once (:func:`dask_shared`): objects with per-search state need not be thread-safe, and a
    cluster whose workers run several threads still builds one per thread, not one per task.
    """
    payload = (uuid.uuid4().hex, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    return client.scatter(payload, broadcast=True, hash=False)


_SHARED = threading.local()


def dask_shared(payload: tuple[str, bytes]) -> Any:
    """This worker thread's copy of an object sent by :func:`dask_share` (unpickled on first
    use; the latest object only is kept, so a long-lived worker does not accumulate them)."""
    token, data = payload
    held = getattr(_SHARED, "held", None)
    if held is None or held[0] != token:
        held = _SHARED.held = (token, pickle.loads(data))
    return held[1]
