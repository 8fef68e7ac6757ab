"""The one place that runs work on other processes or on Dask.

Work is cut into tasks by the workflows (chunks of records, shards of an index, chunks of
declarations); here the tasks run: in worker processes of this machine (forked where the platform
allows, so a screener built once is shared without pickling), or on a Dask cluster, a running one
(``scheduler``) or a LocalCluster started for the run (``workers``). Dask is an optional dependency
(``pip install 'precursor-screen[dask]'``) imported only when asked for.

Worker processes never outlive the run: each asks the kernel to kill it when its parent dies
(Linux ``PR_SET_PDEATHSIG``; elsewhere it exits when its parent is gone), so a killed command
leaves no orphan holding files or locks. :func:`guarded_map` watches its workers: an item that
runs past its time budget, or whose worker dies (killed, out of memory, a crash in C++), gets a
failure result from ``fail`` and the rest of its task is run again on a fresh worker; nothing
hangs. :func:`ordered_map` and :func:`windowed` fail the run with a clear error instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from precursor_screen.errors import PrecursorScreenError

__all__ = ["context", "ordered_map", "guarded_map", "item_started", "process_executor",
           "windowed", "wait_some", "dask_client", "dask_problem", "dask_wait_some",
           "dask_workers", "dask_ordered_map", "dask_share", "dask_shared", "LOCAL_HOST",
           "WorkerDied"]

T = TypeVar("T")
R = TypeVar("R")

LOCAL_HOST = "127.0.0.1"
"""Where a LocalCluster started for a run listens: this machine only."""


class WorkerDied(PrecursorScreenError):
    """A worker process died (killed, out of memory, crashed) and its work cannot be split."""


def context() -> Any:
    """The multiprocessing context: fork where available (workers inherit what was built)."""
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


# -- workers that die with their parent -----------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """Make this (worker) process die when its parent does: SIGKILL from the kernel on Linux;
    elsewhere a daemon thread checks the parent every second."""
    parent = parent or os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the thread below
            _watch_parent(parent)
    else:  # pragma: no cover - macOS and others
        _watch_parent(parent)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def _watch_parent(parent: int) -> None:  # pragma: no cover - platforms without prctl
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _pool_initializer(parent: int, initializer: Callable[..., None] | None,
                      initargs: tuple[Any, ...]) -> None:
    die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


# -- supervised worker processes --------------------------------------------------------------------

_HEARTBEAT: Any = None


def item_started(index: int, spent: float = 0.0) -> None:
    """Tell the watching parent that item ``index`` of the current task starts now (having
    already taken ``spent`` seconds in an earlier pass); a no-op outside a guarded worker."""
    hb = _HEARTBEAT
    if hb is not None:
        hb[1] = -1.0
        hb[0] = float(index)
        hb[1] = time.monotonic() - spent


def _worker_main(conn: Any, heartbeat: Any, parent: int, fn: Callable[[Any], Any],
                 initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    global _HEARTBEAT
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _HEARTBEAT = heartbeat
    if initializer is not None:
        initializer(*initargs)
    while True:
        try:
            unit = conn.recv()
        except (EOFError, OSError):
            return
        if unit is None:
            return
        try:
            out = ("ok", fn(unit))
        except BaseException:  # noqa: BLE001 - reported to the parent, which raises
            out = ("error", traceback.format_exc(limit=8))
        try:
            conn.send(out)
        except (BrokenPipeError, OSError):
            return


@dataclass
class _Unit:
    key: int                 # the task's position
    offset: int              # of these items in the task (guarded_map)
    payload: Any             # the task, or a slice of its items
    retries: int = 0


@dataclass
class _Worker:
    process: Any
    conn: Any
    heartbeat: Any
    unit: _Unit | None = None


@dataclass
class _Task:
    results: list[Any]       # one per item (guarded_map), or the task's one result
    missing: int             # results still to come


_MISSING = object()


class _Supervisor:
    """Runs units on worker processes it starts, watches and replaces."""

    def __init__(self, fn: Callable[[Any], Any], jobs: int,
                 initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
        self.fn, self.initializer, self.initargs = fn, initializer, initargs
        self.ctx = context()
        self.parent = os.getpid()
        self.workers = [self._start() for _ in range(max(1, jobs))]

    def _start(self) -> _Worker:
        here, there = self.ctx.Pipe(duplex=True)
        heartbeat = self.ctx.RawArray("d", 2)
        heartbeat[0], heartbeat[1] = -1.0, -1.0
        proc = self.ctx.Process(target=_worker_main, daemon=True,
                                args=(there, heartbeat, self.parent, self.fn, self.initializer,
                                      self.initargs))
        proc.start()
        there.close()
        return _Worker(proc, here, heartbeat)

    def replace(self, worker: _Worker) -> None:
        """Kill ``worker`` (if alive) and start a fresh one in its place."""
        with contextlib.suppress(OSError, ValueError):
            worker.process.kill()
        worker.process.join(5)
        with contextlib.suppress(OSError):
            worker.conn.close()
        self.workers[self.workers.index(worker)] = self._start()

    def assign(self, worker: _Worker, unit: _Unit) -> None:
        worker.heartbeat[1] = -1.0
        worker.heartbeat[0] = -1.0
        worker.unit = unit
        worker.conn.send(unit.payload)

    def current_item(self, worker: _Worker) -> tuple[int, float]:
        """(item index, seconds it has run) of a busy worker; (-1, 0) before its first item."""
        start, index, again = worker.heartbeat[1], worker.heartbeat[0], worker.heartbeat[1]
        if start < 0 or start != again:
            return -1, 0.0
        return int(index), time.monotonic() - start

    def close(self) -> None:
        for w in self.workers:
            with contextlib.suppress(OSError, ValueError, BrokenPipeError):
                if w.unit is None:
                    w.conn.send(None)
        deadline = time.monotonic() + 2.0
        for w in self.workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join(5)
            with contextlib.suppress(OSError):
                w.conn.close()


def _death_reason(process: Any) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        return f"its worker process was killed by {name}{hint}"
    return f"its worker process died (exit code {code})"


def _run(fn: Callable[[Any], Any], tasks: Iterable[Any], jobs: int,
         initializer: Callable[..., None] | None, initargs: tuple[Any, ...], *,
         fail: Callable[[Any, str], Any] | None, timeout: float | None,
         describe: Callable[[int, Any], str]) -> Iterator[Any]:
    """The loop behind :func:`ordered_map` (``fail`` None: a task is one unit) and
    :func:`guarded_map` (a task is a list; items fail one by one)."""
    sup = _Supervisor(fn, jobs, initializer, initargs)
    queue: deque[_Unit] = deque()
    pending: dict[int, _Task] = {}
    source = iter(tasks)
    exhausted = False
    next_key = 0
    emit = 0
    window = 2 * len(sup.workers)
    starts_failed = 0
    try:
        while True:
            while not exhausted and len(pending) < window:
                try:
                    task = next(source)
                except StopIteration:
                    exhausted = True
                    break
                if fail is None:
                    pending[next_key] = _Task([_MISSING], 1)
                    queue.append(_Unit(next_key, 0, task))
                else:
                    items = list(task)
                    pending[next_key] = _Task([_MISSING] * len(items), len(items))
                    if items:
                        queue.append(_Unit(next_key, 0, items))
                next_key += 1
            while emit in pending and pending[emit].missing == 0:
                yield (pending.pop(emit).results[0] if fail is None
                       else pending.pop(emit).results)
                emit += 1
            if exhausted and not pending:
                return
            for i in range(len(sup.workers)):
                if sup.workers[i].unit is not None or not queue:
                    continue
                if not sup.workers[i].process.is_alive():  # died idle: nothing of ours lost
                    sup.replace(sup.workers[i])
                unit = queue.popleft()
                try:
                    sup.assign(sup.workers[i], unit)
                except (BrokenPipeError, OSError):
                    queue.appendleft(unit)
                    sup.workers[i].unit = None
                    sup.replace(sup.workers[i])
            busy = [w for w in sup.workers if w.unit is not None]
            if not busy:
                continue
            wait_for = 1.0
            if timeout is not None:
                for w in busy:
                    _index, ran = sup.current_item(w)
                    wait_for = min(wait_for, max(0.01, timeout - ran))
            ready = mpc.wait([w.conn for w in busy] + [w.process.sentinel for w in busy],
                             timeout=wait_for)
            for w in busy:
                unit = w.unit
                assert unit is not None
                reason = ""
                if w.conn in ready:
                    try:
                        status, value = w.conn.recv()
                    except (EOFError, OSError):
                        status, value = "dead", None
                    if status == "ok":
                        w.unit = None
                        starts_failed = 0
                        task = pending[unit.key]
                        if fail is None:
                            task.results[0] = value
                            task.missing = 0
                        else:
                            task.results[unit.offset:unit.offset + len(value)] = value
                            task.missing -= len(value)
                        continue
                    if status == "error":
                        raise PrecursorScreenError(f"{describe(unit.key, unit)}: the worker "
                                                   f"failed:\n{value}")
                    reason = _death_reason(w.process) if not w.process.is_alive() else \
                        "its worker process stopped answering"
                elif w.process.sentinel in ready or not w.process.is_alive():
                    w.process.join(1)
                    reason = _death_reason(w.process)
                elif timeout is not None:
                    index, ran = sup.current_item(w)
                    if index >= 0 and ran > timeout:
                        reason = f"timeout: took longer than {timeout:g} s (--timeout)"
                if not reason:
                    continue
                index, _ran = sup.current_item(w)
                sup.replace(w)
                if fail is None:
                    raise WorkerDied(f"{describe(unit.key, unit)}: {reason}; nothing was "
                                     "written (run again; if it recurs, with fewer --jobs)")
                items = unit.payload
                if index < 0 or index >= len(items):
                    starts_failed += 1
                    if starts_failed > 3:
                        raise WorkerDied(f"{describe(unit.key, unit)}: {reason}, again and again "
                                         "before any row started; stopping")
                    queue.appendleft(unit)
                    continue
                task = pending[unit.key]
                timed_out = reason.startswith("timeout")
                if not timed_out and (unit.retries == 0 or len(items) > 1):
                    # a death may not be the item's doing (a kill from outside): it gets one
                    # more try on its own before it is blamed
                    queue.appendleft(_Unit(unit.key, unit.offset + index, [items[index]], 1))
                else:
                    why = reason if timed_out else f"error: {reason} on this row (twice)"
                    task.results[unit.offset + index] = fail(items[index], why)
                    task.missing -= 1
                if index + 1 < len(items):
                    queue.appendleft(_Unit(unit.key, unit.offset + index + 1, items[index + 1:]))
                if index > 0:
                    queue.appendleft(_Unit(unit.key, unit.offset, items[:index]))
    finally:
        sup.close()


def ordered_map(fn: Callable[[T], R], tasks: Iterable[T], jobs: int,
                initializer: Callable[..., None] | None = None,
                initargs: tuple[Any, ...] = ()) -> Iterator[R]:
    """``fn`` over ``tasks`` on ``jobs`` worker processes, results in task order, streaming.
    A worker that dies fails the run with :class:`WorkerDied` (never a hang)."""
    return _run(fn, tasks, jobs, initializer, initargs, fail=None, timeout=None,
                describe=lambda key, _unit: f"task {key + 1}")


def guarded_map(fn: Callable[[list[T]], list[R]], tasks: Iterable[Sequence[T]], jobs: int, *,
                fail: Callable[[T, str], R], timeout: float | None = None,
                initializer: Callable[..., None] | None = None,
                initargs: tuple[Any, ...] = ()) -> Iterator[list[R]]:
    """``fn`` over ``tasks`` (lists of items; ``fn`` returns one result per item) on ``jobs``
    watched worker processes (one at least, also for ``jobs=1``), task results in order.

    ``fn`` calls :func:`item_started` as it starts each item. An item running longer than
    ``timeout`` seconds, or whose worker dies, gets ``fail(item, reason)`` (reason ``timeout:
    ...`` or ``error: ...``); its worker is replaced and the task's other items run again (results
    are pure functions of the items), so only the culprit fails.
    """
    return _run(fn, tasks, jobs, initializer, initargs, fail=fail, timeout=timeout,
                describe=lambda key, unit: f"task {key + 1}")


# -- pools for unordered work -----------------------------------------------------------------------

def process_executor(jobs: int, initializer: Callable[..., None] | None = None,
                     initargs: tuple[Any, ...] = ()) -> ProcessPoolExecutor:
    """A pool of ``jobs`` worker processes for :func:`windowed` (use as a context manager);
    its workers die with this process."""
    return ProcessPoolExecutor(max(1, jobs), mp_context=context(), initializer=_pool_initializer,
                               initargs=(os.getpid(), initializer, initargs))


def wait_some(futures: set[Any]) -> tuple[set[Any], set[Any]]:
    """Wait for at least one of local ``futures``: (done, not done)."""
    done, not_done = wait(futures, return_when=FIRST_COMPLETED)
    return set(done), set(not_done)


def windowed(submit: Callable[[T], Any], tasks: Iterable[T], window: int,
             wait_some: Callable[[set[Any]], tuple[set[Any], set[Any]]] = wait_some
             ) -> Iterator[Any]:
    """Submit tasks keeping at most ``window`` in flight; yield results as they finish (in any
    order), so memory stays bounded however many tasks there are. A worker process that dies
    fails the run with :class:`WorkerDied`."""
    pending: set[Any] = set()

    def result(f: Any) -> Any:
        try:
            return f.result()
        except Exception as exc:
            # a local pool's worker died, or Dask gave up on a task whose workers kept dying
            if isinstance(exc, BrokenProcessPool) or type(exc).__name__ == "KilledWorker":
                raise WorkerDied("a worker process died (killed, or out of memory?) while "
                                 "running a task; work already finished is kept where the "
                                 "command resumes: run it again (with fewer workers if it "
                                 "recurs)") from None
            raise

    for task in tasks:
        pending.add(submit(task))
        while len(pending) >= window:
            done, pending = wait_some(pending)
            for f in done:
                yield result(f)
    while pending:
        done, pending = wait_some(pending)
        for f in done:
            yield result(f)


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
    # processes listen on this machine only (threads talk in-process, no socket at all)
    where = {"host": LOCAL_HOST} if processes else {}
    with LocalCluster(n_workers=int(workers or 1), threads_per_worker=1, processes=processes,
                      dashboard_address=None, **where) as cluster, Client(cluster) as client:
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
    futures (:func:`dask_share`), which Dask resolves on the worker. A task whose workers keep
    dying fails the run with :class:`WorkerDied` (Dask retries it on other workers first).
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
    try:
        result = future.result()
    except Exception as exc:
        # Dask gave up on a task whose workers kept dying (killed, out of memory, a crash)
        if type(exc).__name__ == "KilledWorker":
            raise WorkerDied("a Dask worker died (killed, or out of memory?) again and again "
                             "while running a task; the run stops, its output unwritten (run "
                             "again; if it recurs, screen with --jobs, which gives a row that "
                             "kills its worker a status)") from None
        raise
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
