"""Run declaration chunks on Dask (dask.distributed): a running cluster or a LocalCluster.

The client streams chunks to the workers and writes the parts they return, so workers need the
package but no shared file system: neither the inputs nor the output dir need be visible to them.
Each worker process builds its :class:`DeclarationScreener` once from the scattered
:class:`DeclarationConfig` and keeps it for later chunks; threads of one worker share it (its
caches only ever hold answers that do not depend on who computed them, and a miss recomputes). Verdicts are pure functions of row and config, so the
output equals a single-process run's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

from precursor_screen.errors import PrecursorScreenError

from .run import ChunkResult, Task, portable_task, judge_chunk, windowed
from .verdict import DeclarationConfig, DeclarationScreener

__all__ = ["DaskExecutor", "dask_problem"]

_SCREENERS: dict[str, DeclarationScreener] = {}
_LOCK = threading.Lock()


def dask_problem() -> str:
    """Why Dask cannot be used here ('' when it can)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return "Dask is not installed: pip install 'precursor-screen[dask]'"
    return ""


def _screener(config: DeclarationConfig) -> DeclarationScreener:
    with _LOCK:  # held while building, so threads arriving together build once
        found = _SCREENERS.get(config.fingerprint)
        if found is None:
            if len(_SCREENERS) >= 4:
                _SCREENERS.clear()
            found = _SCREENERS[config.fingerprint] = DeclarationScreener(config)
    return found


def _dask_task(config: DeclarationConfig, task: tuple[int, list[tuple[Any, ...]]], key: str) -> ChunkResult:
    return judge_chunk(_screener(config), task[0], task[1], key)


class DaskExecutor:
    """Screens chunks on Dask; ``scheduler`` is a running cluster's address, else ``workers``
    starts a LocalCluster (``processes=False`` keeps its workers as threads of this process).

    Use as a context manager: the LocalCluster (or the client) closes on exit.
    """

    def __init__(self, config: DeclarationConfig, scheduler: str | None = None,
                 workers: int | None = None, processes: bool = True) -> None:
        problem = dask_problem()
        if problem:
            raise PrecursorScreenError(problem)
        if not scheduler and not workers:
            raise PrecursorScreenError("Dask needs a scheduler address or a number of workers")
        self.config = config
        self.scheduler = scheduler
        self.workers = workers
        self.processes = processes
        self.client: Any = None
        self.cluster: Any = None

    def __enter__(self) -> "DaskExecutor":
        from distributed import Client, LocalCluster

        try:
            if self.scheduler:
                self.client = Client(self.scheduler, timeout="30s")
            else:
                self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                            processes=self.processes, dashboard_address=":0")
                self.client = Client(self.cluster)
        except (OSError, TimeoutError) as exc:
            raise PrecursorScreenError(f"cannot reach the Dask scheduler {self.scheduler}: {exc}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    @property
    def n_workers(self) -> int:
        info = self.client.scheduler_info()
        return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))

    def run(self, tasks: Iterable[Task], key: str) -> Iterator[ChunkResult]:
        from distributed import wait

        config = self.client.scatter(self.config, broadcast=True)

        def wait_some(futures: set[Any]) -> tuple[set[Any], set[Any]]:
            done, not_done = wait(futures, return_when="FIRST_COMPLETED")
            return set(done), set(not_done)

        yield from windowed(lambda t: self.client.submit(_dask_task, config, portable_task(t), key, pure=False),
                            tasks, 3 * self.n_workers, wait_some)
